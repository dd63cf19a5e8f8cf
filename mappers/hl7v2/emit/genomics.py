"""OBX rows of one OBX-4 variant group → a Variant Observation and, where clinical significance or
phenotype rows are present, a DiagnosticImplication derived from it (Genomics Reporting IG 3.0.0).

Which LOINC variable lands in which slice is data: tables/lri-genetic-variables.json. Which variable a row
carries is decided before (mappers.hl7v2.variable_names: its LOINC code, or a name or local code).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from mappers.hl7v2 import memo
from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import CWE_COMPONENTS, cwe_to_codeable_concept, number, text_to_codeable_concept
from mappers.hl7v2.emit import LOINC, datetime_field, ref
from mappers.hl7v2.emit.observation import notes, quantity, status
from mappers.hl7v2.model import Segment
from mappers.hl7v2.structure import Observation
from mappers.hl7v2.variable_names import Recognised
from mappers.ids import resource_id
from mappers.terminology import translate
from mappers.toolkit import genomics

_CODED = {"CWE", "CNE", "CE", "CF"}
UCUM = "http://unitsofmeasure.org"


@cache
def variables() -> dict[str, Any]:
    return json.loads((Path(__file__).parents[1] / "tables" / "lri-genetic-variables.json").read_text("utf-8"))


@cache
def variable_codes() -> frozenset[str]:
    """The LOINC codes of the LRI genetic variables."""
    return frozenset(variables()["variables"])


def variable(code: str) -> dict[str, Any] | None:
    return variables()["variables"].get(code)


def group_key(obx_4: str) -> str:
    """OBX-4 sub-ID up to the first '.': `2a.1` belongs to variant group `2a` (LRI nested SV addenda)."""
    return obx_4.split(".", 1)[0]


_OVERALL = re.compile(r"1[a-z]*")


def is_overall(group: str) -> bool:
    """Sub-IDs `1`, `1a`, `1b`… hold overall-study rows (assembly, regions studied), not a variant."""
    known = _OVERALLS.get(group)
    if known is None:
        known = _OVERALL.fullmatch(group) is not None
        if len(group) <= memo.SHORT:
            memo.remember(_OVERALLS, group, known)
    return known


_OVERALLS: dict[str, bool] = {}  # sub-IDs are few (1, 2, 2a…) and asked of every row


def variable_code(obs: Observation) -> str | None:
    """The LOINC variable a row carries (None when not recognised)."""
    return obs.variable.loinc if obs.variable is not None else None


def row_code(ctx: Context, obs: Observation) -> dict[str, Any]:
    """The code of a row's component or Observation: the LOINC variable, and beside it the sender's own OBX-3
    coding when the variable was recognised from a name or another code (so nothing of OBX-3 is lost)."""
    ctx.use_component(obs.obx, 3, *CWE_COMPONENTS)
    return _row_concept(obs)


def _row_concept(obs: Observation) -> dict[str, Any]:
    """row_code without marking OBX-3 used (the caller marks it)."""
    obx, rec = obs.obx, obs.variable
    raw = obx.fields[3] if len(obx.fields) > 3 else ""
    if len(raw) > memo.SHORT:
        return _row_code(obx, rec)
    key = (raw, obx.dialect, rec.loinc, rec.how) if rec is not None else (raw, obx.dialect)
    code = _ROW_CODES.get(key)
    if code is None:
        code = memo.remember(_ROW_CODES, key, _row_code(obx, rec))
    # a copy: the caller's resource may be edited, the memo's concept must not be
    return genomics.fresh(code)


_ROW_CODES: dict[tuple[Any, ...], dict[str, Any]] = {}  # what an OBX-3 stands for is vocabulary (memo)


def _row_code(obx: Segment, rec: Recognised | None) -> dict[str, Any]:
    own = cwe_to_codeable_concept(obx, 3) or {"text": "(OBX-3 empty)"}
    if rec is None:
        return own
    code = variables()["component_code"].get(rec.loinc, rec.loinc)
    loinc: dict[str, Any] = {"system": LOINC, "code": code}
    display = obx.get(3, 2) if rec.how == "code" else ""
    display = display or (variable(rec.loinc) or {}).get("display", "")
    if display:
        loinc["display"] = display
    others = [c for c in own.get("coding", [])
              if not (c.get("system") == LOINC and c.get("code") in (code, rec.loinc))]
    out: dict[str, Any] = {"coding": [loinc, *others]}
    text = own.get("text") or (obx.get(3, 2) if rec.how != "code" else "")
    if text:
        out["text"] = text
    return out


def _values(ctx: Context, obs: Observation, fhir_type: str, slice_name: str, whole: list[int],
            parts: list[tuple[int, frozenset[int]]]) -> list[tuple[str, Any]]:
    """OBX-5 repetitions as values of the slice's FHIR type; a coded slice also takes ST text (V2X writes
    some CWE rows as ST). The fields and components read are added to `whole` and `parts` (Context.use_row)."""
    obx = obs.obx
    vt = obs.vt
    if fhir_type == "CodeableConcept" or fhir_type == "string":
        # what a coded or text value means is vocabulary, read from OBX-5 and OBX-2 alone: worked out once (memo)
        raw = obx.fields[5] if len(obx.fields) > 5 else ""
        if len(raw) > memo.SHORT:
            return _read_values(obs, fhir_type, slice_name, whole, parts)
        key = (raw, obx.dialect, vt, fhir_type, slice_name)
        found = _VALUES.get(key)
        if found is None:
            reading: list[int] = []
            read: list[tuple[int, frozenset[int]]] = []
            found = memo.remember(_VALUES, key, (_read_values(obs, fhir_type, slice_name, reading, read),
                                                 bool(reading), read[0][1] if read else None))
        vals, is_whole, comps = found
        if is_whole:
            whole.append(5)
        elif comps is not None:
            parts.append((5, comps))
        # the caller's resources own their values: concepts copied, strings as they are
        return [(e, genomics.fresh(v) if type(v) is dict else v) for e, v in vals]
    return _read_values(obs, fhir_type, slice_name, whole, parts, ctx)


_VALUES: dict[tuple[str, ...], tuple[list[tuple[str, Any]], bool, frozenset[int] | None]] = {}


def _read_values(obs: Observation, fhir_type: str, slice_name: str, whole: list[int],
                 parts: list[tuple[int, frozenset[int]]], ctx: Any = None) -> list[tuple[str, Any]]:
    """_values without the memo; `ctx` (warnings, OBX-6 units) is only read for Range and Quantity."""
    obx = obs.obx
    out: list[tuple[str, Any]] = []
    vt = obs.vt
    reps = obx.repetition_count(5)
    if fhir_type == "CodeableConcept":
        coded = vt in _CODED
        if coded:
            if reps:
                parts.append((5, _CWE))
        else:
            whole.append(5)
        for rep in range(1, reps + 1):
            if coded:
                cc = cwe_to_codeable_concept(obx, 5, rep)
            elif slice_name == "chromosome-identifier":
                name = _CHR.sub("", obx.text(5, rep))
                t = translate("chromosome-name-to-loinc-ll2938-0", name.upper())
                cc = ({"coding": [{"system": LOINC, "code": t.code, "display": t.display}]} if t
                      else text_to_codeable_concept(obx.text(5, rep)))
            elif slice_name in _SEQUENCE_SLICES:
                cc = sequence_id(obx.text(5, rep))
            else:
                cc = text_to_codeable_concept(obx.text(5, rep))
            if cc and slice_name == "coding-change-type":
                _add_sequence_ontology(cc)
            if cc:
                out.append(("valueCodeableConcept", cc))
        return out
    if fhir_type == "string":
        if vt in _CODED:
            if reps:
                parts.append((5, _FIRST_COMPONENT))
        else:
            whole.append(5)
    for rep in range(1, reps + 1):
        if fhir_type == "string":
            text = obx.get(5, 1, rep=rep) if vt in _CODED else obx.text(5, rep)
            if text:
                out.append(("valueString", text))
        elif fhir_type == "Range":
            assert ctx is not None
            ctx.use_component(obx, 5, 1, 2)
            lo, hi = number(obx.get(5, 1, rep=rep)), number(obx.get(5, 2, rep=rep))
            rng = {k: {"value": v} for k, v in (("low", lo), ("high", hi)) if v is not None}
            if rng:
                out.append(("valueRange", rng))
            else:
                ctx.warn("hl7v2-bad-number", f"OBX-5 {obx.get(5, rep=rep)!r} is not a numeric range (NR); "
                         "kept as a string component", f"{obx.ref}-5")
                out.append(("valueString", obx.text(5, rep)))
        elif fhir_type == "Quantity":
            assert ctx is not None
            n = number(obx.get(5, 1, rep=rep))
            ctx.use_component(obx, 5, 1)
            if n is None:
                ctx.warn("hl7v2-bad-number", f"OBX-5 {obx.get(5)!r} is not a number; kept as a string component",
                         f"{obx.ref}-5")
                out.append(("valueString", obx.text(5, rep)))
                continue
            q = quantity(ctx, n, obx)
            if slice_name == "sample-allelic-frequency":  # the IG fixes UCUM '1' (a fraction)
                q.update(system=UCUM, code="1")
                q.setdefault("unit", "1")
            out.append(("valueQuantity", q))
    return out


_CHR = re.compile(r"^chr", re.I)
_CWE = frozenset(CWE_COMPONENTS)
_FIRST_COMPONENT = frozenset({1})
_FROZEN: dict[tuple[int, ...], frozenset[int]] = {}  # a row's whole fields: a few combinations of 1, 2, 4, 5, 11, 14


def _frozen(fields: list[int]) -> frozenset[int]:
    key = tuple(fields)
    found = _FROZEN.get(key)
    if found is None:
        found = _FROZEN[key] = frozenset(key)
    return found


_SEQUENCE_SLICES = {"representative-transcript-ref-seq", "genomic-ref-seq"}


def sequence_id(text: str) -> dict[str, Any] | None:
    """A reference sequence id written as text (ST where LRI has CWE) → a RefSeq/Ensembl coding; else text."""
    cc = genomics.sequence_id(text)
    return cc if "coding" in cc else text_to_codeable_concept(text)


def _add_sequence_ontology(cc: dict[str, Any]) -> None:
    """The IG binds coding-change-type to Sequence Ontology terms; LRI sends LOINC answers (LL379-9). Add the SO
    coding the IG's own ConceptMap gives, keeping the LOINC one."""
    codings = cc.get("coding", [])
    have = {(c.get("system"), c.get("code")) for c in codings}
    for c in list(codings):
        if c.get("system") != LOINC:
            continue
        t = translate("loinc-ll379-9-to-sequence-ontology", c.get("code", ""))
        if t is not None and (t.system, t.code) not in have:
            codings.append({"system": t.system, "code": t.code, "display": t.display})


