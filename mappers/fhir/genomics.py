"""Genomic content of a FHIR Bundle, recognised by what it is rather than by the profile it claims: variants,
genotypes and haplotypes, diagnostic/therapeutic implications and molecular consequences, biomarkers (TMB, MSI) and
genomic reports, from the Genomics Reporting IG 1.x (STU1), 2.x (STU2) and 3.0.0 (STU3) and mCODE STU1-4.

Recognition goes by Observation.code first, then by a claimed profile, then by structure (components only a variant
carries); codes of earlier releases are read as the STU3 ones (tables/genomics.json). Writers from FHIR (HL7 v2,
VCF, ...) read this model, so they share one understanding of what a genomic Bundle holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from mappers.exceptions import Issue, ParseError
from mappers.fhir.shape import check_resource

LOINC = "http://loinc.org"
GENOMIC_KINDS = ("variant", "genotype", "haplotype", "sequence-phase-relationship", "diagnostic-implication",
                 "therapeutic-implication", "molecular-consequence", "biomarker", "overall-interpretation",
                 "region-studied", "grouper")
IMPLICATION_KINDS = ("diagnostic-implication", "therapeutic-implication", "molecular-consequence")


@cache
def table() -> dict[str, Any]:
    return json.loads((Path(__file__).parent / "tables" / "genomics.json").read_text("utf-8"))


def tbd() -> str:
    return str(table()["tbd"])


def normal_system(system: Any) -> Any:
    """The STU3 URL of a code system spelled as an earlier release (or with a trailing slash) did."""
    if not isinstance(system, str):
        return system
    return table()["systems"].get(system, system)


def key(coding: Any) -> str:
    """'system|code' of a Coding, with the STU3 system; the IG's TBD system reads 'TBD'."""
    if not isinstance(coding, dict):
        return ""
    system = normal_system(coding.get("system"))
    return f"{'TBD' if system == tbd() else system}|{coding.get('code')}"


def keys(cc: Any) -> list[str]:
    """The 'system|code' keys of a CodeableConcept's codings."""
    codings = cc.get("coding") if isinstance(cc, dict) else None
    return [key(c) for c in codings] if isinstance(codings, list) else []


def first_code(cc: Any) -> str:
    """The code of the first coding ('' when there is none)."""
    codings = cc.get("coding") if isinstance(cc, dict) else None
    if isinstance(codings, list) and codings and isinstance(codings[0], dict):
        code = codings[0].get("code")
        return code if isinstance(code, str) else ""
    return ""


def profile_names(res: dict[str, Any]) -> list[str]:
    meta = res.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    if not isinstance(profiles, list):
        return []
    return [p.split("|")[0].rstrip("/").rsplit("/", 1)[-1] for p in profiles if isinstance(p, str)]


@dataclass(slots=True)
class Renames:
    """What `upgrade` read as a newer code: (from, to) -> (count, first place)."""

    seen: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, old: str, new: str, where: str) -> None:
        n, first = self.seen.get((old, new), (0, where))
        self.seen[(old, new)] = (n + 1, first)

    def issues(self) -> list[Issue]:
        out = []
        for (old, new), (n, where) in self.seen.items():
            times = f" ({n} times)" if n > 1 else ""
            out.append(Issue("information", "informational", "fhir-code-of-earlier-release",
                             f"{old} read as {new}, as Genomics Reporting 3.0.0 writes it{times}", where))
        return out


def _upgrade_cc(cc: Any, where: str, renames: Renames | None) -> None:
    codings = cc.get("coding") if isinstance(cc, dict) else None
    for i, c in enumerate(codings if isinstance(codings, list) else []):
        if isinstance(c, dict) and isinstance(c.get("system"), str):
            new = normal_system(c["system"])
            if new != c["system"]:
                if renames is not None:
                    renames.add(f"system {c['system']}", f"system {new}", f"{where}.coding[{i}]")
                c["system"] = new


