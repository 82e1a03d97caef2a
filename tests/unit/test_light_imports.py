"""`from sweepd.client import run`, the first line of every training script, stays light."""

from __future__ import annotations

import subprocess
import sys


def test_the_in_run_api_imports_no_grpc_protobuf_or_multiprocessing() -> None:
    probe = (
        "import sys\n"
        "from sweepd.client import run\n"
        "heavy = [m for m in ('grpc', 'google.protobuf', 'multiprocessing', 'numpy')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == ""


def test_the_rest_of_the_client_is_still_importable_by_name() -> None:
    import sweepd.client as client

    assert client.Client.__name__ == "Client"
    assert callable(client.agent) and callable(client.sweep)
    assert issubclass(client.SweepdClientError, Exception)
