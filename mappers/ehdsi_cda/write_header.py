"""IPS Patient and parties → the eHDSI CDA header (recordTarget per eHDSIRecordTarget, author, custodian,
legalAuthenticator, participants)."""

from __future__ import annotations

from typing import Any

from lxml import etree

from mappers.cda_cn.times import fhir_to_ts
from mappers.ehdsi_cda import codes as C
from mappers.ehdsi_cda.header import PARTY_ROLES, ROLE_CLASS, V3_NAME_USE
from mappers.ehdsi_cda.writer import Writer, el, text_el
from mappers.terminology import translate

_NAME_USE = {v: k for k, v in reversed(V3_NAME_USE.items())}  # official → L, nickname → P, usual → ASGN
_TELECOM = {"phone": "tel:", "email": "mailto:", "fax": "fax:"}


def name(w: Writer, parent: etree._Element, hn: dict[str, Any], both: bool = True) -> None:
    """A PN for a HumanName: EN-representation ABC/IDE/SYL as @use (CDA R2 EntityNameUse); with `both`, family and
    given are always written (eHDSIRecordTarget), nullFlavor UNK when the name lacks one."""
    out = el(parent, "name")
    rep = next((e.get("valueCode") for e in hn.get("extension", []) if e.get("url") == C.NAME_REPRESENTATION), "")
    use = rep or _NAME_USE.get(hn.get("use", ""), "")
    if use:
        out.set("use", use)
    for p in hn.get("prefix", []):
        text_el(out, "prefix", p)
    if hn.get("family"):
        text_el(out, "family", hn["family"])
    elif both:
        el(out, "family", nullFlavor="UNK")
    for g in hn.get("given", []):
        text_el(out, "given", g)
    if both and not hn.get("given"):
        el(out, "given", nullFlavor="UNK")
    for s in hn.get("suffix", []):
        text_el(out, "suffix", s)
    if not hn.get("family") and not hn.get("given") and hn.get("text"):
        if both:  # eHDSIRecordTarget: family and given, each may be null; the text alone has no place then
            w.lost("ehdsi-name-text-only", "a name given only as text has no family and given: written as both "
                   "unknown (eHDSI requires the parts)", "Patient.name", "warning")
        else:
            out.text = hn["text"]


def telecoms(parent: etree._Element, points: list[dict[str, Any]], required: bool = False) -> None:
    done = False
    for cp in points:
        prefix = _TELECOM.get(cp.get("system", ""), "")
        val = cp.get("value", "")
        if not val:
            continue
        t = el(parent, "telecom", value=val if ":" in val and not prefix else prefix + val)
        if cp.get("use"):
            back = translate("v3-address-use-to-contact-point-use", cp["use"], reverse=True)
            if back:
                t.set("use", back.code)
        done = True
    if required and not done:
        el(parent, "telecom", nullFlavor="NI")


def address(parent: etree._Element, addr: dict[str, Any] | None, required: bool = False) -> None:
    if not addr:
        if required:
            el(parent, "addr", nullFlavor="NI")
        return
    out = el(parent, "addr")
    if addr.get("use"):
        back = translate("v3-address-use-to-address-use", addr["use"], reverse=True)
        if back:
            out.set("use", back.code)
    for line in addr.get("line", []):
        text_el(out, "streetAddressLine", line)
    for key, tag in (("city", "city"), ("district", "county"), ("state", "state"), ("postalCode", "postalCode"),
                     ("country", "country")):
        if addr.get(key):
            text_el(out, tag, addr[key])


