"""FHIR R4 Bundle (Genomics Reporting IG 3.0.0) → HL7 v2.5.1 ORU^R01 in the LRI genetic variant model.

One ORC/OBR per DiagnosticReport; variants become OBX-4 groups 2a, 2b, …, their diagnostic implications
rows of the same group; other results plain OBX rows. Positions are written 1-based (LRI), converting from
0-based coordinate systems when a Variant declares one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from mappers.conversion import load_bundle
from mappers.exceptions import EmitError, Issue, operation_outcome
from mappers.hl7v2.charsets import DECLARED_NAME
from mappers.hl7v2.datatypes import (
    address_to_xad,
    codeable_concept_to_cwe,
    contact_point_to_xtn,
    fhir_to_dtm,
    format_number,
    human_name_to_xpn,
    identifier_to_cx,
    identifier_to_ei,
    system_name,
)
from mappers.hl7v2.emit.genomics import variables
from mappers.hl7v2.escape import escape
from mappers.hl7v2.model import DEFAULT_DELIMITERS as D
from mappers.terminology import translate

GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
_CONSUMED = {"Patient", "DiagnosticReport", "ServiceRequest", "Specimen", "Observation", "Practitioner",
             "Provenance", "Device", "Organization"}
_GENDER = {"female": "F", "male": "M", "other": "O", "unknown": "U"}
_DBSNP = "http://www.ncbi.nlm.nih.gov/projects/SNP"


@dataclass(frozen=True, slots=True)
class EmitOptions:
    """MSH header values chosen by the caller, and the character set to declare (MSH-18) and encode with."""

    sending_application: str = "HELIXGATE"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    encoding: str = "utf-8"
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class V2Message:
    text: str  # segments joined by CR
    encoding: str
    issues: tuple[Issue, ...] = field(default=())

    @property
    def data(self) -> bytes:
        return self.text.encode(self.encoding)

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def from_fhir(bundle: dict[str, Any] | bytes | str, options: EmitOptions | None = None) -> V2Message:
    """Bundle → ORU^R01. Raises ParseError (not a Bundle) or EmitError (no DiagnosticReport to report)."""
    options = options or EmitOptions()
    w = _Writer(load_bundle(bundle), options)
    return w.run()


class _Writer:
    def __init__(self, bundle: dict[str, Any], options: EmitOptions) -> None:
        self.options = options
        self.issues: list[Issue] = []
        self.by_ref: dict[str, dict[str, Any]] = {}
        self.resources: list[dict[str, Any]] = []
        for i, entry in enumerate(bundle.get("entry") or []):
            res = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(res, dict) or "resourceType" not in res:
                self.issues.append(Issue("warning", "structure", "fhir-entry-without-resource",
                                         f"entry {i} has no resource; skipped", f"Bundle.entry[{i}]"))
                continue
            self.resources.append(res)
            if entry.get("fullUrl"):
                self.by_ref[entry["fullUrl"]] = res
            if res.get("id"):
                self.by_ref[f"{res['resourceType']}/{res['id']}"] = res
        self.implications: dict[str, list[dict[str, Any]]] = {}
        for res in self.resources:
            for src in res.get("derivedFrom", []) if _has_profile(res, "diagnostic-implication") else []:
                target = self.resolve(src)
                if target is not None:
                    self.implications.setdefault(id(target), []).append(res)  # type: ignore[arg-type]

    def resolve(self, reference: dict[str, Any] | None) -> dict[str, Any] | None:
        if not reference or "reference" not in reference:
            return None
        ref = reference["reference"]
        return self.by_ref.get(ref) or self.by_ref.get("/".join(ref.rsplit("/", 2)[-2:]))

    def run(self) -> V2Message:
        reports = [r for r in self.resources if r["resourceType"] == "DiagnosticReport"]
        if not reports:
            raise EmitError("the Bundle has no DiagnosticReport; an ORU^R01 reports one OBR per DiagnosticReport",
                            details="fhir-no-report", expression="Bundle.entry")
        for res in self.resources:
            if res["resourceType"] not in _CONSUMED:
                self.issues.append(Issue("warning", "informational", "fhir-resource-not-mapped",
                                         f"{res['resourceType']} has no place in an ORU^R01; not converted",
                                         f"{res['resourceType']}/{res.get('id', '')}"))
        segments = [self.msh(reports)]
        written: list[int] = []
        for set_id, report in enumerate(reports, 1):
            patient = self.resolve(report.get("subject"))
            if patient is not None and id(patient) not in written:
                written.append(id(patient))
                segments.append(self.pid(patient, len(written)))
            segments.extend(self.order(report, set_id))
        text = "\r".join(segments) + "\r"
        return V2Message(text, self.options.encoding, tuple(self.issues))

    # ---- segments ----
    def msh(self, reports: list[dict[str, Any]]) -> str:
        o = self.options
        when = fhir_to_dtm(o.timestamp.isoformat(timespec="seconds")) if o.timestamp else ""
        if not when:
            prov = next((r for r in self.resources if r["resourceType"] == "Provenance"), {})
            when = fhir_to_dtm(prov.get("occurredDateTime") or reports[0].get("issued"))
        digest = hashlib.sha256(orjson.dumps(self.resources, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        charset = DECLARED_NAME.get(o.encoding, o.encoding.upper())
        fields = ["MSH", "^~\\&", escape(o.sending_application, D), escape(o.sending_facility, D),
                  escape(o.receiving_application, D), escape(o.receiving_facility, D), when, "",
                  "ORU^R01^ORU_R01", f"HG{digest}", "P", "2.5.1", "", "", "", "", "", charset]
        return "|".join(fields)

    def pid(self, patient: dict[str, Any], set_id: int) -> str:
        f = [""] * 15
        f[1] = str(set_id)
        f[3] = "~".join(identifier_to_cx(i, D) for i in patient.get("identifier", []))
        f[5] = "~".join(human_name_to_xpn(n, D) for n in patient.get("name", []))
        f[7] = fhir_to_dtm(patient.get("birthDate"))
        f[8] = _GENDER.get(patient.get("gender", ""), "")
        f[11] = "~".join(address_to_xad(a, D) for a in patient.get("address", []))
        f[13] = "~".join(contact_point_to_xtn(c, D) for c in patient.get("telecom", []))
        return _segment("PID", f)

    def order(self, report: dict[str, Any], set_id: int) -> list[str]:
        request = self.resolve((report.get("basedOn") or [None])[0]) or {}
        idents = {_ident_type(i): i for i in request.get("identifier", []) + report.get("identifier", [])}
        placer = identifier_to_ei(idents.get("PLAC"), D)
        filler = identifier_to_ei(idents.get("FILL") or idents.get(""), D)
        requester = self.resolve(request.get("requester"))
        xcn = _xcn(requester) if requester else ""
        orc = [""] * 13
        orc[1], orc[2], orc[3], orc[9], orc[12] = "RE", placer, filler, fhir_to_dtm(request.get("authoredOn")), xcn
        genomic = _has_profile(report, "genomic-report")
        codings = [c for c in report.get("code", {}).get("coding", []) if c.get("code") != "51969-4"]
        if genomic and not codings:
            codings = [{"system": "http://loinc.org", "code": "81247-9",
                        "display": "Master HL7 genetic variant reporting panel"}]
        code = codeable_concept_to_cwe({**report.get("code", {}), "coding": codings}, D)
        obr = [""] * 26
        obr[1], obr[2], obr[3], obr[4] = str(set_id), placer, filler, code
        obr[7] = fhir_to_dtm(report.get("effectiveDateTime"))
        obr[16] = xcn
        obr[22] = fhir_to_dtm(report.get("issued"))
        back = translate("v2-0123-to-diagnostic-report-status", report.get("status", ""), reverse=True)
        obr[25] = back.code if back else ""
        out = [_segment("ORC", orc), _segment("OBR", obr)]
        if report.get("conclusion"):
            out.append(_segment("NTE", ["", "1", "", escape(report["conclusion"], D)]))
        rows: list[list[str]] = []
        notes: dict[int, list[str]] = {}  # row index → NTE comments written after it
        for cc in report.get("conclusionCode", []):
            rows.append(_obx("CWE", "51968-6^Discrete variation analysis overall interpretation^LN", "1",
                             codeable_concept_to_cwe(cc, D), "F"))
        group = 0
        for target in (self.resolve(r) for r in report.get("result", [])):
            if target is None or _has_profile(target, "diagnostic-implication"):
                continue
            if _has_profile(target, "variant"):
                group += 1
                rows.extend(self.variant_rows(target, "2" + _letters(group)))
            else:
                rows.append(self.lab_row(target))
            comments = [n["text"] for n in target.get("note", []) if n.get("text")]
            if comments:
                notes[len(rows) - 1] = comments
        for i, row in enumerate(rows):
            row[1] = str(i + 1)
            out.append(_segment("OBX", row))
            for n, text in enumerate(notes.get(i, []), 1):
                out.append(_segment("NTE", ["", str(n), "", escape(text, D)]))
        for n, spec in enumerate((self.resolve(s) for s in report.get("specimen", [])), 1):
            if spec is not None:
                out.append(self.spm(spec, n))
        return out

    def variant_rows(self, var: dict[str, Any], sub: str) -> list[list[str]]:
        status = _obs_status(var)
        rows: list[list[str]] = []
        comps = list(var.get("component", []))
        system = next((_code(c.get("valueCodeableConcept")) for c in comps if _code(c.get("code")) == "92822-6"), "")
        shift_lo, shift_hi = {"LA30100-4": (1, 0), "LA30101-2": (1, 1)}.get(system, (0, 0))
        for comp in comps:
            code = _code(comp.get("code"))
            if code == "92822-6" and system in ("LA30100-4", "LA30101-2"):
                comp = {**comp, "valueCodeableConcept": {"coding": [
                    {"system": "http://loinc.org", "code": "LA30102-0", "display": "1-based character counting"}]}}
            if code in ("81254-5", "81301-4", "81302-2") and (shift_lo or shift_hi) and "valueRange" in comp:
                rng = comp["valueRange"]
                shift = {"low": shift_lo, "high": shift_hi}
                comp = {**comp, "valueRange": {k: {"value": v["value"] + shift[k]} for k, v in rng.items()
                                               if k in shift and "value" in v}}
            rows.append(self.component_row(comp, code, sub, status))
        if var.get("valueCodeableConcept"):
            rows.append(_obx("CNE", "69548-6^Genetic variant assessment^LN", sub,
                             codeable_concept_to_cwe(var["valueCodeableConcept"], D), status))
        if var.get("method"):
            rows.append(_obx("CWE", "81304-8^Variant analysis method [Type]^LN", sub,
                             codeable_concept_to_cwe(var["method"], D), status))
        for impl in self.implications.get(id(var), []):
            for comp in impl.get("component", []):
                rows.append(self.component_row(comp, _code(comp.get("code")), sub, _obs_status(impl)))
        for row in rows:
            row[14] = fhir_to_dtm(var.get("effectiveDateTime"))
        return rows

    def component_row(self, comp: dict[str, Any], code: str, sub: str, status: str) -> list[str]:
        cc = comp.get("code", {})
        coding = (cc.get("coding") or [{}])[0]
        if code == "81252-9" and any(c.get("system") == _DBSNP for c in comp.get("valueCodeableConcept", {})
                                     .get("coding", [])):
            code = "81255-2"
        spec = variables()["variables"].get(code, {})
        ident = "^".join(x for x in (escape(code, D), escape(coding.get("display") or spec.get("display", ""), D),
                                     system_name(coding.get("system"), code)))
        vt, value, units = _value(comp, spec.get("v2_type"))
        return _obx(vt, ident, sub, value, status, units)

    def lab_row(self, obs: dict[str, Any]) -> list[str]:
        vt, value, units = _value(obs, None)
        row = _obx(vt, codeable_concept_to_cwe(obs.get("code"), D), "", value, _obs_status(obs), units)
        rr = (obs.get("referenceRange") or [{}])[0]
        row[7] = escape(rr.get("text", ""), D) if rr.get("text") else (
            f"{format_number(rr['low']['value'])}-{format_number(rr['high']['value'])}"
            if "low" in rr and "high" in rr else "")
        row[8] = "~".join(escape(c.get("code", ""), D) for i in obs.get("interpretation", [])
                          for c in i.get("coding", [])[:1])
        row[14] = fhir_to_dtm(obs.get("effectiveDateTime"))
        if any(_code(c) == "GE" for c in obs.get("category", [])):
            row[4] = "1"  # an overall-study row of a genetic report
        return row

    def spm(self, spec: dict[str, Any], set_id: int) -> str:
        idents = {_ident_type(i): i for i in spec.get("identifier", [])}
        eip = [identifier_to_ei(idents.get(t), D).replace("^", "&") for t in ("PLAC", "FILL")]
        f = [""] * 19
        f[1] = str(set_id)
        f[2] = "^".join(eip).rstrip("^")
        f[4] = codeable_concept_to_cwe(spec.get("type"), D)
        f[17] = fhir_to_dtm((spec.get("collection") or {}).get("collectedDateTime"))
        f[18] = fhir_to_dtm(spec.get("receivedTime"))
        return _segment("SPM", f)


def _segment(name: str, fields: list[str]) -> str:
    parts = [name, *fields[1:]]
    while len(parts) > 1 and not parts[-1]:
        parts.pop()
    return "|".join(parts)


def _obx(vt: str, ident: str, sub: str, value: str, status: str, units: str = "") -> list[str]:
    row = [""] * 15
    row[2], row[3], row[4], row[5], row[6], row[11] = vt, ident, sub, value, units, status
    return row


def _letters(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(97 + r) + out
    return out


def _code(cc: dict[str, Any] | None) -> str:
    return ((cc or {}).get("coding") or [{}])[0].get("code", "")


def _ident_type(ident: dict[str, Any]) -> str:
    return _code(ident.get("type"))


def _has_profile(res: dict[str, Any], name: str) -> bool:
    return GR + name in (res.get("meta") or {}).get("profile", [])


def _obs_status(obs: dict[str, Any]) -> str:
    back = translate("v2-0085-to-observation-status", obs.get("status", ""), reverse=True)
    return back.code if back else ""


def _xcn(pract: dict[str, Any]) -> str:
    ident = (pract.get("identifier") or [{}])[0]
    name = (pract.get("name") or [{}])[0]
    cx = identifier_to_cx(ident, D).split("^") if ident else [""]
    cx += [""] * (5 - len(cx))
    parts = [cx[0], escape(name.get("family", ""), D), escape((name.get("given") or [""])[0], D),
             "", "", "", "", "", cx[3], "", "", "", cx[4]]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


def _quantity_units(q: dict[str, Any]) -> str:
    code, unit, system = q.get("code", ""), q.get("unit", ""), q.get("system")
    if not (code or unit):
        return ""
    return "^".join(x for x in (escape(code or unit, D), escape(unit if unit != code else "", D),
                                system_name(system) if code else "")).rstrip("^")


def _value(holder: dict[str, Any], v2_type: str | None) -> tuple[str, str, str]:
    """(OBX-2, OBX-5, OBX-6) for the value[x] of an Observation or component."""
    if "valueCodeableConcept" in holder:
        return v2_type if v2_type in ("CWE", "CNE") else "CWE", codeable_concept_to_cwe(
            holder["valueCodeableConcept"], D), ""
    if "valueQuantity" in holder:
        q = holder["valueQuantity"]
        return "NM", format_number(q.get("value")), _quantity_units(q)
    if "valueRange" in holder:
        r = holder["valueRange"]
        lo, hi = (format_number((r.get(k) or {}).get("value")) for k in ("low", "high"))
        if v2_type is None:  # a lab result range: SN keeps its units
            return "SN", f"^{lo}^-^{hi}", _quantity_units(r.get("low") or {})
        return "NR", f"{lo}^{hi}".rstrip("^"), ""
    if "valueRatio" in holder:
        r = holder["valueRatio"]
        return "SN", f"^{format_number(r['numerator']['value'])}^:^{format_number(r['denominator']['value'])}", ""
    if "valueString" in holder:
        text = holder["valueString"]
        return ("TX" if "\n" in text else "ST"), escape(text, D), ""
    if "valueDateTime" in holder:
        return "DTM", fhir_to_dtm(holder["valueDateTime"]), ""
    if "valueTime" in holder:
        return "TM", holder["valueTime"].replace(":", ""), ""
    if "valueBoolean" in holder:
        return "ST", "true" if holder["valueBoolean"] else "false", ""
    if "valueInteger" in holder:
        return "NM", str(holder["valueInteger"]), ""
    return "ST", "", ""
