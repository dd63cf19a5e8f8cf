"""Content negotiation on /fhir: `_format` (which overrides Accept) and Accept name the response format
(FHIR R4 http.html#mime-type).

helixgate renders FHIR JSON and FHIR XML. JSON in any of its spellings (json, application/json,
application/fhir+json, application/json+fhir) is what the routes write. XML (xml, text/xml, application/xml,
application/fhir+xml, application/xml+fhir) is the same resource written as XML by this middleware: a response
whose body is a FHIR resource in JSON (conversion output, $validate, $translate, /metadata, an OperationOutcome
error, a facade response) is rewritten as XML (profiles.xmlwrite), with Content-Type application/fhir+xml. A request
that can only be answered in a FHIR format the gateway does not render (Turtle, HTML) gets 406 Not Acceptable
with an OperationOutcome, rather than JSON it did not ask for. Media types that are not FHIR representations (an
HL7 v2 message, NDJSON, VCF) are left to the routes, which choose their own output; so are responses that are not
a FHIR resource in JSON (a bulk manifest, an HL7 v2 message), which no FHIR XML form exists for.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.formats import FHIR_JSON, FHIR_XML
from gateway.responses import outcome_response
from mappers.exceptions import Issue, operation_outcome

log = logging.getLogger("helixgate.http")

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
XML_FORMATS = frozenset({"xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir"})
# FHIR representations helixgate does not render, by _format value or media type.
UNRENDERED = {"ttl": "Turtle", "text/turtle": "Turtle", "application/x-turtle": "Turtle", "html": "HTML",
              "text/html": "HTML"}
SUPPORTED = "json, xml, application/fhir+json or application/fhir+xml"
# JSON bodies the middleware reads to write as XML: FHIR JSON and plain JSON (an upstream may label FHIR so)
_JSON_BODIES = ("application/fhir+json", "application/json+fhir", "application/json")
MAX_XML_BODY = 256 << 20  # a response body larger than this is not rewritten (406): the JSON and XML would both be held


def choose(format_param: str | None, accept: str | None) -> tuple[bool, str | None]:
    """(XML wanted, why the request cannot be answered in a format it accepts). Not XML and no reason: JSON, or
    the route decides."""
    if format_param is not None:
        # an unescaped '+' in a query string reads as ' '; parameters (charset) do not change the format
        value = format_param.split(";")[0].strip().lower().replace(" ", "+")
        if value in JSON_FORMATS:
            return False, None
        if value in XML_FORMATS:
            return True, None
        if value in UNRENDERED:
            return False, (f"_format={format_param}: helixgate renders FHIR JSON and XML, not {UNRENDERED[value]}; "
                           f"use {SUPPORTED}")
        if "/" in value:
            return False, None  # a non-FHIR media type (e.g. NDJSON): the route decides
        return False, f"_format={format_param} is not a format helixgate knows; use {SUPPORTED}"
    if not accept:
        return False, None
    ranked: list[tuple[float, int, str]] = []
    for n, item in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        media = media.lower()
        quality = _quality(params)
        if media and quality > 0:
            ranked.append((-quality, n, media))
    refused = []
    for _, _, media in sorted(ranked):  # most preferred first; equal quality: as listed
        if media in XML_FORMATS:
            return True, None
        if media not in UNRENDERED:
            return False, None  # JSON, a wildcard, or a type some route produces
        refused.append(UNRENDERED[media])
    if refused:
        return False, (f"Accept: {accept} names only {' and '.join(dict.fromkeys(refused))}, which helixgate does "
                       f"not render; it serves FHIR JSON and XML (Accept {SUPPORTED}, or _format=json|xml)")
    return False, None


def refusal(format_param: str | None, accept: str | None) -> str | None:
    """Why the request cannot be answered in a format it accepts, or None when it can (or the route decides)."""
    return choose(format_param, accept)[1]


def _quality(params: list[str]) -> float:
    for p in params:
        name, _, value = p.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def as_xml(body: bytes) -> bytes | None:
    """A FHIR resource in JSON as FHIR XML; None when the body is not a FHIR resource in JSON (it stays as it is).
    Decimals are read as written (1.50 stays 1.50). Raises XmlWriteError for content XML cannot carry and
    PackageError when the R4 core definitions (the XML element order) are not installed."""
    from profiles.xmlwrite import json_to_xml

    try:
        doc: Any = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        return None
    return json_to_xml(doc)


def _refused_as_xml(why: str) -> tuple[int, bytes, str]:
    """A 406 naming why the body could not be written as XML: in XML when the OperationOutcome itself can be, else
    in JSON (the core definitions are missing)."""
    from profiles.packages import PackageError
    from profiles.xmlwrite import XmlWriteError, json_to_xml

    outcome = operation_outcome([Issue("error", "not-supported", "format-not-rendered", why)])
    try:
        return 406, json_to_xml(outcome), FHIR_XML
    except (PackageError, XmlWriteError):  # no XML at all (no definitions): said in JSON
        return 406, json.dumps(outcome).encode(), FHIR_JSON


class NegotiationMiddleware:
    """ASGI middleware (not BaseHTTPMiddleware, so streamed responses stay streamed) for paths under `prefix`:
    refuses formats not rendered, and writes FHIR JSON response bodies as XML when XML was asked for."""

    def __init__(self, app: ASGIApp, prefix: str = "/fhir") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (scope["path"] == self.prefix or scope["path"].startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
            return
        query = QueryParams(scope.get("query_string", b""))
        xml, why = choose(query.get("_format"), Headers(scope=scope).get("accept"))
        if why is not None:
            response = outcome_response(406, "not-supported", "format-not-supported", why)
            await response(scope, receive, send)
            return
        if not xml or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _XmlSender(send).send)


class _XmlSender:
    """Holds back a JSON response's start and body, then sends it written as XML; any other response passes."""

    def __init__(self, send: Send) -> None:
        self.downstream = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = Headers(raw=message.get("headers", []))
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            if media in _JSON_BODIES and "content-encoding" not in headers:
                self.start = message
                return
        elif message["type"] == "http.response.body" and self.start is not None:
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size <= MAX_XML_BODY:
                self.chunks.append(chunk)
            if message.get("more_body", False):
                return
            await self._finish()
            return
        await self.downstream(message)

    async def _finish(self) -> None:
        from profiles.packages import PackageError
        from profiles.xmlwrite import XmlWriteError

        assert self.start is not None
        start, status, media = self.start, self.start["status"], FHIR_XML
        body = b"".join(self.chunks)
        if not body.strip():  # 204, 304, HEAD-like answers: nothing to write
            await self.downstream(start)
            await self.downstream({"type": "http.response.body", "body": body, "more_body": False})
            return
        if self.size > MAX_XML_BODY:
            status, body, media = _refused_as_xml(f"the response ({self.size} bytes) is larger than is written as "
                                                  f"XML ({MAX_XML_BODY} bytes); ask for JSON")
        else:
            try:
                xml = await run_in_threadpool(as_xml, body)
            except XmlWriteError as e:
                status, body, media = _refused_as_xml(f"the response cannot be written as FHIR XML ({e}); ask for "
                                                      "JSON")
            except PackageError as e:
                status, body, media = _refused_as_xml(f"FHIR XML is written through the R4 core definitions, which "
                                                      f"are not installed ({e}); ask for JSON")
            else:
                if xml is None:  # not a FHIR resource: as it was
                    media = ""
                else:
                    body = xml
        headers = MutableHeaders(raw=list(start.get("headers", [])))
        if media:
            headers["content-type"] = media
            headers.add_vary_header("Accept")  # the same URL answers JSON to another Accept
        headers["content-length"] = str(len(body))
        await self.downstream({**start, "status": status, "headers": headers.raw})
        await self.downstream({"type": "http.response.body", "body": body, "more_body": False})