def record_target(w: Writer, doc: etree._Element, pat: dict[str, Any]) -> None:
    """recordTarget per eHDSIRecordTarget (2.16.840.1.113883.3.1937.777.11.10.100): id ≥1, one addr, telecom ≥1,
    every name with family and given, administrativeGenderCode, birthTime."""
    role = el(el(doc, "recordTarget"), "patientRole", classCode="PAT")
    w.ids(role, pat.get("identifier"), required=True)
    addrs = pat.get("address") or []
    address(role, addrs[0] if addrs else None, required=True)
    if len(addrs) > 1:
        w.lost("ehdsi-address-not-written", f"{len(addrs) - 1} more address(es): eHDSI allows one", "Patient.address")
    telecoms(role, pat.get("telecom", []), required=True)
    person = el(role, "patient", classCode="PSN", determinerCode="INSTANCE")
    for hn in pat.get("name", []):
        name(w, person, hn)
    gender = pat.get("gender")
    back = translate("v3-administrative-gender-to-administrative-gender", gender or "", reverse=True)
    if back:
        el(person, "administrativeGenderCode", code=back.code, codeSystem="2.16.840.1.113883.5.1",
           displayName=back.display)
    else:
        el(person, "administrativeGenderCode", nullFlavor="UNK")
    if pat.get("birthDate"):
        el(person, "birthTime", value=fhir_to_ts(pat["birthDate"]))
    else:
        el(person, "birthTime", nullFlavor="UNK")
    if pat.get("maritalStatus"):
        w.code(person, "maritalStatusCode", pat["maritalStatus"])
    for c in pat.get("contact", []):
        if _role_of(c) == "GUARD":
            g = el(person, "guardian", classCode="GUARD")
            address(g, c.get("address"))
            telecoms(g, c.get("telecom", []))
            gp = el(g, "guardianPerson")
            if c.get("name"):
                name(w, gp, c["name"], both=False)
    for comm in pat.get("communication", []):
        code = next((x.get("code") for x in comm.get("language", {}).get("coding", [])), "")
        if code:
            lc = el(person, "languageCommunication")
            el(lc, "languageCode", code=code)
            if isinstance(comm.get("preferred"), bool):
                el(lc, "preferenceInd", value="true" if comm["preferred"] else "false")
    provider = w.get(pat.get("managingOrganization"))
    if provider and provider.get("resourceType") == "Organization":
        organization(w, role, "providerOrganization", provider)


def _role_of(contact: dict[str, Any]) -> str:
    for rel in contact.get("relationship", []):
        for c in rel.get("coding", []):
            if c.get("system") == ROLE_CLASS and c.get("code") in PARTY_ROLES:
                return c["code"]
    return "NOK" if contact.get("relationship") else "ECON"


def participants(w: Writer, doc: etree._Element, pat: dict[str, Any]) -> None:
    """The patient's other contacts → header participants (IND) with an associatedEntity."""
    for c in pat.get("contact", []):
        cls = _role_of(c)
        if cls == "GUARD":
            continue
        p = el(doc, "participant", typeCode="IND")
        ent = el(p, "associatedEntity", classCode=cls)
        other = [rel for rel in c.get("relationship", []) if not any(x.get("system") == ROLE_CLASS
                                                                       for x in rel.get("coding", []))]
        if other:
            w.code(ent, "code", other[0])
        address(ent, c.get("address"))
        telecoms(ent, c.get("telecom", []))
        if c.get("name"):
            name(w, el(ent, "associatedPerson"), c["name"], both=False)
        org = w.get(c.get("organization"))
        if org and org.get("resourceType") == "Organization":
            organization(w, ent, "scopingOrganization", org)


def assigned(w: Writer, parent: etree._Element, tag: str, who: dict[str, Any]) -> etree._Element:
    """assignedAuthor/assignedEntity for a PractitionerRole, Practitioner or Organization."""
    ent = el(parent, tag)
    rtype = who.get("resourceType")
    pract = w.get(who.get("practitioner")) if rtype == "PractitionerRole" else who if rtype == "Practitioner" else None
    org = w.get(who.get("organization")) if rtype == "PractitionerRole" else who if rtype == "Organization" else None
    w.ids(ent, (pract or {}).get("identifier") or who.get("identifier") or (org or {}).get("identifier"),
          required=True)
    if rtype == "PractitionerRole" and who.get("code"):
        w.code(ent, "code", who["code"][0])
    src = pract or {}  # an organization's own addr/telecom go in representedOrganization
    for a in src.get("address", [])[:1]:
        address(ent, a)
    telecoms(ent, src.get("telecom", []))
    if pract is not None:
        person = el(ent, "assignedPerson")
        for hn in pract.get("name", [])[:1]:
            name(w, person, hn, both=False)
    if rtype == "Device" and tag == "assignedAuthor":
        dev = el(ent, "assignedAuthoringDevice")
        dn = next((d.get("name") for d in who.get("deviceName", [])), "")
        if dn:
            text_el(dev, "softwareName", dn)
    if org is not None and (pract is not None or rtype == "Organization"):
        organization(w, ent, "representedOrganization", org)
    return ent


def organization(w: Writer, parent: etree._Element, tag: str, org: dict[str, Any]) -> etree._Element:
    out = el(parent, tag)
    w.ids(out, org.get("identifier"), required=tag == "representedCustodianOrganization")
    if org.get("name"):
        text_el(out, "name", org["name"])
    telecoms(out, org.get("telecom", []))
    for a in org.get("address", [])[:1]:
        address(out, a)
    return out
