"""OBX rows of one order (HL7 v2.5.1 §7.4.2; LRI R1 STU3 Ch.5 genetic variant model): one OBX-4 group per variant
(genotype, haplotype) holding every component the input states, its assessment and method, and the rows of the
implications derived from it; biomarkers and other genomic results as overall-study rows (sub-ID 1); other results
as plain rows; the report's presented forms as ED/RP rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from mappers.fhir.genomics import LOINC, Entry, key, tbd
from mappers.hl7v2.datatypes import format_number, system_name
from mappers.hl7v2.emit.genomics import variables
from mappers.hl7v2.escape import escape
from mappers.hl7v2.model import DEFAULT_DELIMITERS as D
from mappers.hl7v2.write.state import State
from mappers.hl7v2.write.values import cwe, dtm, value
from mappers.terminology import translate

DBSNP = "http://www.ncbi.nlm.nih.gov/projects/SNP"
UCUM = "http://unitsofmeasure.org"
# coordinate system → what 1-based (LRI) positions add to (low, high)
TO_ONE_BASED = {"LA30100-4": (1, 0), "LA30101-2": (1, 1)}
ONE_BASED = {"system": LOINC, "code": "LA30102-0", "display": "1-based character counting"}
POSITIONS = ("81254-5", "81301-4", "81302-2")
# OBX-8 holds v2 table 0078 (or the FHIR ObservationInterpretation codes that share it); other codings do not fit
INTERPRETATION_SYSTEMS = {"http://terminology.hl7.org/CodeSystem/v2-0078",
                          "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"}
# Observation elements every row writer accounts for: what it is, whose, and its status
IDENTITY = ("status", "category", "code", "subject")


@dataclass(slots=True)
class Row:
    """One OBX (fields by number; OBX-1 is set when the order is written) and the NTE comments that follow it."""

    fields: list[str]
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, n: int) -> str:
        return self.fields[n]

    def __setitem__(self, n: int, text: str) -> None:
        self.fields[n] = text


def obx(vt: str, ident: str, sub: str, val: str, status: str, units: str = "") -> Row:
    f = [""] * 15
    f[2], f[3], f[4], f[5], f[6], f[11] = vt, ident, sub, val, units, status
    return Row(f)


def obs_status(obs: dict[str, Any]) -> str:
    back = translate("v2-0085-to-observation-status", obs.get("status", ""), reverse=True)
    return back.code if back else ""


def letters(n: int) -> str:
    """1 → a, 26 → z, 27 → aa: LRI variant sub-IDs 2a, 2b, …"""
    out = ""
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(97 + r) + out
    return out


def _code_coding(cc: dict[str, Any]) -> dict[str, Any]:
    """The coding that names a component: LOINC or the IG's TBD code first, else the first."""
    codings = cc.get("coding") or [{}]
    return next((c for c in codings if c.get("system") in (LOINC, tbd())), codings[0])


def _identifier(coding: dict[str, Any], code: str, default_display: str) -> str:
    parts = [escape(code, D), escape(coding.get("display") or default_display, D),
             escape(system_name(coding.get("system"), code), D)]
    return "^".join(parts).rstrip("^")


def _fraction(st: State, q: dict[str, Any], where: str) -> dict[str, Any]:
    """LOINC 81258-6 is a number fraction (NFr); a percentage is written as the fraction it states."""
    if q.get("code") != "%" or not isinstance(q.get("value"), (int, float)):
        return q
    try:
        frac = (Decimal(str(q["value"])) / 100).normalize()
    except InvalidOperation:
        return q
    st.inform("hl7v2-percent-as-fraction", f"allele fraction {format_number(q['value'])} % written as the number "
              f"fraction {frac:f} (LOINC 81258-6 is NFr)", where)
    number: float | int = int(frac) if frac == frac.to_integral_value() else float(frac)
    return {"value": number}


