"""v2 → FHIR → v2 → FHIR keeps every fact: the regenerated Bundle equals the first one, resource by resource,
except for what names the message itself (its control id, sender, Provenance)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mappers.hl7v2 import EmitOptions, Options, from_fhir, parse_message, to_fhir
from tests.mappers.hl7v2.facts import facts

MESSAGES = sorted((Path(__file__).parent / "messages").glob("*.hl7"))
WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ABOUT_THE_MESSAGE = {"Provenance", "Organization", "Device"}


def _clinical(bundle: dict) -> dict[str, dict]:
    return {e["fullUrl"]: _loinc_components(e["resource"]) for e in bundle["entry"]
            if e["resource"]["resourceType"] not in ABOUT_THE_MESSAGE}


def _loinc_components(res: dict) -> dict:
    """A variable read from a sender's own OBX-3 name or local code keeps that code beside its LOINC one; the
    message written back names the LOINC variable only, so component codes are compared by their first coding."""
    if "component" not in res:
        return res
    comps = [{**c, "code": {"coding": c["code"]["coding"][:1]}} if c["code"].get("coding") else c
             for c in res["component"]]
    return {**res, "component": comps}


@pytest.mark.parametrize("path", MESSAGES, ids=[p.stem for p in MESSAGES])
def test_round_trip_keeps_every_resource(path: Path) -> None:
    opts = Options(timezone="+00:00")
    first = to_fhir(path.read_bytes(), opts).bundle
    v2 = from_fhir(first, EmitOptions(timestamp=WHEN))
    msg = parse_message(v2.data)
    assert msg.message_type == "ORU^R01" and msg.version == "2.5.1"
    second = to_fhir(v2.data, opts).bundle
    assert facts(second) == facts(first)
    a, b = _clinical(first), _clinical(second)
    assert a.keys() == b.keys()
    for url in a:
        assert b[url] == a[url], f"{a[url]['resourceType']} differs after the round trip"


def test_gb18030_output_declares_and_uses_its_charset() -> None:
    path = next(p for p in MESSAGES if p.name.startswith("08-"))
    bundle = to_fhir(path.read_bytes(), Options()).bundle
    v2 = from_fhir(bundle, EmitOptions(encoding="gb18030"))
    data = v2.data
    assert "张".encode("gb18030") in data
    msg = parse_message(data)
    assert msg.msh.get(18) == "GB 18030-2000" and msg.encoding == "gb18030"
    assert facts(to_fhir(data, Options()).bundle) == facts(bundle)


def test_zero_based_coordinates_are_written_one_based() -> None:
    path = MESSAGES[0]
    bundle = to_fhir(path.read_bytes(), Options()).bundle
    var = next(e["resource"] for e in bundle["entry"]
               if "variant" in str(e["resource"].get("meta", {}).get("profile")))
    pos = next(c for c in var["component"] if c["code"]["coding"][0]["code"] == "81254-5")
    start1 = pos["valueRange"]["low"]["value"]
    pos["valueRange"]["low"]["value"] = start1 - 1  # as a 0-based interval
    system = next(c for c in var["component"] if c["code"]["coding"][0]["code"] == "92822-6")
    system["valueCodeableConcept"]["coding"][0]["code"] = "LA30100-4"
    again = facts(to_fhir(from_fhir(bundle).data, Options()).bundle)
    assert again["variants"][0]["start"] == start1


def test_bundle_without_report_or_not_a_bundle_is_refused() -> None:
    from mappers.exceptions import EmitError, ParseError

    with pytest.raises(EmitError, match="no DiagnosticReport"):
        from_fhir({"resourceType": "Bundle", "type": "collection", "entry": []})
    with pytest.raises(ParseError, match="expected a FHIR Bundle"):
        from_fhir(b'{"resourceType": "Patient"}')
    with pytest.raises(ParseError, match="not JSON"):
        from_fhir(b"{oops")
