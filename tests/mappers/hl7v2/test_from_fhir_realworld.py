"""FHIR inputs written by other projects (corpus real-world/fhir: mCODE STU4 examples, a Genomics Reporting STU1
Bundle in FHIR XML, a genomics-operations answer) → HL7 v2 ORU^R01, the way the edge runs it: the `fhir` format reads
the input (wrapping a single resource or a Parameters), the `hl7v2` format writes the message. Each file states what
the message must carry, what the report must say was not carried, that the message parses back and converts to FHIR
that validates with 0 errors and keeps the variant facts, and that converting twice gives the same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from mappers.hl7v2 import Options, to_fhir
from mappers.toolkit.registry import ConvertOptions, get
from tests import corpora
from tests.mappers.hl7v2.facts import facts
from tests.mappers.hl7v2.v2facts import gene_symbols, groups, message, variant_groups

pytestmark = corpora.needs("real-world")


def _path(name: str) -> Path:
    return corpora.corpus("real-world") / "fhir" / name


def convert(name: str) -> tuple[bytes, list[Any]]:
    """The message and the report (issues of reading and of writing), as the edge produces them."""
    data = _path(name).read_bytes()
    conv = get("fhir").to_fhir(data, ConvertOptions())
    out = get("hl7v2").from_fhir(conv.bundle, ConvertOptions())
    return out.data, [*conv.issues, *out.issues]


def details(issues: list[Any], severity: str = "warning") -> list[str]:
    return [i.details for i in issues if i.severity == severity]


def round_trip(data: bytes, validator: Any) -> dict[str, Any]:
    """v2 → FHIR of the written message: converted twice to the same bytes, validated with 0 errors; its facts,
    and the Bundle under 'bundle'."""
    first = to_fhir(data, Options()).bundle
    assert orjson.dumps(to_fhir(data, Options()).bundle) == orjson.dumps(first)
    errors = [i.message for i in validator.validate(first) if i.severity in ("error", "fatal")]
    assert errors == [], errors[:5]
    return {**facts(first), "bundle": first}


def test_mcode_genomic_bundle(validator: Any) -> None:
    data, issues = convert("mcode4-Bundle-gx-genomic-bundle-adam-anyperson.json")
    msg = message(data)
    pid = msg.first("PID")
    assert pid is not None and pid.get(3) == "22ea1d1b-03a5-47d6-81e0-b9b4cbb15ccf" and pid.get(5) == "Anyperson"
    assert (pid.get(7), pid.get(8)) == ("19900101", "M")
    obr = msg.first("OBR")
    assert obr is not None and obr.get(4) == "XT.V4" and obr.get(7) == "20220215192858+0500"
    assert obr.get(31) == "C34.9" and obr.get(25) == "F"
    assert [s.get(4) for s in msg.all("SPM")] == ["TUMOR", "BLD"]
    var = variant_groups(msg)
    assert list(var) == [f"2{c}" for c in "abcdefghij"]  # ten variants, each its own OBX-4 group
    assert [gene_symbols(msg, g) for g in var] == [
        ["BAP1"], ["CDKN2A"], ["CDKN2B"], ["KDM5D"], ["MTAP"], ["MYCN"], ["POF1B"], ["POLRMT"], ["MET", "ALK"],
        ["NRAS", "KIT", "BRAF"]]
    assert var["2a"]["48004-6"] == ["NM_004656.4:c.1768C>T"] and var["2a"]["48005-3"] == ["NP_004647.1:p.(Gln590Ter)"]
    assert var["2a"]["51958-7"] == ["NM_004656"]
    assert var["2g"]["48004-6"] == ["NM_001307940.2:c.430C>T"] and var["2h"]["48004-6"] == ["NM_005035.4:c.598G>A"]
    # allele fractions given in % are written as LRI's number fraction
    assert [var[g]["81258-6"] for g in ("2a", "2g", "2h")] == [["0.574"], ["0.786"], ["0.756"]]
    assert [g for g in var if var[g].get("48002-0") == ["LA6684-0"]] == [f"2{c}" for c in "abcdefghi"]
    assert var["2j"]["69548-6"] == ["LA9634-2"]  # the pertinent negative stays Absent
    assert var["2a"]["62374-4"] == ["LA14029-5"]  # GRCh37
    assert var["2i"]["48019-4"] == ["SO:0002062"]
    # implications: clinical significance in the variant's own group, therapies paired in sub-groups
    assert var["2g"]["53037-8"] == var["2h"]["53037-8"] == ["LA26333-7"]
    assert var["2a"]["functional-effect"] == ["SO:0002054"]
    rows = groups(msg)
    drugs = [rows[f"2i.{n}"]["51963-7"][0] for n in range(1, 6)]
    assert drugs == ["1727455", "1921217", "1535457", "1148495", "2103164"]
    assert all(rows[f"2i.{n}"]["therapeutic-implication"] == ["LA9661-5"] for n in range(1, 6))
    tmb = next(o for o in msg.all("OBX") if o.get(3) == "94076-7")
    assert (tmb.get(4), tmb.get(5), tmb.get(6)) == ("1", "57.1", "1/1000000{Base}")
    # what the message cannot carry is in the report
    warned = details(issues)
    assert "fhir-result-not-in-input" in warned  # the MSI result the report names is not in the Bundle
    assert warned.count("fhir-element-not-carried") >= 20  # performers, the birth-sex extension
    assert "hl7v2-message-time-guessed" in warned and msg.msh.get(7) == "20220215192858+0500"  # the report's time
    assert get("hl7v2").from_fhir(get("fhir").to_fhir(_path(
        "mcode4-Bundle-gx-genomic-bundle-adam-anyperson.json").read_bytes(), ConvertOptions()).bundle,
        ConvertOptions()).data == data
    back = round_trip(data, validator)
    assert len(back["variants"]) == 10
    assert [v["c_hgvs"] for v in back["variants"] if v["c_hgvs"]] == [
        "NM_004656.4:c.1768C>T", "NM_001307940.2:c.430C>T", "NM_005035.4:c.598G>A"]
    assert [v["allelic_frequency"] for v in back["variants"] if v["allelic_frequency"]] == [0.574, 0.786, 0.756]
    assert [v["clinical_significance"] for v in back["variants"] if v["clinical_significance"]] == ["LA26333-7"] * 2


def test_mcode_lone_germline_variant(validator: Any) -> None:
    data, issues = convert("mcode4-Observation-genomic-variant-germline-deletion.json")
    msg = message(data)
    assert msg.first("PID") is None  # its subject is not in the input
    assert msg.msh.get(7) == "20190401"  # no message time in the input: the result's, said so
    obr = msg.first("OBR")
    assert obr is not None and obr.get(4) == "81247-9" and obr.get(7) == "20190401" and obr.get(25) == "F"
    var = variant_groups(msg)
    assert list(var) == ["2a"] and gene_symbols(msg, "2a") == ["BRCA1"]
    assert var["2a"]["81290-9"] == ["NG_005905.2:g.126148_126152del"]
    assert var["2a"]["48002-0"] == ["LA6683-2"] and var["2a"]["69548-6"] == ["LA9633-4"]
    assert var["2a"]["81304-8"] == ["LA26398-0"]
    warned = details(issues)
    assert {"hl7v2-order-synthesized", "hl7v2-subject-not-in-input", "fhir-element-not-carried"} <= set(warned)
    dropped = {i.expression for i in issues if i.details == "fhir-element-not-carried"}
    assert dropped == {"Bundle.entry[0].resource.performer", "Bundle.entry[0].resource.interpretation"}
    back = round_trip(data, validator)
    assert [(v["gene"], v["g_hgvs"], v["source_class"]) for v in back["variants"]] == [
        ("HGNC:1100", "NG_005905.2:g.126148_126152del", "LA6683-2")]


def test_mcode_lone_tmb(validator: Any) -> None:
    data, issues = convert("mcode4-Observation-gx-genomic-tmb.json")
    msg = message(data)
    assert msg.msh.get(7) == "20190401" and "hl7v2-message-time-guessed" in details(issues)
    assert variant_groups(msg) == {}
    assert groups(msg) == {"1": {"94076-7": ["57.1"]}}
    tmb = msg.all("OBX")[0]
    assert (tmb.get(2), tmb.get(6), tmb.get(14)) == ("NM", "1/1000000{Base}", "20190401")
    assert "hl7v2-order-synthesized" in details(issues)
    back = round_trip(data, validator)
    assert back["variants"] == []
    tmb = [e["resource"] for e in back["bundle"]["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"], o["valueQuantity"]["code"]) for o in tmb] == [
        ("94076-7", 57.1, "1/1000000{Base}")]


def test_genomics_operations_answer(validator: Any) -> None:
    data, issues = convert("genops-find_subject_specific_variants-1.json")
    msg = message(data)
    assert msg.msh.get(7) == "" and "hl7v2-no-message-time" in details(issues)  # the answer states no time at all
    var = variant_groups(msg)
    assert list(var) == ["2a"]
    g = var["2a"]
    assert g["48013-7"] == ["NC_000005.9"] and g["69547-8"] == ["A"] and g["69551-0"] == ["T"]
    assert g["81254-5"] == ["112102032"] and g["92822-6"] == ["LA30102-0"]  # 0-based 112102031 written 1-based
    assert g["81252-9"] == ["NC_000005.9:112102031:A:T"] and g["69548-6"] == ["LA9633-4"]
    # the answer's non-resource parameters (presence, the queried variantItem) are reported, not lost
    params = [i for i in issues if i.details == "fhir-parameter-not-carried"]
    assert [i.expression for i in params] == ["Parameters.parameter[0].part[0].valueBoolean",
                                              "Parameters.parameter[0].part[2].valueString"]
    assert "hl7v2-coordinates-shifted" in details(issues, "information")
    back = round_trip(data, validator)
    assert [(v["ref_seq"], v["start"], v["ref"], v["alt"]) for v in back["variants"]] == [
        ("NC_000005.9", 112102032, "A", "T")]


def test_stu1_compound_heterozygote_in_xml(validator: Any) -> None:
    data, issues = convert("gr-stu1-compound-heterozygote.xml")
    msg = message(data)
    var = variant_groups(msg)
    assert list(var) == ["2a", "2b", "2c"]
    assert var["2a"]["48004-6"] == ["NM_022787.3:c.769G>A"] and var["2b"]["48004-6"] == ["NM_022787.3:c.53A>G"]
    assert var["2c"]["81263-6"] == ["LA26217-2"]  # the complex variant: compound heterozygous
    assert all(g["69548-6"] == ["LA9633-4"] for g in var.values())
    linked = [i for i in issues if i.details == "hl7v2-members-not-linked"]
    assert len(linked) == 1 and "NM_022787.3:c.53A>G" in linked[0].message
    assert {"hl7v2-no-subject", "hl7v2-order-synthesized"} <= set(details(issues))
    back = round_trip(data, validator)
    assert [v["c_hgvs"] for v in back["variants"]] == ["NM_022787.3:c.769G>A", "NM_022787.3:c.53A>G", None]


@pytest.mark.parametrize("name", ["mcode4-Bundle-gx-genomic-bundle-adam-anyperson.json",
                                  "mcode4-Observation-genomic-variant-germline-deletion.json",
                                  "mcode4-Observation-gx-genomic-tmb.json",
                                  "genops-find_subject_specific_variants-1.json",
                                  "gr-stu1-compound-heterozygote.xml"])
def test_same_input_gives_the_same_bytes(name: str) -> None:
    data = _path(name).read_bytes()
    fhir = get("fhir")
    first, second = fhir.to_fhir(data, ConvertOptions()), fhir.to_fhir(data, ConvertOptions())
    assert orjson.dumps(first.bundle) == orjson.dumps(second.bundle)
    assert convert(name)[0] == convert(name)[0]


def test_every_fhir_file_of_the_corpus_is_tested() -> None:
    names = {p.name for p in (corpora.corpus("real-world") / "fhir").iterdir()}
    assert names == {"mcode4-Bundle-gx-genomic-bundle-adam-anyperson.json",
                     "mcode4-Observation-genomic-variant-germline-deletion.json",
                     "mcode4-Observation-gx-genomic-tmb.json", "genops-find_subject_specific_variants-1.json",
                     "gr-stu1-compound-heterozygote.xml"}
