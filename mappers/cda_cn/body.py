"""The body of a WS/T 500 lab or exam document: result items (organizer CLUSTERs, flat entry runs, coded results),
diagnoses and the report-level data elements, section by section.

Results arrive in two layouts: the part 6/7 templates' organizer CLUSTER (one per item, its components the item's
data elements), and flat section entries, as several implementers' generators write them: DE04.30.019.00 (item code,
specimen nested), DE04.30.017.00, DE04.30.015.00 (unit nested) as sibling entries, one run per item. An item code
starts the next item, as does any element the current item already has. A section entry that is a coded test with a
value (no DE code) is a result too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lxml import etree

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes
from mappers.cda_cn.coverage import has_content, use
from mappers.cda_cn.model import Diagnosis, Item, Specimen
from mappers.cda_cn.tables import data_element, results_section
from mappers.cda_cn.xmlread import (
    CODED,
    attr,
    cd,
    de_code,
    kid,
    kids,
    nested,
    not_mapped,
    st,
    text_of,
    ts_of,
    used_attr,
    val,
    value_of,
)
from mappers.cda_cn.xpath import local
from mappers.cda_cn.xpath import path as xpath_of

ITEM_DES = {"DE04.30.019.00": "code", "DE04.30.020.00": "name", "DE04.30.017.00": "result",
            "DE04.30.015.00": "value", "DE04.30.016.00": "unit", "DE04.50.134.00": "specimen",
            "DE04.50.135.00": "specimen-status", "DE08.50.027.00": "fixative"}


class ItemReader:
    """One result item gathered from its data-element observations (an organizer's components, or a flat run)."""

    def __init__(self, start: etree._Element, notes: Notes, specimen_no: str) -> None:
        self.notes = notes
        self.specimen_no = specimen_no
        self.fields: dict[str, Any] = {"where": xpath_of(start)}
        self.paths: dict[str, str] = {}
        self.spec: dict[str, str] = {}
        self.spec_paths: dict[str, str] = {}
        self.slots: set[str] = set()
        self.start = start

    def has(self, de: str) -> bool:
        return ITEM_DES[de] in self.slots

    def starts_next(self, de: str) -> bool:
        """In a flat run, `de` begins the next item: an item code always does (the templates write it first; only
        a name may come before it), any other element when this item already has it."""
        if de == "DE04.30.019.00":
            return not self.slots <= {"name"}
        return self.has(de)

    def add(self, obs: etree._Element, de: str) -> None:
        self.slots.add(ITEM_DES[de])
        kind, v = value_of(obs)
        where = xpath_of(v if v is not None else obs)
        if v is not None and v.get("nullFlavor") and de in ("DE04.30.015.00", "DE04.30.017.00"):
            self.fields["absent"] = v.get("nullFlavor")
            self.paths["absent"] = where
            use(v)
        if de == "DE04.30.019.00":
            if kind in CODED and v is not None:
                code = cd(v)
                if code:
                    self.fields.update(code=code.code, code_system=code.system)
                    if code.display:
                        self.fields["name"] = code.display
            else:
                self.fields["code"] = st(obs)
            self.paths["code"] = where
            eff = kid(obs, "effectiveTime")
            self.fields["time"] = ts_of(eff)
            self.paths["time"] = xpath_of(eff)
            for sub in nested(obs):
                self._under_code(sub)
        elif de == "DE04.30.020.00":
            self.fields["name"] = st(obs)
        elif de == "DE04.30.017.00":
            if kind in CODED and v is not None:
                self.fields["result_code"] = cd(v)
            else:
                self.fields["text"] = st(obs)
            self.paths["result"] = where
        elif de == "DE04.30.015.00":
            self._quantitative(obs, kind, v, where)
        elif de == "DE04.30.016.00":
            self.fields["unit"] = st(obs)
        elif de == "DE04.50.134.00":
            self._specimen(obs)
        elif de == "DE04.50.135.00":
            self.spec["status"] = st(obs)
        elif de == "DE08.50.027.00":
            self.spec["fixative"] = st(obs)

    def _under_code(self, sub: etree._Element) -> None:
        sde = de_code(sub)
        label = attr(kid(sub, "code"), "displayName")
        if sde == "DE04.50.134.00" or (sde == "DE04.30.019.00" and "标本类别" in label):
            use(kid(sub, "code"))
            self._specimen(sub)
        elif sde == "DE04.50.135.00":
            self.spec["status"] = st(sub)
        elif sde == "DE08.50.027.00" or "固定液" in label:  # the part 6 template reuses DE04.30.019.00 for it
            use(kid(sub, "code"))
            self.spec["fixative"] = st(sub)
        elif sde == "DE04.30.020.00":
            self.fields["name"] = st(sub)
        else:
            not_mapped(self.notes, sub, f"{sde or label or 'an observation'} under the item code")

    def _specimen(self, obs: etree._Element) -> None:
        eff = kid(obs, "effectiveTime")
        low, high = kid(eff, "low"), kid(eff, "high")
        self.spec.update(type=st(obs), collected=ts_of(low), received=ts_of(high))
        self.spec_paths.update(collected=xpath_of(low), received=xpath_of(high))

    def _quantitative(self, obs: etree._Element, kind: str, v: etree._Element | None, where: str) -> None:
        self.fields["value"] = st(obs)
        self.paths["value"] = where
        if kind == "PQ" and v is not None and attr(v, "unit") not in ("", "1"):
            self.fields["unit"] = used_attr(v, "unit")
        for sub in nested(obs):
            if de_code(sub) == "DE04.30.016.00":
                self.fields["unit"] = st(sub)
            else:
                not_mapped(self.notes, sub, "an observation under the quantitative result")
        self.fields["interpretation"] = tuple(c for i in kids(obs, "interpretationCode") if (c := cd(i)))
        self.paths["interpretation"] = xpath_of(kid(obs, "interpretationCode"))
        rng = kid(obs, "referenceRange", "observationRange")
        if rng is not None:
            rv = kid(rng, "value")
            low, high = kid(rv, "low"), kid(rv, "high")
            self.fields.update(ref_low=used_attr(low, "value"), ref_high=used_attr(high, "value"),
                               ref_unit=used_attr(low, "unit") or used_attr(high, "unit"),
                               ref_text=text_of(kid(rng, "text")))

    def build(self) -> Item | None:
        """The item, or None when it names nothing and holds nothing (an empty template run)."""
        if self.spec or self.specimen_no:
            self.fields["specimen"] = Specimen(number=self.specimen_no, paths=self.spec_paths, **self.spec)
        content = any(self.fields.get(k) for k in ("code", "name", "value", "text", "result_code"))
        if not content:
            return None
        if not self.fields.get("code") and not self.fields.get("name"):
            self.notes.warn("cda-item-without-code", "a result has no item code (DE04.30.019.00) or name; kept with "
                            "text only", self.fields["where"])
        return Item(paths=self.paths, **self.fields)


def organizer(org: etree._Element, notes: Notes, specimen_no: str) -> list[Item]:
    """An organizer CLUSTER: one item from its DE components; coded result components are items of their own."""
    reader = ItemReader(org, notes, specimen_no)
    status = kid(org, "statusCode")
    reader.fields["status"] = used_attr(status, "code")
    reader.paths["status"] = xpath_of(status)
    extra: list[Item] = []
    for comp in kids(org, "component"):
        for obs in kids(comp, "observation"):
            de = de_code(obs)
            if de in ITEM_DES and not reader.has(de):
                reader.add(obs, de)
            elif de in ITEM_DES:
                notes.warn("cda-item-element-repeated", f"{de} appears twice in one organizer; the second was not "
                           "mapped", xpath_of(obs))
            elif not de and (coded := coded_result(obs, notes)):
                extra.append(coded)
            else:
                not_mapped(notes, obs, f"organizer component {de or 'without a DE code'}")
    item = reader.build()
    return [item, *extra] if item else extra


def coded_result(obs: etree._Element, notes: Notes) -> Item | None:
    """An observation coded with a test code (not a data element) and carrying a value: one result item, read as a
    DE04.30.015.00 result would be (value, unit, interpretation, reference range) or as DE04.30.017.00 when coded."""
    code_el = kid(obs, "code")
    kind, v = value_of(obs)
    if attr(code_el, "codeSystem") in ("", S.OID_DE) or not attr(code_el, "code") or v is None:
        return None
    reader = ItemReader(obs, notes, "")
    code = cd(code_el)
    if code is not None:
        reader.fields.update(code=code.code, code_system=code.system, name=code.display)
    reader.paths["code"] = xpath_of(code_el)
    eff = kid(obs, "effectiveTime")
    reader.fields["time"], reader.paths["time"] = ts_of(eff), xpath_of(eff)
    status = kid(obs, "statusCode")
    reader.fields["status"], reader.paths["status"] = used_attr(status, "code"), xpath_of(status)
    if v.get("nullFlavor"):
        reader.fields["absent"], reader.paths["absent"] = v.get("nullFlavor"), xpath_of(v)
        use(v)
    elif kind in CODED:
        reader.fields["result_code"], reader.paths["result"] = cd(v), xpath_of(v)
    else:
        reader._quantitative(obs, kind, v, xpath_of(v))
    return reader.build()



def share_specimen(items: list[Item]) -> list[Item]:
    """An item without specimen details uses the document's one described specimen, when there is one."""
    described = {i.specimen for i in items if i.specimen and (i.specimen.type or i.specimen.collected)}
    if len(described) != 1:
        return items
    only = next(iter(described))
    return [i if i.specimen in (None, only) or i.specimen.type or i.specimen.collected
            else replace(i, specimen=only) for i in items]


REPORT_FIELDS = {"DE02.10.027.00": "method", "DE04.30.018.00": "category", "DE04.50.130.00": "conclusion",
                  "DE04.50.131.00": "findings", "DE04.50.132.00": "conclusion", "DE08.10.026.00": "report_department",
                  "DE08.10.013.00": "report_organization", "DE06.00.179.00": "remarks",
                  "DE04.01.119.00": "chief_complaint", "DE04.50.133.00": "report_date"}


class Body:
    """The body's facts: results (organizers, flat runs, coded results), diagnoses, report-level elements."""

    def __init__(self, notes: Notes, specimen_no: str) -> None:
        self.notes = notes
        self.specimen_no = specimen_no
        self.items: list[Item] = []
        self.diagnoses: list[Diagnosis] = []
        self.fields: dict[str, str] = {}
        self.paths: dict[str, str] = {}
        self.unread: list[str] = []
        self.empty: list[str] = []
        self.absent = ""

    def section(self, section: etree._Element) -> None:
        code_el, title_el = kid(section, "code"), kid(section, "title")
        loinc = attr(code_el, "code") if attr(code_el, "codeSystem") in ("", S.OID_LOINC) else ""
        results = results_section(loinc, attr(code_el, "displayName") + val(title_el.text if title_el is not None
                                                                                else ""))
        use(code_el, title_el)  # the section's code and title say what it holds; its facts go to the entries
        if results and section.get("nullFlavor"):
            self.absent = section.get("nullFlavor") or ""
        run: ItemReader | None = None
        for entry in kids(section, "entry"):
            for stmt in (c for c in entry if isinstance(c.tag, str)):
                name = local(stmt)
                de = de_code(stmt) if name == "observation" else ""
                if de in ITEM_DES:
                    if run is None or run.starts_next(de):
                        self._end(run)
                        run = ItemReader(stmt, self.notes, self.specimen_no)
                    run.add(stmt, de)
                    continue
                if name == "organizer":
                    self._end(run)
                    run = None
                    found = organizer(stmt, self.notes, self.specimen_no)
                    self.items.extend(found)
                    if not found:
                        self._nothing(stmt)
                elif de:
                    self._de_entry(stmt, de)
                elif results and name == "observation" and (coded := coded_result(stmt, self.notes)):
                    self._end(run)
                    run = None
                    self.items.append(coded)
                else:
                    self._unread(stmt, f"entry <{name}>")
        self._end(run)

    def _end(self, run: ItemReader | None) -> None:
        if run is None:
            return
        item = run.build()
        if item is not None:
            self.items.append(item)
        elif run.fields.get("absent"):  # a result slot stated absent, naming no test
            self.absent = self.absent or run.fields["absent"]
        else:
            self.empty.append(run.fields["where"])

    def _nothing(self, org: etree._Element) -> None:
        """An organizer that gave no item: its results stated absent (a nullFlavor value), or left blank."""
        absent = next((v.get("nullFlavor") for v in org.iter() if isinstance(v.tag, str) and local(v) == "value"
                       and v.get("nullFlavor")), "")
        if absent:
            self.absent = self.absent or absent
        else:
            self.empty.append(xpath_of(org))

    def _de_entry(self, stmt: etree._Element, de: str) -> None:
        if de == "DE05.01.024.00":
            _, v = value_of(stmt)
            eff = kid(stmt, "effectiveTime")
            code = cd(v)
            if code:
                self.diagnoses.append(Diagnosis(code, code.display, ts_of(eff), xpath_of(stmt),
                                                paths={"date": xpath_of(eff), "code": xpath_of(v)}))
            else:
                self._unread(stmt, "diagnosis DE05.01.024.00 without a code")
            return
        if de in REPORT_FIELDS:
            key = REPORT_FIELDS[de]
            if key in self.fields and de != "DE04.50.132.00":
                self._unread(stmt, f"a second {de}")  # the first one is kept
                return
            value = st(stmt)
            if value:
                self.fields[key] = value
                _, v = value_of(stmt)
                self.paths[key] = xpath_of(v)
            return
        label = data_element(de).get("name", "")
        self._unread(stmt, f"entry {de} {label}".strip())

    def _unread(self, stmt: etree._Element, what: str) -> None:
        """An entry no reader recognised; it counts against a report without results when it holds content beyond
        its own code (a blank template entry does not)."""
        if any(has_content(e) for e in stmt.iter() if isinstance(e.tag, str) and e is not stmt
               and not (local(e) == "code" and e.getparent() is stmt)):
            self.unread.append(xpath_of(stmt))
        not_mapped(self.notes, stmt, what)


