"""GET/POST /fhir/ConceptMap/$translate and /fhir/ConceptMap/{id}/$translate: the FHIR R4 ConceptMap $translate
operation over the ConceptMaps shipped in mappers/conceptmaps/, cached under its own key prefix.

In: url (the map's canonical; or the id in the path), system + code (or coding / codeableConcept), target (a
ValueSet: the map's targetUri), targetsystem, reverse. As query parameters, a form body, or a Parameters body.
Out: Parameters with result, message and one match (equivalence, concept, source) per translation.
The CLI's `helixgate translate` calls `translate_cached`, the same function as the route.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cache import Cache
from gateway.fhir_input import parameters
from gateway.responses import FHIRResponse
from mappers.exceptions import ParseError
from mappers.terminology import conceptmaps_digest, conceptmaps_for, find_conceptmap, translate_all

log = logging.getLogger("helixgate.http")
TX_KEY_PREFIX = "helixgate:tx:"  # conversions use helixgate:conv:
_NOT_A_MATCH = ("unmatched", "disjoint")


class MapNotFound(HTTPException):
    """Raised when `url` (or the path id) names no ConceptMap helixgate ships (HTTP 404)."""

    def __init__(self, url: str) -> None:
        super().__init__(404, f"no ConceptMap with url or id {url!r}; GET /fhir/ConceptMap/$translate?system=…"
                              "&code=… searches all maps")


@dataclass(frozen=True, slots=True)
class TranslateQuery:
    codings: tuple[tuple[str | None, str], ...]  # (system, code) pairs to translate
    url: str | None = None
    target: str | None = None  # ValueSet: the map's targetUri (sourceUri when reversing)
    targetsystem: str | None = None
    reverse: bool = False

    def cache_key(self) -> str:
        h = hashlib.sha256(orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS))
        h.update(conceptmaps_digest().encode())
        return TX_KEY_PREFIX + h.hexdigest()


def _bool(value: Any, name: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "1"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", ""):
        return False
    raise ParseError(f"parameter {name}={str(value)[:80]!r} must be true or false",
                     details="translate-bad-parameter", expression=name)


def _text(value: Any, name: str) -> str | None:
    """A parameter that must be a string (uri, code, canonical): anything else is the client's error."""
    if value is None or isinstance(value, str):
        return value
    raise ParseError(f"parameter {name} must be a string, not {type(value).__name__}",
                     details="translate-bad-parameter", expression=name)


def _coding(value: Any, name: str) -> tuple[str | None, str]:
    """(system, code) of a Coding parameter; ParseError when it is not an object with string system and code."""
    if not isinstance(value, dict):
        raise ParseError(f"{name} must be a Coding (a JSON object), not {type(value).__name__}",
                         details="translate-bad-parameter", expression=name)
    return _text(value.get("system"), f"{name}.system"), _text(value.get("code", ""), f"{name}.code") or ""


def query_from_pairs(pairs: list[tuple[str, Any]], map_id: str | None = None) -> TranslateQuery:
    """A query from (name, value) pairs: query string, form fields or Parameters.parameter values.
    Raises ParseError when there is no code or a value is malformed."""
    single: dict[str, Any] = {}
    codings: list[tuple[str | None, str]] = []
    for name, value in pairs:
        if not isinstance(name, str):
            raise ParseError("a parameter's name must be a string", details="translate-bad-parameter",
                             expression="name")
        if name == "coding" and isinstance(value, dict):
            codings.append(_coding(value, name))
        elif name == "codeableConcept" and isinstance(value, dict):
            coding = value.get("coding", [])
            if not isinstance(coding, list):
                raise ParseError("codeableConcept.coding must be an array of Codings", expression="codeableConcept"
                                 ".coding", details="translate-bad-parameter")
            codings += [_coding(c, f"codeableConcept.coding[{i}]") for i, c in enumerate(coding)]
        elif name in single:
            raise ParseError(f"parameter {name} is repeated; $translate takes one", details="translate-bad-parameter",
                             expression=name)
        else:
            single[name] = value
    for name in ("system", "url", "conceptMap", "target", "targetsystem"):
        _text(single.get(name), name)
    if "code" in single:
        if isinstance(single["code"], dict | list):
            raise ParseError("parameter code must be a code (a string)", details="translate-bad-parameter",
                             expression="code")
        codings.insert(0, (single.get("system"), str(single["code"])))
    codings = [(s, c) for s, c in codings if c]
    if not codings:
        raise ParseError("$translate needs a code: code (with system), coding or codeableConcept",
                         details="translate-missing-code", expression="code")
    url = map_id or single.get("url") or single.get("conceptMap")
    if url is None and any(s is None for s, _ in codings):
        raise ParseError("name the source code system (system) or the ConceptMap (url)",
                         details="translate-missing-system", expression="system")
    return TranslateQuery(tuple(codings), url, single.get("target"), single.get("targetsystem"),
                          _bool(single.get("reverse"), "reverse"))


