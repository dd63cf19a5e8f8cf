"""The genomic part of the way back: genomic reports → interpretations, variant Observations (any Genomics
Reporting release, as mappers.fhir.genomics recognises them) → variation descriptors, the diagnostic implications
derived from them → ACMG class, disease, interpretation status. A mixin of from_fhir.Writer."""

from __future__ import annotations

from typing import Any

from mappers.fhir import genomics as reader
from mappers.phenopacket import genomic, systems, times
from mappers.phenopacket.fhir_values import codes, ext_scalar, first_code, has, put, text_or_code
from mappers.terminology import translate
from mappers.toolkit import genomics as gr

# Variant facts (mappers.toolkit.genomics.Variant fields) a VariationDescriptor has no field for
NOT_CARRIED = ("cytogenetic_locations", "outer", "inner", "source_class", "inheritance", "inheritance_basis",
               "read_depth", "copy_number", "confidence", "method")


class GenomicReader:
    """Needs, from the Writer: content (mappers.fhir.genomics.GenomicContent), read (entry indices carried),
    dropped (variant facts not carried), biosample_ids, warn()."""

    content: reader.GenomicContent
    read: set[int]
    dropped: dict[str, tuple[int, str | None]]
    biosample_ids: dict[int, str]

    def warn(self, details: str, message: str, where: str | None) -> None:
        raise NotImplementedError

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
        progress = ext_scalar(r, "progress-status")
        if progress is None and any(has(cc, "http://loinc.org", genomic.POSITIVE["code"])
                                    for cc in r.get("conclusionCode") or []):
            progress = "SOLVED"
        put(out, "progressStatus", progress)
        disease = next((systems.term_of({"coding": [c]}) for cc in r.get("conclusionCode") or []
                        for c in codes(cc) if c.get("system") != "http://loinc.org"), None)
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
        put(diagnosis, "disease", disease)
        put(diagnosis, "genomicInterpretations", gis)
        put(out, "diagnosis", diagnosis)
        put(out, "summary", r.get("conclusion"))
        return out

    def genomic_interpretation(self, e: reader.Entry) -> tuple[dict[str, Any], dict[str, str] | None]:
        obs = e.resource
        imps = [i for i in self.content.derived.get(e.index, []) if i.kind == "diagnostic-implication"]
        imp = imps[0].resource if imps else {}
        self.read.update([e.index, *(i.index for i in imps[:1])])
        gi: dict[str, Any] = {}
        specimen = self.content.resolve(obs.get("specimen"))
        who = ext_scalar(imp, "subject-or-biosample-id")
        if who is None and specimen is not None and specimen.index in self.biosample_ids:
            who = self.biosample_ids[specimen.index]
        gi["subjectOrBiosampleId"] = who if who is not None else "\x00subject"
        put(gi, "interpretationStatus", ext_scalar(imp, "interpretation-status"))
        vi: dict[str, Any] = {}
        phenotype = None
        for comp in imp.get("component") or []:
            if has(comp.get("code"), "http://loinc.org", "53037-8"):
                for c in codes(comp.get("valueCodeableConcept")):
                    t = translate("acmg-pathogenicity-to-loinc-ll4034-6", str(c.get("code")), reverse=True)
                    if t and c.get("system") == "http://loinc.org":
                        vi["acmgPathogenicityClassification"] = t.code
            elif has(comp.get("code"), "http://loinc.org", "81259-4") and phenotype is None:
                phenotype = systems.term_of(comp.get("valueCodeableConcept"))
        put(vi, "therapeuticActionability", ext_scalar(imp, "therapeutic-actionability"))
        vi["variationDescriptor"] = self.variation(e)
        gi["variantInterpretation"] = vi
        return gi, phenotype

    def variation(self, e: reader.Entry) -> dict[str, Any]:
        obs = e.resource
        v = gr.variant_facts(obs)
        for name in NOT_CARRIED:
            if getattr(v, name) is not None:
                n, where = self.dropped.get(name.replace("_", " "), (0, e.where))
                self.dropped[name.replace("_", " ")] = (n + 1, where)
        extras: dict[str, list[Any]] = {}
        syntaxes: list[tuple[str, str]] = []
        for comp in v.extra:
            code = first_code(comp.code) or {}
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
        put(out, "label", next(iter(extras.get("label", [])), None))
        put(out, "description", next(iter(extras.get("description", [])), None))
        gene = next((c for cc in v.genes or [] for c in codes(cc)), None)
        if gene and gene.get("code"):
            out["geneContext"] = {"valueId": str(gene["code"])}
            put(out["geneContext"], "symbol", gene.get("display"))
        expressions = []
        for syntax, slot in (("hgvs.c", v.c_hgvs), ("hgvs.g", v.g_hgvs), ("hgvs.p", v.p_hgvs)):
            text = text_or_code(slot)
            if text:
                expressions.append({"syntax": syntax, "value": text})
        if text_or_code(v.iscn):
            expressions.append({"syntax": "iscn", "value": text_or_code(v.iscn)})
        expressions += [{"syntax": s, "value": val} for s, val in syntaxes]
        put(out, "expressions", expressions)
        put(out, "vcfRecord", self.vcf_record(v, extras))
        put(out, "xrefs", [t["id"] for cc in v.variation_codes or [] if (t := systems.term_of(cc))])
        molecule = next((c.get("code") for value in extras.get("molecule-context", []) for c in codes(value)), None)
        if molecule is None:
            molecule = "genomic" if v.g_hgvs or v.exact else "transcript" if v.c_hgvs else \
                "protein" if v.p_hgvs else None
        put(out, "moleculeContext", molecule)
        put(out, "structuralType", systems.term_of(v.change_type))
        put(out, "vrsRefAlleleSeq", next(iter(extras.get("vrsRefAlleleSeq", [])), None))
        put(out, "allelicState", self.allelic_state(v.allelic_state))
        put(out, "alternateLabels", [str(x) for x in extras.get("alternate-label", [])])
        if isinstance(v.allele_fraction, dict) and isinstance(v.allele_fraction.get("value"), int | float):
            out["extensions"] = [{"name": "allele_frequency", "value": repr(float(v.allele_fraction["value"]))}]
        return out

    @staticmethod
    def allelic_state(cc: Any) -> dict[str, str] | None:
        geno = systems.coding_in(cc, "GENO")
        if geno is not None:
            return systems.term(geno)
        for c in codes(cc):
            t = translate("geno-allelic-state-to-loinc-ll381-5", str(c.get("code")), reverse=True)
            if t and c.get("system") == "http://loinc.org":
                return {"id": t.code, "label": t.display}
        return None

    @staticmethod
    def vcf_record(v: gr.Variant, extras: dict[str, list[Any]]) -> dict[str, Any] | None:
        if not isinstance(v.exact, tuple) or not isinstance(v.exact[0], int | float) or not (v.ref or v.alt):
            return None
        pos = int(v.exact[0])
        system = first_code(v.coordinate_system) or {}
        if system.get("code") in ("LA30100-4", "LA30101-2"):  # 0-based: VCF POS is 1-based
            pos += 1
        out: dict[str, Any] = {}
        assembly = next(iter(v.assembly or []), None)
        if isinstance(assembly, dict):
            build = assembly.get("text") or next((c.get("display") for c in codes(assembly)), None)
            put(out, "genomeAssembly", build)
        chrom = next(iter(v.chromosome or []), None)
        name = None
        if isinstance(chrom, dict):
            name = chrom.get("text")
            if not name:
                from mappers.vcf import reference
                code = next((c.get("code") for c in codes(chrom)), None)
                bare = reference.chrom_of_loinc(str(code)) if code else None
                name = f"chr{bare}" if bare else None
        if name is None:
            from mappers.vcf import reference
            seq = text_or_code(v.genomic_ref_seq)
            hit = reference.chrom_of_accession(seq) if seq else None
            if hit:
                out.setdefault("genomeAssembly", hit[0] or "")
                name = f"chr{hit[1]}"
        put(out, "chrom", name)
        out["pos"] = str(pos)
        put(out, "id", next(iter(extras.get("vcf-id", [])), None))
        put(out, "ref", v.ref)
        put(out, "alt", v.alt)
        for key in ("qual", "filter", "info"):
            put(out, key, next(iter(extras.get(f"vcf-{key}", [])), None))
        return out
