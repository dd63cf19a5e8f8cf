"""Request bodies bench/fuzz (fuzz_http_*.py) found answered with a 500, minimised under regressions/ (issue 12):
each is sent to the real gateway on loopback and now answered with a 4xx OperationOutcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

REGRESSIONS = Path(__file__).parent / "regressions"
# body → (route, Content-Type, status, details of the first issue)
CASES = {
    "convert-parameters-resource-nested-300-deep.json": ("/fhir/$convert", "application/fhir+json", 400,
                                                         "input-too-deep"),  # was orjson's TypeError
    # a cohort's member past orjson's 255 levels, split into members for a batch: was orjson's TypeError, a 500
    "convert-phenopacket-cohort-member-nested-300-deep.json": ("/fhir/$convert", "application/x-phenopacket+json",
                                                               400, "phenopacket-schema"),
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(CASES)


def test_each_is_a_4xx_operation_outcome(embedded_gateway: Any) -> None:
    for name, (route, media, status, details) in CASES.items():
        r = httpx.post(embedded_gateway.url + route, content=(REGRESSIONS / name).read_bytes(),
                       headers={"Content-Type": media}, timeout=60)
        assert r.status_code == status, (name, r.text[:300])
        doc = r.json()
        assert doc["resourceType"] == "OperationOutcome"
        assert doc["issue"][0]["details"]["coding"][0]["code"] == details, name
