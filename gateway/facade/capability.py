"""GET [base]/metadata with an upstream: the facade's route table (gateway.facade.table) intersected with the
upstream's CapabilityStatement, so it never announces an interaction the gateway refuses, nor one the upstream
lacks. An interaction the gateway builds from others (patch: read + update) is announced when those are there."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.facade.common import upstream_capabilities
from gateway.facade.respond import fhir_response
from gateway.routes import metadata as own_metadata

GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
# What the gateway enforces on writes (it validates every claimed profile), announced per resource type.
GENOMIC_PROFILES = {
    "Observation": ["variant", "diagnostic-implication", "therapeutic-implication", "molecular-consequence",
                    "genotype", "haplotype", "sequence-phase-relationship", "molecular-biomarker"],
    "DiagnosticReport": ["genomic-report"],
    "Procedure": ["genomic-study", "genomic-study-analysis"],
    "DocumentReference": ["genomic-data-file"],
    "Task": ["medication-recommendation", "followup-recommendation"],
}
_SP = "http://hl7.org/fhir/SearchParameter/"
# R4 search parameters of the genomic resource types, announced when the upstream declares none of its own (the
# conformance kit's server suite exercises each one, so the claim is checked, not assumed).
STANDARD_SEARCH = {
    "Observation": [("subject", "Observation-subject", "reference"), ("patient", "clinical-patient", "reference"),
                    ("code", "clinical-code", "token"), ("category", "Observation-category", "token"),
                    ("status", "Observation-status", "token"), ("date", "clinical-date", "date"),
                    ("component-code", "Observation-component-code", "token"),
                    ("combo-code", "Observation-combo-code", "token"),
                    ("derived-from", "Observation-derived-from", "reference")],
    "DiagnosticReport": [("subject", "DiagnosticReport-subject", "reference"),
                         ("patient", "clinical-patient", "reference"), ("code", "clinical-code", "token"),
                         ("category", "DiagnosticReport-category", "token"),
                         ("status", "DiagnosticReport-status", "token"), ("date", "clinical-date", "date"),
                         ("result", "DiagnosticReport-result", "reference")],
}
PATCH_FORMATS = ["application/json-patch+json", "application/fhir+json", "application/fhir+xml"]
# Resource-level elements passed on as the upstream states them, when the interaction they qualify is announced.
_QUALIFIERS = {"versioning": None, "readHistory": "history-instance", "updateCreate": "update",
               "conditionalCreate": "create", "conditionalRead": "read", "conditionalUpdate": "update",
               "conditionalDelete": "delete", "referencePolicy": None, "searchInclude": "search-type",
               "searchRevInclude": "search-type", "searchParam": "search-type", "profile": None,
               "supportedProfile": None, "documentation": None}


def announced(offered: set[str], level: str) -> list[str]:
    """The table's interaction codes at `level` ('type' covers instance) whose upstream needs are in `offered`."""
    from gateway.facade.table import TABLE

    levels = ("type", "instance") if level == "type" else ("system",)
    out: list[str] = []
    for i in TABLE:
        if i.level in levels and not i.code.startswith("$") and set(i.requires) <= offered and i.code not in out:
            out.append(i.code)
    return out


def _resource(res: dict[str, Any]) -> dict[str, Any] | None:
    rtype = res.get("type")
    if not isinstance(rtype, str):
        return None
    offered = {i.get("code") for i in res.get("interaction") or [] if isinstance(i, dict)}
    codes = announced(offered, "type")
    if not codes:
        return None
    out: dict[str, Any] = {"type": rtype}
    for key, needs in _QUALIFIERS.items():
        if key in res and (needs is None or needs in codes):
            out[key] = res[key]
    out["interaction"] = [{"code": c} for c in codes]
    if rtype in GENOMIC_PROFILES:
        have = list(out.get("supportedProfile") or [])
        out["supportedProfile"] = have + [GR + p for p in GENOMIC_PROFILES[rtype] if GR + p not in have]
    if rtype in STANDARD_SEARCH and not out.get("searchParam") and "search-type" in codes:
        out["searchParam"] = [{"name": n, "definition": _SP + d, "type": t} for n, d, t in STANDARD_SEARCH[rtype]]
    out["operation"] = [{"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                         "documentation": "type and instance level; the instance's stored version when no "
                                          "resource is posted"}]
    return out


async def metadata_route(request: Request) -> Response:
    """The gateway's CapabilityStatement, announcing what it does with the upstream's resources."""
    own = orjson.loads((await own_metadata(request)).body)
    own["implementation"]["url"] = request.app.state.addresses.public_base(request)
    cap = await upstream_capabilities(request)
    rest = own["rest"][0]
    if cap:
        up = next((r for r in cap.get("rest", []) if isinstance(r, dict) and r.get("mode") == "server"), {})
        resources = [r for r in (_resource(res) for res in up.get("resource", []) if isinstance(res, dict)) if r]
        rest["resource"] = resources
        offered = {i.get("code") for i in up.get("interaction") or [] if isinstance(i, dict)}
        rest["interaction"] = [{"code": c} for c in announced(offered, "system")]
        if any(any(i["code"] == "patch" for i in r["interaction"]) for r in resources):
            own["patchFormat"] = PATCH_FORMATS
        rest["documentation"] += (
            " Reads and writes of these resources are passed to an upstream FHIR server; writes (and the result "
            "of a patch, applied by the gateway) are validated against the IG profiles first (422 on errors). "
            "Only what both the gateway and the upstream do is listed.")
    return fhir_response(request, own)
