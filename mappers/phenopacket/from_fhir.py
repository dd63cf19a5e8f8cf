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
from mappers.phenopacket import schema, systems, times
from mappers.phenopacket.fhir_values import (
    codes,
    ext_scalar,
    ext_term,
    ext_value,
    extensions_of,
    first_code,
    has,
    put,
)
from mappers.phenopacket.from_genomic import GenomicReader
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

SCHEMA_VERSION = "2.0"
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_ONSET_BY_CODE = {code: kind for kind, code in ONSET_CODES.items()}
_GENOMIC_PROCEDURES = {"genomic-study", "genomic-study-analysis"}



class Writer(GenomicReader):
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

    def time(self, hit: tuple[str, Any] | None, where: str, field: str) -> dict[str, Any] | None:
        """The FHIR value `hit` (kind, value), found at `where`, as the TimeElement of the phenopacket's `field`. A
        date or dateTime that is no phenopacket Timestamp (year, month or day precision, no zone: times.timestamp
        says why) is left out and reported by path; the rest of the conversion goes on."""
        if hit is None:
            return None
        why = times.why_not(*hit)
        if why:
            self.warn("phenopacket-time-not-carried", f"{why}; the phenopacket's {field} takes a Timestamp, a full "
                      "date-time with a time zone (RFC 3339): left out", where)
            return None
        return times.time_element(*hit)

    def ext_time(self, res: dict[str, Any], name: str, where: str, field: str) -> dict[str, Any] | None:
        """The TimeElement in this mapper's extension `name` of `res` (at `where`)."""
        url = systems.EXT + name
        return self.time(ext_value(res, name), f"{where}.extension('{url}')", field)

    def stamp(self, text: Any, where: str, field: str) -> str | None:
        """A FHIR instant/dateTime as a phenopacket Timestamp, None (reported) when it is none."""
        if text is None:
            return None
        te = self.time(("DateTime", text), where, field)
        return str(te["timestamp"]) if te else None

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
        put(pp, "id", self.document_id())
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
        put(pp, "phenotypicFeatures", features)
        put(pp, "measurements", measurements)
        put(pp, "biosamples", biosamples)
        put(pp, "interpretations", self.interpretations())
        put(pp, "diseases", [self.disease(e) for e in self.content.of("Condition")])
        actions = [self.procedure(e) if e.type == "Procedure" else self.treatment(e)
                   for e in self.content.of("Procedure", "MedicationStatement")
                   if not set(reader.profile_names(e.resource)) & _GENOMIC_PROCEDURES]
        put(pp, "medicalActions", actions)
        put(pp, "files", [f for e in self.content.of("DocumentReference") if (f := self.file(e))])
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
        put(out, "id", self.subject_id)
        put(out, "alternateIds", [str(i["value"]) for i in idents
                                   if i.get("system") == systems.ALTERNATE_ID and i.get("value")])
        born = p.get("birthDate")
        if isinstance(born, str) and born:
            exact = next((x.get("valueDateTime") for x in (p.get("_birthDate") or {}).get("extension") or []
                          if isinstance(x, dict) and x.get("url") == BIRTH_TIME), None)
            if exact is not None:
                exact = self.stamp(exact, f"{e.where}._birthDate.extension('{BIRTH_TIME}')", "Individual.dateOfBirth")
            # a date: midnight UTC, the schema's own rounding for date_of_birth (docs/individual.rst: "rounded down
            # to the closest known year/month/day"); a year or month alone is not rounded (it would invent a day)
            out["dateOfBirth"] = exact or (born + "T00:00:00Z" if len(born) == 10 else None)
            if out["dateOfBirth"] is None:
                del out["dateOfBirth"]
                self.warn("phenopacket-partial-date", f"birthDate {born} is not a full date; a phenopacket "
                          "dateOfBirth is a timestamp: left out", f"{e.where}.birthDate")
        put(out, "timeAtLastEncounter", self.ext_time(p, "time-at-last-encounter", e.where,
                                                      "Individual.timeAtLastEncounter"))
        vital: dict[str, Any] = {}
        if p.get("deceasedBoolean") is True or "deceasedDateTime" in p:
            vital["status"] = "DECEASED"
        elif p.get("deceasedBoolean") is False:
            vital["status"] = "ALIVE"
        if "deceasedDateTime" in p:
            put(vital, "timeOfDeath", self.time(("DateTime", p["deceasedDateTime"]), f"{e.where}.deceasedDateTime",
                                               "VitalStatus.timeOfDeath"))
        put(vital, "timeOfDeath", self.ext_time(p, "time-of-death", e.where, "VitalStatus.timeOfDeath"))
        put(vital, "causeOfDeath", ext_term(p, "cause-of-death"))
        put(vital, "survivalTimeInDays", ext_scalar(p, "survival-time-in-days"))
        put(out, "vitalStatus", vital)
        gender = p.get("gender")
        if isinstance(gender, str):
            t = translate("phenopacket-sex-to-administrative-gender", gender, reverse=True)
            put(out, "sex", t.code if t else None)
        put(out, "karyotypicSex", ext_scalar(p, "karyotypic-sex"))
        identity = next((x.get("valueCodeableConcept") for x in extensions_of(p, GENDER_IDENTITY)), None)
        put(out, "gender", systems.term_of(identity))
        put(out, "taxonomy", ext_term(p, "taxonomy"))
        return out

    # ---- phenotypic features and measurements ----

    @staticmethod
    def is_phenotype(obs: dict[str, Any]) -> bool:
        first = first_code(obs.get("code")) or {}
        if first.get("system") == systems.table()["prefixes"]["HP"]["system"]:
            return True
        exam = any(has(c, OBS_CATEGORY, "exam") for c in obs.get("category") or [])
        value = obs.get("valueCodeableConcept")
        return exam and (has(value, "http://loinc.org", "LA9633-4") or has(value, "http://loinc.org", "LA9634-2"))

    def feature(self, e: reader.Entry) -> dict[str, Any]:
        obs = e.resource
        self.read.add(e.index)
        out: dict[str, Any] = {}
        put(out, "description", next((n.get("text") for n in obs.get("note") or [] if isinstance(n, dict)), None))
        out["type"] = systems.term_of(obs.get("code")) or {}
        if has(obs.get("valueCodeableConcept"), "http://loinc.org", "LA9634-2") or obs.get("valueBoolean") is False:
            out["excluded"] = True
        modifiers, evidence = [], []
        for j, comp in enumerate(obs.get("component") or []):
            code = first_code(comp.get("code")) or {}
            value = times.read_value(comp, "value")
            if value is None:
                continue
            if has(comp.get("code"), SEVERITY["coding"][0]["system"], SEVERITY["coding"][0]["code"]):
                put(out, "severity", systems.term_of(value[1]))
            elif has(comp.get("code"), MODIFIER["coding"][0]["system"], MODIFIER["coding"][0]["code"]):
                modifiers.append(systems.term_of(value[1]))
            elif code.get("system") == PHENOMICS_COMPONENT and code.get("code") in _ONSET_BY_CODE:
                kind = _ONSET_BY_CODE[code["code"]]
                put(out, "onset", self.time((kind, value[1]), f"{e.where}.component[{j}].value{value[0]}",
                                            "PhenotypicFeature.onset"))
            elif code.get("system") == systems.COMPONENT:
                name = str(code.get("code"))
                if name == "evidence":
                    ev: dict[str, Any] = {"evidenceCode": systems.term_of(value[1]) or {}}
                    ref: dict[str, Any] = {}
                    for key, ext_name in (("id", "external-reference-id"), ("reference", "reference"),
                                          ("description", "external-reference-description")):
                        put(ref, key, ext_scalar(comp, ext_name))
                    put(ev, "reference", ref)
                    evidence.append(ev)
                    continue
                field_name, _, form = name.partition("-")
                kind = {"age": "Age", "gestational-age": "Quantity"}.get(form, value[0])
                if field_name in ("onset", "resolution"):
                    put(out, field_name, self.time((kind, value[1]), f"{e.where}.component[{j}].value{value[0]}",
                                                   f"PhenotypicFeature.{field_name}"))
        put(out, "modifiers", [m for m in modifiers if m])
        put(out, "evidence", evidence)
        return out

    def measurement(self, e: reader.Entry) -> dict[str, Any]:
        obs = e.resource
        self.read.add(e.index)
        out: dict[str, Any] = {}
        put(out, "description", next((n.get("text") for n in obs.get("note") or [] if isinstance(n, dict)), None))
        code = obs.get("code") or {}
        out["assay"] = systems.term_of(code) or {"id": "", "label": str(code.get("text", ""))}
        q = obs.get("valueQuantity")
        if isinstance(q, dict):
            quantity: dict[str, Any] = {"unit": self.unit(q)}
            put(quantity, "value", q.get("value"))
            rr = next((r for r in obs.get("referenceRange") or [] if isinstance(r, dict)), None)
            if rr is not None:
                low, high = rr.get("low") or {}, rr.get("high") or {}
                quantity["referenceRange"] = {"unit": self.unit(low or high)}
                put(quantity["referenceRange"], "low", low.get("value"))
                put(quantity["referenceRange"], "high", high.get("value"))
            out["value"] = {"quantity": quantity}
        elif isinstance(obs.get("valueCodeableConcept"), dict):
            out["value"] = {"ontologyClass": systems.term_of(obs["valueCodeableConcept"]) or {}}
        typed = []
        for comp in obs.get("component") or []:
            cq = comp.get("valueQuantity")
            if isinstance(cq, dict):
                item: dict[str, Any] = {"unit": self.unit(cq)}
                put(item, "value", cq.get("value"))
                typed.append({"type": systems.term_of(comp.get("code")) or {}, "quantity": item})
        if typed:
            out["complexValue"] = {"typedQuantities": typed}
        if "value" not in out and not typed:
            self.warn("phenopacket-measurement-without-value", f"{e.label} has no quantity or coded value; written "
                      "as a measurement without a value", f"{e.where}.value")
        te = times.read_value(obs, "effective")
        put(out, "timeObserved", self.time(te, f"{e.where}.effective{te[0]}", "Measurement.timeObserved") if te
            else self.ext_time(obs, "time-observed", e.where, "Measurement.timeObserved"))
        proc: dict[str, Any] = {}
        put(proc, "code", systems.term_of(obs.get("method")))
        put(proc, "bodySite", systems.term_of(obs.get("bodySite")))
        put(out, "procedure", proc)
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
        if has(c.get("verificationStatus"), "http://terminology.hl7.org/CodeSystem/condition-ver-status", "refuted"):
            out["excluded"] = True
        onset = times.read_value(c, "onset")
        put(out, "onset", self.time(onset, f"{e.where}.onset{onset[0]}", "Disease.onset") if onset
            else self.ext_time(c, "onset", e.where, "Disease.onset"))
        abated = times.read_value(c, "abatement")
        put(out, "resolution", self.time(abated, f"{e.where}.abatement{abated[0]}", "Disease.resolution")
            if abated else self.ext_time(c, "resolution", e.where, "Disease.resolution"))
        stages, tnm = [], []
        for s in c.get("stage") or []:
            t = systems.term_of(s.get("summary"))
            if t:
                (tnm if has(s.get("type"), systems.COMPONENT, "tnm-finding") else stages).append(t)
        put(out, "diseaseStage", stages)
        put(out, "clinicalTnmFinding", tnm)
        put(out, "primarySite", systems.term_of(next(iter(c.get("bodySite") or []), None)))
        put(out, "laterality", ext_term(c, "laterality"))
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
        put(out, "description", next((x.get("text") for x in s.get("note") or [] if isinstance(x, dict)), None))
        coll = s.get("collection") or {}
        put(out, "sampledTissue", systems.term_of(coll.get("bodySite")))
        put(out, "sampleType", systems.term_of(s.get("type")))
        put(out, "taxonomy", ext_term(s, "taxonomy"))
        te = times.read_value(coll, "collected")
        put(out, "timeOfCollection",
            self.time(te, f"{e.where}.collection.collected{te[0]}", "Biosample.timeOfCollection") if te
            else self.ext_time(s, "time-of-collection", e.where, "Biosample.timeOfCollection"))
        method = systems.term_of(coll.get("method"))
        if method:
            out["procedure"] = {"code": method}
        put(out, "materialSample", ext_term(s, "material-sample"))
        return out

    def _action(self, res: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        self.read.update(e.index for e in self.content.entries if e.resource is res)
        put(out, "treatmentTarget", systems.term_of(next(iter(res.get("reasonCode") or []), None)))
        put(out, "treatmentIntent", ext_term(res, "treatment-intent"))
        put(out, "responseToTreatment", ext_term(res, "response-to-treatment"))
        put(out, "adverseEvents", [t for x in extensions_of(res, "adverse-event")
                                    if (t := systems.term_of(x.get("valueCodeableConcept")))])
        reason = res.get("statusReason")
        if isinstance(reason, list):
            reason = next(iter(reason), None)
        put(out, "treatmentTerminationReason", systems.term_of(reason))
        return out

    def procedure(self, e: reader.Entry) -> dict[str, Any]:
        p = e.resource
        if any(has(c, systems.CS + "medical-action", "radiation-therapy") for c in [p.get("category")]):
            rt: dict[str, Any] = {"modality": systems.term_of(p.get("code")) or {},
                                  "bodySite": systems.term_of(next(iter(p.get("bodySite") or []), None)) or {}}
            dose = ext_scalar(p, "radiation-dosage")
            put(rt, "dosage", dose.get("value") if isinstance(dose, dict) else None)
            put(rt, "fractions", ext_scalar(p, "radiation-fractions"))
            return self._action(p, {"radiationTherapy": rt})
        proc: dict[str, Any] = {"code": systems.term_of(p.get("code")) or {}}
        put(proc, "bodySite", systems.term_of(next(iter(p.get("bodySite") or []), None)))
        te = times.read_value(p, "performed")
        put(proc, "performed", self.time(te, f"{e.where}.performed{te[0]}", "Procedure.performed") if te
            else self.ext_time(p, "performed", e.where, "Procedure.performed"))
        return self._action(p, {"procedure": proc})

    def treatment(self, e: reader.Entry) -> dict[str, Any]:
        m = e.resource
        t: dict[str, Any] = {"agent": systems.term_of(m.get("medicationCodeableConcept")) or {}}
        dosages = [(i, d) for i, d in enumerate(m.get("dosage") or []) if isinstance(d, dict)]
        put(t, "routeOfAdministration", systems.term_of(next((d.get("route") for _, d in dosages
                                                               if d.get("route")), None)))
        intervals = []
        for i, d in dosages:
            timing = d.get("timing") or {}
            dose = next((x.get("doseQuantity") for x in d.get("doseAndRate") or [] if isinstance(x, dict)), None)
            if not timing and not dose:
                continue
            di: dict[str, Any] = {}
            if isinstance(dose, dict):
                q: dict[str, Any] = {"unit": self.unit(dose)}
                put(q, "value", dose.get("value"))
                di["quantity"] = q
            put(di, "scheduleFrequency", systems.term_of(timing.get("code")))
            bounds = (timing.get("repeat") or {}).get("boundsPeriod")
            if isinstance(bounds, dict):
                put(di, "interval", (self.time(("Period", bounds), f"{e.where}.dosage[{i}].timing.repeat.boundsPeriod",
                                               "DoseInterval.interval") or {}).get("interval"))
            if di:  # a dosage of only a bounds period left out (reported) is no dose interval
                intervals.append(di)
        put(t, "doseIntervals", intervals)
        drug = next((c.get("code") for c in codes(m.get("category")) if c.get("system") == systems.CS + "drug-type"),
                    None)
        put(t, "drugType", drug)
        return self._action(m, {"treatment": t})

    # ---- files ----

    def file(self, e: reader.Entry) -> dict[str, Any] | None:
        """A DocumentReference whose content has a url → a File (the others, e.g. BED files without one, stay
        reported as not carried)."""
        d = e.resource
        url = next((c.get("attachment", {}).get("url") for c in d.get("content") or []
                    if isinstance(c, dict) and isinstance(c.get("attachment"), dict)), None)
        if not isinstance(url, str) or not url:
            return None
        self.read.add(e.index)
        out: dict[str, Any] = {"uri": url}
        for field_name, ext_name in (("individualToFileIdentifiers", "individual-to-file-identifier"),
                                     ("fileAttributes", "file-attribute")):
            entries = {}
            for x in extensions_of(d, ext_name):
                parts = {p.get("url"): p.get("valueString") for p in x.get("extension") or [] if isinstance(p, dict)}
                if isinstance(parts.get("key"), str) and isinstance(parts.get("value"), str):
                    entries[parts["key"]] = parts["value"]
            put(out, field_name, entries)
        return out

    # ---- metaData ----

    def meta_data(self, pp: dict[str, Any]) -> dict[str, Any]:
        for e in self.content.of("Provenance"):
            entities = [x for x in e.resource.get("entity") or [] if isinstance(x, dict)]
            source = next((x for x in entities if x.get("role") == "source" and
                           ((x.get("what") or {}).get("identifier") or {}).get("system") == systems.ID), None)
            if source is not None:
                meta = self.own_meta(e, source, entities)
                updates = [self.update(u) for u in self.content.of("Provenance")
                           if has(u.resource.get("activity"), _DATA_OPERATION, "UPDATE")]
                put(meta, "updates", updates)
                return meta
        meta: dict[str, Any] = {}
        recorded = next((p for p in self.content.of("Provenance") if isinstance(p.resource.get("recorded"), str)), None)
        if self.bundle.get("timestamp"):
            put(meta, "created", self.stamp(self.bundle["timestamp"], "Bundle.timestamp", "MetaData.created"))
        elif recorded is not None:
            put(meta, "created", self.stamp(recorded.resource["recorded"], f"{recorded.where}.recorded",
                                            "MetaData.created"))
        meta["createdBy"] = "helixgate"
        prefixes = sorted({str(t["id"]).split(":", 1)[0] for t in _terms(pp) if ":" in str(t.get("id", ""))})
        put(meta, "resources", [r for p in prefixes if (r := systems.resource(p))])
        meta["phenopacketSchemaVersion"] = SCHEMA_VERSION
        return meta

    def update(self, e: reader.Entry) -> dict[str, Any]:
        prov = e.resource
        out: dict[str, Any] = {}
        put(out, "timestamp", self.stamp(prov.get("recorded"), f"{e.where}.recorded", "Update.timestamp"))
        author = next((a for a in prov.get("agent") or [] if isinstance(a, dict)
                       and has(a.get("type"), PARTICIPANT, "author")), None)
        put(out, "updatedBy", ((author or {}).get("who") or {}).get("display"))
        put(out, "comment", next((r.get("text") for r in prov.get("reason") or [] if isinstance(r, dict)), None))
        return out

    def own_meta(self, e: reader.Entry, source: dict[str, Any], entities: list[dict[str, Any]]) -> dict[str, Any]:
        prov = e.resource
        meta: dict[str, Any] = {}
        put(meta, "created", self.stamp(prov.get("recorded"), f"{e.where}.recorded", "MetaData.created"))
        for agent in prov.get("agent") or []:
            role = next((c.get("code") for c in codes(agent.get("type")) if c.get("system") == PARTICIPANT), None)
            who = (agent.get("who") or {}).get("display")
            if role == "author":
                put(meta, "createdBy", who)
            elif role == "enterer":
                put(meta, "submittedBy", who)
        resources, refs = [], []
        for x in entities:
            what = x.get("what") or {}
            ident = what.get("identifier") or {}
            if what.get("type") == "CodeSystem":
                r: dict[str, Any] = {"id": ident.get("value", "")}
                put(r, "name", what.get("display"))
                for key, name in (("url", "resource-url"), ("version", "resource-version"),
                                  ("namespacePrefix", "namespace-prefix"), ("iriPrefix", "iri-prefix")):
                    put(r, key, ext_scalar(x, name))
                resources.append(r)
            elif what.get("type") == "DocumentReference":
                ref: dict[str, Any] = {"id": ident.get("value", "")}
                put(ref, "reference", ext_scalar(x, "reference"))
                put(ref, "description", what.get("display"))
                refs.append(ref)
        put(meta, "resources", resources)
        put(meta, "phenopacketSchemaVersion", ext_scalar(source, "schema-version"))
        put(meta, "externalReferences", refs)
        return meta


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
