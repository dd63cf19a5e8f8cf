"""Report writers: JSON for machines, JUnit XML for CI dashboards, one self-contained HTML page for people."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from conformance.model import RunReport
from conformance.reports.html_report import render_html
from conformance.reports.json_report import render_json
from conformance.reports.junit import render_junit

# format -> (file suffix, renderer)
WRITERS: dict[str, tuple[str, Callable[[RunReport], bytes]]] = {
    "json": (".json", render_json),
    "junit": (".junit.xml", render_junit),
    "html": (".html", render_html),
}


def write_reports(report: RunReport, formats: Iterable[str], out_dir: Path) -> list[Path]:
    """Write one file per format as OUT_DIR/<suite id><suffix>; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in dict.fromkeys(formats):
        suffix, render = WRITERS[fmt]
        path = out_dir / f"{report.suite.id}{suffix}"
        path.write_bytes(render(report))
        written.append(path)
    return written


__all__ = ["WRITERS", "render_html", "render_json", "render_junit", "write_reports"]