class Rows:
    """Writes the OBX rows of one order; `status` etc. come from the row's own Observation."""

    def __init__(self, st: State) -> None:
        self.st = st
        self.shifted: dict[str, list[str]] = {}  # 0-based coordinate system → where its positions were shifted

    def summary(self) -> None:
        """One report issue per coordinate system whose positions were written 1-based, however many variants."""
        for system, places in self.shifted.items():
            times = f" ({len(places)} variants)" if len(places) > 1 else ""
            self.st.inform("hl7v2-coordinates-shifted", f"positions of coordinate system {system} written 1-based "
                           f"(LA30102-0), as LRI states them{times}", places[0])

    # ---- components ----
    def component(self, entry: Entry, i: int, comp: dict[str, Any], sub: str, status: str,
                  shift: tuple[int, int] = (0, 0)) -> Row | None:
        where = f"{entry.where}.component[{i}]"
        coding = _code_coding(comp.get("code") or {})
        code = coding.get("code", "")
        if not code:
            self.st.warn("hl7v2-component-without-code", f"{entry.label}: component {i} has no code; not carried over",
                         f"{where}.code")
            return None
        holder = comp
        if code == "81252-9" and any(c.get("system") == DBSNP for c in
                                     (comp.get("valueCodeableConcept") or {}).get("coding") or []):
            code = "81255-2"  # LRI has its own dbSNP variable
            coding = {"system": LOINC, "code": code}
        if coding.get("system") == LOINC and code == "92822-6" and shift != (0, 0):
            holder = {"valueCodeableConcept": {"coding": [ONE_BASED]}}
        if coding.get("system") == LOINC and code in POSITIONS and shift != (0, 0) and "valueRange" in comp:
            rng = comp["valueRange"]
            moved = {k: {"value": rng[k]["value"] + s} for k, s in (("low", shift[0]), ("high", shift[1]))
                     if isinstance((rng.get(k) or {}).get("value"), int)}
            holder = {"valueRange": moved}
        if coding.get("system") == LOINC and code == "81258-6" and "valueQuantity" in comp:
            holder = {"valueQuantity": _fraction(self.st, comp["valueQuantity"], f"{where}.valueQuantity")}
        spec = variables()["variables"].get(code, {}) if coding.get("system") == LOINC else {}
        val = value(self.st, holder, where, spec.get("v2_type"))
        if val is None:
            if any(k.startswith("value") for k in holder):
                self.st.ledger.use(entry, f"component[{i}]")  # value() said why it was not written
            return None  # without a value the ledger reports the component
        self.st.ledger.use(entry, f"component[{i}]")
        vt, text, units = val
        return obx(vt, _identifier(coding, code, spec.get("display", "")), sub, text, status, units)

    def _components(self, entry: Entry, sub: str, status: str, shift: tuple[int, int] = (0, 0)) -> list[Row]:
        rows = []
        for i, comp in enumerate(entry.resource.get("component") or []):
            row = self.component(entry, i, comp, sub, status, shift)
            if row is not None:
                rows.append(row)
        return rows

    # ---- findings ----
    def finding_group(self, entry: Entry, sub: str, phases: list[Entry]) -> list[Row]:
        """The OBX-4 group of a variant (genotype, haplotype): its components, its assessment (69548-6) or value,
        its method, then the rows of the implications derived from it."""
        res = entry.resource
        status = obs_status(res)
        self.st.ledger.use(entry, *IDENTITY)
        shift = self._shift(entry)
        rows = self._components(entry, sub, status, shift)
        if entry.kind == "variant":
            if "valueCodeableConcept" in res:
                self.st.ledger.use(entry, "valueCodeableConcept")
                rows.append(obx("CNE", "69548-6^Genetic variant assessment^LN", sub,
                                cwe(self.st, res["valueCodeableConcept"], f"{entry.where}.valueCodeableConcept"),
                                status))
        else:
            row = self._own_value_row(entry, sub, status)
            if row is not None:
                rows.append(row)
        if res.get("method"):
            self.st.ledger.use(entry, "method")
            rows.append(obx("CWE", "81304-8^Variant analysis method [Type]^LN", sub,
                            cwe(self.st, res["method"], f"{entry.where}.method"), status))
        self._interpretation(entry, rows)
        self._notes(entry, rows)
        implications = self.st.content.derived.get(entry.index, [])
        shared = len(implications) == 1 and implications[0].kind == "diagnostic-implication"
        if implications and not shared:
            self.st.inform("hl7v2-implication-subgroups",
                           f"{entry.label} has {len(implications)} implications: each is written as OBX-4 group "
                           f"{sub}.1 … {sub}.{len(implications)} so their rows stay paired", entry.where)
        for n, impl in enumerate(implications, 1):
            rows.extend(self.implication(impl, sub if shared else f"{sub}.{n}"))
        for phase in phases:
            rows.extend(self.phase(phase, sub))
        when = res.get("effectiveDateTime")
        if when:
            self.st.ledger.use(entry, "effectiveDateTime")
            stamp = dtm(self.st, when, f"{entry.where}.effectiveDateTime")
            for row in rows:
                row[14] = row[14] or stamp
        return rows

    def _shift(self, entry: Entry) -> tuple[int, int]:
        """LRI positions are 1-based: a 0-based coordinate system is shifted (and said so)."""
        for comp in entry.resource.get("component") or []:
            if "http://loinc.org|92822-6" in [key(c) for c in (comp.get("code") or {}).get("coding") or []]:
                system = _code_coding(comp.get("valueCodeableConcept") or {}).get("code", "")
                if system in TO_ONE_BASED:
                    self.shifted.setdefault(system, []).append(entry.where)
                    return TO_ONE_BASED[system]
        return (0, 0)

    def _own_value_row(self, entry: Entry, sub: str, status: str) -> Row | None:
        res = entry.resource
        val = value(self.st, res, entry.where, None)
        if val is None:
            return None
        self.st.ledger.use(entry, *(k for k in res if k.startswith("value")))
        vt, text, units = val
        return obx(vt, cwe(self.st, res.get("code"), f"{entry.where}.code"), sub, text, status, units)

    def _interpretation(self, entry: Entry, rows: list[Row]) -> None:
        """Observation.interpretation goes to OBX-8 of the row that carries the finding, when it is a v2 table 0078
        code; other codings (e.g. SNOMED 'Positive') have no place there and are reported by the ledger."""
        codes = [c.get("code", "") for cc in entry.resource.get("interpretation") or []
                 for c in (cc.get("coding") or [])[:1] if c.get("system") in INTERPRETATION_SYSTEMS]
        if codes and rows:
            self.st.ledger.use(entry, "interpretation")
            rows[-1][8] = "~".join(escape(c, D) for c in codes)

    def implication(self, entry: Entry, sub: str) -> list[Row]:
        """An implication's components as rows of its finding's group (LRI Table 5-2 B.20/B.22)."""
        self.st.ledger.use(entry, *IDENTITY, "derivedFrom")
        status = obs_status(entry.resource)
        rows = self._components(entry, sub, status)
        self._notes(entry, rows)
        when = entry.resource.get("effectiveDateTime")
        if when:
            self.st.ledger.use(entry, "effectiveDateTime")
            stamp = dtm(self.st, when, f"{entry.where}.effectiveDateTime")
            for row in rows:
                row[14] = stamp
        return rows

    def phase(self, entry: Entry, sub: str) -> list[Row]:
        """A sequence-phase relationship (82120-7, Cis/Trans) as an allelic-phase row of each variant it relates."""
        self.st.ledger.use(entry, *IDENTITY, "derivedFrom")
        row = self._own_value_row(entry, sub, obs_status(entry.resource))
        return [row] if row is not None else []

    def overall(self, entry: Entry, sub: str) -> list[Row]:
        """A result that is not a variant: a biomarker (TMB, MSI), an overall interpretation or another result, as
        one row (sub-ID 1 for genomic results: the overall study) with its reference range and interpretation."""
        res = entry.resource
        self.st.ledger.use(entry, *IDENTITY)
        status = obs_status(res)
        val = value(self.st, res, entry.where, None)
        vt, text, units = val if val is not None else ("", "", "")
        if val is not None:
            self.st.ledger.use(entry, *(k for k in res if k.startswith("value")))
        row = obx(vt, cwe(self.st, res.get("code"), f"{entry.where}.code"), sub, text, status, units)
        ranges = res.get("referenceRange") or []
        if ranges:
            rr = ranges[0]
            if rr.get("text"):
                row[7] = escape(rr["text"], D)
            elif "low" in rr and "high" in rr:
                row[7] = f"{format_number(rr['low'].get('value'))}-{format_number(rr['high'].get('value'))}"
            if row[7] and len(ranges) == 1:
                self.st.ledger.use(entry, "referenceRange")
        self._interpretation(entry, [row])
        if res.get("effectiveDateTime"):
            self.st.ledger.use(entry, "effectiveDateTime")
            row[14] = dtm(self.st, res["effectiveDateTime"], f"{entry.where}.effectiveDateTime")
        rows = [row]
        if entry.genomic and res.get("component"):
            rows.extend(self._components(entry, sub, status))
        self._notes(entry, rows)
        return rows

    def _notes(self, entry: Entry, rows: list[Row]) -> None:
        """Annotations become NTE segments after the entry's last row."""
        texts = [n["text"] for n in entry.resource.get("note") or [] if n.get("text")]
        if texts and rows:
            self.st.ledger.use(entry, "note")
            rows[-1].notes.extend(texts)

    def presented_form(self, report: Entry, i: int, form: dict[str, Any]) -> Row | None:
        """A presented form (e.g. the signed PDF) as an ED row (inline data) or RP row (a URL) under the report's
        code; OBX-5 ED = ^type^subtype^Base64^data (§2.A.24)."""
        where = f"{report.where}.presentedForm[{i}]"
        for name in sorted(set(form) - {"contentType", "data", "url"}):
            self.st.warn("fhir-element-not-carried", f"{report.label}: presentedForm {name} has no place in an "
                         "ED/RP value; not carried over", f"{where}.{name}")
        ctype = form.get("contentType", "")
        kind, _, subtype = ctype.partition("/")
        ident = cwe(self.st, report.resource.get("code"), f"{report.where}.code")
        if form.get("data"):
            text = f"^{escape(kind or 'application', D)}^{escape(subtype or 'octet-stream', D)}^Base64^{form['data']}"
            return obx("ED", ident, "", text, "F")
        if form.get("url"):
            return obx("RP", ident, "", f"{escape(form['url'], D)}^^{escape(kind, D)}^{escape(subtype, D)}", "F")
        self.st.warn("hl7v2-form-not-carried", "a presented form with neither data nor url; not carried over", where)
        return None
