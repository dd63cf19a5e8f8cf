"""The shared Genomics Reporting IG 3.0.0 emitter: variant, implication, sequence-phase relationship and genomic
report, built from neutral facts by pure functions. Every format that produces variants builds them here, so one
place knows how an IG variant looks (component slices, their order, codes and value types: genomics.json).

Codes of the kinds of Observation written (69548-6, 82120-7, the TBD implication codes, 51969-4) and the TBD code
system come from the reader's table (mappers.fhir.genomics), and `variant_facts` reads back what `variant` wrote,
so writing and reading agree.

A fact may be given as it is (a string, a number, a (low, high) pair, a `Code`, a CodeableConcept dict) or as
`Stated(value, code, where)`: the component code the source used (the slice's code otherwise) and the source
expression it came from, recorded in the `origins` the builders fill (element path → where).

Emitted resources share constant parts (codes, categories, profiles): serialise them, or copy before editing
(mappers.toolkit.bundle.bundle does).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import compress, repeat
from operator import is_not
from pathlib import Path
from typing import Any, NamedTuple

from mappers.fhir import genomics as reader
from mappers.terminology import translate

GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
LOINC = reader.LOINC


@cache
def table() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "genomics.json").read_text("utf-8"))


class Code(NamedTuple):
    """One coding (a tuple, so cheap to hash: emitted components of the same codes are built once)."""

    system: str
    code: str
    display: str | None = None

    def coding(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True, init=False)
class Stated:
    """A fact as its source stated it: the value, the component code it was stated under (None: the slice's own
    code) and the source expression (Conversion.origins)."""

    value: Any
    code: dict[str, Any] | None = None
    where: str | None = None

    def __init__(self, value: Any, code: dict[str, Any] | None = None, where: str | None = None) -> None:
        # one per fact of every row or record: slots filled directly (the frozen dataclass __init__ costs more)
        _SET_VALUE(self, value)
        _SET_CODE(self, code)
        _SET_WHERE(self, where)


_SET_VALUE, _SET_CODE, _SET_WHERE = (Stated.__dict__[k].__set__ for k in ("value", "code", "where"))


@dataclass(frozen=True, slots=True)
class Component:
    """A component no slice holds, kept under its own code (the IG slices components openly by code):
    `value` is the value[x] element, e.g. {"valueString": "…"}."""

    code: dict[str, Any]
    value: dict[str, Any]
    where: str | None = None


Fact = Any  # a value (see the module notes), a Stated, or for repeating slots a list of them


@dataclass(slots=True)
class Variant:
    """What a source says about one variant (IG `variant`). Coded facts take a Code, a CodeableConcept dict or a
    string: a key of the slot's answers (source_class 'somatic', allelic_state 'heterozygous', coordinate_system
    '0-based-interval' | '0-based-character' | '1-based-character', assembly 'GRCh38'), a chromosome name
    ('7', 'X'), a RefSeq/Ensembl accession for sequence ids, else a code of the slot's text system (HGVS, SO,
    dbSNP, HGNC). Positions are (low, high) in `coordinate_system`, which any position requires. Quantities are
    numbers (UCUM '1') or Quantity dicts. `assessment` is the Observation value (default Present)."""

    genes: Fact = None
    transcript: Fact = None
    c_hgvs: Fact = None
    protein_ref_seq: Fact = None
    p_hgvs: Fact = None
    g_hgvs: Fact = None
    iscn: Fact = None
    cytogenetic_locations: Fact = None
    assembly: Fact = None
    chromosome: Fact = None
    genomic_ref_seq: Fact = None
    coordinate_system: Fact = None
    exact: Fact = None
    outer: Fact = None
    inner: Fact = None
    ref: Fact = None
    alt: Fact = None
    change_type: Fact = None
    variation_codes: Fact = None
    source_class: Fact = None
    allelic_state: Fact = None
    inheritance: Fact = None
    inheritance_basis: Fact = None
    allele_fraction: Fact = None
    read_depth: Fact = None
    copy_number: Fact = None
    confidence: Fact = None
    assessment: Fact = None
    method: Fact = None
    # components the format keeps beyond the IG slices, written after them (a dict: a component as it is)
    extra: Sequence[Component | dict[str, Any]] = ()


@dataclass(slots=True)
class Implication:
    """A diagnostic or therapeutic implication (IG `diagnostic-implication`, `therapeutic-implication`) derived
    from the findings `derived_from` (references)."""

    kind: str = "diagnostic-implication"  # | "therapeutic-implication"
    evidence_levels: Fact = None
    clinical_significance: Fact = None
    phenotypes: Fact = None
    mode_of_inheritance: Fact = None
    effects: Fact = None
    medications: Fact = None
    therapies: Fact = None
    extra: Sequence[Component | dict[str, Any]] = ()


@dataclass(slots=True)
class Report:
    """A DiagnosticReport. With `genomic` it is the IG's genomic-report: profile, category Genetics (v2-0074 GE)
    and code 51969-4 first, any other code of the source kept beside it; otherwise `category` (default
    laboratory) and `code` as given."""

    id: str
    status: str = "final"
    genomic: bool = True
    code: dict[str, Any] | None = None  # the source's own code (e.g. LRI 81247-9)
    category: Sequence[dict[str, Any]] = ()
    identifier: Sequence[dict[str, Any]] = ()
    based_on: Sequence[dict[str, Any]] = ()
    subject: dict[str, Any] | None = None
    effective: Stated | str | None = None
    issued: Stated | str | None = None
    specimens: Sequence[dict[str, Any]] = ()
    results: Sequence[dict[str, Any]] = ()
    conclusion: str | None = None
    conclusion_codes: Sequence[Stated | dict[str, Any]] = ()
    presented_forms: Sequence[Stated | dict[str, Any]] = ()
    study: dict[str, Any] | None = None  # a GenomicStudy reference (extension genomic-study-reference)
    extension: Sequence[dict[str, Any]] = field(default_factory=tuple)


# ---- codes -------------------------------------------------------------------------------------------------

def _system(name_or_url: str) -> str:
    if name_or_url == "TBD":
        return reader.tbd()
    return str(table()["systems"].get(name_or_url, name_or_url))


def _coding_of_key(key: str, display: str | None = None) -> dict[str, str]:
    system, _, code = key.partition("|")
    out = {"system": _system(system), "code": code}
    if display:
        out["display"] = display
    return out


@cache
def kind_code(kind: str) -> dict[str, Any]:
    """Observation.code of a kind (variant, sequence-phase-relationship, …): the first STU3 code the reader's
    table gives that kind (mappers/fhir/tables/genomics.json, observation_kinds)."""
    for key, spec in reader.table()["observation_kinds"].items():
        if key != "description" and spec.get("kind") == kind and not spec.get("value_component"):
            return {"coding": [_coding_of_key(key, table()["displays"].get(kind))]}
    raise KeyError(kind)


@cache
def report_code() -> dict[str, str]:
    return _coding_of_key(reader.table()["report_codes"]["codes"][0], table()["displays"]["genomic-report"])


@cache
def _category(name: str) -> dict[str, Any]:
    return {"coding": [table()["categories"][name]]}


def categories() -> list[dict[str, Any]]:
    """Observation.category of every genomic Observation: laboratory and Genetics (v2-0074 GE)."""
    return _CATEGORIES


def answer(table_name: str, key: str) -> dict[str, Any]:
    """The CodeableConcept of an answer key (source class 'somatic', allelic state, coordinate system, …)."""
    return _answer(table_name, key)


@cache
def _answer(table_name: str, key: str) -> dict[str, Any]:
    answers = table()["answers"][table_name]
    if key not in answers:
        raise ValueError(f"{key!r} is not one of {', '.join(k for k in answers if k != 'description')}")
    return {"coding": [answers[key]]}


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: one object per slice
class _Slot:
    field: str
    slice: str
    code: dict[str, Any]
    key: str
    type: str
    repeats: bool
    answers: str | None
    text_system: str | None
    sequence_id: bool
    chromosome: bool
    position: bool
    built: dict[Any, dict[str, Any]] = field(default_factory=dict)  # components of codes and keys, built once


@cache
def _slots(name: str) -> tuple[_Slot, ...]:
    out = []
    for s in table()[name]:
        out.append(_Slot(s["field"], s["slice"], {"coding": [_coding_of_key(s["code"])]}, s["code"], s["type"],
                         bool(s.get("repeats")), s.get("answers"),
                         _system(s["text_system"]) if s.get("text_system") else None,
                         bool(s.get("sequence_id")), bool(s.get("chromosome")), bool(s.get("position"))))
    return tuple(out)


def slots() -> tuple[_Slot, ...]:
    """The variant's component slices, in the order they are written."""
    return _slots("variant_slots")


