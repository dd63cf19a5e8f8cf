"""Where the third-party test corpora are: one setting for every test that reads them.

The corpora (fhir-test-cases, hl7v2, vcf, ...) are data-only copies of public test material kept outside the
repository, by default in `<repo root>/../shared/corpora`; the environment variable HELIXGATE_TEST_CORPORA points
elsewhere. A test that needs a corpus calls `corpus(NAME)` (or carries `@needs(NAME)`): when the folder is missing the
test is skipped with one line saying which corpus is missing and how to point at it, or fails when CI=true (CI always
has the corpora, so there a missing one is a broken setup, never a skip).

Module-level parameter lists use `params(NAME, build)`: `build(folder)` runs only when the corpus is there; otherwise
the list is a single placeholder case that is skipped (or fails under CI) for the same reason, so collection works
without the corpora and the report still names what was not tested.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

ENV = "HELIXGATE_TEST_CORPORA"
ROOT = Path(__file__).resolve().parents[1]
MARK = "corpus"
HOW = f"set {ENV} to the folder holding the corpora (default ../shared/corpora)"


def root() -> Path:
    """The folder holding the corpora: $HELIXGATE_TEST_CORPORA, else <repo root>/../shared/corpora."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser() if value else ROOT.parent / "shared" / "corpora"


def location(name: str) -> Path:
    """Where corpus `name` is expected, whether or not it is there (for messages and lazy use)."""
    return root() / name


def missing(name: str) -> str | None:
    """The one-line reason when corpus `name` is absent, else None."""
    path = location(name)
    if path.is_dir():
        return None
    return f"corpus {name} missing at {path}: {HOW}"


def is_missing_reason(text: str) -> bool:
    """Whether a skip message is one of ours (tests/conftest.py reports them all at one place, one line a corpus)."""
    return text.removeprefix("Skipped: ").startswith("corpus ") and text.endswith(HOW)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(name: str) -> None:
    """Skip the running test (fail it under CI=true) when corpus `name` is missing."""
    reason = missing(name)
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: corpora are required)", pytrace=False)
    pytest.skip(reason)


def corpus(name: str) -> Path:
    """The folder of corpus `name`; skips the test (fails it under CI=true) when it is missing."""
    require(name)
    return location(name)


def needs(name: str) -> pytest.MarkDecorator:
    """Mark a test (or a module, as `pytestmark`) as reading corpus `name`; checked at setup by tests/conftest.py."""
    return getattr(pytest.mark, MARK)(name)


def params(name: str, build: Callable[[Path], Iterable[Any]], width: int = 1) -> list[Any]:
    """Parameters for `pytest.mark.parametrize` built from corpus `name`, without touching it when it is missing:
    then one placeholder case (`width` Nones, id `NAME-corpus-missing`) that setup skips, or fails under CI."""
    if missing(name) is None:
        return list(build(location(name)))
    values = (None,) * width
    return [pytest.param(*values, marks=needs(name), id=f"{name}-corpus-missing")]