def fits(obs: Observation) -> bool:
    """Whether a row's value can be the variable's: a coded value of a variable whose answers come from given
    systems (table: answer_systems) must use one of them, e.g. clinical significance a LOINC answer, not a disease
    code sent under a mislabelled row."""
    rec = obs.variable
    systems = _answer_systems().get(rec.loinc) if rec is not None else None
    if not systems or obs.vt not in _CODED:
        return True
    obx = obs.obx
    used = [obx.get(5, 3), obx.get(5, 6)]
    return any(s and s.upper() in systems for s in used) or not any(used)


@cache
def _answer_systems() -> dict[str, frozenset[str]]:
    """By variable: the coding systems (upper case) its coded answers must come from; none when any will do."""
    return {code: frozenset(s.upper() for s in spec.get("answer_systems", []))
            for code, spec in variables()["variables"].items()}


PHASE = "82120-7"  # allelic phase: LRI states it per variant; the IG relates two variants (sequence-phase-relationship)
_VARIANT_SLOTS = {slot.slice: slot for slot in genomics.slots()}
_IMPLICATION_SLOTS = {slot.slice: slot for slot in genomics.implication_slots()}
_ELEMENT = {"CodeableConcept": "valueCodeableConcept", "string": "valueString", "Range": "valueRange",
            "Quantity": "valueQuantity"}


