"""Hostile and broken VCF input (issue 12): gzip bombs, endless lines and headers, numbers past any range, patterns
fed their worst case. Each ends in a MappingError naming the limit or the field, in bounded time and memory; the
reader's limits are Options fields (mappers/vcf/context.py)."""

from __future__ import annotations

import contextlib
import gzip
import time
import tracemalloc
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappers.exceptions import LimitExceeded, MappingError, ParseError
from mappers.vcf import Converter, Options, from_fhir, iter_lines, ndjson, to_fhir
from mappers.vcf.bgzf import decompress
from mappers.vcf.meta import structured
from tests.mappers.vcf.facts import DATA

HEAD = b"##fileformat=VCFv4.2\n##reference=GRCh38\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
GOOD = b"chr1\t100\t.\tA\tG\t50\tPASS\t.\tGT:AD:DP\t0/1:5,6:11\n"


def gzip_of(head: bytes, unit: bytes, size: int) -> bytes:
    """`head` then `unit` repeated to `size` bytes, gzipped: one member per MiB (as bgzip writes members), so the
    bomb is built in milliseconds and inflates like a single-member one."""
    member = gzip.compress(unit * ((1 << 20) // len(unit)), 9)
    return gzip.compress(head) + member * (size >> 20)


@pytest.mark.parametrize("unit", [b"\n", b"\0", b"chr1\t1\t.\tA\tA\t.\tPASS\t.\tGT\t0/0\n"],
                         ids=["newlines", "zeros", "reference-records"])
def test_gzip_bomb_is_refused_naming_the_limit_in_bounded_memory(unit: bytes) -> None:
    bomb = gzip_of(HEAD, unit, 2 << 30)  # 2 GiB inflated
    assert 1 << 20 < len(bomb) < 6 << 20
    tracemalloc.start()
    started = time.process_time()
    try:
        with pytest.raises(LimitExceeded) as err:
            to_fhir(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    issue = err.value.issues[0]
    assert issue.details == "vcf-compression-ratio" and "max_compression_ratio" in issue.message
    assert peak < 48 << 20, peak  # a few inflated MiB at most, never the bomb
    assert time.process_time() - started < 20


def test_decompressed_size_limit() -> None:
    with pytest.raises(LimitExceeded, match="inflates past 1,000 bytes \\(limit max_decompressed_bytes\\)"):
        to_fhir(gzip.compress(HEAD + GOOD * 100), Options(max_decompressed_bytes=1000))


def test_inflating_is_stepwise_and_multi_member_streams_read_whole() -> None:
    text = HEAD + b"".join(GOOD.replace(b"\t100\t", b"\t%d\t" % (100 + 7 * i)) for i in range(100_000))
    gz = gzip.compress(text[:1000]) + gzip.compress(text[1000:])
    pieces = list(decompress([gz]))
    assert b"".join(pieces) == text and max(map(len, pieces)) <= 1 << 20


def test_line_length_limit_names_the_line() -> None:
    with pytest.raises(LimitExceeded) as err:
        to_fhir(HEAD + GOOD + b"chr1\t200\t" + b"A" * 5000 + b"\n", Options(max_line_bytes=4096))
    assert err.value.issues[0].expression == "line 5"
    assert "longer than 4,096 bytes (limit max_line_bytes)" in err.value.issues[0].message


def test_a_line_without_end_is_refused_once_it_passes_the_limit() -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        yield HEAD
        while True:
            pulled += 1
            yield b"A" * 65536

    with pytest.raises(LimitExceeded, match="line 4 is longer than"):
        to_fhir(endless(), Options(max_line_bytes=1 << 20))
    assert pulled <= 17


def test_header_size_limits() -> None:
    lines = b"##x=" + b"y" * 100 + b"\n"
    text = b"##fileformat=VCFv4.2\n" + lines * 100 + HEAD.split(b"\n", 1)[1]
    with pytest.raises(LimitExceeded, match="longer than 5,000 bytes \\(limit max_header_bytes\\)"):
        Converter(iter_lines([text]), Options(max_header_bytes=5000))
    with pytest.raises(LimitExceeded, match="longer than 50 lines \\(limit max_header_lines\\)") as err:
        Converter(iter_lines([text]), Options(max_header_lines=50))
    assert err.value.issues[0].expression == "line 51"
    many = HEAD.replace(b"\tS\n", b"".join(b"\tS%d" % i for i in range(300)) + b"\n")
    with pytest.raises(LimitExceeded, match="names 300 samples, more than 200 \\(limit max_samples\\)"):
        Converter(iter_lines([many]), Options(max_samples=200))


def test_a_hostile_header_is_refused_in_bounded_memory() -> None:
    """11 million tiny header lines (64 MB) would hold ~2 GB as parsed meta lines: the line cap stops it early."""
    text = b"##fileformat=VCFv4.2\n" + b"##a=b\n" * 11_000_000
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded, match="limit max_header_lines"):
            Converter(iter_lines([text]))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20, peak


@pytest.mark.parametrize(("record", "message"), [
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AD:DP\t0/1:3,4:1e309", "FORMAT DP '1e309' is not a count"),
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AD:DP\t0/1:3,18446744073709551617:7", "FORMAT AD '3,18446744…' is not a count"),
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AF\t0/1:nan", "FORMAT AF 'nan' is not a number from 0 to 1"),
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AF\t0/1:inf", "FORMAT AF 'inf' is not a number from 0 to 1"),
    ("chr1\t10\t.\tN\t<DUP>\t.\tPASS\tEND=100\tGT:CN\t./.:1e300", "FORMAT CN '1e300' is not a number from 0 to 2^31-1"),
    ("chr1\t99999999999999999999\t.\tA\tG\t.\tPASS\t.\tGT\t0/1", "POS '9999999999…' is not an integer"),
    ("chr1\t10\t.\tA\t<DEL>\t.\tPASS\tEND=4294967296\tGT\t0/1", "INFO END '4294967296' is not an integer"),
    ("chr1\t10\t.\tA\t<DEL>\t.\tPASS\tSVLEN=-99999999999999999999\tGT\t0/1", "INFO SVLEN"),
    ("chr1\t10\t.\tA\t<DEL>\t.\tPASS\tEND=100;CIPOS=-99999999999999999999,5\tGT\t0/1", "INFO CIPOS"),
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/99999999999999999999999", "names allele 999999999999"),
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT\t0/\u00b2", "is not a genotype"),
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AO:RO\t0/1:1e309:2", "FORMAT AO '1e309' is not a count"),
    ("chr1\t10\t.\tA\tG\t.\tPASS\t.\tGT:AD\t0/1:-3,4", "FORMAT AD '-3,4' is not a count"),
], ids=["DP inf", "AD above 2^64", "AF nan", "AF inf", "CN huge", "POS huge", "END above 2^31", "SVLEN huge",
        "CIPOS huge", "GT index huge", "GT unicode digit", "AO inf", "AD negative"])
def test_numbers_out_of_range_are_a_clear_error_or_a_counted_skip(record: str, message: str) -> None:
    text = HEAD + record.encode() + b"\n"
    with pytest.raises(ParseError) as err:
        to_fhir(text)
    assert message in err.value.issues[0].message and err.value.issues[0].expression == "line 4"
    lenient = to_fhir(text + GOOD, Options(lenient=True))
    assert lenient.summary.skipped["invalid-record"] == 1 and lenient.summary.variants == 1
    orjson.dumps(lenient.bundle)


def test_numbers_the_mapper_does_not_read_are_left_alone() -> None:
    """INFO DP (a cohort depth) and QUAL are not numbers the output carries: 1e309 there converts."""
    conv = to_fhir(HEAD + b"chr1\t10\t.\tA\tG\t1e309\tPASS\tDP=1e309\tGT\t0/1\n")
    assert conv.summary.variants == 1
    orjson.dumps(conv.bundle)


@pytest.mark.parametrize("value", [
    "<" + "a" * 4_000_000 + ">",  # a name without '=' (quadratic for the obvious regular expression)
    "<" + 'a="' * 1_000_000 + ">",  # unterminated quotes
    "<" + "a," * 1_000_000 + "b=1>",  # bare words before a key
    "<" + "k=1," * 500_000 + ">",
], ids=["name-without-equals", "unterminated-quotes", "bare-words", "many-attributes"])
def test_structured_meta_values_take_linear_time(value: str) -> None:
    started = time.process_time()
    structured(value)
    assert time.process_time() - started < 5


def test_long_fields_take_linear_time() -> None:
    """REF/ALT/GT patterns and the column split on an 8 MB record."""
    long = b"A" * 4_000_000
    text = HEAD + b"chr1\t10\t.\t" + long + b"\t" + long + b"!\t.\tPASS\t.\tGT\t0/1\n"
    started = time.process_time()
    with pytest.raises(ParseError, match="ALT allele"):
        to_fhir(text)
    assert time.process_time() - started < 5


SEEDS = [HEAD + GOOD, (DATA / "mutect2-tumor-normal.vcf").read_bytes(),
         (DATA / "strelka-somatic-indels.vcf").read_bytes(),
         HEAD + b"chr1\t1000\t.\tN\t<CN0>,<CN3>\t.\tPASS\tEND=5000;CIPOS=-5,5\tGT:CN\t./.:3\n"
                b"chr1\t1\t.\tN\t.\t0\tLowGQX\tEND=99\tGT:DP\t0/0:3\nchr1\t181\t.\tC\tT,<NON_REF>\t50\tPASS\t.\t"
                b"GT:AD:DP:PS\t0|1:10,12,0:22:5\n"]
TOKENS = [b"\t", b"\n", b":", b",", b";", b"=", b".", b"/", b"|", b"<DEL>", b"<NON_REF>", b"END=", b"1e309",
          b"-1", b"99999999999999999999", b"nan", b"CN", b"GT", b"AD", b"AF", b"SVLEN=", b"CIPOS=", b"#CHROM",
          b"\x00", b"\xff", b"TUMOR", b"AU", b"TIR", b"AO", b"[", b"*", b"./.", b"0|1", b"SOMATIC", b"\r"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 2))
        if op == 0:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == 1:
            del data[pos:pos + draw(st.integers(1, 12))]
        else:
            data[pos:pos + draw(st.integers(0, 8))] = draw(st.binary(max_size=6))
    return bytes(data)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(mutated(), st.booleans())
def test_mutated_input_only_ever_raises_mapping_errors(data: bytes, lenient: bool) -> None:
    """A short fuzz of the reader, the emitters and the way back (the long runs: bench/fuzz)."""
    try:
        conv = to_fhir(data, Options(lenient=lenient))
    except MappingError:
        return
    body = orjson.dumps(conv.bundle)
    with contextlib.suppress(MappingError):
        from_fhir(body)
    b"".join(ndjson(Converter(iter_lines([data]), Options(lenient=lenient), relative_refs=True)))
