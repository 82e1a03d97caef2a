"""The map's dependency rule (DESIGN.md): coordinator, worker and client each import sweepd.v1
and sweepd.common, never each other; common imports nothing of ours but sweepd.v1."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("coordinator", "worker", "client", "common")
# The one deliberate edge: `sweep validate` runs the coordinator's exact config parser with no
# coordinator running (lazily imported inside the command, so the client stays light).
ALLOWED = {("client/validate.py", "sweepd.coordinator.config")}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_import_only_the_api_and_common(component: str) -> None:
    others = [c for c in COMPONENTS if c != component and c != "common"]
    if component == "common":
        others = ["coordinator", "worker", "client"]
    wrong = []
    for path in sorted((ROOT / component).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for module in _imports(path):
            for other in others:
                crosses = module == f"sweepd.{other}" or module.startswith(f"sweepd.{other}.")
                if crosses and (rel, module) not in ALLOWED:
                    wrong.append(f"{rel} imports {module}")
    assert wrong == []
