"""FHIR datatypes → HL7 v2.5.1 field text, escaped with the default delimiters. What a v2 field cannot hold is
reported, and a value that is not valid FHIR is not written."""

from __future__ import annotations

from typing import Any

from mappers.hl7v2.datatypes import codeable_concept_to_cwe, fhir_to_dtm, format_number, system_name
from mappers.hl7v2.escape import escape
from mappers.hl7v2.model import DEFAULT_DELIMITERS as D
from mappers.hl7v2.write.state import State
from mappers.toolkit.fhirtime import is_datetime

CWE_CODINGS = 2  # v2.5.1 CWE: an identifier triplet and one alternate (§2.A.74)


def cwe(st: State, cc: dict[str, Any] | None, where: str) -> str:
    """CodeableConcept → CWE; codings beyond the second are reported, not written."""
    codings = (cc or {}).get("coding") or []
    if len(codings) > CWE_CODINGS:
        dropped = ", ".join(f"{c.get('system', '')}|{c.get('code', '')}" for c in codings[CWE_CODINGS:])
        st.warn("hl7v2-coding-not-carried", f"a CWE holds two codings; {dropped} not carried over",
                f"{where}.coding[{CWE_CODINGS}]")
    return codeable_concept_to_cwe(cc, D)


def dtm(st: State, value: str | None, where: str) -> str:
    """FHIR date/dateTime/instant → DTM; a value that is not a real FHIR time is dropped with a warning."""
    if not value:
        return ""
    if not is_datetime(value):
        st.warn("fhir-bad-datetime", f"{value!r} is not a valid FHIR date/dateTime; not written", where, code="value")
        return ""
    return fhir_to_dtm(value)


def quantity_units(q: dict[str, Any]) -> str:
    """Quantity → OBX-6 CWE (UCUM code, unit text when it differs, coding system)."""
    code, unit, system = q.get("code", ""), q.get("unit", ""), q.get("system")
    if not (code or unit):
        return ""
    parts = [escape(code or unit, D), escape(unit if unit != code else "", D), system_name(system) if code else ""]
    return "^".join(parts).rstrip("^")


def value(st: State, holder: dict[str, Any], where: str, v2_type: str | None) -> tuple[str, str, str] | None:
    """(OBX-2, OBX-5, OBX-6) for the value[x] of an Observation or component; None when it has none (or one no
    OBX-5 can hold, reported). `v2_type` is the LRI type of the variable, when known."""
    if "valueCodeableConcept" in holder:
        vt = v2_type if v2_type in ("CWE", "CNE") else "CWE"
        return vt, cwe(st, holder["valueCodeableConcept"], f"{where}.valueCodeableConcept"), ""
    if "valueQuantity" in holder:
        q = holder["valueQuantity"]
        if q.get("comparator"):  # SN keeps the comparator: <5 → ^<^5
            return "SN", f"{escape(q['comparator'], D)}^{format_number(q.get('value'))}", quantity_units(q)
        return "NM", format_number(q.get("value")), quantity_units(q)
    if "valueRange" in holder:
        r = holder["valueRange"]
        lo, hi = (format_number((r.get(k) or {}).get("value")) for k in ("low", "high"))
        if v2_type is None:  # a lab result range: SN keeps its units
            return "SN", f"^{lo}^-^{hi}", quantity_units(r.get("low") or r.get("high") or {})
        return "NR", f"{lo}^{hi}".rstrip("^"), ""
    if "valueRatio" in holder:
        r = holder["valueRatio"]
        num, den = (format_number((r.get(k) or {}).get("value")) for k in ("numerator", "denominator"))
        return "SN", f"^{num}^:^{den}", ""
    if "valueString" in holder:
        text = holder["valueString"]
        return ("TX" if "\n" in text else "ST"), escape(text, D), ""
    if "valueDateTime" in holder:
        when = dtm(st, holder["valueDateTime"], f"{where}.valueDateTime")
        return ("DTM", when, "") if when else None
    if "valueTime" in holder:
        return "TM", escape(holder["valueTime"].replace(":", ""), D), ""
    if "valueBoolean" in holder:
        return "ST", "true" if holder["valueBoolean"] else "false", ""
    if "valueInteger" in holder:
        return "NM", str(holder["valueInteger"]), ""
    other = next((k for k in holder if k.startswith("value") and k != "value"), None)
    if other is not None:
        st.warn("hl7v2-value-not-carried", f"{other} has no OBX-5 data type here; not carried over",
                f"{where}.{other}", code="not-supported")
    return None
