"""VCF → FHIR → VCF on every corpus VCF: each converted record comes back with its CHROM, POS, REF, ALT, GT, AD
and DP; the output is a sorted VCF 4.2 that reads back strictly. Also FHIR from HL7 v2 → VCF."""

from __future__ import annotations

import orjson
import pytest

from mappers.exceptions import EmitError, ParseError
from mappers.hl7v2 import to_fhir as hl7v2_to_fhir
from mappers.vcf import Converter, Options, from_fhir, iter_lines, ndjson, read_header, to_fhir
from tests.conftest import ROOT
from tests.mappers.vcf.facts import corpus_vcfs, norm, records, variants, vcf_file

FILES = corpus_vcfs()


def converted_records(bundle: dict) -> set[tuple[str, int, str]]:
    """(chrom, POS, REF) of every record a Variant came from, read from the Variants' own components."""
    out = set()
    for obs in variants(bundle):
        comps = {c["code"]["coding"][0]["code"]: c for c in obs["component"]}
        rng = (comps.get("81254-5") or comps.get("81301-4") or comps.get("81302-2"))["valueRange"]
        low = rng["low"]["value"] + 1
        if "81301-4" in comps:  # outer range: widened by CIPOS
            cipos = comps.get("INFO/CIPOS", {}).get("valueString", "0,0")
            low -= min(int(x) for x in cipos.split(","))
        ref_seq = comps["48013-7"]["valueCodeableConcept"]
        acc = ref_seq["coding"][0]["code"] if ref_seq.get("coding") else ref_seq["text"]
        chrom = {"23": "X", "24": "Y"}.get(str(int(acc[3:9])), str(int(acc[3:9]))) if acc.startswith("NC_0000") else (
            "MT" if acc.startswith("NC_012920") else norm(acc))
        out.add((chrom, low, comps["69547-8"]["valueString"]))
    return out


@pytest.mark.parametrize("name", FILES)
def test_round_trip_keeps_chrom_pos_ref_alt_gt_ad_dp(name: str) -> None:
    path = vcf_file(name)
    conv = to_fhir(path.read_bytes(), Options(lenient=True, genomic_source="germline"))
    back = from_fhir(orjson.dumps(conv.bundle))
    text = back.data.decode()
    source = {(r.norm, r.pos, r.ref): r for r in records(path)}
    done = converted_records(conv.bundle)
    assert len(done) == conv.summary.converted
    assert conv.summary.records == len(records(path)) == conv.summary.converted + sum(conv.summary.skipped.values())
    out = {(r.norm, r.pos, r.ref): r for r in records(text)}
    assert set(out) == done
    for key in done:
        want, got = source[key], out[key]
        assert got.alts == want.alts, key
        for field in ("GT", "AD", "DP"):
            if want.sample.get(field, ".") != ".":
                assert got.sample.get(field) == want.sample[field], (key, field)
    # the output reads back strictly (valid VCF 4.2, contigs declared) and is sorted
    header = read_header(iter_lines([back.data]), None)
    assert header.version == "4.2" and header.contigs
    if len(done) < 5000:  # read back strictly (the big files say nothing more, only slower)
        again = to_fhir(back.data, Options(genomic_source="germline"))
        assert again.summary.converted == conv.summary.converted and again.summary.skipped == {}
    order = [(r.norm, r.pos) for r in records(text)]
    rank = {c: i for i, c in enumerate([*map(str, range(1, 23)), "X", "Y", "MT"])}
    assert order == sorted(order, key=lambda k: (rank.get(k[0], 99), k[0], k[1]))


def test_round_trip_through_ndjson_and_assembly_in_header() -> None:
    path = vcf_file("NB6TK328_filtered.vcf")
    conv = Converter(iter_lines([path.read_bytes()]), Options(), relative_refs=True)
    back = from_fhir(b"".join(ndjson(conv))).data.decode()
    assert "##reference=GRCh38" in back
    assert "##contig=<ID=chr5,length=181538259,assembly=GRCh38>" in back  # GRCh38 → chr names
    src = [(r.chrom, r.pos, r.ref, r.alts, r.sample["GT"], r.sample["AD"]) for r in records(path)]
    got = [(r.chrom, r.pos, r.ref, r.alts, r.sample["GT"], r.sample["AD"]) for r in records(back)]
    assert sorted(got) == sorted(src)
    ids = {r.pos: r.id for r in records(back)}
    assert {r.pos: r.id for r in records(path)} == ids  # rs…;21030 comes back whole


def test_variants_from_hl7v2_become_vcf_records_in_1_based_positions() -> None:
    conv = hl7v2_to_fhir((ROOT / "examples" / "oru-egfr-somatic.hl7").read_bytes())
    expected = []
    for obs in variants(conv.bundle):
        comps = {c["code"]["coding"][0]["code"]: c for c in obs["component"]}
        if "81254-5" in comps and "69551-0" in comps:
            expected.append((comps["81254-5"]["valueRange"]["low"]["value"], comps["69547-8"]["valueString"],
                             comps["69551-0"]["valueString"]))
    assert expected
    out = records(from_fhir(orjson.dumps(conv.bundle)).data.decode())
    assert [(r.pos, r.ref, r.alts[0]) for r in out] == sorted(expected)  # LA30102-0: POS = low


def test_fhir_without_variants_or_with_bad_json_is_rejected() -> None:
    with pytest.raises(EmitError, match="no variant Observation"):
        from_fhir(b'{"resourceType": "Bundle", "type": "collection", "entry": []}')
    with pytest.raises(ParseError) as err:
        from_fhir(b'{"resourceType": "Patient", "id": "a"}\n{broken\n')
    assert err.value.issues[0].expression == "line 2"
