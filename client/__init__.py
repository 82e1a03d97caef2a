"""sweepd's thin client: the Python API, the ``sweep`` CLI and the in-run API.

    from sweepd.client import Client, sweep, run, agent
"""

from .agent import agent
from .api import Client, SweepdClientError, sweep
from .run import run

__all__ = ["Client", "SweepdClientError", "agent", "run", "sweep"]
