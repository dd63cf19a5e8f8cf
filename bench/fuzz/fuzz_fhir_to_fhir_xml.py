"""Fuzz the FHIR → fhir-xml writer as `helixgate convert BUNDLE --to fhir-xml` and `$convert?target=fhir-xml` run it:
FHIR read by mappers.fhir, written by the registry's `fhir-xml` from_fhir (profiles/xmlwrite.py), its output read back
(bench/fuzz/writers.py), with the Bundles of the eHDSI and phenopacket readers and the IPS examples among the seeds.
A `fhir-xml-unreadable` refusal (the writer's output does not read back) is a finding, not a refusal; so is a Bundle
the writer accepts whose XML reads back (profiles/xml.py) as other JSON than was written: every seed reads back
exactly, so a difference is something the writer lost or changed in silence.

    python bench/fuzz/fuzz_fhir_to_fhir_xml.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writers import main

from mappers.toolkit.registry import ConvertOptions, get


class RoundTripLoss(Exception):
    """The written XML reads back as other JSON than the Bundle written."""


def _text(value: Any) -> str:
    return orjson.dumps(value).decode().strip('"')


def _same(a: str, b: str) -> bool:
    with contextlib.suppress(ValueError):
        return a == b or float(a) == float(b)  # 1e37 as orjson writes it, 1e+37 as Python does
    return False


def _first_difference(a: Any, b: Any, path: str = "Bundle") -> str | None:
    if isinstance(a, str | int | float | bool) and isinstance(b, str | int | float | bool) and type(a) is not type(b):
        # a JSON number or boolean where the element is a string, or the other way round: XML has only text, and
        # the reader types it by the definition; the input was of the wrong JSON type, and the validator says so
        return None if _same(_text(a), _text(b)) else f"{path}: {_text(a)[:80]!r} read back as {_text(b)[:80]!r}"
    if isinstance(a, list) != isinstance(b, list):
        # one value where the definition has a list, or a list of one where it has one value: XML repeats elements
        # and the reader goes by the cardinality; the input broke it, and the JSON validator says so
        if isinstance(a, list) and len(a) == 1:
            return _first_difference(a[0], b, path)
        if isinstance(b, list) and len(b) == 1:
            return _first_difference(a, b[0], path)
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} {str(a)[:80]!r} read back as {type(b).__name__} {str(b)[:80]!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in b or k not in a:
                return f"{path}.{k}: {'lost' if k not in b else 'added'}"
            found = _first_difference(a[k], b[k], f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items read back as {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b, strict=True))
                     if (d := _first_difference(x, y, f"{path}[{i}]"))), None)
    return None if a == b else f"{path}: {str(a)[:80]!r} read back as {str(b)[:80]!r}"


def round_trip(data: bytes) -> None:
    reader, writer = get("fhir"), get("fhir-xml")
    assert reader.to_fhir is not None and writer.from_fhir is not None and writer.fhir_of is not None
    bundle = reader.to_fhir(data, ConvertOptions()).bundle
    difference = _first_difference(bundle, writer.fhir_of(writer.from_fhir(bundle, ConvertOptions()).data))
    if difference:
        raise RoundTripLoss(difference)


if __name__ == "__main__":
    main("fhir-xml", __doc__, more_seeds=True, bugs=("fhir-xml-unreadable",), also=round_trip)