def implication_slots() -> tuple[_Slot, ...]:
    """The implications' component slices, in the order they are written."""
    return _slots("implication_slots")


# Reference sequence ids written as text: RefSeq accessions and Ensembl ids, with their version.
_SEQUENCE_IDS = ((re.compile(r"(N[CGMRTWP]|X[MRP]|YP)_[0-9]+\.[0-9]+"), "refseq"),
                 (re.compile(r"ENS[TGP][0-9]{11}\.[0-9]+"), "ensembl"))


def sequence_id(text: str) -> dict[str, Any]:
    """A reference sequence id written as text → a coding in its system (RefSeq, Ensembl); else text."""
    value = text.strip()
    for pattern, system in _SEQUENCE_IDS:
        if pattern.fullmatch(value):
            return {"coding": [{"system": _system(system), "code": value}]}
    return {"text": text}


@cache
def chromosome(name: str) -> dict[str, Any]:
    """A chromosome name ('7', 'chrX') → LOINC LL2938-0 answer (ConceptMap chromosome-name-to-loinc-ll2938-0),
    else the name as text (MT and contigs have no LOINC answer)."""
    t = translate("chromosome-name-to-loinc-ll2938-0", re.sub(r"^chr", "", name, flags=re.I).upper())
    return {"coding": [{"system": LOINC, "code": t.code, "display": t.display}]} if t else {"text": name}


