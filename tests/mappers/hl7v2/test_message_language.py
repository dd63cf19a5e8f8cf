"""MSH-19 (principal language of message) → Bundle.language, carried into the IPS document and the eHDSI CDA
languageCode; without a stated language the eHDSI refusal names the language option."""

from __future__ import annotations

import pytest

from mappers.ehdsi_cda.from_fhir import from_fhir
from mappers.ehdsi_cda.rules import check
from mappers.hl7v2.to_fhir import to_fhir
from mappers.ips.compose import compose
from mappers.toolkit.registry import ConvertOptions
from tests.conftest import ROOT

EXAMPLE = (ROOT / "examples" / "oru-egfr-somatic.hl7").read_bytes()


def with_msh19(value: str) -> bytes:
    segments = EXAMPLE.split(b"\r")
    assert segments[0].count(b"|") == 17  # MSH-18 is the last field of the example
    segments[0] += b"|" + value.encode()
    return b"\r".join(segments)


def language_code(cda: bytes) -> str:
    start = cda.index(b"<languageCode")
    return cda[start:cda.index(b">", start)].decode()


@pytest.mark.parametrize(("msh19", "expected"), [("en^English^ISO639", "en"), ("EN", "en"), ("de-at", "de-AT")])
def test_msh19_is_the_bundle_language(msh19: str, expected: str) -> None:
    conv = to_fhir(with_msh19(msh19))
    assert conv.bundle["language"] == expected
    assert not [i for i in conv.issues if "MSH-19" in (i.message + str(i.expression))]  # mapped, not reported


def test_a_language_that_is_not_iso_639_1_is_reported_not_guessed() -> None:
    conv = to_fhir(with_msh19("eng^English^ISO639-2"))
    assert "language" not in conv.bundle
    assert any(i.details == "hl7v2-language-not-mapped" for i in conv.issues)


def test_no_msh19_no_language() -> None:
    assert "language" not in to_fhir(EXAMPLE).bundle


def test_the_ips_document_carries_the_message_language() -> None:
    doc, _ = compose(to_fhir(with_msh19("en-GB")).bundle, ConvertOptions())
    assert doc["language"] == "en-GB"
    assert doc["entry"][0]["resource"]["language"] == "en-GB"
    undeclared, _ = compose(to_fhir(EXAMPLE).bundle, ConvertOptions())
    assert "language" not in undeclared and "language" not in undeclared["entry"][0]["resource"]


def test_ehdsi_cda_takes_the_stated_language() -> None:
    cda, _ = from_fhir(to_fhir(with_msh19("fr-BE")).bundle)
    assert language_code(cda) == '<languageCode code="fr-BE"/'
    assert check(cda) == []


def test_the_option_gives_a_bare_language_its_region_but_never_overrides_it() -> None:
    bundle = to_fhir(with_msh19("en")).bundle
    refined, _ = from_fhir(bundle, ConvertOptions(params=(("language", "en-GB"),)))
    assert language_code(refined) == '<languageCode code="en-GB"/'
    kept, _ = from_fhir(bundle, ConvertOptions(params=(("language", "de-DE"),)))
    assert language_code(kept) == '<languageCode code="en"/'
    assert [i.details for i in check(kept)] == ["ehdsi-header-languageCode"]


def test_without_a_stated_language_the_refusal_names_the_option() -> None:
    cda, _ = from_fhir(to_fhir(EXAMPLE).bundle)
    problems = [i for i in check(cda) if i.details == "ehdsi-header-languageCode"]
    assert len(problems) == 1
    assert "the source states no document language" in problems[0].message
    assert "--language" in problems[0].message and "language=" in problems[0].message
    given, _ = from_fhir(to_fhir(EXAMPLE).bundle, ConvertOptions(params=(("language", "en-GB"),)))
    assert check(given) == []
