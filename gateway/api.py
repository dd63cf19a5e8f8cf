"""The Python API for programs that embed helixgate: `convert`, `validate`, `translate`, `exchange` — the same
services as `POST /fhir/$convert`, `$validate`, `$translate`, `$exchange` and the CLI, called in-process,
synchronously, without a server, a cache or sandbox processes (the caller's process runs the mappers and the
validator; give it untrusted input only under your own time and memory limits, as the server's sandbox does).

Types in (bytes, str, a path, or a parsed resource), typed results out: the output (bytes, with `.json()` /
`.text()`), the report as a FHIR OperationOutcome (`.report`) and as `Issue` tuples (`.issues`). A conversion that
cannot be done raises `MappingError` (its `.outcome()` is the OperationOutcome; `InvalidOutput` when the output fails
validation and `allow_invalid` is not set).

With the `fhir` extra (`pip install 'helixgate[fhir]'`), `.resource()` gives the output as a fhir.resources model.
fhir.resources' releases model FHIR R4B (4.3.0) and R5, not R4 (4.0.1), which helixgate emits: the models are the
R4B classes (`fhir.resources.R4B`), the closest release — the resources helixgate emits read and write back
unchanged through them (tests/gateway/test_api.py checks every format's example outputs) with one exception: a time
in UTC written `+00:00` comes back as `Z` (the same instant). A model's validation is R4B's, not R4's, and no
substitute for `validate`, which checks R4 and the Genomics Reporting IG.

`import helixgate` gives these same functions (helixgate/__init__.py re-exports this module: the project's own
import packages stay gateway, mappers, profiles and conformance).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from gateway.convert import InvalidOutput, run
from gateway.exchange.rules import Refused
from gateway.formats import HUB, Converted, Request, format_params, resolve, validates_fhir
from gateway.settings import check_timezone
from mappers.exceptions import MappingError, ParseError
from mappers.toolkit.registry import ConvertOptions

__all__ = [
    "Conversion",
    "Exchange",
    "InvalidOutput",
    "Issue",
    "MappingError",
    "Refused",
    "Translation",
    "Validation",
    "convert",
    "exchange",
    "translate",
    "validate",
]

Input = bytes | str | Path | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Issue:
    """One issue of an OperationOutcome: severity (fatal|error|warning|information), the FHIR issue type (`code`),
    helixgate's own code for it (`details`), the message, and where (FHIRPath expressions or source locations)."""

    severity: str
    code: str
    details: str | None
    message: str
    expression: tuple[str, ...] = ()

    @classmethod
    def of(cls, issue: Mapping[str, Any]) -> Issue:
        details = issue.get("details") or {}
        coding = (details.get("coding") or [{}])[0]
        return cls(str(issue.get("severity", "")), str(issue.get("code", "")), coding.get("code"),
                   details.get("text") or issue.get("diagnostics") or "", tuple(issue.get("expression") or ()))


def _issues(outcome: Mapping[str, Any]) -> tuple[Issue, ...]:
    return tuple(Issue.of(i) for i in outcome.get("issue", ()))


@dataclass(frozen=True, slots=True)
class Conversion:
    """A conversion's result: `output` in `media_type`, and its report (the mapper's account of what it did not map,
    then the validator's findings on the output)."""

    output: bytes
    media_type: str
    source: str
    target: str
    report: dict[str, Any]  # OperationOutcome

    @property
    def issues(self) -> tuple[Issue, ...]:
        return _issues(self.report)

    def json(self) -> Any:
        """The output parsed (FHIR JSON, WS 445 JSON, phenopackets…)."""
        return orjson.loads(self.output)

    def text(self) -> str:
        return self.output.decode("utf-8")

    def resource(self) -> Any:
        """The FHIR output as a fhir.resources R4B model (the `fhir` extra). ValueError for other outputs."""
        if not self.media_type.startswith("application/fhir+json"):
            raise ValueError(f"the output is {self.target} ({self.media_type}), not FHIR JSON: convert to fhir")
        return as_model(self.json())


@dataclass(frozen=True, slots=True)
class Validation:
    outcome: dict[str, Any]  # OperationOutcome

    @property
    def issues(self) -> tuple[Issue, ...]:
        return _issues(self.outcome)

    @property
    def errors(self) -> int:
        return sum(1 for i in self.issues if i.severity in ("error", "fatal"))

    @property
    def valid(self) -> bool:
        return self.errors == 0


