"""Documents bench/fuzz/fuzz_phenopacket.py found crashing the phenopacket reader (issue 12), under regressions/
(examples/phenopacket-case.json with the one hostile change, or a cohort around it): each is now refused with the
mappers' documented error, through the registry's split and to_fhir as `$convert`, bulk jobs and `helixgate convert`
run them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

REGRESSIONS = Path(__file__).parent / "regressions"
# input → (details, expression) of the first issue
CASES = {
    # was a ValueError out of times.value; then refused without saying where
    "disease-onset-empty.json": ("phenopacket-empty-time", "Phenopacket.diseases[0].onset"),
    # split re-encoded each member: orjson's TypeError (recursion limit) past 255 levels; now read whole
    "cohort-member-nested-300-deep.json": ("phenopacket-schema", "Cohort.members[1].subject.taxonomy.taxonomy"),
    # protobuf read the Timestamp's fraction "1e551810" as a float: OverflowError (infinity to integer)
    "created-fraction-overflow.json": ("phenopacket-schema", "Phenopacket.metaData.created"),
}


def test_every_regression_input_has_a_case() -> None:
    assert sorted(p.name for p in REGRESSIONS.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_split_and_refused_with_a_mapping_error(name: str) -> None:
    fmt = get("phenopacket")
    assert fmt.split is not None and fmt.to_fhir is not None
    pieces = fmt.split((REGRESSIONS / name).read_bytes())
    assert [where for where, _ in pieces] == ["document 1"]
    with pytest.raises(MappingError) as e:
        fmt.to_fhir(pieces[0][1], ConvertOptions())
    assert (e.value.issues[0].details, e.value.issues[0].expression) == CASES[name]
