"""Worker features through the real CLI: slots, GPUs, queues, max-concurrent, exit-when-idle."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .harness import Cluster, wait_for

pytestmark = pytest.mark.e2e

# Each run writes when it started and ended and which GPUs it saw; the test reads these spans
# from the run directories (one file per run, so concurrent runs never share a file).
SPAN = textwrap.dedent('''
    import json, os, sys, time
    start = time.time()
    time.sleep(float(os.environ.get("SPAN_SLEEP", "1.5")))
    span = {"run": os.environ["SWEEPD_RUN_ID"], "start": start, "end": time.time(),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}
    with open(os.path.join(os.environ["SWEEPD_RUN_DIR"], "span.json"), "w") as f:
        json.dump(span, f)
''')


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def grid(tmp: Path, n: int) -> Path:
    return write(tmp, f"grid{n}.yaml", f"""
        program: span.py
        method: grid
        parameters:
          i: {{values: {list(range(n))}}}
    """)


def spans(workdir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(workdir.glob(".sweepd/runs/*/span.json"))]


def max_overlap(items: list[dict[str, Any]]) -> int:
    """The most spans alive at one instant."""
    events = sorted([(s["start"], 1) for s in items] + [(s["end"], -1) for s in items],
                    key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    alive = peak = 0
    for _, delta in events:
        alive += delta
        peak = max(peak, alive)
    return peak


def overlapping(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["start"] < b["end"] and b["start"] < a["end"])


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    wd = tmp_path / "work"
    wd.mkdir()
    (wd / "span.py").write_text(SPAN)
    return wd


def test_three_slots_run_three_at_once_never_more(
    cluster: Cluster, workdir: Path, tmp_path: Path
) -> None:
    cluster.start_coordinator()
    sweep_id = cluster.create(grid(tmp_path, 6))
    worker = cluster.start_worker("--sweep", sweep_id, "--slots", "3", workdir=workdir)
    assert worker.wait() == 0, worker.output()
    got = spans(workdir)
    assert len(got) == 6
    assert max_overlap(got) == 3
    assert all(r["state"] == "FINISHED" for r in cluster.runs(sweep_id))


def test_gpus_each_run_sees_its_own_pair(cluster: Cluster, workdir: Path, tmp_path: Path) -> None:
    cluster.start_coordinator()
    sweep_id = cluster.create(grid(tmp_path, 6))
    worker = cluster.start_worker("--sweep", sweep_id, "--gpus", "0,1,2,3", "--gpus-per-run", "2",
                                  workdir=workdir, env={"SPAN_SLEEP": "2"})
    listed = wait_for(lambda: [w for w in cluster.sweep_json("workers") if w["connected"]],
                      what="the worker to connect")
    assert listed[0]["gpus"] == ["0", "1", "2", "3"]
    assert listed[0]["slots"] == 2
    assert listed[0]["queues"] == ["default"]
    assert worker.wait() == 0, worker.output()
    got = spans(workdir)
    assert len(got) == 6
    for s in got:
        ids = s["cuda"].split(",")
        assert len(ids) == 2 and set(ids) <= {"0", "1", "2", "3"}, s
    for i, a in enumerate(got):
        for b in got[i + 1:]:
            if overlapping(a, b):
                assert not set(a["cuda"].split(",")) & set(b["cuda"].split(",")), (a, b)
    assert max_overlap(got) == 2


def test_queues_and_max_concurrent(cluster: Cluster, workdir: Path, tmp_path: Path) -> None:
    cluster.start_coordinator()
    sweep_id = cluster.sweep("create", str(grid(tmp_path, 4)), "--queue", "a",
                             "--max-concurrent", "2").stdout.split()[0]
    assert cluster.sweep_json("show", sweep_id)["queue"] == "a"
    other_dir = tmp_path / "other"
    other = cluster.start_worker("--queue", "b", "--slots", "4", "--exit-when-idle", "4",
                                 workdir=other_dir)
    wait_for(lambda: [w for w in cluster.sweep_json("workers")
                      if w["connected"] and w["queues"] == ["b"]],
             what="the queue-b worker to connect")
    worker = cluster.start_worker("--sweep", sweep_id, "--queue", "a", "--slots", "4",
                                  workdir=workdir)
    assert worker.wait() == 0, worker.output()
    got = spans(workdir)
    assert len(got) == 4
    assert max_overlap(got) == 2  # four free slots, but the sweep allows two at once
    # The queue-b worker never ran anything, and left on its own once idle long enough.
    assert other.wait() == 0, other.output()
    assert "--exit-when-idle" in other.output()
    assert not list(other_dir.glob(".sweepd/runs/*"))
    assert {r["worker_id"] for r in cluster.runs(sweep_id)} != {""}
