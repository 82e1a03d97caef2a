"""Security by default through the real CLI: the token, TLS, mutual TLS, --insecure."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sweepd.v1 import sweeps_pb2, sweeps_pb2_grpc

from .harness import DEFAULT_TIMEOUT_S, Cluster, command, wait_for

pytestmark = pytest.mark.e2e


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, server: bool = False
          ) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("sweepd test CA", ca_key, None, ca_key, ca=True)
    files: dict[str, Path] = {}
    for name, data in (("ca.pem", ca.public_bytes(serialization.Encoding.PEM)),):
        files[name] = d / name
        files[name].write_bytes(data)
    for who, server in (("server", True), ("client", False)):
        key = _key()
        cert = _cert(who, key, ca.subject, ca_key, ca=False, server=server)
        files[f"{who}.pem"] = d / f"{who}.pem"
        files[f"{who}.pem"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{who}.key"] = d / f"{who}.key"
        files[f"{who}.key"].write_bytes(_pem_key(key))
    return files


def test_token_required_on_every_call_but_health(cluster: Cluster) -> None:
    cluster.start_coordinator()
    token_file = cluster.state_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "token" in cluster.coordinator.output()  # type: ignore[union-attr]
    for token in ("", "not-the-token"):
        with cluster.channel(token=token) as channel:
            stub = sweeps_pb2_grpc.SweepServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.ListSweeps(sweeps_pb2.ListSweepsRequest(), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "SWEEPD_TOKEN" in (err.value.details() or "")
    with grpc.insecure_channel(cluster.address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                           timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # The CLI finds the token in the state dir; without it, a clear error.
    assert cluster.sweep("list").returncode == 0
    env = {k: v for k, v in cluster.env.items() if k != "SWEEPD_STATE_DIR"}
    env["XDG_DATA_HOME"] = str(cluster.tmp / "elsewhere")
    result = subprocess.run(command("sweep") + ["list", "--coordinator", cluster.address],
                            capture_output=True, text=True, env=env, timeout=DEFAULT_TIMEOUT_S)
    assert result.returncode != 0 and "token" in result.stderr, result
    result = subprocess.run(
        command("sweep") + ["list", "--coordinator", cluster.address, "--token",
                            token_file.read_text().strip()],
        capture_output=True, text=True, env=env, timeout=DEFAULT_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    # The same token after a restart.
    before = token_file.read_text()
    cluster.coordinator.kill()  # type: ignore[union-attr]
    cluster.start_coordinator(port=cluster.port)
    assert token_file.read_text() == before


def test_no_auth_turns_it_off(cluster: Cluster) -> None:
    cluster.start_coordinator("--no-auth")
    with cluster.channel(token="") as channel:
        sweeps_pb2_grpc.SweepServiceStub(channel).ListSweeps(sweeps_pb2.ListSweepsRequest(),
                                                              timeout=10)


def test_non_loopback_without_tls_needs_insecure(cluster: Cluster) -> None:
    result = subprocess.run(
        command("coordinator") + ["serve", "--host", "0.0.0.0", "--port", "0",
                                  "--state-dir", str(cluster.state_dir)],
        capture_output=True, text=True, env=cluster.env, timeout=DEFAULT_TIMEOUT_S)
    assert result.returncode != 0
    assert "--insecure" in result.stderr and "TLS" in result.stderr, result.stderr


def test_tls_client_without_the_ca_cannot_connect(cluster: Cluster,
                                                  pki: dict[str, Path]) -> None:
    cluster.start_coordinator("--tls-cert", str(pki["server.pem"]),
                              "--tls-key", str(pki["server.key"]))
    assert cluster.sweep("list", "--tls-ca", str(pki["ca.pem"])).returncode == 0
    plain = cluster.sweep("list", check=False)
    assert plain.returncode != 0
    # A TLS client that trusts the system roots, not our CA, fails the handshake.
    creds = grpc.ssl_channel_credentials()
    with grpc.secure_channel(cluster.address, creds) as channel:
        with pytest.raises(grpc.RpcError) as err:
            sweeps_pb2_grpc.SweepServiceStub(channel).ListSweeps(
                sweeps_pb2.ListSweepsRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_worker_without_a_client_certificate(
    cluster: Cluster, pki: dict[str, Path]
) -> None:
    cluster.start_coordinator("--tls-cert", str(pki["server.pem"]),
                              "--tls-key", str(pki["server.key"]),
                              "--tls-client-ca", str(pki["ca.pem"]))
    cluster.env["SWEEPD_TLS_CA"] = str(pki["ca.pem"])
    cluster.start_worker("--worker-id", "nocert")
    cluster.start_worker("--worker-id", "withcert", "--tls-cert", str(pki["client.pem"]),
                         "--tls-key", str(pki["client.key"]))
    env = {"SWEEPD_TLS_CERT": str(pki["client.pem"]), "SWEEPD_TLS_KEY": str(pki["client.key"])}
    cluster.env.update(env)

    def connected() -> set[str]:
        return {w["id"] for w in cluster.sweep_json("workers") if w.get("connected", True)}

    wait_for(lambda: "withcert" in connected(), what="the worker with a certificate")
    time.sleep(2.0)  # the other has had several tries by now
    assert "nocert" not in connected()
    # Without a client certificate, even the right CA does not get a client through.
    for var in env:
        cluster.env.pop(var)
    assert cluster.sweep("workers", check=False).returncode != 0
    assert os.environ.get("SWEEPD_TLS_CERT") is None
