"""China code systems → the international ones IPS and EU Lab bind (sex, country, units, result interpretation):
ConceptMaps as data, applied when composing, served by $translate."""

from __future__ import annotations

import json

import httpx
import pytest

from mappers.ips.compose import compose
from mappers.terminology import CONCEPTMAP_DIR, conceptmap, translate
from mappers.toolkit.registry import ConvertOptions, get
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def test_the_unit_conceptmap_is_the_china_readers_unit_table() -> None:
    table = json.loads((ROOT / "mappers" / "cda_cn" / "tables" / "units.json").read_text(encoding="utf-8"))["units"]
    group = conceptmap("cn-unit-text-to-ucum")["group"][0]
    assert group["target"] == "http://unitsofmeasure.org"
    assert {e["code"]: e["target"][0]["code"] for e in group["element"]} == table


@pytest.mark.parametrize(("map_id", "code", "target"), [
    ("cn-result-code-to-observation-interpretation", "1", "N"),
    ("cn-result-code-to-observation-interpretation", "2", "A"),
    ("cn-unit-text-to-ucum", "×10^9/L", "10*9/L"),
    ("cn-unit-text-to-ucum", "μmol/L", "umol/L"),
    ("gbt-2261.1-to-administrative-gender", "2", "female"),   # sex (the WS/T 500 reader's map)
    ("gbt-2659-to-iso-3166", "CHN", "CN"),                     # country
])
def test_china_codes_translate_to_what_ips_binds(map_id: str, code: str, target: str) -> None:
    t = translate(map_id, code)
    assert t is not None and t.code == target
    assert (CONCEPTMAP_DIR / f"{map_id}.json").is_file()


def test_the_result_code_map_says_it_is_unverified() -> None:
    cm = conceptmap("cn-result-code-to-observation-interpretation")
    assert cm["status"] == "draft" and "UNVERIFIED" in cm["description"]
    assert translate("cn-result-code-to-observation-interpretation", "9") is None


def test_composing_adds_the_international_codings() -> None:
    conv = get("ws445").to_fhir((EXAMPLES / "cn-ws445-lab.json").read_bytes(), ConvertOptions())  # type: ignore[misc]
    bundle = conv.bundle
    obs = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    coded = [o for o in obs if any(c.get("system") == "urn:oid:2.16.156.10011.2.3.2.38"
                                   for cc in o.get("interpretation", []) for c in cc["coding"])]
    assert coded and not any(c.get("system") == V3 for o in coded for cc in o["interpretation"] for c in cc["coding"])
    first = next(o for o in obs if isinstance(o.get("valueQuantity"), dict))
    unit = first["valueQuantity"]["unit"]
    code = first["valueQuantity"].pop("code")
    first["valueQuantity"].pop("system")  # a sender that wrote the unit as text only (an HL7 v2 OBX-6, …)
    doc, issues = compose(bundle, ConvertOptions(recorded="2024-03-15T10:30:00+08:00"))
    out = {e["resource"]["id"]: e["resource"] for e in doc["entry"]}
    for o in coded:
        assert any(c.get("system") == V3 for cc in out[o["id"]]["interpretation"] for c in cc["coding"])
    assert out[first["id"]]["valueQuantity"] == {**first["valueQuantity"], "system": "http://unitsofmeasure.org",
                                                 "code": code}
    assert sum(i.details == "cn-conceptmap" for i in issues) == len(coded) + 1 and unit


def test_translate_serves_the_new_maps(embedded_gateway) -> None:
    r = httpx.get(f"{embedded_gateway.url}/fhir/ConceptMap/$translate", timeout=30,
                  params={"system": "urn:oid:2.16.156.10011.2.3.2.38", "code": "1"})
    assert r.status_code == 200, r.text
    params = r.json()
    assert next(p for p in params["parameter"] if p["name"] == "result")["valueBoolean"] is True
    assert '"code":"N"' in r.text.replace(" ", "")
