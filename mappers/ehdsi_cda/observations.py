"""eHDSI PS observation entries → IPS Observations: results (laboratory/pathology, organizers as DiagnosticReport),
vital signs, pregnancy (status with its expected delivery date), social history, functional status."""

from __future__ import annotations

from typing import Any

from lxml import etree

from mappers.cda_cn.coverage import use
from mappers.cda_cn.xpath import local, path
from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.clinical import identifiers, related, statement_parts
from mappers.ehdsi_cda.header import role
from mappers.ehdsi_cda.reader import Reader, absent, kid, kids, number, ref, value, xsi_type

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
BP_PARTS = {"8480-6", "8462-4"}  # systolic, diastolic
EDD_CODES = {"11778-8", "11779-6", "11780-4"}  # IPS edd-method-uv-ips
PROFILE_BY_CODE = {"72166-2": "Observation-tobaccouse-uv-ips", "74013-4": "Observation-alcoholuse-uv-ips",
                   "82810-3": "Observation-pregnancy-status-uv-ips"}


def observation_value(r: Reader, obs: etree._Element, res: dict[str, Any]) -> bool:
    """value[x] from the observation's value by its xsi:type (CDA R2 ANY → FHIR R4 Observation.value[x])."""
    v = kid(obs, "value")
    if v is None:
        return False
    kind = xsi_type(v)
    if v.get("nullFlavor"):
        use(v)
        res["dataAbsentReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                               "code": "unknown"}]}
        return True
    if kind in ("CD", "CE", "CV", "CO"):
        cc = r.concept(v)
        if cc:
            res["valueCodeableConcept"] = cc
            return True
    elif kind == "PQ":
        q = r.quantity(v)
        if q:
            res["valueQuantity"] = q
            return True
    elif kind == "IVL_PQ":
        rng = {k: q for k in ("low", "high") if (q := r.quantity(kid(v, k)))}
        if rng:
            res["valueRange"] = rng
            use(v)
            return True
    elif kind == "INT":
        n = number(value(v, "value"))
        if isinstance(n, int):
            res["valueInteger"] = n
            use(v)
            return True
    elif kind == "BL":
        if value(v, "value") in ("true", "false"):
            res["valueBoolean"] = value(v, "value") == "true"
            use(v)
            return True
    elif kind == "TS":
        t = r.time(v)
        if t:
            res["valueDateTime"] = t
            return True
    elif kind in ("ST", "ED", ""):
        t = r.text(v)
        if t:
            res["valueString"] = t
            return True
    r.notes.warn("ehdsi-value-not-mapped", f"an observation value of type {kind or '(none)'} is not mapped", path(v))
    return False


def observation(r: Reader, obs: etree._Element, profile: str | None, category: str | None,
                performer_required: bool = False, with_components: bool = True) -> dict[str, Any]:
    """The parts every IPS Observation shares: status, category, code, subject, effective, value, interpretation,
    reference range, performer; nested COMP observations as components (unless the caller reads them itself)."""
    statement_parts(r, obs)
    res = r.new("Observation", obs, profile)
    idents = identifiers(r, obs)
    if idents:
        res["identifier"] = idents
    status = r.mapped(kid(obs, "statusCode"), "v3-actstatus-to-observation-status",
                      "http://hl7.org/fhir/observation-status", "observation statusCode")
    res["status"] = status or "final"
    if category:
        res["category"] = [{"coding": [{"system": OBS_CATEGORY, "code": category}]}]
    code = r.concept(kid(obs, "code"))
    res["code"] = code or absent()
    res["subject"] = r.subject()
    single, per = r.period(kid(obs, "effectiveTime"))
    if single:
        res["effectiveDateTime"] = single
    elif per:
        res["effectivePeriod"] = per
    elif profile:
        res["_effectiveDateTime"] = absent()
    performers = []
    for p in kids(obs, "performer"):
        who = role(r, kid(p, "assignedEntity"), "assignedPerson", "representedOrganization")
        if who:
            performers.append(ref(who))
            use(p)
    if performers:
        res["performer"] = performers
    elif performer_required:
        res["performer"] = [absent()]
    method = r.concept(kid(obs, "methodCode"))
    if method:
        res["method"] = method
    site = r.concept(kid(obs, "targetSiteCode"))
    if site:
        res["bodySite"] = site
    observation_value(r, obs, res)
    interp = []
    for i in kids(obs, "interpretationCode"):
        system, code = C.system_uri(value(i, "codeSystem")), value(i, "code")
        if system.endswith("v3-ObservationInterpretation") and code not in C.INTERPRETATION:
            r.notes.warn("ehdsi-code-not-mapped", f"interpretationCode {code!r} is not an HL7 v3 "
                         "ObservationInterpretation code; not mapped", path(i))
            use(i)
            continue
        c = r.concept(i)
        if c:
            interp.append(c)
    if interp:
        res["interpretation"] = interp
    parts = []
    nested = [(er, o) for er in kids(obs, "entryRelationship") if value(er, "typeCode") == "COMP"
              for o in kids(er, "observation")] if with_components else []
    for er, o in nested:
        code = r.concept(kid(o, "code"))
        if code is None:
            continue
        part: dict[str, Any] = {"code": code}
        observation_value(r, o, part)
        interp = [c for i in kids(o, "interpretationCode") if (c := r.concept(i))]
        if interp:
            part["interpretation"] = interp
        use(er, o, kid(o, "statusCode"))
        r.mark(*kids(o, "templateId"))
        parts.append(part)
    if parts:
        res["component"] = parts
    ranges = []
    for rr in kids(obs, "referenceRange"):
        ov = kid(rr, "observationRange")
        v = kid(ov, "value")
        rng = {k: q for k in ("low", "high") if (q := r.quantity(kid(v, k)))}
        text = r.text(kid(ov, "text"))
        if text:
            rng["text"] = text
        if rng:
            ranges.append(rng)
            use(rr, ov, v)
    if ranges:
        res["referenceRange"] = ranges
    return res


def result(r: Reader, el: etree._Element, section: str) -> list[dict[str, Any]]:
    """A result observation → Observation-results-laboratory-pathology-uv-ips; a result organizer →
    DiagnosticReport-uv-ips with its component observations."""
    if local(el) == "observation":
        return [r.add(observation(r, el, "Observation-results-laboratory-pathology-uv-ips", "laboratory", True))]
    statement_parts(r, el)
    members = [r.add(observation(r, o, "Observation-results-laboratory-pathology-uv-ips", "laboratory", True))
               for c in kids(el, "component") for o in kids(c, "observation")]
    for c in kids(el, "component"):
        use(c)
    dr = r.new("DiagnosticReport", el, "DiagnosticReport-uv-ips")
    idents = identifiers(r, el)
    if idents:
        dr["identifier"] = idents
    st = r.mapped(kid(el, "statusCode"), "v3-actstatus-to-observation-status",
                  "http://hl7.org/fhir/observation-status", "organizer statusCode")
    dr["status"] = st if st in ("final", "preliminary", "amended", "corrected", "cancelled",
                                "entered-in-error") else "final"
    code = r.concept(kid(el, "code"))
    dr["code"] = code or absent()
    dr["subject"] = r.subject()
    single, per = r.period(kid(el, "effectiveTime"))
    first = next((m.get("effectiveDateTime") for m in members if m.get("effectiveDateTime")), None)
    if single or (not per and first):
        dr["effectiveDateTime"] = single or first
    elif per:
        dr["effectivePeriod"] = per
    else:
        dr["_effectiveDateTime"] = absent()
    performers = []
    for p in kids(el, "performer"):
        who = role(r, kid(p, "assignedEntity"), "assignedPerson", "representedOrganization")
        if who:
            performers.append(ref(who))
            use(p)
    if performers:
        dr["performer"] = performers
    if members:
        dr["result"] = [ref(m) for m in members]
    return [r.add(dr)]


def vital(r: Reader, el: etree._Element, section: str) -> list[dict[str, Any]]:
    """A vital signs organizer → one Observation (R4 vitalsigns profile) per component; a bare observation too."""
    if local(el) == "observation":
        return [r.add(observation(r, el, VITAL_SIGNS, "vital-signs"))]
    statement_parts(r, el)
    r.mark(kid(el, "statusCode"), *kids(el, "id"))
    out: list[dict[str, Any]] = []
    organizer_time, _ = r.period(kid(el, "effectiveTime"))  # each component carries its own time
    r.concept(kid(el, "code"))
    bp: list[dict[str, Any]] = []
    for c in kids(el, "component"):
        for o in kids(c, "observation"):
            res = observation(r, o, VITAL_SIGNS, "vital-signs")
            if "effectiveDateTime" not in res and "effectivePeriod" not in res and organizer_time:
                res.pop("_effectiveDateTime", None)
                res["effectiveDateTime"] = organizer_time
            if value(kid(o, "code"), "code") in BP_PARTS and "valueQuantity" in res:
                bp.append(res)
            else:
                out.append(r.add(res))
        use(c)
    if bp:
        out.insert(0, r.add(blood_pressure(r, el, bp)))
    return out


def blood_pressure(r: Reader, organizer: etree._Element, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Systolic and diastolic pressure (LOINC 8480-6, 8462-4) as the R4 blood pressure panel (85354-9) with two
    components (R4 vital signs: the bp profile requires them as components, not as separate Observations)."""
    res = r.new("Observation", organizer, "http://hl7.org/fhir/StructureDefinition/bp")
    first = parts[0]
    idents = [i for p in parts for i in p.get("identifier", [])]
    if idents:
        res["identifier"] = [i for n, i in enumerate(idents) if i not in idents[:n]]
    res["status"] = first["status"]
    res["category"] = first["category"]
    res["code"] = {"coding": [{"system": C.LOINC, "code": "85354-9", "display": "Blood pressure panel with all "
                               "children optional"}]}
    res["subject"] = r.subject()
    for k in ("effectiveDateTime", "effectivePeriod", "_effectiveDateTime"):
        if k in first:
            res[k] = first[k]
            break
    res["component"] = [{"code": p["code"], "valueQuantity": p["valueQuantity"]} for p in parts]
    return res


def pregnancy(r: Reader, el: etree._Element, section: str) -> list[dict[str, Any]]:
    """Pregnancy status (LOINC 82810-3) → Observation-pregnancy-status-uv-ips with its expected delivery date
    (Observation-pregnancy-edd-uv-ips, hasMember); other pregnancy observations as Observations."""
    if local(el) != "observation":
        r.notes.warn("ehdsi-entry-not-mapped", f"a pregnancy history {local(el)} is not mapped", path(el))
        return []
    code = value(kid(el, "code"), "code")
    profile = "Observation-pregnancy-status-uv-ips" if code == "82810-3" else (
        "Observation-pregnancy-edd-uv-ips" if code in EDD_CODES else None)
    res = observation(r, el, profile, None, with_components=False)
    members = []
    for er, o in related(el):
        if local(o) != "observation":
            continue
        ocode = value(kid(o, "code"), "code")
        m = observation(r, o, "Observation-pregnancy-edd-uv-ips" if ocode in EDD_CODES else None, None)
        use(er)
        members.append(r.add(m))
    if members:
        res["hasMember"] = [ref(m) for m in members]
    return [r.add(res)]


def social(r: Reader, el: etree._Element, section: str) -> list[dict[str, Any]]:
    """A social history observation → Observation (IPS tobacco/alcohol use profiles for their LOINC codes)."""
    if local(el) != "observation":
        r.notes.warn("ehdsi-entry-not-mapped", f"a social history {local(el)} is not mapped", path(el))
        return []
    code = value(kid(el, "code"), "code")
    system = C.system_uri(value(kid(el, "code"), "codeSystem"))
    profile = PROFILE_BY_CODE.get(code) if system == C.LOINC else None
    return [r.add(observation(r, el, profile, "social-history"))]


def functional(r: Reader, el: etree._Element, section: str) -> list[dict[str, Any]]:
    """A functional status organizer → ClinicalImpression whose investigation lists the assessment observations
    (IPS sectionFunctionalStatus takes Condition or ClinicalImpression); a bare observation likewise; a problem
    concern act is a disability (Condition)."""
    if local(el) == "act":
        from mappers.ehdsi_cda.clinical import problem
        return problem(r, el, section)
    statement_parts(r, el)
    obs = [o for c in kids(el, "component") for o in kids(c, "observation")] if local(el) == "organizer" else [el]
    members = [r.add(observation(r, o, None, None)) for o in obs]
    for c in kids(el, "component"):
        use(c)
    ci = r.new("ClinicalImpression", el)
    idents = identifiers(r, el) if local(el) == "organizer" else []
    if idents:
        ci["identifier"] = idents
    ci["status"] = "completed"
    if local(el) == "organizer":
        use(kid(el, "statusCode"))
    code = r.concept(kid(el, "code")) if local(el) == "organizer" else None
    if code:
        ci["code"] = code
    ci["subject"] = r.subject()
    single, per = r.period(kid(el, "effectiveTime")) if local(el) == "organizer" else (None, {})
    if single:
        ci["effectiveDateTime"] = single
    elif per:
        ci["effectivePeriod"] = per
    ci["investigation"] = [{"code": code or {"text": "functional status assessment"},
                            "item": [ref(m) for m in members]}]
    return [r.add(ci)]
