"""deploy/kubernetes (#16): every manifest, as kustomize renders the base and the overlay,
validates against the Kubernetes schemas offline (kubernetes-validate ships them), and says
what the deployment promises (probes, Secrets, GPUs, drain grace).

kustomize itself is not a Python package: the few features the kustomizations use are rendered
here (and a kustomization using any other is refused, so nothing goes unvalidated); where
`kubectl` is on PATH, its own `kubectl kustomize` output is validated as well.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

KUBE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
# The oldest release whose schema has everything used (backoffLimitPerIndex is beta from
# 1.29), and the newest the validator ships.
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
SUPPORTED_KEYS = {"apiVersion", "kind", "labels", "resources", "configMapGenerator", "images",
                  "patches"}

Doc = dict[str, Any]


def _resolve(doc: Any, pointer: str) -> tuple[Any, str | int]:
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    for part in parents:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc, int(last) if isinstance(doc, list) and last != "-" else last


def _json_patch(doc: Doc, ops: list[Doc]) -> None:
    for op in ops:
        parent, key = _resolve(doc, op["path"])
        if op["op"] == "remove":
            del parent[key]
        elif op["op"] == "replace":
            parent[key] = op["value"]
        elif op["op"] == "add" and isinstance(parent, list):
            parent.insert(len(parent) if key == "-" else int(key), op["value"])
        elif op["op"] == "add":
            parent[key] = op["value"]
        else:
            raise AssertionError(f"unsupported patch op {op['op']}")


def render(directory: Path) -> list[Doc]:
    """The documents `kustomize build directory` gives, for the features used here."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(k) <= SUPPORTED_KEYS, f"render() does not know {set(k) - SUPPORTED_KEYS}"
    docs: list[Doc] = []
    for entry in k.get("resources", []):
        path = directory / entry
        if path.is_dir():
            docs.extend(render(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for gen in k.get("configMapGenerator", []):
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]},
                     "data": {f: (directory / f).read_text() for f in gen["files"]}})
    for doc in docs:
        for group in k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(group["pairs"])
        for container in _containers(doc):
            for image in k.get("images", []):
                if container["image"].split(":")[0] == image["name"]:
                    container["image"] = f"{image['newName']}:{image['newTag']}"
    for patch in k.get("patches", []):
        target = patch["target"]
        hits = [d for d in docs if d["kind"] == target["kind"]
                and d["metadata"]["name"] == target["name"]]
        assert len(hits) == 1, target
        _json_patch(hits[0], yaml.safe_load(patch["patch"]))
    return docs


def _containers(doc: Doc) -> list[Doc]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))


def _one(docs: list[Doc], kind: str, name: str) -> Doc:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _validate(docs: list[Doc]) -> None:
    for version in VERSIONS:
        for doc in docs:
            # Raises ValidationError naming the path of the first problem.
            kubernetes_validate.validate(copy.deepcopy(doc), version, strict=True)


BASE = render(KUBE / "base")
PLAINTEXT = render(KUBE / "overlays" / "plaintext")
JOB = [d for d in yaml.safe_load_all((KUBE / "examples" / "worker-indexed-job.yaml").read_text())
       if d]


@pytest.mark.parametrize("docs", [BASE, PLAINTEXT, JOB], ids=["base", "plaintext", "job"])
def test_manifests_validate_against_the_kubernetes_schemas(docs: list[Doc]) -> None:
    _validate(docs)


def test_the_validator_refuses_a_wrong_manifest() -> None:
    broken = copy.deepcopy(_one(BASE, "StatefulSet", "sweepd-coordinator"))
    broken["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["grcp"] = {"port": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate([broken])


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
@pytest.mark.parametrize("where", ["base", "overlays/plaintext"])
def test_kubectl_kustomize_output_validates(where: str) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(KUBE / where)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    _validate(docs)
    # The renderer above gives the same resources.
    mine = {(d["kind"], d["metadata"]["name"]) for d in render(KUBE / where)}
    theirs = {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0]
               if d["kind"] == "ConfigMap" else d["metadata"]["name"]) for d in docs}
    assert mine == theirs


def test_coordinator_state_secrets_service_and_probes() -> None:
    sts = _one(BASE, "StatefulSet", "sweepd-coordinator")
    assert sts["spec"]["replicas"] == 1  # one coordinator per state dir
    claim = sts["spec"]["volumeClaimTemplates"][0]
    pod = sts["spec"]["template"]["spec"]
    (coordinator,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in coordinator["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/sweepd"
    script = coordinator["args"][0]
    assert "--state-dir \"$state\"" in script and "--tls-cert /etc/sweepd/tls/tls.crt" in script
    secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"sweepd-token", "sweepd-tls"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "healthcheck.py" in coordinator[probe]["exec"]["command"][1]
    service = _one(BASE, "Service", "sweepd-coordinator")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "grpc": 50051, "dashboard": 50052}

    plain = _one(PLAINTEXT, "StatefulSet", "sweepd-coordinator")["spec"]["template"]["spec"]
    (coordinator,) = plain["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert coordinator[probe]["grpc"] == {"port": 50051}
        assert "exec" not in coordinator[probe]
    assert "--insecure" in coordinator["args"][0] and "--tls" not in coordinator["args"][0]
    assert {v["name"] for v in plain["volumes"]} == {"token"}


@pytest.mark.parametrize("docs,kind,name", [(BASE, "Deployment", "sweepd-worker"),
                                            (JOB, "Job", "sweepd-sweep-workers")])
def test_workers_ask_for_gpus_and_have_time_to_drain(docs: list[Doc], kind: str,
                                                     name: str) -> None:
    workload = _one(docs, kind, name)
    pod = workload["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    args = worker["args"]
    assert args[:2] == ["worker", "join"]
    assert args[args.index("--gpus") + 1] == "auto"
    assert worker["resources"]["limits"]["nvidia.com/gpu"] >= 1
    # Runs get SIGTERM to checkpoint; the worker's own --stop-grace (30 s) is the least.
    assert pod["terminationGracePeriodSeconds"] >= 120
    token = {e["name"]: e for e in worker["env"]}["SWEEPD_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "sweepd-token", "key": "token"}
    if kind == "Job":
        assert workload["spec"]["completionMode"] == "Indexed"
        assert "--sweep" in args
