"""Writing CDA R2 datatypes from FHIR R4 ones, and reading the input Bundle (references resolved inside it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from mappers.cda_cn.times import fhir_to_ts
from mappers.ehdsi_cda import codes as C
from mappers.exceptions import Issue

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {None: V3, "xsi": XSI}


def el(parent: etree._Element | None, name: str, **attrs: str) -> etree._Element:
    """A CDA element in the v3 namespace (attributes with a '' value are left out)."""
    a = {k.rstrip("_"): v for k, v in attrs.items() if v != ""}
    if parent is None:
        return etree.Element(f"{{{V3}}}{name}", a, nsmap=NSMAP)
    return etree.SubElement(parent, f"{{{V3}}}{name}", a)


def typed(parent: etree._Element, name: str, xsi_type: str, **attrs: str) -> etree._Element:
    e = el(parent, name, **attrs)
    e.set(f"{{{XSI}}}type", xsi_type)
    return e


def text_el(parent: etree._Element, name: str, text: str) -> etree._Element:
    e = el(parent, name)
    e.text = text
    return e


@dataclass(slots=True)
class Writer:
    """The input Bundle's resources by reference, and what could not be written."""

    by_ref: dict[str, dict[str, Any]]
    issues: list[Issue] = field(default_factory=list)
    current: str = ""  # the resource being written (named when its content cannot be read)
    reached: dict[int, dict[str, Any]] = field(default_factory=dict)  # every resource the writer read

    def get(self, reference: dict[str, Any] | None) -> dict[str, Any] | None:
        if not isinstance(reference, dict):
            return None
        if "reference" in reference and not isinstance(reference["reference"], str):
            raise TypeError("Reference.reference must be a string")  # refused at the writer's boundary
        if "reference" not in reference:
            return None
        found = self.by_ref.get(reference["reference"])
        if not isinstance(found, dict):
            return None
        self.reached[id(found)] = found
        return found

    def lost(self, details: str, message: str, where: str | None = None, severity: str = "information") -> None:
        issue = Issue(severity, "informational" if severity == "information" else "value", details, message, where)
        if issue not in self.issues:
            self.issues.append(issue)

    def code(self, parent: etree._Element, name: str, cc: dict[str, Any] | None, xsi_type: str = "",
             where: str = "") -> etree._Element:
        """A CD for a CodeableConcept: the first coding whose system has an OID, the others as translations,
        text as originalText; with no coding that CDA can name, nullFlavor OTH with the text."""
        out = el(parent, name)
        if xsi_type:
            out.set(f"{{{XSI}}}type", xsi_type)
        cc = cc or {}
        codings = []
        for c in cc.get("coding", []):
            oid = C.system_oid(c.get("system", ""))
            if oid and c.get("code"):
                codings.append((oid, c))
            elif c.get("code"):
                self.lost("ehdsi-code-system-no-oid", f"code {c.get('code')!r} of system {c.get('system')!r} has no "
                          "OID for CDA; not written", where or None)
        if not codings:
            out.set("nullFlavor", "OTH" if cc.get("text") or cc.get("coding") else "UNK")
        for n, (oid, c) in enumerate(codings):
            if n == 0:  # CDA R2 CD: originalText before translation
                _fill(out, oid, c)
                if cc.get("text"):
                    text_el(out, "originalText", cc["text"])
            else:
                _fill(el(out, "translation"), oid, c)
        if not codings and cc.get("text"):
            text_el(out, "originalText", cc["text"])
        return out

    def ids(self, parent: etree._Element, idents: list[dict[str, Any]] | dict[str, Any] | None,
            required: bool = False) -> None:
        if isinstance(idents, dict):
            idents = [idents]
        done = False
        for i in idents or []:
            system, val = i.get("system", ""), i.get("value", "")
            if system == "urn:ietf:rfc:3986" and val:
                root = C.id_root(val)
                if root:
                    el(parent, "id", root=root)
                    done = True
                    continue
            root = C.id_root(system)
            if root and val:
                el(parent, "id", root=root, extension=val)
                done = True
            elif val:
                self.lost("ehdsi-identifier-no-oid", f"identifier system {system!r} has no OID for CDA; not written")
        if not done and required:
            el(parent, "id", nullFlavor="NI")


def _fill(target: etree._Element, oid: str, c: dict[str, Any]) -> None:
    target.set("code", c["code"])
    target.set("codeSystem", oid)
    if c.get("version"):
        target.set("codeSystemVersion", c["version"])
    if c.get("display"):
        target.set("displayName", c["display"])


def ts(parent: etree._Element, name: str, value: str | None, absent: bool = False) -> etree._Element | None:
    """A TS for a FHIR date/dateTime (nullFlavor UNK when `absent` and there is none)."""
    v = fhir_to_ts(value) if value else ""
    if v:
        return el(parent, name, value=v)
    if absent:
        return el(parent, name, nullFlavor="UNK")
    return None


def ivl(parent: etree._Element, name: str, single: str | None, period: dict[str, Any] | None,
        absent: bool = True) -> etree._Element | None:
    """An IVL_TS: a single time as @value, a Period as low/high."""
    if single:
        return typed(parent, name, "IVL_TS", value=fhir_to_ts(single)) if fhir_to_ts(single) else None
    if period and (period.get("start") or period.get("end")):
        out = typed(parent, name, "IVL_TS")
        if period.get("start"):
            ts(out, "low", period["start"])
        else:
            el(out, "low", nullFlavor="UNK")
        if period.get("end"):
            ts(out, "high", period["end"])
        return out
    if absent:
        return typed(parent, name, "IVL_TS", nullFlavor="UNK")
    return None


def pq(parent: etree._Element, name: str, q: dict[str, Any], xsi_type: str = "PQ") -> etree._Element:
    out = el(parent, name) if not xsi_type else typed(parent, name, xsi_type)
    if q.get("value") is None:
        out.set("nullFlavor", "UNK")
        return out
    out.set("value", _num(q["value"]))
    unit = q.get("code") if q.get("system") == "http://unitsofmeasure.org" else q.get("unit")
    if unit:
        out.set("unit", unit)
    return out


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return repr(v).rstrip("0").rstrip(".") if "e" not in repr(v) else repr(v)
    return str(v)


def absent(res: dict[str, Any], key: str) -> bool:
    """Whether `key` is stated absent (a data-absent-reason extension on `_key`)."""
    return any(e.get("url") == C.DAR for e in (res.get(f"_{key}") or {}).get("extension", []))
