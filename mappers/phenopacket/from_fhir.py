"""FHIR R4 Bundle → Phenopacket v2 JSON, checked with the official schema before it is returned.

Reads what to_fhir writes, and genomic Bundles of other sources (HL7 v2 / VCF conversions, other servers): the
one Patient is the subject; HPO-coded Observations are phenotypic features, other plain Observations
measurements; Conditions diseases; Specimens biosamples; Procedures and MedicationStatements medical actions;
each genomic report an interpretation, its variants (recognised by mappers.fhir.genomics, any IG release) the
variant interpretations, with the ACMG class and the disease from the diagnostic implications derived from them.
metaData comes from this mapper's Provenance, else from the Bundle (created: its timestamp or a Provenance's
recorded time; resources: the ontologies the terms name). What has no place in a phenopacket is reported."""

from __future__ import annotations

from typing import Any

import orjson

from mappers.exceptions import EmitError, Issue, MappingError, ParseError
from mappers.fhir import genomics as reader
from mappers.phenopacket import genomic, schema, systems, times
from mappers.phenopacket.systems import EXT
from mappers.phenopacket.to_fhir import (
    BIRTH_TIME,
    GENDER_IDENTITY,
    MODIFIER,
    OBS_CATEGORY,
    ONSET_CODES,
    PARTICIPANT,
    PHENOMICS_COMPONENT,
    SEVERITY,
)
from mappers.terminology import translate
from mappers.toolkit import genomics as gr

SCHEMA_VERSION = "2.0"
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
# Variant facts (mappers.toolkit.genomics.Variant fields) a VariationDescriptor has no field for
_NOT_CARRIED = ("cytogenetic_locations", "outer", "inner", "source_class", "inheritance", "inheritance_basis",
                "read_depth", "copy_number", "confidence", "method")
_ONSET_BY_CODE = {code: kind for kind, code in ONSET_CODES.items()}
_GENOMIC_PROCEDURES = {"genomic-study", "genomic-study-analysis"}


def _ext(res: Any, name: str) -> list[dict[str, Any]]:
    exts = res.get("extension") if isinstance(res, dict) else None
    url = EXT + name if ":" not in name else name
    return [e for e in exts or [] if isinstance(e, dict) and e.get("url") == url]


def _ext_value(res: Any, name: str) -> tuple[str, Any] | None:
    for e in _ext(res, name):
        hit = times.read_value(e, "value")
        if hit:
            return hit
    return None


def _ext_time(res: Any, name: str) -> dict[str, Any] | None:
    hit = _ext_value(res, name)
    return times.time_element(*hit) if hit else None


def _ext_term(res: Any, name: str) -> dict[str, str] | None:
    hit = _ext_value(res, name)
    return systems.term_of(hit[1]) if hit and hit[0] == "CodeableConcept" else None


def _ext_scalar(res: Any, name: str) -> Any:
    hit = _ext_value(res, name)
    return hit[1] if hit else None


def _codes(cc: Any) -> list[dict[str, Any]]:
    codings = cc.get("coding") if isinstance(cc, dict) else None
    return [c for c in codings or [] if isinstance(c, dict)]


def _has(cc: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in _codes(cc))


def _first_code(cc: Any) -> dict[str, Any] | None:
    return next(iter(_codes(cc)), None)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        out[key] = value


