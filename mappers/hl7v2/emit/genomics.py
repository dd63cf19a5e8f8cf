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
from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cwe_to_codeable_concept, number, text_to_codeable_concept
from mappers.hl7v2.emit import CATEGORY_GE, CATEGORY_LAB, GR, LOINC, TBD, datetime_field, ref
from mappers.hl7v2.emit.observation import notes, quantity, status
from mappers.hl7v2.structure import Observation
from mappers.ids import resource_id
from mappers.terminology import translate

_CODED = {"CWE", "CNE", "CE", "CF"}
ONE_BASED = {"system": LOINC, "code": "LA30102-0", "display": "1-based character counting"}
PRESENT = {"system": LOINC, "code": "LA9633-4", "display": "Present"}
UCUM = "http://unitsofmeasure.org"


@cache
def variables() -> dict[str, Any]:
    return json.loads((Path(__file__).parents[1] / "tables" / "lri-genetic-variables.json").read_text("utf-8"))


def variable(code: str) -> dict[str, Any] | None:
    return variables()["variables"].get(code)


def group_key(obx_4: str) -> str:
    """OBX-4 sub-ID up to the first '.': `2a.1` belongs to variant group `2a` (LRI nested SV addenda)."""
    return obx_4.split(".", 1)[0]


def is_overall(group: str) -> bool:
    """Sub-IDs `1`, `1a`, `1b`… hold overall-study rows (assembly, regions studied), not a variant."""
    return bool(re.fullmatch(r"1[a-z]*", group))


def variable_code(obs: Observation) -> str | None:
    """The LOINC variable a row carries (None when not recognised)."""
    return obs.variable.loinc if obs.variable is not None else None


def row_code(ctx: Context, obs: Observation) -> dict[str, Any]:
    """The code of a row's component or Observation: the LOINC variable, and beside it the sender's own OBX-3
    coding when the variable was recognised from a name or another code (so nothing of OBX-3 is lost)."""
    obx, rec = obs.obx, obs.variable
    own = cwe_to_codeable_concept(obx, 3, used=ctx) or {"text": "(OBX-3 empty)"}
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


def _values(ctx: Context, obs: Observation, fhir_type: str, slice_name: str) -> list[tuple[str, Any]]:
    """OBX-5 repetitions as values of the slice's FHIR type; a coded slice also takes ST text (V2X writes
    some CWE rows as ST)."""
    obx = obs.obx
    out: list[tuple[str, Any]] = []
    vt = obx.get(2)
    for rep in range(1, len(obx.repetitions(5)) + 1):
        if fhir_type == "CodeableConcept":
            if vt in _CODED:
                cc = cwe_to_codeable_concept(obx, 5, rep, ctx)
            elif slice_name == "chromosome-identifier":
                name = re.sub(r"^chr", "", obx.text(5, rep), flags=re.I)
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
        elif fhir_type == "string":
            text = obx.get(5, 1, rep=rep) if vt in _CODED else obx.text(5, rep)
            if vt in _CODED:
                ctx.use_component(obx, 5, 1)
            if text:
                out.append(("valueString", text))
        elif fhir_type == "Range":
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
    if fhir_type in ("CodeableConcept", "string") and vt not in _CODED:
        ctx.use(obx, 5)
    return out


_SEQUENCE_SLICES = {"representative-transcript-ref-seq", "genomic-ref-seq"}
# Reference sequence ids sent as text (ST where LRI has CWE): RefSeq accessions and Ensembl ids, with version.
_SEQUENCE_IDS = ((re.compile(r"(N[CGMRTWP]|X[MRP]|YP)_[0-9]+\.[0-9]+"), "http://www.ncbi.nlm.nih.gov/refseq"),
                 (re.compile(r"ENS[TGP][0-9]{11}\.[0-9]+"), "http://www.ensembl.org"))


def sequence_id(text: str) -> dict[str, Any] | None:
    """A reference sequence id written as text → a coding in its system (RefSeq, Ensembl); else text."""
    value = text.strip()
    for pattern, system in _SEQUENCE_IDS:
        if pattern.fullmatch(value):
            return {"coding": [{"system": system, "code": value}]}
    return text_to_codeable_concept(text)


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
    spec = variable(variable_code(obs) or "")
    systems = {s.upper() for s in (spec or {}).get("answer_systems", [])}
    if not systems or obs.obx.get(2) not in _CODED:
        return True
    obx = obs.obx
    used = [obx.get(5, 3), obx.get(5, 6)]
    return any(s and s.upper() in systems for s in used) or not any(used)


