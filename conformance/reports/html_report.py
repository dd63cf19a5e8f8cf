"""The HTML report: one self-contained page (inline CSS, JS and SVG; a Content-Security-Policy that forbids any
fetch), with a summary chart, filters by status, and each test's requirement, message and HTTP exchanges."""

from __future__ import annotations

import html
import math
from pathlib import Path

from conformance.model import STATUSES, Exchange, RunReport, TestResult

ASSETS = Path(__file__).parent / "assets"
COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "skip": "#757575", "error": "#e65100"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _donut(counts: dict[str, int]) -> str:
    """Pass/fail/skip/error as a ring: circles whose dash covers each status's share of a circumference of 100."""
    total = sum(counts.values()) or 1
    r = 100 / (2 * math.pi)
    parts = [f'<svg class="donut" width="160" height="160" viewBox="0 0 42 42" role="img" '
             f'aria-label="{e(", ".join(f"{n} {s}" for s, n in counts.items()))}">',
             f'<circle cx="21" cy="21" r="{r:.4f}" fill="none" stroke="#eee" stroke-width="6"/>']
    offset = 25.0  # start at 12 o'clock
    for status in STATUSES:
        share = counts[status] * 100 / total
        if share:
            parts.append(f'<circle class="seg" data-filter="{status}" cx="21" cy="21" r="{r:.4f}" fill="none" '
                         f'stroke="{COLOURS[status]}" stroke-width="6" '
                         f'stroke-dasharray="{share:.3f} {100 - share:.3f}" '
                         f'stroke-dashoffset="{offset:.3f}"><title>{counts[status]} {status}</title></circle>')
            offset -= share
    parts.append(f'<text x="21" y="20" text-anchor="middle" font-size="6" font-weight="700">{sum(counts.values())}'
                 '</text><text x="21" y="26" text-anchor="middle" font-size="3.2" fill="#666">tests</text></svg>')
    return "".join(parts)


def _bars(report: RunReport) -> str:
    """One stacked bar per group."""
    width, label_w, row = 360, 190, 22
    groups = report.suite.groups
    out = [f'<svg class="bars" width="{label_w + width + 40}" height="{row * len(groups) + 4}" role="img" '
           'aria-label="results per group">']
    for i, g in enumerate(groups):
        results = [r for r in report.results if r.group is g]
        y = i * row + 2
        title = g.title if len(g.title) <= 30 else g.title[:29] + "…"
        out.append(f'<text x="0" y="{y + 14}">{e(title)}<title>{e(g.title)}</title></text>')
        x = float(label_w)
        for status in STATUSES:
            n = sum(1 for r in results if r.status == status)
            if n:
                w = width * n / max(len(results), 1)
                out.append(f'<rect data-filter="{status}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="16" '
                           f'fill="{COLOURS[status]}"><title>{e(g.title)}: {n} {status}</title></rect>')
                x += w
        out.append(f'<text x="{label_w + width + 6}" y="{y + 14}">{len(results)}</text>')
    out.append("</svg>")
    return "".join(out)


def _message_block(title: str, lines: list[str], body: str | None) -> str:
    text = "\n".join(lines) + (f"\n\n{body}" if body else "")
    return f"<details><summary>{e(title)}</summary><pre>{e(text)}</pre></details>"


def _exchange(x: Exchange) -> str:
    answer = (f"→ {x.status} {e(x.reason)}" if x.status is not None else '→ <span class="err">no response</span>')
    parts = [f'<div class="exchange"><div class="line">{e(x.method)} {e(x.url)} {answer} '
             f'<span class="dur">{x.elapsed_ms:.0f} ms</span></div>']
    if x.error:
        parts.append(f'<div class="line err">{e(x.error)}</div>')
    parts.append(_message_block(f"request ({x.request_size} bytes)",
                                [f"{k}: {v}" for k, v in x.request_headers.items()], x.request_body))
    if x.status is not None:
        parts.append(_message_block(f"response ({x.response_size} bytes{', truncated' if x.truncated else ''})",
                                    [f"{k}: {v}" for k, v in x.response_headers.items()], x.response_body))
    parts.append("</div>")
    return "".join(parts)


