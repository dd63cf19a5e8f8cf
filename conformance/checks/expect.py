"""What checks expect of answers, phrased once: a success with a FHIR resource, or an error with an
OperationOutcome. The wording of failures lives here so every suite reports alike."""

from __future__ import annotations

from typing import Any

from conformance.client import Reply
from conformance.exceptions import CheckFailed, TargetError

FHIR_JSON = "application/fhir+json"
JSON_TYPES = (FHIR_JSON, "application/json", "application/json+fhir")
XML_TYPES = ("application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir")


def is_resource(doc: Any, rtype: str | None = None) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("resourceType"), str) and (
        rtype is None or doc["resourceType"] == rtype)


def outcome_text(doc: Any, limit: int = 3) -> str:
    """The first issues of an OperationOutcome as one line: 'error invalid: Observation.status: …'."""
    if not is_resource(doc, "OperationOutcome"):
        return ""
    parts = []
    for issue in (doc.get("issue") or [])[:limit]:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        where = ", ".join(issue.get("expression") or issue.get("location") or [])
        parts.append(f"{issue.get('severity')} {issue.get('code')}: " + (f"{where}: " if where else "") + text)
    return "; ".join(parts)


def errors(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in doc.get("issue") or [] if i.get("severity") in ("error", "fatal")]


def ok(reply: Reply, *statuses: int) -> None:
    """The request succeeded with one of `statuses` (default 200). A 4xx FHIR answer is a failure of the
    target; a 5xx or a non-FHIR answer (an HTML error page) means the target could not be tested."""
    statuses = statuses or (200,)
    if reply.status in statuses:
        return
    want = " or ".join(map(str, statuses))
    doc = reply.json()
    if reply.status >= 500 or not is_resource(doc):
        raise TargetError(f"{reply.method} {reply.url}: expected HTTP {want}, got {reply.describe()}")
    detail = outcome_text(doc)
    raise CheckFailed(f"expected HTTP {want}, got {reply.status}" + (f": {detail}" if detail else ""))


def resource(reply: Reply, rtype: str | None = None) -> dict[str, Any]:
    """The body as a FHIR resource (whatever the Content-Type says: that has tests of its own).
    Raises TargetError when the body is no FHIR resource, CheckFailed when it is one of another type."""
    doc = reply.json()
    if not is_resource(doc):
        raise TargetError(f"{reply.method} {reply.url}: expected a FHIR resource, got {reply.describe()}")
    if rtype and doc["resourceType"] != rtype:
        detail = outcome_text(doc)
        raise CheckFailed(f"expected a {rtype}, got a {doc['resourceType']}" + (f": {detail}" if detail else ""))
    return doc


def outcome(reply: Reply, low: int = 400, high: int = 499) -> dict[str, Any]:
    """An error answer as FHIR requires: a status in [low, high] and an OperationOutcome with an error issue."""
    want = f"{low // 100}xx" if (low % 100, high % 100, low // 100) == (0, 99, high // 100) else f"{low}–{high}"
    if not low <= reply.status <= high:
        raise CheckFailed(f"expected HTTP {want} with an OperationOutcome, got {reply.describe()}")
    doc = reply.json()
    if not is_resource(doc, "OperationOutcome"):
        raise CheckFailed(f"the {reply.status} answer carries no OperationOutcome: {reply.describe()}")
    if not errors(doc):
        raise CheckFailed(f"the {reply.status} OperationOutcome has no issue of severity error or fatal")
    return doc


def media_type(reply: Reply, allowed: tuple[str, ...] | list[str], what: str = "the response") -> None:
    if reply.media_type not in allowed:
        got = reply.headers.get("content-type") or "no Content-Type"
        raise CheckFailed(f"{what} is served as {got}; expected {' or '.join(allowed)}")
