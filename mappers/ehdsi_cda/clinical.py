"""eHDSI PS entries that are clinical statements → IPS resources: problems (Condition), allergies
(AllergyIntolerance), medications (MedicationStatement + Medication), immunizations, procedures, devices.

Each function takes the entry's clinical statement and returns the resources the section's entry references (their
dependants — a Medication, a Device, an Organization — are added to the Reader)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from mappers.cda_cn.coverage import use
from mappers.cda_cn.xpath import local, path
from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.header import organization, role
from mappers.ehdsi_cda.reader import Reader, absent, kid, kids, number, ref, value, xsi_type

CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CRITICALITY = "http://hl7.org/fhir/allergy-intolerance-criticality"
SEVERITY = "http://hl7.org/fhir/reaction-event-severity"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
STATUS, CERTAINTY, CRITICALITY_OBS, HEALTH_STATUS, DOSE_NUMBER = "33999-4", "66455-7", "82606-5", "11323-3", "30973-2"
_UNITS = {"s": "s", "min": "min", "h": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a"}  # UCUM → FHIR units of time


def related(el: etree._Element) -> list[tuple[etree._Element, etree._Element]]:
    """(entryRelationship, its clinical statement) pairs of `el`."""
    return [(er, c) for er in kids(el, "entryRelationship") for c in er if isinstance(c.tag, str)
            and local(c) in ("observation", "act", "substanceAdministration", "supply", "procedure", "organizer")]


def coded_obs(el: etree._Element, loinc: str) -> etree._Element | None:
    """The nested observation with LOINC code `loinc` (status, certainty, criticality, ...), marked used."""
    for er, obs in related(el):
        code = kid(obs, "code")
        if local(obs) == "observation" and value(code, "code") == loinc:
            use(er, obs, code, kid(obs, "statusCode"))
            for t in kids(obs, "templateId"):
                use(t)
            return obs
    return None


def statement_parts(r: Reader, el: etree._Element) -> None:
    """Parts every clinical statement has that the resource carries by being one (templateId, a text reference
    into the section narrative, a completed statusCode)."""
    r.mark(*kids(el, "templateId"))
    t = kid(el, "text")
    if t is not None and kid(t, "reference") is not None:
        r.mark(t, kid(t, "reference"))


def identifiers(r: Reader, *els: etree._Element | None) -> list[dict[str, str]]:
    out = []
    for el in els:
        for e in kids(el, "id"):
            i = r.identifier(e)
            if i and i not in out:
                out.append(i)
    return out


def concern(r: Reader, el: etree._Element, empty: str) -> list[etree._Element]:
    """The observations a concern act wraps (its entryRelationships and code taken as read), or [el] for a bare
    observation; [] when the act holds none, reported with `empty`."""
    statement_parts(r, el)
    if local(el) != "act":
        return [el]
    inner = [c for _, c in related(el) if local(c) == "observation"]
    if not inner:
        r.notes.warn("ehdsi-empty-concern", empty, path(el))
        return []
    for er in kids(el, "entryRelationship"):
        use(er)
    use(kid(el, "code"))
    statement_parts(r, inner[0])
    return inner


def problem(r: Reader, el: etree._Element, section: str) -> list[dict[str, Any]]:
    """A problem concern act (or a bare problem observation) → Condition-uv-ips."""
    inner = concern(r, el, "a problem concern holds no problem observation; not mapped")
    if not inner:
        return []
    obs = inner[0]
    for extra in inner[1:]:
        r.notes.warn("ehdsi-entry-not-mapped", "a second problem observation in one concern is not mapped",
                     path(extra))
    res = r.new("Condition", obs, "Condition-uv-ips")
    idents = identifiers(r, el, obs) if obs is not el else identifiers(r, obs)
    if idents:
        res["identifier"] = idents
    status_obs = coded_obs(obs, STATUS)
    clinical = r.mapped(kid(status_obs, "value"), "ehdsi-status-code-to-condition-clinical", CONDITION_CLINICAL,
                        "problem status") if status_obs is not None else None
    onset, per = r.period(kid(obs, "effectiveTime"))
    abated = per.get("end")
    if clinical == "active" and abated:
        r.notes.warn("ehdsi-abatement-with-active-status", f"an active problem states an end ({abated}); the end is "
                     "not mapped (FHIR con-4: an abated condition is not active)", path(kid(obs, "effectiveTime")))
        abated = None
    if clinical is None:
        act_status = value(kid(el, "statusCode"), "code") if el is not obs else ""
        clinical = "inactive" if abated or act_status == "completed" else ("active" if act_status == "active" else None)
        if clinical:
            use(kid(el, "statusCode"))
            r.notes.inform("ehdsi-status-from-concern", f"the problem's clinical status {clinical!r} is taken from "
                           "its concern act's statusCode/end (no status observation)", path(el))
    if clinical:
        res["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": clinical}]}
        if el is not obs:
            use(kid(el, "statusCode"))  # the concern's tracking state: the clinical status stands for it
    cert = coded_obs(obs, CERTAINTY)
    if cert is not None:
        vs = r.mapped(kid(cert, "value"), None, CONDITION_VERIFICATION,
                      "problem certainty")
        if vs:
            res["verificationStatus"] = {"coding": [{"system": CONDITION_VERIFICATION, "code": vs}]}
    res["category"] = [{"coding": [{"system": CATEGORY, "code": "problem-list-item"}]}]
    kind = r.concept(kid(obs, "code"))
    if kind:
        res["category"].append(kind)
    sev = next((c for _, c in related(obs) if value(kid(c, "code"), "code") == "SEV"), None)
    if sev is not None:
        s = r.concept(kid(sev, "value"))
        if s:
            res["severity"] = s
            use(sev, kid(sev, "code"), sev.getparent(), kid(sev, "statusCode"))
            statement_parts(r, sev)
    code = r.concept(kid(obs, "value"))
    res["code"] = code or absent()
    if not code:
        r.notes.warn("ehdsi-problem-no-code", "a problem has no coded value (Condition.code is 1..1)", path(obs))
    res["subject"] = r.subject()
    if onset:
        res["onsetDateTime"] = onset
    elif per.get("start"):
        res["onsetDateTime"] = per["start"]
    if abated:
        res["abatementDateTime"] = abated
    use(kid(el, "effectiveTime"), *kid(el, "effectiveTime") if kid(el, "effectiveTime") is not None else ())
    hs = coded_obs(obs, HEALTH_STATUS)
    if hs is not None:
        r.notes.inform("ehdsi-health-status-not-mapped", "a problem's health status observation (LOINC 11323-3) has "
                       "no place in Condition; not mapped", path(hs))
        r.mark(*hs.iter())
    use(kid(obs, "statusCode"))
    return [r.add(res)]


def allergy(r: Reader, el: etree._Element, section: str) -> list[dict[str, Any]]:
    """An allergy concern act → AllergyIntolerance-uv-ips (type and category through the eHDSIAdverseEventType maps,
    status, certainty, criticality, reactions with their severity)."""
    inner = concern(r, el, "an allergy concern holds no observation; not mapped")
    if not inner:
        return []
    obs = inner[0]
    res = r.new("AllergyIntolerance", obs, "AllergyIntolerance-uv-ips")
    idents = identifiers(r, el, obs) if obs is not el else identifiers(r, obs)
    if idents:
        res["identifier"] = idents
    status_obs = coded_obs(obs, STATUS)
    clinical = r.mapped(kid(status_obs, "value"), "ehdsi-status-code-to-allergyintolerance-clinical",
                        ALLERGY_CLINICAL, "allergy status") if status_obs is not None else None
    if clinical is None:
        act_status = value(kid(el, "statusCode"), "code")
        clinical = {"active": "active", "completed": "resolved", "suspended": "inactive",
                    "aborted": "inactive"}.get(act_status, "active")
        use(kid(el, "statusCode"))
        r.notes.inform("ehdsi-status-from-concern", f"the allergy's clinical status {clinical!r} is taken from its "
                       f"concern act's statusCode {act_status or '(none: active)'!r} (no status observation; FHIR "
                       "ait-1 needs one)", path(el))
    res["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": clinical}]}
    if el is not obs:
        use(kid(el, "statusCode"))  # the concern's tracking state: the clinical status stands for it
    cert = coded_obs(obs, CERTAINTY)
    if cert is not None:
        v = r.mapped(kid(cert, "value"), None, ALLERGY_VERIFICATION,
                     "allergy certainty")
        if v:
            res["verificationStatus"] = {"coding": [{"system": ALLERGY_VERIFICATION, "code": v}]}
    # The reaction type: the observation's code (eHDSI), or its value when the code is an assertion (IHE PCC).
    type_el = kid(obs, "code")
    if value(type_el, "code") in ("ASSERTION", "") and kid(obs, "value") is not None:
        use(type_el)
        type_el = kid(obs, "value")
    system, code = r.coding(type_el)
    if code and system == C.SNOMED:
        kind = r.mapped_code("ehdsi-adverse-event-type-to-allergy-intolerance-type", code)
        cat = r.mapped_code("ehdsi-adverse-event-type-to-allergy-intolerance-category", code)
        if kind:
            res["type"] = kind
        if cat:
            res["category"] = [cat]
        if not kind and not cat and code not in ("420134006", "418038007"):
            r.notes.inform("ehdsi-allergy-type-not-mapped", f"reaction type {code!r} names neither an allergy or "
                           "intolerance nor a substance category; not mapped", path(type_el))
    elif code:
        r.notes.inform("ehdsi-allergy-type-not-mapped", f"reaction type {code!r} ({system}) is not SNOMED CT; not "
                       "mapped", path(type_el))
    r.text(kid(type_el, "originalText"))
    crit = coded_obs(obs, CRITICALITY_OBS)
    if crit is not None:
        c = r.mapped(kid(crit, "value"), "v3-observation-value-to-allergy-intolerance-criticality", CRITICALITY,
                     "criticality")
        if c:
            res["criticality"] = c
    agent = kid(obs, "participant", "participantRole", "playingEntity")
    code_cc = r.concept(kid(agent, "code"))
    name = r.text(kid(agent, "name"))
    if name:
        code_cc = {**(code_cc or {}), "text": (code_cc or {}).get("text") or name}
    if agent is not None:
        use(kid(obs, "participant"), kid(obs, "participant", "participantRole"), agent)
    res["code"] = code_cc or absent()
    if not code_cc:
        r.notes.warn("ehdsi-allergy-no-agent", "an allergy names no agent (AllergyIntolerance.code is 1..1)", path(obs))
    res["patient"] = r.subject()
    onset, per = r.period(kid(obs, "effectiveTime"))
    onset = onset or per.get("start")
    if onset:
        res["onsetDateTime"] = onset
    if per.get("end"):
        r.notes.inform("ehdsi-allergy-end-not-mapped", f"the allergy's end {per['end']} has no place in "
                       "AllergyIntolerance (R4); not mapped", path(kid(obs, "effectiveTime")))
    if kid(el, "effectiveTime") is not None and el is not obs:
        r.mark(kid(el, "effectiveTime"), *kid(el, "effectiveTime"))
    reactions = []
    for er, rx in related(obs):
        if local(rx) != "observation" or value(kid(rx, "code"), "code") in (STATUS, CERTAINTY, CRITICALITY_OBS,
                                                                             "SEV"):
            continue
        if value(er, "typeCode") not in ("MFST", "") and C.EHDSI + ".3.44" not in [value(t, "root") for t in
                                                                                  kids(rx, "templateId")]:
            continue
        man = r.concept(kid(rx, "value"))
        if not man:
            continue
        statement_parts(r, rx)
        use(er, rx, kid(rx, "code"), kid(rx, "statusCode"))
        r.text(kid(kid(rx, "code"), "originalText"))
        reaction: dict[str, Any] = {"manifestation": [man]}
        ron, rper = r.period(kid(rx, "effectiveTime"))
        if ron or rper.get("start"):
            reaction["onset"] = ron or rper["start"]
        for ids in kids(rx, "id"):
            use(ids)  # a reaction has no identifier in FHIR; it is part of its AllergyIntolerance
        sev = next((c for _, c in related(rx) if value(kid(c, "code"), "code") == "SEV"), None)
        if sev is not None:
            s = r.mapped(kid(sev, "value"), "ehdsi-severity-to-reaction-event-severity", SEVERITY, "severity")
            if s:
                reaction["severity"] = s
            statement_parts(r, sev)
            use(sev, sev.getparent(), kid(sev, "code"), kid(sev, "statusCode"))
        reactions.append(reaction)
    sev = next((c for _, c in related(obs) if value(kid(c, "code"), "code") == "SEV"), None)
    if sev is not None:
        s = r.mapped(kid(sev, "value"), "ehdsi-severity-to-reaction-event-severity", SEVERITY, "severity")
        statement_parts(r, sev)
        use(sev, sev.getparent(), kid(sev, "code"), kid(sev, "statusCode"))
        if s and reactions:
            for rx_ in reactions:
                rx_.setdefault("severity", s)
        elif s:
            r.notes.inform("ehdsi-severity-without-reaction", "an allergy's severity has no reaction to go on "
                           "(AllergyIntolerance.reaction.severity); not mapped", path(sev))
    if reactions:
        res["reaction"] = reactions
    use(kid(obs, "statusCode"))
    return [r.add(res)]


def _timing(r: Reader, sa: etree._Element, dosage: dict[str, Any]) -> None:
    """PIVL_TS (a period) and EIVL_TS (an event) effectiveTimes → Dosage.timing.repeat (R4 Timing)."""
    repeat: dict[str, Any] = {}
    for et in kids(sa, "effectiveTime")[1:]:
        kind = xsi_type(et)
        if kind == "PIVL_TS":
            p = kid(et, "period")
            num, unit = number(value(p, "value")), value(p, "unit")
            if num is not None and unit in _UNITS:
                repeat.update(frequency=1, period=num, periodUnit=_UNITS[unit])
                use(et, p)
                continue
        elif kind == "EIVL_TS":
            ev = kid(et, "event")
            if value(ev, "code"):
                repeat.setdefault("when", []).append(value(ev, "code"))
                use(et, ev)
                continue
        r.notes.inform("ehdsi-timing-not-mapped", f"a {kind or 'dose'} timing is not mapped", path(et))
    if repeat:
        dosage["timing"] = {"repeat": repeat}


def product(r: Reader, sa: etree._Element) -> dict[str, Any]:
    """The consumable's manufactured material → Medication-uv-ips: code (with the generic class's ATC code of an
    epSOS/eHDSI ePrescription, asSpecializedKind), name as text, form, ingredients with their strength."""
    prod = kid(sa, "consumable", "manufacturedProduct")
    material = kid(prod, "manufacturedMaterial")
    med = r.new("Medication", material if material is not None else sa, "Medication-uv-ips")
    if prod is not None:
        r.mark(kid(sa, "consumable"), prod, *kids(prod, "templateId"), material, *kids(material, "templateId"))
    code = r.concept(kid(material, "code"))
    generic = kid(material, "asSpecializedKind", "generalizedMedicineClass")  # epSOS ePrescription
    if generic is None:
        generic = kid(material, "asSpecializedKind", "generalizedMaterialKind")  # eHDSI PS
    generic_code = r.concept(kid(generic, "code"))
    if generic_code and generic_code.get("coding"):
        code = {**(code or {}), "coding": [*(code or {}).get("coding", []), *generic_code["coding"]]}
        use(kid(material, "asSpecializedKind"), generic)
        r.text(kid(generic, "name"))  # the class's name: the ATC display says it
    name = r.text(kid(material, "name"))
    if name:
        code = {**(code or {}), "text": name} if not (code or {}).get("text") else code
    med["code"] = code or absent()
    form = r.concept(kid(material, "formCode"))
    if form:
        med["form"] = form
    ingredients = []
    for ing in kids(material, "ingredient"):
        # eHDSI: ingredient/ingredientSubstance; epSOS ePrescriptions: ingredient/ingredient
        sub = kid(ing, "ingredientSubstance")
        if sub is None:
            sub = kid(ing, "ingredient")
        item = r.concept(kid(sub, "code"))
        sname = r.text(kid(sub, "name"))
        if sname:
            item = {**(item or {}), "text": (item or {}).get("text") or sname}
        if not item:
            continue
        ingredient: dict[str, Any] = {"itemCodeableConcept": item}
        if value(ing, "classCode") == "ACTI":
            ingredient["isActive"] = True
        q = kid(ing, "quantity")
        num, den = r.quantity(kid(q, "numerator")), r.quantity(kid(q, "denominator"))
        if num and den:
            ingredient["strength"] = {"numerator": num, "denominator": den}
            use(q)
        use(ing, sub)
        ingredients.append(ingredient)
    if ingredients:
        med["ingredient"] = ingredients
    return r.add(med)


def dosage(r: Reader, sa: etree._Element) -> dict[str, Any]:
    """route, dose (a quantity or a range) and timing of a substanceAdministration → a Dosage."""
    out: dict[str, Any] = {}
    route = r.concept(kid(sa, "routeCode"))
    if route:
        out["route"] = route
    dq = kid(sa, "doseQuantity")
    if dq is not None:
        if kid(dq, "low") is not None or kid(dq, "high") is not None:
            lo, hi = r.quantity(kid(dq, "low")), r.quantity(kid(dq, "high"))
            rng = {k: v for k, v in (("low", lo), ("high", hi)) if v}
            if rng:
                out["doseAndRate"] = [{"doseRange": rng}]
                use(dq)
        else:
            q = r.quantity(dq)
            if q:
                out["doseAndRate"] = [{"doseQuantity": q}]
    _timing(r, sa, out)
    return out


def instructions(r: Reader, sa: etree._Element, dose: dict[str, Any]) -> list[dict[str, str]]:
    """IHE PCC patient (PINSTRUCT) and fill (FINSTRUCT) instruction acts: the patient's go to
    Dosage.patientInstruction; the dispenser's, which R4 has no element for, are returned as notes."""
    notes = []
    for er, act in related(sa):
        code = value(kid(act, "code"), "code")
        if local(act) != "act" or code not in ("PINSTRUCT", "FINSTRUCT"):
            continue
        text = r.text(kid(act, "text"))
        use(er, act, kid(act, "code"), kid(act, "statusCode"), *kids(act, "templateId"), *kids(act, "id"))
        if text and code == "PINSTRUCT":
            dose["patientInstruction"] = text
        elif text:
            notes.append({"text": f"Fill instruction: {text}"})
    return notes


