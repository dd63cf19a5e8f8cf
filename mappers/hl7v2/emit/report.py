"""OBR → DiagnosticReport (the IG's genomic-report profile when the order carries genetic results), built by the
shared emitter (mappers.toolkit.genomics)."""

from __future__ import annotations

from typing import Any

import orjson

from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import cwe_to_codeable_concept, text_to_codeable_concept
from mappers.hl7v2.emit import instant_field, ref
from mappers.hl7v2.emit.observation import notes
from mappers.hl7v2.structure import Observation, Order
from mappers.ids import resource_id
from mappers.terminology import translate
from mappers.toolkit import genomics

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
    rid = resource_id("DiagnosticReport", key)
    ctx.origin(rid, obr.ref)
    filler = request.get("identifier", [])
    st = obr.get(25)
    t = translate("v2-0123-to-diagnostic-report-status", st)
    if t is None or t.equivalence == "unmatched":
        ctx.warn("hl7v2-code-unmapped", f"OBR-25 {st!r} is not a v2 table 0123 status; status set to unknown",
                 f"{obr.ref}-25")
    ctx.origin(rid, f"{obr.ref}-25", "status")
    # A genomic report gets the IG's 51969-4 first; the lab's own panel code (often 81247-9) stays beside it.
    code = cwe_to_codeable_concept(obr, 4, used=ctx) or ({} if genomic else {"text": "(OBR-4 empty)"})
    ctx.origin(rid, f"{obr.ref}-4", "code")
    issued = None
    if obr.get(22):
        ctx.use(obr, 22)
        value = instant_field(ctx, obr, 22)
        issued = genomics.Stated(value, None, f"{obr.ref}-22") if value else None
    codes = []
    for obs in conclusion:
        ctx.use(obs.obx, 1, 2, 4, 11)
        rec = obs.variable
        # the variable is stated by conclusionCode's place; a local code or name it was read from is what was used
        ctx.use_component(obs.obx, 3, *((1, 2, 3) if rec is None or rec.how == "code" else
                                        (int(rec.where.rsplit(".", 1)[1]),)))
        cc = (cwe_to_codeable_concept(obs.obx, 5, used=ctx) if obs.vt in ("CWE", "CNE", "CE")
              else text_to_codeable_concept(obs.obx.text(5)))
        if obs.vt not in ("CWE", "CNE", "CE"):
            ctx.use(obs.obx, 5)
        if cc:
            codes.append(genomics.Stated(cc, None, f"{obs.obx.ref}-5"))
    facts = genomics.Report(
        rid, status="unknown" if t is None or t.equivalence == "unmatched" else t.code, genomic=genomic,
        code=code, category=[genomics.fresh(CATEGORY_LAB)],
        # the ServiceRequest's own identifier, copied: each resource owns its objects (the Bundle is not copied)
        identifier=orjson.loads(orjson.dumps([i for i in filler if i["type"]["coding"][0]["code"] == "FILL"]
                                             or filler[:1])),
        based_on=[ref(request)], subject=ref(subject) if subject else None,
        effective=genomics.Stated(*effective) if effective else None, issued=issued,
        specimens=[ref(s) for s in specimens], results=[ref(r) for r in results],
        conclusion="\n".join(n["text"] for n in notes(order.notes, ctx)) or None, conclusion_codes=codes,
        presented_forms=[genomics.Stated(a, None, where) for a, where in presented])
    origins: dict[str, str] = {}
    res = genomics.report(facts, origins)
    ctx.origin_paths(res["id"], origins)
    return res
