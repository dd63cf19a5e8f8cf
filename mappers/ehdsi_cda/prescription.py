"""An eHDSI ePrescription (CDA R2, templateId 1.3.6.1.4.1.12559.11.10.1.3.1.1.1) → IPS-style MedicationRequests.

Each prescription item (substanceAdministration, moodCode INT, in the Prescription section LOINC 57828-6) becomes a
MedicationRequest-uv-ips (intent order) with its Medication-uv-ips: the prescriber (the document's author) as
requester, the document time as authoredOn, dosage, patient and fill instructions, the dispense quantity and the
substitution rule. IPS has no ePrescription document, so the result is a collection (or transaction) Bundle.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from mappers.cda_cn.coverage import use
from mappers.cda_cn.xpath import local, path
from mappers.ehdsi_cda.clinical import dosage, identifiers, instructions, product, reasons, related, statement_parts
from mappers.ehdsi_cda.reader import Reader, kid, kids, ref, value

SUBSTITUTION = "http://terminology.hl7.org/CodeSystem/v3-substanceAdminSubstitution"
PRESCRIPTION_SECTION = "57828-6"


def items(r: Reader, body: etree._Element) -> list[etree._Element]:
    """The prescription items: substanceAdministration entries of the document's sections."""
    out = []
    for c in kids(body, "component"):
        s = kid(c, "section")
        if s is None:
            continue
        use(c)
        r.mark(*kids(s, "templateId"), *kids(s, "id"))
        code = value(kid(s, "code"), "code")
        if code != PRESCRIPTION_SECTION:
            r.notes.warn("ehdsi-section-not-mapped", f"section {code or '(no code)'} of an ePrescription is not "
                         "mapped", path(s))
            continue
        r.concept(kid(s, "code"))
        r.text(kid(s, "title"))
        text = kid(s, "text")
        if text is not None:
            use(text)  # the prescription's narrative: the MedicationRequests carry its facts
            for el in text.iter():
                use(el)
        for e in kids(s, "entry"):
            sa = kid(e, "substanceAdministration")
            if sa is not None:
                use(e)
                out.append(sa)
    return out


def request(r: Reader, sa: etree._Element, authored: str | None, requester: dict[str, str] | None,
            ) -> dict[str, Any]:
    statement_parts(r, sa)
    med = product(r, sa)
    res = r.new("MedicationRequest", sa, "MedicationRequest-uv-ips")
    idents = identifiers(r, sa)
    if idents:
        res["identifier"] = idents
    status = r.mapped(kid(sa, "statusCode"), "v3-actstatus-to-medicationrequest-status",
                      "http://hl7.org/fhir/CodeSystem/medicationrequest-status", "prescription statusCode")
    res["status"] = status or "unknown"
    res["intent"] = "order"
    res["medicationReference"] = ref(med)
    res["subject"] = r.subject()
    if authored:
        res["authoredOn"] = authored
    if requester:
        res["requester"] = requester
    why = reasons(r, sa)
    if why:
        res["reasonCode"] = why
    dose = dosage(r, sa)
    ets = kids(sa, "effectiveTime")
    if ets:
        single, per = r.period(ets[0])
        if per or single:
            dose.setdefault("timing", {}).setdefault("repeat", {})["boundsPeriod"] = per or {"start": single,
                                                                                           "end": single}
        use(ets[0])
    notes = instructions(r, sa, dose)
    for er, act in related(sa):
        code = value(kid(act, "code"), "code")
        if local(act) == "supply" and value(act, "moodCode") == "RQO":
            q = kid(act, "quantity")
            qty = r.quantity(q)
            use(er, act, kid(act, "independentInd"))
            if qty:
                res["dispenseRequest"] = {"quantity": qty}
        elif local(act) == "observation" and code == "SUBST":
            v = kid(act, "value")
            sub = value(v, "code")
            use(er, act, kid(act, "code"))
            if sub == "N":
                res["substitution"] = {"allowedBoolean": False}
                use(v)
            elif sub:
                res["substitution"] = {"allowedCodeableConcept": r.concept(v)}
    if dose:
        res["dosageInstruction"] = [dose]
    if notes:
        res["note"] = notes
    return r.add(res)
