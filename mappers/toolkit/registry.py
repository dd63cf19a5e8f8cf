"""The format registry. Each format is one package under `mappers/` whose `format` module declares `FORMAT`, a
`Format`; the edge (HTTP routes, CLI, workers, bulk jobs, conformance kit) iterates the registry and never names a
format. FHIR JSON is the hub: every format converts to FHIR and/or from FHIR, so any pair converts through it.

Sites add formats without touching helixgate: a distribution that declares an entry point in the group
`helixgate.formats` naming a `Format` is registered too.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from mappers.conversion import Conversion
from mappers.exceptions import Issue, MappingError, operation_outcome

HUB = "fhir"


@dataclass(frozen=True, slots=True)
class Option:
    """A format-specific conversion option: `name` is its query/Parameters name (camelCase); the CLI flag is
    `--kebab-case` of it. `flag` options are booleans ("1", "true", "yes" are true)."""

    name: str
    help: str
    choices: tuple[str, ...] = ()
    flag: bool = False
    metavar: str | None = None
    aliases: tuple[str, ...] = ()  # further CLI flags kept for compatibility

    @property
    def cli(self) -> str:
        return "--" + "".join(f"-{c.lower()}" if c.isupper() else c for c in self.name)


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    """What the caller decides for one conversion; every field is part of the cache key.

    bundle_type: 'collection' or 'transaction' (conditional creates, one policy: mappers.toolkit.bundle).
    timezone: '+HH:MM' assumed for source times that carry none (a format may have its own default).
    recorded: a FHIR instant stated by the caller for sources that carry no time of their own
        (Provenance.recorded); mappers read no clock, so without it such a Provenance is not emitted.
    params: format options (see Format.options) as sorted (name, value) pairs.
    """

    bundle_type: str = "collection"
    timezone: str | None = None
    recorded: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str, default: str | None = None) -> str | None:
        return next((v for k, v in self.params if k == name), default)

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() in ("1", "true", "yes")

    def key_parts(self) -> tuple[str, ...]:
        return (self.bundle_type, self.timezone or "", self.recorded or "", *(f"{k}={v}" for k, v in self.params))


@dataclass(frozen=True, slots=True)
class Rendered:
    """A document written from FHIR, with what the writer could not carry over."""

    data: bytes
    issues: tuple[Issue, ...] = ()

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


@dataclass(frozen=True, slots=True)
class Format:
    """One format, as its package declares it.

    name: the CLI/HTTP name (`hl7v2`, `vcf`, ...). version: the mapper version (cache keys, Provenance).
    media_type: what `from_fhir` writes (with parameters). media_types: Content-Types read as this format
    (without parameters; the first is preferred). sniff: True when the first bytes look like this format;
    formats are tried by ascending `sniff_order`, so a generic one (FHIR JSON) goes last.
    to_fhir / from_fhir: the pure mappers (None where a direction does not exist).
    options: format-specific options. split: a batch file → (where, document) pairs, else one document.
    ndjson: to FHIR as NDJSON text (one resource a line, references Type/id; a line may span pieces), streamed for
    inputs too large for one Bundle; raises MappingError before the first piece for input it cannot convert.
    check_output: a structural check of what from_fhir wrote (issues; errors refuse the conversion).
    fhir_of: for writers whose output is itself FHIR (an IPS document, FHIR XML, ...): the resource the written
    bytes hold, which the edge validates with the FHIR packages like hub output (errors refuse the conversion).
    """

    name: str
    title: str
    version: str
    media_type: str
    media_types: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    to_fhir: Callable[[bytes, ConvertOptions], Conversion] | None = None
    from_fhir: Callable[[dict[str, Any], ConvertOptions], Rendered] | None = None
    options: tuple[Option, ...] = ()
    split: Callable[[bytes], list[tuple[str, bytes]]] | None = None
    ndjson: Callable[[bytes, ConvertOptions], Iterator[bytes]] | None = None
    check_output: Callable[[bytes], list[Issue]] | None = None
    fhir_of: Callable[[bytes], dict[str, Any]] | None = None
    sniff_order: int = 50

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)


class UnsupportedFormat(MappingError):
    """Raised when the source or target format is unknown, or the pair has no converter (HTTP 415)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, details="unsupported-format", code="not-supported")


@cache
def registry() -> dict[str, Format]:
    """Every format: the `format` module of each package under `mappers/`, then the entry points."""
    import mappers

    found: list[Format] = []
    for info in pkgutil.iter_modules(mappers.__path__):
        if not info.ispkg or info.name == "toolkit":
            continue
        try:
            module = importlib.import_module(f"mappers.{info.name}.format")
        except ModuleNotFoundError as e:
            if e.name != f"mappers.{info.name}.format":
                raise
            continue  # a package of shared tables or helpers, not a format
        found.append(module.FORMAT)
    for ep in entry_points(group="helixgate.formats"):
        found.append(ep.load())
    out: dict[str, Format] = {}
    for fmt in sorted(found, key=lambda f: (f.sniff_order, f.name)):
        if fmt.name in out:
            raise RuntimeError(f"two formats are named {fmt.name!r}")
        out[fmt.name] = fmt
    return out


def get(name: str) -> Format:
    """The format called `name`. Raises UnsupportedFormat listing the known ones."""
    fmt = registry().get(name)
    if fmt is None:
        raise UnsupportedFormat(f"unknown format {name!r}; known: {', '.join(sorted(registry()))}")
    return fmt


def by_media_type(media: str, data: bytes | None = None) -> Format | None:
    """The format a Content-Type (without parameters) names, if any. When several formats claim the media type
    (China and EU CDA are both application/cda+xml) and the body is given, the first claimant whose sniff accepts
    it wins; otherwise the first claimant."""
    media = media.split(";")[0].strip().lower()
    claimants = [f for f in registry().values() if media in f.media_types]
    if len(claimants) > 1 and data is not None:
        return next((f for f in claimants if f.sniff(data)), claimants[0])
    return claimants[0] if claimants else None


def detect(data: bytes) -> Format | None:
    """The first format whose sniff accepts the first bytes."""
    return next((f for f in registry().values() if f.sniff(data)), None)


def pairs() -> list[tuple[str, str]]:
    """Every (source, target) that converts: through the hub, so any reader to any writer."""
    readers = [n for n, f in registry().items() if f.to_fhir]
    writers = [n for n, f in registry().items() if f.from_fhir]
    return [(s, t) for s in readers for t in writers if s != t or s == HUB]


def resolve(data: bytes, source: str | None, target: str | None) -> tuple[Format, Format]:
    """Settle source and target: the source detected when not given; the target FHIR, or for FHIR input the
    first other writer that was asked for. Raises UnsupportedFormat saying what is known."""
    src = get(source) if source else detect(data)
    if src is None:
        raise UnsupportedFormat("cannot tell the input format; name it (one of: "
                                f"{', '.join(n for n, f in registry().items() if f.to_fhir)})")
    if src.to_fhir is None:
        raise UnsupportedFormat(f"{src.name} is written from FHIR, not read")
    if target is None:
        if src.name == HUB:
            raise UnsupportedFormat("the input is FHIR: name the target format (one of: "
                                    f"{', '.join(n for n, f in registry().items() if f.from_fhir and n != HUB)})")
        target = HUB
    tgt = get(target)
    if tgt.from_fhir is None:
        raise UnsupportedFormat(f"no conversion to {tgt.name}: it is read, not written; writers: "
                                f"{', '.join(n for n, f in registry().items() if f.from_fhir)}")
    return src, tgt