def upgrade(res: Any, where: str = "", renames: Renames | None = None) -> Any:
    """A copy of a genomic Observation with the codes of earlier releases read as the STU3 ones: code-system URLs,
    component codes (tables/genomics.json), and the finding an STU1 Observation held in its value moved to a
    component of that code. Anything that is not an Observation, or content of the wrong shape, is left as it is
    (callers that need shapes check them: mappers.fhir.shape)."""
    if not isinstance(res, dict) or res.get("resourceType") != "Observation" or not _stale(res):
        return res
    # a copy of what may change (the narrative, often the largest part, is shared)
    try:
        out = orjson.loads(orjson.dumps({k: v for k, v in res.items() if k != "text"}))  # a fast deep copy
    except orjson.JSONEncodeError:  # nested beyond what orjson writes: left as it is, like other odd content
        return res
    if "text" in res:
        out["text"] = res["text"]
    for name in ("code", "valueCodeableConcept", "method"):
        _upgrade_cc(out.get(name), f"{where}.{name}", renames)
    comps = out.get("component")
    for i, comp in enumerate(comps if isinstance(comps, list) else []):
        if not isinstance(comp, dict):
            continue
        here = f"{where}.component[{i}]"
        code = comp.get("code")
        _upgrade_cc(code, f"{here}.code", renames)
        _upgrade_cc(comp.get("valueCodeableConcept"), f"{here}.valueCodeableConcept", renames)
        codings = code.get("coding") if isinstance(code, dict) else None
        for j, c in enumerate(codings if isinstance(codings, list) else []):
            new = table()["component_codes"].get(key(c))
            if new is None:
                continue
            system = tbd() if new["system"] == "TBD" else new["system"]
            if renames is not None:
                renames.add(f"component code {key(c)}", f"{'TBD' if system == tbd() else system}|{new['code']}",
                            f"{here}.code.coding[{j}]")
            codings[j] = {"system": system, "code": new["code"], "display": new["display"]}
    spec = _kind_by_code(out)
    if spec and spec.get("value_component"):
        value = next((k for k in out if k.startswith("value") and k != "value"), None)
        if value is not None:
            moved = {"code": orjson.loads(orjson.dumps(out.get("code"))), value: out.pop(value)}
            out["component"] = [moved, *(comps if isinstance(comps, list) else [])]
            if renames is not None:
                renames.add(f"Observation.{value} of a {first_code(out.get('code'))} Observation",
                            f"a {first_code(out.get('code'))} component", f"{where}.{value}")
    return out


def _codings(cc: Any) -> list[Any]:
    codings = cc.get("coding") if isinstance(cc, dict) else None
    return codings if isinstance(codings, list) else []


def _stale(obs: dict[str, Any]) -> bool:
    """True when `upgrade` has something to change: a code system spelled as an earlier release did, a component
    code of an earlier release, or a finding held in Observation.value by an STU1 Observation."""
    systems, renamed = table()["systems"], table()["component_codes"]

    def old_system(cc: Any) -> bool:
        return any(isinstance(c, dict) and c.get("system") in systems for c in _codings(cc))

    if any(old_system(obs.get(name)) for name in ("code", "valueCodeableConcept", "method")):
        return True
    comps = obs.get("component")
    for comp in comps if isinstance(comps, list) else []:
        if isinstance(comp, dict) and (old_system(comp.get("code")) or old_system(comp.get("valueCodeableConcept"))
                                       or any(key(c) in renamed for c in _codings(comp.get("code")))):
            return True
    spec = _kind_by_code(obs)
    return bool(spec and spec.get("value_component") and any(k.startswith("value") for k in obs))


def _kind_by_code(obs: dict[str, Any]) -> dict[str, Any] | None:
    kinds = table()["observation_kinds"]
    return next((kinds[k] for k in keys(obs.get("code")) if k in kinds), None)


def classify(obs: dict[str, Any]) -> tuple[str, str]:
    """(kind, how) of an Observation: kind one of GENOMIC_KINDS or 'observation'; how 'code', 'profile' or
    'structure' (what recognised it)."""
    spec = _kind_by_code(obs)
    if spec:
        return spec["kind"], "code"
    by_profile = table()["profiles"]
    for name in profile_names(obs):
        if name in by_profile:
            return by_profile[name], "profile"
    defining = set(table()["variant_defining_components"]["codes"])
    comps = obs.get("component")
    for comp in comps if isinstance(comps, list) else []:
        if isinstance(comp, dict) and defining & set(keys(comp.get("code"))):
            return "variant", "structure"
    return "observation", "code"


