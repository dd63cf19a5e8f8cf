"""What a check gets: the target, its test's params, the run's shared state, fixtures and the validator."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from conformance.client import Target
from conformance.exceptions import ConformanceError, SuiteError
from conformance.model import TestSpec

if TYPE_CHECKING:
    from profiles.validator import Validator

FIXTURES_DIR = Path(__file__).parent / "fixtures"
_TOKEN = re.compile(r"\{([a-z][a-z0-9-]*)\.([a-z]+)\}")


@dataclass
class RunState:
    """Shared by the tests of one run: what earlier tests created (ids, references) and the validator."""

    run_id: str
    saved: dict[str, dict[str, Any]] = field(default_factory=dict)
    validator: Validator | None = None


@dataclass
class Context:
    target: Target
    test: TestSpec
    run: RunState

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.test.params)

    def param(self, name: str, default: Any = ...) -> Any:
        if name in self.test.params:
            return self.test.params[name]
        if default is ...:
            raise SuiteError(f"test {self.test.id}: check {self.test.check!r} needs the param {name!r}")
        return default

    def save(self, key: str, **values: Any) -> None:
        self.run.saved[key] = values

    def saved(self, key: str) -> dict[str, Any]:
        if key not in self.run.saved:  # `needs` in the suite should have made this a skip
            raise ConformanceError(f"nothing saved under {key!r}: the test that creates it must run first "
                                   f"(add it to 'needs' of {self.test.id})")
        return self.run.saved[key]

    def fill(self, value: Any) -> Any:
        """`value` with `{key.attr}` tokens in its strings replaced by what earlier tests saved, and
        `{run.id}` by this run's id (so a shared server's data from other runs never matches). A test's
        `refs` param gives stand-ins (`{"patient.ref": "Patient/example"}`) for tokens no test saved."""
        if isinstance(value, str):
            def sub(m: re.Match[str]) -> str:
                key, attr = m.group(1), m.group(2)
                if key == "run" and attr == "id":
                    return self.run.run_id
                if key not in self.run.saved and m.group(0)[1:-1] in self.test.params.get("refs", {}):
                    return str(self.test.params["refs"][m.group(0)[1:-1]])  # a stand-in given by the suite
                return str(self.saved(key).get(attr, m.group(0)))

            return _TOKEN.sub(sub, value)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    def fixture(self, name: str) -> dict[str, Any]:
        """A resource from conformance/fixtures/NAME.json, tokens filled."""
        path = FIXTURES_DIR / f"{name}.json"
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as e:
            raise SuiteError(f"test {self.test.id}: fixture {name!r} cannot be read: {e}") from None
        return self.fill(copy.deepcopy(doc))

    def validator(self) -> Validator:
        """The project's validator over the default FHIR packages, built once per run."""
        if self.run.validator is None:
            from profiles.context import default_validator
            from profiles.packages import PackageError

            try:
                self.run.validator = default_validator()
            except PackageError as e:
                raise ConformanceError(f"the kit cannot validate: {e} (run `helixgate packages install`)") from None
        return self.run.validator
