"""The HL7 v2 Bundle is handed out without a deep copy (mappers.toolkit.bundle, copy=False): every list and dict
in it must be made for it alone, neither in two places of one Bundle nor kept by the mapper for the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, registry

HERE = Path(__file__).parent
INPUTS = sorted(p for d in ("messages", "inputs", "regressions") for p in (HERE / d).rglob("*.hl7"))
OPTIONS = (
    ConvertOptions(),
    ConvertOptions(bundle_type="transaction", timezone="+02:00", recorded="2024-05-06T07:08:09Z"),
    ConvertOptions(timezone="-05:00", params=(("variableNames", '{"Variant": "48004-6", "LOCAL1": "48018-6"}'),)),
)
_SCALARS = (str, int, float, bool, type(None))


def _bundles() -> list[dict[str, Any]]:
    convert = registry()["hl7v2"].to_fhir
    out = []
    for path in INPUTS:
        for opts in OPTIONS:
            try:
                out.append(convert(path.read_bytes(), opts).bundle)
            except MappingError:
                continue
    return out


def _walk(value: Any, where: str, seen: dict[int, str], found: list[str]) -> None:
    kind = type(value)
    if kind is dict or kind is list:
        if id(value) in seen:
            found.append(f"{where} is also {seen[id(value)]}")
            return
        seen[id(value)] = where
        for k, v in value.items() if kind is dict else enumerate(value):
            _walk(v, f"{where}/{k}", seen, found)
    elif kind not in _SCALARS:
        found.append(f"{where} is a {kind.__name__}")


def _edit_all(value: Any) -> None:
    if type(value) is dict:
        for v in list(value.values()):
            _edit_all(v)
        value["edited"] = True
    elif type(value) is list:
        for v in list(value):
            _edit_all(v)
        value.append("edited")


def test_inputs_found() -> None:
    assert len(INPUTS) >= 20


def test_no_object_in_two_places() -> None:
    """All Bundles kept alive at once, so an object the mapper keeps (a constant, a memo's value) shows up twice."""
    bundles = _bundles()
    assert len(bundles) >= 50
    seen: dict[int, str] = {}
    found: list[str] = []
    for n, b in enumerate(bundles):
        _walk(b, f"bundle {n}", seen, found)
    assert found == []


def test_editing_an_output_changes_no_later_output() -> None:
    first = [orjson.dumps(b) for b in _bundles()]
    edited = _bundles()
    for b in edited:
        _edit_all(b)
    assert b'"edited"' in orjson.dumps(edited)
    assert [orjson.dumps(b) for b in _bundles()] == first


def test_repetitions_of_a_row_own_their_codes() -> None:
    """Two OBX-5 repetitions of a repeating variable (48018-6) become two components, each with its own code."""
    data = (HERE / "messages" / "01-egfr-snv-somatic.hl7").read_bytes()
    sep = b"\r" if b"\r" in data else b"\n"
    lines = []
    for line in data.split(sep):
        fields = line.split(b"|")
        if fields[0] == b"OBX" and b"48018-6" in fields[3]:
            fields[5] += b"~" + fields[5]
        lines.append(b"|".join(fields))
    bundle = registry()["hl7v2"].to_fhir(sep.join(lines), ConvertOptions()).bundle
    genes = [c for e in bundle["entry"] for c in e["resource"].get("component", [])
             if c["code"]["coding"][0]["code"] == "48018-6"]
    assert len(genes) == 2
    found: list[str] = []
    _walk(bundle, "bundle", {}, found)
    assert found == []
