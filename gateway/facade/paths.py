"""FHIR REST paths (http.html#general) checked before anything leaves the gateway: a type, then one of the shapes
an interaction takes. Dot segments, empty segments and percent-encoded characters (none of which a type, id or
operation can hold: `%2e%2e%2f` is how a `../` sneaks past a decoding router) get a 400."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from gateway.facade.respond import outcome

TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}\Z")  # a resource type (FHIR's grammar is [A-Za-z]+; types start upper-case)
SEGMENT = {"type": re.compile(r"[A-Za-z]{1,64}\Z"), "id": re.compile(r"[A-Za-z0-9\-.]{1,64}\Z"),
           "operation": re.compile(r"\$[A-Za-z][A-Za-z0-9\-_]{0,63}\Z")}
# What may follow [base]/{type} on a read, by position: the interactions and operations of a GET.
READ_SHAPES = ((), ("id",), ("_history",), ("operation",), ("id", "_history"), ("id", "operation"), ("id", "type"),
               ("id", "*"), ("id", "_history", "id"), ("id", "_history", "id", "operation"))
INSTANCE = (("id",),)
TYPE_LEVEL = ((),)


def fhir_path(request: Request, shapes: tuple[tuple[str, ...], ...]) -> str | Response:
    """The path after /fhir/ to forward (a type, then one of `shapes`), or the 400/404 that refuses it."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    text = raw.decode("latin-1").split("?", 1)[0]
    rest = text.split("/fhir/", 1)[1] if "/fhir/" in text else ""
    if rest.endswith("/") and len(rest) > 1:  # a trailing slash names the same resource
        rest = rest[:-1]
    segments = rest.split("/")
    problem = ""
    if "%" in rest:
        problem = "percent-encoded characters are not part of a FHIR type, id or operation"
    elif any(s in ("", ".", "..") for s in segments):
        problem = "empty and dot segments ('.', '..') are not part of a FHIR path"
    elif not SEGMENT["type"].match(segments[0]):
        problem = f"{segments[0][:70]!r} is not a FHIR resource type ([A-Za-z]+)"
    elif not any(matches(segments[1:], shape) for shape in shapes):
        wanted = ", ".join("/".join(("{type}", *(f"{{{p}}}" if p in SEGMENT else p for p in shape)))
                           for shape in shapes)
        problem = (f"not a path this gateway forwards; ids are [A-Za-z0-9-.]{{1,64}}, operations $name, and a "
                   f"{request.method} takes {wanted}")
    if problem:
        return outcome(request, 400, "invalid", "facade-bad-path", f"{request.method} /fhir/{rest[:200]}: {problem}")
    if not TYPE.match(segments[0]):
        return outcome(request, 404, "not-found", "http-404", f"no route {request.url.path[:200]}")
    return rest


def matches(segments: list[str], shape: tuple[str, ...]) -> bool:
    if len(segments) != len(shape):
        return False
    for segment, part in zip(segments, shape, strict=True):
        pattern = SEGMENT.get(part)
        if not (pattern.match(segment) if pattern is not None else segment == part):
            return False
    return True
