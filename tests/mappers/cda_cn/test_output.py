"""Every converted China CDA document: the same input gives the same bytes, the output validates with 0 errors
against the installed packages, and every resource names where in the document it came from."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mappers.cda_cn import Options, parse_xml, to_fhir
from mappers.toolkit.origins import source_of
from tests.mappers.cda_cn.helpers import SAMPLES, resolve

ROOT = Path(__file__).resolve().parents[3]
CONVERTED = [*sorted(SAMPLES.glob("*.xml")), SAMPLES / "edge" / "lab-no-time.utf8.xml",
             SAMPLES / "edge" / "lab-unmapped-elements.utf8.xml",
             SAMPLES / "edge" / "lab-results-stated-absent.utf8.xml", *sorted((ROOT / "examples").glob("cn-*.xml"))]
BUNDLE_TYPES = ("collection", "transaction")


@pytest.mark.parametrize("bundle_type", BUNDLE_TYPES)
@pytest.mark.parametrize("path", CONVERTED, ids=lambda p: p.name)
def test_same_input_same_bytes(path: Path, bundle_type: str) -> None:
    data = path.read_bytes()
    first = to_fhir(data, Options(bundle_type=bundle_type))
    second = to_fhir(data, Options(bundle_type=bundle_type))
    assert orjson.dumps(first.bundle) == orjson.dumps(second.bundle)
    assert first.issues == second.issues and first.origins == second.origins


@pytest.mark.parametrize("bundle_type", BUNDLE_TYPES)
@pytest.mark.parametrize("path", CONVERTED, ids=lambda p: p.name)
def test_output_validates_with_zero_errors(validator, path: Path, bundle_type: str) -> None:  # type: ignore[no-untyped-def]
    bundle = to_fhir(path.read_bytes(), Options(bundle_type=bundle_type)).bundle
    errors = [(i.expression, i.message) for i in validator.validate(bundle) if i.severity in ("error", "fatal")]
    assert errors == []


@pytest.mark.parametrize("path", CONVERTED, ids=lambda p: p.name)
def test_every_resource_names_its_source(path: Path) -> None:
    data = path.read_bytes()
    c = to_fhir(data)
    root = parse_xml(data)[0]
    for n, entry in enumerate(c.bundle["entry"]):
        res = entry["resource"]
        if res["resourceType"] == "Device":  # the converter itself
            continue
        where = source_of(c.bundle, c.origins, f"Bundle.entry[{n}].resource")
        assert where and len(resolve(root, where)) == 1, (res["resourceType"], where)
    for key, where in c.origins.items():  # every recorded origin names one element of the document
        assert len(resolve(root, where)) == 1, (key, where)


def test_an_output_element_is_traced_to_its_source_field() -> None:
    c = to_fhir((SAMPLES / "lab-cbc.utf8.xml").read_bytes())
    n = next(i for i, e in enumerate(c.bundle["entry"]) if e["resource"]["resourceType"] == "Observation")
    item = "/ClinicalDocument/component/structuredBody/component[2]/section/entry[3]/organizer"
    assert source_of(c.bundle, c.origins, f"Bundle.entry[{n}].resource.effectiveDateTime") == \
        f"{item}/component[1]/observation/effectiveTime"
    assert source_of(c.bundle, c.origins, f"Bundle.entry[{n}].resource.valueQuantity.value") == \
        f"{item}/component[3]/observation/value"
    assert source_of(c.bundle, c.origins, f"Bundle.entry[{n}].resource.referenceRange[0].low") == item
