"""Interpretations → the Genomics Reporting IG 3.0.0 (through the shared emitter, mappers.toolkit.genomics): per
interpretation a genomic-report; per variant interpretation a variant Observation (HGVS expressions verbatim, the
gene context, VCF record, GENO allelic state as LOINC LL381-5 with the GENO coding beside it, structural type) and a
diagnostic-implication derived from it (ACMG class as LOINC LL4034-6, the diagnosed disease as predicted
phenotype, the interpretation status in an extension)."""

from __future__ import annotations

import re
from typing import Any

from mappers.phenopacket import systems
from mappers.phenopacket.context import Context, ext
from mappers.terminology import translate
from mappers.toolkit import genomics as gr
from mappers.vcf import reference

LOINC = "http://loinc.org"
POSITIVE = {"system": LOINC, "code": "LA6576-8", "display": "Positive"}  # LL541-4, for a SOLVED case
EXPRESSION_SYNTAX = systems.CS + "expression-syntax"
MOLECULE_CONTEXT = systems.CS + "molecule-context"
# VRSATILE Extension names read as the sample's variant allele fraction (0..1)
VAF_NAMES = ("allele_frequency", "vaf", "variant_allele_frequency", "allelic_frequency")
_HGVS_KIND = {"hgvs.c": "c", "hgvs.g": "g", "hgvs.p": "p"}
_BASES = re.compile(r"[ACGTNacgtn]+")


def _kind(syntax: str, value: str) -> str | None:
    if syntax in _HGVS_KIND:
        return _HGVS_KIND[syntax]
    if syntax == "hgvs":  # the schema's documentation writes plain 'hgvs': the expression says which
        m = re.search(r":([cgp])\.", value)
        return m.group(1) if m else None
    return None


def own_string(code: str, value: str) -> dict[str, Any]:
    return {"code": systems.own(code), "valueString": value}


def variant_facts(vd: dict[str, Any], ctx: Context, where: str) -> gr.Variant:
    v = gr.Variant()
    extra: list[dict[str, Any]] = []
    gene = vd.get("geneContext") or {}
    if gene.get("valueId"):
        v.genes = [gr.Code(systems.table()["prefixes"]["HGNC"]["system"], str(gene["valueId"]),
                           gene.get("symbol") or None)]
        ctx.use(f"{where}.geneContext.valueId", f"{where}.geneContext.symbol")
    for i, e in enumerate(vd.get("expressions") or []):
        syntax, value = str(e.get("syntax", "")), str(e.get("value", ""))
        kind = _kind(syntax, value)
        prefix = value.split(":", 1)[0] if ":" in value else None
        if kind == "c" and v.c_hgvs is None:
            v.c_hgvs = value
            v.transcript = prefix
        elif kind == "g" and v.g_hgvs is None:
            v.g_hgvs = value
            v.genomic_ref_seq = prefix
        elif kind == "p" and v.p_hgvs is None:
            v.p_hgvs = value
            v.protein_ref_seq = prefix
        elif syntax == "iscn" and v.iscn is None:
            v.iscn = {"text": value}
        else:
            extra.append({"code": {"coding": [{"system": EXPRESSION_SYNTAX, "code": syntax or "unknown"}]},
                          "valueString": value})
        ctx.use(f"{where}.expressions[{i}].syntax", f"{where}.expressions[{i}].value")
    vcf = vd.get("vcfRecord")
    if vcf is not None:
        build = str(vcf.get("genomeAssembly", ""))
        asm = reference.assembly_from_name(build) if build else None
        if build:
            v.assembly = [{**gr.answer("assemblies", asm), "text": build} if asm else {"text": build}]
        chrom = str(vcf.get("chrom", ""))
        if chrom:
            v.chromosome = [{**gr.chromosome(chrom), "text": chrom}]
            if v.genomic_ref_seq is None:
                v.genomic_ref_seq = reference.refseq(asm, reference.normalise_chrom(chrom))
        ref, alt = str(vcf.get("ref", "")), str(vcf.get("alt", ""))
        pos = int(vcf.get("pos", 0))
        if pos:
            v.coordinate_system = "1-based-character"
            v.exact = (pos, pos + len(ref) - 1 if _BASES.fullmatch(ref) else pos)
        v.ref = ref or None
        v.alt = alt or None
        for key in ("id", "qual", "filter", "info"):
            if vcf.get(key):
                extra.append(own_string(f"vcf-{key}", str(vcf[key])))
        ctx.use(*(f"{where}.vcfRecord.{k}" for k in ("genomeAssembly", "chrom", "pos", "ref", "alt", "id", "qual",
                                                     "filter", "info")))
    if vd.get("xrefs"):
        v.variation_codes = [systems.concept({"id": x}) for x in vd["xrefs"]]
        ctx.use(f"{where}.xrefs")
    if "structuralType" in vd:
        v.change_type = systems.concept(vd["structuralType"])
        ctx.use(f"{where}.structuralType")
    if "allelicState" in vd:
        geno = systems.coding(vd["allelicState"])
        t = translate("geno-allelic-state-to-loinc-ll381-5", geno["code"])
        codings = [{"system": LOINC, "code": t.code, "display": t.display}] if t else []
        v.allelic_state = {"coding": [*codings, geno]}
        ctx.use(f"{where}.allelicState")
    for j, x in enumerate(vd.get("extensions") or []):
        if str(x.get("name", "")).lower() in VAF_NAMES:
            try:
                fraction = float(x.get("value", ""))
            except ValueError:
                continue
            if 0 <= fraction <= 1:
                v.allele_fraction = fraction
                ctx.use(f"{where}.extensions[{j}]")
    if vd.get("moleculeContext"):
        molecule = {"coding": [{"system": MOLECULE_CONTEXT, "code": vd["moleculeContext"]}]}
        extra.append({"code": systems.own("molecule-context"), "valueCodeableConcept": molecule})
    for key in ("label", "description", "vrsRefAlleleSeq"):
        if vd.get(key):
            extra.append(own_string(key, str(vd[key])))
    extra += [own_string("alternate-label", str(a)) for a in vd.get("alternateLabels") or []]
    ctx.use(*(f"{where}.{k}" for k in ("id", "moleculeContext", "label", "description", "vrsRefAlleleSeq",
                                        "alternateLabels")))
    v.extra = extra
    return v


