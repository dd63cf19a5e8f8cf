"""HL7 v2 data types ⇄ FHIR data types (CWE ⇄ CodeableConcept, CX ⇄ Identifier, DTM ⇄ dateTime, ...).

v2 → FHIR functions read one field (or repetition) of a segment; FHIR → v2 functions return the raw,
escaped field text. Code-system names ⇄ URIs come from tables/coding-systems.json.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote

from mappers.hl7v2 import memo
from mappers.hl7v2.escape import escape
from mappers.hl7v2.model import Delimiters, Segment
from mappers.toolkit.fhirtime import is_date, is_datetime

_TABLES = Path(__file__).parent / "tables"
# LRG_\d\w*, not \d+\w*: \d is in \w, so the two split a run of digits every way (quadratic)
_HGVS = re.compile(r"^(?:[A-Z]{1,3}_?\d+(?:\.\d+)?(?:\([^)]*\))?|LRG_\d\w*):[cgmnopr]\.")
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(\.\d{1,4})?)?([+-]\d{4})?$")
_FHIR_DT = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_INTEGER = re.compile(r"[+-]?\d+")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
LOCAL_SYSTEM = "urn:id:"  # prefix for coding systems and assigning authorities known only by a v2 name
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
# RFC 3986: what a URN's namespace-specific string may hold as is (unreserved, sub-delims, ':' '@' '/');
# everything else, '%' included, is percent-encoded, so the name is restored exactly by unquote.
_NSS_SAFE = "!$&'()*+,;=:@/-._~"


class Usage(Protocol):
    """Where a reader records the components it consumed (mappers.hl7v2.context.Context)."""

    def use_component(self, seg: Segment, n: int, *comps: int) -> None: ...


@cache
def coding_systems() -> dict[str, Any]:
    return json.loads((_TABLES / "coding-systems.json").read_text(encoding="utf-8"))


@cache
def identifier_types() -> frozenset[str]:
    """The codes of HL7 table 0203 that FHIR's v2-0203 code system defines (tables/v2-0203.json)."""
    return frozenset(json.loads((_TABLES / "v2-0203.json").read_text(encoding="utf-8"))["codes"])


def local_system(name: str) -> str:
    """`urn:id:NAME` for a system known only by a v2 name; characters a URN cannot hold are percent-encoded
    (`Baseline West MC` → `urn:id:Baseline%20West%20MC`), so the URI is valid and the name comes back exactly."""
    return _local_systems(name) if len(name) <= memo.SHORT else _local_system(name)


def _local_system(name: str) -> str:
    return LOCAL_SYSTEM + quote(name, safe=_NSS_SAFE)


_local_systems = lru_cache(maxsize=memo.SIZE)(_local_system)  # facility and authority names: a few, on every message


def local_name(uri: str) -> str:
    """The v2 name behind a `urn:id:` system (the inverse of local_system)."""
    return unquote(uri[len(LOCAL_SYSTEM):])


def system_uri(name: str) -> str | None:
    """FHIR URI for a v2 coding-system name (table 0396 or LRI names); unknown names map to `urn:id:NAME`."""
    return _system_uris(name) if len(name) <= memo.SHORT else _system_uri(name)


def _system_uri(name: str) -> str | None:
    if not name:
        return None
    if _URI.fullmatch(name) and name.startswith(("http://", "https://", "urn:")):
        return coding_systems()["normalise"].get(name, name)
    return coding_systems()["to_fhir"].get(name.upper()) or local_system(name)


_system_uris = lru_cache(maxsize=memo.SIZE)(_system_uri)  # a message names few systems, each on many rows


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
        return local_name(uri)
    if uri.startswith("urn:oid:"):
        return uri[len("urn:oid:"):]
    return coding_systems()["to_v2"].get(uri, uri)


def is_hgvs(text: str) -> bool:
    return bool(_HGVS.match(text))


def _coding(code: str, display: str, system_nm: str, version: str) -> dict[str, Any] | None:
    if not code:
        return None
    system = system_uri(system_nm) if system_nm else None
    if system is None and is_hgvs(code):
        system = "http://varnomen.hgvs.org"
    out: dict[str, Any] = {}
    if system:
        out["system"] = system
    if version and system:  # Coding.version needs the system it versions
        out["version"] = version
    out["code"] = code
    if display:
        out["display"] = display
    return out


# CWE/CNE/CE components read by cwe_to_codeable_concept: two codings with their versions (7, 8) and the
# original text (9). Components 10-22 (v2.7+ second alternate, value set ids) are not mapped.
CWE_COMPONENTS = (1, 2, 3, 4, 5, 6, 7, 8, 9)


