"""Dashboard benchmark: time to open a sweep's page, and the JSON behind it, by sweep size.

One coordinator on loopback holds one finished sweep per size (default 100, 1,000 and 10,000
runs), each run with --records metric records (loss and acc per step). The runs are written
straight into the coordinator's SQLite store while it is stopped, as
tests/e2e/test_limits_paging.py does (11,000 runs in ~2 s, where ask/tell over gRPC would
cost a round trip per record). Then, per size:

- each JSON call the sweep page makes (``/api/sweeps/{id}``, ``.../curves``,
  ``.../importance``) and the page's HTML, asked with ``Authorization: Bearer`` over
  loopback: time to the response's headers (aiohttp builds the whole JSON body before it
  sends them, so this is the server's time), time to the last byte, and the body's size;
  median of --repeats calls; importance's first call (the model's fit) apart from the
  cached answer later calls get;
- the page in Debian's headless chromium (selenium + chromedriver), logged in, plotly already
  in the browser's cache: ms from navigation to the summary, runs table and optimisation
  history drawn (the page's own ``data-loaded`` mark), to the parallel-coordinates draw call
  returned and a frame later (WebGL is SwiftShader, software, in headless chromium), to the
  importance panel filled; the longest main-thread task; median of --loads page loads. And
  the time the page's own JavaScript takes to build the parallel-coordinates figure.

Everything it starts (coordinator, chromedriver, chromium) is stopped at the end, its temp
dir removed.

    python bench/dashboard.py
    python bench/dashboard.py --sizes 100,1000 --loads 1
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import requests
from sweepd.coordinator.config import RenderedArgv
from sweepd.coordinator.domain import MetricRecord, Run, RunState
from sweepd.coordinator.store import DB_FILENAME, Store

T = TypeVar("T")
BIN = Path(sys.executable).parent
# The sweep that takes scikit-learn's import before anything is measured.
WARMUP_RUNS = 30
# The dashboard's cap on parallel-coordinates lines (coordinator/dashboard/static/figures.js).
PARCOORDS_MAX_LINES = 2000
# A page loads plotly (4.8 MB) and draws 10,000 lines on a possibly loaded machine.
PAGE_TIMEOUT_S = 300.0
CONFIG = """name: bench-{size}
program: train.py
method: random
run_cap: {size}
metric: {{name: loss, goal: minimize}}
parameters:
  lr: {{distribution: log_uniform_values, min: 0.00001, max: 0.1}}
  dropout: {{min: 0.0, max: 0.5}}
  layers: {{min: 1, max: 8}}
  batch_size: {{values: [16, 32, 64, 128]}}
  optimizer: {{values: [adam, sgd, rmsprop]}}
"""
# Records when the page's figures appear, from the first byte of the document on (installed
# through the DevTools protocol, so the page's CSP does not apply to it).
OBSERVER = """
window.__bench = {longest: 0};
// The longest main-thread task: how long the page ignored clicks and scrolls at a stretch.
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) {
    window.__bench.longest = Math.max(window.__bench.longest, e.duration);
  });
}).observe({type: 'longtask', buffered: true});
new MutationObserver(function () {
  var b = window.__bench;
  var par = document.getElementById('parcoords');
  if (!b.parcoords && par && par.hasAttribute('data-lines')) {
    b.parcoords = -1;
    b.parcoordsCall = performance.now();
    b.lines = Number(par.getAttribute('data-lines'));
    // The draw call has returned; the plot is on screen a frame later.
    requestAnimationFrame(function () {
      setTimeout(function () { b.parcoords = performance.now(); }, 0);
    });
  }
  var imp = document.getElementById('importance-table');
  var notes = document.getElementById('importance-notes');
  if (!b.importance && ((imp && imp.rows.length) || (notes && notes.textContent))) {
    b.importance = performance.now();
  }
}).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
"""

# The page's own JavaScript alone building the parallel-coordinates figure (no plotly, no
# WebGL): what of the plot's time is ours.
PREP = """
var done = arguments[arguments.length - 1];
fetch('/api/sweeps/' + arguments[0], {credentials: 'same-origin'}).then(r => r.json()).then(doc => {
  var t = performance.now();
  SweepFigures.parallel(doc.sweep, doc.runs);
  done(performance.now() - t);
});
"""


def command(name: str) -> list[str]:
    script = BIN / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", {"coordinator": "sweepd.coordinator",
                                   "sweep": "sweepd.client"}[name]]


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


class Coordinator:
    """``coordinator serve --port 0`` (the dashboard on a free port too) in its own session,
    so that kill() takes everything it started."""

    def __init__(self, state_dir: Path, log: Path, env: dict[str, str]) -> None:
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command("coordinator") + ["serve", "--port", "0", "--state-dir", str(state_dir)],
            stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            text = wait_for(self._started, 120, "the coordinator and its dashboard")
        except BaseException:
            self.stop()
            raise
        port = re.search(r"listening on \S+:(\d+)", text).group(1)  # type: ignore[union-attr]
        self.address = f"127.0.0.1:{port}"
        self.url = re.search(r"sweepd dashboard at (\S+)", text).group(1)  # type: ignore[union-attr]

    def _started(self) -> str:
        text = self.log.read_text(errors="replace")
        if self.proc.poll() is not None:
            raise RuntimeError(f"coordinator exited:\n{text}")
        ok = re.search(r"listening on \S+:\d+", text) and "sweepd dashboard at" in text
        return text if ok else ""

    def stop(self) -> None:
        """SIGTERM (the store closes cleanly), SIGKILL to the session if that hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._out.close()


