"""FHIR R4 Bundle → WS/T 500 lab (C0007) or examination (C0006) document, or an IPS document → the medical-record
summary (C0001)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from mappers.cda_cn.context import Notes
from mappers.cda_cn.model import Id, Report
from mappers.cda_cn.read_fhir import read_bundle
from mappers.cda_cn.safexml import parse_xml
from mappers.cda_cn.summary import from_ips, is_ips
from mappers.cda_cn.systems import OID_DOC_ID
from mappers.cda_cn.validate import check
from mappers.cda_cn.write import serialize, write_document
from mappers.conversion import load_bundle
from mappers.exceptions import EmitError, Issue, ParseError, operation_outcome

ENCODINGS = {"utf-8": "UTF-8", "gb18030": "GB18030"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")  # what XML 1.0 cannot carry


def _check_xml_text(value: Any, where: str) -> None:
    """Every text the writer puts in the document is one XML 1.0 can carry (FHIR strings may hold control
    characters; lxml refuses them with a ValueError). Raises ParseError naming the model field."""
    if isinstance(value, str):
        if m := _NOT_XML.search(value):
            raise ParseError(f"the Bundle gives {where} the character U+{ord(m.group()):04X}, which XML cannot carry",
                             details="fhir-not-xml-text", expression="Bundle")
    elif isinstance(value, tuple | list):
        for n, v in enumerate(value):
            _check_xml_text(v, f"{where}[{n}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_xml_text(v, f"{where}[{k!r}]")
    elif hasattr(value, "__dataclass_fields__"):
        for f in fields(value):
            _check_xml_text(getattr(value, f.name), f"{where}.{f.name}")


@dataclass(frozen=True, slots=True)
class CdaDocument:
    data: bytes
    encoding: str
    issues: tuple[Issue, ...] = field(default=())

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


DOCUMENTS = ("summary", "report")  # C0001 from an IPS document | the lab/exam record (C0007/C0006) of a report


def from_fhir(bundle: bytes | str | dict[str, Any], encoding: str = "utf-8",
              document: str | None = None) -> CdaDocument:
    """Bundle → CDA: an IPS document gives the medical-record summary (C0001, mappers.cda_cn.summary) unless
    `document` is 'report'; any other Bundle (or 'report') the lab or exam record of its DiagnosticReport.
    Raises ParseError (not a Bundle) or EmitError (no report or patient, a summary asked of a Bundle that is not an
    IPS document, or a result that would not be structurally valid CDA R2)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {sorted(ENCODINGS)}")
    if document not in (None, *DOCUMENTS):
        raise ValueError(f"document must be one of {DOCUMENTS}")
    notes = Notes()
    loaded = load_bundle(bundle)
    if document == "summary" or (document is None and is_ips(loaded)):
        if not is_ips(loaded):
            raise EmitError("a WS/T 500 medical-record summary (C0001) is written from an IPS document (a document "
                            "Bundle whose Composition is LOINC 60591-5); convert the input --to ips first",
                            details="cda-not-ips", expression="Bundle.entry[0].resource.type")
        _check_xml_text(loaded, "Bundle")
        root = from_ips(loaded, notes)
    else:
        report = read_bundle(loaded, notes)
        report = _fill_required(report, notes)
        _check_xml_text(report, "Report")
        root = write_document(report)
    data = serialize(root, ENCODINGS[encoding])
    problems = check(parse_xml(data)[0])  # re-parsed, so problems name output lines
    if problems:
        raise EmitError(f"the generated document is not valid CDA R2: {problems[0]}", details="cda-invalid-output",
                        expression="ClinicalDocument")
    return CdaDocument(data, encoding, tuple(notes.issues))


def _fill_required(report: Report, notes: Notes) -> Report:
    """CDA needs a document id and an effectiveTime; name what was missing and how it was filled."""
    from dataclasses import replace

    if report.doc_id is None:
        key = next((i.extension for i in report.ids), "") or report.patient.name or "document"
        report = replace(report, doc_id=Id(OID_DOC_ID, f"HG-{report.type_code}-{key}"))
        notes.warn("cda-document-id-generated", "the Bundle has no Composition.identifier; the document id was "
                   "derived from the report number", "ClinicalDocument/id")
    if not report.effective_time:
        raise EmitError("no time for ClinicalDocument/effectiveTime: the Bundle has no Composition.date, "
                        "DiagnosticReport.issued or effectiveDateTime", details="cda-no-effective-time",
                        expression="DiagnosticReport.issued")
    if not report.authors:
        notes.warn("cda-no-author", "no Practitioner authored the report; the author is written with a null id",
                   "ClinicalDocument/author")
    if report.custodian is None:
        notes.warn("cda-no-custodian", "no custodian organisation; written with a null id",
                   "ClinicalDocument/custodian")
    return report
