"""What the mapper keeps between conversions (OBX-3 readings, row codes, names, systems, times) changes no output,
holds no long text and stays bounded."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mappers.hl7v2 import context, memo, parse_message, to_fhir, variable_names
from mappers.hl7v2.context import Context
from mappers.hl7v2.datatypes import (
    _CONCEPTS,
    _dtms,
    _hd_systems,
    _local_systems,
    _system_uris,
    dtm_to_fhir,
    hd_system,
    local_system,
    system_uri,
)
from mappers.hl7v2.emit import genomics
from mappers.hl7v2.structure import Observation

MESSAGES = sorted((Path(__file__).parent / "messages").glob("*.hl7"))


def _forget() -> None:
    for kept in (variable_names._READINGS, variable_names._NAMED, variable_names._ROWS, variable_names._RECOGNISED,
                 genomics._ROW_CODES, genomics._PLANS, genomics._VALUES, _CONCEPTS, context._NOT_MAPPED,
                 context._UNUSED):
        kept.clear()
    for cached in (variable_names._normalised, _system_uris, _dtms, _local_systems, _hd_systems):
        cached.cache_clear()


def _everything(data: bytes) -> bytes:
    conv = to_fhir(data)
    return orjson.dumps({"bundle": conv.bundle, "outcome": conv.outcome, "origins": conv.origins})


def test_outputs_are_the_same_with_the_memos_empty_or_full() -> None:
    _forget()
    cold = [_everything(p.read_bytes()) for p in MESSAGES]
    # the first pass filled them
    assert variable_names._READINGS and genomics._ROW_CODES and genomics._PLANS and genomics._VALUES and _CONCEPTS
    assert context._UNUSED
    warm = [_everything(p.read_bytes()) for p in MESSAGES]
    _forget()
    backwards = [_everything(p.read_bytes()) for p in reversed(MESSAGES)][::-1]
    assert cold == warm == backwards


def _message(obx3: str, obx14: str = "20240102101500+0100") -> bytes:
    return ("MSH|^~\\&|LAB|FAC|EHR|FAC|20240102101500+0100||ORU^R01|M1|P|2.5.1\r"
            "PID|1||P1^^^FAC^MR||DOE^JANE\r"
            "OBR|1||F1|81247-9^Master HL7 genetic variant reporting panel^LN|||20240102\r"
            f"OBX|1|CWE|{obx3}|2|LA9633-4^Present^LN||||||F|||{obx14}\r"
            "OBX|2|CWE|48018-6^Gene studied^LN|2|HGNC:1100^BRCA1^HGNC||||||F\r").encode()


def test_long_texts_are_read_but_never_kept() -> None:
    _forget()
    long_name = "gene studied " + "x" * (4 * memo.SHORT)
    conv = to_fhir(_message(f"LOCAL-1^{long_name}^L"))
    assert any(i.details == "hl7v2-unsliced-component" and "LOCAL-1" in i.message for i in conv.issues)
    kept = [*variable_names._READINGS, *variable_names._NAMED, *variable_names._ROWS, *genomics._ROW_CODES,
            *_CONCEPTS]
    assert kept and all(len(key[0]) <= memo.SHORT for key in kept)  # the short OBX-3 of the other row
    for cached, call in ((variable_names._normalised, lambda t: variable_names.normalise(t)),
                         (_system_uris, lambda t: system_uri(t)), (_dtms, lambda t: dtm_to_fhir(t, None)),
                         (_local_systems, lambda t: local_system(t)), (_hd_systems, lambda t: hd_system(t, "", ""))):
        size = cached.cache_info().currsize
        call("2024" + "0" * memo.SHORT)
        assert cached.cache_info().currsize == size


def test_a_memo_holds_at_most_its_size() -> None:
    kept: dict[int, int] = {}
    for n in range(memo.SIZE + 10):
        assert memo.remember(kept, n, n * 2) == n * 2
    assert 0 < len(kept) <= memo.SIZE


def test_a_row_code_handed_out_is_a_copy() -> None:
    msg = parse_message(_message("48018-6^Gene studied^LN"))
    obs = Observation(msg.all("OBX")[0])
    obs.variable = variable_names.recognise(obs.obx, genomics.variable_codes())
    ctx = Context(msg)
    first = genomics.row_code(ctx, obs)
    first["coding"][0]["code"] = "edited"
    first["coding"].append({"code": "added"})
    second = genomics.row_code(ctx, obs)
    assert second == {"coding": [{"system": "http://loinc.org", "code": "48018-6", "display": "Gene studied"}]}


@pytest.mark.parametrize("site", [(), (("variant of the sample", "48018-6"),)])
def test_a_reading_depends_on_the_site_table(site: tuple[tuple[str, str], ...]) -> None:
    msg = parse_message(_message("G1^Variant of the sample^L"))
    obx = msg.all("OBX")[0]
    rec = variable_names.recognise(obx, genomics.variable_codes(), site)
    again = variable_names.recognise(obx, genomics.variable_codes(), site)
    assert rec == again
    assert (rec is not None and rec.how == "name" and rec.where == "OBX[1]-3.2") is bool(site)


def test_a_coded_value_handed_out_is_a_copy() -> None:
    from mappers.hl7v2.datatypes import cwe_to_codeable_concept

    msg = parse_message(_message("48018-6^Gene studied^LN"))
    obx = msg.all("OBX")[1]
    first = cwe_to_codeable_concept(obx, 5)
    assert first is not None
    first["coding"][0]["code"] = "edited"
    first["coding"].append({"code": "added"})
    again = parse_message(_message("48018-6^Gene studied^LN")).all("OBX")[1]
    assert cwe_to_codeable_concept(again, 5) == {"coding": [{"system": "http://www.genenames.org",
                                                              "code": "HGNC:1100", "display": "BRCA1"}]}


def test_first_reads_as_get_does() -> None:
    """Segment.first(n) skips the memo for a letters-and-digits field; it must read what get(n) reads, also where a
    delimiter is a letter (such a field then holds components)."""
    for path in MESSAGES:
        for seg in parse_message(path.read_bytes()).segments:
            for n in range(len(seg.fields) + 2):
                assert seg.first(n) == seg.get(n), (seg.ref, n)
    odd = parse_message(b"MSH|A~\\&|LAB|FAC|||20240102||ORU^R01|M1|P|2.5.1\rOBX|1|CWE|xAy|2BAc\r")
    obx = odd.all("OBX")[0]
    for _ in range(2):  # the second time with the dialect known
        assert obx.first(3) == obx.get(3) == "x"
        assert obx.first(4) == obx.get(4) == "2B"
