"""The China ConceptMaps: shape, stated unmapped handling, and the translations the mappers rely on."""

from __future__ import annotations

import json

import pytest

from mappers.cda_cn.icd10 import to_who
from mappers.terminology import CONCEPTMAP_DIR, translate, translate_all

CN_MAPS = ["gbt-2261.1-to-administrative-gender", "cv02.01.101-to-v2-0203", "gbt-2659-to-iso-3166",
           "gb-3304-to-gb-3304-letter", "icd-10-cn-to-icd-10", "v3-nullflavor-to-data-absent-reason",
           "v3-actstatus-to-observation-status"]
R4_EQUIVALENCE = {"relatedto", "equivalent", "equal", "wider", "subsumes", "narrower", "specializes", "inexact",
                  "unmatched", "disjoint"}


@pytest.mark.parametrize("map_id", CN_MAPS)
def test_shape(map_id: str) -> None:
    cm = json.loads((CONCEPTMAP_DIR / f"{map_id}.json").read_text(encoding="utf-8"))
    assert cm["resourceType"] == "ConceptMap" and cm["id"] == map_id
    assert cm["url"] == f"urn:helixgate:conceptmap:{map_id}" and cm["description"]
    for group in cm["group"]:
        assert group["unmapped"]["mode"] in ("provided", "fixed", "other-map")
        codes = [e["code"] for e in group["element"]]
        assert len(codes) == len(set(codes))
        assert all(t["equivalence"] in R4_EQUIVALENCE for e in group["element"] for t in e["target"])


@pytest.mark.parametrize(("code", "who", "equivalence"), [
    ("K35.800x001", ["K35.8"], "wider"),  # listed
    ("I24.000x003", ["I24.0"], "wider"),
    ("F29.x00", ["F29"], "wider"),
    ("K31.500", ["K31.5"], "wider"),
    ("A09.900x003", ["A09.9"], "wider"),  # not listed: the truncation rule
    ("M54.505", ["M54.5"], "wider"),
    ("K35.8", ["K35.8"], "equal"),  # already a WHO code
    ("I10", ["I10"], "equal"),
    ("E11.502+I79.2*", ["E11.5", "I79.2"], None),  # dagger/asterisk pair
])
def test_icd10_national_to_who(code: str, who: list[str], equivalence: str | None) -> None:
    found = translate_all("icd-10-cn-to-icd-10", code)
    assert [t.code for t in found] == who
    assert all(t.system == "http://hl7.org/fhir/sid/icd-10" for t in found)
    if equivalence:
        assert {t.equivalence for t in found} == {equivalence}


def test_icd10_direction_is_read_from_target_to_source() -> None:
    """R4: 'wider' = the target is wider than the source. WHO K35.8 is wider than national K35.800x001, so the
    forward map says wider and the reverse (WHO → national) says narrower."""
    assert translate_all("icd-10-cn-to-icd-10", "K35.800x001")[0].equivalence == "wider"
    back = translate_all("icd-10-cn-to-icd-10", "K35.8", reverse=True)
    assert {(t.code, t.equivalence) for t in back} == {("K35.800x001", "narrower"), ("K35.800", "narrower")}
    assert translate_all("icd-10-cn-to-icd-10", "A09.9", reverse=True) == []  # the rule cannot be reversed
    cm = json.loads((CONCEPTMAP_DIR / "icd-10-cn-to-icd-10.json").read_text(encoding="utf-8"))
    assert "'wider'" in cm["description"] and "by rule" in cm["description"].lower()


@pytest.mark.parametrize("code", ["", "bogus", "K3", "K35.8000000", "k35.800", "35.8"])
def test_icd10_rule_rejects_non_codes(code: str) -> None:
    assert to_who(code) == [] or code == "k35.800"  # lower-case first letter is normalised
    if code == "k35.800":
        assert [t.code for t in to_who(code)] == ["K35.8"]


def test_sex_id_type_country_ethnicity() -> None:
    assert translate("gbt-2261.1-to-administrative-gender", "2").code == "female"
    nine = translate("gbt-2261.1-to-administrative-gender", "9")
    assert (nine.code, nine.equivalence) == ("unknown", "wider")
    assert translate("gbt-2261.1-to-administrative-gender", "unknown", reverse=True).code == "0"
    assert translate("gbt-2261.1-to-administrative-gender", "other", reverse=True) is None
    assert translate("cv02.01.101-to-v2-0203", "03").code == "PPN"
    assert translate("cv02.01.101-to-v2-0203", "07").equivalence == "unmatched"
    assert translate("cv02.01.101-to-v2-0203", "NI", reverse=True).code == "01"
    for code in ("CN", "CHN", "156"):
        assert translate("gbt-2659-to-iso-3166", code).code == "CN"
    assert translate("gbt-2659-to-iso-3166", "DEU").code == "DE"
    assert translate("gb-3304-to-gb-3304-letter", "05").code == "UG"
    assert translate("gb-3304-to-gb-3304-letter", "97").equivalence == "unmatched"


def test_every_map_the_china_mappers_use_is_in_the_one_folder() -> None:
    """The ConceptMaps live in mappers/conceptmaps (served by $translate); the packages hold none of their own."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "mappers"
    used = set()
    for package in ("cda_cn", "ws445"):
        for source in (root / package).rglob("*.py"):
            used |= set(re.findall(r'translate(?:_all)?\(\s*"([^"]+)"', source.read_text(encoding="utf-8")))
        assert not [p for p in (root / package).rglob("*.json") if '"ConceptMap"' in p.read_text(encoding="utf-8")]
    assert used == set(CN_MAPS)
    assert all((CONCEPTMAP_DIR / f"{m}.json").is_file() for m in used)


def test_null_flavor_and_status_maps() -> None:
    assert translate("v3-nullflavor-to-data-absent-reason", "NAV").code == "temp-unknown"
    assert translate("v3-nullflavor-to-data-absent-reason", "NI").equivalence == "narrower"
    assert translate("v3-nullflavor-to-data-absent-reason", "QS").code == "unknown"  # fixed for the rest
    assert translate("v3-actstatus-to-observation-status", "completed").code == "final"
    assert translate("v3-actstatus-to-observation-status", "held").equivalence == "unmatched"
