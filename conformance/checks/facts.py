"""Reading back from a converted Bundle the facts a reference input's `.facts.json` states, and comparing.

The facts schema is the one in tests/mappers/hl7v2/messages/README.md (patient, report, variants,
lab_observations, has_specimen, control_id). Keys this module does not know (encoding, z_segments) are
reported as not checked rather than guessed at.
"""

from __future__ import annotations

from typing import Any

GR = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
CHECKED = ("control_id", "patient", "report", "variants", "lab_observations", "has_specimen")
VARIANT_COMPONENTS = {  # facts key -> (component LOINC, how its value is read)
    "c_hgvs": ("48004-6", "code"), "p_hgvs": ("48005-3", "code"), "g_hgvs": ("81290-9", "code"),
    "transcript": ("51958-7", "code"), "ref_seq": ("48013-7", "code"), "ref": ("69547-8", "string"),
    "alt": ("69551-0", "string"), "allelic_state": ("53034-5", "code"), "source_class": ("48002-0", "code"),
    "allelic_frequency": ("81258-6", "quantity"), "read_depth": ("82121-5", "quantity"),
    "assembly": ("62374-4", "code"),
}


def _resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry") or []
            if isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == rtype]


def _has_profile(res: dict[str, Any], name: str) -> bool:
    return any(str(p).split("|")[0] == GR + name for p in (res.get("meta") or {}).get("profile") or [])


def _code(res: dict[str, Any]) -> str | None:
    return next((c.get("code") for c in (res.get("code") or {}).get("coding") or []), None)


