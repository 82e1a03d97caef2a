"""Helpers of the dashboard tests: a coordinator with its dashboard, runs finished through
the ask/tell API, a logged-in HTTP session."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import requests
from sweepd.v1 import common_pb2, sweeps_pb2, sweeps_pb2_grpc

from .harness import Cluster, wait_for

XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
CONFIG = f"""
name: '{XSS}'
method: random
run_cap: 40
metric: {{name: loss, goal: minimize}}
parameters:
  lr: {{distribution: log_uniform_values, min: 0.0001, max: 0.1}}
  dropout: {{min: 0.0, max: 0.5}}
  optimizer: {{values: ['{XSS}', '{XSS_IMG}', sgd]}}
"""


def start_with_dashboard(cluster: Cluster, *extra: str) -> str:
    """Starts the coordinator (``--port 0``: the dashboard on a free port too); its URL."""
    proc = cluster.start_coordinator(*extra)
    match = wait_for(lambda: re.search(r"sweepd dashboard at (\S+)", proc.output()),
                     what="the dashboard's URL")
    assert match is not None
    return match.group(1)


def write_config(tmp: Path, text: str = CONFIG) -> Path:
    path = tmp / "sweep.yaml"
    path.write_text(text)
    return path


def stub(cluster: Cluster) -> sweeps_pb2_grpc.SweepServiceStub:
    return sweeps_pb2_grpc.SweepServiceStub(cluster.channel())


def loss_of(run: common_pb2.Run) -> float:
    lr = run.params.fields["lr"].double_value
    dropout = run.params.fields["dropout"].double_value
    return (math.log10(lr) + 2.5) ** 2 + 0.3 * dropout


def start_run(s: sweeps_pb2_grpc.SweepServiceStub, sweep_id: str, steps: int = 3
              ) -> common_pb2.Run:
    """Takes a run as an ask/tell client and reports ``steps`` values of loss."""
    run = s.SuggestRun(sweeps_pb2.SuggestRunRequest(sweep_id=sweep_id, client_id="t")).run
    final = loss_of(run)
    s.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
        run_id=run.id, attempt=run.attempt, client_id="t",
        records=[common_pb2.MetricRecord(index=i, step=i * 10,
                                         values={"loss": final + 1.0 / (i + 1), "acc": 0.5})
                 for i in range(steps)]))
    return run


def finish_run(s: sweeps_pb2_grpc.SweepServiceStub, run: common_pb2.Run, steps: int = 3
               ) -> None:
    """Reports the final loss (after ``steps`` records of start_run) and finishes the run."""
    s.ReportMetrics(sweeps_pb2.ReportMetricsRequest(
        run_id=run.id, attempt=run.attempt, client_id="t",
        records=[common_pb2.MetricRecord(index=steps, step=1000,
                                         values={"loss": loss_of(run)})]))
    s.FinishRun(sweeps_pb2.FinishRunRequest(run_id=run.id, attempt=run.attempt, client_id="t",
                                            state=common_pb2.RUN_STATE_FINISHED))


def finish_runs(s: sweeps_pb2_grpc.SweepServiceStub, sweep_id: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        run = start_run(s, sweep_id)
        finish_run(s, run)
        ids.append(run.id)
    return ids


def login(url: str, token: str, **kwargs: Any) -> requests.Session:
    session = requests.Session()
    for key, value in kwargs.items():
        setattr(session, key, value)
    r = session.post(url + "login", data={"token": token, "next": "/"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    return session


def csrf_of(page_html: str) -> str:
    match = re.search(r'<meta name="sweepd-csrf" content="([^"]+)">', page_html)
    assert match, page_html
    return match.group(1)
