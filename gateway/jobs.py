"""The CPU-bound units of HTTP work — one conversion, a batch file, a validation — as plain functions of bytes, so
that they run alike in a budgeted sandbox process (`gateway.sandbox`) or, with HELIXGATE_HTTP_PROCESSES=0, in a
thread of the server. A job is a tuple `(name, *arguments)`; `run(job, validator)` does it.

Refusals cross the process boundary as `Refused`: the HTTP status and the issues of the MappingError raised
inside, so the server answers exactly as if the job had run in it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.convert import run as convert_run
from gateway.fhir_input import parameters
from gateway.formats import Converted, UnsupportedFormat, validates_fhir
from gateway.formats import Request as ConvertRequest
from gateway.validate import read_resource
from mappers.exceptions import Issue, MappingError, ParseError, operation_outcome
from mappers.toolkit.registry import HUB, get


class Refused(MappingError):
    """A MappingError with the HTTP status it is answered with (it may have been raised in another process)."""

    def __init__(self, status: int, issues: list[Issue], headers: dict[str, str] | None = None) -> None:
        Exception.__init__(self, issues[0].message if issues else "refused")
        self.status = status
        self.issues = issues
        self.headers = headers or {}


def status_of(exc: MappingError) -> int:
    """The HTTP status of a refusal: 415 unsupported format, 400 unreadable input, 422 otherwise."""
    if isinstance(exc, Refused):
        return exc.status
    if isinstance(exc, UnsupportedFormat):
        return 415
    if isinstance(exc, ParseError):
        return 400
    return 422


def refused(exc: MappingError) -> Refused:
    return exc if isinstance(exc, Refused) else Refused(status_of(exc), list(exc.issues))


@dataclass(frozen=True, slots=True)
class Batch:
    body: bytes  # NDJSON: a Bundle or an OperationOutcome a line
    documents: int
    failed: int


def convert(data: bytes, req: ConvertRequest, validator: Any) -> Converted:
    return convert_run(data, req, validator if validates_fhir(req.target) else None)


def batch(data: bytes, req: ConvertRequest, max_documents: int, validator: Any) -> Batch | None:
    """A batch file (several messages or documents) converted one by one: a Bundle or an OperationOutcome naming
    the document a line; None when `data` holds one document. More than `max_documents` is refused: such files
    are bulk jobs (Prefer: respond-async)."""
    split = get(req.source).split
    documents = split(data) if split else []
    if len(documents) < 2:
        return None
    if len(documents) > max_documents > 0:
        raise Refused(413, [Issue("error", "too-costly", "batch-too-large",
                                  f"the input holds {len(documents)} documents, more than the {max_documents} "
                                  "converted in one request (HELIXGATE_MAX_BATCH_DOCUMENTS); send it with "
                                  "'Prefer: respond-async' to run it as a bulk job")])
    if req.target != HUB:
        raise UnsupportedFormat(f"the input holds {len(documents)} documents; a batch converts to FHIR only")
    lines, failed = [], 0
    for where, doc in documents:
        try:
            lines.append(convert_run(doc, req, validator).body)
        except MappingError as e:
            failed += 1
            lines.append(orjson.dumps(operation_outcome(
                [Issue(i.severity, i.code, i.details, f"{where}: {i.message}", i.expression) for i in e.issues])))
    return Batch(b"\n".join(lines) + b"\n", len(documents), failed)


def _need(validator: Any) -> None:
    if validator is None:
        raise Refused(503, [Issue("error", "transient", "packages-missing",
                                  "validation cannot run: the FHIR packages are not installed (run "
                                  "'helixgate packages install')")])


def validate(body: bytes, media_type: str, profiles: tuple[str, ...], resource_type: str | None,
             validator: Any) -> dict[str, Any]:
    """$validate of a request body (a resource, or Parameters with resource and profile): the OperationOutcome."""
    _need(validator)
    doc = read_resource(body, media_type)
    wanted = list(profiles)
    if doc.get("resourceType") == "Parameters" and any(p.get("name") == "resource" for p in parameters(doc)):
        doc, more = resource_parameters(doc)
        wanted += more
    outcome = validator.outcome(doc, tuple(dict.fromkeys(wanted)))
    if resource_type and doc.get("resourceType") != resource_type:
        mismatch = {"severity": "error", "code": "invalid", "details": {
            "text": f"The resource is a {doc.get('resourceType')}, but was posted to {resource_type}/$validate"}}
        kept = [i for i in outcome["issue"] if i["details"].get("coding", [{}])[0].get("code") != "ok"]
        outcome = {**outcome, "issue": [mismatch, *kept]}
    return outcome


def validate_resource(resource: dict[str, Any], profiles: tuple[str, ...], validator: Any) -> dict[str, Any]:
    """The OperationOutcome of an already parsed resource (the facade's writes)."""
    _need(validator)
    return validator.outcome(resource, profiles)


def resource_parameters(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The `resource` and `profile` parameters of Resource-validate (FHIR R4 OperationDefinition
    Resource-validate). Raises ParseError, naming the parameter, for content of the wrong type."""
    resource, profiles = None, []
    for i, p in enumerate(parameters(doc)):
        where = f"Parameters.parameter[{i}]"
        if p.get("name") == "resource":
            resource = p.get("resource")
            if resource is not None and not isinstance(resource, dict):
                raise ParseError(f"{where}.resource must be a resource (a JSON object)", details="bad-parameters",
                                 expression=f"{where}.resource")
            if resource is None and isinstance(p.get("valueString"), str):
                resource = read_resource(p["valueString"].encode("utf-8", "surrogatepass"))
            if resource is None and isinstance(p.get("valueBase64Binary"), str):
                try:
                    # white space is allowed in a base64Binary (its R4 regex), any other stray character is not
                    data = base64.b64decode("".join(p["valueBase64Binary"].split()), validate=True)
                except (binascii.Error, ValueError):
                    raise ParseError(f"{where}.valueBase64Binary is not base64", details="bad-parameters",
                                     expression=f"{where}.valueBase64Binary") from None
                resource = read_resource(data)
        elif p.get("name") == "profile":
            key = next((k for k in ("valueUri", "valueCanonical", "valueString") if k in p), None)
            url = p.get(key) if key else None
            if key and not isinstance(url, str):
                raise ParseError(f"{where}.{key} must be a string (a profile's canonical URL)",
                                 details="bad-parameters", expression=f"{where}.{key}")
            if url:
                profiles.append(url)
    if not isinstance(resource, dict):
        raise ParseError("Parameters has no 'resource' parameter holding the resource to validate",
                         details="missing-resource")
    return resource, profiles


JOBS: dict[str, Callable[..., Any]] = {"convert": convert, "batch": batch, "validate": validate,
                                       "validate-resource": validate_resource}


def run(job: tuple[Any, ...], validator: Any) -> Any:
    """Do `job` = (name, *arguments) with `validator` (None when the FHIR packages are missing)."""
    name, *args = job
    return JOBS[name](*args, validator)