class Writer:
    def __init__(self, bundle: dict[str, Any]) -> None:
        self.content = reader.read(bundle)
        self.bundle = bundle
        self.issues: list[Issue] = list(self.content.issues)
        self.subject_id = ""
        self.patient_ref: set[str] = set()
        self.biosample_ids: dict[int, str] = {}
        self.read: set[int] = set()  # entries carried into the phenopacket
        self.dropped: dict[str, tuple[int, str | None]] = {}  # variant facts with no phenopacket field

    def warn(self, details: str, message: str, where: str | None) -> None:
        self.issues.append(Issue("warning", "informational", details, message, where))

    def refers_to_patient(self, ref: Any) -> bool:
        target = self.content.resolve(ref)
        return target is not None and target.type == "Patient"

    # ---- the document ----

    def phenopacket(self) -> dict[str, Any]:
        patients = self.content.of("Patient")
        if len(patients) > 1:
            raise EmitError(f"the Bundle has {len(patients)} patients; a phenopacket has one subject (a Family or "
                            "Cohort is not written from FHIR: convert one patient's Bundle at a time)",
                            details="phenopacket-several-patients", expression=patients[1].where)
        pp: dict[str, Any] = {}
        _put(pp, "id", self.document_id())
        if patients:
            pp["subject"] = self.individual(patients[0])
            self.read.add(patients[0].index)
        biosamples = [self.biosample(e, n) for n, e in enumerate(self.content.of("Specimen"))]
        features, measurements = [], []
        for e in self.content.of("observation"):
            if self.is_phenotype(e.resource):
                features.append(self.feature(e))
            else:
                measurements.append(self.measurement(e))
        _put(pp, "phenotypicFeatures", features)
        _put(pp, "measurements", measurements)
        _put(pp, "biosamples", biosamples)
        _put(pp, "interpretations", self.interpretations())
        _put(pp, "diseases", [self.disease(e) for e in self.content.of("Condition")])
        actions = [self.procedure(e) if e.type == "Procedure" else self.treatment(e)
                   for e in self.content.of("Procedure", "MedicationStatement")
                   if not set(reader.profile_names(e.resource)) & _GENOMIC_PROCEDURES]
        _put(pp, "medicalActions", actions)
        pp["metaData"] = self.meta_data(pp)
        self.report_left_out()
        return pp

    def report_left_out(self) -> None:
        """Resources of the Bundle no phenopacket field holds, by kind; variant facts likewise."""
        left: dict[str, list[reader.Entry]] = {}
        for e in self.content.entries:
            if e.index not in self.read and e.type not in ("Provenance", "Device", "Bundle"):
                left.setdefault(e.kind if e.type == "Observation" else e.type, []).append(e)
        for kind, items in left.items():
            self.warn("phenopacket-resource-not-carried", f"{len(items)} {kind} resource(s) have no place in a "
                      "phenopacket and are not carried", items[0].where)
        for what, (n, where) in self.dropped.items():
            self.warn("phenopacket-variant-fact-not-carried", f"the variant {what} has no VariationDescriptor field "
                      f"and is not carried ({n} variant(s))", where)

    def document_id(self) -> str:
        ident = self.bundle.get("identifier")
        if isinstance(ident, dict) and ident.get("system") == systems.ID and ident.get("value"):
            return str(ident["value"])
        for e in self.content.of("Provenance"):
            for ent in e.resource.get("entity") or []:
                what = (ent.get("what") or {}).get("identifier") or {}
                if what.get("system") == systems.ID and what.get("value"):
                    return str(what["value"])
        return str(self.bundle.get("id") or self.content.digest[:16])

    # ---- subject ----

    def individual(self, e: reader.Entry) -> dict[str, Any]:
        p = e.resource
        out: dict[str, Any] = {}
        idents = [i for i in p.get("identifier") or [] if isinstance(i, dict)]
        own = next((i.get("value") for i in idents if i.get("system") == systems.INDIVIDUAL), None)
        first = next((i.get("value") for i in idents if i.get("value")), None)
        self.subject_id = str(own or first or p.get("id") or "")
        _put(out, "id", self.subject_id)
        _put(out, "alternateIds", [str(i["value"]) for i in idents
                                   if i.get("system") == systems.ALTERNATE_ID and i.get("value")])
        born = p.get("birthDate")
        if isinstance(born, str) and born:
            exact = next((x.get("valueDateTime") for x in (p.get("_birthDate") or {}).get("extension") or []
                          if isinstance(x, dict) and x.get("url") == BIRTH_TIME), None)
            out["dateOfBirth"] = exact or (born + "T00:00:00Z" if len(born) == 10 else None)
            if out["dateOfBirth"] is None:
                del out["dateOfBirth"]
                self.warn("phenopacket-partial-date", f"birthDate {born} is not a full date; a phenopacket "
                          "dateOfBirth is a timestamp: left out", f"{e.where}.birthDate")
        _put(out, "timeAtLastEncounter", _ext_time(p, "time-at-last-encounter"))
        vital: dict[str, Any] = {}
        if p.get("deceasedBoolean") is True or "deceasedDateTime" in p:
            vital["status"] = "DECEASED"
        elif p.get("deceasedBoolean") is False:
            vital["status"] = "ALIVE"
        if isinstance(p.get("deceasedDateTime"), str):
            vital["timeOfDeath"] = {"timestamp": p["deceasedDateTime"]}
        _put(vital, "timeOfDeath", _ext_time(p, "time-of-death"))
        _put(vital, "causeOfDeath", _ext_term(p, "cause-of-death"))
        _put(vital, "survivalTimeInDays", _ext_scalar(p, "survival-time-in-days"))
        _put(out, "vitalStatus", vital)
        gender = p.get("gender")
        if isinstance(gender, str):
            t = translate("phenopacket-sex-to-administrative-gender", gender, reverse=True)
            _put(out, "sex", t.code if t else None)
        _put(out, "karyotypicSex", _ext_scalar(p, "karyotypic-sex"))
        identity = next((x.get("valueCodeableConcept") for x in _ext(p, GENDER_IDENTITY)), None)
        _put(out, "gender", systems.term_of(identity))
        _put(out, "taxonomy", _ext_term(p, "taxonomy"))
        return out

    # ---- phenotypic features and measurements ----

    @staticmethod
    def is_phenotype(obs: dict[str, Any]) -> bool:
        first = _first_code(obs.get("code")) or {}
        if first.get("system") == systems.table()["prefixes"]["HP"]["system"]:
            return True
        exam = any(_has(c, OBS_CATEGORY, "exam") for c in obs.get("category") or [])
        value = obs.get("valueCodeableConcept")
        return exam and (_has(value, "http://loinc.org", "LA9633-4") or _has(value, "http://loinc.org", "LA9634-2"))

    def feature(self, e: reader.Entry) -> dict[str, Any]:
        obs = e.resource
        self.read.add(e.index)
        out: dict[str, Any] = {}
        _put(out, "description", next((n.get("text") for n in obs.get("note") or [] if isinstance(n, dict)), None))
        out["type"] = systems.term_of(obs.get("code")) or {}
        if _has(obs.get("valueCodeableConcept"), "http://loinc.org", "LA9634-2") or obs.get("valueBoolean") is False:
            out["excluded"] = True
        modifiers, evidence = [], []
        for comp in obs.get("component") or []:
            code = _first_code(comp.get("code")) or {}
            value = times.read_value(comp, "value")
            if value is None:
                continue
            if _has(comp.get("code"), SEVERITY["coding"][0]["system"], SEVERITY["coding"][0]["code"]):
                _put(out, "severity", systems.term_of(value[1]))
            elif _has(comp.get("code"), MODIFIER["coding"][0]["system"], MODIFIER["coding"][0]["code"]):
                modifiers.append(systems.term_of(value[1]))
            elif code.get("system") == PHENOMICS_COMPONENT and code.get("code") in _ONSET_BY_CODE:
                kind = _ONSET_BY_CODE[code["code"]]
                _put(out, "onset", times.time_element(kind, value[1]))
            elif code.get("system") == systems.COMPONENT:
                name = str(code.get("code"))
                if name == "evidence":
                    evidence.append({"evidenceCode": systems.term_of(value[1])})
                    continue
                field_name, _, form = name.partition("-")
                kind = {"age": "Age", "gestational-age": "Quantity"}.get(form, value[0])
                if field_name in ("onset", "resolution"):
                    _put(out, field_name, times.time_element(kind, value[1]))
        _put(out, "modifiers", [m for m in modifiers if m])
        _put(out, "evidence", evidence)
        return out

    def measurement(self, e: reader.Entry) -> dict[str, Any]:
        obs = e.resource
        self.read.add(e.index)
        out: dict[str, Any] = {}
        _put(out, "description", next((n.get("text") for n in obs.get("note") or [] if isinstance(n, dict)), None))
        code = obs.get("code") or {}
        out["assay"] = systems.term_of(code) or {"id": "", "label": str(code.get("text", ""))}
        q = obs.get("valueQuantity")
        if isinstance(q, dict):
            quantity: dict[str, Any] = {"unit": self.unit(q)}
            _put(quantity, "value", q.get("value"))
            rr = next((r for r in obs.get("referenceRange") or [] if isinstance(r, dict)), None)
            if rr is not None:
                low, high = rr.get("low") or {}, rr.get("high") or {}
                quantity["referenceRange"] = {"unit": self.unit(low or high)}
                _put(quantity["referenceRange"], "low", low.get("value"))
                _put(quantity["referenceRange"], "high", high.get("value"))
            out["value"] = {"quantity": quantity}
        elif isinstance(obs.get("valueCodeableConcept"), dict):
            out["value"] = {"ontologyClass": systems.term_of(obs["valueCodeableConcept"]) or {}}
        typed = []
        for comp in obs.get("component") or []:
            cq = comp.get("valueQuantity")
            if isinstance(cq, dict):
                item: dict[str, Any] = {"unit": self.unit(cq)}
                _put(item, "value", cq.get("value"))
                typed.append({"type": systems.term_of(comp.get("code")) or {}, "quantity": item})
        if typed:
            out["complexValue"] = {"typedQuantities": typed}
        if "value" not in out and not typed:
            self.warn("phenopacket-measurement-without-value", f"{e.label} has no quantity or coded value; written "
                      "as a measurement without a value", f"{e.where}.value")
        te = times.read_value(obs, "effective")
        _put(out, "timeObserved", times.time_element(*te) if te else _ext_time(obs, "time-observed"))
        proc: dict[str, Any] = {}
        _put(proc, "code", systems.term_of(obs.get("method")))
        _put(proc, "bodySite", systems.term_of(obs.get("bodySite")))
        _put(out, "procedure", proc)
        return out

    @staticmethod
    def unit(q: dict[str, Any]) -> dict[str, str]:
        if q.get("system") and q.get("code"):
            return systems.term({"system": q["system"], "code": q["code"], "display": q.get("unit")})
        return {"id": "", "label": str(q.get("unit", ""))}

    # ---- diseases, biosamples, medical actions ----

    def disease(self, e: reader.Entry) -> dict[str, Any]:
        c = e.resource
        self.read.add(e.index)
        out: dict[str, Any] = {"term": systems.term_of(c.get("code")) or {}}
        if _has(c.get("verificationStatus"), "http://terminology.hl7.org/CodeSystem/condition-ver-status", "refuted"):
            out["excluded"] = True
        onset = times.read_value(c, "onset")
        _put(out, "onset", times.time_element(*onset) if onset else _ext_time(c, "onset"))
        abated = times.read_value(c, "abatement")
        _put(out, "resolution", times.time_element(*abated) if abated else _ext_time(c, "resolution"))
        stages, tnm = [], []
        for s in c.get("stage") or []:
            t = systems.term_of(s.get("summary"))
            if t:
                (tnm if _has(s.get("type"), systems.COMPONENT, "tnm-finding") else stages).append(t)
        _put(out, "diseaseStage", stages)
        _put(out, "clinicalTnmFinding", tnm)
        _put(out, "primarySite", systems.term_of(next(iter(c.get("bodySite") or []), None)))
        _put(out, "laterality", _ext_term(c, "laterality"))
        return out

    def biosample(self, e: reader.Entry, n: int) -> dict[str, Any]:
        s = e.resource
        self.read.add(e.index)
        out: dict[str, Any] = {}
        bid = next((i.get("value") for i in s.get("identifier") or [] if isinstance(i, dict)
                    and i.get("system") == systems.BIOSAMPLE), None) or s.get("id") or f"biosample-{n + 1}"
        self.biosample_ids[e.index] = str(bid)
        out["id"] = str(bid)
        if self.refers_to_patient(s.get("subject")):
            out["individualId"] = "\x00subject"  # the subject's id, filled in once it is known
        parent = self.content.resolve(next(iter(s.get("parent") or []), None))
        if parent is not None and parent.type == "Specimen":
            out["derivedFromId"] = parent.index
        _put(out, "description", next((x.get("text") for x in s.get("note") or [] if isinstance(x, dict)), None))
        coll = s.get("collection") or {}
        _put(out, "sampledTissue", systems.term_of(coll.get("bodySite")))
        _put(out, "sampleType", systems.term_of(s.get("type")))
        _put(out, "taxonomy", _ext_term(s, "taxonomy"))
        te = times.read_value(coll, "collected")
        _put(out, "timeOfCollection", times.time_element(*te) if te else _ext_time(s, "time-of-collection"))
        method = systems.term_of(coll.get("method"))
        if method:
            out["procedure"] = {"code": method}
        _put(out, "materialSample", _ext_term(s, "material-sample"))
        return out

    def _action(self, res: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        self.read.update(e.index for e in self.content.entries if e.resource is res)
        _put(out, "treatmentTarget", systems.term_of(next(iter(res.get("reasonCode") or []), None)))
        _put(out, "treatmentIntent", _ext_term(res, "treatment-intent"))
        _put(out, "responseToTreatment", _ext_term(res, "response-to-treatment"))
        _put(out, "adverseEvents", [t for x in _ext(res, "adverse-event")
                                    if (t := systems.term_of(x.get("valueCodeableConcept")))])
        reason = res.get("statusReason")
        if isinstance(reason, list):
            reason = next(iter(reason), None)
        _put(out, "treatmentTerminationReason", systems.term_of(reason))
        return out

    def procedure(self, e: reader.Entry) -> dict[str, Any]:
        p = e.resource
        if any(_has(c, systems.CS + "medical-action", "radiation-therapy") for c in [p.get("category")]):
            rt: dict[str, Any] = {"modality": systems.term_of(p.get("code")) or {},
                                  "bodySite": systems.term_of(next(iter(p.get("bodySite") or []), None)) or {}}
            dose = _ext_scalar(p, "radiation-dosage")
            _put(rt, "dosage", dose.get("value") if isinstance(dose, dict) else None)
            _put(rt, "fractions", _ext_scalar(p, "radiation-fractions"))
            return self._action(p, {"radiationTherapy": rt})
        proc: dict[str, Any] = {"code": systems.term_of(p.get("code")) or {}}
        _put(proc, "bodySite", systems.term_of(next(iter(p.get("bodySite") or []), None)))
        te = times.read_value(p, "performed")
        _put(proc, "performed", times.time_element(*te) if te else _ext_time(p, "performed"))
        return self._action(p, {"procedure": proc})

    def treatment(self, e: reader.Entry) -> dict[str, Any]:
        m = e.resource
        t: dict[str, Any] = {"agent": systems.term_of(m.get("medicationCodeableConcept")) or {}}
        dosages = [d for d in m.get("dosage") or [] if isinstance(d, dict)]
        _put(t, "routeOfAdministration", systems.term_of(next((d.get("route") for d in dosages if d.get("route")),
                                                              None)))
        intervals = []
        for d in dosages:
            timing = d.get("timing") or {}
            dose = next((x.get("doseQuantity") for x in d.get("doseAndRate") or [] if isinstance(x, dict)), None)
            if not timing and not dose:
                continue
            di: dict[str, Any] = {}
            if isinstance(dose, dict):
                q: dict[str, Any] = {"unit": self.unit(dose)}
                _put(q, "value", dose.get("value"))
                di["quantity"] = q
            _put(di, "scheduleFrequency", systems.term_of(timing.get("code")))
            bounds = (timing.get("repeat") or {}).get("boundsPeriod")
            if isinstance(bounds, dict):
                di["interval"] = {k: v for k, v in bounds.items() if k in ("start", "end")}
            intervals.append(di)
        _put(t, "doseIntervals", intervals)
        drug = next((c.get("code") for c in _codes(m.get("category")) if c.get("system") == systems.CS + "drug-type"),
                    None)
        _put(t, "drugType", drug)
        return self._action(m, {"treatment": t})

    # ---- interpretations ----

    def interpretations(self) -> list[dict[str, Any]]:
        out = []
        reported: set[int] = set()
        for e in self.content.of("DiagnosticReport"):
            if not self.content.is_genomic_report(e):
                continue
            out.append(self.interpretation(e, reported))
        loose = [v for v in self.content.of("variant") if v.index not in reported]
        if loose:
            self.warn("phenopacket-variant-outside-report", f"{len(loose)} variant(s) are in no genomic report; "
                      "a phenopacket holds variants only in an interpretation: left out", loose[0].where)
        return out

    def interpretation(self, e: reader.Entry, reported: set[int]) -> dict[str, Any]:
        r = e.resource
        self.read.add(e.index)
        out: dict[str, Any] = {}
        rid = next((i.get("value") for i in r.get("identifier") or [] if isinstance(i, dict)
                    and i.get("system") == systems.INTERPRETATION), None)
        out["id"] = str(rid or r.get("id") or f"interpretation-{e.index}")
        progress = _ext_scalar(r, "progress-status")
        if progress is None and any(_has(cc, "http://loinc.org", genomic.POSITIVE["code"])
                                    for cc in r.get("conclusionCode") or []):
            progress = "SOLVED"
        _put(out, "progressStatus", progress)
        disease = next((systems.term_of({"coding": [c]}) for cc in r.get("conclusionCode") or []
                        for c in _codes(cc) if c.get("system") != "http://loinc.org"), None)
        gis = []
        for ref in r.get("result") or []:
            found = self.content.resolve(ref)
            if found is None or found.kind != "variant":
                continue
            reported.add(found.index)
            gi, phenotype = self.genomic_interpretation(found)
            disease = disease or phenotype
            gis.append(gi)
        diagnosis: dict[str, Any] = {}
        _put(diagnosis, "disease", disease)
        _put(diagnosis, "genomicInterpretations", gis)
        _put(out, "diagnosis", diagnosis)
        _put(out, "summary", r.get("conclusion"))
        return out

    def genomic_interpretation(self, e: reader.Entry) -> tuple[dict[str, Any], dict[str, str] | None]:
        obs = e.resource
        imps = [i for i in self.content.derived.get(e.index, []) if i.kind == "diagnostic-implication"]
        imp = imps[0].resource if imps else {}
        self.read.update([e.index, *(i.index for i in imps[:1])])
        gi: dict[str, Any] = {}
        specimen = self.content.resolve(obs.get("specimen"))
        who = _ext_scalar(imp, "subject-or-biosample-id")
        if who is None and specimen is not None and specimen.index in self.biosample_ids:
            who = self.biosample_ids[specimen.index]
        gi["subjectOrBiosampleId"] = who if who is not None else "\x00subject"
        _put(gi, "interpretationStatus", _ext_scalar(imp, "interpretation-status"))
        vi: dict[str, Any] = {}
        phenotype = None
        for comp in imp.get("component") or []:
            if _has(comp.get("code"), "http://loinc.org", "53037-8"):
                for c in _codes(comp.get("valueCodeableConcept")):
                    t = translate("acmg-pathogenicity-to-loinc-ll4034-6", str(c.get("code")), reverse=True)
                    if t and c.get("system") == "http://loinc.org":
                        vi["acmgPathogenicityClassification"] = t.code
            elif _has(comp.get("code"), "http://loinc.org", "81259-4") and phenotype is None:
                phenotype = systems.term_of(comp.get("valueCodeableConcept"))
        _put(vi, "therapeuticActionability", _ext_scalar(imp, "therapeutic-actionability"))
        vi["variationDescriptor"] = self.variation(e)
        gi["variantInterpretation"] = vi
        return gi, phenotype

    def variation(self, e: reader.Entry) -> dict[str, Any]:
        obs = e.resource
        v = gr.variant_facts(obs)
        for name in _NOT_CARRIED:
            if getattr(v, name) is not None:
                n, where = self.dropped.get(name.replace("_", " "), (0, e.where))
                self.dropped[name.replace("_", " ")] = (n + 1, where)
        extras: dict[str, list[Any]] = {}
        syntaxes: list[tuple[str, str]] = []
        for comp in v.extra:
            code = _first_code(comp.code) or {}
            value = times.read_value(comp.value, "value")
            if value is None:
                continue
            if code.get("system") == systems.COMPONENT:
                extras.setdefault(str(code.get("code")), []).append(value[1])
            elif code.get("system") == genomic.EXPRESSION_SYNTAX:
                syntaxes.append((str(code.get("code")), str(value[1])))
        out: dict[str, Any] = {}
        vid = next((i.get("value") for i in obs.get("identifier") or [] if isinstance(i, dict)
                    and i.get("system") == systems.VARIATION), None)
        out["id"] = str(vid or obs.get("id") or f"variant-{e.index}")
        _put(out, "label", next(iter(extras.get("label", [])), None))
        _put(out, "description", next(iter(extras.get("description", [])), None))
        gene = next((c for cc in v.genes or [] for c in _codes(cc)), None)
        if gene and gene.get("code"):
            out["geneContext"] = {"valueId": str(gene["code"])}
            _put(out["geneContext"], "symbol", gene.get("display"))
        expressions = []
        for syntax, slot in (("hgvs.c", v.c_hgvs), ("hgvs.g", v.g_hgvs), ("hgvs.p", v.p_hgvs)):
            text = _text_or_code(slot)
            if text:
                expressions.append({"syntax": syntax, "value": text})
        if _text_or_code(v.iscn):
            expressions.append({"syntax": "iscn", "value": _text_or_code(v.iscn)})
        expressions += [{"syntax": s, "value": val} for s, val in syntaxes]
        _put(out, "expressions", expressions)
        _put(out, "vcfRecord", self.vcf_record(v, extras))
        _put(out, "xrefs", [t["id"] for cc in v.variation_codes or [] if (t := systems.term_of(cc))])
        molecule = next((c.get("code") for value in extras.get("molecule-context", []) for c in _codes(value)), None)
        if molecule is None:
            molecule = "genomic" if v.g_hgvs or v.exact else "transcript" if v.c_hgvs else \
                "protein" if v.p_hgvs else None
        _put(out, "moleculeContext", molecule)
        _put(out, "structuralType", systems.term_of(v.change_type))
        _put(out, "vrsRefAlleleSeq", next(iter(extras.get("vrsRefAlleleSeq", [])), None))
        _put(out, "allelicState", self.allelic_state(v.allelic_state))
        _put(out, "alternateLabels", [str(x) for x in extras.get("alternate-label", [])])
        if isinstance(v.allele_fraction, dict) and isinstance(v.allele_fraction.get("value"), int | float):
            out["extensions"] = [{"name": "allele_frequency", "value": repr(float(v.allele_fraction["value"]))}]
        return out

    @staticmethod
    def allelic_state(cc: Any) -> dict[str, str] | None:
        geno = systems.coding_in(cc, "GENO")
        if geno is not None:
            return systems.term(geno)
        for c in _codes(cc):
            t = translate("geno-allelic-state-to-loinc-ll381-5", str(c.get("code")), reverse=True)
            if t and c.get("system") == "http://loinc.org":
                return {"id": t.code, "label": t.display}
        return None

    @staticmethod
    def vcf_record(v: gr.Variant, extras: dict[str, list[Any]]) -> dict[str, Any] | None:
        if not isinstance(v.exact, tuple) or not isinstance(v.exact[0], int | float) or not (v.ref or v.alt):
            return None
        pos = int(v.exact[0])
        system = _first_code(v.coordinate_system) or {}
        if system.get("code") in ("LA30100-4", "LA30101-2"):  # 0-based: VCF POS is 1-based
            pos += 1
        out: dict[str, Any] = {}
        assembly = next(iter(v.assembly or []), None)
        if isinstance(assembly, dict):
            build = assembly.get("text") or next((c.get("display") for c in _codes(assembly)), None)
            _put(out, "genomeAssembly", build)
        chrom = next(iter(v.chromosome or []), None)
        name = None
        if isinstance(chrom, dict):
            name = chrom.get("text")
            if not name:
                from mappers.vcf import reference
                code = next((c.get("code") for c in _codes(chrom)), None)
                bare = reference.chrom_of_loinc(str(code)) if code else None
                name = f"chr{bare}" if bare else None
        if name is None:
            from mappers.vcf import reference
            seq = _text_or_code(v.genomic_ref_seq)
            hit = reference.chrom_of_accession(seq) if seq else None
            if hit:
                out.setdefault("genomeAssembly", hit[0] or "")
                name = f"chr{hit[1]}"
        _put(out, "chrom", name)
        out["pos"] = str(pos)
        _put(out, "id", next(iter(extras.get("vcf-id", [])), None))
        _put(out, "ref", v.ref)
        _put(out, "alt", v.alt)
        for key in ("qual", "filter", "info"):
            _put(out, key, next(iter(extras.get(f"vcf-{key}", [])), None))
        return out

    # ---- metaData ----

    def meta_data(self, pp: dict[str, Any]) -> dict[str, Any]:
        for e in self.content.of("Provenance"):
            entities = [x for x in e.resource.get("entity") or [] if isinstance(x, dict)]
            source = next((x for x in entities if x.get("role") == "source" and
                           ((x.get("what") or {}).get("identifier") or {}).get("system") == systems.ID), None)
            if source is not None:
                meta = self.own_meta(e.resource, source, entities)
                updates = [self.update(u.resource) for u in self.content.of("Provenance")
                           if _has(u.resource.get("activity"), _DATA_OPERATION, "UPDATE")]
                _put(meta, "updates", updates)
                return meta
        meta: dict[str, Any] = {}
        when = self.bundle.get("timestamp") or next((p.resource.get("recorded") for p in self.content.of("Provenance")
                                                     if isinstance(p.resource.get("recorded"), str)), None)
        _put(meta, "created", when)
        meta["createdBy"] = "helixgate"
        prefixes = sorted({str(t["id"]).split(":", 1)[0] for t in _terms(pp) if ":" in str(t.get("id", ""))})
        _put(meta, "resources", [r for p in prefixes if (r := systems.resource(p))])
        meta["phenopacketSchemaVersion"] = SCHEMA_VERSION
        return meta

    @staticmethod
    def update(prov: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"timestamp": prov.get("recorded")}
        author = next((a for a in prov.get("agent") or [] if isinstance(a, dict)
                       and _has(a.get("type"), PARTICIPANT, "author")), None)
        _put(out, "updatedBy", ((author or {}).get("who") or {}).get("display"))
        _put(out, "comment", next((r.get("text") for r in prov.get("reason") or [] if isinstance(r, dict)), None))
        return out

    @staticmethod
    def own_meta(prov: dict[str, Any], source: dict[str, Any], entities: list[dict[str, Any]]) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        _put(meta, "created", prov.get("recorded"))
        for agent in prov.get("agent") or []:
            role = next((c.get("code") for c in _codes(agent.get("type")) if c.get("system") == PARTICIPANT), None)
            who = (agent.get("who") or {}).get("display")
            if role == "author":
                _put(meta, "createdBy", who)
            elif role == "enterer":
                _put(meta, "submittedBy", who)
        resources, refs = [], []
        for x in entities:
            what = x.get("what") or {}
            ident = what.get("identifier") or {}
            if what.get("type") == "CodeSystem":
                r: dict[str, Any] = {"id": ident.get("value", "")}
                _put(r, "name", what.get("display"))
                for key, name in (("url", "resource-url"), ("version", "resource-version"),
                                  ("namespacePrefix", "namespace-prefix"), ("iriPrefix", "iri-prefix")):
                    _put(r, key, _ext_scalar(x, name))
                resources.append(r)
            elif what.get("type") == "DocumentReference":
                ref: dict[str, Any] = {"id": ident.get("value", "")}
                _put(ref, "reference", _ext_scalar(x, "reference"))
                _put(ref, "description", what.get("display"))
                refs.append(ref)
        _put(meta, "resources", resources)
        _put(meta, "phenopacketSchemaVersion", _ext_scalar(source, "schema-version"))
        _put(meta, "externalReferences", refs)
        return meta


def _text_or_code(cc: Any) -> str | None:
    if isinstance(cc, str):
        return cc
    if isinstance(cc, dict):
        code = next((c.get("code") for c in _codes(cc) if c.get("code")), None)
        return str(code or cc.get("text") or "") or None
    return None


def _terms(value: Any) -> list[dict[str, Any]]:
    """Every OntologyClass-like object ({id, label}) in a phenopacket JSON value."""
    out: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if isinstance(v.get("id"), str) and set(v) <= {"id", "label"}:
                out.append(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


def _fill_subject(value: Any, subject_id: str, biosamples: dict[int, str]) -> Any:
    """Placeholders resolved once the subject's id and the biosamples' ids are known."""
    if isinstance(value, dict):
        out = {k: _fill_subject(v, subject_id, biosamples) for k, v in value.items()}
        if isinstance(out.get("derivedFromId"), int):
            out["derivedFromId"] = biosamples.get(out["derivedFromId"], "")
        return out
    if isinstance(value, list):
        return [_fill_subject(v, subject_id, biosamples) for v in value]
    return subject_id if value == "\x00subject" else value


def from_fhir(bundle: dict[str, Any]) -> tuple[bytes, list[Issue]]:
    """A Bundle → phenopacket JSON bytes (canonical protobuf JSON, two-space indented) and the report. Raises
    EmitError for a Bundle no phenopacket can hold, ParseError for content of the wrong shape."""
    w = Writer(bundle)
    try:
        doc = w.phenopacket()
    except MappingError:
        raise
    except (TypeError, AttributeError, KeyError, ValueError) as e:  # content of an unexpected shape
        raise ParseError(f"the Bundle holds content of an unexpected shape: {type(e).__name__}: {e}",
                         details="phenopacket-bad-fhir", expression="Bundle") from None
    doc = _fill_subject(doc, w.subject_id, w.biosample_ids)
    try:
        checked = schema.read(doc, "Phenopacket")
    except MappingError as e:
        raise EmitError(f"the phenopacket written does not pass the official schema: {e.issues[0].message}",
                        details="phenopacket-invalid-output", expression=e.issues[0].expression) from None
    return orjson.dumps(checked.doc, option=orjson.OPT_INDENT_2), w.issues
