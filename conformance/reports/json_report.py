"""The JSON report: the run as data (RunReport.to_dict), for machines and for comparing runs."""

from __future__ import annotations

import orjson

from conformance.model import RunReport


def render_json(report: RunReport) -> bytes:
    return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