@dataclass(frozen=True, slots=True)
class Match:
    equivalence: str
    system: str | None
    code: str
    display: str | None
    source: str  # the ConceptMap's canonical URL


@dataclass(frozen=True, slots=True)
class Translation:
    result: bool  # whether some match is not 'unmatched' or 'disjoint'
    matches: tuple[Match, ...]
    message: str | None
    parameters: dict[str, Any]  # the FHIR $translate output


def _bytes(data: Input) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, Path):
        return data.read_bytes()
    if isinstance(data, Mapping):
        return orjson.dumps(data)
    raise TypeError(f"expected bytes, str, a Path or a resource (dict), not {type(data).__name__}")


@functools.cache
def _validator() -> Any:
    """The validator over the installed FHIR packages (built once: seconds); None when they are not installed."""
    from profiles.context import default_validator
    from profiles.packages.exceptions import PackageError

    try:
        return default_validator()
    except PackageError:
        return None


def convert(data: Input, *, source: str | None = None, target: str = HUB, bundle_type: str = "collection",
            allow_invalid: bool = False, options: Mapping[str, str] | None = None,
            v2_timezone: str | None = None) -> Conversion:
    """Convert `data` from `source` (a format name: None detects it) to `target` (default FHIR), validating FHIR
    output. `options` are the formats' own (e.g. {"assembly": "GRCh38"} for VCF); `bundle_type` collection or
    transaction. Raises MappingError (ParseError, UnsupportedFormat, InvalidOutput…) saying why."""
    body = _bytes(data)
    if bundle_type not in ("collection", "transaction"):
        raise ParseError(f"bundle_type {bundle_type!r} must be 'collection' or 'transaction'",
                         details="bad-bundle-type")
    src, tgt = resolve(body, source, target)
    tz = check_timezone(v2_timezone) if v2_timezone else None
    opts = ConvertOptions(bundle_type, tz, None, format_params(src, tgt, (options or {}).items()))
    validator = _validator() if validates_fhir(tgt) else None
    result: Converted = run(body, Request(src, tgt, opts, allow_invalid), validator)
    return Conversion(result.body, result.media_type, src, tgt, result.outcome)


def validate(resource: Input, profiles: tuple[str, ...] | list[str] = ()) -> Validation:
    """Validate a FHIR resource (JSON or XML; a dict) against FHIR R4, the profiles it claims and `profiles`.
    Raises ParseError when it is no resource, PackageError when the FHIR packages are not installed."""
    from gateway.validate import read_resource
    from profiles.context import default_validator

    doc = dict(resource) if isinstance(resource, Mapping) else read_resource(_bytes(resource))
    validator = _validator() or default_validator()  # the second call raises PackageError naming the fix
    return Validation(validator.outcome(doc, tuple(profiles)))


def translate(code: str, system: str | None = None, *, url: str | None = None, target: str | None = None,
              target_system: str | None = None, reverse: bool = False) -> Translation:
    """FHIR ConceptMap $translate over the shipped ConceptMaps: `code` from `system` (or through the map `url`).
    Raises ParseError for a missing code/system, LookupError for an unknown map."""
    from gateway.terminology_routes import MapNotFound, TranslateQuery
    from gateway.terminology_routes import translate as run_translate

    if not code:
        raise ParseError("translate needs a code", details="translate-missing-code")
    if url is None and system is None:
        raise ParseError("name the source code system or the ConceptMap (url)", details="translate-missing-system")
    try:
        out = run_translate(TranslateQuery(((system, code),), url, target, target_system, reverse))
    except MapNotFound as e:
        raise LookupError(e.detail) from None
    matches, message, result = [], None, False
    for p in out["parameter"]:
        if p["name"] == "result":
            result = p["valueBoolean"]
        elif p["name"] == "message":
            message = p["valueString"]
        elif p["name"] == "match":
            part = {x["name"]: x for x in p["part"]}
            concept = part["concept"]["valueCoding"]
            matches.append(Match(part["equivalence"]["valueCode"], concept.get("system"), concept["code"],
                                 concept.get("display"), part["source"]["valueUri"]))
    return Translation(result, tuple(matches), message, out)