def cwe_to_codeable_concept(seg: Segment, n: int, rep: int = 1, used: Usage | None = None) -> dict[str, Any] | None:
    """CWE/CNE/CE (components 1-9) → CodeableConcept; None when empty. Each call hands out a concept of its own (the
    caller's resource may be edited), worked out once per repetition text and dialect (memo: codes are
    vocabulary, the same on many rows and messages)."""
    if used is not None:
        used.use_component(seg, n, *CWE_COMPONENTS)
    raw = seg.repetition(n, rep)
    if len(raw) > memo.SHORT:
        return _cwe(seg, n, rep)
    key = (raw, seg.dialect)
    cc = _CONCEPTS.get(key, _UNREAD)
    if cc is _UNREAD:
        cc = memo.remember(_CONCEPTS, key, _cwe(seg, n, rep))
    if cc is None:
        return None
    codings = cc.get("coding")
    if codings is None:
        return {"text": cc["text"]}
    if len(cc) == 1:
        return {"coding": list(map(dict.copy, codings))}
    return {"coding": list(map(dict.copy, codings)), "text": cc["text"]}


_UNREAD = object()
_CONCEPTS: dict[tuple[str, str], dict[str, Any] | None] = {}  # CWE repetition text, dialect → concept (memo)


def _cwe(seg: Segment, n: int, rep: int) -> dict[str, Any] | None:
    c = seg.components(n, rep)
    if len(c) < 9:
        c += _BLANKS[len(c)]
    codings = []
    if c[0]:
        codings.append(_coding(c[0], c[1], c[2], c[6]))
    if c[3]:
        codings.append(_coding(c[3], c[4], c[5], c[7]))
    text = c[8] or ("" if codings else c[1] or c[4])
    if codings:
        return {"coding": codings, "text": text} if text else {"coding": codings}
    return {"text": text} if text else None


_BLANKS = [[""] * (9 - k) for k in range(9)]  # what pads k components to the nine read


def text_to_codeable_concept(text: str) -> dict[str, Any] | None:
    """A string where a code is expected: HGVS expressions become codings, anything else stays text."""
    if not text:
        return None
    if is_hgvs(text):
        return {"coding": [{"system": "http://varnomen.hgvs.org", "code": text}]}
    return {"text": text}


def number(text: str) -> int | float | None:
    """NM → JSON number (int when integral in the source, so '62' stays 62); None for what is not a finite
    decimal FHIR can hold, and for integers past 64 bits, which JSON writers (orjson) cannot write exactly."""
    t = text.strip()
    if not t or len(t) > 40 or not _DECIMAL.fullmatch(t):
        return None
    if _INTEGER.fullmatch(t):
        n = int(t)
        return n if -(2**63) <= n < 2**63 else None
    return float(t)


def hd_system(namespace: str, universal_id: str, id_type: str) -> str | None:
    """An HD (assigning authority / facility) as a system URI: an OID → urn:oid, a UUID → urn:uuid, a URI as is,
    else the namespace (or, without one, the universal id) as `urn:id:NAME` (LinuxForHealth's convention),
    percent-encoded where a URI needs it (local_system)."""
    if len(namespace) + len(universal_id) + len(id_type) <= memo.SHORT:
        return _hd_systems(namespace, universal_id, id_type)
    return _hd_system(namespace, universal_id, id_type)


def _hd_system(namespace: str, universal_id: str, id_type: str) -> str | None:
    t = id_type.upper()
    uid = universal_id.strip()
    if uid:
        if _OID.fullmatch(uid):
            return "urn:oid:" + uid
        if _UUID.fullmatch(uid):
            return "urn:uuid:" + uid.lower()
        if _URI.fullmatch(uid) and (t in ("URI", "URL") or uid.startswith(("http://", "https://", "urn:"))):
            return uid
    if namespace.strip():
        return local_system(namespace.strip())
    if uid:
        return local_system(uid)
    return None


_hd_systems = lru_cache(maxsize=memo.SIZE)(_hd_system)  # assigning authorities: a few, on many identifiers


def identifier_type(code: str) -> dict[str, Any] | None:
    """An identifier type code (CX-5, XCN-13) → Identifier.type: a coding when HL7 table 0203 defines it, else
    text (FHIR's identifier-type binding only admits the table's codes for that system)."""
    if not code:
        return None
    if code in identifier_types():
        return {"coding": [{"system": V2_0203, "code": code}]}
    return {"text": code}


