"""Reading eHDSI CDA datatypes (CDA R2 / HL7 V3 data types R1) into FHIR R4 datatypes, marking what is used.

Every element whose content goes into the output is marked used (mappers.cda_cn.coverage), so whatever no mapper
took is reported by path afterwards. Resource ids are UUIDv5 of the document id and the entry's XPath.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from mappers.cda_cn.context import Notes
from mappers.cda_cn.coverage import use, use_tree
from mappers.cda_cn.times import ts_to_fhir
from mappers.cda_cn.xpath import local, path
from mappers.ehdsi_cda import codes as C
from mappers.ids import resource_id
from mappers.terminology import translate
from mappers.toolkit.fhirtime import is_datetime

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_ZONE = re.compile(r"([+-]\d{4}|Z)$")  # an HL7 TS that states its zone
UCUM = "http://unitsofmeasure.org"


@dataclass(slots=True)
class Reader:
    notes: Notes
    timezone: str  # assumed for times without a zone
    key: str  # the document's identity (id root|extension)
    refs: dict[str, str]  # narrative ID → its text (originalText/reference targets)
    zone_given: bool = False  # the caller stated the zone of times that carry none
    patient: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def new(self, rtype: str, el: etree._Element, profile: str | None = None) -> dict[str, Any]:
        """A resource for the entry `el`, id from the document and the entry's place, its origin recorded."""
        where = path(el)
        res: dict[str, Any] = {"resourceType": rtype, "id": resource_id(rtype, self.key, where)}
        if profile:
            res["meta"] = {"profile": [profile if "/" in profile else C.IPS + profile]}
        self.origins.setdefault(res["id"], where)
        return res

    def add(self, res: dict[str, Any]) -> dict[str, Any]:
        return self.resources.setdefault(res["id"], res)

    def subject(self) -> dict[str, str]:
        return ref(self.patient)

    def time(self, el: etree._Element | None, attr_name: str = "value") -> str | None:
        """A FHIR date/dateTime for a TS element; a bad one is reported and dropped."""
        ts = value(el, attr_name)
        if not ts:
            return None
        out = ts_to_fhir(ts, self.timezone)
        if out is None or not is_datetime(out):
            self.notes.warn("ehdsi-bad-time", f"{ts!r} is not a valid HL7 timestamp; not mapped", path(el))
            return None
        if "T" in out and not self.zone_given and not _ZONE.search(ts):
            # a time of day without a zone: FHIR dateTime needs one (R4 datatypes.html#dateTime)
            self.notes.inform("ehdsi-time-zone-assumed", f"times of day without a zone are taken as {self.timezone} "
                              "(state the source's zone with the timezone option)")
        use(el)
        return out

    def period(self, el: etree._Element | None) -> tuple[str | None, dict[str, str]]:
        """An IVL_TS/TS: (a single time, or None) and a Period of its low/high."""
        if el is None or el.get("nullFlavor"):
            return None, {}
        single = self.time(el)
        if single:
            return single, {}
        per = {}
        for bound, key in (("low", "start"), ("high", "end")):
            t = self.time(kid(el, bound))
            if t:
                per[key] = t
        if kid(el, "center") is not None and not per:
            c = self.time(kid(el, "center"))
            return c, {}
        return None, per

    def text(self, el: etree._Element | None) -> str:
        """Text of an ED/ST (a `reference` into the narrative resolved)."""
        if el is None or el.get("nullFlavor"):
            return ""
        r = kid(el, "reference")
        if r is not None and (r.get("value") or "").startswith("#"):
            got = self.refs.get(r.get("value", "")[1:], "")
            if got:
                use(el, r)
            return got
        t = " ".join("".join(el.itertext()).split())
        if t:
            use_tree(el)
        return t

    def concept(self, el: etree._Element | None) -> dict[str, Any] | None:
        """A CodeableConcept for a CD/CE: the code, its translations and originalText; None when there is neither."""
        if el is None:
            return None
        codings = []
        for c in (el, *kids(el, "translation")):
            code = value(c, "code")
            if code and not c.get("nullFlavor"):
                coding: dict[str, Any] = {"system": C.system_uri(c.get("codeSystem", "")), "code": code}
                if c.get("codeSystemVersion"):
                    coding["version"] = c.get("codeSystemVersion")
                if value(c, "displayName"):
                    coding["display"] = value(c, "displayName")
                if not c.get("codeSystem"):
                    del coding["system"]
                    self.notes.warn("ehdsi-code-without-system", f"code {code!r} names no codeSystem", path(c))
                codings.append(coding)
                use(c)
        out: dict[str, Any] = {}
        if codings:
            out["coding"] = codings
        text = self.text(kid(el, "originalText"))
        if text:
            out["text"] = text
        return out or None

    def coding(self, el: etree._Element | None) -> tuple[str, str]:
        """(FHIR system, code) of a CD, marked used; ('', '') when absent."""
        code = value(el, "code")
        if not code or el is None or el.get("nullFlavor"):
            return "", ""
        use(el)
        return C.system_uri(el.get("codeSystem", "")), code

    def mapped(self, el: etree._Element | None, map_id: str | None, fhir_system: str, what: str) -> str | None:
        """A required-binding code: taken as is when the source already uses the FHIR system, else through the
        ConceptMap `map_id`; an unmapped code is reported and None returned."""
        system, code = self.coding(el)
        if not code:
            return None
        if system == fhir_system:
            return code
        hit = translate(map_id, code) if map_id else None
        if hit is None or hit.equivalence == "unmatched":
            self.notes.warn("ehdsi-code-not-mapped", f"{what} {code!r} ({system}) has no {fhir_system} code"
                            + (f" in ConceptMap {map_id}" if map_id else "") + "; not mapped", path(el))
            return None
        if hit.equivalence not in ("equivalent", "equal"):
            self.notes.inform("ehdsi-code-approximated", f"{what} {code!r} is mapped to {hit.code!r} "
                              f"({hit.equivalence}, ConceptMap {map_id})", path(el))
        return hit.code

    def mapped_code(self, map_id: str, code: str) -> str | None:
        """A code through ConceptMap `map_id` (None when it has no target)."""
        hit = translate(map_id, code)
        return hit.code if hit and hit.equivalence != "unmatched" else None

    def quantity(self, el: etree._Element | None) -> dict[str, Any] | None:
        """A Quantity for a PQ (UCUM unit)."""
        if el is None or el.get("nullFlavor"):
            return None
        num = number(value(el, "value"))
        if num is None:
            if value(el, "value"):
                self.notes.warn("ehdsi-bad-number", f"{el.get('value')!r} is not a number; not mapped", path(el))
            return None
        use(el)
        q: dict[str, Any] = {"value": num}
        unit = value(el, "unit")
        if unit:
            q.update(unit=unit, system=UCUM, code=unit)
        return q

    def identifier(self, el: etree._Element | None) -> dict[str, str] | None:
        """An Identifier for an II: root and extension as system and value; a root alone is the value itself."""
        if el is None or el.get("nullFlavor"):
            return None
        root, ext = value(el, "root"), value(el, "extension")
        if not root:
            return None
        use(el)
        if ext:
            return {"system": C.id_system(root), "value": ext}
        return {"system": "urn:ietf:rfc:3986", "value": C.id_system(root)}

    def mark(self, *els: etree._Element | None) -> None:
        """Structural elements (templateId, typeId, ...) whose meaning the mapping already carries."""
        use(*els)