def _test(r: TestResult) -> str:
    t, req = r.test, r.test.requirement
    text = f"{t.id} {t.title} {r.message} {t.check}".lower()
    opened = " open" if r.status in ("fail", "error") or (r.status == "skip" and t.required) else ""
    return (
        f'<details class="test" id="t-{e(t.id)}" data-status="{r.status}" data-required="{str(t.required).lower()}" '
        f'data-text="{e(text)}"{opened}><summary><span class="badge {r.status}">{r.status.upper()}</span>'
        f"<code>{e(t.id)}</code><span>{e(t.title)}</span>"
        + ("" if t.required else '<span class="optional">optional</span>')
        + f'<span class="dur">{r.duration_ms:.0f} ms</span></summary><div class="body">'
        f'<p class="message">{e(r.message)}</p>'
        f'<p class="req"><span class="kind">{e(req.kind)}</span>{e(req.text)} '
        f'<a href="{e(req.source)}" rel="noreferrer">{e(req.source)}</a></p>'
        f'<p class="req">check <code>{e(t.check)}</code>'
        + (f" · needs {', '.join(f'<code>{e(n)}</code>' for n in t.needs)}" if t.needs else "")
        + "</p>" + "".join(_exchange(x) for x in r.exchanges) + "</div></details>"
    )


def render_html(report: RunReport) -> bytes:
    s = report.suite
    counts = report.counts()
    verdict = "passed" if report.passed else "failed"
    groups = []
    for g in s.groups:
        results = [r for r in report.results if r.group is g]
        tally = ", ".join(f"{n} {st}" for st in STATUSES if (n := sum(1 for r in results if r.status == st)))
        groups.append(f'<section class="group" id="g-{e(g.id)}"><h2>{e(g.title)}<small>{e(tally)}</small></h2>'
                      f"<p>{e(g.description)}</p>" + "".join(_test(r) for r in results) + "</section>")
    buttons = "".join(f'<button type="button" data-status="{st}">{st} ({counts[st]})</button>' for st in STATUSES)
    legend = "".join(f'<li data-filter="{st}"><span class="swatch" style="background:{COLOURS[st]}"></span>'
                     f"{counts[st]} {st}</li>" for st in STATUSES)
    blocked = report.required_not_passed
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(s.title)} conformance: {verdict}</title>
<style>{(ASSETS / "report.css").read_text("utf-8")}</style></head>
<body>
<header><h1>{e(s.title)} <span class="verdict {verdict}">{verdict.upper()}</span></h1>
<dl class="meta"><dt>target</dt><dd>{e(report.target)}</dd>
<dt>suite</dt><dd>{e(s.id)} {e(s.version)}: {e(s.description)}</dd>
<dt>run</dt><dd>{e(report.started.isoformat(timespec="seconds"))}, {report.duration_s:.1f} s,
helixgate-conformance {e(report.kit_version)}</dd>
<dt>verdict</dt><dd>{"every required test passed" if report.passed else
                     f"{len(blocked)} required test(s) did not pass: " + ", ".join(e(r.test.id) for r in blocked[:20])}
</dd></dl></header>
<section class="summary">{_donut(counts)}<ul class="legend">{legend}</ul>{_bars(report)}</section>
<nav class="filters"><button type="button" data-status="all">all ({len(report.results)})</button>{buttons}
<label><input type="checkbox" id="required-only"> required only</label>
<input type="search" id="q" placeholder="filter by id, title or message" aria-label="filter">
<button type="button" id="expand">expand / collapse</button><span id="shown"></span></nav>
<main>{"".join(groups)}</main>
<footer>helixgate-conformance {e(report.kit_version)}. Authorization, Cookie and API-key headers are redacted;
bodies are cut to the report limit.</footer>
<script>{(ASSETS / "report.js").read_text("utf-8")}</script>
</body></html>
"""
    return page.encode("utf-8")
