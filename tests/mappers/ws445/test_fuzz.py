"""Hostile and broken datasets (issue 12): any bytes give a conversion or a MappingError naming why, never another
exception; the size and item limits hold. A bounded, derandomized property-based run over mutated samples."""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest

from mappers import ws445
from mappers.cda_cn import Options
from mappers.exceptions import LimitExceeded, MappingError, ParseError

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis (a test dependency) is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SAMPLES = Path(__file__).parent / "samples"
SEEDS = [p.read_bytes() for p in sorted(SAMPLES.glob("*.json"))]
KEYS = ["DE04.50.132.00", "DE02.01.032.00", "DE04.30.015.00", "DE04.50.140.00", "DE02.01.005.01", "items",
        "diagnoses", "dataset", "DE02.01.030.00", "DE02.01.031.00", "resourceType"]
JSON_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                       st.sampled_from(["", "9" * 30, "20240230", "20240230T250000", "<=-1", "01", "1e309"]),
                       st.text(max_size=8), st.lists(st.integers(), max_size=2),
                       st.dictionaries(st.sampled_from(KEYS), st.text(max_size=4), max_size=2))
BUDGET = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated_dataset(draw: st.DrawFn) -> bytes:
    doc = orjson.loads(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 5))):
        target = doc
        items = doc.get("items")
        if isinstance(items, list) and items and isinstance(items[0], dict) and draw(st.booleans()):
            target = items[draw(st.integers(0, len(items) - 1))]
        op = draw(st.sampled_from(["set", "drop", "add"]))
        if op == "drop" and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif op == "set" and target:
            target[draw(st.sampled_from(sorted(target)))] = draw(JSON_VALUE)
        else:
            target[draw(st.sampled_from(KEYS))] = draw(JSON_VALUE)
    try:
        return orjson.dumps(doc)
    except TypeError:  # an integer beyond 64 bits: written by hand, as a client could
        return str(doc).replace("'", '"').replace("None", "null").replace("True", "true").replace(
            "False", "false").encode()


@st.composite
def mutated_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "cut"]))
        if op == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at:]
    return bytes(data)


@BUDGET
@given(mutated_dataset() | mutated_bytes())
def test_any_dataset_gives_a_conversion_or_a_mapping_error(data: bytes) -> None:
    try:
        conversion = ws445.to_fhir(data)
    except MappingError as e:
        assert e.issues and e.issues[0].message and len(e.issues[0].message) < 2000
        return
    orjson.dumps(conversion.bundle)
    with contextlib.suppress(MappingError):  # and back: a dataset or a refusal
        assert ws445.from_fhir(conversion.bundle).data


def test_size_and_item_limits() -> None:
    doc = orjson.loads(SEEDS[0])
    with pytest.raises(LimitExceeded) as e:
        ws445.to_fhir(orjson.dumps(doc), Options(max_bytes=100))
    assert e.value.issues[0].details == "ws445-too-large"
    doc["items"] = doc["items"] * 2001
    with pytest.raises(ParseError) as e:
        ws445.to_fhir(orjson.dumps(doc))
    issue = e.value.issues[0]
    assert issue.expression == "items" and issue.message.endswith("… is too long") and len(issue.message) < 400


def test_deep_json_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        ws445.to_fhir(b'{"DE02.01.039.00": "x", "items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