def information_source(r: Reader, sa: etree._Element) -> dict[str, str] | None:
    """An entry's own author (who stated it) → a reference to its PractitionerRole."""
    for a in kids(sa, "author"):
        who = role(r, kid(a, "assignedAuthor"), "assignedPerson", "representedOrganization")
        if who:
            use(a)
            r.mark(*kids(a, "templateId"))
            t = kid(a, "time")
            if t is not None and value(t, "value"):
                r.notes.inform("ehdsi-entry-author-time-not-mapped", "when an entry's author stated it is not "
                               "mapped (R4 has no time on informationSource)", path(t))
                use(t)
            fc = kid(a, "functionCode")
            if fc is not None:
                use(fc)  # the author's function: its PractitionerRole stands for it
            return ref(who)
    return None


def reasons(r: Reader, sa: etree._Element) -> list[dict[str, Any]]:
    """The reasons (RSON observations' values) of a substanceAdministration."""
    out = []
    for er, o in related(sa):
        if local(o) == "observation" and value(er, "typeCode") in ("RSON", ""):
            c = r.concept(kid(o, "value"))
            if not c:
                continue
            out.append(c)
            statement_parts(r, o)
            use(er, o, kid(o, "code"), kid(o, "statusCode"))
            for i in kids(o, "id"):
                use(i)
            t, _ = r.period(kid(o, "effectiveTime"))
            if t:
                r.notes.inform("ehdsi-reason-time-not-mapped", "the time of a medication's reason is not mapped "
                               "(reasonCode is a code)", path(o))
    return out


