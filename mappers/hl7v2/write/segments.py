"""PID (Patient), ORC/OBR (ServiceRequest + DiagnosticReport), SPM (Specimen): HL7 v2.5.1 §3.4.2, §4.5, §7.4.1,
§7.4.3; what each reads is marked in the ledger, the rest of those resources is reported."""

from __future__ import annotations

from typing import Any

from mappers.fhir.genomics import Entry, first_code
from mappers.hl7v2.datatypes import (
    address_to_xad,
    contact_point_to_xtn,
    human_name_to_xpn,
    identifier_to_cx,
    identifier_to_ei,
)
from mappers.hl7v2.escape import escape
from mappers.hl7v2.model import DEFAULT_DELIMITERS as D
from mappers.hl7v2.write.state import State
from mappers.hl7v2.write.values import cwe, dtm
from mappers.terminology import translate


def segment(name: str, fields: list[str]) -> str:
    parts = [name, *fields[1:]]
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return "|".join(parts)


def pid(st: State, patient: Entry, set_id: int) -> str:
    res = patient.resource
    st.ledger.use(patient, "identifier", "name", "birthDate", "gender", "address", "telecom")
    f = [""] * 15
    f[1] = str(set_id)
    f[3] = "~".join(identifier_to_cx(i, D) for i in res.get("identifier") or [])
    f[5] = "~".join(human_name_to_xpn(n, D) for n in res.get("name") or [])
    f[7] = dtm(st, res.get("birthDate"), f"{patient.where}.birthDate")
    gender = res.get("gender")
    if gender:
        back = translate("v2-0001-to-administrative-gender", gender, reverse=True)
        if back is None:
            st.warn("hl7v2-code-unmapped", f"gender {gender!r} is not an AdministrativeGender code; PID-8 left "
                    "empty", f"{patient.where}.gender", code="value")
        f[8] = back.code if back else ""
    f[11] = "~".join(address_to_xad(a, D) for a in res.get("address") or [])
    f[13] = "~".join(contact_point_to_xtn(c, D) for c in res.get("telecom") or [])
    return segment("PID", f)


def pid_of_identifier(ident: dict[str, Any], set_id: int) -> str:
    """PID of a subject known only by the identifier its reference states (Reference.identifier)."""
    f = [""] * 4
    f[1], f[3] = str(set_id), identifier_to_cx(ident, D)
    return segment("PID", f)


def xcn(st: State, pract: Entry) -> str:
    """Practitioner → XCN (1 id, 2 family, 3 given, 4 middle, 5 suffix, 6 prefix, 9 assigning authority,
    13 id type); a name given only as text goes in the family name."""
    st.ledger.use(pract, "identifier", "name")
    res = pract.resource
    ident = (res.get("identifier") or [{}])[0]
    name = (res.get("name") or [{}])[0]
    cx = identifier_to_cx(ident, D).split("^") if ident else [""]
    cx += [""] * (5 - len(cx))
    given = name.get("given") or []
    family = name.get("family") or ("" if given else name.get("text", ""))
    parts = [cx[0], escape(family, D), escape(given[0] if given else "", D), escape(" ".join(given[1:]), D),
             escape(" ".join(name.get("suffix") or []), D), escape(" ".join(name.get("prefix") or []), D),
             "", "", cx[3], "", "", "", cx[4]]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


def _ident_type(ident: dict[str, Any]) -> str:
    return first_code(ident.get("type"))


