"""IPS resources → eHDSI PS L3 entries (the inverse of mappers.ehdsi_cda.clinical and .observations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.writer import Writer, absent, el, ivl, pq, text_el, ts, typed
from mappers.terminology import translate

LOINC_OID, SNOMED_OID = "2.16.840.1.113883.6.1", "2.16.840.1.113883.6.96"
# FHIR code systems written with the OIDs eHDSI documents use for them (R4 core identifiers).
CONDITION_CLINICAL_OID = "2.16.840.1.113883.4.642.4.1074"
CONDITION_VER_OID = "2.16.840.1.113883.4.642.4.1075"
ALLERGY_CLINICAL_OID = "2.16.840.1.113883.4.642.4.1373"
ALLERGY_VER_OID = "2.16.840.1.113883.4.642.4.1371"
CRITICALITY_OID = "2.16.840.1.113883.4.642.4.130"
_UNITS = {"s": "s", "min": "min", "h": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a"}


def templated(parent: etree._Element, name: str, template: str, **attrs: str) -> etree._Element:
    out = el(parent, name, **attrs)
    el(out, "templateId", root=template)
    return out


def coded_value(parent: etree._Element, loinc: str, display: str, oid: str, code: str,
                template: str = "") -> etree._Element:
    """An entryRelationship REFR observation stating one coded value (status, certainty, criticality)."""
    er = el(parent, "entryRelationship", typeCode="REFR")
    obs = el(er, "observation", classCode="OBS", moodCode="EVN")
    if template:
        el(obs, "templateId", root=template)
    el(obs, "code", code=loinc, codeSystem=LOINC_OID, displayName=display)
    el(obs, "statusCode", code="completed")
    typed(obs, "value", "CD", code=code, codeSystem=oid)
    return obs


def _first_code(cc: dict[str, Any] | None, system: str) -> str:
    return next((c.get("code", "") for c in (cc or {}).get("coding", []) if c.get("system") == system), "")


def problem(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """Condition → problem concern act with its problem observation (eHDSI 3.15 / 3.7)."""
    clinical = _first_code(res.get("clinicalStatus"), "http://terminology.hl7.org/CodeSystem/condition-clinical")
    act = templated(entry, "act", C.T_PROBLEM_CONCERN, classCode="ACT", moodCode="EVN")
    el(act, "id", nullFlavor="NI")
    el(act, "code", code="CONC", codeSystem="2.16.840.1.113883.5.6")
    el(act, "statusCode", code="active" if clinical in ("active", "recurrence", "relapse", "") else "completed")
    ivl(act, "effectiveTime", None, {"start": res.get("onsetDateTime"), "end": res.get("abatementDateTime")})
    er = el(act, "entryRelationship", typeCode="SUBJ", inversionInd="false")
    obs = templated(er, "observation", C.T_PROBLEM, classCode="OBS", moodCode="EVN")
    w.ids(obs, res.get("identifier"), required=True)
    kind = next((c for c in res.get("category", [])
                 if not _first_code(c, "http://terminology.hl7.org/CodeSystem/condition-category")), None)
    if kind:
        w.code(obs, "code", kind)
    else:
        el(obs, "code", code="55607006", codeSystem=SNOMED_OID, displayName="Problem")
    el(obs, "statusCode", code="completed")
    ivl(obs, "effectiveTime", None, {"start": res.get("onsetDateTime"), "end": res.get("abatementDateTime")})
    w.code(obs, "value", res.get("code"), "CD", f"Condition/{res.get('id')}")
    if res.get("severity"):
        sev = el(el(obs, "entryRelationship", typeCode="SUBJ", inversionInd="true"), "observation",
                 classCode="OBS", moodCode="EVN")
        el(sev, "code", code="SEV", codeSystem="2.16.840.1.113883.5.4")
        el(sev, "statusCode", code="completed")
        w.code(sev, "value", res["severity"], "CD")
    if clinical:
        coded_value(obs, "33999-4", "Status", CONDITION_CLINICAL_OID, clinical)
    ver = _first_code(res.get("verificationStatus"), "http://terminology.hl7.org/CodeSystem/condition-ver-status")
    if ver:
        coded_value(obs, "66455-7", "Condition status", CONDITION_VER_OID, ver)


def _adverse_type(kind: str | None, category: str | None) -> str:
    """The eHDSIAdverseEventType code whose type and category (the two ConceptMaps) both match."""
    best = "420134006"
    for row in ("419199007", "416098002", "414285001", "235719002", "59037007", "782197009", "419511003",
                "418471000"):
        t = translate("ehdsi-adverse-event-type-to-allergy-intolerance-type", row)
        c = translate("ehdsi-adverse-event-type-to-allergy-intolerance-category", row)
        if (t.code if t else None) == kind and (c.code if c else None) == category:
            return row
    return best


def allergy(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """AllergyIntolerance → allergy concern act with its allergy observation (eHDSI 3.16 / 3.17)."""
    clinical = _first_code(res.get("clinicalStatus"),
                           "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical")
    act = templated(entry, "act", C.T_ALLERGY_CONCERN, classCode="ACT", moodCode="EVN")
    el(act, "id", nullFlavor="NI")
    el(act, "code", code="CONC", codeSystem="2.16.840.1.113883.5.6")
    el(act, "statusCode", code="active" if clinical in ("active", "") else "completed")
    er = el(act, "entryRelationship", typeCode="SUBJ", inversionInd="false")
    obs = templated(er, "observation", C.T_ALLERGY, classCode="OBS", moodCode="EVN")
    w.ids(obs, res.get("identifier"), required=True)
    cats = res.get("category") or []
    if len(cats) > 1:
        w.lost("ehdsi-allergy-category-not-written", "only the first allergy category is written (eHDSI names one "
               "reaction type)", f"AllergyIntolerance/{res.get('id')}")
    el(obs, "code", code=_adverse_type(res.get("type"), cats[0] if cats else None), codeSystem=SNOMED_OID)
    el(obs, "statusCode", code="completed")
    ivl(obs, "effectiveTime", None, {"start": res.get("onsetDateTime")} if res.get("onsetDateTime") else None)
    part = el(obs, "participant", typeCode="CSM")
    role = el(part, "participantRole", classCode="MANU")
    w.code(el(role, "playingEntity", classCode="MMAT"), "code", res.get("code"), "",
           f"AllergyIntolerance/{res.get('id')}")
    for rx in res.get("reaction", []):
        rer = el(obs, "entryRelationship", typeCode="MFST", inversionInd="true")
        ro = templated(rer, "observation", C.T_REACTION, classCode="OBS", moodCode="EVN")
        el(ro, "code", code="75321-0", codeSystem=LOINC_OID, displayName="Clinical finding")
        el(ro, "statusCode", code="completed")
        if rx.get("onset"):
            ivl(ro, "effectiveTime", None, {"start": rx["onset"]})
        mans = rx.get("manifestation") or [{}]
        w.code(ro, "value", mans[0], "CD")
        if len(mans) > 1:
            w.lost("ehdsi-manifestation-not-written", "only the first manifestation of a reaction is written")
        if rx.get("severity"):
            back = translate("ehdsi-severity-to-reaction-event-severity", rx["severity"], reverse=True)
            sev = el(el(ro, "entryRelationship", typeCode="SUBJ", inversionInd="true"), "observation",
                     classCode="OBS", moodCode="EVN")
            el(sev, "code", code="SEV", codeSystem="2.16.840.1.113883.5.4")
            el(sev, "statusCode", code="completed")
            if back:
                typed(sev, "value", "CD", code=back.code, codeSystem=SNOMED_OID, displayName=back.display)
    if res.get("criticality"):
        coded_value(obs, "82606-5", "Criticality", CRITICALITY_OID, res["criticality"])
    ver = _first_code(res.get("verificationStatus"),
                      "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification")
    if ver:
        coded_value(obs, "66455-7", "Condition status", ALLERGY_VER_OID, ver)
    if clinical:
        coded_value(obs, "33999-4", "Status", ALLERGY_CLINICAL_OID, clinical)


def _material(w: Writer, parent: etree._Element, med: dict[str, Any] | None, cc: dict[str, Any] | None,
              template_product: str, template_material: str) -> etree._Element:
    cons = el(parent, "consumable")
    prod = templated(cons, "manufacturedProduct", template_product, classCode="MANU")
    mat = templated(prod, "manufacturedMaterial", template_material, classCode="MMAT", determinerCode="KIND")
    code = (med or {}).get("code") if med else cc
    w.code(mat, "code", {k: v for k, v in (code or {}).items() if k != "text"} or None)
    if (code or {}).get("text"):
        text_el(mat, "name", code["text"])
    if med and med.get("form"):
        w.code(mat, "formCode", med["form"])
    for ing in (med or {}).get("ingredient", []):
        item = ing.get("itemCodeableConcept")
        if not item:
            w.lost("ehdsi-ingredient-not-written", "an ingredient given by reference is not written")
            continue
        i = el(mat, "ingredient", classCode="ACTI" if ing.get("isActive") else "INGR")
        strength = ing.get("strength") or {}
        if strength.get("numerator") and strength.get("denominator"):
            q = el(i, "quantity")
            pq(q, "numerator", strength["numerator"], "")
            pq(q, "denominator", strength["denominator"], "")
        sub = el(i, "ingredientSubstance", classCode="MMAT", determinerCode="KIND")
        w.code(sub, "code", {k: v for k, v in item.items() if k != "text"})
        if item.get("text"):
            text_el(sub, "name", item["text"])
    return prod


def medication(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """MedicationStatement/MedicationRequest (+ Medication) → medication substanceAdministration (eHDSI 3.4)."""
    sa = templated(entry, "substanceAdministration", C.T_MEDICATION, classCode="SBADM", moodCode="INT")
    w.ids(sa, res.get("identifier"), required=True)
    back = translate("v3-actstatus-to-medication-statement-status", res.get("status", ""), reverse=True)
    el(sa, "statusCode", code=back.code if back else "completed")
    if res.get("effectivePeriod") or res.get("effectiveDateTime"):
        ivl(sa, "effectiveTime", res.get("effectiveDateTime"), res.get("effectivePeriod"))
    else:
        typed(sa, "effectiveTime", "IVL_TS", nullFlavor="UNK")
    dosage = (res.get("dosage") or res.get("dosageInstruction") or [{}])[0]
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    if repeat.get("period") is not None and repeat.get("periodUnit") in _UNITS:
        per = typed(sa, "effectiveTime", "PIVL_TS", institutionSpecified="true", operator="A")
        el(per, "period", value=str(repeat["period"]), unit=_UNITS[repeat["periodUnit"]])
    for when in repeat.get("when", []):
        ev = typed(sa, "effectiveTime", "EIVL_TS", operator="A")
        el(ev, "event", code=when, codeSystem="2.16.840.1.113883.5.139")
    if dosage.get("route"):
        w.code(sa, "routeCode", dosage["route"])
    dr = (dosage.get("doseAndRate") or [{}])[0]
    if dr.get("doseQuantity"):
        pq(sa, "doseQuantity", dr["doseQuantity"], "")
    elif dr.get("doseRange"):
        d = el(sa, "doseQuantity")
        for k in ("low", "high"):
            if dr["doseRange"].get(k):
                pq(d, k, dr["doseRange"][k], "")
    if dosage.get("text"):
        w.lost("ehdsi-dosage-text-not-written", "dosage text is kept in the section narrative only")
    med = w.get(res.get("medicationReference"))
    _material(w, sa, med, res.get("medicationCodeableConcept"), C.T_PRODUCT, C.T_MATERIAL)
    source = w.get(res.get("informationSource"))
    if source and source.get("resourceType") in ("Practitioner", "PractitionerRole", "Organization"):
        from mappers.ehdsi_cda.write_header import assigned
        au = el(sa, "author")
        el(au, "time", nullFlavor="UNK")
        assigned(w, au, "assignedAuthor", source)
    for reason in res.get("reasonCode", []):
        er = el(sa, "entryRelationship", typeCode="RSON")
        obs = el(er, "observation", classCode="OBS", moodCode="EVN")
        el(obs, "code", code="64572001", codeSystem=SNOMED_OID, displayName="Disease")
        el(obs, "statusCode", code="completed")
        w.code(obs, "value", reason, "CD")
    if dosage.get("patientInstruction"):
        _instruction(sa, "PINSTRUCT", "1.3.6.1.4.1.19376.1.5.3.1.4.3", dosage["patientInstruction"])
    for note in res.get("note", []):
        text = note.get("text", "")
        if text.startswith("Fill instruction: "):
            _instruction(sa, "FINSTRUCT", "1.3.6.1.4.1.19376.1.5.3.1.4.3.1", text[len("Fill instruction: "):])
        elif text:
            w.lost("ehdsi-note-not-written", "a medication note has no eHDSI entry element; it is in the narrative "
                   "only", f"{res.get('resourceType')}/{res.get('id')}")


def _instruction(sa: etree._Element, code: str, template: str, text: str) -> None:
    """IHE PCC patient (PINSTRUCT) or fill (FINSTRUCT) instructions, as the eHDSI medication entry carries them."""
    act = templated(el(sa, "entryRelationship", typeCode="SUBJ", inversionInd="true"), "act", template,
                    classCode="ACT", moodCode="INT")
    el(act, "code", code=code, codeSystem="1.3.6.1.4.1.19376.1.5.3.2")
    text_el(act, "text", text)
    el(act, "statusCode", code="completed")


def immunization(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """Immunization → immunization substanceAdministration (eHDSI 3.19)."""
    sa = templated(entry, "substanceAdministration", C.T_IMMUNIZATION, classCode="SBADM", moodCode="EVN",
                   negationInd="true" if res.get("status") == "not-done" else "false")
    w.ids(sa, res.get("identifier"), required=True)
    el(sa, "code", code="IMMUNIZ", codeSystem="2.16.840.1.113883.5.4", displayName="Immunization")
    el(sa, "statusCode", code="nullified" if res.get("status") == "entered-in-error" else "completed")
    ts(sa, "effectiveTime", res.get("occurrenceDateTime"), absent=True)
    if res.get("route"):
        w.code(sa, "routeCode", res["route"])
    if res.get("site"):
        w.code(sa, "approachSiteCode", res["site"])
    prod = _material(w, sa, None, res.get("vaccineCode"), C.T_VACCINE, C.T_MATERIAL)
    mat = prod[-1]
    if res.get("lotNumber"):
        text_el(mat, "lotNumberText", res["lotNumber"])
    maker = w.get(res.get("manufacturer"))
    if maker:
        org = el(prod, "manufacturerOrganization", classCode="ORG", determinerCode="INSTANCE")
        w.ids(org, maker.get("identifier"))
        if maker.get("name"):
            text_el(org, "name", maker["name"])
    from mappers.ehdsi_cda.write_header import assigned  # the header writer owns party shapes
    for p in res.get("performer", []):
        who = w.get(p.get("actor"))
        if who:
            assigned(w, el(sa, "performer", typeCode="PRF"), "assignedEntity", who)
    for proto in res.get("protocolApplied", [])[:1]:
        for t in proto.get("targetDisease", []):
            part = el(sa, "participant", typeCode="RSON")
            role = el(part, "participantRole")
            w.code(role, "code", t)
            el(role, "playingEntity", nullFlavor="UNK")
        n = proto.get("doseNumberPositiveInt")
        if n:
            er = el(sa, "entryRelationship", typeCode="SUBJ")
            obs = el(er, "observation", classCode="OBS", moodCode="EVN")
            el(obs, "code", code="30973-2", codeSystem=LOINC_OID, displayName="Dose number")
            el(obs, "statusCode", code="completed")
            typed(obs, "value", "INT", value=str(n))


def procedure(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """Procedure → procedure (eHDSI 3.26)."""
    p = templated(entry, "procedure", C.T_PROCEDURE, classCode="PROC", moodCode="EVN")
    w.ids(p, res.get("identifier"), required=True)
    w.code(p, "code", res.get("code"), "", f"Procedure/{res.get('id')}")
    back = translate("v3-actstatus-to-event-status", res.get("status", ""), reverse=True)
    el(p, "statusCode", code=back.code if back else "completed")
    if absent(res, "performedDateTime") or not (res.get("performedDateTime") or res.get("performedPeriod")):
        typed(p, "effectiveTime", "IVL_TS", nullFlavor="UNK")
    else:
        ivl(p, "effectiveTime", res.get("performedDateTime"), res.get("performedPeriod"))
    for site in res.get("bodySite", []):
        w.code(p, "targetSiteCode", site)


def device(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """DeviceUseStatement (+ Device) → medical device supply (eHDSI 3.5)."""
    s = templated(entry, "supply", C.T_DEVICE, classCode="SPLY", moodCode="EVN")
    w.ids(s, res.get("identifier"))
    ivl(s, "effectiveTime", res.get("timingDateTime"), res.get("timingPeriod"))
    dev = w.get(res.get("device")) or {}
    role = el(el(s, "participant", typeCode="DEV"), "participantRole", classCode="MANU")
    w.ids(role, dev.get("identifier"))
    w.code(el(role, "playingDevice"), "code", dev.get("type"))


def _obs(w: Writer, parent: etree._Element, res: dict[str, Any], template: str) -> etree._Element:
    """An observation for an Observation: id, code, status, time, value, interpretation, reference range."""
    obs = templated(parent, "observation", template, classCode="OBS", moodCode="EVN")
    w.ids(obs, res.get("identifier"), required=True)
    w.code(obs, "code", res.get("code"), "", f"Observation/{res.get('id')}")
    back = translate("v3-actstatus-to-observation-status", res.get("status", ""), reverse=True)
    el(obs, "statusCode", code=back.code if back else "completed")
    if res.get("effectiveDateTime"):
        ts(obs, "effectiveTime", res["effectiveDateTime"])
    elif res.get("effectivePeriod"):
        ivl(obs, "effectiveTime", None, res["effectivePeriod"])
    else:
        el(obs, "effectiveTime", nullFlavor="UNK")
    value_of(w, obs, res)  # CDA R2 observation order: value, interpretationCode, methodCode, targetSiteCode,
    for i in res.get("interpretation", []):  # performer, ..., entryRelationship, ..., referenceRange
        w.code(obs, "interpretationCode", i)
    if res.get("method"):
        w.code(obs, "methodCode", res["method"])
    if res.get("bodySite"):
        w.code(obs, "targetSiteCode", res["bodySite"])
    for p in res.get("performer", []):
        who = w.get(p)
        if who and who.get("resourceType") in ("Practitioner", "PractitionerRole", "Organization"):
            from mappers.ehdsi_cda.write_header import assigned
            assigned(w, el(obs, "performer", typeCode="PRF"), "assignedEntity", who)
    for comp in res.get("component", []):
        # CDA has no observation component: each is a nested observation (entryRelationship COMP)
        part = el(el(obs, "entryRelationship", typeCode="COMP"), "observation", classCode="OBS", moodCode="EVN")
        w.code(part, "code", comp.get("code"))
        el(part, "statusCode", code="completed")
        value_of(w, part, comp)
        for i in comp.get("interpretation", []):
            w.code(part, "interpretationCode", i)
    for rr in res.get("referenceRange", []):
        orr = el(el(obs, "referenceRange"), "observationRange")
        if rr.get("text"):
            text_el(orr, "text", rr["text"])
        if rr.get("low") or rr.get("high"):
            v = typed(orr, "value", "IVL_PQ")
            for k in ("low", "high"):
                if rr.get(k):
                    pq(v, k, rr[k], "")
    return obs


def value_of(w: Writer, obs: etree._Element, res: dict[str, Any]) -> None:
    if "valueQuantity" in res:
        pq(obs, "value", res["valueQuantity"])
    elif "valueCodeableConcept" in res:
        w.code(obs, "value", res["valueCodeableConcept"], "CD")
    elif "valueString" in res:
        typed(obs, "value", "ST").text = res["valueString"]
    elif "valueInteger" in res:
        typed(obs, "value", "INT", value=str(res["valueInteger"]))
    elif "valueBoolean" in res:
        typed(obs, "value", "BL", value="true" if res["valueBoolean"] else "false")
    elif "valueDateTime" in res:
        ts(obs, "value", res["valueDateTime"]).set("{http://www.w3.org/2001/XMLSchema-instance}type", "TS")
    elif "valueRange" in res:
        v = typed(obs, "value", "IVL_PQ")
        for k in ("low", "high"):
            if res["valueRange"].get(k):
                pq(v, k, res["valueRange"][k], "")
    elif "dataAbsentReason" in res:
        typed(obs, "value", "CD", nullFlavor="UNK")
    else:
        kinds = [k for k in res if k.startswith("value")]
        if kinds:
            w.lost("ehdsi-value-not-written", f"an Observation {kinds[0]} is not written",
                   f"Observation/{res.get('id')}")


def result(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """A laboratory Observation → result observation (3.43); a DiagnosticReport → result organizer (3.42)."""
    if res["resourceType"] == "Observation" and not res.get("hasMember"):
        _obs(w, entry, res, C.T_BLOOD_GROUP if _first_code(res.get("code"), C.LOINC) in ("34530-6", "882-1")
             else C.T_RESULT)
        return
    # A DiagnosticReport, or a panel Observation (hasMember): a result organizer of its members
    org = templated(entry, "organizer", C.T_RESULT_ORGANIZER, classCode="BATTERY", moodCode="EVN")
    w.ids(org, res.get("identifier"), required=True)
    w.code(org, "code", res.get("code"))
    el(org, "statusCode", code="completed")
    if res.get("effectiveDateTime") or res.get("effectivePeriod"):
        ivl(org, "effectiveTime", res.get("effectiveDateTime"), res.get("effectivePeriod"))
    for p in res.get("performer", []):
        who = w.get(p)
        if who and who.get("resourceType") in ("Practitioner", "PractitionerRole", "Organization"):
            from mappers.ehdsi_cda.write_header import assigned
            assigned(w, el(org, "performer", typeCode="PRF"), "assignedEntity", who)
    for r in res.get("result", []) or res.get("hasMember", []):
        member = w.get(r)
        if member:
            _obs(w, el(org, "component"), member, C.T_RESULT)


def vitals(w: Writer, entry: etree._Element, group: list[dict[str, Any]]) -> None:
    """Vital sign Observations → one vital signs organizer (3.21); a blood pressure panel's components → its
    systolic and diastolic observations."""
    org = templated(entry, "organizer", C.T_VITAL_ORGANIZER, classCode="CLUSTER", moodCode="EVN")
    el(org, "id", nullFlavor="NI")
    el(org, "code", code="46680005", codeSystem=SNOMED_OID, displayName="Vital signs")
    el(org, "statusCode", code="completed")
    first = next((r.get("effectiveDateTime") for r in group if r.get("effectiveDateTime")), None)
    ts(org, "effectiveTime", first, absent=True)
    for res in group:
        if res.get("component"):
            for comp in res["component"]:
                part = {**{k: v for k, v in res.items() if k not in ("component", "code", "identifier")},
                        "code": comp.get("code"), **{k: v for k, v in comp.items() if k.startswith("value")}}
                _obs(w, el(org, "component"), part, C.T_VITAL)
            w.ids(org, res.get("identifier"))
        else:
            _obs(w, el(org, "component"), res, C.T_VITAL)


def pregnancy(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    obs = _obs(w, entry, res, C.T_PREGNANCY)
    for m in res.get("hasMember", []):
        member = w.get(m)
        if member:
            _obs(w, el(obs, "entryRelationship", typeCode="COMP"), member, C.T_SIMPLE_OBS)
    for rr in obs.findall("{urn:hl7-org:v3}referenceRange"):
        obs.append(rr)  # CDA R2: referenceRange after entryRelationship


def social(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    _obs(w, entry, res, C.T_SOCIAL)


def functional(w: Writer, entry: etree._Element, res: dict[str, Any]) -> None:
    """ClinicalImpression → a functional status organizer of its investigation's observations; a Condition
    (disability) → a problem observation."""
    if res["resourceType"] == "Condition":
        problem(w, entry, res)
        return
    org = templated(entry, "organizer", f"{C.EHDSI}.3.39", classCode="CLUSTER", moodCode="EVN")
    w.ids(org, res.get("identifier"))
    w.code(org, "code", res.get("code"))
    el(org, "statusCode", code="completed")
    if res.get("effectiveDateTime") or res.get("effectivePeriod"):
        ivl(org, "effectiveTime", res.get("effectiveDateTime"), res.get("effectivePeriod"))
    for inv in res.get("investigation", []):
        for item in inv.get("item", []):
            member = w.get(item)
            if member and member.get("resourceType") == "Observation":
                _obs(w, el(org, "component"), member, f"{C.EHDSI}.3.40")


Entry = Callable[[Writer, etree._Element, dict[str, Any]], None]
# (section kind, resourceType) → writer
WRITERS: dict[tuple[str, str], Entry] = {
    ("problem", "Condition"): problem, ("allergy", "AllergyIntolerance"): allergy,
    ("medication", "MedicationStatement"): medication, ("medication", "MedicationRequest"): medication,
    ("immunization", "Immunization"): immunization, ("procedure", "Procedure"): procedure,
    ("device", "DeviceUseStatement"): device, ("result", "Observation"): result,
    ("result", "DiagnosticReport"): result, ("pregnancy", "Observation"): pregnancy,
    ("social", "Observation"): social, ("functional", "ClinicalImpression"): functional,
    ("functional", "Condition"): functional,
}