def medication(r: Reader, sa: etree._Element, section: str) -> list[dict[str, Any]]:
    """A medication substanceAdministration → MedicationStatement-uv-ips and its Medication-uv-ips."""
    statement_parts(r, sa)
    med = product(r, sa)
    res = r.new("MedicationStatement", sa, "MedicationStatement-uv-ips")
    idents = identifiers(r, sa)
    if idents:
        res["identifier"] = idents
    status = r.mapped(kid(sa, "statusCode"), "v3-actstatus-to-medication-statement-status",
                      "http://hl7.org/fhir/CodeSystem/medication-statement-status", "medication statusCode")
    res["status"] = status or "unknown"
    res["medicationReference"] = ref(med)
    res["subject"] = r.subject()
    ets = kids(sa, "effectiveTime")
    single, per = r.period(ets[0]) if ets and xsi_type(ets[0]) in ("", "IVL_TS", "TS") else (None, {})
    if single:
        res["effectiveDateTime"] = single
    elif per:
        res["effectivePeriod"] = per
    else:
        res["_effectiveDateTime"] = absent()
    if ets:
        use(ets[0])
    why = reasons(r, sa)
    if why:
        res["reasonCode"] = why
    source = information_source(r, sa)
    if source:
        res["informationSource"] = source
    dose = dosage(r, sa)
    notes = instructions(r, sa, dose)
    if dose:
        res["dosage"] = [dose]
    if notes:
        res["note"] = notes
    return [r.add(res)]


