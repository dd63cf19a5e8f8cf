"""IPS 2.0.0's own example documents (in the installed package) → eHDSI CDA → IPS, with their facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappers.ehdsi_cda.from_fhir import WRITTEN, from_fhir
from mappers.ehdsi_cda.rules import check
from mappers.ehdsi_cda.to_fhir import to_fhir
from tests.mappers.ehdsi_cda.facts import facts

PACKAGE = Path.home() / ".fhir" / "packages" / "hl7.fhir.uv.ips#2.0.0" / "package" / "example"
EXAMPLES = sorted(PACKAGE.glob("Bundle-*.json"))


def test_the_package_holds_five_documents() -> None:
    assert len(EXAMPLES) == 5, f"IPS 2.0.0 examples not found in {PACKAGE}: run helixgate packages install"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_ips_example_to_ehdsi_and_back(path: Path, validator) -> None:  # type: ignore[no-untyped-def]
    bundle = json.loads(path.read_text(encoding="utf-8"))
    cda, issues = from_fhir(bundle)
    assert check(cda) == [], "the written document breaks an eHDSI header rule"
    assert from_fhir(json.loads(path.read_text(encoding="utf-8")))[0] == cda  # same input, same bytes
    back = to_fhir(cda).bundle
    errors = [i for i in validator.outcome(back, ())["issue"] if i["severity"] in ("error", "fatal")]
    assert errors == []
    lost = facts(bundle) - facts(back)
    # what is lost is what the writer said it could not write (entries with no eHDSI form, e.g. a Flag)
    not_written = {i.expression.split("/")[0] for i in issues if i.details == "ehdsi-entry-not-written"}
    assert {f[0] for f in lost} <= not_written, lost


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_what_is_not_written_is_reported(path: Path) -> None:
    """Every element of a resource the writer cannot carry is named in its report (nothing lost in silence)."""
    bundle = json.loads(path.read_text(encoding="utf-8"))
    _, issues = from_fhir(bundle)
    reported = {i.expression for i in issues if i.details == "ehdsi-element-not-written"}
    unreached = {i.expression for i in issues if i.details == "ehdsi-resource-not-written"}
    for e in bundle["entry"][1:]:
        res = e["resource"]
        rtype = res["resourceType"]
        if rtype not in WRITTEN or rtype in unreached:
            continue
        for key in res:
            name = key.lstrip("_")
            if name not in WRITTEN[rtype] and name not in ("resourceType", "id", "meta", "text", "language"):
                assert f"{rtype}.{name}" in reported