def phase_pairs(groups: dict[str, list[Observation]]) -> list[tuple[str, list[tuple[str, Observation]]]]:
    """Variant groups an allelic-phase row (82120-7) relates, as (Cis|Trans|…, [(group, row), (group, row)]).
    LRI rows name no partner, so a phase stated by exactly two groups of the order relates those two (as FHIR → v2
    writes a relationship: a row in each group); any other phase row stays a component of its variant."""
    by_phase: dict[str, list[tuple[str, Observation]]] = {}
    for sub, rows in groups.items():
        for obs in rows:
            rec = obs.variable
            if rec is None or rec.loinc != PHASE or obs.obx.repetition_count(5) != 1:
                continue
            phase = genomics.phase_of({"coding": [{"code": obs.obx.get(5, 1), "display": obs.obx.get(5, 2)}]})
            if phase:
                by_phase.setdefault(phase, []).append((sub, obs))
    return [(phase, rows) for phase, rows in by_phase.items() if len(rows) == 2 and rows[0][0] != rows[1][0]]


def phase_relationship(ctx: Context, key: str, phase: str, rows: list[tuple[str, Observation]],
                       subject: dict[str, Any] | None) -> dict[str, Any]:
    """The sequence-phase-relationship of two variant groups (see phase_pairs); their rows were used by variant()."""
    (first, a), (second, b) = rows
    res = genomics.phase_relationship(
        resource_id("Observation", key, "phase", first, second), phase,
        ref({"id": variant_id(key, first)}), ref({"id": variant_id(key, second)}),
        subject=ref(subject) if subject else None, status=status(ctx, a.obx))
    ctx.origin(res, f"{a.obx.ref}, {b.obx.ref}")
    ctx.origin(res, f"{a.obx.ref}-5, {b.obx.ref}-5", "valueCodeableConcept")
    return res