def immunization(r: Reader, sa: etree._Element, section: str) -> list[dict[str, Any]]:
    """An immunization substanceAdministration → Immunization-uv-ips."""
    statement_parts(r, sa)
    res = r.new("Immunization", sa, "Immunization-uv-ips")
    idents = identifiers(r, sa)
    if idents:
        res["identifier"] = idents
    if value(sa, "negationInd") == "true":
        res["status"] = "not-done"
    else:
        st = value(kid(sa, "statusCode"), "code")
        res["status"] = "entered-in-error" if st == "nullified" else "completed"
        use(kid(sa, "statusCode"))
    code = kid(sa, "code")
    if value(code, "code") == "IMMUNIZ":
        use(code)
    product = kid(sa, "consumable", "manufacturedProduct")
    material = kid(product, "manufacturedMaterial")
    if product is not None:
        r.mark(kid(sa, "consumable"), product, *kids(product, "templateId"), material)
    vaccine = r.concept(kid(material, "code"))
    name = r.text(kid(material, "name"))
    if name:
        vaccine = {**(vaccine or {}), "text": (vaccine or {}).get("text") or name}
    res["vaccineCode"] = vaccine or absent()
    res["patient"] = r.subject()
    single, per = r.period(kid(sa, "effectiveTime"))
    when = single or per.get("start")
    if when:
        res["occurrenceDateTime"] = when
    else:
        res["_occurrenceDateTime"] = absent()
    lot = r.text(kid(material, "lotNumberText"))
    if lot:
        res["lotNumber"] = lot
    maker = organization(r, kid(product, "manufacturerOrganization"))
    if maker:
        res["manufacturer"] = ref(maker)
    performers = []
    for p in kids(sa, "performer"):
        who = role(r, kid(p, "assignedEntity"), "assignedPerson", "representedOrganization")
        if who:
            performers.append({"actor": ref(who)})
            use(p)
    if performers:
        res["performer"] = performers
    site = r.concept(kid(sa, "approachSiteCode"))
    if site:
        res["site"] = site
    route = r.concept(kid(sa, "routeCode"))
    if route:
        res["route"] = route
    protocol: dict[str, Any] = {}
    targets = []
    for part in kids(sa, "participant"):
        pr = kid(part, "participantRole")
        t = r.concept(kid(pr, "code"))
        if t:
            targets.append(t)
            use(part, pr)
            pe = kid(pr, "playingEntity")
            if pe is not None and pe.get("nullFlavor"):
                use(pe)
    dose = coded_obs(sa, DOSE_NUMBER)
    if dose is not None:
        statement_parts(r, dose)
        n = number(value(kid(dose, "value"), "value"))
        if isinstance(n, int) and n > 0:
            protocol["doseNumberPositiveInt"] = n
            use(kid(dose, "value"))
    if targets:
        protocol["targetDisease"] = targets
    if "doseNumberPositiveInt" in protocol:
        res["protocolApplied"] = [protocol]
    elif targets:
        r.notes.inform("ehdsi-target-disease-not-mapped", "target diseases without a dose number are not mapped "
                       "(Immunization.protocolApplied.doseNumber is 1..1)", path(sa))
    return [r.add(res)]