def variant(ctx: Context, rows: list[Observation], key: str, group: str, shared: list[Observation],
            subject: dict[str, Any] | None, specimen: dict[str, Any] | None,
            effective: tuple[str, str] | None) -> tuple[dict[str, Any], dict[str, Any] | None, list[Observation]]:
    """Build the Variant (and its DiagnosticImplication, or None) of one OBX-4 group; the third item lists rows
    that could not join it (a second row for a slice that takes one), which stay separate results.

    Reads per row OBX-2/3/4/5/6/11/14 and NTE-3; `shared` holds overall rows (sub-ID 1) such as the
    assembly (62374-4), which apply to every variant of the order unless the group has its own.
    """
    first = rows[0].obx
    var: dict[str, Any] = {
        "resourceType": "Observation",
        "id": resource_id("Observation", key, "variant", group),
        "meta": {"profile": [GR + "variant"]},
        "status": status(ctx, first),
        "category": [CATEGORY_LAB, CATEGORY_GE],
        "code": {"coding": [{"system": LOINC, "code": "69548-6", "display": "Genetic variant assessment"}]},
    }
    ctx.origin(var, first.ref)
    impl_id = resource_id("Observation", key, "diagnostic-implication", group)
    components: list[dict[str, Any]] = []
    impl_components: list[dict[str, Any]] = []
    own_codes = {variable_code(o) for o in rows}
    note_list: list[dict[str, str]] = []
    taken: set[str] = set()
    leftovers: list[Observation] = []
    for obs in [*rows, *(s for s in shared if variable_code(s) not in own_codes)]:
        obx = obs.obx
        code = variable_code(obs) or obx.get(3)
        spec = variable(code) if variable_code(obs) else None
        if spec is not None and not spec.get("repeats") and code in taken:
            ctx.warn("hl7v2-variable-repeated", f"variant group {group} has a second {code} ({spec['display']}) row; "
                     "the variant takes one, so this row stays a separate result", f"{obx.ref}-3")
            leftovers.append(obs)
            continue
        taken.add(code)
        ctx.use(obx, 1, 2, 4, 11)
        if spec is None:
            ctx.inform("hl7v2-unsliced-component",
                       f"OBX-3 {code} in variant group {group} is not a Genomics Reporting variable; kept as a "
                       "component under its own code", f"{obx.ref}-3")
            spec = {"target": "component", "fhir_type": "CodeableConcept" if obx.get(2) in _CODED else "string",
                    "scope": "variant"}
        target = spec["target"]
        vals = _values(ctx, obs, spec["fhir_type"], target)
        if len(vals) > 1 and not spec.get("repeats") and target != "component":
            ctx.warn("hl7v2-repetitions-dropped", f"OBX-5 has {len(vals)} repetitions; the {target} slice takes one",
                     f"{obx.ref}-5")
            vals = vals[:1]
        note_list += notes(obs.notes, ctx)
        if obx.get(14):
            ctx.use(obx, 14)  # the variant's time comes from its first row (below); later rows' are not kept
        if target == "value":
            if vals:
                var["valueCodeableConcept"] = vals[0][1]
                ctx.origin(var, f"{obx.ref}-5", "valueCodeableConcept")
            continue
        if target == "method":
            if vals:
                var["method"] = vals[0][1]
                ctx.origin(var, f"{obx.ref}-5", "method")
            continue
        cc = row_code(ctx, obs)
        for element, val in vals:
            comp = {"code": cc, element: val}
            if spec["scope"] == "implication":
                ctx.origin(impl_id, f"{obx.ref}-5", f"component[{len(impl_components)}]")
                impl_components.append(comp)
            else:
                ctx.origin(var, f"{obx.ref}-5", f"component[{len(components)}]")
                components.append(comp)
    codes = {c["code"].get("coding", [{}])[0].get("code") for c in components}
    if "81254-5" in codes and "92822-6" not in codes:
        # HL7 v2 LRI (Ch.5) positions are 1-based; say so, as the IG asks for coordinates.
        components.append({"code": {"coding": [{"system": LOINC, "code": "92822-6",
                                                "display": "Genomic coordinate system [Type]"}]},
                           "valueCodeableConcept": {"coding": [ONE_BASED]}})
    if "valueCodeableConcept" not in var:
        var["valueCodeableConcept"] = {"coding": [PRESENT]}
        ctx.inform("hl7v2-variant-assessment-inferred",
                   f"variant group {group or '(no OBX-4)'} has no 69548-6 row; reported as Present (LA9633-4), as "
                   "the IG asks every variant to carry an assessment", f"{first.ref}-4")
    if subject:
        var["subject"] = ref(subject)
    when = datetime_field(ctx, first, 14)
    where = f"{first.ref}-14"
    if not when and effective:
        when, where = effective
    if when:
        var["effectiveDateTime"] = when
        ctx.origin(var, where, "effectiveDateTime")
    if specimen:
        var["specimen"] = ref(specimen)
    if note_list:
        var["note"] = note_list
    if components:
        var["component"] = components
    if not impl_components:
        return var, None, leftovers
    impl: dict[str, Any] = {
        "resourceType": "Observation",
        "id": impl_id,
        "meta": {"profile": [GR + "diagnostic-implication"]},
        "status": var["status"],
        "category": [CATEGORY_LAB, CATEGORY_GE],
        "code": {"coding": [{"system": TBD, "code": "diagnostic-implication", "display": "Diagnostic Implication"}]},
    }
    ctx.origin(impl, first.ref)
    if subject:
        impl["subject"] = ref(subject)
    if when:
        impl["effectiveDateTime"] = when
        ctx.origin(impl, where, "effectiveDateTime")
    impl["derivedFrom"] = [ref(var)]
    impl["component"] = impl_components
    return var, impl, leftovers