def ref(res: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"urn:uuid:{res['id']}"}


def kids(el: etree._Element | None, name: str) -> list[etree._Element]:
    return [] if el is None else [c for c in el if local(c) == name]


def kid(el: etree._Element | None, *names: str) -> etree._Element | None:
    for name in names:
        if el is None:
            return None
        el = next((c for c in el if local(c) == name), None)
    return el


def value(el: etree._Element | None, name: str) -> str:
    if el is None:
        return ""
    return (el.get(name) or "").strip()


def xsi_type(el: etree._Element | None) -> str:
    return (value(el, XSI_TYPE)).split(":")[-1]


def number(text: str) -> int | float | None:
    """The JSON number for a decimal text (an integer stays one); None when not a finite number, and for integers
    past 64 bits, which JSON writers (orjson) cannot write exactly."""
    t = text.strip()
    if not t:
        return None
    try:
        if t.lstrip("+-").isdigit():
            n = int(t)
            return n if -(2**63) <= n < 2**63 else None
        f = float(t)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def templates(el: etree._Element) -> list[str]:
    return [value(t, "root") for t in kids(el, "templateId")]


def narrative_ids(root: etree._Element) -> dict[str, str]:
    """Every narrative element with an ID → its text (whitespace collapsed)."""
    out = {}
    for el in root.iter():
        if isinstance(el.tag, str) and el.get("ID"):
            out[el.get("ID")] = " ".join("".join(el.itertext()).split())
    return out


def absent(reason: str = "unknown") -> dict[str, Any]:
    """The data-absent-reason extension (R4 extension-data-absent-reason) for a required element the source lacks."""
    return {"extension": [{"url": C.DAR, "valueCode": reason}]}
