"""The coordinator pod's probe (deploy/kubernetes/base/healthcheck.py) against a real
coordinator serving TLS with a certificate for the Service name, as in the StatefulSet."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .harness import Cluster

pytestmark = pytest.mark.e2e

PROBE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "base" / "healthcheck.py"


def _self_signed(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the Service name `sweepd-coordinator` (and 127.0.0.1,
    where the test's coordinator listens); it is its own CA, as ca.crt in the Secret."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sweepd-coordinator")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("sweepd-coordinator"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    crt, pem_key = where / "tls.crt", where / "tls.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem_key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    pem_key.chmod(0o600)
    return crt, pem_key


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROBE), *args], capture_output=True, text=True,
                          timeout=60)


def test_probe_answers_serving_over_tls_and_fails_otherwise(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    crt, key = _self_signed(tmp_path)
    proc = cluster.start_coordinator("--tls-cert", str(crt), "--tls-key", str(key))
    address = cluster.address

    ok = _probe("--tls-ca", str(crt), "--server-name", "sweepd-coordinator", address)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "SERVING"
    # One service by name, as a probe may ask.
    ok = _probe("--tls-ca", str(crt), "--service", "sweepd.v1.SweepService", address)
    assert ok.returncode == 0, ok.stderr

    wrong_name = _probe("--tls-ca", str(crt), "--server-name", "elsewhere", address)
    assert wrong_name.returncode == 1 and "health check failed" in wrong_name.stderr
    plaintext = _probe(address)
    assert plaintext.returncode == 1

    proc.kill()
    proc.wait()
    gone = _probe("--tls-ca", str(crt), "--server-name", "sweepd-coordinator", address)
    assert gone.returncode == 1 and "UNAVAILABLE" in gone.stderr
