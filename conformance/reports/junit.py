"""The JUnit XML report, read by CI systems: one <testsuite> per group, one <testcase> per test.

JUnit knows pass, failure, error and skipped, and CI marks a run red on any failure or error; so that CI
agrees with the kit's exit code, an optional test that failed or errored is written as <skipped> (its
message says what happened), and a required test that was skipped is written as a <failure>.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from conformance.model import ERROR, FAIL, SKIP, Exchange, RunReport, TestResult

_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0


def _text(s: str) -> str:
    return _XML_INVALID.sub("\ufffd", s)


def _exchange(x: Exchange) -> str:
    lines = [f"> {x.method} {x.url}"]
    lines += [f"> {k}: {v}" for k, v in x.request_headers.items()]
    if x.request_body:
        lines += [">", x.request_body]
    if x.status is not None:
        lines.append(f"< {x.status} {x.reason}")
        lines += [f"< {k}: {v}" for k, v in x.response_headers.items()]
        if x.response_body:
            lines += ["<", x.response_body]
    if x.error:
        lines.append(f"! {x.error}")
    if x.truncated:
        lines.append("(bodies truncated)")
    return "\n".join(lines)


def _out(r: TestResult) -> str:
    req = r.test.requirement
    head = [f"requirement ({req.kind}): {req.text}", f"source: {req.source}",
            f"required: {'yes' if r.test.required else 'no'}", f"status: {r.status}", f"message: {r.message}"]
    return "\n".join(head) + "".join(f"\n\n{_exchange(x)}" for x in r.exchanges)


def _element(r: TestResult, suite_id: str) -> tuple[ET.Element, str]:
    case = ET.Element("testcase", classname=f"{suite_id}.{r.group.id}", name=_text(f"{r.test.id}: {r.test.title}"),
                      time=f"{r.duration_ms / 1000:.3f}")
    kind = "pass"
    if r.status in (FAIL, ERROR) and not r.test.required:
        ET.SubElement(case, "skipped", message=_text(f"optional test {r.status}: {r.message}"))
        kind = "skipped"
    elif r.status == FAIL:
        ET.SubElement(case, "failure", message=_text(r.message), type=r.test.check).text = _text(r.message)
        kind = "failure"
    elif r.status == ERROR:
        ET.SubElement(case, "error", message=_text(r.message), type="target-error").text = _text(r.message)
        kind = "error"
    elif r.status == SKIP and r.test.required:
        ET.SubElement(case, "failure", message=_text(f"required test skipped: {r.message}"),
                      type="required-skipped").text = _text(r.message)
        kind = "failure"
    elif r.status == SKIP:
        ET.SubElement(case, "skipped", message=_text(r.message))
        kind = "skipped"
    ET.SubElement(case, "system-out").text = _text(_out(r))
    return case, kind


def render_junit(report: RunReport) -> bytes:
    s = report.suite
    root = ET.Element("testsuites", name=_text(f"helixgate conformance: {s.title}"))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for group in s.groups:
        results = [r for r in report.results if r.group is group]
        suite = ET.SubElement(root, "testsuite", name=f"{s.id}.{group.id}", timestamp=report.started.isoformat(),
                              time=f"{sum(r.duration_ms for r in results) / 1000:.3f}")
        props = ET.SubElement(suite, "properties")
        for name, value in (("target", report.target), ("suite", f"{s.id} {s.version}"),
                            ("kit", f"helixgate-conformance {report.kit_version}")):
            ET.SubElement(props, "property", name=name, value=_text(value))
        counts = {"tests": len(results), "failures": 0, "errors": 0, "skipped": 0}
        for r in results:
            case, kind = _element(r, s.id)
            suite.append(case)
            if kind != "pass":
                counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[kind]] += 1
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{report.duration_s:.3f}")
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"