def query_from_parameters(doc: dict[str, Any], map_id: str | None = None) -> TranslateQuery:
    """A query from a FHIR Parameters resource (valueUri, valueCode, valueString, valueBoolean, valueCoding …)."""
    pairs: list[tuple[str, Any]] = []
    for p in parameters(doc):
        value = next((v for k, v in p.items() if k.startswith("value")), None)
        pairs.append((p.get("name", ""), value))
    return query_from_pairs(pairs, map_id)


def translate(q: TranslateQuery) -> dict[str, Any]:
    """The $translate result as a Parameters resource. Raises MapNotFound for an unknown url."""
    matches: list[dict[str, Any]] = []
    searched: list[str] = []
    result = False
    for system, code in q.codings:
        if q.url:
            cm = find_conceptmap(q.url)
            if cm is None:
                raise MapNotFound(q.url)
            maps = [cm]
        else:
            maps = conceptmaps_for(system, q.targetsystem, q.target, reverse=q.reverse)
        for cm in maps:
            searched.append(cm["id"])
            for t in translate_all(cm["id"], code, reverse=q.reverse):
                if q.targetsystem and t.system != q.targetsystem:
                    continue
                concept = {"system": t.system, "code": t.code, **({"display": t.display} if t.display else {})}
                matches.append({"name": "match", "part": [
                    {"name": "equivalence", "valueCode": t.equivalence},
                    {"name": "concept", "valueCoding": concept},
                    {"name": "source", "valueUri": cm.get("url", cm["id"])}]})
                result = result or t.equivalence not in _NOT_A_MATCH
    params: list[dict[str, Any]] = [{"name": "result", "valueBoolean": result}]
    first = f"{q.codings[0][0] or ''}|{q.codings[0][1]}".lstrip("|")
    if not searched:
        where = f"from {q.codings[0][0]}" if not q.reverse else f"to {q.codings[0][0]} (reverse)"
        params.append({"name": "message", "valueString": f"no ConceptMap translates {where}"
                       + (f" to {q.targetsystem}" if q.targetsystem else "")})
    elif not result:
        how = "; the map's unmapped rule gives no concept" if not matches else \
            "; only an 'unmatched' fallback from group.unmapped"
        params.append({"name": "message", "valueString": f"no translation for {first} in "
                       f"{', '.join(dict.fromkeys(searched))}{how}"})
    return {"resourceType": "Parameters", "parameter": params + matches}


async def translate_cached(q: TranslateQuery, cache: Cache) -> tuple[dict[str, Any], bool]:
    """`translate` through the cache (key prefix helixgate:tx:, maps' digest in the key); returns (result, hit)."""
    key = q.cache_key()
    hit = await cache.get(key)
    if hit is not None:
        return orjson.loads(hit), True
    out = translate(q)
    await cache.set(key, orjson.dumps(out))
    return out, False


async def _query(request: Request) -> TranslateQuery:
    from gateway.routes import read_body  # here, not at import: gateway.routes imports this module

    map_id = request.path_params.get("id")
    pairs: list[tuple[str, Any]] = list(request.query_params.multi_items())
    if request.method == "POST":
        body = await read_body(request, request.app.state.settings.max_request_bytes)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if body.strip() and media in ("application/fhir+json", "application/json", "application/json+fhir"):
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError as e:
                raise ParseError(f"request body is not valid JSON: {e}", details="bad-json") from None
            if not isinstance(doc, dict) or doc.get("resourceType") != "Parameters":
                raise ParseError("a $translate POST body must be a Parameters resource",
                                 details="translate-not-parameters", expression="resourceType")
            if pairs:
                raise ParseError("give the parameters either in the Parameters body or in the query, not both",
                                 details="translate-bad-parameter")
            return query_from_parameters(doc, map_id)
        if body.strip() and media == "application/x-www-form-urlencoded":
            pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        elif body.strip():
            raise ParseError(f"Content-Type {media!r}: POST a Parameters resource (application/fhir+json) or a "
                             "form (application/x-www-form-urlencoded)", details="translate-bad-body")
    return query_from_pairs(pairs, map_id)


async def translate_route(request: Request) -> Response:
    q = await _query(request)
    if request.path_params.get("id") and find_conceptmap(request.path_params["id"]) is None:
        raise MapNotFound(request.path_params["id"])
    out, hit = await translate_cached(q, request.app.state.cache)
    log.info("translate codes=%d cached=%s", len(q.codings), hit)  # no codes logged: they may identify a patient
    return FHIRResponse(out, headers={"X-Cache": "hit" if hit else "miss"})


routes = [
    Route("/fhir/ConceptMap/$translate", translate_route, methods=["GET", "POST"]),
    Route("/fhir/ConceptMap/{id}/$translate", translate_route, methods=["GET", "POST"]),
]
