"""Per-conversion state: options, the issues found, which source fields were used, and where each output element
came from (origins)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress
from operator import itemgetter
from typing import Any

from mappers.exceptions import Issue
from mappers.hl7v2 import memo
from mappers.hl7v2.model import Message, Segment
from mappers.hl7v2.parse import Limits
from mappers.hl7v2.structure import known_segments

# Fields whose absence of use is not worth a report: framing and structure only.
_STRUCTURAL_FIELDS = {("MSH", 1), ("MSH", 2)}
_INDEX = re.compile(r"\[\d+\]")
_MAX_LISTED = 20  # unmapped components listed one by one per field
_NONE: frozenset[int] = frozenset()
_NOTHING: dict[int, set[int]] = {}


_FIRST = [frozenset(range(1, k + 1)) for k in range(33)]  # components 1..k


def _unused(key: tuple[int, int, frozenset[int]]) -> tuple[tuple[int, ...], Callable[[tuple[str, ...]], Any]]:
    """The fields start..size-1 not in `whole`, and a function giving their texts out of a segment's fields: the
    same few per segment kind and emitter (memo; a segment of more fields than HL7 defines is not kept)."""
    start, size, whole = key
    unused = tuple(n for n in range(start, size) if n not in whole)
    read = itemgetter(*unused) if len(unused) > 1 else _one(unused[0]) if unused else _none
    return memo.remember(_UNUSED, key, (unused, read)) if size <= _KEPT_FIELDS else (unused, read)


def _one(n: int) -> Callable[[tuple[str, ...]], tuple[str]]:
    return lambda fields: (fields[n],)


def _none(fields: tuple[str, ...]) -> tuple[str, ...]:
    return ()


_UNUSED: dict[tuple[int, int, frozenset[int]], tuple[tuple[int, ...], Callable[[tuple[str, ...]], Any]]] = {}
_KEPT_FIELDS = 64  # v2.9 OBX has 33 fields


def _field_not_mapped(name: str, n: int, ref: str) -> Issue:
    """The issue of an unused field: the same few on every message, and an Issue is immutable, so kept (memo)."""
    key = (ref, n)
    issue = _NOT_MAPPED.get(key)
    if issue is None:
        issue = Issue("information", "informational", "hl7v2-field-not-mapped", f"{name}-{n} was not mapped",
                      f"{ref}-{n}")
        if len(ref) <= memo.SHORT:
            memo.remember(_NOT_MAPPED, key, issue)
    return issue


_NOT_MAPPED: dict[tuple[str, int], Issue] = {}


@lru_cache(maxsize=1024)  # the same few paths (component[3], identifier[0]) on every resource
def _unindexed(path: str) -> str:
    return _INDEX.sub("", path)


@dataclass(frozen=True, slots=True)
class Options:
    """What the caller decides; mappers read nothing else (no clock: times come from the message).

    bundle_type: 'collection' or 'transaction' (conditional creates, mappers.toolkit.bundle).
    timezone: '+HH:MM' assumed for v2 times that carry none; None keeps only their date and warns.
    recorded: an instant stated by the caller, Provenance.recorded when MSH-7 is not an instant (else no
        Provenance is emitted).
    variable_names: site entries added to tables/genetic-variable-names.json, as (name or local code, LOINC)
        pairs; they win over the shipped entries (see variable_names.py).
    limits: caps on the input's size and shape (mappers.hl7v2.parse.Limits).
    """

    bundle_type: str = "collection"
    timezone: str | None = None
    recorded: str | None = None
    variable_names: tuple[tuple[str, str], ...] = ()
    limits: Limits = field(default_factory=Limits)


@dataclass(slots=True)
class Context:
    message: Message
    options: Options = field(default_factory=Options)
    issues: list[Issue] = field(default_factory=list)
    # Conversion.origins: resource id (or "id:path") → source expression such as OBX[3]-14.
    origins: dict[str, str] = field(default_factory=dict)
    # What emitters read, by segment (its ref, OBX[3]): whole fields, and fields read component by component. The
    # sets are immutable, so one given by an emitter (a row's usual fields, CWE's components) is kept as it is.
    _whole: dict[str, frozenset[int]] = field(default_factory=dict)
    _parts: dict[str, dict[int, frozenset[int]]] = field(default_factory=dict)

    def use(self, seg: Segment, *fields: int) -> None:
        """Mark whole fields of `seg` as mapped (fields read as one value: ST, NM, ID, DTM, ...)."""
        whole = self._whole.get(seg.ref)
        self._whole[seg.ref] = frozenset(fields) if whole is None else whole.union(fields)

    def use_component(self, seg: Segment, n: int, *comps: int) -> None:
        """Mark components of field n of `seg` as mapped (fields read component by component)."""
        parts = self._parts.get(seg.ref)
        if parts is None:
            self._parts[seg.ref] = {n: frozenset(comps)}
            return
        used = parts.get(n)
        parts[n] = frozenset(comps) if used is None else used.union(comps)

    def use_row(self, seg: Segment, fields: frozenset[int],
                parts: Iterable[tuple[int, frozenset[int]]] = ()) -> None:
        """use() and use_component() in one call: whole `fields`, and for each (n, comps) of `parts` the components
        comps of field n (an emitter that reads a row collects what it read, and marks it once)."""
        ref = seg.ref
        whole = self._whole.get(ref)
        self._whole[ref] = fields if whole is None else whole | fields
        if not parts:
            return
        own = self._parts.get(ref)
        if own is None:
            own = self._parts[ref] = {}
        for n, comps in parts:
            used = own.get(n)
            own[n] = comps if used is None else used | comps

    def use_segment(self, seg: Segment) -> None:
        self.use(seg, *range(1, len(seg.fields)))

    def origin(self, res: dict[str, Any] | str, where: str, path: str = "") -> None:
        """Record that `res` (a resource or its id), or its element at FHIRPath `path`, came from `where`. A path
        with list indexes (`component[2]`) is recorded as given and without them (`component`, listing every source
        of the list), as mappers.toolkit.origins looks paths up without indexes."""
        rid = res if isinstance(res, str) else res["id"]
        origins = self.origins
        if not path:
            origins.setdefault(rid, where)
            return
        origins.setdefault(f"{rid}:{path}", where)
        if "[" in path:
            key = f"{rid}:{_unindexed(path)}"
            have = origins.get(key)
            if have is None:
                origins[key] = where
            elif have != where and where not in have.split(", "):
                origins[key] = f"{have}, {where}"

    def origin_paths(self, rid: str, paths: dict[str, str]) -> None:
        """origin(rid, where, path) for every path → where of `paths`, in order (an emitter's origins at once)."""
        origins = self.origins
        prefix = rid + ":"
        # an unindexed key's sources so far, as origin() splits them, and its value's pieces (joined at the end)
        lists: dict[str, tuple[set[str], list[str]]] = {}
        for path, where in paths.items():
            origins.setdefault(prefix + path, where)
            if "[" not in path:
                continue
            key = prefix + _unindexed(path)
            got = lists.get(key)
            if got is None:
                have = origins.get(key)
                if have is None:
                    origins[key] = where  # in its place among the keys; the value is final below
                    lists[key] = ({where} if ", " not in where else set(where.split(", ")), [where])
                    continue
                got = lists[key] = (set(have.split(", ")), [have])
            seen, pieces = got
            # origin() appends a source the value does not hold yet (and that is not the whole value)
            if where in seen:
                continue
            if ", " not in where:  # one source (a component's OBX[n]-5): nothing to split
                pieces.append(where)
                seen.add(where)
            elif ", ".join(pieces) != where:
                pieces.append(where)
                seen.update(where.split(", "))
        for key, (_, pieces) in lists.items():
            if len(pieces) > 1:
                origins[key] = ", ".join(pieces)

    def warn(self, details: str, message: str, where: str | None = None, code: str = "value") -> None:
        self.issues.append(Issue("warning", code, details, message, where))

    def inform(self, details: str, message: str, where: str | None = None, code: str = "informational") -> None:
        self.issues.append(Issue("information", code, details, message, where))

    def unmapped(self) -> list[Issue]:
        """One issue per non-empty field (or component) that no emitter marked as used."""
        out: list[Issue] = []
        known = known_segments()
        whole_of, parts_of = self._whole, self._parts
        for seg in self.message.segments:
            name = seg.name
            if name not in known and not name.startswith("Z"):
                out.append(Issue("warning", "structure", "hl7v2-unknown-segment",
                                 f"line {seg.line}: {name} is not an HL7 v2 segment (misspelt?); the row was "
                                 "not converted", seg.ref))
                continue
            fields = seg.fields
            ref = seg.ref
            start = 3 if name == "MSH" else 1
            whole = whole_of.get(ref, _NONE)
            # non-empty fields not used whole: of the fields not used, those non-empty (in C: dozens of rows)
            key = (start, len(fields), whole)
            unused, read = _UNUSED.get(key) or _unused(key)
            texts = read(fields)
            if not any(texts):
                continue
            todo = list(compress(unused, texts))
            parts = parts_of.get(ref, _NOTHING)
            if parts.keys().isdisjoint(todo) and not any(start <= n < len(fields) and fields[n] for n in whole):
                sev = "warning" if name.startswith("Z") else "information"
                kind = "Z-segment" if name.startswith("Z") else "segment"
                out.append(Issue(sev, "informational", "hl7v2-segment-not-mapped",
                                 f"{kind} {name} (line {seg.line}) was kept but not mapped to FHIR", ref))
                continue
            rs, cs = seg.delims.repetition, seg.delims.component
            for n in todo:
                if n <= 2 and (name, n) in _STRUCTURAL_FIELDS:
                    continue
                used = parts.get(n)
                if used is None:
                    out.append(_field_not_mapped(name, n, ref))
                    continue
                raw = fields[n]
                if rs not in raw:  # one repetition: are all its components used?
                    last = raw.count(cs) + 1
                    first = _FIRST[last] if last < len(_FIRST) else range(1, last + 1)
                    if last <= len(used) and used.issuperset(first):
                        continue
                listed = 0
                for rep, raw in enumerate(seg.repetitions(n), 1):
                    comps = raw.split(seg.delims.component)
                    if used.issuperset(range(1, len(comps) + 1)):
                        continue
                    for c, text in enumerate(comps, 1):
                        if text and c not in used:
                            listed += 1
                            if listed > _MAX_LISTED:
                                continue
                            where = f"{seg.ref}-{n}.{c}" if rep == 1 else f"{seg.ref}-{n}({rep}).{c}"
                            out.append(Issue("information", "informational", "hl7v2-component-not-mapped",
                                             f"{name}-{n}.{c} was not mapped", where))
                if listed > _MAX_LISTED:  # one line for the rest: the report stays proportional to what matters
                    out.append(Issue("information", "informational", "hl7v2-component-not-mapped",
                                     f"{listed - _MAX_LISTED} more components of {name}-{n} were not mapped",
                                     f"{seg.ref}-{n}"))
        return out
