"""Hostile and broken input (issue 12): whatever bytes arrive, the China CDA reader answers with a conversion or a
MappingError (ParseError/UnsupportedMessage/EmitError) that says why; never another exception. A bounded
property-based run over mutated samples (derandomized, so CI sees the same inputs), plus the size and DTD rules."""

from __future__ import annotations

import copy

import orjson
import pytest
from lxml import etree

from mappers.cda_cn import from_fhir, to_fhir
from mappers.cda_cn.safexml import MAX_BYTES
from mappers.exceptions import LimitExceeded, MappingError, ParseError
from tests.mappers.cda_cn.helpers import SAMPLES

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis (a test dependency) is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SEEDS = [p.read_bytes() for p in sorted(SAMPLES.glob("**/*.xml"))]
BUNDLES = [orjson.dumps(to_fhir(p.read_bytes()).bundle) for p in sorted(SAMPLES.glob("*.xml"))]
TRICKY = ["", " ", "NA", "9" * 40, "1e309", "-0", "20241345", "20240230", "0000", "20240101120000+2500",
          "2024010112", "<", "&", "张三", "2.16.156.10011.1.3", "C0006", "DE04.30.015.00", "NaN", "-1", "x" * 300]
VALUE = st.sampled_from(TRICKY) | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
ATTRS = st.sampled_from(["value", "code", "codeSystem", "unit", "extension", "root", "nullFlavor", "displayName",
                         "typeCode"])
# a few seconds per run: the long campaigns belong to bench/fuzz (issue 12), this keeps the crash classes covered
BUDGET = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated_xml(draw: st.DrawFn) -> bytes:
    """A sample with elements dropped, duplicated, or given odd text and attributes."""
    root = etree.fromstring(draw(st.sampled_from(SEEDS)), etree.XMLParser(remove_comments=True))
    for _ in range(draw(st.integers(1, 6))):
        elements = list(root.iter())
        el = elements[draw(st.integers(0, len(elements) - 1))]
        op = draw(st.sampled_from(["drop", "duplicate", "text", "attribute"]))
        parent = el.getparent()
        if op == "drop" and parent is not None:
            parent.remove(el)
        elif op == "duplicate" and parent is not None:
            parent.insert(parent.index(el), copy.deepcopy(el))
        elif op == "text":
            el.text = draw(VALUE)
        else:
            el.set(draw(ATTRS), draw(VALUE))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    """A sample with bytes flipped, inserted, deleted or cut off (broken encodings, broken markup)."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


@BUDGET
@given(mutated_xml() | mutated_bytes())
def test_any_document_gives_a_conversion_or_a_mapping_error(data: bytes) -> None:
    try:
        conversion = to_fhir(data)
    except MappingError as e:
        assert e.issues and e.issues[0].message
        return
    orjson.dumps(conversion.bundle)  # what converts can be written


JSON_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                       st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                                                   st.integers(),
                                                                                                   max_size=2))


@st.composite
def mutated_bundle(draw: st.DrawFn) -> bytes:
    """A converted Bundle with values replaced by JSON of the wrong shape, or keys removed, anywhere."""
    doc = orjson.loads(draw(st.sampled_from(BUNDLES)))
    for _ in range(draw(st.integers(1, 6))):
        node = doc
        for _depth in range(draw(st.integers(1, 8))):
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node)))
                if not isinstance(node[key], dict | list) or draw(st.booleans()):
                    if draw(st.booleans()):
                        node[key] = draw(JSON_VALUE)
                    else:
                        del node[key]
                    break
                node = node[key]
            elif isinstance(node, list) and node:
                node = node[draw(st.integers(0, len(node) - 1))]
            else:
                break
    try:
        return orjson.dumps(doc)
    except TypeError:  # an integer beyond 64 bits: send it as text
        return str(doc).encode()


@settings(BUDGET, max_examples=40)
@given(mutated_bundle())
def test_any_bundle_gives_a_document_or_a_mapping_error(data: bytes) -> None:
    try:
        from_fhir(data)
    except MappingError as e:
        assert e.issues and e.issues[0].message


def test_the_size_limit_holds_by_default() -> None:
    assert MAX_BYTES == 5 * 1024 * 1024
    data = SEEDS[0]
    padded = data.replace(b"</ClinicalDocument>", b"<!--" + b"x" * (MAX_BYTES - len(data)) + b"-->"
                          b"</ClinicalDocument>")
    with pytest.raises(LimitExceeded) as e:
        to_fhir(padded)
    assert e.value.issues[0].details == "cda-too-large" and f"the limit is {MAX_BYTES}" in e.value.issues[0].message


def test_a_doctype_is_refused_even_after_mutation() -> None:
    for data in SEEDS:
        hostile = data.replace(b"<ClinicalDocument", b'<!DOCTYPE x [<!ENTITY e "e">]>\n<ClinicalDocument', 1)
        with pytest.raises(ParseError) as e:
            to_fhir(hostile)
        assert e.value.issues[0].details == "cda-doctype-forbidden"


def test_nesting_beyond_the_parser_depth_is_a_parse_error() -> None:
    deep = SEEDS[0].replace(b"<text/>", b"<text>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</text>", 1)
    with pytest.raises(ParseError, match="not well-formed XML"):
        to_fhir(deep)
