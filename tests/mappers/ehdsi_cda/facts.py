"""The facts of an IPS document that eHDSI CDA carries, as a set to compare across a round trip."""

from __future__ import annotations

from typing import Any

from mappers.ehdsi_cda import codes as C

DATES = ("onsetDateTime", "abatementDateTime", "effectiveDateTime", "occurrenceDateTime", "performedDateTime",
         "timingDateTime", "birthDate")
CODES = ("code", "vaccineCode", "valueCodeableConcept", "medicationCodeableConcept", "type", "route")


def _codes(cc: Any) -> set[tuple[str, str]]:
    """Codings CDA can name (the system has an OID)."""
    if not isinstance(cc, dict):
        return set()
    return {(c["system"], c["code"]) for c in cc.get("coding", []) if C.system_oid(c.get("system", ""))
            and c.get("code")}


def facts(bundle: dict[str, Any]) -> set[tuple[str, ...]]:
    by_ref = {}
    for e in bundle["entry"]:
        by_ref[e.get("fullUrl", "")] = e["resource"]
        by_ref[f"{e['resource']['resourceType']}/{e['resource'].get('id')}"] = e["resource"]
    out: set[tuple[str, ...]] = set()
    comp = bundle["entry"][0]["resource"]
    for sec in comp.get("section", []):
        code = next((c["code"] for c in sec.get("code", {}).get("coding", [])), "")
        out.add(("section", code))
        todo = [by_ref.get(x.get("reference", "")) for x in sec.get("entry", [])]
        while todo:
            res = todo.pop()
            if not res:
                continue
            rtype = res["resourceType"]
            for k in ("hasMember", "result"):
                todo += [by_ref.get(x.get("reference", "")) for x in res.get(k, [])]
            for k in ("medicationReference", "device"):
                if k in res:
                    todo.append(by_ref.get(res[k].get("reference", "")))
            kind = "Observation" if rtype in ("Observation", "DiagnosticReport") else rtype
            for k in CODES:
                for system, c in _codes(res.get(k)):
                    if k == "medicationCodeableConcept":  # CDA names the product: a Medication's code
                        out.add(("Medication", "code", system, c))
                    elif not (rtype == "DiagnosticReport" and k == "code"):
                        out.add((kind, k, system, c))
            for k in DATES:
                if isinstance(res.get(k), str):
                    out.add((kind, k, res[k][:10]))
            for comp_ in res.get("component", []):
                for system, c in _codes(comp_.get("code")):
                    out.add(("Observation", "code", system, c))
                if "valueQuantity" in comp_:
                    out.add(("Observation", "value", str(comp_["valueQuantity"].get("value"))))
            if "valueQuantity" in res:
                out.add((kind, "value", str(res["valueQuantity"].get("value"))))
            for k in ("clinicalStatus", "verificationStatus"):
                for c in {c.get("code") for c in res.get(k, {}).get("coding", [])}:
                    out.add((kind, k, c))
            for k in ("criticality", "status") if rtype in ("AllergyIntolerance", "Immunization") else ("criticality",):
                if isinstance(res.get(k), str):
                    out.add((kind, k, res[k]))
            for rx in res.get("reaction", []):
                for m in rx.get("manifestation", []):
                    for _system, c in _codes(m):
                        out.add((kind, "manifestation", c))
                if rx.get("severity"):
                    out.add((kind, "severity", rx["severity"]))
            if res.get("lotNumber"):
                out.add((kind, "lot", res["lotNumber"]))
            for ing in res.get("ingredient", []):
                for _system, c in _codes(ing.get("itemCodeableConcept")):
                    out.add((kind, "ingredient", c))
    pat = by_ref.get(comp["subject"]["reference"]) or {}
    out.add(("Patient", "gender", pat.get("gender", "")))
    out.add(("Patient", "birthDate", pat.get("birthDate", "")))
    for n in pat.get("name", []):
        out.add(("Patient", "name", n.get("family", ""), " ".join(n.get("given", []))))
    for i in pat.get("identifier", []):
        if C.id_root(i.get("system", "")):
            out.add(("Patient", "identifier", i.get("value", "")))
    return out