def _subs(seg: Segment, n: int, comp: int, rep: int) -> list[str]:
    return [seg.get(n, comp, s, rep) for s in (1, 2, 3)]


def _period(start: str, end: str) -> dict[str, str] | None:
    """Two DTM values as a Period of dates (only what is a real date is kept)."""
    out = {}
    for key, raw in (("start", start), ("end", end)):
        m = _DTM.match(raw.strip()) if raw else None
        if m and m.group(3):
            value = f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
            if is_date(value):
                out[key] = value
    return out or None


def cx_to_identifier(seg: Segment, n: int, rep: int = 1, used: Usage | None = None) -> dict[str, Any] | None:
    """CX (1 id, 4 assigning authority HD, 5 identifier type, 7/8 effective/expiration dates) → Identifier.
    Components 2, 3 (check digit and its scheme), 6 (assigning facility) and 9/10 are not mapped."""
    value = seg.get(n, 1, rep=rep)
    if not value:
        return None
    if used is not None:
        used.use_component(seg, n, 1, 4, 5, 7, 8)
    ns, uid, typ = _subs(seg, n, 4, rep)
    out: dict[str, Any] = {}
    id_type = identifier_type(seg.get(n, 5, rep=rep))
    if id_type:
        out["type"] = id_type
    system = hd_system(ns, uid, typ)
    if system:
        out["system"] = system
    out["value"] = value
    period = _period(seg.get(n, 7, rep=rep), seg.get(n, 8, rep=rep))
    if period:
        out["period"] = period
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
    id_type = identifier_type(type_code)
    if id_type:
        out["type"] = id_type
    system = hd_system(parts[1], parts[2], parts[3])
    if system:
        out["system"] = system
    out["value"] = parts[0]
    return out


_NAME_USE = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous", "B": "official"}


def xpn_to_human_name(seg: Segment, n: int, rep: int = 1, used: Usage | None = None) -> dict[str, Any] | None:
    """XPN (1 family, 2 given, 3 middle, 4 suffix, 5 prefix, 6 degree, 7 name type) → HumanName."""
    c = seg.components(n, rep)
    c += [""] * (7 - len(c))
    if used is not None:
        used.use_component(seg, n, 1, 2, 3, 4, 5, 6, 7)
    family = seg.get(n, 1, 1, rep)
    out: dict[str, Any] = {}
    use = _NAME_USE.get(c[6])
    if use:
        out["use"] = use
    if family:
        out["family"] = family
    given = [g for g in (c[1], c[2]) if g]
    if given:
        out["given"] = given
    if c[4]:
        out["prefix"] = [c[4]]
    suffix = [s for s in (c[3], c[5]) if s]
    if suffix:
        out["suffix"] = suffix
    return out or None


# XAD-7 address type (HL7 table 0190) → Address.use / Address.type (HL7 v2-to-FHIR IG, datatype map XAD).
_ADDRESS_USE = {"H": ("use", "home"), "B": ("use", "work"), "O": ("use", "work"), "C": ("use", "temp"),
                "M": ("type", "postal"), "SH": ("type", "postal")}


def xad_to_address(seg: Segment, n: int, rep: int = 1, used: Usage | None = None) -> dict[str, Any] | None:
    """XAD (1 street, 2 other, 3 city, 4 state, 5 zip, 6 country, 7 address type) → Address."""
    c = seg.components(n, rep)
    c += [""] * (7 - len(c))
    out: dict[str, Any] = {}
    lines = [x for x in (seg.get(n, 1, 1, rep), c[1]) if x]
    if lines:
        out["line"] = lines
    for key, val in (("city", c[2]), ("state", c[3]), ("postalCode", c[4]), ("country", c[5])):
        if val:
            out[key] = val
    if not out:
        return None
    if used is not None:
        used.use_component(seg, n, 1, 2, 3, 4, 5, 6)
    kind = _ADDRESS_USE.get(c[6])
    if kind:
        out[kind[0]] = kind[1]
        if used is not None:
            used.use_component(seg, n, 7)
    return out


_TELECOM_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "PRS": "mobile", "EMR": "home"}