# ---- values -----------------------------------------------------------------------------------------------

_UCUM = "http://unitsofmeasure.org"


def _concept(slot: _Slot, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, Code):
        return fresh(_code_concept(value))
    if not isinstance(value, str):
        raise TypeError(f"{slot.field}: {value!r} is not a code")
    if slot.answers:
        return fresh(_answer(slot.answers, value))
    if slot.chromosome:
        return fresh(chromosome(value))
    if slot.sequence_id:
        return sequence_id(value)
    if slot.text_system:
        return {"coding": [{"system": slot.text_system, "code": value}]}
    return {"text": value}


@cache
def _code_concept(code: Code) -> dict[str, Any]:
    return {"coding": [code.coding()]}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _value(slot: _Slot, value: Any) -> tuple[str, Any]:
    """(value[x] element name, value) of a fact in a slot."""
    kind = slot.type
    if kind == "CodeableConcept":
        return "valueCodeableConcept", _concept(slot, value)
    if kind == "string":
        return "valueString", str(value)
    if kind == "Range":
        if isinstance(value, dict):
            return "valueRange", value
        lo, hi = value
        return "valueRange", {k: {"value": v} for k, v in (("low", lo), ("high", hi)) if v is not None}
    if isinstance(value, dict):
        q = value
        if slot.slice == "sample-allelic-frequency":  # the IG fixes UCUM (a fraction, '1')
            q = {**q, "system": _UCUM, "code": "1"}
        return "valueQuantity", q
    return "valueQuantity", {"value": _number(value), "system": _UCUM, "code": "1"}


