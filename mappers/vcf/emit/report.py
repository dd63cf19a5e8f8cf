"""The resources around the variants: Patient, Specimen (the VCF sample), sequence-phase-relationship
Observations, BED files as GenomicDataFile DocumentReferences, GenomicStudyAnalysis + GenomicStudy (regions,
genome build, source class), and the genomic-report DiagnosticReport that ties them together.
"""

from __future__ import annotations

import base64
from typing import Any

from mappers.ids import resource_id
from mappers.toolkit import genomics
from mappers.toolkit.fhirtime import is_date
from mappers.vcf import reference
from mappers.vcf.context import Context
from mappers.vcf.emit import CATEGORY_LAB, GR, LOINC, SAMPLE_SYSTEM
from mappers.vcf.model import Header
from mappers.vcf.regions import Regions

DATA_FORMAT = "http://hl7.org/fhir/uv/genomics-reporting/CodeSystem/genomic-study-data-format-cs"
MAX_EMBEDDED_BED = 1 << 20  # larger BED files are described (size, SHA-1), not embedded
_REGION_ROLE = {"studied": "studied", "uncallable": "uncalled"}


def patient_identifier(options_patient: str | None, sample: str) -> dict[str, str]:
    """`system|value`, `value`, or (no --patient) the sample name under the helixgate sample system."""
    if options_patient is None:
        return {"system": SAMPLE_SYSTEM, "value": sample}
    system, sep, value = options_patient.partition("|")
    return {"system": system, "value": value} if sep and system else {"value": value if sep else system}


def patient(ctx: Context, header: Header) -> dict[str, Any]:
    """Reads --patient (identifier) and --sex (gender). The id is UUIDv5 of (system, value), as the HL7 v2
    mapper derives it, so both paths land on the same Patient."""
    ident = patient_identifier(ctx.options.patient, header.sample or "")
    res: dict[str, Any] = {"resourceType": "Patient",
                           "id": resource_id("Patient", ident.get("system", ""), ident["value"]),
                           "identifier": [ident]}
    if ctx.options.sex:
        res["gender"] = ctx.options.sex
    return res


def specimen(ctx: Context, header: Header) -> dict[str, Any]:
    """The VCF sample column (#CHROM line) as the Specimen the variants were called in."""
    sample = header.sample or ""
    res: dict[str, Any] = {"resourceType": "Specimen", "id": resource_id("Specimen", ctx.key, sample),
                           "identifier": [{"system": SAMPLE_SYSTEM, "value": sample}]}
    if ctx.subject:
        res["subject"] = ctx.subject
    return res


def phase_relationship(ctx: Context, first: str, second: str, cis: bool) -> dict[str, Any]:
    """Two variants of one phase set (same PS): Cis when on the same haplotype, else Trans."""
    return genomics.phase_relationship(resource_id("Observation", ctx.key, "phase", first, second),
                                       "Cis" if cis else "Trans", ctx.ref("Observation", first),
                                       ctx.ref("Observation", second), subject=ctx.subject)


def data_file(ctx: Context, regions: Regions) -> dict[str, Any]:
    """A BED file as a GenomicDataFile; embedded (base64) up to 1 MiB, else described by size and SHA-1."""
    what = {"convert": "conversion region (only variants overlapping it are reported)",
            "studied": "region studied", "uncallable": "uncallable region"}[regions.role]
    attachment: dict[str, Any] = {"contentType": "text/plain", "title": regions.name, "size": len(regions.data),
                                  "hash": base64.b64encode(bytes.fromhex(regions.sha1)).decode()}
    if len(regions.data) <= MAX_EMBEDDED_BED:
        attachment["data"] = base64.b64encode(regions.data).decode()
    res: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": resource_id("DocumentReference", ctx.key, regions.role, regions.sha1),
        "meta": {"profile": [GR + "genomic-data-file"]},
        "status": "current",
        "type": {"coding": [{"system": DATA_FORMAT, "code": "bed", "display": "BED"}]},
        "description": f"BED file {regions.name}: {what}; {regions.count} intervals, {regions.bases} bases",
    }
    if ctx.subject:
        res["subject"] = ctx.subject
    res["content"] = [{"attachment": attachment}]
    return res