class _Plan(NamedTuple):
    """How a variant takes a row of a known variable: what _values, _row_concept and the marks of fields read give
    for its OBX-3, OBX-5, OBX-6 and OBX-2, which are vocabulary or plain numbers (memo). `values` and `concept`
    are templates: each row gets copies."""

    spec: dict[str, Any]
    target: str
    once: bool  # the slice takes one row (a second one stays a separate result)
    values: list[tuple[str, Any]]
    dropped: int  # repetitions of OBX-5 when the slice takes one (a warning), else 0
    whole: frozenset[int]
    whole_14: frozenset[int]  # with OBX-14, when the row has one
    parts: tuple[tuple[int, frozenset[int]], ...]
    concept: dict[str, Any] | None
    slot: Any  # the slice's slot, None (a component under its own code) or _OBSERVATION_VALUE
    implication: bool
    fits: bool  # fits(): the value can be the variable's


_OBSERVATION_VALUE = object()  # the plan of a value or method row: it sets the Observation's own element
_PLANS: dict[tuple[str, ...], _Plan | None] = {}


def row_plan(obs: Observation, rec: Recognised) -> _Plan | None:
    """The row's plan, or None when it is read row by row (a variable of no slice, a number that is not one, long
    text). The mapper asks for it when it recognises the row's variable (the plan says whether the value fits) and
    keeps it on the row (obs.plan) for variant()."""
    obx = obs.obx
    fields = obx.fields
    if len(fields) <= 6:  # a row cut short before OBX-6 is read row by row
        return None
    raw3, raw5, raw6 = fields[3], fields[5], fields[6]  # OBX-6: units, of a quantity
    if len(raw3) + len(raw5) + len(raw6) > memo.SHORT:  # long texts are read row by row, never kept
        return None
    key = (raw3, raw5, raw6, obs.vt, obx.dialect, rec.loinc, rec.how)
    plan = _PLANS.get(key, _UNREAD)
    if plan is _UNREAD:
        plan = memo.remember(_PLANS, key, _make_plan(obs, rec))
    return plan


