"""WS 445 dataset (JSON keyed by WS 363 data-element ids) ⇄ the national Report model.

The JSON shape is fixed by schema/ws445-lab-exam-dataset.schema.json, checked on input (jsonschema, draft 2020-12).
Which DE lands where is data (the tables below), the rest is plain code.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import orjson

from mappers.cda_cn import systems as S
from mappers.cda_cn.context import Notes
from mappers.cda_cn.emit import fhir_number
from mappers.cda_cn.model import Code, Diagnosis, Id, Item, Party, Patient, Report, Specimen
from mappers.exceptions import EmitError, ParseError

SCHEMA_PATH = Path(__file__).parent / "schema" / "ws445-lab-exam-dataset.schema.json"
DE_KEY = re.compile(r"^DE\d{2}\.\d{2}\.\d{3}\.\d{2}(\.\d{3})?$")
GROUP_KEYS = {"dataset", "items", "diagnoses"}
# Patient-level numbers → the CDA identifier OID that carries the same number.
PATIENT_IDS = {"DE01.00.010.00": "2.16.156.10011.1.11", "DE01.00.014.00": "2.16.156.10011.1.12",
               "DE01.00.004.00": "2.16.156.10011.1.13", "DE01.00.021.00": "2.16.156.10011.1.19"}
REPORT_TEXT = {"DE02.10.027.00": "method", "DE04.30.018.00": "category", "DE04.50.131.00": "findings",
               "DE04.01.119.00": "chief_complaint", "DE08.10.026.00": "report_department",
               "DE08.10.013.00": "report_organization", "DE06.00.179.00": "remarks"}
ADDRESS = tuple(f"DE02.01.009.0{n}" for n in range(1, 7))
KINDS = {"检验记录": "lab", "检查记录": "exam"}
_MAX_MESSAGE = 200  # jsonschema quotes the offending value whole; a report names it, it does not repeat it


@cache
def _checker() -> jsonschema.Draft202012Validator:
    """The dataset schema's validator, built once, its local $refs inlined (resolving a $ref per item made checking
    a large dataset twice as slow)."""
    return jsonschema.Draft202012Validator(_inline(schema(), schema().get("$defs", {})))


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **_inline(rest, defs)}
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def looks_like(doc: Any) -> bool:
    """A JSON object whose keys are data-element ids (plus the group keys), with at least one DE key."""
    return (isinstance(doc, dict) and any(DE_KEY.match(k) for k in doc)
            and all(DE_KEY.match(k) or k in GROUP_KEYS for k in doc))


def _path(error: jsonschema.ValidationError) -> str:
    out = ""
    for p in error.absolute_path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(dataset)"


def load(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Parse and schema-check a dataset. Raises ParseError naming the offending key (JSON path)."""
    if isinstance(data, dict):
        doc = data
    else:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ParseError(f"the dataset is not valid JSON: {e}", details="ws445-bad-json") from None
    if not isinstance(doc, dict):
        raise ParseError("a WS 445 dataset is a JSON object keyed by data-element ids", details="ws445-not-object",
                         expression="(dataset)")
    _check_depth(doc)
    errors = sorted(_checker().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        message = _short(first)
        raise ParseError(f"the dataset does not match the WS 445 schema at {_path(first)}: {message}{more}",
                         details="ws445-schema", expression=_path(first))
    return doc


_MAX_DEPTH = 4  # dataset → items → item → value; anything deeper is not a dataset (and would exhaust recursion)


def _check_depth(doc: dict[str, Any]) -> None:
    """Refuse nesting no dataset has before the schema check recurses into it (JSON parsers accept any depth)."""
    stack: list[tuple[Any, int, str]] = [(doc, 1, "(dataset)")]
    while stack:
        node, depth, where = stack.pop()
        kids = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in kids:
            if isinstance(value, dict | list):
                at = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
                if depth + 1 > _MAX_DEPTH:
                    raise ParseError(f"the dataset nests deeper than a WS 445 dataset can (at {at})",
                                     details="ws445-schema", expression=at.removeprefix("(dataset)."))
                stack.append((value, depth + 1, at))


def _short(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, the offending value it quotes cut short (the path names it), the rule kept."""
    message, quoted = error.message, repr(error.instance)
    if len(message) <= _MAX_MESSAGE:
        return message
    if message.startswith(quoted):
        return f"{quoted[:80]}…{message[len(quoted):][:_MAX_MESSAGE]}"
    return f"{message[:_MAX_MESSAGE]}… ({error.validator})"


def _dt(value: str) -> str:
    return value.replace("T", "")


def _s(v: Any) -> str:
    return "" if v is None else str(v)


class _Taken:
    """The dataset keys a reading used, so every data element left over is reported (WS 445 DE ids)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def get(self, obj: dict[str, Any], key: str, prefix: str = "", default: Any = None) -> Any:
        if key in obj:
            self.keys.add(prefix + key)
            return obj[key]
        return default

    def unused(self, doc: dict[str, Any], notes: Notes) -> None:
        """One information issue per data-element id not mapped, with how many times and where first."""
        left: dict[str, list[str]] = {}
        for key in doc:
            if key not in GROUP_KEYS and key not in self.keys:
                left.setdefault(key, []).append(key)
        for group in ("items", "diagnoses"):
            for n, obj in enumerate(doc.get(group) or []):
                for key in obj:
                    if f"{group}[{n}].{key}" not in self.keys:
                        left.setdefault(key, []).append(f"{group}[{n}].{key}")
        for de, where in left.items():
            notes.inform("ws445-element-not-mapped", f"{de} ({len(where)}x) was not mapped: {_why(de)}", where[0])


def _why(de: str) -> str:
    return {"DE04.50.130.00": "an exam dataset's conclusion is DE04.50.132.00",
            "DE04.50.132.00": "a lab dataset's conclusion is DE04.50.130.00",
            "DE02.01.032.00": "the age in years (DE02.01.026.00) is given",
            "DE02.01.031.00": "there is no ID number (DE02.01.030.00) it types"}.get(de, "no emitter reads it")


def to_report(doc: dict[str, Any], notes: Notes) -> Report:
    """Dataset → Report; every data element no field takes is reported (ws445-element-not-mapped)."""
    t = _Taken()
    kind = KINDS.get(t.get(doc, "dataset", default="检验记录"), "lab")
    ids: list[Id] = [Id(root, _s(t.get(doc, de))) for de, root in PATIENT_IDS.items() if de in doc]
    id_docs: list[tuple[str, str]] = []
    if "DE02.01.030.00" in doc:
        type_code = t.get(doc, "DE02.01.031.00")
        if type_code is None:
            notes.inform("ws445-id-type-assumed", "DE02.01.030.00 has no type (DE02.01.031.00); read as a resident "
                         "identity card (01)", "DE02.01.030.00")
            type_code = "01"
        id_docs.append((type_code, t.get(doc, "DE02.01.030.00")))
    age = None
    if "DE02.01.026.00" in doc:
        age = (_s(t.get(doc, "DE02.01.026.00")), "岁")
    elif "DE02.01.032.00" in doc:
        age = (_s(t.get(doc, "DE02.01.032.00")), "月")
    sex = t.get(doc, "DE02.01.040.00")
    marital, ethnic = t.get(doc, "DE02.01.018.00"), t.get(doc, "DE02.01.025.00")
    phone = t.get(doc, "DE02.01.010.00")
    patient = Patient(
        ids=tuple(ids), id_documents=tuple(id_docs), name=t.get(doc, "DE02.01.039.00"),
        gender=Code(sex, S.OID_SEX) if sex else None, birth_time=t.get(doc, "DE02.01.005.01", default=""), age=age,
        marital=Code(marital, S.OID_MARITAL) if marital else None,
        ethnicity=Code(ethnic, S.OID_ETHNICITY) if ethnic else None,
        telecom=(f"tel:{phone}",) if phone else (),
        address=tuple((k, t.get(doc, k)) for k in ADDRESS if k in doc), where="DE02.01",
        paths={"birth_time": "DE02.01.005.01",
               "ids": next((k for k in ("DE02.01.030.00", *PATIENT_IDS) if k in doc), "DE02.01.039.00")})
    items = [_read_item(t, it, n) for n, it in enumerate(t.get(doc, "items", default=[]))]
    diagnoses = []
    for n, d in enumerate(t.get(doc, "diagnoses", default=[])):
        at = f"diagnoses[{n}]."
        name = t.get(d, "DE05.01.025.00", at, "")
        diagnoses.append(Diagnosis(Code(t.get(d, "DE05.01.024.00", at), S.OID_ICD10_CN, name), name, "",
                                   f"diagnoses[{n}]", paths={"code": f"{at}DE05.01.024.00"}))
    report_ids: tuple[Id, ...] = ()
    if "DE01.00.018.00" in doc:
        report_ids = (Id("2.16.156.10011.1.33" if kind == "lab" else "2.16.156.10011.1.32",
                         t.get(doc, "DE01.00.018.00")),)
    text = {field: t.get(doc, de) for de, field in REPORT_TEXT.items() if de in doc}
    conclusion_de = "DE04.50.130.00" if kind == "lab" else "DE04.50.132.00"
    conclusion = t.get(doc, conclusion_de, default="")
    org = doc.get("DE08.10.013.00")
    date = t.get(doc, "DE04.50.133.00", default="")
    paths = {"effective_time": "DE04.50.133.00", "report_date": "DE04.50.133.00", "ids": "DE01.00.018.00",
             "conclusion": conclusion_de, **{field: de for de, field in REPORT_TEXT.items()}}
    t.unused(doc, notes)
    return Report(kind=kind, type_code="C0007" if kind == "lab" else "C0006", effective_time=date, report_date=date,
                  patient=patient, custodian=Party(org) if org else None, diagnoses=tuple(diagnoses),
                  items=tuple(items), conclusion=conclusion, ids=report_ids, paths=paths, **text)


def _read_item(t: _Taken, it: dict[str, Any], n: int) -> Item:
    at = f"items[{n}]."
    spec = None
    if any(k in it for k in ("DE04.50.134.00", "DE04.50.135.00", "DE04.50.137.00", "DE04.50.141.00")):
        spec = Specimen(type=t.get(it, "DE04.50.134.00", at, ""), status=t.get(it, "DE04.50.135.00", at, ""),
                        collected=_dt(t.get(it, "DE04.50.137.00", at, "")),
                        received=_dt(t.get(it, "DE04.50.141.00", at, "")),
                        paths={"collected": f"{at}DE04.50.137.00", "received": f"{at}DE04.50.141.00"})
    rc = t.get(it, "DE04.30.017.00", at)
    return Item(code=t.get(it, "DE04.30.019.00", at, ""), name=t.get(it, "DE04.30.020.00", at, ""),
                time=_dt(t.get(it, "DE04.50.140.00", at, "")), value=_s(t.get(it, "DE04.30.015.00", at)),
                unit=t.get(it, "DE04.30.016.00", at, ""), text=t.get(it, "DE04.50.130.00", at, ""),
                result_code=Code(rc, S.OID_RESULT_CODE) if rc else None, specimen=spec, where=f"items[{n}]",
                paths={"code": f"{at}DE04.30.019.00", "time": f"{at}DE04.50.140.00",
                       "value": f"{at}DE04.30.015.00", "result": f"{at}DE04.30.017.00" if rc else
                       f"{at}DE04.50.130.00"})


def _number(value: str) -> int | float | str:
    """A JSON number when FHIR could carry it (finite, at most 18 digits), else the text as written."""
    number = fhir_number(value)
    return value if number is None else number


def from_report(r: Report, notes: Notes) -> dict[str, Any]:
    """Report → dataset dict (schema-checked). Facts WS 445 has no element for are reported, not invented."""
    doc: dict[str, Any] = {"dataset": "检验记录" if r.kind == "lab" else "检查记录"}
    p = r.patient
    if not p.name:
        raise EmitError("the patient has no name; DE02.01.039.00 is required", details="ws445-no-name",
                        expression="Patient.name")
    doc["DE02.01.039.00"] = p.name
    if p.gender:
        doc["DE02.01.040.00"] = p.gender.code
    if p.birth_time:
        doc["DE02.01.005.01"] = p.birth_time[:8]
    if p.age:
        age = p.age[0]  # a number when it is one (int() of '²' or of thousands of digits raises); the schema checks it
        doc["DE02.01.026.00" if p.age[1] == "岁" else "DE02.01.032.00"] = int(age) \
            if age.isascii() and age.isdigit() and len(age) <= 18 else age
    resident = next((i for i in p.ids if i.root == S.OID_RESIDENT_ID), None)
    if resident:
        doc["DE02.01.030.00"], doc["DE02.01.031.00"] = resident.extension, "01"
    elif p.id_documents:
        doc["DE02.01.031.00"], doc["DE02.01.030.00"] = p.id_documents[0]
    if p.ethnicity:
        doc["DE02.01.025.00"] = p.ethnicity.code
    if p.marital:
        doc["DE02.01.018.00"] = p.marital.code
    if p.telecom:
        doc["DE02.01.010.00"] = p.telecom[0].removeprefix("tel:")
    for key, value in p.address:
        if key in ADDRESS:
            doc[key] = value
    for de, root in PATIENT_IDS.items():
        hit = next((i.extension for i in p.ids if i.root == root), None)
        if hit:
            doc[de] = hit
    number = next((i.extension for i in r.ids if i.root in ("2.16.156.10011.1.32", "2.16.156.10011.1.33")), None)
    if number:
        doc["DE01.00.018.00"] = number
    if r.effective_time or r.report_date:
        doc["DE04.50.133.00"] = (r.report_date or r.effective_time)[:8]
    for de, field in REPORT_TEXT.items():
        if getattr(r, field):
            doc[de] = getattr(r, field)
    if r.conclusion:
        doc["DE04.50.130.00" if r.kind == "lab" else "DE04.50.132.00"] = r.conclusion
    doc["items"] = [_item(i, notes) for i in r.items]
    if r.diagnoses:
        doc["diagnoses"] = [{"DE05.01.024.00": d.code.code, **({"DE05.01.025.00": d.name} if d.name else {})}
                            for d in r.diagnoses]
        for d in r.diagnoses:
            if d.code.system != S.OID_ICD10_CN:
                notes.warn("ws445-diagnosis-system", f"diagnosis {d.code.code} is not coded in the national ICD-10 "
                           "clinical edition; written as it is", "Condition.code")
    dropped = [what for what, present in (
        ("reference ranges", any(i.ref_low or i.ref_high or i.ref_text for i in r.items)),
        ("interpretation flags", any(i.interpretation for i in r.items)),
        ("authors and authenticators", bool(r.authors or r.legal_authenticator or r.authenticators)),
        ("the document id", r.doc_id is not None)) if present]
    if dropped:
        notes.inform("ws445-not-carried", f"WS 445 has no data element for {', '.join(dropped)}; not written",
                     "Bundle")
    if not doc["items"]:
        raise EmitError("the report has no results; a WS 445 lab/exam dataset needs at least one item",
                        details="ws445-no-items", expression="DiagnosticReport.result")
    load(doc)  # our own output must match the schema we ship
    return doc


def _item(i: Item, notes: Notes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if i.code:
        out["DE04.30.019.00"] = i.code
    if i.name:
        out["DE04.30.020.00"] = i.name
    if not out:
        out["DE04.30.020.00"] = "(未命名项目)"
        notes.warn("ws445-item-without-code", "a result has neither a code nor a name", i.where)
    if i.value:
        out["DE04.30.015.00"] = _number(i.value)
        if i.unit:
            out["DE04.30.016.00"] = i.unit
    if i.result_code:
        out["DE04.30.017.00"] = i.result_code.code
    if i.text:
        out["DE04.50.130.00"] = i.text
    if i.time:
        out["DE04.50.140.00"] = f"{i.time[:8]}T{i.time[8:14]}" if len(i.time) >= 14 else i.time[:8]
    sp = i.specimen
    if sp:
        for de, value in (("DE04.50.134.00", sp.type), ("DE04.50.135.00", sp.status)):
            if value:
                out[de] = value
        for de, value in (("DE04.50.137.00", sp.collected), ("DE04.50.141.00", sp.received)):
            if len(value) >= 14:
                out[de] = f"{value[:8]}T{value[8:14]}"
    return out
