"""Every example of every installed FHIR package (`package/example/*.json` in the package cache: the Genomics
Reporting IG's 204, IPS 2.0.0's 44, and those of any package installed later) validates with zero errors, against
the default packages plus its own; or it is listed, with the error and why the example is wrong, in the README's
disagreement list (section "Examples the validator disagrees with"). Where the package carries the IG publisher's
own verdicts (`other/validation-summary.json`, from the HL7 validator), a failure says what that validator found."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from profiles.context import default_validator
from profiles.packages import DEFAULT_PACKAGES, cache_dir
from profiles.validator import Validator
from tests.conftest import ROOT

README = ROOT / "README.md"
SECTION = "### Examples the validator disagrees with"


def installed() -> list[Path]:
    """The package folders of the cache (NAME#VERSION), those with examples first found, sorted."""
    root = cache_dir()
    return sorted(p for p in root.iterdir() if (p / "package" / "example").is_dir()) if root.is_dir() else []


def examples() -> list[tuple[str, Path]]:
    return [(pkg.name, f) for pkg in installed() for f in sorted((pkg / "package" / "example").glob("*.json"))]


EXAMPLES = examples()


def disagreements() -> dict[tuple[str, str], tuple[str, str]]:
    """(package, example file) → (error text, why) from the README's table under SECTION."""
    text = README.read_text()
    assert SECTION in text, f"README.md lacks the section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n#", 1)[0]
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    for line in body.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("package", "") or set(cells[0]) <= {"-", ":"}:
            continue
        rows[(cells[0], cells[1])] = (cells[2], cells[3])
    return rows


@lru_cache(maxsize=8)
def validator_for(package: str) -> Validator:
    """The default packages' validator, with `package` (and its dependencies) added when it is not among them."""
    if package in DEFAULT_PACKAGES:
        return default_validator()
    return default_validator((*DEFAULT_PACKAGES, package))


@lru_cache(maxsize=8)
def java_verdicts(package: str) -> dict[str, int]:
    """Type/id → error count the IG publisher's HL7 validator run found, when the package records it."""
    summary = cache_dir() / package / "package" / "other" / "validation-summary.json"
    if not summary.is_file():
        return {}
    data = orjson.loads(summary.read_bytes())
    return {k: v.get("errors", 0) for k, v in data.items() if isinstance(v, dict)}


def test_the_default_packages_examples_are_there() -> None:
    names = {pkg for pkg, _ in EXAMPLES}
    counts = {pkg: sum(1 for p, _ in EXAMPLES if p == pkg) for pkg in names}
    assert counts.get("hl7.fhir.uv.genomics-reporting#3.0.0") == 204, counts
    assert counts.get("hl7.fhir.uv.ips#2.0.0") == 44, counts


def test_every_listed_disagreement_names_an_installed_example_and_says_why() -> None:
    known = {(pkg, f.name) for pkg, f in EXAMPLES}
    for key, (error, why) in disagreements().items():
        assert key in known, f"README disagreement list names {key}, which is not an installed example"
        assert error and len(why) > 20, f"README disagreement list: give the error and why the example is wrong {key}"


@pytest.mark.parametrize(("package", "path"), EXAMPLES, ids=[f"{p}/{f.stem}" for p, f in EXAMPLES])
def test_example_validates_without_errors(package: str, path: Path) -> None:
    res: Any = orjson.loads(path.read_bytes())
    found = [f"{i.expression}: {i.message}" for i in validator_for(package).validate(res)
             if i.severity in ("error", "fatal")]
    listed = disagreements().get((package, path.name))
    if listed is not None:  # the list stays true: the named error is still the only one
        assert found and all(listed[0] in f for f in found), (listed, found)
        return
    key = f"{res.get('resourceType')}/{res.get('id')}"
    java = java_verdicts(package).get(key)
    verdict = f" (the HL7 validator, in the IG publisher's run: {java} errors)" if java is not None else ""
    assert found == [], f"{package} {path.name}{verdict}:\n" + "\n".join(found)


def test_readme_section_names_the_test() -> None:
    body = README.read_text().split(SECTION, 1)[1].split("\n#", 1)[0]
    assert re.search(r"test_package_examples\.py", body)
