"""OBR → DiagnosticReport (the IG's genomic-report profile when the order carries genetic results)."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cwe_to_codeable_concept, text_to_codeable_concept
from mappers.hl7v2.emit import GR, LOINC, instant_field, ref
from mappers.hl7v2.emit.observation import notes
from mappers.hl7v2.structure import Observation, Order
from mappers.ids import resource_id
from mappers.terminology import translate

GENOMIC_REPORT_CODE = {"system": LOINC, "code": "51969-4", "display": "Genetic analysis report"}
CATEGORY_GENETICS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "GE",
                                 "display": "Genetics"}]}
CATEGORY_LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB",
                            "display": "Laboratory"}]}


def diagnostic_report(ctx: Context, order: Order, key: str, genomic: bool, subject: dict[str, Any] | None,
                      request: dict[str, Any], specimens: list[dict[str, Any]], results: list[dict[str, Any]],
                      conclusion: list[Observation], effective: tuple[str, str] | None,
                      presented: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """Reads OBR-3 (filler id), OBR-4 (code), OBR-7 (effective, given as `effective`), OBR-22 (issued), OBR-25
    (status), NTE-3 after OBR (conclusion), the 51968-6 overall-interpretation rows (conclusionCode), and takes
    `presented` (attachment, source field) pairs as presentedForm."""
    obr = order.obr
    ctx.use(obr, 25)
    res: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": resource_id("DiagnosticReport", key)}
    ctx.origin(res, obr.ref)
    if genomic:
        res["meta"] = {"profile": [GR + "genomic-report"]}
    filler = request.get("identifier", [])
    if filler:
        res["identifier"] = [i for i in filler if i["type"]["coding"][0]["code"] == "FILL"] or filler[:1]
    res["basedOn"] = [ref(request)]
    st = obr.get(25)
    t = translate("v2-0123-to-diagnostic-report-status", st)
    if t is None or t.equivalence == "unmatched":
        ctx.warn("hl7v2-code-unmapped", f"OBR-25 {st!r} is not a v2 table 0123 status; status set to unknown",
                 f"{obr.ref}-25")
        res["status"] = "unknown"
    else:
        res["status"] = t.code
    ctx.origin(res, f"{obr.ref}-25", "status")
    res["category"] = [CATEGORY_GENETICS] if genomic else [CATEGORY_LAB]
    code = cwe_to_codeable_concept(obr, 4, used=ctx) or {}
    if genomic:
        # The IG pattern needs 51969-4; the lab's own panel code (often 81247-9) stays beside it.
        others = [c for c in code.get("coding", []) if c.get("code") != "51969-4"]
        code = {**code, "coding": [GENOMIC_REPORT_CODE, *others]}
    res["code"] = code or {"text": "(OBR-4 empty)"}
    ctx.origin(res, f"{obr.ref}-4", "code")
    if subject:
        res["subject"] = ref(subject)
    if effective:
        res["effectiveDateTime"] = effective[0]
        ctx.origin(res, effective[1], "effectiveDateTime")
    if obr.get(22):
        ctx.use(obr, 22)
        issued = instant_field(ctx, obr, 22)
        if issued:
            res["issued"] = issued
            ctx.origin(res, f"{obr.ref}-22", "issued")
    if specimens:
        res["specimen"] = [ref(s) for s in specimens]
    if results:
        res["result"] = [ref(r) for r in results]
    text = "\n".join(n["text"] for n in notes(order.notes, ctx))
    if text:
        res["conclusion"] = text
    codes = []
    for obs in conclusion:
        ctx.use(obs.obx, 1, 2, 4, 11)
        rec = obs.variable
        # the variable is stated by conclusionCode's place; a local code or name it was read from is what was used
        ctx.use_component(obs.obx, 3, *((1, 2, 3) if rec is None or rec.how == "code" else
                                        (int(rec.where.rsplit(".", 1)[1]),)))
        cc = (cwe_to_codeable_concept(obs.obx, 5, used=ctx) if obs.obx.get(2) in ("CWE", "CNE", "CE")
              else text_to_codeable_concept(obs.obx.text(5)))
        if obs.obx.get(2) not in ("CWE", "CNE", "CE"):
            ctx.use(obs.obx, 5)
        if cc:
            ctx.origin(res, f"{obs.obx.ref}-5", f"conclusionCode[{len(codes)}]")
            codes.append(cc)
    if codes:
        res["conclusionCode"] = codes
    if presented:
        res["presentedForm"] = [a for a, _ in presented]
        for i, (_, where) in enumerate(presented):
            ctx.origin(res, where, f"presentedForm[{i}]")
    return res
