"""The dashboard's HTTP API against a real coordinator process: login, escaping, POST-only
state changes, one-time links, the live feed, TLS, and --dashboard-port."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .dashboard_util import (
    XSS,
    XSS_IMG,
    csrf_of,
    finish_run,
    finish_runs,
    login,
    loss_of,
    start_run,
    start_with_dashboard,
    stub,
    write_config,
)
from .harness import Cluster, Process, command
from .test_security import pki  # noqa: F401 - the fixture: a CA and a server certificate

pytestmark = pytest.mark.e2e

# What would make a page load something from elsewhere (the report must have none).
LOADS = [
    r"(src|href|action|data)\s*=\s*[\"']?\s*(https?:)?//",
    r"url\(\s*[\"']?\s*(https?:)?//",
    r"@import",
    r"<link\b",
    r"<iframe\b",
    r"<script[^>]*\bsrc\s*=",
]


def test_every_page_and_endpoint_needs_the_token(cluster: Cluster, tmp_path: Path) -> None:
    url = start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    for path in ("", f"sweeps/{sweep_id}", f"runs/{sweep_id}-1", "static/plotly.min.js"):
        r = requests.get(url + path)
        assert r.status_code == 401, path
        assert 'name="token"' in r.text  # the login form
    for path in ("api/sweeps", f"api/sweeps/{sweep_id}", f"api/sweeps/{sweep_id}/live"):
        r = requests.get(url + path)
        assert r.status_code == 401 and "log in" in r.json()["error"], path
    assert requests.post(url + f"api/sweeps/{sweep_id}/pause").status_code == 401

    wrong = requests.post(url + "login", data={"token": "nope"}, allow_redirects=False)
    assert wrong.status_code == 401 and "Wrong token" in wrong.text
    assert "Set-Cookie" not in wrong.headers

    r = requests.post(url + "login", data={"token": cluster.token, "next": f"/sweeps/{sweep_id}"},
                      allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == f"/sweeps/{sweep_id}"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # A login never sends the browser elsewhere (an open redirect).
    r = requests.post(url + "login", data={"token": cluster.token, "next": "//evil.example/"},
                      allow_redirects=False)
    assert r.headers["Location"] == "/"

    s = login(url, cluster.token)
    assert s.get(url + f"api/sweeps/{sweep_id}").json()["sweep"]["id"] == sweep_id
    # Scripts may send the token instead of a cookie.
    bearer = {"Authorization": f"Bearer {cluster.token}"}
    assert requests.get(url + "api/sweeps", headers=bearer).status_code == 200
    assert requests.get(url + "api/sweeps", headers={"Authorization": "Bearer x"}
                        ).status_code == 401
    s.post(url + "logout", headers={"X-Sweepd-CSRF": csrf_of(s.get(url).text)})
    assert s.get(url + "api/sweeps").status_code == 401


def test_state_changes_only_by_post_with_the_csrf_header(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    url = start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    s = login(url, cluster.token)
    csrf = csrf_of(s.get(url + f"sweeps/{sweep_id}").text)
    action = url + f"api/sweeps/{sweep_id}/pause"
    assert s.get(action).status_code == 405
    assert cluster.sweep_state(sweep_id) == "RUNNING"
    # The cookie alone, as another site's form would send it: refused.
    r = s.post(action)
    assert r.status_code == 403 and "X-Sweepd-CSRF" in r.json()["error"]
    assert s.post(action, headers={"X-Sweepd-CSRF": "forged"}).status_code == 403
    assert cluster.sweep_state(sweep_id) == "RUNNING"
    r = s.post(action, headers={"X-Sweepd-CSRF": csrf})
    assert r.status_code == 200 and r.json()["sweep"]["state"] == "PAUSED"
    assert cluster.sweep_state(sweep_id) == "PAUSED"
    r = requests.post(url + f"api/sweeps/{sweep_id}/resume",
                      headers={"Authorization": f"Bearer {cluster.token}"})
    assert r.json()["sweep"]["state"] == "RUNNING"
    r = s.post(url + f"api/sweeps/{sweep_id}/explode", headers={"X-Sweepd-CSRF": csrf})
    assert r.status_code == 404 and "pause, resume, stop, cancel" in r.json()["error"]
    r = s.post(url + "api/sweeps/nosuch/stop", headers={"X-Sweepd-CSRF": csrf})
    assert r.status_code == 404 and "nosuch" in r.json()["error"]


def test_user_values_are_escaped(cluster: Cluster, tmp_path: Path) -> None:
    url = start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    finish_runs(stub(cluster), sweep_id, 3)
    s = login(url, cluster.token)
    page = s.get(url)
    assert XSS not in page.text and XSS_IMG not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # the sweep's name, as text
    # No script but the package's own files: an injected one would not run anyway.
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1
                                                                         ].split(";")[0]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert not re.search(r"<script>(?!</script>)", page.text.replace(
        '<script src="/static/', ""))
    doc = s.get(url + f"api/sweeps/{sweep_id}").json()
    assert doc["sweep"]["name"] == XSS  # data, for the page to set as text
    values = {spec["name"]: spec.get("values") for spec in doc["sweep"]["params"]}
    assert XSS in values["optimizer"] and XSS_IMG in values["optimizer"]
    missing = s.get(url + "api/sweeps/<b>x")
    # An unknown id comes back in the error as JSON data, never as a page.
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith(
        "application/json")
    assert s.get(url + "sweeps/<b>x").status_code == 404
    # The page shells carry no user value but escaped ids.
    run_page = s.get(url + f"runs/{sweep_id}-1").text
    assert f'data-id="{sweep_id}-1"' in run_page


def test_pages_data_and_plotly_served_from_the_package(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    url = start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    finished = finish_runs(stub(cluster), sweep_id, 12)
    s = login(url, cluster.token)
    doc = s.get(url + f"api/sweeps/{sweep_id}").json()
    assert doc["sweep"]["counts"] == {"FINISHED": 12}
    assert doc["sweep"]["planned"] == 40 and doc["sweep"]["ended"] == 12
    assert doc["sweep"]["best"]["run_id"] in finished
    assert [r["id"] for r in doc["runs"]] == finished
    assert set(doc["runs"][0]["params"]) == {"lr", "dropout", "optimizer"}
    assert set(doc["runs"][0]["metrics"]) == {"loss", "acc"}
    curves = s.get(url + f"api/sweeps/{sweep_id}/curves").json()
    assert curves["metric"] == "loss" and len(curves["curves"]) == 12
    assert [p[0] for p in curves["curves"][finished[0]]] == [0, 10, 20, 1000]
    run = s.get(url + f"api/runs/{finished[0]}").json()
    assert set(run["history"]) == {"loss", "acc"}
    assert [e["state"] for e in run["events"]] == ["ASSIGNED", "RUNNING", "FINISHED"]
    importance = s.get(url + f"api/sweeps/{sweep_id}/importance").json()
    # The same numbers as `sweep importance` (servicers/importance.py, cached).
    assert {p["param"] for p in importance["params"]} == {"lr", "dropout", "optimizer"}
    assert importance["runs_used"] == 12
    js = s.get(url + "static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    for name in ("dashboard.js", "figures.js", "style.css"):
        assert s.get(url + f"static/{name}").status_code == 200
    assert s.get(url + "static/..%2fapp.py").status_code == 404
    # Nothing the pages load comes from elsewhere.
    for name in ("dashboard.js", "figures.js", "style.css"):
        assert "http://" not in s.get(url + f"static/{name}").text
        assert "https://" not in s.get(url + f"static/{name}").text


def test_live_feed_pushes_a_finished_run_within_a_second(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    url = start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    grpc_stub = stub(cluster)
    run = start_run(grpc_stub, sweep_id)
    s = login(url, cluster.token)
    with s.get(url + f"api/sweeps/{sweep_id}/live", stream=True, timeout=30) as feed:
        assert feed.headers["Content-Type"].startswith("text/event-stream")
        events = _events(feed)
        first = next(events)
        assert first[0] == "sweep" and first[1]["sweep"]["counts"] == {"RUNNING": 1}
        finished_at = time.monotonic()
        finish_run(grpc_stub, run)
        while True:
            name, payload = next(events)
            if name == "runs" and any(r["id"] == run.id and r["state"] == "FINISHED"
                                      for r in payload["runs"]):
                break
        latency = time.monotonic() - finished_at
    print(f"live feed latency: {latency * 1000:.0f} ms")
    assert latency < 1.0


def test_run_feed_follows_new_metrics_and_the_end(cluster: Cluster, tmp_path: Path) -> None:
    url = start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    grpc_stub = stub(cluster)
    run = start_run(grpc_stub, sweep_id)
    s = login(url, cluster.token)
    first = s.get(url + f"api/runs/{run.id}").json()
    assert first["next_index"] == 3 and len(first["history"]["loss"]) == 3
    with s.get(url + f"api/runs/{run.id}/live?from=3", stream=True, timeout=30) as feed:
        events = _events(feed)
        name, payload = next(events)
        assert name == "run" and payload["run"]["state"] == "RUNNING"
        assert "history" not in payload  # nothing new since record 3
        finish_run(grpc_stub, run)
        seen: dict[str, list[list[float]]] = {}
        while True:
            name, payload = next(events)
            seen.update(payload.get("history", {}))
            if payload.get("run", {}).get("state") == "FINISHED":
                break
    assert seen["loss"] == [[1000, pytest.approx(loss_of(run))]]
    assert [e["state"] for e in payload["events"]][-1] == "FINISHED"


def test_open_live_feeds_do_not_hold_up_shutdown(cluster: Cluster, tmp_path: Path) -> None:
    url = start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    run = start_run(stub(cluster), sweep_id)
    s = login(url, cluster.token)
    with s.get(url + f"api/sweeps/{sweep_id}/live", stream=True, timeout=30) as feed, \
            s.get(url + f"api/runs/{run.id}/live", stream=True, timeout=30) as run_feed:
        assert next(_events(feed))[0] == "sweep"
        assert next(_events(run_feed))[0] == "run"
        assert cluster.coordinator is not None
        began = time.monotonic()
        cluster.coordinator.signal(signal.SIGTERM)
        assert cluster.coordinator.wait() == 0
        assert time.monotonic() - began < 15


def _events(response: requests.Response) -> Iterator[tuple[str, dict]]:
    name = ""
    for line in response.iter_lines():
        raw = line.decode()
        if raw.startswith("event: "):
            name = raw[7:]
        elif raw.startswith("data: "):
            yield name, json.loads(raw[6:])


def test_one_time_login_link_from_sweep_dashboard(cluster: Cluster) -> None:
    url = start_with_dashboard(cluster)
    out = cluster.sweep("dashboard").stdout.split()
    assert out[0] == url
    link = out[1]
    assert link.startswith(url + "login/link?") and cluster.token not in link
    page = requests.get(link)
    # Following the link changes nothing: it shows a button that POSTs its fields.
    assert page.status_code == 200 and 'method="post"' in page.text
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
    s = requests.Session()
    r = s.post(url + "login/link", data=fields, allow_redirects=False)
    assert r.status_code == 303 and "HttpOnly" in r.headers["Set-Cookie"]
    assert s.get(url + "api/sweeps").status_code == 200
    again = requests.post(url + "login/link", data=fields, allow_redirects=False)
    assert again.status_code == 401 and "used up or expired" in again.text
    forged = dict(fields, sig="0" * 64)
    assert requests.post(url + "login/link", data=forged).status_code == 401
    # Stopped, the coordinator takes its URL away: `sweep dashboard` says there is none.
    assert cluster.coordinator is not None
    cluster.coordinator.signal(signal.SIGTERM)
    assert cluster.coordinator.wait() == 0
    gone = cluster.sweep("dashboard", check=False)
    assert gone.returncode == 3 and "no dashboard" in gone.stderr


def test_dashboard_port_zero_turns_it_off(cluster: Cluster) -> None:
    proc = cluster.start_coordinator("--dashboard-port", "0")
    assert "sweepd dashboard at" not in proc.output()
    r = cluster.sweep("dashboard", check=False)
    assert r.returncode == 3 and "no dashboard" in r.stderr


def test_dashboard_port_in_use_is_refused_by_name(cluster: Cluster) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = Process(command("coordinator") + [
            "serve", "--port", "0", "--state-dir", str(cluster.state_dir),
            "--dashboard-port", str(port)], cluster.tmp / "taken.log", env=cluster.env)
        cluster.processes.append(proc)
        assert proc.wait() == 4, proc.output()
    assert "--dashboard-port" in proc.output() and f"port {port} is in use" in proc.output()


def test_https_with_the_coordinators_certificate(cluster: Cluster,
                                                 pki: dict[str, Path]) -> None:  # noqa: F811
    url = start_with_dashboard(cluster, "--tls-cert", str(pki["server.pem"]),
                               "--tls-key", str(pki["server.key"]))
    assert url.startswith("https://")
    ca = str(pki["ca.pem"])
    assert requests.get(url, verify=ca).status_code == 401
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url.replace("https://", "http://"), timeout=10)
    r = requests.post(url + "login", data={"token": cluster.token}, verify=ca,
                      allow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["Set-Cookie"]


def test_report_is_one_offline_file(cluster: Cluster, tmp_path: Path) -> None:
    start_with_dashboard(cluster)
    sweep_id = cluster.create(write_config(tmp_path))
    finish_runs(stub(cluster), sweep_id, 6)
    out = tmp_path / "report.html"
    done = cluster.sweep("report", sweep_id, "-o", str(out))
    assert "wrote" in done.stdout
    text = out.read_text()
    # Outside plotly's own bundle (whose links and map-tile URLs are never loaded: the CSP
    # below forbids it, and the browser test sees no fetch) there is no URL at all.
    bundle = re.search(r'<script id="plotly-js">.*?</script>', text, re.DOTALL)
    assert bundle is not None
    ours = text[:bundle.start()] + text[bundle.end():]
    assert "http://" not in ours and "https://" not in ours
    # Nothing to load: no external script, style, image, frame or import ...
    for pattern in LOADS:
        assert not re.search(pattern, ours, re.IGNORECASE), pattern
    # ... and the browser is told to load nothing even if something slipped in.
    assert "default-src 'none'" in text
    # User values are data inside it, escaped so that none can end its script element.
    assert XSS not in text and XSS_IMG not in text
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in text
    assert len(re.findall(r"<script\b", text)) == 4  # the data, plotly, figures, renderer
    missing = cluster.sweep("report", "nosuch", "-o", str(tmp_path / "x.html"), check=False)
    assert missing.returncode == 1 and "nosuch" in missing.stderr
    assert not (tmp_path / "x.html").exists()
