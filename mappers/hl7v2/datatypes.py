"""HL7 v2 data types ⇄ FHIR data types (CWE ⇄ CodeableConcept, CX ⇄ Identifier, DTM ⇄ dateTime, ...).

v2 → FHIR functions read one field (or repetition) of a segment; FHIR → v2 functions return the raw,
escaped field text. Code-system names ⇄ URIs come from tables/coding-systems.json.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from mappers.hl7v2.escape import escape
from mappers.hl7v2.model import Delimiters, Segment

_TABLES = Path(__file__).parent / "tables"
_HGVS = re.compile(r"^(?:[A-Z]{1,3}_?\d+(?:\.\d+)?(?:\([^)]*\))?|LRG_\d+\w*):[cgmnopr]\.")
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(\.\d{1,4})?)?([+-]\d{4})?$")
_FHIR_DT = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
LOCAL_SYSTEM = "urn:id:"  # prefix for coding systems and assigning authorities known only by a v2 name


@cache
def coding_systems() -> dict[str, Any]:
    return json.loads((_TABLES / "coding-systems.json").read_text(encoding="utf-8"))


def system_uri(name: str) -> str | None:
    """FHIR URI for a v2 coding-system name (table 0396 or LRI names); unknown names map to `urn:id:NAME`."""
    if not name:
        return None
    if name.startswith(("http://", "https://", "urn:")):
        return coding_systems()["normalise"].get(name, name)
    return coding_systems()["to_fhir"].get(name.upper(), LOCAL_SYSTEM + name)


def system_name(uri: str | None, code: str = "") -> str:
    """v2 coding-system name for a FHIR URI (HGVS picks HGVS.c/.g/.p from the expression)."""
    if not uri:
        return ""
    if uri == "http://varnomen.hgvs.org":
        m = re.search(r":([cgp])\.", code)
        return coding_systems()["hgvs_v2_names"].get(m.group(1), "HGVS") if m else "HGVS"
    if uri == "http://www.ncbi.nlm.nih.gov/refseq":
        kind = {"NC": "G", "NG": "G", "NT": "G", "NW": "G", "NM": "T", "NR": "T", "XM": "T", "NP": "P", "XP": "P"}
        return f"RefSeq-{kind[code[:2]]}" if code[:2] in kind else "RefSeq"
    if uri.startswith(LOCAL_SYSTEM):
        return uri[len(LOCAL_SYSTEM):]
    if uri.startswith("urn:oid:"):
        return uri[len("urn:oid:"):]
    return coding_systems()["to_v2"].get(uri, uri)


def is_hgvs(text: str) -> bool:
    return bool(_HGVS.match(text))


def _coding(code: str, display: str, system_nm: str) -> dict[str, Any] | None:
    if not code:
        return None
    system = system_uri(system_nm)
    if system is None and is_hgvs(code):
        system = "http://varnomen.hgvs.org"
    out: dict[str, Any] = {}
    if system:
        out["system"] = system
    out["code"] = code
    if display:
        out["display"] = display
    return out


def cwe_to_codeable_concept(seg: Segment, n: int, rep: int = 1) -> dict[str, Any] | None:
    """CWE/CNE/CE (components 1-6 and 9 original text) → CodeableConcept; None when empty."""
    c = seg.components(n, rep)
    c += [""] * (9 - len(c))
    codings = [x for x in (_coding(c[0], c[1], c[2]), _coding(c[3], c[4], c[5])) if x]
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = codings
    text = c[8] or ("" if codings else c[1] or c[4])
    if text:
        out["text"] = text
    return out or None


def text_to_codeable_concept(text: str) -> dict[str, Any] | None:
    """A string where a code is expected: HGVS expressions become codings, anything else stays text."""
    if not text:
        return None
    if is_hgvs(text):
        return {"coding": [{"system": "http://varnomen.hgvs.org", "code": text}]}
    return {"text": text}


def number(text: str) -> int | float | None:
    """NM → JSON number (int when integral in the source, so '62' stays 62)."""
    t = text.strip()
    if not t:
        return None
    try:
        return int(t) if re.fullmatch(r"[+-]?\d+", t) else float(t)
    except ValueError:
        return None


def hd_system(namespace: str, universal_id: str, id_type: str) -> str | None:
    """An HD (assigning authority / facility) as a system URI: ISO → urn:oid, UUID → urn:uuid, URI as is,
    a namespace alone → `urn:id:NAMESPACE` (the convention LinuxForHealth's converter uses)."""
    t = id_type.upper()
    if universal_id:
        if t == "ISO" or re.fullmatch(r"[0-2](\.\d+)+", universal_id):
            return "urn:oid:" + universal_id
        if t == "UUID":
            return "urn:uuid:" + universal_id.lower()
        if t in ("URI", "URL") or universal_id.startswith(("http://", "https://", "urn:")):
            return universal_id
    if namespace:
        return LOCAL_SYSTEM + namespace
    return None


def _subs(seg: Segment, n: int, comp: int, rep: int) -> list[str]:
    return [seg.get(n, comp, s, rep) for s in (1, 2, 3)]


def cx_to_identifier(seg: Segment, n: int, rep: int = 1) -> dict[str, Any] | None:
    """CX (1 id, 4 assigning authority HD, 5 identifier type) → Identifier."""
    value = seg.get(n, 1, rep=rep)
    if not value:
        return None
    ns, uid, typ = _subs(seg, n, 4, rep)
    out: dict[str, Any] = {}
    id_type = seg.get(n, 5, rep=rep)
    if id_type:
        out["type"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": id_type}]}
    system = hd_system(ns, uid, typ)
    if system:
        out["system"] = system
    out["value"] = value
    if ns:
        out["assigner"] = {"display": ns}
    return out


def ei_to_identifier(parts: list[str], type_code: str = "") -> dict[str, Any] | None:
    """EI parts (1 entity id, 2 namespace, 3 universal id, 4 type) → Identifier, optionally typed (PLAC, FILL).

    Takes the parts rather than a field because EI also appears as subcomponents (SPM-2, an EIP).
    """
    parts = [*parts, "", "", "", ""]
    if not parts[0]:
        return None
    out: dict[str, Any] = {}
    if type_code:
        out["type"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": type_code}]}
    system = hd_system(parts[1], parts[2], parts[3])
    if system:
        out["system"] = system
    out["value"] = parts[0]
    return out


def xpn_to_human_name(seg: Segment, n: int, rep: int = 1) -> dict[str, Any] | None:
    """XPN (1 family, 2 given, 3 middle, 4 suffix, 5 prefix, 7 name type) → HumanName."""
    c = seg.components(n, rep)
    c += [""] * (7 - len(c))
    family = seg.get(n, 1, 1, rep)
    out: dict[str, Any] = {}
    use = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous", "B": "official"}.get(c[6])
    if use:
        out["use"] = use
    if family:
        out["family"] = family
    given = [g for g in (c[1], c[2]) if g]
    if given:
        out["given"] = given
    if c[4]:
        out["prefix"] = [c[4]]
    if c[3]:
        out["suffix"] = [c[3]]
    return out or None


def xad_to_address(seg: Segment, n: int, rep: int = 1) -> dict[str, Any] | None:
    """XAD (1 street, 2 other, 3 city, 4 state, 5 zip, 6 country) → Address."""
    c = seg.components(n, rep)
    c += [""] * (6 - len(c))
    out: dict[str, Any] = {}
    lines = [x for x in (seg.get(n, 1, 1, rep), c[1]) if x]
    if lines:
        out["line"] = lines
    for key, val in (("city", c[2]), ("state", c[3]), ("postalCode", c[4]), ("country", c[5])):
        if val:
            out[key] = val
    return out or None


def xtn_to_contact_point(seg: Segment, n: int, rep: int = 1) -> dict[str, Any] | None:
    """XTN (1 number, 3 equipment type, 4 email, 12 unformatted) → ContactPoint."""
    c = seg.components(n, rep)
    c += [""] * (12 - len(c))
    if c[3]:
        return {"system": "email", "value": c[3]}
    value = c[0] or c[11]
    if not value:
        return None
    system = {"FX": "fax", "BP": "pager", "Internet": "email"}.get(c[2], "phone")
    return {"system": system, "value": value}


def dtm_to_fhir(text: str, timezone: str | None) -> tuple[str | None, bool]:
    """DTM/TS → FHIR dateTime. Returns (value, time_dropped).

    FHIR requires a time zone whenever a time is given; a v2 time without one takes `timezone`, or,
    when that is None, only its date is kept (time_dropped=True).
    """
    m = _DTM.match(text.strip())
    if not m:
        return None, False
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    date = "-".join(x for x in (y, mo, d) if x)
    if hh is None or d is None:
        return date, False
    if tz:
        zone = f"{tz[:3]}:{tz[3:]}"
    elif timezone:
        zone = timezone
    else:
        return date, True
    return f"{date}T{hh}:{mi or '00'}:{ss or '00'}{frac or ''}{zone}", False


def fhir_to_dtm(value: str | None) -> str:
    """FHIR date/dateTime/instant → DTM (20250301120000+0100)."""
    if not value:
        return ""
    m = _FHIR_DT.match(value)
    if not m:
        return ""
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    out = y + (mo or "") + (d or "") + (hh or "") + (mi or "") + (ss or "") + (frac or "")
    if tz:
        out += "+0000" if tz == "Z" else tz.replace(":", "")
    return out


# ---- FHIR → v2 (raw, escaped field text) ----

def _join(parts: list[str], sep: str) -> str:
    while parts and not parts[-1]:
        parts.pop()
    return sep.join(parts)


def codeable_concept_to_cwe(cc: dict[str, Any] | None, d: Delimiters) -> str:
    """CodeableConcept → CWE: first two codings in components 1-3 and 4-6, text in 9."""
    if not cc:
        return ""
    parts = [""] * 9
    for i, coding in enumerate(cc.get("coding", [])[:2]):
        code = coding.get("code", "")
        parts[i * 3] = escape(code, d)
        parts[i * 3 + 1] = escape(coding.get("display", ""), d)
        parts[i * 3 + 2] = escape(system_name(coding.get("system"), code), d)
    text = cc.get("text", "")
    if text and not cc.get("coding"):
        parts[1] = escape(text, d)
    elif text:
        parts[8] = escape(text, d)
    return _join(parts, d.component)


def identifier_to_cx(ident: dict[str, Any], d: Delimiters) -> str:
    system = ident.get("system", "")
    ns = (ident.get("assigner") or {}).get("display", "")
    sub = d.subcomponent
    if system.startswith(LOCAL_SYSTEM):
        hd = escape(system[len(LOCAL_SYSTEM):], d)
    elif system.startswith("urn:oid:"):
        hd = _join([escape(ns, d), system[8:], "ISO"], sub)
    elif system.startswith("urn:uuid:"):
        hd = _join([escape(ns, d), system[9:], "UUID"], sub)
    elif system:
        hd = _join([escape(ns, d), escape(system, d), "URI"], sub)
    else:
        hd = escape(ns, d)
    typ = next((c.get("code", "") for c in (ident.get("type") or {}).get("coding", [])), "")
    return _join([escape(ident.get("value", ""), d), "", "", hd, escape(typ, d)], d.component)


def identifier_to_ei(ident: dict[str, Any] | None, d: Delimiters) -> str:
    if not ident:
        return ""
    cx = identifier_to_cx(ident, d).split(d.component)
    cx += [""] * (4 - len(cx))
    hd = [*cx[3].split(d.subcomponent), "", "", ""]
    return _join([cx[0], hd[0], hd[1], hd[2]], d.component)


def human_name_to_xpn(name: dict[str, Any], d: Delimiters) -> str:
    given = name.get("given", [])
    use = {"official": "L", "usual": "D", "maiden": "M", "nickname": "N", "anonymous": "A"}.get(name.get("use", ""), "")
    parts = [name.get("family", ""), given[0] if given else "", " ".join(given[1:]),
             " ".join(name.get("suffix", [])), " ".join(name.get("prefix", [])), "", use]
    if not any(parts[:5]) and name.get("text"):
        parts[0] = name["text"]
    return _join([escape(p, d) for p in parts], d.component)


def address_to_xad(addr: dict[str, Any], d: Delimiters) -> str:
    lines = addr.get("line", [])
    parts = [lines[0] if lines else "", " ".join(lines[1:]), addr.get("city", ""), addr.get("state", ""),
             addr.get("postalCode", ""), addr.get("country", "")]
    return _join([escape(p, d) for p in parts], d.component)


def contact_point_to_xtn(cp: dict[str, Any], d: Delimiters) -> str:
    value = escape(cp.get("value", ""), d)
    if cp.get("system") == "email":
        return _join(["", "NET", "Internet", value], d.component)
    equip = {"fax": "FX", "pager": "BP"}.get(cp.get("system", ""), "PH")
    return _join([value, "", equip], d.component)


def format_number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)  # keep "2.0" as written so the type survives
    return str(value)
