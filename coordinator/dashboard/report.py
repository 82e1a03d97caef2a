"""`sweep report`: the sweep page's figures and tables as one self-contained HTML file.

Everything is inside the file: the data as JSON, plotly's own bundle, the same figure
functions as the live page (static/figures.js) and a small renderer (static/report.js). Its
Content-Security-Policy forbids the browser every load from anywhere (``default-src 'none'``):
the URLs inside plotly's bundle (its logo's link, map tile servers for map traces, which
reports never draw) could not fetch anything either. The file opens offline, attached to a
pull request or an e-mail.
"""

from __future__ import annotations

import html
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

STATIC = resources.files(__package__) / "static"
# Inline scripts and styles only; Function() for plotly's WebGL layer (parallel coordinates).
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval';"
              " style-src 'unsafe-inline'; img-src data: blob:; base-uri 'none';"
              " form-action 'none'")


def _script(text: str, ident: str) -> str:
    # Inside <script>, only "</script" ends the element; "<\/" means the same to JavaScript.
    return f'<script id="{ident}">' + text.replace("</script", "<\\/script") + "</script>"


def report_html(document: dict[str, Any], plotly_js: Path) -> str:
    """``document``: the sweep document (data.sweep_document) plus ``curves`` and
    ``importance`` (the dashboard's JSON for them)."""
    doc = dict(document, generated_at=time.time())
    # JSON in a script element: "<" escaped so that no value can close the element.
    data = json.dumps(doc).replace("<", "\\u003c").replace(">", "\\u003e")
    style = (STATIC / "style.css").read_text()
    title = f"sweep {doc['sweep']['id']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">
<title>{html.escape(title)} · sweepd report</title>
<style>{style}</style></head>
<body data-page="report">
<main>
<h1 id="title"></h1>
<section><dl id="facts"></dl></section>
<section class="grid2">
<div><h2>Optimisation history</h2><div id="history" class="plot"></div></div>
<div><h2>Parameter importance</h2><div id="importance" class="plot"></div>
<table id="importance-table"></table><p id="importance-notes" class="hint"></p></div>
</section>
<section><h2>Parallel coordinates</h2><div id="parcoords" class="plot wide"></div></section>
<section><h2>Metric curves</h2><div id="curves" class="plot wide"></div></section>
<section><h2>Slices</h2><div id="slices" class="slices"></div></section>
<section><h2>Runs</h2><table id="runs"><thead></thead><tbody></tbody></table></section>
</main>
<script type="application/json" id="sweepd-data">{data}</script>
{_script(plotly_js.read_text(), "plotly-js")}
{_script((STATIC / "figures.js").read_text(), "figures-js")}
{_script((STATIC / "report.js").read_text(), "report-js")}
</body></html>
"""