def procedure(r: Reader, p: etree._Element, section: str) -> list[dict[str, Any]]:
    """A procedure → Procedure-uv-ips."""
    statement_parts(r, p)
    res = r.new("Procedure", p, "Procedure-uv-ips")
    idents = identifiers(r, p)
    if idents:
        res["identifier"] = idents
    st = kid(p, "statusCode")
    res["status"] = r.mapped(st, "v3-actstatus-to-event-status", "http://hl7.org/fhir/event-status",
                             "procedure statusCode") or "completed"
    code = r.concept(kid(p, "code"))
    res["code"] = code or absent()
    res["subject"] = r.subject()
    single, per = r.period(kid(p, "effectiveTime"))
    if single:
        res["performedDateTime"] = single
    elif per:
        res["performedPeriod"] = per
    else:
        res["_performedDateTime"] = absent()
    sites = []
    for ts in kids(p, "targetSiteCode"):
        site = r.concept(ts)
        if site:
            sites.append(site)
        for q in kids(ts, "qualifier"):
            r.notes.inform("ehdsi-qualifier-not-mapped", "a body site qualifier (e.g. laterality) is not mapped "
                           "(R4 Procedure.bodySite is a CodeableConcept)", path(q))
            r.mark(*q.iter())
    if sites:
        res["bodySite"] = sites
    return [r.add(res)]


