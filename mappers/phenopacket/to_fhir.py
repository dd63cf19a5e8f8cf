"""Phenopacket (or the phenopackets of a Family or Cohort) → FHIR R4 Bundle.

Individual → Patient; PhenotypicFeature → Observation shaped as the Phenomics Exchange IG's phenotype (code = HPO
term, value Present/Absent LOINC LA9633-4/LA9634-2, onset components of its temporary-phenotype-component codes,
severity HP:0012824 and modifier HP:0012823 components); Disease → Condition (excluded: verificationStatus
refuted); Biosample → Specimen; Measurement → Observation; MedicalAction → Procedure / MedicationStatement;
Interpretation → Genomics Reporting IG genomic-report with a variant Observation per variant interpretation and a
diagnostic-implication derived from it (genomic.py); metaData → Provenance (recorded = metaData.created; no clock).
Everything the mapping does not carry is reported (unmapped.py)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from mappers.conversion import Conversion
from mappers.exceptions import UnsupportedMessage
from mappers.phenopacket import MAPPER_VERSION, genomic, systems, times, unmapped
from mappers.phenopacket.context import Context, ext
from mappers.phenopacket.schema import Document, loads, read
from mappers.phenopacket.systems import EXT
from mappers.terminology import translate
from mappers.toolkit.bundle import bundle
from mappers.toolkit.provenance import converter_device

OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PRESENT = {"coding": [{"system": "http://loinc.org", "code": "LA9633-4", "display": "Present"}]}
ABSENT = {"coding": [{"system": "http://loinc.org", "code": "LA9634-2", "display": "Absent"}]}
SEVERITY = {"coding": [{"system": "http://human-phenotype-ontology.org", "code": "HP:0012824", "display": "Severity"}]}
MODIFIER = {"coding": [{"system": "http://human-phenotype-ontology.org", "code": "HP:0012823",
                        "display": "Clinical modifier"}]}
# Phenomics Exchange IG (1.0.0-ballot) CodeSystem temporary-phenotype-component: onset components by value type
PHENOMICS_COMPONENT = "http://hl7.org/fhir/uv/phenomics-exchange/CodeSystem/temporary-phenotype-component"
ONSET_CODES = {"Age": "AGE_ONSET", "Range": "AGE_ONSET_RANGE", "CodeableConcept": "AGE_ONSET_CODED",
               "Quantity": "AGE_ONSET_GESTATIONAL"}
BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
DATA_ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
GENDER_IDENTITY = "http://hl7.org/fhir/StructureDefinition/patient-genderIdentity"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
MAX_RESOURCES = 10_000  # a phenopacket holds tens; a Bundle is built in memory (a cohort goes to bulk jobs)
# FHIR choice types that can hold each TimeElement form (R4 Condition.onset[x]/abatement[x], Procedure.performed[x])
ONSET_TYPES = ("Age", "Range", "DateTime", "Period", "String")


def category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBS_CATEGORY, "code": code}]}]


def to_fhir(data: bytes, bundle_type: str = "collection") -> Conversion:
    """A phenopacket, family or cohort (JSON) → a Bundle with its conversion report. Raises ParseError for input
    the official schema refuses."""
    raw = loads(data)
    check_size("document", members_of(raw))
    return convert(read(raw), bundle_type)


def convert(document: Document, bundle_type: str = "collection") -> Conversion:
    doc = document.doc
    ctx = Context(document.kind)
    if document.kind == "Phenopacket":
        members = [("", doc)]
    elif document.kind == "Family":
        members = [("proband", doc.get("proband") or {})]
        members += [(f"relatives[{i}]", r) for i, r in enumerate(doc.get("relatives") or [])]
    else:
        members = [(f"members[{i}]", m) for i, m in enumerate(doc.get("members") or [])]
    check_size(document.kind, [m for _, m in members])
    top_id = str(doc.get("id", ""))
    for path, packet in members:
        ctx.key = (document.kind, top_id, path, str(packet.get("id", "")))
        phenopacket(ctx, packet, f"{path}." if path else "")
    ctx.key = (document.kind, top_id)
    if document.kind != "Phenopacket":
        ctx.use("id")
        ctx.resources.extend(provenance(ctx, doc, "", ctx.resources[:]))
    ctx.issues.extend(unmapped.report(doc, ctx))
    out = bundle(ctx.resources, bundle_type, ("phenopacket", document.kind, top_id),
                 identifier={"system": systems.ID, "value": top_id} if top_id else None)
    return Conversion(out, tuple(ctx.issues), ctx.origins)


def _list(doc: Any, camel: str) -> list[Any]:
    """A list field by its JSON name or its proto name (raw input may use either)."""
    if not isinstance(doc, dict):
        return []
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    value = doc.get(camel, doc.get(snake))
    return value if isinstance(value, list) else []


def _resources_of(pp: Any) -> int:
    """How many resources a phenopacket gives, about (one per list element; two per variant)."""
    n = 2
    for key in ("phenotypicFeatures", "measurements", "biosamples", "diseases", "medicalActions", "files"):
        n += len(_list(pp, key))
    for interp in _list(pp, "interpretations"):
        diagnosis = interp.get("diagnosis") if isinstance(interp, dict) else None
        n += 1 + 2 * len(_list(diagnosis, "genomicInterpretations"))
    return n


def check_size(kind: str, phenopackets: list[Any]) -> None:
    """Refuse a document whose Bundle would pass MAX_RESOURCES (before the schema's slower parse when given raw
    JSON)."""
    size = sum(_resources_of(p) for p in phenopackets)
    if size > MAX_RESOURCES:
        raise UnsupportedMessage(f"the {kind} would give {size:,} resources; one Bundle holds at most "
                                 f"{MAX_RESOURCES:,} (convert a cohort as a bulk job: one Bundle per member)",
                                 details="phenopacket-too-many-resources")


def members_of(doc: Any) -> list[Any]:
    """The phenopackets of a raw Phenopacket, Family or Cohort JSON object."""
    if not isinstance(doc, dict):
        return []
    if "members" in doc:
        return _list(doc, "members")
    if "proband" in doc or "relatives" in doc:
        return [doc.get("proband"), *_list(doc, "relatives")]
    return [doc]



def phenopacket(ctx: Context, pp: dict[str, Any], at: str) -> None:
    """The resources of one phenopacket (`at`: its path in the document, '' or 'members[2].')."""
    first = len(ctx.resources)
    ctx.use(f"{at}id")
    subject = pp.get("subject") or {}
    pref = ctx.add(patient(ctx, subject, f"{at}subject"), f"{at}subject")
    biosamples: dict[str, dict[str, str]] = {}
    for i, bs in enumerate(pp.get("biosamples") or []):
        ref = ctx.add(specimen(ctx, bs, pref, subject, f"{at}biosamples[{i}]", pp), f"{at}biosamples[{i}]")
        biosamples[str(bs.get("id", ""))] = ref
    for i, pf in enumerate(pp.get("phenotypicFeatures") or []):
        ctx.add(phenotype(ctx, pf, pref, f"{at}phenotypicFeatures[{i}]"), f"{at}phenotypicFeatures[{i}]")
    for i, m in enumerate(pp.get("measurements") or []):
        ctx.add(measurement(ctx, m, pref, f"{at}measurements[{i}]"), f"{at}measurements[{i}]")
    for i, d in enumerate(pp.get("diseases") or []):
        ctx.add(condition(ctx, d, pref, f"{at}diseases[{i}]"), f"{at}diseases[{i}]")
    for i, ma in enumerate(pp.get("medicalActions") or []):
        res = medical_action(ctx, ma, pref, f"{at}medicalActions[{i}]")
        if res is not None:
            ctx.add(res, f"{at}medicalActions[{i}]")
    for i, interp in enumerate(pp.get("interpretations") or []):
        genomic.interpretation(ctx, interp, pref, str(subject.get("id", "")), biosamples,
                               f"{at}interpretations[{i}]")
    for i, f in enumerate(pp.get("files") or []):
        if f.get("uri"):  # an Attachment needs content: a file without a uri is reported as not mapped
            ctx.add(document(ctx, f, pref, f"{at}files[{i}]"), f"{at}files[{i}]")
    made = ctx.resources[first:]
    ctx.resources.extend(provenance(ctx, pp, at, made))


# ---- subject -----------------------------------------------------------------------------------------------

def patient(ctx: Context, ind: dict[str, Any], where: str) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", "id": ctx.rid("Patient", str(ind.get("id", "")))}
    exts: list[dict[str, Any]] = []
    if "karyotypicSex" in ind:
        exts.append(ext("karyotypic-sex", "Code", ind["karyotypicSex"]))
    if "gender" in ind:
        exts.append({"url": GENDER_IDENTITY, "valueCodeableConcept": systems.concept(ind["gender"])})
    if "taxonomy" in ind:
        exts.append(ext("taxonomy", "CodeableConcept", systems.concept(ind["taxonomy"])))
    if "timeAtLastEncounter" in ind:
        exts.append(ext("time-at-last-encounter", *times.value(ind["timeAtLastEncounter"],
                                                               ctx.where(f"{where}.timeAtLastEncounter"))))
    vital = ind.get("vitalStatus") or {}
    if "causeOfDeath" in vital:
        exts.append(ext("cause-of-death", "CodeableConcept", systems.concept(vital["causeOfDeath"])))
    if "survivalTimeInDays" in vital:
        exts.append(ext("survival-time-in-days", "UnsignedInt", int(vital["survivalTimeInDays"])))
    death = vital.get("timeOfDeath")
    if death is not None and "timestamp" not in death:
        exts.append(ext("time-of-death", *times.value(death, ctx.where(f"{where}.vitalStatus.timeOfDeath"))))
    if exts:
        res["extension"] = exts
    idents = []
    if ind.get("id"):
        idents.append({"system": systems.INDIVIDUAL, "value": str(ind["id"])})
    idents += [{"system": systems.ALTERNATE_ID, "value": str(a)} for a in ind.get("alternateIds") or []]
    if idents:
        res["identifier"] = idents
    if "sex" in ind:
        t = translate("phenopacket-sex-to-administrative-gender", ind["sex"])
        if t:
            res["gender"] = t.code
    if "dateOfBirth" in ind:
        born = str(ind["dateOfBirth"])
        res["birthDate"] = born[:10]
        if not born.endswith("T00:00:00Z"):
            res["_birthDate"] = {"extension": [{"url": BIRTH_TIME, "valueDateTime": born}]}
    status = vital.get("status")
    if status == "DECEASED":
        if death is not None and "timestamp" in death:
            res["deceasedDateTime"] = str(death["timestamp"])
        else:
            res["deceasedBoolean"] = True
    elif status == "ALIVE":
        res["deceasedBoolean"] = False
    ctx.use(*(f"{where}.{k}" for k in ("id", "alternateIds", "dateOfBirth", "timeAtLastEncounter", "sex",
                                        "karyotypicSex", "gender", "taxonomy")),
            *(f"{where}.vitalStatus.{k}" for k in ("status", "timeOfDeath", "causeOfDeath", "survivalTimeInDays")))
    return res


# ---- phenotypic features -----------------------------------------------------------------------------------

def time_component(field_name: str, te: dict[str, Any], where: str) -> dict[str, Any]:
    """An onset (Phenomics Exchange codes where it has one for the form) or resolution component (`where`: the
    TimeElement's path)."""
    kind, val = times.value(te, where)
    key = "valueQuantity" if kind in ("Age", "Quantity") else f"value{kind}"
    if field_name == "onset" and kind in ONSET_CODES:
        code = {"coding": [{"system": PHENOMICS_COMPONENT, "code": ONSET_CODES[kind]}]}
    else:
        suffix = {"Age": "-age", "Quantity": "-gestational-age"}.get(kind, "")
        code = systems.own(field_name + suffix)
    return {"code": code, key: val}


def phenotype(ctx: Context, pf: dict[str, Any], pref: dict[str, str], where: str) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "id": ctx.rid("Observation", where), "status": "final",
                           "category": category("exam"), "code": systems.concept(pf.get("type") or {}),
                           "subject": pref, "valueCodeableConcept": ABSENT if pf.get("excluded") else PRESENT}
    if pf.get("description"):
        obs["note"] = [{"text": str(pf["description"])}]
    comps = []
    if "severity" in pf:
        comps.append({"code": SEVERITY, "valueCodeableConcept": systems.concept(pf["severity"])})
    comps += [{"code": MODIFIER, "valueCodeableConcept": systems.concept(m)} for m in pf.get("modifiers") or []]
    for name in ("onset", "resolution"):
        if name in pf:
            comps.append(time_component(name, pf[name], ctx.where(f"{where}.{name}")))
    for j, ev in enumerate(pf.get("evidence") or []):
        if "evidenceCode" in ev:
            comp = {"code": systems.own("evidence"), "valueCodeableConcept": systems.concept(ev["evidenceCode"])}
            ref = ev.get("reference") or {}
            exts = [ext(name, "String", str(ref[key])) for key, name in
                    (("id", "external-reference-id"), ("reference", "reference"),
                     ("description", "external-reference-description")) if ref.get(key)]
            if exts:
                comp = {"extension": exts, **comp}
            comps.append(comp)
            ctx.use(f"{where}.evidence[{j}].evidenceCode", f"{where}.evidence[{j}].reference")
    if comps:
        obs["component"] = comps
    ctx.use(*(f"{where}.{k}" for k in ("type", "excluded", "description", "severity", "modifiers", "onset",
                                        "resolution")))
    return obs