def fill(state_dir: Path, sizes: dict[str, int], records: int) -> None:
    """Finished runs with metric histories, stored as the coordinator stores them."""
    rng = random.Random(0)
    store = Store(state_dir / DB_FILENAME)
    try:
        sweeps = {s.id: s for s in store.load_sweeps()}
        with store.transaction():
            for sweep_id, size in sizes.items():
                for n in range(1, size + 1):
                    point: dict[tuple[str, ...], Any] = {
                        ("lr",): 10 ** rng.uniform(-5, -1), ("dropout",): rng.uniform(0, 0.5),
                        ("layers",): rng.randint(1, 8),
                        ("batch_size",): rng.choice([16, 32, 64, 128]),
                        ("optimizer",): rng.choice(["adam", "sgd", "rmsprop"]),
                    }
                    final = ((math.log10(point[("lr",)]) + 3) ** 2 + point[("dropout",)]
                             + (0.3 if point[("optimizer",)] == "sgd" else 0.0)
                             + rng.gauss(0, 0.05))
                    t0 = 1.7e9 + n * 10
                    history = [MetricRecord(index=i, step=(i + 1) * 50, time=t0 + i * 0.4,
                                            values={"loss": final + 2.0 / (i + 1),
                                                    "acc": 1 - 0.5 / (i + 1)})
                               for i in range(records)]
                    params = {path[0]: v for path, v in point.items()}
                    run_id = f"{sweep_id}-{n}"
                    args = [f"--{k}={v}" for k, v in params.items()]
                    store.insert_run(Run(
                        id=run_id, sweep_id=sweep_id, number=n, state=RunState.FINISHED,
                        point=point, created_at=t0, attempt=1, worker_id="w1",
                        command=RenderedArgv(["${interpreter}", "train.py", *args],
                                             tuple(range(2, 2 + len(args)))),
                        argv=["python", "train.py", *args],
                        exit_code=0, started_at=t0 + 0.1, ended_at=t0 + records * 0.4,
                        summary=dict(history[-1].values), next_record_index=records))
                    store.insert_metrics(run_id, 1, history)
                sweep = sweeps[sweep_id]
                sweep.run_count = size
                store.update_sweep(sweep)
    finally:
        store.close()


def timed_get(session: requests.Session, url: str) -> tuple[float, float, int]:
    """ms to the headers, ms to the last byte, body bytes."""
    started = time.perf_counter()
    r = session.get(url, stream=True, timeout=PAGE_TIMEOUT_S)
    headers = time.perf_counter()
    body = r.content
    done = time.perf_counter()
    r.raise_for_status()
    return (headers - started) * 1000, (done - started) * 1000, len(body)


