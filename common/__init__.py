"""What every sweepd process shares: channel, token and TLS set-up (``transport``), typed
parameter values on the wire (``params``), names and defaults (``names``), the run-environment
contract and metrics-file format (``runfile``), a run's directory (``rundir``), how a run's
end becomes its outcome (``outcome``), and the worker-side command macros (``macros``).

``coordinator``, ``worker`` and ``client`` import this package and ``sweepd.v1``, never each
other. This package imports nothing of ours but ``sweepd.v1``, and nothing at all on import:
``from sweepd.client import run`` reaches ``runfile`` and must stay light.
"""
