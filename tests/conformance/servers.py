"""Targets for the kit's own tests: a small in-memory Genomics FHIR server that conforms (or breaks on purpose,
one named defect at a time), and a hostile one that times out, drips, floods or answers with HTML.

The reference server validates with the project's validator, converts with the gateway's converters and
negotiates with gateway.negotiation (rendering JSON only: XML is refused, as its CapabilityStatement declares none),
so what it does right is what helixgate does right.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.convert import run
from gateway.formats import GENERIC_MEDIA_TYPES, HUB, UnsupportedFormat, format_params, media_source, resolve
from gateway.formats import Request as ConvertRequest
from gateway.negotiation import choose
from mappers.exceptions import MappingError, ParseError
from mappers.toolkit.registry import ConvertOptions
from profiles.context import default_validator

GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
FHIR_JSON = "application/fhir+json; charset=utf-8"
# What each defect breaks, for the tests that assert the failed set.
DEFECTS = ("wrong-content-type", "invalid-resources", "accepts-invalid", "no-outcome", "html-errors", "loose-documents",
           "no-pinyin")
SEARCH_PARAMS = ("subject", "patient", "code", "component-code", "combo-code", "component-code-value-concept")


def capability(base: str) -> dict[str, Any]:
    def resource(rtype: str, profiles: list[str], search: bool) -> dict[str, Any]:
        return {"type": rtype, "supportedProfile": profiles,
                "interaction": [{"code": c} for c in ("create", "read", *(("search-type",) if search else ()))],
                "searchParam": [{"name": n, "type": "token"} for n in SEARCH_PARAMS] if search else []}

    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": "2026-11-24", "kind": "instance",
        "fhirVersion": "4.0.1", "format": ["json", "application/fhir+json"],
        "software": {"name": "conformance reference server"}, "implementation": {"description": "tests", "url": base},
        "rest": [{"mode": "server",
                  "resource": [resource("Patient", [], False),
                               resource("Observation", [GR + "variant", GR + "diagnostic-implication"], True),
                               resource("DiagnosticReport", [GR + "genomic-report"], True)],
                  "operation": [{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"},
                                {"name": "convert", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-convert"}]}],
    }


def _codes(cc: dict[str, Any] | None) -> set[tuple[str | None, str | None]]:
    return {(c.get("system"), c.get("code")) for c in (cc or {}).get("coding") or []}


def _token(value: str, codes: set[tuple[str | None, str | None]]) -> bool:
    system, bar, code = value.rpartition("|")
    return any(c == code and (not bar or s == system) for s, c in codes)


def _matches(res: dict[str, Any], name: str, value: str) -> bool:
    comps = res.get("component") or []
    if name in ("subject", "patient"):
        return (res.get("subject") or {}).get("reference") == value
    if name == "code":
        return _token(value, _codes(res.get("code")))
    if name == "component-code":
        return any(_token(value, _codes(c.get("code"))) for c in comps)
    if name == "combo-code":
        return _token(value, _codes(res.get("code"))) or any(_token(value, _codes(c.get("code"))) for c in comps)
    if name == "component-code-value-concept":
        code, _, concept = value.partition("$")
        return any(_token(code, _codes(c.get("code"))) and _token(concept, _codes(c.get("valueCodeableConcept")))
                   for c in comps)
    return True  # unknown parameters are ignored, as FHIR allows


def _loosen(bundle: dict[str, Any]) -> None:
    """The 'loose-documents' defect: the Composition of a document no longer names its DiagnosticReport (neither in
    a section nor in the EU Lab composition-diagnosticReportReference extension)."""
    entries = bundle.get("entry") or []
    reports = {e.get("fullUrl") for e in entries if e["resource"].get("resourceType") == "DiagnosticReport"}
    comp = entries[0]["resource"] if entries else {}
    if bundle.get("type") != "document" or comp.get("resourceType") != "Composition":
        return
    comp.pop("extension", None)
    for sec in comp.get("section") or []:
        sec["entry"] = [r for r in sec.get("entry") or [] if r.get("reference") not in reports]
        if not sec["entry"]:
            del sec["entry"]


def _drop_genetics_category(res: dict[str, Any]) -> dict[str, Any]:
    """The 'invalid-resources' defect: the v2-0074 GE category every genomic profile requires goes missing."""
    cats = [c for c in res.get("category") or [] if ("http://terminology.hl7.org/CodeSystem/v2-0074", "GE")
            not in _codes(c)]
    return {**res, "category": cats} if cats else {k: v for k, v in res.items() if k != "category"}


class ReferenceServer:
    def __init__(self, defects: Iterable[str] = ()) -> None:
        self.defects = frozenset(defects)
        unknown = self.defects - set(DEFECTS)
        assert not unknown, f"unknown defects {unknown}"
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.ids = itertools.count(1)

    def json(self, doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        media = "text/plain; charset=utf-8" if "wrong-content-type" in self.defects else FHIR_JSON
        return Response(orjson.dumps(doc), status, headers, media_type=media)

    def error(self, status: int, code: str, text: str) -> Response:
        if "html-errors" in self.defects:
            page = f"<!doctype html><html><head><title>{status} Error</title></head><body><h1>{text}</h1></body></html>"
            return Response(page, status, media_type="text/html; charset=utf-8")
        if "no-outcome" in self.defects:
            return self.json({"error": text}, status)
        return self.json({"resourceType": "OperationOutcome",
                          "issue": [{"severity": "error", "code": code, "diagnostics": text}]}, status)

    async def dispatch(self, request: Request) -> Response:
        xml, why = choose(request.query_params.get("_format"), request.headers.get("accept"))
        if xml:  # unlike the gateway, this server renders FHIR JSON only (its CapabilityStatement.format says so)
            why = "this server renders FHIR JSON only, not FHIR XML"
        if why:
            return self.error(406, "not-supported", why)
        path = request.path_params["path"].strip("/")
        parts = path.split("/") if path else []
        method = request.method
        if parts == ["metadata"]:
            return self.json(capability(str(request.base_url) + "fhir")) if method == "GET" else \
                self.error(405, "not-supported", f"{method} is not allowed on metadata")
        if method == "POST" and parts and parts[-1] == "$validate":
            return await self.validate(request)
        if method == "POST" and parts == ["$convert"]:
            return await self.convert(request)
        known = {"Patient", "Observation", "DiagnosticReport"}
        if not parts or parts[0] not in known or len(parts) > 2:
            return self.error(404, "not-found", f"unknown path /fhir/{path}")
        if method == "POST" and len(parts) == 1:
            return await self.create(request, parts[0])
        if method == "GET" and len(parts) == 2:
            res = self.store.get((parts[0], parts[1]))
            if res is None:
                return self.error(404, "not-found", f"{parts[0]}/{parts[1]} is not known")
            return self.json(_drop_genetics_category(res) if "invalid-resources" in self.defects else res)
        if method == "GET":
            return self.search(request, parts[0])
        if method == "POST" and len(parts) == 2 and parts[1] == "_search":  # form parameters (search.html#search)
            return self.search(request, parts[0], parse_qsl((await request.body()).decode()))
        return self.error(405, "not-supported", f"{method} is not allowed on /fhir/{path}")

    async def body(self, request: Request) -> dict[str, Any] | Response:
        try:
            doc = orjson.loads(await request.body())
        except orjson.JSONDecodeError as e:
            return self.error(400, "structure", f"the body is not JSON: {e}")
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            return self.error(400, "structure", "the body is not a FHIR resource")
        return doc

    async def create(self, request: Request, rtype: str) -> Response:
        doc = await self.body(request)
        if isinstance(doc, Response):
            return doc
        if doc["resourceType"] != rtype:
            return self.error(400, "invalid", f"a {doc['resourceType']} was posted to /{rtype}")
        if "accepts-invalid" not in self.defects:
            errors = [i for i in default_validator().validate(doc) if i.severity in ("error", "fatal")]
            if errors:
                return self.error(422, "processing", "; ".join(f"{i.expression}: {i.message}" for i in errors))
        rid = f"r{next(self.ids)}"
        stored = {**doc, "id": rid, "meta": {**doc.get("meta", {}), "versionId": "1"}}
        self.store[(rtype, rid)] = stored
        base = str(request.base_url) + "fhir"
        return self.json(stored, 201, {"Location": f"{base}/{rtype}/{rid}/_history/1"})

    def search(self, request: Request, rtype: str, form: list[tuple[str, str]] = ()) -> Response:
        params = [*request.query_params.multi_items(), *form]
        query = [(k, v) for k, v in params if not k.startswith("_")]
        hits = [r for (t, _), r in self.store.items()
                if t == rtype and all(_matches(r, k, v) for k, v in query)]
        base = str(request.base_url) + "fhir"
        given = dict(params)
        count = int(given["_count"]) if given.get("_count", "").isdigit() else 50
        offset = int(given["_offset"]) if given.get("_offset", "").isdigit() else 0
        page = hits[offset:offset + count]
        links = [{"relation": "self", "url": str(request.url)}]
        if offset + count < len(hits):  # paging (search.html#paging): _count is the most a page may hold
            links.append({"relation": "next", "url": f"{base}/{rtype}?" + urlencode(
                [*query, ("_count", str(count)), ("_offset", str(offset + count))])})
        return self.json({"resourceType": "Bundle", "type": "searchset", "total": len(hits), "link": links,
                          "entry": [{"fullUrl": f"{base}/{rtype}/{r['id']}", "resource": r,
                                     "search": {"mode": "match"}} for r in page]})

    async def validate(self, request: Request) -> Response:
        doc = await self.body(request)
        if isinstance(doc, Response):
            return doc
        profiles = request.query_params.getlist("profile")
        if doc["resourceType"] == "Parameters":
            params = doc.get("parameter") or []
            profiles += [p.get("valueUri") for p in params if p.get("name") == "profile"]
            doc = next((p.get("resource") for p in params if p.get("name") == "resource"), None) or {}
        return self.json(default_validator().outcome(doc, profiles))

    async def convert(self, request: Request) -> Response:
        data = await request.body()
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        source = request.query_params.get("source")
        parameters = False
        if media in ("application/fhir+json", "application/json") and data.lstrip().startswith(b"{"):
            doc = orjson.loads(data)
            if doc.get("resourceType") == "Parameters":
                parameters = True
                for p in doc.get("parameter") or []:
                    if p.get("name") == "input":
                        data = p.get("valueString", "").encode()
                    elif p.get("name") == "source":
                        source = p.get("valueCode")
                media = ""
        if media_source(media) is None and media not in GENERIC_MEDIA_TYPES:
            return self.error(415, "not-supported", f"Content-Type {media} is not converted")
        if not data.strip():
            return self.error(400, "required", "the body is empty")
        query = request.query_params
        try:
            src, tgt = resolve(data, source or media_source(media, data), query.get("target") or HUB)
            options = ConvertOptions(params=format_params(src, tgt, query.items()))
            out = run(data, ConvertRequest(src, tgt, options, allow_invalid=True))  # a test server: not validated
        except UnsupportedFormat as e:
            return self.error(415, "not-supported", str(e))
        except ParseError as e:
            return self.error(400, "structure", str(e))
        except MappingError as e:
            return self.error(422, "processing", str(e))
        if not out.media_type.startswith("application/fhir+json"):  # a document that is not FHIR (eHDSI CDA)
            body = out.body
            if "loose-documents" in self.defects:
                body = re.sub(rb"<languageCode[^>]*>", b"", body, count=1)
            if "no-pinyin" in self.defects:  # a Han name left without its pinyin form (eHDSI names are Latin)
                body = re.sub(rb'<name use="ABC">.*?</name>', b"", body, count=1, flags=re.S)
            media = "text/plain; charset=utf-8" if "wrong-content-type" in self.defects else out.media_type
            return Response(body, 200, media_type=media)
        bundle = orjson.loads(out.body)
        if "invalid-resources" in self.defects:
            for entry in bundle.get("entry") or []:
                if GR + "variant" in (entry["resource"].get("meta") or {}).get("profile", []):
                    entry["resource"] = _drop_genetics_category(entry["resource"])
        if "loose-documents" in self.defects:
            _loosen(bundle)
        if parameters:
            return self.json({"resourceType": "Parameters", "parameter": [{"name": "output", "resource": bundle}]})
        return self.json(bundle)

    def app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
        return Starlette(routes=[Route("/fhir/{path:path}", self.dispatch, methods=methods),
                                 Route("/fhir", self.dispatch, methods=methods)])


def hostile_app() -> Starlette:
    """A target that breaks the transport or answers with what is not FHIR, one path per misbehaviour."""

    async def slow(request: Request) -> Response:
        await asyncio.sleep(5)
        return Response(b"{}", media_type=FHIR_JSON)

    async def drip(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"resourceType": "CapabilityStatement", "x": "'
            for _ in range(50):
                await asyncio.sleep(0.1)
                yield b"x"
            yield b'"}'

        return StreamingResponse(chunks(), media_type=FHIR_JSON)

    async def html_page(request: Request) -> Response:
        return Response("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"
                        "</body></html>", 502, media_type="text/html")

    async def text(request: Request) -> Response:
        return Response("OK: service is up", media_type="text/plain")

    async def huge(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"resourceType": "CapabilityStatement", "padding": "'
            for _ in range(64):
                yield b"x" * 65536
            yield b'"}'

        return StreamingResponse(chunks(), media_type=FHIR_JSON)

    async def metadata(request: Request) -> Response:
        return Response(orjson.dumps(capability(str(request.base_url) + "fhir")), media_type=FHIR_JSON)

    return Starlette(routes=[Route("/fhir/slow", slow), Route("/fhir/drip", drip), Route("/fhir/html", html_page),
                             Route("/fhir/text", text), Route("/fhir/huge", huge), Route("/fhir/metadata", metadata)])