def xtn_to_contact_point(seg: Segment, n: int, rep: int = 1, used: Usage | None = None) -> dict[str, Any] | None:
    """XTN (1 number, 2 use, 3 equipment type, 4 email, 5-8 country/area/local number/extension,
    12 unformatted) → ContactPoint."""
    c = seg.components(n, rep)
    c += [""] * (12 - len(c))
    if c[3]:
        out: dict[str, Any] = {"system": "email", "value": c[3]}
        parts: tuple[int, ...] = (2, 3, 4)
    else:
        value = c[0] or c[11]
        parts = (1, 2, 3, 12)
        if not value and c[6]:
            # v2.5 components: +country area local, "ext." extension
            value = " ".join(x for x in (f"+{c[4]}" if c[4] else "", c[5], c[6]) if x)
            if c[7]:
                value += f" ext. {c[7]}"
            parts = (2, 3, 5, 6, 7, 8)
        if not value:
            return None
        system = {"FX": "fax", "BP": "pager", "Internet": "email", "X.400": "email"}.get(c[2], "phone")
        out = {"system": system, "value": value}
    if c[1] in _TELECOM_USE:
        out["use"] = _TELECOM_USE[c[1]]
    if used is not None:
        used.use_component(seg, n, *parts)
    return out


def dtm_to_fhir(text: str, timezone: str | None) -> tuple[str | None, bool]:
    """DTM/TS → FHIR dateTime. Returns (value, time_dropped); value None when the text is not a real time.

    FHIR requires a time zone whenever a time is given; a v2 time without one takes `timezone`, or,
    when that is None, only its date is kept (time_dropped=True).
    """
    return _dtms(text, timezone) if len(text) <= memo.SHORT else _dtm_to_fhir(text, timezone)


def _dtm_to_fhir(text: str, timezone: str | None) -> tuple[str | None, bool]:
    m = _DTM.match(text.strip())
    if not m:
        return None, False
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    date = "-".join(x for x in (y, mo, d) if x)
    if not is_date(date):
        return None, False
    if hh is None or d is None:
        return date, False
    if tz:
        zone = f"{tz[:3]}:{tz[3:]}"
    elif timezone:
        zone = timezone
    else:
        return (date, True) if is_datetime(f"{date}T{hh}:{mi or '00'}:{ss or '00'}Z") else (None, False)
    value = f"{date}T{hh}:{mi or '00'}:{ss or '00'}{frac or ''}{zone}"
    return (value, False) if is_datetime(value) else (None, False)


_dtms = lru_cache(maxsize=memo.SIZE)(_dtm_to_fhir)  # a message states the same few times on many rows


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
        hd = escape(local_name(system), d)
    elif system.startswith("urn:oid:"):
        hd = _join([escape(ns, d), system[8:], "ISO"], sub)
    elif system.startswith("urn:uuid:"):
        hd = _join([escape(ns, d), system[9:], "UUID"], sub)
    elif system:
        hd = _join([escape(ns, d), escape(system, d), "URI"], sub)
    else:
        hd = escape(ns, d)
    id_type = ident.get("type") or {}
    typ = next((c.get("code", "") for c in id_type.get("coding", [])), "") or id_type.get("text", "")
    period = ident.get("period") or {}
    return _join([escape(ident.get("value", ""), d), "", "", hd, escape(typ, d), "",
                  fhir_to_dtm(period.get("start")), fhir_to_dtm(period.get("end"))], d.component)


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
    suffix = name.get("suffix", [])  # XPN-4 suffix, XPN-6 degree (as xpn_to_human_name reads them)
    parts = [name.get("family", ""), given[0] if given else "", " ".join(given[1:]),
             suffix[0] if suffix else "", " ".join(name.get("prefix", [])), " ".join(suffix[1:]), use]
    if not any(parts[:5]) and name.get("text"):
        parts[0] = name["text"]
    return _join([escape(p, d) for p in parts], d.component)


def address_to_xad(addr: dict[str, Any], d: Delimiters) -> str:
    lines = addr.get("line", [])
    kind = next((k for k, v in _ADDRESS_USE.items() if v in (("use", addr.get("use")), ("type", addr.get("type")))),
                "")
    parts = [lines[0] if lines else "", " ".join(lines[1:]), addr.get("city", ""), addr.get("state", ""),
             addr.get("postalCode", ""), addr.get("country", ""), kind]
    return _join([escape(p, d) for p in parts], d.component)


def contact_point_to_xtn(cp: dict[str, Any], d: Delimiters) -> str:
    value = escape(cp.get("value", ""), d)
    use = next((k for k, v in _TELECOM_USE.items() if v == cp.get("use")), "")
    if cp.get("system") == "email":
        return _join(["", use or "NET", "Internet", value], d.component)
    equip = {"fax": "FX", "pager": "BP"}.get(cp.get("system", ""), "PH")
    return _join([value, use, equip], d.component)


def format_number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)  # keep "2.0" as written so the type survives
    return str(value)