def order(st: State, report: Entry | None, request: Entry | None, set_id: int, code: str,
          effective: str = "", status: str = "") -> list[str]:
    """ORC and OBR of one order: from a DiagnosticReport and the ServiceRequest it is based on, or (report None)
    a synthesized OBR whose code, time and status the caller gives."""
    rep = report.resource if report else {}
    req = request.resource if request else {}
    idents = {_ident_type(i): i for i in [*(req.get("identifier") or []), *(rep.get("identifier") or [])]}
    placer = identifier_to_ei(idents.get("PLAC"), D)
    filler = identifier_to_ei(idents.get("FILL") or idents.get(""), D)
    requester = st.content.resolve(req.get("requester")) if req else None
    ordering = xcn(st, requester) if requester is not None and requester.type == "Practitioner" else ""
    if request is not None:
        st.ledger.use(request, "identifier", "code", "subject", "status", "intent")
        if ordering:
            st.ledger.use(request, "requester")
    if report is not None:
        st.ledger.use(report, "identifier", "basedOn", "status", "category", "code", "subject")
    out = []
    if report is not None:
        orc = [""] * 13
        orc[1], orc[2], orc[3], orc[12] = "RE", placer, filler, ordering
        if request is not None and req.get("authoredOn"):
            st.ledger.use(request, "authoredOn")
            orc[9] = dtm(st, req["authoredOn"], f"{request.where}.authoredOn")
        out.append(segment("ORC", orc))
    obr = [""] * 33
    obr[1], obr[2], obr[3], obr[4] = str(set_id), placer, filler, code
    obr[7] = effective
    obr[16] = ordering
    obr[25] = status
    if report is not None:
        if rep.get("effectiveDateTime"):
            st.ledger.use(report, "effectiveDateTime")
            obr[7] = dtm(st, rep["effectiveDateTime"], f"{report.where}.effectiveDateTime")
        if rep.get("issued"):
            st.ledger.use(report, "issued")
            obr[22] = dtm(st, rep["issued"], f"{report.where}.issued")
        back = translate("v2-0123-to-diagnostic-report-status", rep.get("status", ""), reverse=True)
        obr[25] = back.code if back else ""
        if rep.get("status") and not back:
            st.warn("hl7v2-code-unmapped", f"DiagnosticReport.status {rep['status']!r} has no v2 table 0123 code; "
                    "OBR-25 left empty", f"{report.where}.status", code="value")
        interpreters = [st.content.resolve(r) for r in rep.get("resultsInterpreter") or []]
        names = [xcn(st, p).replace("^", "&") for p in interpreters if p is not None and p.type == "Practitioner"]
        if names and len(names) == len(interpreters):
            st.ledger.use(report, "resultsInterpreter")
            obr[32] = names[0]
            if len(names) > 1:
                st.warn("hl7v2-interpreter-not-carried", "OBR-32 names one principal result interpreter; the "
                        "others are not carried over", f"{report.where}.resultsInterpreter[1]")
    reasons = req.get("reasonCode") or []
    if reasons and request is not None:
        st.ledger.use(request, "reasonCode")
        obr[31] = "~".join(cwe(st, cc, f"{request.where}.reasonCode[{i}]") for i, cc in enumerate(reasons))
    out.append(segment("OBR", obr))
    return out


def spm(st: State, spec: Entry, set_id: int) -> str:
    res = spec.resource
    st.ledger.use(spec, "identifier", "type", "subject", "status", "receivedTime")
    idents = {_ident_type(i): i for i in res.get("identifier") or []}
    eip = [identifier_to_ei(idents.get(t), D).replace("^", "&") for t in ("PLAC", "FILL")]
    f = [""] * 19
    f[1] = str(set_id)
    f[2] = "^".join(eip).rstrip("^")
    f[4] = cwe(st, res.get("type"), f"{spec.where}.type")
    collection = res.get("collection") or {}
    f[8] = cwe(st, collection.get("bodySite"), f"{spec.where}.collection.bodySite")
    f[17] = dtm(st, collection.get("collectedDateTime"), f"{spec.where}.collection.collectedDateTime")
    f[18] = dtm(st, res.get("receivedTime"), f"{spec.where}.receivedTime")
    if collection:
        st.ledger.use(spec, "collection")
        for name in sorted(set(collection) - {"collectedDateTime", "bodySite"}):
            st.warn("fhir-element-not-carried", f"{spec.label}: collection.{name} has no place in SPM; not carried "
                    "over", f"{spec.where}.collection.{name}")
    return segment("SPM", f)