def _components(facts: Any, slot_list: tuple[_Slot, ...], extra: Sequence[Component | dict[str, Any]],
                origins: dict[str, str] | None) -> list[dict[str, Any]]:
    """The components of `facts` in slot order, then `extra`. Runs once per variant (millions for a VCF): types
    are dispatched by identity, and components of a code or an answer key are built once per slot."""
    comps: list[dict[str, Any]] = []
    append = comps.append
    values = _getter(slot_list)(facts)
    for slot, fact in compress(zip(slot_list, values, strict=True), map(is_not, values, _NONES)):
        items = fact if slot.repeats and type(fact) in (list, tuple) else (fact,)
        for item in items:
            kind = type(item)
            if kind is Code or kind is str:
                built = slot.built.get(item)
                if built is not None:
                    append(built)
                    continue
                if kind is str and slot.type == "string":
                    append({"code": slot.code, "valueString": item})  # allele sequences: not kept
                    continue
                element, val = _value(slot, item)
                built = {"code": slot.code, element: val}
                if len(slot.built) < _BUILT_PER_SLOT:
                    slot.built[item] = built
                append(built)
            elif kind is tuple and slot.type == "Range":
                lo, hi = item
                append({"code": slot.code, "valueRange": {"low": {"value": lo}, "high": {"value": hi}}
                        if lo is not None and hi is not None else _value(slot, item)[1]})
            elif (kind is int or kind is float) and slot.type == "Quantity":
                append({"code": slot.code, "valueQuantity": {
                    "value": item if kind is int else _number(item), "system": _UCUM, "code": "1"}})
            elif kind is Stated:
                val = item.value
                if val is None:
                    continue
                if type(val) is dict and slot.type == "CodeableConcept":  # as _value gives it, without two calls
                    element = "valueCodeableConcept"
                else:
                    element, val = _value(slot, val)
                if origins is not None and item.where:
                    origins[f"component[{len(comps)}]"] = item.where
                append({"code": item.code or slot.code, element: val})
            elif item is not None:
                element, val = _value(slot, item)
                append({"code": slot.code, element: val})
    for comp in extra:
        if type(comp) is dict:  # a component as FHIR writes it
            append(comp)
            continue
        if origins is not None and comp.where:
            origins[f"component[{len(comps)}]"] = comp.where
        append({"code": comp.code, **comp.value})
    return comps


@cache
def _getter(slot_list: tuple[_Slot, ...]) -> Any:
    """All the slots' fields of a facts object at once (one C call, not one getattr per slice)."""
    return operator.attrgetter(*(slot.field for slot in slot_list))


_NONES = repeat(None)
_BUILT_PER_SLOT = 4096  # codes and keys repeat; HGVS or ids given as strings may not: the cache stays bounded


def _plain(fact: Any) -> Any:
    return fact.value if isinstance(fact, Stated) else fact


def _note_where(origins: dict[str, str] | None, path: str, fact: Any) -> None:
    if origins is not None and isinstance(fact, Stated) and fact.where:
        origins[path] = fact.where


def _observation(kind: str, rid: str, status: str, subject: dict[str, Any] | None,
                 effective: Stated | str | None, origins: dict[str, str] | None) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "id": rid, "meta": _profile(kind), "status": status,
                           "category": [fresh(c) for c in _CATEGORIES], "code": fresh(kind_code(kind))}
    if subject:
        obs["subject"] = subject
    when = _plain(effective)
    if when:
        obs["effectiveDateTime"] = when
        _note_where(origins, "effectiveDateTime", effective)
    return obs


def _profile(name: str) -> dict[str, Any]:
    return {"profile": [GR + name]}


def fresh(concept: dict[str, Any]) -> dict[str, Any]:
    """A copy of a remembered CodeableConcept (flat codings) for a resource to own: a caller may edit its output."""
    out = concept.copy()
    codings = out.get("coding")
    if codings is not None:  # in place of the shared list: the same keys, in order
        # most concepts have one coding: a list display of its copy costs half of list(map(...))
        out["coding"] = [codings[0].copy()] if len(codings) == 1 else [c.copy() for c in codings]
    return out