def device(r: Reader, supply: etree._Element, section: str) -> list[dict[str, Any]]:
    """A medical device supply → DeviceUseStatement-uv-ips and its Device-uv-ips."""
    statement_parts(r, supply)
    pr = kid(supply, "participant", "participantRole")
    pd = kid(pr, "playingDevice")
    dev = r.new("Device", pd if pd is not None else supply, "Device-uv-ips")
    idents = [i for e in kids(pr, "id") if (i := r.identifier(e))]
    if idents:
        dev["identifier"] = idents
    t = r.concept(kid(pd, "code"))
    if t:
        dev["type"] = t
    dev["patient"] = r.subject()
    if pr is not None:
        use(kid(supply, "participant"), pr, pd)
    r.add(dev)
    res = r.new("DeviceUseStatement", supply, "DeviceUseStatement-uv-ips")
    ids = identifiers(r, supply)
    if ids:
        res["identifier"] = ids
    single, per = r.period(kid(supply, "effectiveTime"))
    res["status"] = "completed" if per.get("end") else "active"
    res["subject"] = r.subject()
    if single:
        res["timingDateTime"] = single
    elif per:
        res["timingPeriod"] = per
    else:
        res["_timingDateTime"] = absent()
    res["device"] = ref(dev)
    return [r.add(res)]