def measure_api(url: str, token: str, sweep_id: str, repeats: int
                ) -> dict[str, tuple[float, float, int]]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    calls = {"/sweeps/{id} (page)": f"{url}sweeps/{sweep_id}",
             "/api/sweeps/{id}": f"{url}api/sweeps/{sweep_id}",
             "/api/sweeps/{id}/curves": f"{url}api/sweeps/{sweep_id}/curves",
             "/api/sweeps/{id}/importance": f"{url}api/sweeps/{sweep_id}/importance"}
    out = {}
    for name, target in calls.items():
        if "importance" in name:
            # The first call fits the model; later ones get the coordinator's cached answer
            # (until the set of finished runs changes), as the page does on a reload.
            out[name + " (fit)"] = timed_get(session, target)
            name += " (cached)"
        times = [timed_get(session, target) for _ in range(repeats)]
        out[name] = (statistics.median(t[0] for t in times),
                     statistics.median(t[1] for t in times), times[-1][2])
    return out


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        raise SystemExit("chromium or chromedriver is missing: run tests/setup_browser.sh as"
                         " root (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,2200",
                # WebGL (parallel coordinates) in software, as in the tests.
                "--enable-unsafe-swiftshader", "--use-angle=swiftshader"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    driver.set_script_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(driver: Any, url: str, token: str) -> None:
    driver.get(url + "login")
    driver.find_element("id", "token").send_keys(token)
    driver.find_element("id", "login").click()
    wait_for(lambda: not driver.find_elements("id", "token"), PAGE_TIMEOUT_S, "the login")
    # The sweeps page loads plotly.min.js, the other scripts and the stylesheet into the
    # cache (max-age 3600): the loads measured below are those of a user who has the
    # dashboard open already.
    driver.get(url)
    wait_for(lambda: driver.execute_script(
        "return performance.getEntriesByType('resource').some("
        "e => e.name.endsWith('plotly.min.js') && e.responseEnd > 0)"),
        PAGE_TIMEOUT_S, "plotly.min.js")


def load_page(driver: Any, url: str, sweep_id: str) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(f"{url}sweeps/{sweep_id}")
    got = wait_for(lambda: driver.execute_script(
        "var b = window.__bench || {};"
        "var loaded = document.body.getAttribute('data-loaded');"
        "return (loaded && b.parcoords > 0 && b.importance)"
        " ? {loaded: Number(loaded), parcoords: b.parcoords, call: b.parcoordsCall,"
        "    lines: b.lines, importance: b.importance, longest: b.longest,"
        "    html: performance.getEntriesByType('navigation')[0].responseEnd,"
        "    api: performance.getEntriesByType('resource').find("
        "      e => e.name.endsWith('/api/sweeps/' + arguments[0])).responseEnd} : null",
        sweep_id),
        PAGE_TIMEOUT_S, "the sweep page's table, parallel coordinates and importance")
    return {k: float(v) for k, v in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000",
                        help="runs per sweep, comma-separated (default 100,1000,10000)")
    parser.add_argument("--records", type=int, default=20,
                        help="metric records per run (default 20)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="calls per JSON endpoint, the median shown (default 5)")
    parser.add_argument("--loads", type=int, default=5,
                        help="page loads per sweep in the browser, the median shown (default 5)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="sweepd-dashbench-"))
    state_dir = tmp / "state"
    env = dict(os.environ)
    for var in ("SWEEPD_COORDINATOR", "SWEEPD_TOKEN", "SWEEPD_TLS_CA", "SWEEPD_TLS_CERT",
                "SWEEPD_TLS_KEY"):
        env.pop(var, None)
    env["SWEEPD_STATE_DIR"] = str(state_dir)
    env["PYTHONUNBUFFERED"] = "1"
    coordinator: Coordinator | None = None
    try:
        coordinator = Coordinator(state_dir, tmp / "coordinator-0.log", env)
        ids: dict[str, int] = {}
        for size in sizes:
            config = tmp / f"sweep-{size}.yaml"
            config.write_text(CONFIG.format(size=size))
            out = subprocess.run(command("sweep") + ["create", "--coordinator",
                                                     coordinator.address, str(config)],
                                 capture_output=True, text=True, env=env, timeout=120,
                                 check=True).stdout
            ids[out.strip().splitlines()[0]] = size
        config = tmp / "sweep-warmup.yaml"
        config.write_text(CONFIG.format(size=WARMUP_RUNS))
        warmup = subprocess.run(command("sweep") + ["create", "--coordinator",
                                                    coordinator.address, str(config)],
                                capture_output=True, text=True, env=env, timeout=120,
                                check=True).stdout.strip().splitlines()[0]
        coordinator.stop()
        started = time.monotonic()
        fill(state_dir, {**ids, warmup: WARMUP_RUNS}, args.records)
        print(f"stored {sum(ids.values())} runs x {args.records} records in"
              f" {time.monotonic() - started:.1f} s", flush=True)
        started = time.monotonic()
        coordinator = Coordinator(state_dir, tmp / "coordinator-1.log", env)
        print(f"coordinator restarted with them in {time.monotonic() - started:.1f} s",
              flush=True)
        token = (state_dir / "token").read_text().strip()

        # The coordinator imports scikit-learn on its first importance fit: done here on a
        # small sweep, so that the figures per size are the fits alone.
        warm = time.perf_counter()
        requests.get(f"{coordinator.url}api/sweeps/{warmup}/importance", timeout=PAGE_TIMEOUT_S,
                     headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        print(f"first importance call (imports scikit-learn, {WARMUP_RUNS} runs):"
              f" {(time.perf_counter() - warm) * 1000:.0f} ms", flush=True)
        api = {}
        for sweep_id, size in ids.items():
            api[size] = measure_api(coordinator.url, token, sweep_id, args.repeats)
            print(f"  API measured for {size} runs", flush=True)
        pages: dict[int, list[dict[str, float]]] = {}
        prep: dict[int, float] = {}
        with browser() as driver:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": OBSERVER})
            log_in(driver, coordinator.url, token)
            for sweep_id, size in ids.items():
                pages[size] = []
                for _ in range(args.loads):
                    pages[size].append(load_page(driver, coordinator.url, sweep_id))
                    # Above PARCOORDS_MAX_LINES (figures.js) the page draws the best runs and
                    # a sample of the others, and says so.
                    expected = min(size, PARCOORDS_MAX_LINES)
                    if int(pages[size][-1]["lines"]) != expected:
                        raise RuntimeError(f"parallel coordinates drew {pages[size][-1]['lines']}"
                                           f" lines for a sweep of {size} finished runs, not"
                                           f" {expected}")
                prep[size] = driver.execute_async_script(PREP, sweep_id)
                print(f"  page measured for {size} runs", flush=True)
        report(api, pages, prep, args)
    finally:
        if coordinator is not None:
            coordinator.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def report(api: dict[int, dict[str, tuple[float, float, int]]],
           pages: dict[int, list[dict[str, float]]], prep: dict[int, float],
           args: argparse.Namespace) -> None:
    print(f"\nJSON behind the sweep page (Bearer token, loopback; median of {args.repeats}"
          " calls, the importance fit once)")
    print(f"{'runs':>6}  {'GET':<38} {'ms to headers':>14} {'ms to last byte':>16}"
          f" {'body':>10}")
    for size, calls in api.items():
        for name, (headers, done, body) in calls.items():
            print(f"{size:>6}  {name:<38} {headers:14.0f} {done:16.0f} {_size(body):>10}")
    print(f"\nsweep page in headless chromium (plotly cached; median of {args.loads} loads):"
          " ms from navigation")
    print(f"{'runs':>6} {'html':>6} {'runs JSON':>10} {'table+history':>14}"
          f" {'parcoords call':>15} {'parcoords drawn':>16} {'importance':>11} {'lines':>6}"
          f" {'longest task':>13} {'figure JS':>10}")
    for size, loads in pages.items():
        def med(key: str, loads: list[dict[str, float]] = loads) -> float:
            return statistics.median(x[key] for x in loads)
        print(f"{size:>6} {med('html'):6.0f} {med('api'):10.0f} {med('loaded'):14.0f}"
              f" {med('call'):15.0f} {med('parcoords'):16.0f} {med('importance'):11.0f}"
              f" {int(med('lines')):>6} {med('longest'):13.0f} {prep[size]:10.1f}")
    print("parcoords drawn, each load: " + "; ".join(
        f"{size}: " + ", ".join(f"{x['parcoords']:.0f}" for x in loads)
        for size, loads in pages.items()))


if __name__ == "__main__":
    main()