@dataclass(slots=True)
class Entry:
    """One resource of the input: `resource` read with STU3 codes; `where` its FHIRPath in the input Bundle."""

    index: int
    resource: dict[str, Any]
    where: str
    full_url: str | None
    kind: str  # Observations: a GENOMIC_KINDS member or 'observation'; other resources: their resourceType

    @property
    def type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def label(self) -> str:
        rid = self.resource.get("id")
        return f"{self.type}/{rid}" if rid else f"{self.type} at {self.where}"

    @property
    def genomic(self) -> bool:
        return self.kind in GENOMIC_KINDS


@dataclass(slots=True)
class GenomicContent:
    """What a Bundle holds, as writers from FHIR read it."""

    bundle: dict[str, Any]
    digest: str  # SHA-256 of the Bundle's canonical JSON (sorted keys): names what was converted
    entries: list[Entry]
    issues: list[Issue]
    by_ref: dict[str, Entry]
    derived: dict[int, list[Entry]]  # entry index of a finding -> the implications derived from it

    def resolve(self, reference: Any) -> Entry | None:
        """The entry a Reference points at inside the Bundle (fullUrl, Type/id, or an absolute URL ending so)."""
        ref = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(ref, str) or not ref:
            return None
        return self.by_ref.get(ref) or self.by_ref.get("/".join(ref.split("/")[-2:]))

    def of(self, *kinds: str) -> list[Entry]:
        return [e for e in self.entries if e.kind in kinds]

    def is_genomic_report(self, report: Entry) -> bool:
        """A genomic report by code, category GE, profile, or because it reports genomic findings."""
        res = report.resource
        spec = table()["report_codes"]
        if set(keys(res.get("code"))) & set(spec["codes"]):
            return True
        if any("GE" in [first_code(c)] for c in res.get("category") or []):
            return True
        if set(profile_names(res)) & set(spec["profiles"]):
            return True
        return any((e := self.resolve(r)) is not None and e.genomic for r in res.get("result") or [])


def read(bundle: dict[str, Any]) -> GenomicContent:
    """The genomic content of a Bundle. Raises ParseError for content of the wrong shape (mappers.fhir.shape)."""
    check_resource(bundle, "Bundle")
    if bundle["resourceType"] != "Bundle":
        raise ParseError("expected a FHIR Bundle (resourceType 'Bundle')", details="fhir-not-a-bundle",
                         expression="resourceType")
    try:
        digest = hashlib.sha256(orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS)).hexdigest()
    except orjson.JSONEncodeError as e:  # nesting deeper than JSON writers accept, or a non-JSON value
        raise ParseError(f"the Bundle cannot be written as JSON: {e}", details="fhir-not-json",
                         expression="Bundle") from None
    renames = Renames()
    issues: list[Issue] = []
    entries: list[Entry] = []
    by_ref: dict[str, Entry] = {}
    for i, raw in enumerate(bundle.get("entry") or []):
        where = f"Bundle.entry[{i}].resource"
        res = raw.get("resource")
        if res is None:
            issues.append(Issue("warning", "structure", "fhir-entry-without-resource",
                                f"entry {i} has no resource; skipped", f"Bundle.entry[{i}]"))
            continue
        check_resource(res, where)
        res = upgrade(res, where, renames)
        kind = res["resourceType"]
        if kind == "Observation":
            kind, how = classify(res)
            if how != "code" and kind != "observation":
                issues.append(Issue("information", "informational", "fhir-recognised-by-" + how,
                                    f"Observation/{res.get('id', i)} has no code that says what it is; read as a "
                                    f"{kind} by its {'claimed profile' if how == 'profile' else 'components'}",
                                    f"{where}.code"))
        entry = Entry(i, res, where, raw.get("fullUrl"), kind)
        entries.append(entry)
        if entry.full_url:
            by_ref.setdefault(entry.full_url, entry)
        if isinstance(res.get("id"), str):
            by_ref.setdefault(f"{res['resourceType']}/{res['id']}", entry)
    content = GenomicContent(bundle, digest, entries, issues, by_ref, {})
    for e in entries:
        if e.kind in IMPLICATION_KINDS:
            for ref in e.resource.get("derivedFrom") or []:
                target = content.resolve(ref)
                if target is not None and target is not e:
                    content.derived.setdefault(target.index, []).append(e)
    issues.extend(renames.issues())
    return content
