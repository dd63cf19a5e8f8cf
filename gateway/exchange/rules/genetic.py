"""Genetic-data export control: China's Human Genetic Resources rules (State Council Decree 717, Art. 28; 2023
Implementation Rules) require a filing with MOST before human genetic resource (HGR) information is provided
abroad. Since 2023 HGR information is gene and genome data generated from HGR material, not clinical, imaging,
protein or metabolic data.

Every outbound resource is classified. HGR information: the Genomics Reporting IG 3.0.0's `variant`, `genotype`,
`haplotype`, `sequence-phase-relationship` and `genomic-data-file` (by profile or by their LOINC codes), a
MolecularSequence, and any Observation carrying a sequence-level component or code (HGVS, alleles, discrete
variant); a genomic report's presentedForm and conclusion text (documents that may state the variants) are HGR
parts of an otherwise clinical resource. Ordinary lab results, implications without sequence content, Patients
and the rest are clinical. The route names whether the rule applies (by default when the source jurisdiction is
CN), the filing ids registered, and whether a transfer without one is refused or sent with the genetic content
withheld.
"""

from __future__ import annotations

from typing import Any

from gateway.exchange.rules import Change, Refused, Step
from gateway.exchange.rules.bundle import copied, name_of, resources, withdraw

GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
HGR_PROFILES = frozenset(GR + p for p in ("variant", "genotype", "haplotype", "sequence-phase-relationship",
                                          "genomic-data-file"))
# LOINC: 69548-6 genetic variant assessment, 84413-4 genotype display name, 84414-2 haplotype name, 82120-7 allelic
# phase; components: 48004-6 c.HGVS, 81290-9 g.HGVS, 48005-3 p.HGVS, 69547-8 ref allele, 69551-0 alt allele,
# 81252-9 discrete variant, 81255-2 dbSNP id, 48019-4 DNA change type, 62378-5 chromosome copy number change.
HGR_CODES = frozenset({"69548-6", "84413-4", "84414-2", "82120-7"})
SEQUENCE_CODES = frozenset({"48004-6", "81290-9", "48005-3", "69547-8", "69551-0", "81252-9", "81255-2"})
GENOMIC_REPORT = GR + "genomic-report"
HGR, CLINICAL = "hgr-information", "clinical"


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {c.get("code") for c in concept.get("coding") or [] if isinstance(c, dict)}


def _profiles(res: dict[str, Any]) -> set[str]:
    return {p.split("|")[0] for p in (res.get("meta") or {}).get("profile") or [] if isinstance(p, str)}


def classify(res: dict[str, Any]) -> str:
    """HGR or CLINICAL for one resource (its own content, not what it references)."""
    rtype = res.get("resourceType")
    if rtype == "MolecularSequence" or _profiles(res) & HGR_PROFILES:
        return HGR
    if rtype == "Observation":
        if _codes(res.get("code")) & (HGR_CODES | SEQUENCE_CODES):
            return HGR
        if any(_codes(c.get("code")) & SEQUENCE_CODES for c in res.get("component") or [] if isinstance(c, dict)):
            return HGR
    return CLINICAL


def hgr_parts(res: dict[str, Any]) -> list[str]:
    """Elements of a clinical resource that may state genetic content (a genomic report's documents and text)."""
    if res.get("resourceType") != "DiagnosticReport":
        return []
    genomic = GENOMIC_REPORT in _profiles(res) or "51969-4" in _codes(res.get("code"))
    return [k for k in ("presentedForm", "conclusion") if genomic and k in res]


def census(bundle: dict[str, Any]) -> dict[str, Any]:
    """The classification of a Bundle: its HGR class and which resources are HGR information."""
    hgr = [name_of(r, i) for i, r in resources(bundle) if classify(r) == HGR]
    parts = [f"{name_of(r, i)}.{k}" for i, r in resources(bundle) for k in hgr_parts(r)]
    return {"class": HGR if hgr or parts else CLINICAL, "resources": hgr, "parts": parts}


def applies(route: dict[str, Any]) -> bool:
    rule = (route.get("rules") or {}).get("genetic") or {}
    if "enforce" in rule:
        return bool(rule["enforce"])
    return (route.get("source") or {}).get("jurisdiction") == "CN"


def withheld(route: dict[str, Any], filing: str | None) -> bool:
    """Whether this rule will withhold the genetic content (so consent need not cover it)."""
    rule = (route.get("rules") or {}).get("genetic") or {}
    return applies(route) and rule.get("onMissing") == "withhold" and filing not in (rule.get("filingIds") or [])


def apply(bundle: dict[str, Any], route: dict[str, Any], filing: str | None) -> Step:
    found = census(bundle)
    facts = {"hgrClass": found["class"], "hgrResources": len(found["resources"]) + len(found["parts"])}
    if found["class"] == CLINICAL or not applies(route):
        return Step(bundle, [], facts)
    rule = (route.get("rules") or {}).get("genetic") or {}
    registered = rule.get("filingIds") or []
    if filing and filing in registered:
        return Step(bundle, [], {**facts, "hgrFiling": filing})
    if rule.get("onMissing", "refuse") != "withhold":
        held = f"the request cites filing {filing!r}, which the route does not register" if filing \
            else "no HGR filing id was cited"
        raise Refused("genetic", f"the content holds human genetic resource information "
                      f"({len(found['resources'])} resources, {len(found['parts'])} document parts) and {held}",
                      "cite the MOST filing id registered on the route (rules.genetic.filingIds) as the filing "
                      "parameter, or send without genetic content (a route with rules.genetic.onMissing withhold)")
    out = copied(bundle)
    drop = {i for i, r in resources(out) if classify(r) == HGR}
    changes: list[Change] = []
    for i, r in resources(out):
        for k in hgr_parts(r):
            changes.append(Change("genetic", "withheld", f"{name_of(r, i)}.{k}", "may state genetic content"))
            del r[k]
    changes += [Change("genetic", a, p, "human genetic resource information") for a, p in
                withdraw(out, drop)]
    return Step(out, changes, {**facts, "hgrWithheld": True})