_UNREAD: Any = object()


def _make_plan(obs: Observation, rec: Recognised) -> _Plan | None:
    spec = variables()["variables"].get(rec.loinc)
    if spec is None:
        return None
    target = spec["target"]
    whole = [1, 2, 4, 11]
    parts: list[tuple[int, frozenset[int]]] = []
    marks = _Marks(parts)
    vals = _read_values(obs, spec["fhir_type"], target, whole, parts, marks)
    if marks.warned:  # a value that is not the number it should be: said of the row itself, read row by row
        return None
    dropped = 0
    if len(vals) > 1 and not spec.get("repeats") and target != "component":
        dropped, vals = len(vals), vals[:1]
    if target == "value" or target == "method":
        slot, concept, implication = _OBSERVATION_VALUE, None, False
    else:
        parts.append((3, _CWE))
        concept = _row_code(obs.obx, rec)
        implication = spec["scope"] == "implication"
        slot = (_IMPLICATION_SLOTS if implication else _VARIANT_SLOTS).get(target)
    # A field read component by component that holds no other component is read whole: marked so, the conversion
    # report (Context.unmapped) has nothing to look into on the row.
    d = obs.obx.delims
    for n, comps in list(parts):
        raw = obs.obx.raw(n)
        if d.repetition not in raw and comps.issuperset(range(1, raw.count(d.component) + 2)):
            parts.remove((n, comps))
            whole.append(n)
    return _Plan(spec, target, not spec.get("repeats"), vals, dropped, _frozen(whole), _frozen([*whole, 14]),
                 tuple(parts), concept, slot, implication, fits(obs))


class _Marks:
    """Stands for the Context while a plan is made: keeps the components a numeric value's reading marks, and
    whether it had anything to say (then the row has no plan)."""

    def __init__(self, parts: list[tuple[int, frozenset[int]]]) -> None:
        self.parts = parts
        self.warned = False

    def use_component(self, seg: Segment, n: int, *comps: int) -> None:
        self.parts.append((n, frozenset(comps)))

    def warn(self, *_: Any) -> None:
        self.warned = True


def _own(element: str, value: Any) -> Any:
    """A copy of a plan's value[x] for one resource (a string is immutable)."""
    if element == "valueCodeableConcept":
        return genomics.fresh(value)
    if element == "valueQuantity":
        return value.copy()
    if element == "valueRange":
        return {k: v.copy() for k, v in value.items()}
    return value


def _place(plan: _Plan, where: str, holder: Any, others: list[genomics.Component]) -> None:
    """Put a planned row's values in their slice of `holder` (or `others`, components under the row's code)."""
    slot = plan.slot
    concept = plan.concept
    assert concept is not None
    fresh = genomics.fresh
    for element, val in plan.values:
        code = fresh(concept)  # one per component: the Bundle's objects are not shared
        if element == "valueCodeableConcept":
            val = fresh(val)
        elif type(val) is not str:
            val = _own(element, val)
        _put(slot, element, val, code, where, holder, others)


def _put(slot: Any, element: str, val: Any, code: dict[str, Any], where: Any, holder: Any, others: list[Any]) -> None:
    """A row's value into its slice's field of `holder` (a list where the slice repeats), or among `others` when
    unsliced or not of the slice's type."""
    if slot is None or element != _ELEMENT[slot.type]:
        others.append(genomics.Component(code, {element: val}, where))
    elif slot.repeats:
        setattr(holder, slot.field, [*(getattr(holder, slot.field) or []), genomics.Stated(val, code, where)])
    else:
        setattr(holder, slot.field, genomics.Stated(val, code, where))


