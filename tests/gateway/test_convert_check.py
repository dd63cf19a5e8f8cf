"""gateway.convert.check reads the validator's issues as they are (no OperationOutcome made and read back) and
locates each distinct warning once: its report is the one the OperationOutcome-reading form gave, issue for issue,
on the genetic ORU^R01 conversions, their mutants (errors, warnings, none) and every installed package's example
Bundles; refusals (InvalidOutput) carry the same issues."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.convert import MAX_REPORTED_ERRORS, InvalidOutput, check
from mappers.conversion import Conversion
from mappers.exceptions import Issue
from mappers.toolkit.origins import readable, source_of
from tests.profiles.test_generated import _docs, _mutants
from tests.profiles.test_package_examples import validator_for

ORU = Path(__file__).resolve().parents[1] / "mappers" / "hl7v2" / "messages"
GENOMICS = "hl7.fhir.uv.genomics-reporting#3.0.0"


def outcome_check(conv: Conversion, validator: Any, allow_invalid: bool) -> list[Issue]:
    """check() as it read the validator's OperationOutcome, locating every warning."""
    outcome = validator.outcome(conv.bundle, ())
    errors: list[Issue] = []
    warnings: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], str | None] = {}
    for i in outcome.get("issue", []):
        text = (i.get("details") or {}).get("text") or i.get("diagnostics") or ""
        path = (i.get("expression") or [""])[0]
        if i.get("severity") in ("error", "fatal"):
            source = source_of(conv.bundle, conv.origins, path)
            origin = f" (from {source})" if source else ""
            errors.append(Issue("error", i.get("code") or "invalid", "invalid-output",
                                f"{readable(path)}{origin}: {text}", source or path or None))
        elif i.get("severity") == "warning":
            k = (i.get("code") or "informational", text)
            warnings[k] += 1
            where.setdefault(k, source_of(conv.bundle, conv.origins, path) or path or None)
    if errors and not allow_invalid:
        raise InvalidOutput(errors[:MAX_REPORTED_ERRORS], len(errors))
    notes = [Issue("warning", code, "output-warning", f"{text} ({n} times)" if n > 1 else text, where[(code, text)])
             for (code, text), n in warnings.items()]
    return [*errors, *notes]


def _answer(fn: Any, conv: Conversion, v: Any, allow_invalid: bool) -> tuple[str, list[Issue]]:
    try:
        return "report", fn(conv, v, allow_invalid)
    except InvalidOutput as e:
        return "refused " + str(e), e.issues


def _entries_whole(bundle: dict[str, Any]) -> bool:
    """Whether every entry is an object holding a resource object (as every mapper writes them: source_of() reads
    them without looking)."""
    entries = bundle.get("entry")
    return isinstance(entries, list) and all(isinstance(e, dict) and isinstance(e.get("resource"), dict)
                                              for e in entries)


@pytest.fixture(scope="module")
def conversions() -> list[Conversion]:
    from gateway.formats import HUB, Request
    from mappers.toolkit.registry import get

    src = get("hl7v2")
    assert src.to_fhir is not None
    options = Request("hl7v2", HUB).options
    return [src.to_fhir(m.read_bytes(), options) for m in sorted(ORU.glob("*.hl7"))]


def test_the_report_is_the_outcome_reading_one(conversions: list[Conversion]) -> None:
    v = validator_for(GENOMICS)
    rng = random.Random(14)
    kinds: Counter[str] = Counter()
    assert len(conversions) >= 15 and all(c.origins for c in conversions)
    cases = [(c.bundle, c.origins) for c in conversions]
    cases += [(m, c.origins) for c in conversions for m in _mutants(c.bundle, rng)[::2] if _entries_whole(m)]
    cases += [(d, {}) for found in _docs().values() for d in found if d.get("resourceType") == "Bundle"]
    for bundle, origins in cases:
        conv = Conversion(bundle, (), origins)
        for allow_invalid in (False, True):
            expected = _answer(outcome_check, conv, v, allow_invalid)
            assert _answer(check, conv, v, allow_invalid) == expected
            kinds[expected[0].split()[0]] += 1
            kinds["located"] += sum(i.expression is not None and not i.expression.startswith("Bundle")
                                    for i in expected[1])
    assert kinds["refused"] > 50 and kinds["report"] > 200 and kinds["located"] > 500, kinds


def test_no_validator() -> None:
    conv = Conversion(orjson.loads(b'{"resourceType": "Bundle", "type": "collection"}'), ())
    with pytest.raises(Exception, match="cannot be validated"):
        check(conv, None, False)
    assert [i.details for i in check(conv, None, True)] == ["output-not-validated"]
