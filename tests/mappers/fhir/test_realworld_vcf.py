"""FHIR inputs written by other projects (corpus real-world/fhir) → VCF, as the edge runs it (`fhir` reads, `vcf`
writes): only the genomics-operations answer states coordinates (an STU1-style nuccore RefSeq, 0-based), and it
gives one 1-based VCF record; the others hold variants named by HGVS only, or no variant, and are refused saying so."""

from __future__ import annotations

import pytest

from mappers.exceptions import EmitError
from mappers.toolkit.registry import ConvertOptions, get
from tests import corpora

pytestmark = corpora.needs("real-world")


def to_vcf(name: str) -> bytes:
    data = (corpora.corpus("real-world") / "fhir" / name).read_bytes()
    bundle = get("fhir").to_fhir(data, ConvertOptions()).bundle
    return get("vcf").from_fhir(bundle, ConvertOptions()).data


def test_genomics_operations_answer_gives_one_record() -> None:
    text = to_vcf("genops-find_subject_specific_variants-1.json").decode()
    assert "##reference=GRCh37" in text and "##contig=<ID=5,length=180915260,assembly=GRCh37>" in text
    records = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    assert [r[:5] for r in records] == [["5", "112102032", ".", "A", "T"]]  # NC_000005.9:g.112102032A>T
    assert to_vcf("genops-find_subject_specific_variants-1.json") == text.encode()


@pytest.mark.parametrize("name", ["mcode4-Bundle-gx-genomic-bundle-adam-anyperson.json",
                                  "mcode4-Observation-genomic-variant-germline-deletion.json",
                                  "mcode4-Observation-gx-genomic-tmb.json",
                                  "gr-stu1-compound-heterozygote.xml"])
def test_variants_without_coordinates_are_refused(name: str) -> None:
    with pytest.raises(EmitError, match=r"no variant Observation .* with a position, ref and alt allele"):
        to_vcf(name)