_CATEGORIES: list[dict[str, Any]] = []


# ---- builders ---------------------------------------------------------------------------------------------

def variant(facts: Variant, rid: str, *, subject: dict[str, Any] | None = None,
            specimen: dict[str, Any] | None = None, status: str = "final", effective: Stated | str | None = None,
            notes: Sequence[dict[str, Any]] = (), origins: dict[str, str] | None = None) -> dict[str, Any]:
    """The IG `variant` Observation of `facts`, id `rid`; references are given as Reference dicts. Fills
    `origins` (element path → source expression) from the Stated facts. Raises ValueError for positions without
    a coordinate system (IG 3.0.0: coordinates mean nothing without it)."""
    if (facts.exact is not None or facts.outer is not None or facts.inner is not None) \
            and facts.coordinate_system is None:
        raise ValueError("a variant's positions need a coordinate system (92822-6)")
    obs = _observation("variant", rid, status, subject, effective, origins)
    value = _plain(facts.assessment)
    obs["valueCodeableConcept"] = (fresh(_answer("assessments", value)) if isinstance(value, str)
                                   else _concept(_ASSESSMENT, value) if value is not None
                                   else fresh(_answer("assessments", "present")))
    _note_where(origins, "valueCodeableConcept", facts.assessment)
    if notes:
        obs["note"] = list(notes)
    if facts.method is not None:
        obs["method"] = _concept(_ASSESSMENT, _plain(facts.method))
        _note_where(origins, "method", facts.method)
    if specimen:
        obs["specimen"] = specimen
    comps = _components(facts, slots(), facts.extra, origins)
    if comps:
        obs["component"] = comps
    return obs


_ASSESSMENT = _Slot("assessment", "value", {}, "", "CodeableConcept", False, None, None, False, False, False)


def implication(facts: Implication, rid: str, derived_from: Sequence[dict[str, Any]], *,
                subject: dict[str, Any] | None = None, status: str = "final",
                effective: Stated | str | None = None, origins: dict[str, str] | None = None) -> dict[str, Any]:
    """The IG `diagnostic-implication` or `therapeutic-implication` Observation derived from `derived_from`
    (IG 3.0.0 implication: derivedFrom 1..*)."""
    if facts.kind not in ("diagnostic-implication", "therapeutic-implication"):
        raise ValueError(f"implication kind {facts.kind!r}")
    if not derived_from:
        raise ValueError("an implication derives from at least one finding")
    obs = _observation(facts.kind, rid, status, subject, effective, origins)
    obs["derivedFrom"] = list(derived_from)
    comps = _components(facts, implication_slots(), facts.extra, origins)
    if comps:
        obs["component"] = comps
    return obs


def phase_relationship(rid: str, relation: str, first: dict[str, Any], second: dict[str, Any], *,
                       subject: dict[str, Any] | None = None, status: str = "final",
                       effective: Stated | str | None = None, method: Any = None,
                       origins: dict[str, str] | None = None) -> dict[str, Any]:
    """The IG `sequence-phase-relationship` Observation (82120-7) between two variants: `relation` Cis, Trans,
    Indeterminate or Unknown (sequence-phase-relationship-cs, a required binding); derivedFrom both."""
    obs = _observation("sequence-phase-relationship", rid, status, subject, effective, origins)
    obs["valueCodeableConcept"] = fresh(_answer("phases", relation))
    if method is not None:
        obs["method"] = _concept(_ASSESSMENT, _plain(method))
        _note_where(origins, "method", method)
    obs["derivedFrom"] = [first, second]
    return obs


