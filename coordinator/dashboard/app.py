"""The dashboard's HTTP routes: pages, their JSON, the live feeds, and the sweep controls.

Pages are small HTML shells (the sweeps page is a complete table without JavaScript); the
figures are drawn in the browser from the JSON below by static/figures.js with plotly's own
bundle, served from the installed ``plotly`` package. Live pages follow server-sent events
fed by the dispatcher's watches, the same change feed as WatchSweep.

Routes (every one needs a session cookie, or ``Authorization: Bearer <token>`` for scripts,
except the login ones and the login page's stylesheet):

- ``GET /``, ``/sweeps/{id}``, ``/runs/{id}``: pages.
- ``GET /api/sweeps``, ``/api/sweeps/{id}``, ``/api/sweeps/{id}/importance``,
  ``/api/sweeps/{id}/curves``, ``/api/runs/{id}``: JSON.
- ``GET /api/sweeps/{id}/live``, ``/api/runs/{id}/live``: server-sent events.
- ``POST /api/sweeps/{id}/{pause|resume|stop|cancel}``: with the session's CSRF header (or
  the bearer token).
- ``GET|POST /login``, ``GET|POST /login/link``, ``POST /logout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..dispatcher import Dispatcher, SweepView, SweepWatch
from ..domain import Run
from ..errors import FailedPrecondition, NotFound, SweepdError, Unavailable
from ..servicers.importance import importance_response
from . import data
from .auth import CSRF_HEADER, SESSION_COOKIE, SESSION_TTL_S, Session, Sessions, same_secret
from .report import STATIC, report_html

log = logging.getLogger("sweepd.dashboard")

# A live page gets the changes of this long in one message: a burst of metric reports from
# many runs is one update per run, and the page still shows a change well within 1 s.
LIVE_BATCH_S = 0.1
# How often a live feed looks at what no watch announces: the sweep's own state (pause,
# stop) and a running run's output.
LIVE_POLL_S = 0.5
# A comment line this often keeps proxies and browsers from closing an idle feed.
LIVE_KEEPALIVE_S = 15.0
# The sweep page draws metric curves for at most this many runs (the newest, and the best):
# beyond that the lines are unreadable and the history costs a store read per run.
CURVE_RUNS = 200
# The run page shows this much of the run's output.
LOG_TAIL_BYTES = 64 * 1024
ACTIONS = ("pause", "resume", "stop", "cancel")
# Nothing but this origin's own files: no CDN, no font service, no inline script (the pages
# carry no script of their own). Plotly needs inline styles, and regl (its WebGL layer, used
# by parallel coordinates) compiles its shaders' glue code with Function().
CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline';"
       " img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none';"
       " base-uri 'none'; form-action 'self'")
_PUBLIC = frozenset({"/login", "/login/link", "/static/style.css"})


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class Dashboard:
    def __init__(self, dispatcher: Dispatcher, sessions: Sessions, *, secure: bool) -> None:
        self.d = dispatcher
        self.sessions = sessions
        # Cookies of an HTTPS dashboard are never sent over plain HTTP.
        self.secure = secure
        self.closing = asyncio.Event()
        self.app = web.Application(middlewares=[self._headers, self._auth])
        r = self.app.router
        r.add_get("/", self.sweeps_page)
        r.add_get("/sweeps/{sweep_id}", self.sweep_page)
        r.add_get("/runs/{run_id}", self.run_page)
        r.add_get("/login", self.login_form)
        r.add_post("/login", self.login)
        r.add_get("/login/link", self.link_form)
        r.add_post("/login/link", self.link_login)
        r.add_post("/logout", self.logout)
        r.add_get("/api/sweeps", self.api_sweeps)
        r.add_get("/api/sweeps/live", self.live_sweeps)
        r.add_get("/api/sweeps/{sweep_id}", self.api_sweep)
        r.add_get("/api/sweeps/{sweep_id}/importance", self.api_importance)
        r.add_get("/api/sweeps/{sweep_id}/curves", self.api_curves)
        r.add_get("/api/sweeps/{sweep_id}/report", self.api_report)
        r.add_get("/api/sweeps/{sweep_id}/live", self.live_sweep)
        r.add_post("/api/sweeps/{sweep_id}/{action}", self.api_action)
        r.add_get("/api/runs/{run_id}", self.api_run)
        r.add_get("/api/runs/{run_id}/live", self.live_run)
        r.add_get("/static/{name}", self.static)

    # -- middlewares ----------------------------------------------------------------------

    @web.middleware
    async def _headers(self, request: web.Request,
                       handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
        try:
            if request.method == "GET":
                await self._settled()
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        except SweepdError as exc:
            status = 404 if isinstance(exc, NotFound) else (
                409 if isinstance(exc, FailedPrecondition) else 400)
            response = web.json_response({"error": str(exc)}, status=status)
        if not response.prepared:
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "no-referrer")
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _settled(self) -> None:
        """Waits for an open group commit of ask/tell calls, so that a page or a live batch
        does not show a change that a failed commit then takes back."""
        with contextlib.suppress(Unavailable):
            await self.d.durable()

    @web.middleware
    async def _auth(self, request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if request.path in _PUBLIC or not self.sessions.required:
            request["session"] = None
            return await handler(request)
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        bearer = request.headers.get("Authorization", "")
        by_token = bearer.startswith("Bearer ") and self.sessions.token_matches(bearer[7:])
        if session is None and not by_token:
            if request.path.startswith("/api/") or request.method != "GET":
                raise web.HTTPUnauthorized(
                    text=json.dumps({"error": "log in first: open the dashboard's /login page"
                                     " and paste the coordinator's token, or send"
                                     " Authorization: Bearer <token>"}),
                    content_type="application/json")
            return self._login_page(request.path_qs, status=401)
        if request.method == "POST" and not by_token:
            # The cookie alone would let another site's form act as the user (CSRF).
            assert session is not None
            if not same_secret(request.headers.get(CSRF_HEADER, ""), session.csrf):
                raise web.HTTPForbidden(
                    text=json.dumps({"error": f"missing or wrong {CSRF_HEADER} header: send the"
                                     " value of the page's sweepd-csrf meta tag"}),
                    content_type="application/json")
        request["session"] = session
        return await handler(request)

    # -- login ----------------------------------------------------------------------------

    def _login_page(self, next_path: str, *, status: int = 200, error: str = "") -> web.Response:
        body = _LOGIN.format(next=html.escape(_local(next_path)),
                             error=f'<p class="error">{html.escape(error)}</p>' if error else "")
        return web.Response(text=body, content_type="text/html", status=status)

    async def login_form(self, request: web.Request) -> web.Response:
        return self._login_page(request.query.get("next", "/"))

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        next_path = _local(str(form.get("next", "/")))
        if not self.sessions.token_matches(str(form.get("token", "")).strip()):
            return self._login_page(next_path, status=401,
                                    error="Wrong token. It is in the coordinator's state dir,"
                                    " file 'token' (printed when the coordinator starts).")
        return self._logged_in(next_path)

    async def link_form(self, request: web.Request) -> web.Response:
        # A GET changes nothing: the link shows a button that POSTs its fields.
        q = request.query
        fields = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(q.get(k, ""))}">'
            for k in ("nonce", "expires", "sig"))
        return web.Response(text=_LINK.format(fields=fields), content_type="text/html")

    async def link_login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self.sessions.link_matches(str(form.get("nonce", "")),
                                          str(form.get("expires", "")),
                                          str(form.get("sig", ""))):
            return self._login_page("/", status=401, error="This login link is used up or"
                                    " expired: run `sweep dashboard` again, or paste the token.")
        return self._logged_in("/")

    def _logged_in(self, next_path: str) -> web.Response:
        response = web.HTTPSeeOther(next_path)
        response.set_cookie(SESSION_COOKIE, self.sessions.create(), httponly=True,
                            samesite="Strict", secure=self.secure, path="/",
                            max_age=int(SESSION_TTL_S))
        return response

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.end(request.cookies.get(SESSION_COOKIE))
        response = web.HTTPSeeOther("/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages ----------------------------------------------------------------------------

    def _page(self, request: web.Request, page: str, title: str, body: str,
              ident: str = "") -> web.Response:
        session: Session | None = request.get("session")
        text = _PAGE.format(
            title=html.escape(title), page=page, ident=html.escape(ident),
            csrf=html.escape(session.csrf if session else ""), body=body,
            logout=('<form method="post" action="/logout" class="logout">'
                    '<button type="submit">Log out</button></form>'
                    if self.sessions.required and session else ""))
        return web.Response(text=text, content_type="text/html")

    async def sweeps_page(self, request: web.Request) -> web.Response:
        # Server-rendered: the list reads without JavaScript.
        rows = []
        now = self.d.now()
        for view in self.d.list_sweeps():
            s = data.sweep_summary(view, self.d.best_run(view))
            best = s["best"]["value"] if s["best"] else None
            progress = f"{s['ended']} / {s['planned']}" if s["planned"] else f"{s['ended']}"
            cells = [
                f'<a href="/sweeps/{quote(s["id"])}">{html.escape(s["id"])}</a>',
                html.escape(s["name"]), html.escape(s["state"]), html.escape(s["method"]),
                html.escape(progress),
                html.escape(f"{s['metric']} = {best:.6g}" if best is not None else "–"),
                html.escape(_age(now - s["created_at"])),
            ]
            rows.append(f'<tr data-sweep="{html.escape(s["id"])}">'
                        + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        table = ('<table id="sweeps"><thead><tr><th>Sweep</th><th>Name</th><th>State</th>'
                 "<th>Method</th><th>Progress</th><th>Best</th><th>Age</th></tr></thead><tbody>"
                 + "".join(rows) + "</tbody></table>")
        empty = "" if rows else ('<p id="no-sweeps">No sweeps yet: create one with'
                                 " <code>sweep create sweep.yaml</code>.</p>")
        return self._page(request, "sweeps", "Sweeps", f"<h1>Sweeps</h1>{empty}{table}")

    async def sweep_page(self, request: web.Request) -> web.Response:
        view = self.d.get_sweep(request.match_info["sweep_id"])
        return self._page(request, "sweep", f"Sweep {view.sweep.id}", _SWEEP_BODY,
                          view.sweep.id)

    async def run_page(self, request: web.Request) -> web.Response:
        run = self.d.get_run(request.match_info["run_id"])
        return self._page(request, "run", f"Run {run.id}", _RUN_BODY, run.id)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        response: web.StreamResponse
        if name == "plotly.min.js":
            response = web.FileResponse(_plotly_js())
        else:
            item = STATIC / name
            if "/" in name or name.startswith(".") or not item.is_file():
                raise web.HTTPNotFound()
            kind = {"js": "text/javascript", "css": "text/css"}.get(name.rsplit(".", 1)[-1],
                                                                 "application/octet-stream")
            response = web.Response(body=item.read_bytes(), content_type=kind)
        # The package's files change only with an upgrade, which restarts the coordinator.
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response

    # -- JSON -----------------------------------------------------------------------------

    async def api_sweeps(self, request: web.Request) -> web.Response:
        return web.json_response({"sweeps": [data.sweep_summary(v, self.d.best_run(v))
                                             for v in self.d.list_sweeps()]})

    async def api_sweep(self, request: web.Request) -> web.Response:
        view = self.d.get_sweep(request.match_info["sweep_id"])
        return web.json_response(data.sweep_document(view, self.d.best_run(view)))

    async def api_importance(self, request: web.Request) -> web.Response:
        return web.json_response(await self._importance(request.match_info["sweep_id"]))

    async def _importance(self, sweep_id: str) -> dict[str, Any]:
        view = self.d.get_sweep(sweep_id)
        try:
            response = await importance_response(sweep_id, list(view.runs.values()),
                                                 view.metric_name)
        except FailedPrecondition as exc:
            # Not an error of the page: too few runs yet, which the panel says.
            return {"params": [], "notices": [str(exc)]}
        return data.importance_document(response)

    async def api_curves(self, request: web.Request) -> web.Response:
        """The sweep metric's curve per run (``?runs=a,b`` for those runs only, as live pages
        ask for the runs that changed)."""
        view = self.d.get_sweep(request.match_info["sweep_id"])
        wanted = request.query.get("runs")
        ids = wanted.split(",")[:CURVE_RUNS] if wanted else None
        return web.json_response({"metric": view.metric_name, "curves": self._curves(view, ids)})

    def _curves(self, view: SweepView, ids: list[str] | None) -> dict[str, Any]:
        if ids is not None:
            runs = [view.runs[r] for r in ids if r in view.runs]
        else:
            runs = _curve_runs(view, self.d.best_run(view))
        metric = view.metric_name
        return {run.id: data.history_document(self.d.history(run), {metric}).get(metric, [])
                for run in runs}

    async def api_report(self, request: web.Request) -> web.Response:
        """The offline report (report.py), as a file to save."""
        view = self.d.get_sweep(request.match_info["sweep_id"])
        document = data.sweep_document(view, self.d.best_run(view))
        document["curves"] = self._curves(view, None)
        document["importance"] = await self._importance(view.sweep.id)
        # Reading 5 MB of plotly and building the page: off the event loop.
        text = await asyncio.get_running_loop().run_in_executor(
            None, report_html, document, _plotly_js())
        return web.Response(text=text, content_type="text/html", headers={
            "Content-Disposition": f'attachment; filename="sweep-{view.sweep.id}.html"'})

    async def api_run(self, request: web.Request) -> web.Response:
        run = self.d.get_run(request.match_info["run_id"])
        view = self.d.get_sweep(run.sweep_id)
        records = self.d.history(run)
        log_text, offset = self._log_since(run, 0)
        return web.json_response({
            "run": data.run_row(run), "sweep": {"id": view.sweep.id, "metric": view.metric_name,
                                                "goal": view.config.metric.goal
                                                if view.config.metric else ""},
            "history": data.history_document(records),
            "next_index": records[-1].index + 1 if records else 0,
            "events": [data.event_row(e) for e in self.d.events(run)],
            "log": log_text, "log_offset": offset,
        })

    def _log_since(self, run: Run, offset: int) -> tuple[str, int]:
        live = self.d.live_log(run.id)
        if live is not None:
            chunk, new_offset = live.since(max(offset, live.end - LOG_TAIL_BYTES))
            return chunk.decode(errors="replace"), new_offset
        if offset:
            return "", offset
        tail = run.log_tail[-LOG_TAIL_BYTES:]
        return tail, len(tail.encode())

    async def api_action(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in ACTIONS:
            raise web.HTTPNotFound(text=json.dumps(
                {"error": f"action: {action!r} is not one of {', '.join(ACTIONS)}"}),
                content_type="application/json")
        sweep_id = request.match_info["sweep_id"]
        do = {"pause": self.d.pause, "resume": self.d.resume, "stop": self.d.stop,
              "cancel": self.d.cancel}[action]
        view = do(sweep_id)
        return web.json_response({"sweep": data.sweep_summary(view, self.d.best_run(view))})

    # -- live -----------------------------------------------------------------------------

    async def live_sweep(self, request: web.Request) -> web.StreamResponse:
        view, watch = self.d.watch(request.match_info["sweep_id"])
        try:
            response = await _event_stream(request)
            sent = data.sweep_summary(view, self.d.best_run(view))
            await _send(response, "sweep", {"sweep": sent})
            idle = 0.0
            while not self.closing.is_set():
                woke = await _wait(watch.wake, LIVE_POLL_S)
                if woke:
                    await asyncio.sleep(LIVE_BATCH_S)
                    await self._settled()
                    rows = [data.run_row(view.runs[r]) for r in watch.take() if r in view.runs]
                    if rows:
                        await _send(response, "runs", {"runs": rows})
                summary = data.sweep_summary(view, self.d.best_run(view))
                if summary != sent:
                    sent = summary
                    await _send(response, "sweep", {"sweep": summary})
                    idle = 0.0
                elif not woke:
                    idle += LIVE_POLL_S
                    if idle >= LIVE_KEEPALIVE_S:
                        await response.write(b": keepalive\n\n")
                        idle = 0.0
            return response
        finally:
            self.d.unwatch(view, watch)

    async def live_sweeps(self, request: web.Request) -> web.StreamResponse:
        """Every sweep's summary when it changes: runs through each sweep's watch, the sweep
        list and states looked at every LIVE_POLL_S (no watch announces those)."""
        response = await _event_stream(request)
        watched: dict[str, tuple[SweepView, SweepWatch]] = {}
        sent: dict[str, dict[str, Any]] = {}
        try:
            idle = 0.0
            while not self.closing.is_set():
                changed = []
                for view in self.d.list_sweeps():
                    sweep_id = view.sweep.id
                    if sweep_id not in watched:
                        watched[sweep_id] = self.d.watch(sweep_id)
                    news = watched[sweep_id][1].take()
                    old = sent.get(sweep_id)
                    if (old is None or news or old["state"] != view.sweep.state.value
                            or old["updated_at"] != view.sweep.updated_at):
                        summary = data.sweep_summary(view, self.d.best_run(view))
                        if summary != old:
                            sent[sweep_id] = summary
                            changed.append(summary)
                if changed:
                    await _send(response, "sweeps", {"sweeps": changed, "now": self.d.now()})
                    idle = 0.0
                else:
                    idle += LIVE_POLL_S
                    if idle >= LIVE_KEEPALIVE_S:
                        await response.write(b": keepalive\n\n")
                        idle = 0.0
                await asyncio.sleep(LIVE_POLL_S)
            return response
        finally:
            for view, watch in watched.values():
                self.d.unwatch(view, watch)

    async def live_run(self, request: web.Request) -> web.StreamResponse:
        run = self.d.get_run(request.match_info["run_id"])
        view, watch = self.d.watch(run.sweep_id)
        try:
            response = await _event_stream(request)
            next_index = int(request.query.get("from", "0") or 0)
            log_offset = int(request.query.get("log", "0") or 0)
            sent: dict[str, Any] | None = None
            idle = 0.0
            while not self.closing.is_set():
                woke = await _wait(watch.wake, LIVE_POLL_S)
                if woke:
                    await asyncio.sleep(LIVE_BATCH_S)
                    await self._settled()
                    watch.take()
                run = self.d.get_run(run.id)
                row = data.run_row(run)
                update: dict[str, Any] = {}
                if row != sent:
                    update["run"] = sent = row
                    records = [r for r in self.d.history(run) if r.index >= next_index]
                    if records:
                        update["history"] = data.history_document(records)
                        next_index = records[-1].index + 1
                    update["events"] = [data.event_row(e) for e in self.d.events(run)]
                text, log_offset = self._log_since(run, log_offset)
                if text:
                    update["log"] = text
                if update:
                    await _send(response, "run", update)
                    idle = 0.0
                else:
                    idle += LIVE_POLL_S
                    if idle >= LIVE_KEEPALIVE_S:
                        await response.write(b": keepalive\n\n")
                        idle = 0.0
            return response
        finally:
            self.d.unwatch(view, watch)


def _curve_runs(view: SweepView, best: Run | None) -> list[Run]:
    runs = sorted(view.runs.values(), key=lambda r: r.number)
    chosen = [r for r in runs if r.started_at is not None][-CURVE_RUNS:]
    if best is not None and best not in chosen:
        chosen.append(best)
    return chosen


async def _event_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP,
        # Proxies that buffer would hold the events back.
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, event: str, payload: dict[str, Any]) -> None:
    # JSON never holds a raw newline, so one data: line carries the whole message.
    await response.write(f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode())


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)
        return True
    return False


def _local(path: str) -> str:
    """Where to go after logging in: a path on this site only (never //other.host)."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sweepd: log in</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body class="login"><main>
<h1>sweepd dashboard</h1>
{error}
<form method="post" action="/login">
<label for="token">Coordinator token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit" id="login">Log in</button>
</form>
<p class="hint">The token is in the file <code>token</code> in the coordinator's state dir.
<code>sweep dashboard</code> prints a one-time login link.</p>
</main></body></html>
"""

_LINK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sweepd: log in</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body class="login"><main>
<h1>sweepd dashboard</h1>
<form method="post" action="/login/link">{fields}
<button type="submit" id="login">Log in with this link</button>
</form></main></body></html>
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · sweepd</title>
<meta name="sweepd-csrf" content="{csrf}">
<link rel="stylesheet" href="/static/style.css"></head>
<body data-page="{page}" data-id="{ident}">
<header><a href="/" class="home">sweepd</a> <span id="live" class="live"></span>{logout}</header>
<main>{body}</main>
<script src="/static/plotly.min.js"></script>
<script src="/static/figures.js"></script>
<script src="/static/dashboard.js"></script>
</body></html>
"""

_SWEEP_BODY = """
<h1 id="title"></h1>
<section id="summary"><dl id="facts"></dl>
<div id="controls"><button data-action="pause">Pause</button>
<button data-action="resume">Resume</button><button data-action="stop">Stop</button>
<button data-action="cancel">Cancel</button><a id="report-link" download>Download report</a>
<span id="action-msg"></span></div></section>
<section class="grid2">
<div><h2>Optimisation history</h2><div id="history" class="plot"></div></div>
<div><h2>Parameter importance</h2><div id="importance" class="plot"></div>
<table id="importance-table"></table><p id="importance-notes" class="hint"></p></div>
</section>
<section><h2>Parallel coordinates</h2><div id="parcoords" class="plot wide"></div></section>
<section><h2>Metric curves</h2><div id="curves" class="plot wide"></div></section>
<section><h2>Slices</h2><div id="slices" class="slices"></div></section>
<section><h2>Runs</h2>
<label>State <select id="state-filter"><option value="">all</option></select></label>
<table id="runs"><thead></thead><tbody></tbody></table></section>
"""

_RUN_BODY = """
<h1 id="title"></h1>
<section class="grid2"><div><h2>Parameters</h2><table id="params"></table>
<h2>Summary</h2><table id="summary-table"></table>
<h2>Stop decision</h2><p id="stop"></p></div>
<div><h2>Events</h2><table id="events"></table></div></section>
<section><h2>Metrics</h2><div id="metrics" class="slices"></div></section>
<section><h2>Output</h2><pre id="log"></pre></section>
"""
