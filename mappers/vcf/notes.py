"""What the conversion report says about the input as a whole: the assembly the header states, the sample roles
and the columns not converted, and why a conversion that mapped no variant is refused (or is a negative report)."""

from __future__ import annotations

from mappers.exceptions import UnsupportedMessage
from mappers.vcf.context import Context
from mappers.vcf.model import Header
from mappers.vcf.roles import NORMAL, TUMOUR

# Skip reasons that mean "no variant in this sample here": a conversion of only these is a (negative) report.
# Any other reason behind an empty result means the input's calls could not be mapped: refused, saying why.
NOT_A_VARIANT = {"outside-conversion-region", "filtered", "no-alt", "gvcf-reference-block", "no-call",
                 "reference-genotype"}


def assembly(ctx: Context, header: Header) -> None:
    """Which assembly the variants are placed on, and on whose word."""
    opt, hdr = ctx.options.assembly, header.assembly
    if opt and hdr and opt != hdr:
        ctx.issue("warning", "vcf-assembly-override",
                  f"the header says {hdr} ({header.assembly_evidence}); converted as {opt} as asked", "header",
                  code="business-rule")
    elif hdr and not opt:
        ctx.issue("information", "vcf-assembly-from-header", f"assembly {hdr} from {header.assembly_evidence}",
                  "header")
    elif not opt and not hdr:
        named = next((f"##{k}={v}" for k, v in header.meta if k == "reference" and v), None) or next(
            (f"##contig assembly={c.assembly}" for c in header.contigs.values() if c.assembly), None)
        what = (f"the header's {named[:80]} is neither GRCh37 nor GRCh38" if named else
                "the header names no assembly (##reference, ##contig assembly/length)")
        ctx.issue("warning", "vcf-assembly-unknown",
                  f"{what}; variants carry contig names instead of RefSeq accessions: pass --assembly "
                  "GRCh37|GRCh38 if the calls are on one of them", "header", code="incomplete")


def samples(ctx: Context, header: Header) -> None:
    """The sample roles the header gives, the source class they imply, and the sample columns not converted."""
    where = f"line {header.chrom_line}"
    for name, (role, evidence) in header.roles.items():
        what = "converted" if name == header.sample else "not converted"
        ctx.issue("information", "vcf-sample-role", f"sample {name[:60]} is the {role} of a tumour/normal pair "
                  f"({evidence[:80]}); {what}", where)
    if header.role == TUMOUR and not ctx.options.genomic_source:
        ctx.issue("information", "vcf-genomic-source-somatic", f"genomic source somatic: sample "
                  f"{(header.sample or '')[:60]} is the tumour (genomicSource overrides)", where)
    others = [s for s in header.samples if s != header.sample]
    if others:
        named = ", ".join(s[:40] + (f" ({header.roles[s][0]})" if s in header.roles else "") for s in others[:10])
        more = f" and {len(others) - 10} more" if len(others) > 10 else ""
        ctx.issue("information", "vcf-sample-not-converted", f"{len(others)} other sample column"
                  f"{'s' if len(others) > 1 else ''} not converted: {named}{more} (the sample option picks "
                  f"another; converted: {(header.sample or '')[:40]})", where)


def nothing_converted(ctx: Context, header: Header, first_invalid: str | None) -> None:
    """For a conversion without variants: raise UnsupportedMessage saying why when records were read but none
    could be mapped; when none was a variant call, the report stands (with a warning if all were filtered)."""
    summary = ctx.summary
    unmappable = [(k, n) for k, n in summary.skipped.most_common() if k not in NOT_A_VARIANT]
    if not unmappable:
        filtered = summary.skipped.get("filtered", 0)
        if filtered:
            ctx.issue("warning", "vcf-all-filtered", f"no variant converted: the {filtered} records with calls "
                      "are all filtered (FILTER not PASS); keepFiltered converts them", code="incomplete")
        return
    sample = (header.sample or "")[:40]
    reasons = []
    for reason, n in unmappable:
        records = f"{n} record{'s' if n > 1 else ''}"
        if reason == "no-genotype":
            text = f"{records} {'have' if n > 1 else 'has'} no GT for sample {sample}"
            if header.role == NORMAL:
                tumours = [s for s, (r, _) in header.roles.items() if r == TUMOUR]
                text += (f", which the header makes the matched normal ({header.roles[header.sample or ''][1][:60]}):"
                         " a somatic caller's records are the tumour's calls"
                         + (f"; convert the tumour sample {tumours[0][:40]}" if tumours else ""))
            else:
                text += " and the header names no tumour/normal roles that would say whose calls they are"
        elif reason == "invalid-record":
            text = f"{records} malformed (skipped; the first: {first_invalid})"
        elif reason == "truncated-input":
            text = "the input is truncated"
        else:
            text = f"{records} with only {reason} alleles, which are not converted"
        reasons.append(text)
    raise UnsupportedMessage(f"no variant converted from {summary.records} records: " + "; ".join(reasons),
                             details="vcf-nothing-converted", expression=f"line {header.chrom_line}")