@dataclass(frozen=True, slots=True)
class Exchange:
    """A transfer's result: `decision` (permit; a refusal raises `Refused`), the `output` in `media_type` for a
    route that returns it (empty for a dry run or a delivered one), and `parameters`: the same Parameters that
    `POST /fhir/$exchange` answers (decision, output, outcome, change…, provenance, auditEvent…)."""

    decision: str
    route: str
    output: bytes
    media_type: str
    report: dict[str, Any]  # OperationOutcome of the conversion
    parameters: dict[str, Any]

    @property
    def issues(self) -> tuple[Issue, ...]:
        return _issues(self.report)

    @property
    def changes(self) -> tuple[dict[str, Any], ...]:
        """What the route's rules changed: rule, action, path (and note) of each change."""
        return tuple({x["name"]: next(v for k, v in x.items() if k.startswith("value")) for x in p["part"]}
                     for p in self.parameters["parameter"] if p["name"] == "change")


_stores: dict[str, Any] = {}  # the in-process counters and audit trail, when no Redis is named


def exchange(data: Input, *, route: str, purpose: str, routes: str | Path | None = None,
             consents: tuple[Mapping[str, Any], ...] | list[Mapping[str, Any]] = (),
             mechanisms: tuple[str, ...] | list[str] = (), legal_basis: str | None = None,
             filing: str | None = None, source: str | None = None, dry_run: bool = False,
             redis_url: str | None = None) -> Exchange:
    """A cross-border transfer of `data` under `route` of the routes file `routes` (default:
    HELIXGATE_EXCHANGE_ROUTES), as `POST /fhir/$exchange` and `helixgate exchange` do it: converted, the route's
    rules applied, validated, counted and audited. Counters and the audit trail are kept in Redis (`redis_url`, else
    HELIXGATE_REDIS_URL) or, without one, in this process. A refusing rule raises `Refused` (its `outcome()` names
    the rule and what would satisfy it); input that does not convert raises MappingError. Not from inside a running
    event loop (it runs its own)."""
    import asyncio
    import os

    from gateway.exchange import counters, trail
    from gateway.exchange.http import answer
    from gateway.exchange.pipeline import run as run_exchange
    from gateway.exchange.pipeline import today
    from gateway.exchange.routes import load
    from gateway.exchange.rules.facts import Transfer
    from gateway.exchange.service import LocalEngine

    where = str(routes or os.environ.get("HELIXGATE_EXCHANGE_ROUTES", "")).strip()
    if not where:
        raise ValueError("name the exchange routes file: routes=… or HELIXGATE_EXCHANGE_ROUTES")
    loaded = load(where)
    chosen = loaded.get(route)
    transfer = Transfer(purpose=purpose, day=today(chosen) if chosen else "", mechanisms=tuple(mechanisms),
                        legal_basis=legal_basis, filing=filing, consents=tuple(dict(c) for c in consents))
    body = _bytes(data)
    if isinstance(data, Mapping) and source is None:
        source = HUB
    upstream = None
    if chosen is not None and chosen["delivery"]["mode"] == "upstream":
        from gateway.settings import Settings
        from gateway.upstream import make_upstream

        upstream = make_upstream(Settings.from_env())

    async def transfer_now() -> Any:
        url = redis_url or os.environ.get("HELIXGATE_REDIS_URL", "").strip()
        client = None
        if url:
            from gateway.workers.streams import redis_client

            client = redis_client(url)
            counts, audit = counters.RedisCounters(client), trail.RedisTrail(client)
        else:
            counts = _stores.setdefault("counters", counters.MemoryCounters())
            audit = _stores.setdefault("trail", trail.MemoryTrail())
        try:
            return await run_exchange(body, source=source, route_id=route, transfer=transfer, routes=loaded,
                                      engine=LocalEngine(_validator(), upstream), counters=counts, trail=audit,
                                      client="python-api", dry_run=dry_run)
        finally:
            if client is not None:
                await client.aclose()
            if upstream is not None:
                await upstream.aclose()

    result = asyncio.run(transfer_now())
    return Exchange(result.decision, result.route, b"" if dry_run else result.body, result.media_type,
                    result.outcome, answer(result, dry_run))


def as_model(resource: Mapping[str, Any]) -> Any:
    """A FHIR resource (dict) as its fhir.resources R4B model class. ImportError names the extra to install."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise ImportError("the fhir.resources models need the 'fhir' extra: pip install 'helixgate[fhir]'") from None
    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def from_model(model: Any) -> dict[str, Any]:
    """A fhir.resources model back to FHIR JSON (a dict), as the model writes it."""
    return orjson.loads(model.model_dump_json(by_alias=True, exclude_none=True))