def variant_id(key: str, group: str) -> str:
    return resource_id("Observation", key, "variant", group)


def variant(ctx: Context, rows: list[Observation], key: str, group: str, shared: list[Observation],
            subject: dict[str, Any] | None, specimen: dict[str, Any] | None,
            effective: tuple[str, str] | None, phased: frozenset[int] = frozenset()
            ) -> tuple[dict[str, Any], dict[str, Any] | None, list[Observation]]:
    """Build the Variant (and its DiagnosticImplication, or None) of one OBX-4 group with the shared emitter
    (mappers.toolkit.genomics); the third item lists rows that could not join it (a second row for a slice that
    takes one), which stay separate results. Rows in `phased` (ids of 82120-7 rows, see phase_pairs) become a
    sequence-phase relationship instead of a component.

    Reads per row OBX-2/3/4/5/6/11/14 and NTE-3; `shared` holds overall rows (sub-ID 1) such as the
    assembly (62374-4), which apply to every variant of the order unless the group has its own.
    """
    first = rows[0].obx
    facts = genomics.Variant()
    impl_facts = genomics.Implication()
    extra: list[genomics.Component] = []
    impl_extra: list[genomics.Component] = []
    own_codes = {o.variable.loinc if o.variable is not None else None for o in rows}
    note_list: list[dict[str, str]] = []
    taken: set[str] = set()
    leftovers: list[Observation] = []
    specs = variables()["variables"]
    d = first.delims  # the message's: OBX-14 of a planned row is read as it stands when it holds none of them
    specials = (d.component, d.repetition, d.subcomponent, d.escape)
    for obs in [*rows, *(s for s in shared if (s.variable.loinc if s.variable is not None else None) not in own_codes)]:
        obx = obs.obx
        rec = obs.variable
        plan = (obs.plan or row_plan(obs, rec)) if rec is not None else None
        if plan is not None:  # a row of a known variable: read as its plan says (same issues, marks and values)
            code = rec.loinc
            spec = plan.spec
            if plan.once and code in taken:
                ctx.warn("hl7v2-variable-repeated", f"variant group {group} has a second {code} ({spec['display']}) "
                         "row; the variant takes one, so this row stays a separate result", f"{obx.ref}-3")
                leftovers.append(obs)
                continue
            taken.add(code)
            if plan.dropped:
                ctx.warn("hl7v2-repetitions-dropped", f"OBX-5 has {plan.dropped} repetitions; the {plan.target} "
                         "slice takes one", f"{obx.ref}-5")
            if obs.notes:
                note_list += notes(obs.notes, ctx)
            fields = obx.fields
            time = fields[14] if len(fields) > 14 else ""
            if time and (specials[0] in time or specials[1] in time or specials[2] in time or specials[3] in time):
                time = obx.get(14)
            ctx.use_row(obx, plan.whole_14 if time else plan.whole, plan.parts)
            where = f"{obx.ref}-5"
            if plan.slot is _OBSERVATION_VALUE:
                if plan.values:
                    setattr(facts, "assessment" if plan.target == "value" else "method",
                            genomics.Stated(_own(*plan.values[0]), None, where))
                continue
            if phased and id(obs) in phased:  # mostly none
                continue
            _place(plan, where, impl_facts if plan.implication else facts, impl_extra if plan.implication else extra)
            continue
        code = rec.loinc if rec is not None else obx.get(3)
        spec = specs.get(code) if rec is not None else None
        if spec is not None and not spec.get("repeats") and code in taken:
            ctx.warn("hl7v2-variable-repeated", f"variant group {group} has a second {code} ({spec['display']}) row; "
                     "the variant takes one, so this row stays a separate result", f"{obx.ref}-3")
            leftovers.append(obs)
            continue
        taken.add(code)
        # what the row is read for, marked once at the end of its turn (Context.use_row)
        whole = [1, 2, 4, 11]
        parts: list[tuple[int, frozenset[int]]] = []
        if spec is None:
            ctx.inform("hl7v2-unsliced-component",
                       f"OBX-3 {code} in variant group {group} is not a Genomics Reporting variable; kept as a "
                       "component under its own code", f"{obx.ref}-3")
            spec = {"target": "component", "fhir_type": "CodeableConcept" if obs.vt in _CODED else "string",
                    "scope": "variant"}
        target = spec["target"]
        vals = _values(ctx, obs, spec["fhir_type"], target, whole, parts)
        if len(vals) > 1 and not spec.get("repeats") and target != "component":
            ctx.warn("hl7v2-repetitions-dropped", f"OBX-5 has {len(vals)} repetitions; the {target} slice takes one",
                     f"{obx.ref}-5")
            vals = vals[:1]
        if obs.notes:
            note_list += notes(obs.notes, ctx)
        if obx.get(14):
            whole.append(14)  # the variant's time comes from its first row (below); later rows' are not kept
        where = f"{obx.ref}-5"
        if target == "value" or target == "method":
            ctx.use_row(obx, _frozen(whole), parts)
            if vals:
                setattr(facts, "assessment" if target == "value" else "method",
                        genomics.Stated(vals[0][1], None, where))
            continue
        parts.append((3, _CWE))
        ctx.use_row(obx, _frozen(whole), parts)
        if id(obs) in phased:
            continue  # the group's side of a sequence-phase relationship (phase_relationship)
        cc = _row_concept(obs)
        scope = spec["scope"] == "implication"
        slot = (_IMPLICATION_SLOTS if scope else _VARIANT_SLOTS).get(target)
        holder, others = (impl_facts, impl_extra) if scope else (facts, extra)
        for k, (element, val) in enumerate(vals):
            code = genomics.fresh(cc) if k else cc  # one per component: the Bundle's objects are not shared
            _put(slot, element, val, code, where, holder, others)
    if (facts.exact or facts.outer or facts.inner) and facts.coordinate_system is None:
        # HL7 v2 LRI (Ch.5) positions are 1-based; the IG asks to say so (coded as the rows' variables are)
        facts.coordinate_system = genomics.Stated("1-based-character", {"coding": [
            {"system": LOINC, "code": "92822-6", "display": variables()["variables"]["92822-6"]["display"]}]})
    facts.extra = extra
    if facts.assessment is None:
        ctx.inform("hl7v2-variant-assessment-inferred",
                   f"variant group {group or '(no OBX-4)'} has no 69548-6 row; reported as Present (LA9633-4), as "
                   "the IG asks every variant to carry an assessment", f"{first.ref}-4")
    when: genomics.Stated | None = None
    value = datetime_field(ctx, first, 14)
    if value:
        when = genomics.Stated(value, None, f"{first.ref}-14")
    elif effective:
        when = genomics.Stated(effective[0], None, effective[1])
    origins: dict[str, str] = {}
    var = genomics.variant(facts, variant_id(key, group), subject=ref(subject) if subject else None,
                           specimen=ref(specimen) if specimen else None, status=status(ctx, first), effective=when,
                           notes=note_list, origins=origins)
    ctx.origin(var, first.ref)
    ctx.origin_paths(var["id"], origins)
    impl_facts.extra = impl_extra
    if impl_facts.clinical_significance is None and not impl_facts.phenotypes and not impl_extra:
        return var, None, leftovers
    origins = {}
    impl = genomics.implication(impl_facts, resource_id("Observation", key, "diagnostic-implication", group),
                                [ref(var)], subject=ref(subject) if subject else None, status=var["status"],
                                effective=when, origins=origins)
    ctx.origin(impl, first.ref)
    ctx.origin_paths(impl["id"], origins)
    return var, impl, leftovers