def _components(obs: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [c for c in obs.get("component") or []
            if any(cd.get("code") == code for cd in (c.get("code") or {}).get("coding") or [])]


def _value(comp: dict[str, Any] | None, how: str) -> Any:
    if comp is None:
        return None
    if how == "string":
        return comp.get("valueString")
    if how == "quantity":
        return (comp.get("valueQuantity") or {}).get("value")
    return next((c.get("code") for c in (comp.get("valueCodeableConcept") or {}).get("coding") or []), None)


def _first(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    return items[0] if items else None


def _variant(var: dict[str, Any], implication: dict[str, Any] | None) -> dict[str, Any]:
    gene = _first(_components(var, "48018-6"))
    gene_coding = ((gene or {}).get("valueCodeableConcept") or {}).get("coding") or [{}]
    rng = (_first(_components(var, "81254-5")) or {}).get("valueRange") or {}
    out: dict[str, Any] = {"gene": gene_coding[0].get("code"), "gene_symbol": gene_coding[0].get("display"),
                           "start": (rng.get("low") or {}).get("value"), "end": (rng.get("high") or {}).get("value")}
    for key, (code, how) in VARIANT_COMPONENTS.items():
        out[key] = _value(_first(_components(var, code)), how)
    out["clinical_significance"] = _value(_first(_components(implication, "53037-8")), "code") if implication else None
    out["phenotypes"] = [_value(c, "code") for c in _components(implication, "81259-4")] if implication else []
    return out


def extract(bundle: dict[str, Any]) -> dict[str, Any]:
    """The facts as the Bundle states them (variants in the order the genomic report lists them)."""
    urls = {e.get("fullUrl"): e.get("resource") for e in bundle.get("entry") or []}
    pat = _first(_resources(bundle, "Patient")) or {}
    name = (pat.get("name") or [{}])[0]
    reports = _resources(bundle, "DiagnosticReport")
    report = _first([r for r in reports if _has_profile(r, "genomic-report")] or reports) or {}
    implications = {}
    for obs in _resources(bundle, "Observation"):
        if _has_profile(obs, "diagnostic-implication"):
            for ref in obs.get("derivedFrom") or []:
                implications.setdefault(ref.get("reference"), obs)
    variants, labs = [], []
    for rep in reports:
        for ref in rep.get("result") or []:
            obs = urls.get(ref.get("reference")) or {}
            if _has_profile(obs, "variant"):
                variants.append(_variant(obs, implications.get(ref.get("reference"))))
            elif not _has_profile(obs, "diagnostic-implication") and "valueQuantity" in obs and not any(
                    c.get("code") == "GE" for cat in obs.get("category") or [] for c in cat.get("coding") or []):
                q = obs["valueQuantity"]
                labs.append({"code": _code(obs), "value": q.get("value"), "unit": q.get("unit")})
    sources = [(e.get("what") or {}).get("identifier", {}).get("value")
               for p in _resources(bundle, "Provenance") for e in p.get("entity") or []]
    sources.append((bundle.get("identifier") or {}).get("value"))  # the source message, also without a Provenance
    return {
        "control_ids": [s for s in sources if s],
        "patient": {"identifiers": [{"value": i.get("value"), "system": i.get("system"),
                                     "assigner": (i.get("assigner") or {}).get("display")}
                                    for i in pat.get("identifier") or []],
                    "family": name.get("family"), "given": name.get("given") or [],
                    "names": [(n.get("family"), n.get("given") or []) for n in pat.get("name") or []
                              if isinstance(n, dict)],
                    "birth_date": pat.get("birthDate"), "gender": pat.get("gender")},
        "report": {"status": report.get("status"),
                   "conclusion_code": next((c.get("code") for cc in report.get("conclusionCode") or []
                                            for c in cc.get("coding") or []), None)},
        "variants": variants,
        "lab_observations": labs,
        "has_specimen": bool(_resources(bundle, "Specimen")),
    }


def compare(expected: dict[str, Any], bundle: dict[str, Any]) -> tuple[list[str], int, list[str]]:
    """(mismatches as 'where: expected X, got Y', facts checked, keys not checked)."""
    got = extract(bundle)
    bad: list[str] = []
    count = 0

    def same(where: str, want: Any, have: Any) -> None:
        nonlocal count
        count += 1
        if want != have:
            bad.append(f"{where}: expected {want!r}, got {have!r}")

    if "control_id" in expected:
        count += 1
        if expected["control_id"] not in got["control_ids"]:
            bad.append(f"control_id: {expected['control_id']!r} is named by neither Bundle.identifier nor a "
                       "Provenance entity")
    if "patient" in expected:
        want, have = expected["patient"], got["patient"]
        if "identifiers" in want:
            same("patient.identifiers", [i["value"] for i in want["identifiers"]],
                 [i["value"] for i in have["identifiers"]])
            for n, (w, h) in enumerate(zip(want["identifiers"], have["identifiers"], strict=False)):
                assigner = w.get("assigner")
                okay = (h["system"] is None if assigner is None else
                        assigner == h["assigner"] or h["system"] in (f"urn:oid:{assigner}", f"urn:id:{assigner}"))
                same(f"patient.identifiers[{n}].assigner", assigner, assigner if okay else h["system"] or h["assigner"])
        # The name as the source writes it may be one of several forms (a Han name and its pinyin, IPS/EU documents)
        named = "family" in want and "given" in want and (want["family"], want["given"]) in have["names"]
        for key in ("family", "given", "birth_date", "gender"):
            if key in want:
                same(f"patient.{key}", want[key], want[key] if named and key in ("family", "given") else have[key])
    for key in ("status", "conclusion_code"):
        if key in expected.get("report", {}):
            same(f"report.{key}", expected["report"][key], got["report"][key])
    if "variants" in expected:
        same("variants (count)", len(expected["variants"]), len(got["variants"]))
        for n, (w, h) in enumerate(zip(expected["variants"], got["variants"], strict=False)):
            label = f"variants[{n}]" + (f" ({w['group']})" if "group" in w else "")
            for key, value in w.items():
                if key in h:
                    same(f"{label}.{key}", value, h[key])
    if "lab_observations" in expected:
        same("lab_observations", expected["lab_observations"], got["lab_observations"])
    if "has_specimen" in expected:
        same("has_specimen", expected["has_specimen"], got["has_specimen"])
    return bad, count, [k for k in expected if k not in CHECKED]