# ---- measurements ------------------------------------------------------------------------------------------

def quantity(value: Any, unit: dict[str, Any] | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value if value is not None else 0}
    if unit:
        c = systems.coding(unit)
        if "display" in c:
            q["unit"] = c["display"]
        q.update({"system": c["system"], "code": c["code"]})
    return q


@cache
def vital_signs() -> frozenset[str]:
    return frozenset(json.loads((Path(__file__).parent / "tables" / "vital-signs.json").read_text("utf-8"))["codes"])


def measurement(ctx: Context, m: dict[str, Any], pref: dict[str, str], where: str) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "id": ctx.rid("Observation", where), "status": "final",
                           "category": category("laboratory"), "code": systems.concept(m.get("assay") or {}),
                           "subject": pref}
    exts: list[dict[str, Any]] = []
    vital = systems.coding(m.get("assay") or {}).get("code") in vital_signs() and \
        systems.coding(m.get("assay") or {})["system"] == "http://loinc.org"
    if vital:  # R4 vital signs profiles apply by code (vs-1..): their category, and an effective[x]
        obs["category"] = [*obs["category"], *category("vital-signs")]
    te = m.get("timeObserved")
    kind, val = times.value(te, ctx.where(f"{where}.timeObserved")) if te is not None else ("", None)
    if kind in ("DateTime", "Period"):
        obs[f"effective{kind}"] = val
    else:
        if te is not None:
            exts.append(ext("time-observed", kind, val))
        if vital:
            obs["_effectiveDateTime"] = {"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}
    value = m.get("value") or {}
    if "quantity" in value:
        q = value["quantity"]
        obs["valueQuantity"] = quantity(q.get("value"), q.get("unit"))
        rr = q.get("referenceRange")
        if rr is not None:
            obs["referenceRange"] = [{"low": quantity(rr.get("low"), rr.get("unit")),
                                      "high": quantity(rr.get("high"), rr.get("unit"))}]
    elif "ontologyClass" in value:
        obs["valueCodeableConcept"] = systems.concept(value["ontologyClass"])
    complex_value = m.get("complexValue") or {}
    comps = []
    for tq in complex_value.get("typedQuantities") or []:
        q = tq.get("quantity") or {}
        comps.append({"code": systems.concept(tq.get("type") or {}),
                      "valueQuantity": quantity(q.get("value"), q.get("unit"))})
    if comps:
        obs["component"] = comps
    if m.get("description"):
        obs["note"] = [{"text": str(m["description"])}]
    proc = m.get("procedure") or {}
    if "code" in proc:
        obs["method"] = systems.concept(proc["code"])
    if "bodySite" in proc:
        obs["bodySite"] = systems.concept(proc["bodySite"])
    if exts:
        obs["extension"] = exts
    ctx.use(*(f"{where}.{k}" for k in ("assay", "description", "value", "complexValue", "timeObserved",
                                        "procedure.code", "procedure.bodySite")))
    return obs


# ---- diseases ----------------------------------------------------------------------------------------------

def _choice(holder: dict[str, Any], stem: str, ext_name: str, te: dict[str, Any], where: str) -> None:
    """A TimeElement (at `where`) into `stem`[x] when the element takes its form, else into this mapper's
    extension."""
    kind, val = times.value(te, where)
    if kind in ONSET_TYPES:
        holder[stem + kind] = val
    else:
        holder.setdefault("extension", []).append(ext(ext_name, kind, val))


def condition(ctx: Context, d: dict[str, Any], pref: dict[str, str], where: str) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Condition", "id": ctx.rid("Condition", where)}
    if "laterality" in d:
        res["extension"] = [ext("laterality", "CodeableConcept", systems.concept(d["laterality"]))]
    if "resolution" in d:  # R4 con-4: an abated condition is resolved
        res["clinicalStatus"] = {"coding": [{"system": CONDITION_CLINICAL, "code": "resolved"}]}
    if d.get("excluded"):
        res["verificationStatus"] = {"coding": [{"system": CONDITION_VERIFICATION, "code": "refuted"}]}
    res["code"] = systems.concept(d.get("term") or {})
    if "primarySite" in d:
        res["bodySite"] = [systems.concept(d["primarySite"])]
    res["subject"] = pref
    if "onset" in d:
        _choice(res, "onset", "onset", d["onset"], ctx.where(f"{where}.onset"))
    if "resolution" in d:
        _choice(res, "abatement", "resolution", d["resolution"], ctx.where(f"{where}.resolution"))
    stages = [{"summary": systems.concept(s)} for s in d.get("diseaseStage") or []]
    stages += [{"summary": systems.concept(s), "type": systems.own("tnm-finding")}
               for s in d.get("clinicalTnmFinding") or []]
    if stages:
        res["stage"] = stages
    ctx.use(*(f"{where}.{k}" for k in ("term", "excluded", "onset", "resolution", "diseaseStage",
                                        "clinicalTnmFinding", "primarySite", "laterality")))
    return res


# ---- biosamples --------------------------------------------------------------------------------------------

def specimen(ctx: Context, bs: dict[str, Any], pref: dict[str, str], subject: dict[str, Any], where: str,
             pp: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Specimen", "id": ctx.rid("Specimen", str(bs.get("id", where)))}
    exts = []
    if "taxonomy" in bs:
        exts.append(ext("taxonomy", "CodeableConcept", systems.concept(bs["taxonomy"])))
    if "materialSample" in bs:
        exts.append(ext("material-sample", "CodeableConcept", systems.concept(bs["materialSample"])))
    collection: dict[str, Any] = {}
    te = bs.get("timeOfCollection")
    if te is not None:
        kind, val = times.value(te, ctx.where(f"{where}.timeOfCollection"))
        if kind in ("DateTime", "Period"):
            collection[f"collected{kind}"] = val
        else:
            exts.append(ext("time-of-collection", kind, val))
    if exts:
        res["extension"] = exts
    if bs.get("id"):
        res["identifier"] = [{"system": systems.BIOSAMPLE, "value": str(bs["id"])}]
    if "sampleType" in bs:
        res["type"] = systems.concept(bs["sampleType"])
    ctx.use(f"{where}.id", f"{where}.sampleType", f"{where}.taxonomy", f"{where}.materialSample",
            f"{where}.timeOfCollection", f"{where}.description", f"{where}.sampledTissue",
            f"{where}.procedure.code")
    individual = bs.get("individualId")
    if individual is None or individual == subject.get("id"):
        res["subject"] = pref
        ctx.use(f"{where}.individualId")
    parent = bs.get("derivedFromId")
    if parent is not None and any(b.get("id") == parent for b in pp.get("biosamples") or []):
        res["parent"] = [{"reference": f"urn:uuid:{ctx.rid('Specimen', str(parent))}"}]
        ctx.use(f"{where}.derivedFromId")
    if "procedure" in bs and "code" in bs["procedure"]:
        collection["method"] = systems.concept(bs["procedure"]["code"])
    if "sampledTissue" in bs:
        collection["bodySite"] = systems.concept(bs["sampledTissue"])
    if collection:
        res["collection"] = collection
    if bs.get("description"):
        res["note"] = [{"text": str(bs["description"])}]
    return res


# ---- medical actions ---------------------------------------------------------------------------------------

def medical_action(ctx: Context, ma: dict[str, Any], pref: dict[str, str], where: str) -> dict[str, Any] | None:
    if "procedure" in ma:
        p = ma["procedure"]
        res: dict[str, Any] = {"resourceType": "Procedure", "id": ctx.rid("Procedure", where), "status": "completed"}
        if "treatmentTerminationReason" in ma:
            res["statusReason"] = systems.concept(ma["treatmentTerminationReason"])
        res["code"] = systems.concept(p.get("code") or {})
        res["subject"] = pref
        if "performed" in p:
            _choice(res, "performed", "performed", p["performed"], ctx.where(f"{where}.procedure.performed"))
        if "bodySite" in p:
            res["bodySite"] = [systems.concept(p["bodySite"])]
        ctx.use(f"{where}.procedure")
    elif "treatment" in ma:
        t = ma["treatment"]
        res = {"resourceType": "MedicationStatement", "id": ctx.rid("MedicationStatement", where),
               "status": "completed"}
        if "treatmentTerminationReason" in ma:
            res["statusReason"] = [systems.concept(ma["treatmentTerminationReason"])]
        if "drugType" in t:
            res["category"] = {"coding": [{"system": systems.CS + "drug-type", "code": t["drugType"]}]}
        res["medicationCodeableConcept"] = systems.concept(t.get("agent") or {})
        res["subject"] = pref
        route = {"route": systems.concept(t["routeOfAdministration"])} if "routeOfAdministration" in t else {}
        dosages = []
        for di in t.get("doseIntervals") or []:
            dosage: dict[str, Any] = {}
            timing: dict[str, Any] = {}
            if "interval" in di:
                timing["repeat"] = {"boundsPeriod": {k: str(v) for k, v in di["interval"].items()}}
            if "scheduleFrequency" in di:
                timing["code"] = systems.concept(di["scheduleFrequency"])
            if timing:
                dosage["timing"] = timing
            dosage.update(route)
            if "quantity" in di:
                q = di["quantity"]
                dosage["doseAndRate"] = [{"doseQuantity": quantity(q.get("value"), q.get("unit"))}]
            dosages.append(dosage)
        if not dosages and route:
            dosages.append(route)
        if dosages:
            res["dosage"] = dosages
        ctx.use(*(f"{where}.treatment.{k}" for k in ("agent", "routeOfAdministration", "doseIntervals", "drugType")))
    elif "radiationTherapy" in ma:
        rt = ma["radiationTherapy"]
        res = {"resourceType": "Procedure", "id": ctx.rid("Procedure", where), "status": "completed"}
        if "treatmentTerminationReason" in ma:
            res["statusReason"] = systems.concept(ma["treatmentTerminationReason"])
        res["category"] = {"coding": [{"system": systems.CS + "medical-action", "code": "radiation-therapy"}]}
        res["code"] = systems.concept(rt.get("modality") or {})
        res["subject"] = pref
        if "bodySite" in rt:
            res["bodySite"] = [systems.concept(rt["bodySite"])]
        exts = []
        if "dosage" in rt:  # the total dose in gray (phenopacket schema v2 RadiationTherapy)
            exts.append(ext("radiation-dosage", "Quantity", {"value": int(rt["dosage"]), "unit": "Gy",
                                                             "system": "http://unitsofmeasure.org", "code": "Gy"}))
        if "fractions" in rt:
            exts.append(ext("radiation-fractions", "Integer", int(rt["fractions"])))
        if exts:
            res["extension"] = exts
        ctx.use(f"{where}.radiationTherapy")
    else:
        return None  # therapeutic regimens: reported as not mapped
    if "treatmentTarget" in ma:
        res["reasonCode"] = [systems.concept(ma["treatmentTarget"])]
    exts = [ext("treatment-intent", "CodeableConcept", systems.concept(ma["treatmentIntent"]))] \
        if "treatmentIntent" in ma else []
    if "responseToTreatment" in ma:
        exts.append(ext("response-to-treatment", "CodeableConcept", systems.concept(ma["responseToTreatment"])))
    exts += [ext("adverse-event", "CodeableConcept", systems.concept(a)) for a in ma.get("adverseEvents") or []]
    if exts:
        res["extension"] = [*exts, *res.get("extension", [])]
    ctx.use(*(f"{where}.{k}" for k in ("treatmentTarget", "treatmentIntent", "responseToTreatment",
                                        "adverseEvents", "treatmentTerminationReason")))
    return res


# ---- files ----

def document(ctx: Context, f: dict[str, Any], pref: dict[str, str], where: str) -> dict[str, Any]:
    """File → DocumentReference: the uri as the attachment's url, each map entry a key/value extension (keys
    sorted: the same input gives the same bytes)."""
    exts = []
    for field_name, ext_name in (("individualToFileIdentifiers", "individual-to-file-identifier"),
                                 ("fileAttributes", "file-attribute")):
        for key, value in sorted((f.get(field_name) or {}).items()):
            exts.append({"url": EXT + ext_name, "extension": [{"url": "key", "valueString": str(key)},
                                                              {"url": "value", "valueString": str(value)}]})
    res: dict[str, Any] = {"resourceType": "DocumentReference", "id": ctx.rid("DocumentReference", where)}
    if exts:
        res["extension"] = exts
    res.update({"status": "current", "subject": pref, "content": [{"attachment": {"url": str(f["uri"])}}]})
    ctx.use(f"{where}.uri", f"{where}.individualToFileIdentifiers", f"{where}.fileAttributes")
    return res


# ---- metaData ----------------------------------------------------------------------------------------------

def provenance(ctx: Context, pp: dict[str, Any], at: str, targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """metaData → a Provenance of the phenopacket's resources (recorded = metaData.created, an instant of the
    source) and the converter Device; none when metaData states no creation time (mappers read no clock)."""
    meta = pp.get("metaData") or {}
    created = meta.get("created")
    if not created:
        return []
    device = converter_device(MAPPER_VERSION)
    ref = {"reference": f"urn:uuid:{device['id']}"}
    agents = [{"type": {"coding": [{"system": PARTICIPANT, "code": "assembler"}]}, "who": ref}]
    if meta.get("createdBy"):
        agents.append({"type": {"coding": [{"system": PARTICIPANT, "code": "author"}]},
                       "who": {"display": str(meta["createdBy"])}})
    if meta.get("submittedBy"):
        agents.append({"type": {"coding": [{"system": PARTICIPANT, "code": "enterer"}]},
                       "who": {"display": str(meta["submittedBy"])}})
    source: dict[str, Any] = {"role": "source", "what": {"identifier": {"system": systems.ID,
                                                                        "value": str(pp.get("id", ""))}}}
    if meta.get("phenopacketSchemaVersion"):
        source["extension"] = [ext("schema-version", "String", str(meta["phenopacketSchemaVersion"]))]
    entities = [source]
    for r in meta.get("resources") or []:
        exts = [ext(name, kind, str(r[key])) for key, name, kind in
                (("url", "resource-url", "Uri"), ("version", "resource-version", "String"),
                 ("namespacePrefix", "namespace-prefix", "String"), ("iriPrefix", "iri-prefix", "String")) if key in r]
        what: dict[str, Any] = {"type": "CodeSystem", "identifier": {"system": systems.RESOURCE,
                                                                     "value": str(r.get("id", ""))}}
        if r.get("name"):
            what["display"] = str(r["name"])
        entities.append({**({"extension": exts} if exts else {}), "role": "source", "what": what})
    for x in meta.get("externalReferences") or []:
        what = {"type": "DocumentReference", "identifier": {"system": systems.EXTERNAL_REFERENCE,
                                                            "value": str(x.get("id", ""))}}
        if x.get("description"):
            what["display"] = str(x["description"])
        ent: dict[str, Any] = {"role": "source", "what": what}
        if x.get("reference"):
            ent["extension"] = [ext("reference", "String", str(x["reference"]))]
        entities.append(ent)
    target = [{"reference": f"urn:uuid:{t['id']}"} for t in targets]
    prov = {"resourceType": "Provenance", "id": ctx.rid("Provenance", at), "target": target,
            "recorded": str(created), "activity": _activity("CREATE"), "agent": agents, "entity": entities}
    ctx.origins[prov["id"]] = ctx.where(f"{at}metaData")
    ctx.use(*(f"{at}metaData.{k}" for k in ("created", "createdBy", "submittedBy", "resources",
                                            "phenopacketSchemaVersion", "externalReferences")))
    out = [prov]
    for i, update in enumerate(meta.get("updates") or []):
        if not update.get("timestamp"):
            continue  # Provenance.recorded is 1..1: reported as not mapped
        who = ({"type": {"coding": [{"system": PARTICIPANT, "code": "author"}]},
                "who": {"display": str(update["updatedBy"])}} if update.get("updatedBy") else agents[0])
        changed = {"resourceType": "Provenance", "id": ctx.rid("Provenance", at, "update", str(i)), "target": target,
                   "recorded": str(update["timestamp"]), "activity": _activity("UPDATE"), "agent": [who],
                   "entity": [{"role": "revision", "what": source["what"]}]}
        if update.get("comment"):
            changed["reason"] = [{"text": str(update["comment"])}]
        ctx.origins[changed["id"]] = ctx.where(f"{at}metaData.updates[{i}]")
        ctx.use(f"{at}metaData.updates[{i}]")
        out.append(changed)
    return [*out, device]


def _activity(code: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": code}]}
