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


# Inside the coordinator, config sits below search and stopping (they read its typed output);
# an import the other way, even a lazy one inside a function, is a cycle on the map.
BELOW = {"config": ("search", "stopping", "dispatcher", "servicers", "store", "dashboard")}


def _coordinator_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, resolved to ``sweepd.coordinator.x.y`` when relative."""
    package = ["sweepd", *path.relative_to(ROOT).parent.parts]
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [module] if node.module else [f"{module}.{a.name}" for a in node.names]
    return found


@pytest.mark.parametrize("low", sorted(BELOW))
def test_coordinator_layers_below_import_nothing_above(low: str) -> None:
    wrong = []
    for path in sorted((ROOT / "coordinator" / low).rglob("*.py")):
        for module in _coordinator_modules(path):
            for high in BELOW[low]:
                name = f"sweepd.coordinator.{high}"
                if module == name or module.startswith(f"{name}."):
                    wrong.append(f"{path.relative_to(ROOT).as_posix()} imports {module}")
    assert wrong == []