def interpretation(ctx: Context, interp: dict[str, Any], pref: dict[str, str], subject_id: str,
                   biosamples: dict[str, dict[str, str]], where: str) -> None:
    diagnosis = interp.get("diagnosis") or {}
    disease = diagnosis.get("disease")
    results: list[dict[str, str]] = []
    for i, gi in enumerate(diagnosis.get("genomicInterpretations") or []):
        here = f"{where}.diagnosis.genomicInterpretations[{i}]"
        vi = gi.get("variantInterpretation")
        if vi is None:
            continue  # a gene call has no variant to report: left to the report of what is not mapped
        vd = vi.get("variationDescriptor") or {}
        vwhere = f"{here}.variantInterpretation.variationDescriptor"
        vid = ctx.rid("Observation", here, "variant")
        who = str(gi.get("subjectOrBiosampleId", ""))
        specimen = biosamples.get(who) if who and who != subject_id else None
        obs = gr.variant(variant_facts(vd, ctx, vwhere), vid, subject=pref, specimen=specimen)
        if vd.get("id"):
            obs = {**obs, "identifier": [{"system": systems.VARIATION, "value": str(vd["id"])}]}
        vref = ctx.add(obs, vwhere)
        facts = gr.Implication()
        acmg = vi.get("acmgPathogenicityClassification")
        t = translate("acmg-pathogenicity-to-loinc-ll4034-6", acmg) if acmg else None
        if t:
            facts.clinical_significance = gr.Code(LOINC, t.code, t.display)
        if disease:
            facts.phenotypes = [systems.concept(disease)]
        imp = gr.implication(facts, ctx.rid("Observation", here, "implication"), [vref], subject=pref)
        exts = []
        if gi.get("interpretationStatus"):
            exts.append(ext("interpretation-status", "Code", gi["interpretationStatus"]))
        if vi.get("therapeuticActionability"):
            exts.append(ext("therapeutic-actionability", "Code", vi["therapeuticActionability"]))
        if who and who != subject_id and specimen is None:
            exts.append(ext("subject-or-biosample-id", "String", who))
        if exts:
            imp = {**imp, "extension": exts}
        iref = ctx.add(imp, f"{here}.variantInterpretation")
        results += [vref, iref]
        ctx.use(f"{here}.subjectOrBiosampleId", f"{here}.interpretationStatus",
                f"{here}.variantInterpretation.acmgPathogenicityClassification",
                f"{here}.variantInterpretation.therapeuticActionability")
    progress = interp.get("progressStatus")
    codes = [{"coding": [POSITIVE]}] if progress == "SOLVED" else []  # LL541-4 coarse result first, as GR examples
    if disease:
        codes.append(systems.concept(disease))
    status = "partial" if progress == "IN_PROGRESS" else "final"
    facts_r = gr.Report(id=ctx.rid("DiagnosticReport", where), status=status,
                        subject=pref, results=results, conclusion=interp.get("summary") or None,
                        conclusion_codes=codes,
                        identifier=[{"system": systems.INTERPRETATION, "value": str(interp["id"])}] if interp.get("id")
                        else (),
                        extension=[ext("progress-status", "Code", progress)] if progress else ())
    ctx.add(gr.report(facts_r), where)
    ctx.use(f"{where}.id", f"{where}.progressStatus", f"{where}.summary", f"{where}.diagnosis.disease")
