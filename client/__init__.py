"""sweepd's thin client: the Python API, the ``sweep`` CLI and the in-run API.

    from sweepd.client import Client, sweep, run, agent

``from sweepd.client import run`` is the first line of every training script, so it must stay
light: the in-run API needs no gRPC, and everything else here is imported only when first used
(PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .run import run

if TYPE_CHECKING:
    from .agent import AgentFailedError, agent
    from .api import Client, SweepdClientError, sweep

__all__ = ["AgentFailedError", "Client", "SweepdClientError", "agent", "run", "sweep"]

# Where each lazily imported name lives.
_LAZY = {"agent": ".agent", "AgentFailedError": ".agent", "Client": ".api",
         "SweepdClientError": ".api", "sweep": ".api"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