def analysis(ctx: Context, header: Header, files: dict[str, dict[str, Any]], regions: dict[str, Regions]
             ) -> dict[str, Any]:
    """GenomicStudyAnalysis: genome build, source class, the regions extension (studied / uncalled BED files;
    the conversion region is an input and is described), the VCF as input, the specimen. Reads ##fileDate
    (performedDateTime) and states the sample's role in a tumour/normal pair (note)."""
    ext: list[dict[str, Any]] = []
    if ctx.assembly:
        ext.append({"url": GR + "genomic-study-analysis-genome-build", "valueCodeableConcept": {"coding": [
            {"system": LOINC, "code": reference.assembly_loinc(ctx.assembly), "display": ctx.assembly}]}})
    source = ctx.genomic_source
    if source:
        ext.append({"url": GR + "genomic-study-analysis-genomic-source-class",
                    "valueCodeableConcept": genomics.answer("source_classes", source)})
    if ctx.specimen:
        ext.append({"url": GR + "genomic-study-analysis-specimen", "valueReference": ctx.specimen})
    if ctx.subject:
        ext.append({"url": GR + "genomic-study-analysis-focus", "valueReference": ctx.subject})
    parts: list[dict[str, Any]] = []
    conv = regions.get("convert")
    if conv:
        parts.append({"url": "description", "valueString":
                      f"Variants are reported only where they overlap the {conv.count} intervals "
                      f"({conv.bases} bases) of {conv.name}"})
    for role, doc in files.items():
        if role in _REGION_ROLE:
            parts.append({"url": _REGION_ROLE[role], "valueReference": ctx.ref("DocumentReference", doc["id"])})
    if parts:
        ext.append({"url": GR + "genomic-study-analysis-regions", "extension": parts})
    inputs = []
    if ctx.options.source_name:
        inputs.append([{"url": "type", "valueCodeableConcept": {"coding": [
            {"system": DATA_FORMAT, "code": "vcf", "display": "VCF"}]}}])
    if "convert" in files:
        inputs.append([{"url": "file", "valueReference": ctx.ref("DocumentReference", files["convert"]["id"])},
                       {"url": "type", "valueCodeableConcept": {"coding": [
                           {"system": DATA_FORMAT, "code": "bed", "display": "BED"}]}}])
    ext.extend({"url": GR + "genomic-study-analysis-input", "extension": i} for i in inputs)
    res: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": resource_id("Procedure", ctx.key, "analysis"),
        "meta": {"profile": [GR + "genomic-study-analysis"]},
        "extension": ext,
        "status": "completed",
        "category": CATEGORY_LAB,
    }
    if ctx.subject:
        res["subject"] = ctx.subject
    performed = _file_date(ctx, header)
    if performed:
        res["performedDateTime"] = performed
    note = f"Converted from VCF {header.version}"
    if ctx.options.source_name:
        note += f" file {ctx.options.source_name}"
    note += f", sample {header.sample}"
    if header.role:
        note += f" ({header.role})"
    paired = [f"{s} ({role}, {evidence})" for s, (role, evidence) in header.roles.items() if s != header.sample]
    if paired:
        note += "; not converted: " + ", ".join(paired[:10])
    res["note"] = [{"text": note + "."}]
    return res


def study(ctx: Context, analysis_res: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": resource_id("Procedure", ctx.key, "study"),
        "meta": {"profile": [GR + "genomic-study"]},
        "extension": [{"url": GR + "genomic-study-analysis-ext",
                       "valueReference": ctx.ref("Procedure", analysis_res["id"])}],
        "status": "completed",
        "category": CATEGORY_LAB,
    }
    if ctx.subject:
        res["subject"] = ctx.subject
    return res


def report(ctx: Context, study_res: dict[str, Any]) -> dict[str, Any]:
    """The genomic-report DiagnosticReport, without `result`: the caller appends every variant and phase
    relationship (streamed, as there may be millions). No `issued`: a VCF states no instant (##fileDate is a
    day) and the mapper reads no clock."""
    return genomics.report(genomics.Report(report_id(ctx), subject=ctx.subject,
                                           specimens=[ctx.specimen] if ctx.specimen else [],
                                           study=ctx.ref("Procedure", study_res["id"])))


def report_id(ctx: Context) -> str:
    return resource_id("DiagnosticReport", ctx.key)


def _file_date(ctx: Context, header: Header) -> str | None:
    """##fileDate=20121229 (VCF 4.3 §1.4.1 suggests YYYYMMDD) → 2012-12-29, the analysis date; a value that is
    not a real day is dropped with a warning naming the line."""
    for value in header.values("fileDate")[:1]:
        v = value.strip().replace("-", "")
        day = f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 and v.isascii() and v.isdigit() else ""
        if is_date(day):
            return day
        ctx.issue("warning", "vcf-bad-file-date", f"##fileDate {value[:30]!r} is not a date (YYYYMMDD); "
                  "GenomicStudyAnalysis.performed not set", file_date_where(header), code="value")
    return None


def file_date_where(header: Header) -> str:
    """The line of ##fileDate (meta lines are lines 1..n in order)."""
    n = next((i for i, (k, _) in enumerate(header.meta, 1) if k == "fileDate"), 0)
    return f"line {n} (##fileDate)" if n else "##fileDate"