def phase_of(value: Any) -> str | None:
    """The sequence-phase-relationship-cs code a stated phase means (Cis, Trans, Indeterminate, Unknown) when
    its code or text says exactly that (case aside), else None."""
    phases = {k.lower(): k for k in table()["answers"]["phases"]}
    texts: list[Any] = []
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, dict):
        texts.extend(c.get("code") for c in value.get("coding") or [] if isinstance(c, dict))
        texts.extend(c.get("display") for c in value.get("coding") or [] if isinstance(c, dict))
        texts.append(value.get("text"))
    found = {phases[t.strip().lower()] for t in texts if isinstance(t, str) and t.strip().lower() in phases}
    return found.pop() if len(found) == 1 else None


def report(facts: Report, origins: dict[str, str] | None = None) -> dict[str, Any]:
    """A DiagnosticReport; the IG `genomic-report` when `facts.genomic` (see Report)."""
    res: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": facts.id}
    if facts.genomic:
        res["meta"] = _profile("genomic-report")
    ext = list(facts.extension)
    if facts.study is not None:
        ext.append({"url": GR + "genomic-study-reference", "valueReference": facts.study})
    if ext:
        res["extension"] = ext
    if facts.identifier:
        res["identifier"] = list(facts.identifier)
    if facts.based_on:
        res["basedOn"] = list(facts.based_on)
    res["status"] = facts.status
    if facts.genomic:
        res["category"] = [fresh(_category("genetics"))]
        own = [c for c in (facts.code or {}).get("coding", [])
               if not (c.get("system") == LOINC and c.get("code") == report_code()["code"])]
        res["code"] = {**(facts.code or {}), "coding": [{**report_code()}, *own]}
    else:
        res["category"] = list(facts.category) or [fresh(_category("laboratory"))]
        res["code"] = facts.code or {"text": "(no code)"}
    if facts.subject:
        res["subject"] = facts.subject
    if _plain(facts.effective):
        res["effectiveDateTime"] = _plain(facts.effective)
        _note_where(origins, "effectiveDateTime", facts.effective)
    if _plain(facts.issued):
        res["issued"] = _plain(facts.issued)
        _note_where(origins, "issued", facts.issued)
    if facts.specimens:
        res["specimen"] = list(facts.specimens)
    if facts.results:
        res["result"] = list(facts.results)
    if facts.conclusion:
        res["conclusion"] = facts.conclusion
    for name, items in (("conclusionCode", facts.conclusion_codes), ("presentedForm", facts.presented_forms)):
        if items:
            res[name] = [_plain(i) for i in items]
            for n, item in enumerate(items):
                _note_where(origins, f"{name}[{n}]", item)
    return res


# ---- reading back ------------------------------------------------------------------------------------------

def variant_facts(obs: dict[str, Any]) -> Variant:
    """The facts of a variant Observation as `variant` writes them (codes of earlier releases read as STU3 ones
    first: mappers.fhir.genomics.upgrade): each slice's value[x] under its field, repeating slices as lists,
    components of other codes in `extra`."""
    obs = reader.upgrade(obs)
    by_key = {s.key.replace("TBD|", reader.tbd() + "|"): s for s in slots()}
    out = Variant()
    extra = []
    for comp in obs.get("component") or []:
        slot = next((by_key[k] for k in _comp_keys(comp) if k in by_key), None)
        value = next(((k, v) for k, v in comp.items() if k.startswith("value")), None)
        if slot is None or value is None:
            extra.append(Component(comp.get("code") or {}, dict([value]) if value else {}))
            continue
        val = value[1]
        if value[0] == "valueRange":
            val = ((val.get("low") or {}).get("value"), (val.get("high") or {}).get("value"))
        if slot.repeats:
            setattr(out, slot.field, [*(getattr(out, slot.field) or []), val])
        else:
            setattr(out, slot.field, val)
    out.extra = tuple(extra)
    out.assessment = obs.get("valueCodeableConcept")
    out.method = obs.get("method")
    return out


def _comp_keys(comp: dict[str, Any]) -> list[str]:
    return [f"{reader.normal_system(c.get('system'))}|{c.get('code')}"
            for c in (comp.get("code") or {}).get("coding") or [] if isinstance(c, dict)]


_CATEGORIES.extend([_category("laboratory"), _category("genetics")])
