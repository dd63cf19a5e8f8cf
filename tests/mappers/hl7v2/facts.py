"""Reads back, from a converted Bundle, the facts the authored messages' *.facts.json files state."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def has_profile(res: dict[str, Any], name: str) -> bool:
    return GR + name in res.get("meta", {}).get("profile", [])


def by_url(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def component(obs: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [c for c in obs.get("component", []) if c["code"]["coding"][0]["code"] == code]


def cc_code(obs: dict[str, Any], code: str) -> str | None:
    comps = component(obs, code)
    if not comps:
        return None
    coding = comps[0].get("valueCodeableConcept", {}).get("coding", [{}])[0]
    return coding.get("code")


def variant_facts(var: dict[str, Any], implication: dict[str, Any] | None) -> dict[str, Any]:
    gene = component(var, "48018-6")
    gene_coding = gene[0]["valueCodeableConcept"]["coding"][0] if gene else {}
    pos = component(var, "81254-5")
    rng = pos[0]["valueRange"] if pos else {}
    ref = component(var, "69547-8")
    alt = component(var, "69551-0")
    af = component(var, "81258-6")
    depth = component(var, "82121-5")
    out = {
        "gene": gene_coding.get("code"),
        "gene_symbol": gene_coding.get("display"),
        "c_hgvs": cc_code(var, "48004-6"),
        "p_hgvs": cc_code(var, "48005-3"),
        "g_hgvs": cc_code(var, "81290-9"),
        "transcript": cc_code(var, "51958-7"),
        "ref_seq": cc_code(var, "48013-7"),
        "ref": ref[0]["valueString"] if ref else None,
        "alt": alt[0]["valueString"] if alt else None,
        "start": rng.get("low", {}).get("value"),
        "end": rng.get("high", {}).get("value"),
        "allelic_state": cc_code(var, "53034-5"),
        "source_class": cc_code(var, "48002-0"),
        "allelic_frequency": af[0]["valueQuantity"]["value"] if af else None,
        "read_depth": depth[0]["valueQuantity"]["value"] if depth else None,
        "assembly": cc_code(var, "62374-4"),
        "clinical_significance": cc_code(implication, "53037-8") if implication else None,
        "phenotypes": [c["valueCodeableConcept"]["coding"][0]["code"]
                       for c in component(implication, "81259-4")] if implication else [],
    }
    return out


def facts(bundle: dict[str, Any]) -> dict[str, Any]:
    urls = by_url(bundle)
    patients = resources(bundle, "Patient")
    pat = patients[0] if patients else {}
    name = (pat.get("name") or [{}])[0]
    reports = resources(bundle, "DiagnosticReport")
    genomic = [r for r in reports if has_profile(r, "genomic-report")]
    report = (genomic or reports)[0]
    implications: dict[str, dict[str, Any]] = {}
    for obs in resources(bundle, "Observation"):
        if has_profile(obs, "diagnostic-implication"):
            implications[obs["derivedFrom"][0]["reference"]] = obs
    variants = []
    labs = []
    for rep in reports:
        for ref in rep.get("result", []):
            obs = urls[ref["reference"]]
            if has_profile(obs, "variant"):
                variants.append(variant_facts(obs, implications.get(ref["reference"])))
            elif not has_profile(obs, "diagnostic-implication") and "valueQuantity" in obs and not any(
                    c["coding"][0]["code"] == "GE" for c in obs["category"]):
                q = obs["valueQuantity"]
                labs.append({"code": obs["code"]["coding"][0]["code"], "value": q["value"], "unit": q.get("unit")})
    conclusion = report.get("conclusionCode", [{}])[0].get("coding", [{}])[0].get("code")
    return {
        "patient": {
            "identifiers": [{"value": i["value"], "system": i.get("system"),
                             "assigner": i.get("assigner", {}).get("display")} for i in pat.get("identifier", [])],
            "family": name.get("family"),
            "given": name.get("given", []),
            "birth_date": pat.get("birthDate"),
            "gender": pat.get("gender"),
        },
        "report": {"status": report["status"], "conclusion_code": conclusion},
        "variants": variants,
        "lab_observations": labs,
        "has_specimen": bool(resources(bundle, "Specimen")),
    }
