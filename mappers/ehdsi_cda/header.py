"""The eHDSI CDA header → IPS Patient, PractitionerRole/Practitioner/Organization and Composition header elements.

CDA R2 header (recordTarget, author, custodian, legalAuthenticator, participant, documentationOf, relatedDocument) as
the eHDSI PS templates constrain it; FHIR targets are the IPS 2.0.0 profiles.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from mappers.cda_cn.coverage import use
from mappers.cda_cn.xpath import local, path
from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.reader import Reader, kid, kids, ref, value

V3_NAME_USE = {"L": "official", "P": "nickname", "ASGN": "usual", "C": "usual", "OR": "official"}
REPRESENTATION = ("ABC", "IDE", "SYL")  # HL7 v3 EntityNameUse _NameRepresentationUse
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
PARTY_ROLES = {"GUARD": "guardian", "NOK": "next of kin", "ECON": "emergency contact", "CAREGIVER": "caregiver",
               "PRS": "personal relationship", "AGNT": "agent"}


def names(r: Reader, parent: etree._Element | None) -> list[dict[str, Any]]:
    """HumanNames for every <name> (PN): family, given, prefix, suffix; ABC/IDE/SYL as EN-representation."""
    out = []
    for n in kids(parent, "name"):
        if n.get("nullFlavor"):
            continue
        name: dict[str, Any] = {}
        uses = (n.get("use") or "").split()
        rep = next((u for u in uses if u in REPRESENTATION), "")
        if rep:
            name["extension"] = [{"url": C.NAME_REPRESENTATION, "valueCode": rep}]
        fhir_use = next((V3_NAME_USE[u] for u in uses if u in V3_NAME_USE), None)
        if fhir_use:
            name["use"] = fhir_use
        elif uses and not rep:
            r.notes.inform("ehdsi-name-use-not-mapped", f"name use {' '.join(uses)!r} has no FHIR name use", path(n))
        fam = [t for f in kids(n, "family") if (t := r.text(f))]
        if fam:
            name["family"] = " ".join(fam)
        given = [t for g in kids(n, "given") if (t := r.text(g))]
        if given:
            name["given"] = given
        for part, key in (("prefix", "prefix"), ("suffix", "suffix")):
            vals = [t for p in kids(n, part) if (t := r.text(p))]
            if vals:
                name[key] = vals
        if not any(k in name for k in ("family", "given")):
            whole = " ".join((n.text or "").split())
            if whole:
                name["text"] = whole
                use(n)
        if any(k in name for k in ("family", "given", "text")):
            use(n)
            out.append(name)
    return out


def telecoms(r: Reader, parent: etree._Element | None) -> list[dict[str, Any]]:
    out = []
    for t in kids(parent, "telecom"):
        v = value(t, "value")
        if not v or t.get("nullFlavor"):
            continue
        scheme, _, rest = v.partition(":")
        system = {"tel": "phone", "mailto": "email", "fax": "fax", "http": "url", "https": "url"}.get(scheme.lower())
        cp: dict[str, Any] = {"system": system or "other", "value": rest if system in ("phone", "email", "fax")
                              else v}
        first_use = (t.get("use") or "").split()[:1]
        if first_use:
            u = r.mapped_code("v3-address-use-to-contact-point-use", first_use[0])
            if u:
                cp["use"] = u
            else:
                r.notes.inform("ehdsi-telecom-use-not-mapped", f"telecom use {first_use[0]!r} has no FHIR use",
                               path(t))
        use(t)
        out.append(cp)
    return out


def addresses(r: Reader, parent: etree._Element | None) -> list[dict[str, Any]]:
    out = []
    for a in kids(parent, "addr"):
        if a.get("nullFlavor"):
            continue
        addr: dict[str, Any] = {}
        lines = [t for s in kids(a, "streetAddressLine") if (t := r.text(s))]
        parts = [t for s in (*kids(a, "houseNumber"), *kids(a, "streetName")) if (t := r.text(s))]
        if parts:
            lines.append(" ".join(parts))
        if lines:
            addr["line"] = lines
        for tag, key in (("city", "city"), ("county", "district"), ("state", "state"), ("postalCode", "postalCode"),
                         ("country", "country")):
            t = r.text(kid(a, tag))
            if t:
                addr[key] = t
        if a.get("use"):
            u = r.mapped_code("v3-address-use-to-address-use", a.get("use", "").split()[0])
            if u:
                addr["use"] = u
        if addr:
            use(a)
            out.append(addr)
    return out


def patient(r: Reader, role: etree._Element, lang: str) -> dict[str, Any]:
    res = r.new("Patient", role, "Patient-uv-ips")
    idents = [i for e in kids(role, "id") if (i := r.identifier(e))]
    if idents:
        res["identifier"] = idents
    person = kid(role, "patient")
    r.mark(person)
    nm = names(r, person)
    if nm:
        res["name"] = nm
    tel = telecoms(r, role)
    if tel:
        res["telecom"] = tel
    g = kid(person, "administrativeGenderCode")
    if g is not None:
        if g.get("nullFlavor"):
            res["gender"] = "unknown"
            use(g)
        else:
            gender = r.mapped(g, "v3-administrative-gender-to-administrative-gender",
                              "http://hl7.org/fhir/administrative-gender", "administrativeGenderCode")
            if gender:
                res["gender"] = gender
    birth = r.time(kid(person, "birthTime"))
    if birth:
        res["birthDate"] = birth[:10]
        if len(birth) > 10:
            r.notes.inform("ehdsi-birth-time-date-only", "the time of birth is carried as its date (Patient.birthDate)",
                           path(kid(person, "birthTime")))
    else:
        res["_birthDate"] = {"extension": [{"url": C.DAR, "valueCode": "unknown"}]}
        r.notes.warn("ehdsi-no-birth-time", "the patient has no birthTime (eHDSI requires one)",
                     path(person) if person is not None else path(role))
    marital = r.concept(kid(person, "maritalStatusCode"))
    if marital:
        res["maritalStatus"] = marital
    addr = addresses(r, role)
    if addr:
        res["address"] = addr
    contacts = []
    for gd in kids(person, "guardian"):
        r.mark(*kids(gd, "templateId"))
        c = contact(r, gd, kid(gd, "guardianPerson"), "GUARD")
        if c:
            contacts.append(c)
    if contacts:
        res["contact"] = contacts
    langs = []
    for lc in kids(person, "languageCommunication"):
        code = value(kid(lc, "languageCode"), "code")
        if code:
            use(kid(lc, "languageCode"), lc, *kids(lc, "templateId"))
            comm: dict[str, Any] = {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": code}]}}
            pref = value(kid(lc, "preferenceInd"), "value")
            if pref in ("true", "false"):
                comm["preferred"] = pref == "true"
                use(kid(lc, "preferenceInd"))
            langs.append(comm)
    if langs:
        res["communication"] = langs
    provider = organization(r, kid(role, "providerOrganization"))
    if provider:
        res["managingOrganization"] = ref(provider)
    r.patient = res
    return res


def contact(r: Reader, entity: etree._Element, person: etree._Element | None, role: str) -> dict[str, Any] | None:
    """A Patient.contact: the relationship (the entity's code, else its class), name, telecom, address."""
    c: dict[str, Any] = {}
    code = r.concept(kid(entity, "code"))
    codings = [{"system": ROLE_CLASS, "code": role, "display": PARTY_ROLES.get(role, role.lower())}]
    c["relationship"] = [{"coding": codings}] + ([code] if code else [])
    nm = names(r, person)
    if nm:
        c["name"] = nm[0]
        if len(nm) > 1:
            r.notes.inform("ehdsi-contact-name-not-mapped", "a contact has several names; the first is kept",
                           path(person))
    tel = telecoms(r, entity)
    if tel:
        c["telecom"] = tel
    addr = addresses(r, entity)
    if addr:
        c["address"] = addr[0]
    org = organization(r, kid(entity, "scopingOrganization"))
    if org:
        c["organization"] = ref(org)
    if len(c) == 1:
        return None
    use(entity, person)
    return c


def organization(r: Reader, el: etree._Element | None) -> dict[str, Any] | None:
    if el is None:
        return None
    res = r.new("Organization", el, "Organization-uv-ips")
    idents = [i for e in kids(el, "id") if (i := r.identifier(e))]
    if idents:
        res["identifier"] = idents
    name = r.text(kid(el, "name"))
    if not name:
        r.notes.warn("ehdsi-organization-no-name", "an organization has no name (IPS Organization.name is 1..1)",
                     path(el))
        res["_name"] = {"extension": [{"url": C.DAR, "valueCode": "unknown"}]}
    else:
        res["name"] = name
    tel = telecoms(r, el)
    if tel:
        res["telecom"] = tel
    addr = addresses(r, el)
    if addr:
        res["address"] = addr
    use(el)
    # The same organization often appears as author's, custodian's and legal authenticator's: one resource by identity.
    same = next((o for o in r.resources.values() if o["resourceType"] == "Organization"
                 and {k: v for k, v in o.items() if k not in ("id", "meta")}
                 == {k: v for k, v in res.items() if k not in ("id", "meta")}), None)
    return same or r.add(res)


def role(r: Reader, entity: etree._Element | None, person_tag: str, org_tag: str) -> dict[str, Any] | None:
    """assignedAuthor / assignedEntity → a PractitionerRole (with its Practitioner and Organization)."""
    if entity is None:
        return None
    person = kid(entity, person_tag)
    org = organization(r, kid(entity, org_tag))
    pract = None
    if person is not None:
        pract = r.new("Practitioner", person, "Practitioner-uv-ips")
        idents = [i for e in kids(entity, "id") if (i := r.identifier(e))]
        if idents:
            pract["identifier"] = idents
        nm = names(r, person)
        pract["name"] = nm or [{"text": "unknown"}]
        if not nm:
            r.notes.warn("ehdsi-practitioner-no-name", "a person has no name", path(person))
        tel = telecoms(r, entity)
        if tel:
            pract["telecom"] = tel
        addr = addresses(r, entity)
        if addr:
            pract["address"] = addr
        use(person)
        same = next((p for p in r.resources.values() if p["resourceType"] == "Practitioner"
                     and {k: v for k, v in p.items() if k not in ("id", "meta")}
                     == {k: v for k, v in pract.items() if k not in ("id", "meta")}), None)
        pract = same or r.add(pract)
    else:
        for e in kids(entity, "id"):
            r.identifier(e)  # the role's id: kept on the PractitionerRole below
    pr = r.new("PractitionerRole", entity, "PractitionerRole-uv-ips")
    if person is None:
        idents = [i for e in kids(entity, "id") if (i := r.identifier(e))]
        if idents:
            pr["identifier"] = idents
    if pract:
        pr["practitioner"] = ref(pract)
    if org:
        pr["organization"] = ref(org)
    code = r.concept(kid(entity, "code"))
    if code:
        pr["code"] = [code]
    if pract is None and org is None and "code" not in pr:
        return None
    use(entity)
    return r.add(pr)


def participants(r: Reader, doc: etree._Element, pat: dict[str, Any]) -> None:
    """Header participants that are the patient's contacts (IND: next of kin, emergency contact) → Patient.contact."""
    for p in kids(doc, "participant"):
        entity = kid(p, "associatedEntity")
        cls = value(entity, "classCode")
        if entity is None or cls not in PARTY_ROLES:
            continue
        r.mark(*kids(p, "templateId"))
        c = contact(r, entity, kid(entity, "associatedPerson"), cls)
        if c:
            use(p)
            pat.setdefault("contact", []).append(c)


def document_parts(r: Reader, doc: etree._Element) -> dict[str, Any]:
    """Composition header elements: author, attester, custodian, event, relatesTo (references into r.resources)."""
    out: dict[str, Any] = {}
    authors = []
    for a in kids(doc, "author"):
        aa = kid(a, "assignedAuthor")
        who = role(r, aa, "assignedPerson", "representedOrganization")
        if who is None and kid(aa, "assignedAuthoringDevice") is not None:
            dev = r.new("Device", aa)
            name = r.text(kid(aa, "assignedAuthoringDevice", "softwareName")) or \
                r.text(kid(aa, "assignedAuthoringDevice", "manufacturerModelName"))
            if name:
                dev["deviceName"] = [{"name": name, "type": "user-friendly-name"}]
            who = r.add(dev)
            use(aa)
        if who:
            authors.append(ref(who))
            use(a)
            fc = kid(a, "functionCode")
            if fc is not None and value(fc, "code"):
                r.notes.inform("ehdsi-author-function-not-mapped", "the author's functionCode "
                               f"{fc.get('code')!r} has no place in Composition.author", path(fc))
                use(fc)
    if authors:
        out["author"] = authors
    attesters = []
    for tag, mode in (("legalAuthenticator", "legal"), ("authenticator", "professional")):
        for la in kids(doc, tag):
            who = role(r, kid(la, "assignedEntity"), "assignedPerson", "representedOrganization")
            att: dict[str, Any] = {"mode": mode}
            t = r.time(kid(la, "time"))
            if t:
                att["time"] = t
            if who:
                att["party"] = ref(who)
            sig = kid(la, "signatureCode")
            if value(sig, "code") == "S":
                use(sig)  # 'signed': an attester is one by being there
            use(la)
            attesters.append(att)
    if attesters:
        out["attester"] = attesters
    cust = organization(r, kid(doc, "custodian", "assignedCustodian", "representedCustodianOrganization"))
    if cust:
        out["custodian"] = ref(cust)
        r.mark(kid(doc, "custodian"), kid(doc, "custodian", "assignedCustodian"))
    events = []
    for d in kids(doc, "documentationOf"):
        se = kid(d, "serviceEvent")
        if se is None:
            continue
        ev: dict[str, Any] = {"code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActClass",
                                                     "code": value(se, "classCode") or "PCPR"}]}]}
        single, per = r.period(kid(se, "effectiveTime"))
        if single:
            per = {"start": single, "end": single}
        if per:
            ev["period"] = per
        use(d, se)
        details = []
        for perf in kids(se, "performer"):
            who = role(r, kid(perf, "assignedEntity"), "assignedPerson", "representedOrganization")
            if who:
                details.append(ref(who))
                use(perf)
                fc = kid(perf, "functionCode")
                if fc is not None:
                    use(fc)  # the performer's function: its PractitionerRole stands for it
        if details:
            ev["detail"] = details
        events.append(ev)
    if events:
        out["event"] = events
    rel = []
    for rd in kids(doc, "relatedDocument"):
        code = {"XFRM": "transforms", "RPLC": "replaces", "APND": "appends"}.get(value(rd, "typeCode"))
        ident = r.identifier(kid(rd, "parentDocument", "id"))
        if code and ident:
            rel.append({"code": code, "targetIdentifier": ident})
            use(rd, kid(rd, "parentDocument"))
    if rel:
        out["relatesTo"] = rel
    return out


def mark_header(r: Reader, doc: etree._Element) -> None:
    """Header elements whose meaning the document's type carries (no fact of their own)."""
    for name in ("realmCode", "typeId", "templateId"):
        r.mark(*kids(doc, name))
    for c in doc:
        if isinstance(c.tag, str) and local(c) == "recordTarget":
            r.mark(c)
