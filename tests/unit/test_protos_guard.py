"""protos/check.sh guards the API (#16): the protos pass buf lint (STANDARD + COMMENTS),
format and breaking as they are, and a renumbered field or an undocumented one is caught."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROTOS = Path(__file__).resolve().parents[2] / "protos"
CHECK = PROTOS / "check.sh"

pytestmark = pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                                reason="needs node and npm (buf comes from the npm registry)")


def _run(*argv: str | Path, cwd: Path = PROTOS) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS / "sweepd", copy / "sweepd",
                    ignore=shutil.ignore_patterns("*.py", "*.pyi", "py.typed", "__pycache__"))
    for name in ("buf.yaml", "api-baseline.binpb"):
        shutil.copy(PROTOS / name, copy / name)
    return copy


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_check_passes_and_catches_a_renumbered_or_undocumented_field(tmp_path: Path) -> None:
    # One test, not a fixture shared by several: under pytest-xdist two processes could run
    # the `npm ci` of check.sh in the same folder at once.
    done = _run("bash", CHECK)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lint, format and breaking clean" in done.stdout
    buf = PROTOS / "node_modules" / ".bin" / "buf"

    renumbered = _copy(tmp_path / "renumbered")
    _edit(renumbered / "sweepd/v1/sweeps.proto", "bool validate_only = 23;",
          "bool validate_only = 24;")
    done = _run(buf, "breaking", "--against", "api-baseline.binpb", cwd=renumbered)
    assert done.returncode != 0
    assert "validate_only" in done.stdout + done.stderr

    undocumented = _copy(tmp_path / "undocumented")
    _edit(undocumented / "sweepd/v1/sweeps.proto",
          "  // Keep streaming new output until the run ends; else end after what there is now.\n",
          "")
    done = _run(buf, "lint", cwd=undocumented)
    assert done.returncode != 0
    assert '"follow" should have a non-empty comment' in done.stdout + done.stderr

    unformatted = _copy(tmp_path / "unformatted")
    _edit(unformatted / "sweepd/v1/common.proto", "  string sweep_id = 2;", "  string  sweep_id=2;")
    done = _run(buf, "format", "--diff", "--exit-code", cwd=unformatted)
    assert done.returncode != 0
