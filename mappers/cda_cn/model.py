"""The national lab/exam report as plain data: what a WS/T 500 document or a WS 445 dataset says, format-free.

Both China formats parse into `Report` and are written from it, so FHIR emission and reading exist once.
Times are kept as the source wrote them (HL7 TS `YYYYMMDD[HHMM[SS]][+ZZZZ]`); codes keep their OID system.
`where` fields hold a source location (an XPath, or a WS 445 key such as `items[0]`) for issues and origins;
`paths` name the source of single fields (field name → XPath or key), so an output element can name its source.
They do not take part in comparisons: the same facts from another place are the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Id:
    root: str  # OID
    extension: str


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    system: str = ""  # OID, or a URI when the source was FHIR and had no OID
    display: str = ""
    system_name: str = ""


@dataclass(frozen=True, slots=True)
class Party:
    """A person (author, authenticator) or organisation: name, ids, and for people a role and a time."""

    name: str = ""
    ids: tuple[Id, ...] = ()
    role: str = ""
    time: str = ""
    paths: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Patient:
    ids: tuple[Id, ...] = ()  # patientRole/id and patient/id (the resident ID is root 2.16.156.10011.1.3)
    id_documents: tuple[tuple[str, str], ...] = ()  # (CV02.01.101 type code, number) from WS 445
    name: str = ""
    gender: Code | None = None
    birth_time: str = ""
    age: tuple[str, str] | None = None  # (value, unit 岁|月)
    marital: Code | None = None
    ethnicity: Code | None = None
    nationality: Code | None = None
    telecom: tuple[str, ...] = ()
    address: tuple[tuple[str, str], ...] = ()  # (DE02.01.009.0n, text)
    where: str = ""
    paths: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Specimen:
    type: str = ""
    status: str = ""
    collected: str = ""
    received: str = ""
    fixative: str = ""
    number: str = ""
    paths: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Item:
    """One organizer (CLUSTER) of the results section: a test with its result and specimen."""

    code: str = ""
    code_system: str = ""  # OID when the source gave one (value CD); '' = local code of the organisation
    name: str = ""
    time: str = ""
    value: str = ""  # DE04.30.015.00, as written
    unit: str = ""  # DE04.30.016.00, as written
    text: str = ""  # a textual result (e.g. a genetic finding)
    result_code: Code | None = None  # DE04.30.017.00
    interpretation: tuple[Code, ...] = ()  # interpretationCode (H, L, N, A, POS, NEG…)
    ref_low: str = ""
    ref_high: str = ""
    ref_unit: str = ""
    ref_text: str = ""
    specimen: Specimen | None = None
    status: str = ""  # the organizer's statusCode (v3 ActStatus), '' when not stated
    absent: str = ""  # the result's nullFlavor (v3 NullFlavor) when the value is explicitly absent
    where: str = ""
    paths: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    code: Code
    name: str = ""
    date: str = ""
    where: str = ""
    paths: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Encounter:
    patient_type: Code | None = None
    start: str = ""
    end: str = ""
    locations: tuple[tuple[str, Id | None, str], ...] = ()  # (kind bed|room|dept|ward, id, name)


@dataclass(frozen=True, slots=True)
class Report:
    kind: str  # 'lab' | 'exam'
    type_code: str  # C0006 | C0007
    title: str = ""
    doc_id: Id | None = None
    effective_time: str = ""
    set_id: Id | None = None
    version: str = ""
    patient: Patient = field(default_factory=Patient)
    authors: tuple[Party, ...] = ()
    legal_authenticator: Party | None = None
    authenticators: tuple[Party, ...] = ()
    custodian: Party | None = None
    requester_department: Party | None = None
    requester_organization: Party | None = None
    encounter: Encounter | None = None
    diagnoses: tuple[Diagnosis, ...] = ()
    method: str = ""
    category: str = ""
    items: tuple[Item, ...] = ()
    conclusion: str = ""  # lab DE04.50.130.00, or exam impression DE04.50.132.00
    findings: str = ""  # exam DE04.50.131.00
    chief_complaint: str = ""
    report_department: str = ""
    report_organization: str = ""
    remarks: str = ""
    report_date: str = ""
    ids: tuple[Id, ...] = ()  # report-level ids: report number (.32/.33), order number (.24), pathology (.8)
    confidentiality: Code | None = None
    language: str = ""
    related: tuple[tuple[str, Id], ...] = ()  # relatedDocument: (typeCode RPLC|APND|XFRM, parent document id)
    results_absent: str = ""  # nullFlavor of a results section that states it holds nothing
    unread: tuple[str, ...] = ()  # XPaths of body entries that hold content no reader recognised
    empty: tuple[str, ...] = ()  # XPaths of result entries that carry no value at all (a blank template)
    paths: dict[str, str] = field(default_factory=dict, compare=False)
