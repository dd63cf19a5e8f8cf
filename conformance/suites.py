"""Reading suites from their data files (conformance/suites/NAME.json) into the model, checked on the way in.

A group may declare `inputs` (reference files to post to a converter): its tests are then templates,
expanded once per input file with `{input}` in their ids, titles and `needs` (see `expand_inputs`).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from conformance import checks as _checks  # noqa: F401 - registers the checks
from conformance.exceptions import SuiteError
from conformance.model import REQUIREMENT_KINDS, Group, Requirement, Suite, TestSpec
from conformance.registry import CHECKS

SUITES_DIR = Path(__file__).parent / "suites"
KIT_ROOT = Path(__file__).resolve().parents[1]  # the checkout the kit runs from: reference inputs live there
_ID = re.compile(r"[a-z0-9][a-z0-9.-]*")
PER_INPUT = ("each", "first", "with-facts")


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.json"))


def suite_path(name: str) -> Path:
    """A bundled suite by name, or a suite file by path. Raises SuiteError naming the known suites."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return path
    bundled = SUITES_DIR / f"{name}.json"
    if not bundled.is_file():
        raise SuiteError(f"no suite named {name!r}; the kit has: {', '.join(suite_names())} "
                         "(or give the path of a suite .json file)")
    return bundled


def available_formats() -> set[str]:
    """Source formats this helixgate build converts to FHIR (the format registry), read at run time so
    suites pick up the VCF and China CDA mappers as they are registered."""
    from gateway.formats import HUB, names

    return set(names("read")) - {HUB}


def load_suite(name: str, *, inputs: Iterable[Path] = (), formats: Collection[str] | None = None) -> Suite:
    """Load and check a suite; groups with `inputs` are expanded over the files found under `inputs` (default:
    the current directory, then the kit's checkout). Raises SuiteError."""
    path = suite_path(name)
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise SuiteError(f"{path}: cannot read the suite: {e}") from None
    roots = list(inputs) or list(dict.fromkeys([Path.cwd(), KIT_ROOT]))
    return _Loader(path, doc, roots, available_formats() if formats is None else set(formats)).suite()


class _Loader:
    def __init__(self, path: Path, doc: Any, roots: list[Path], formats: set[str]) -> None:
        self.path, self.doc, self.roots, self.formats = path, doc, roots, formats
        self.requirements: dict[str, Requirement] = {}

    def fail(self, where: str, message: str) -> SuiteError:
        return SuiteError(f"{self.path.name}: {where}: {message}")

    def field(self, obj: Mapping[str, Any], key: str, where: str, kind: type = str, default: Any = ...) -> Any:
        if key not in obj:
            if default is ...:
                raise self.fail(where, f"missing '{key}'")
            return default
        value = obj[key]
        if not isinstance(value, kind):
            raise self.fail(where, f"'{key}' must be a {kind.__name__}")
        return value

    def suite(self) -> Suite:
        doc = self.doc
        if not isinstance(doc, dict):
            raise self.fail("top level", "a suite is a JSON object")
        for rid, req in self.field(doc, "requirements", "top level", dict, {}).items():
            self.requirements[rid] = self.requirement(req, f"requirements.{rid}")
        groups = tuple(self.group(g, i) for i, g in enumerate(self.field(doc, "groups", "top level", list)))
        suite = Suite(self.field(doc, "id", "top level"), self.field(doc, "title", "top level"),
                      self.field(doc, "version", "top level"), self.field(doc, "description", "top level", str, ""),
                      groups)
        seen: set[str] = set()
        for group, test in suite.tests():
            if test.id in seen:
                raise self.fail(f"{group.id}/{test.id}", "duplicate test id")
            for need in test.needs:
                if need not in seen:
                    raise self.fail(f"{group.id}/{test.id}", f"needs {need!r}, which is not an earlier test")
            seen.add(test.id)
        return suite

    def requirement(self, obj: Any, where: str) -> Requirement:
        if isinstance(obj, str):
            if obj not in self.requirements:
                raise self.fail(where, f"unknown requirement {obj!r} (declare it under 'requirements')")
            return self.requirements[obj]
        if not isinstance(obj, dict):
            raise self.fail(where, "a requirement is an object {kind, text, source} or the name of one")
        kind = self.field(obj, "kind", where)
        if kind not in REQUIREMENT_KINDS:
            raise self.fail(where, f"kind {kind!r} is not one of {', '.join(REQUIREMENT_KINDS)}")
        source = self.field(obj, "source", where)
        if not source.startswith(("http://", "https://")):
            raise self.fail(where, f"source {source!r} must be a URL (IG page, StructureDefinition, spec section)")
        return Requirement(kind, self.field(obj, "text", where), source)

    def group(self, obj: Any, index: int) -> Group:
        where = f"groups[{index}]"
        if not isinstance(obj, dict):
            raise self.fail(where, "a group is a JSON object")
        gid = self.field(obj, "id", where)
        templates = self.field(obj, "tests", gid, list)
        if "inputs" in obj:  # one input spec, or a list of them (inputs of several formats for one target)
            specs = obj["inputs"] if isinstance(obj["inputs"], list) else [self.field(obj, "inputs", gid, dict)]
            tests = [t for n, spec in enumerate(specs)
                     for t in self.expand_inputs(gid, self.field({"inputs": spec}, "inputs", gid, dict), templates,
                                                 f"-{n + 1}" if len(specs) > 1 else "")]
        else:
            tests = [self.test(t, f"{gid}.tests[{i}]") for i, t in enumerate(templates)]
        return Group(gid, self.field(obj, "title", gid), self.field(obj, "description", gid, str, ""), tuple(tests))

    def test(self, obj: Any, where: str, subst: Mapping[str, str] | None = None,
             extra: Mapping[str, Any] | None = None) -> TestSpec:
        if not isinstance(obj, dict):
            raise self.fail(where, "a test is a JSON object")

        def fill(s: str) -> str:
            for k, v in (subst or {}).items():
                s = s.replace("{" + k + "}", v)
            return s

        tid = fill(self.field(obj, "id", where))
        if not _ID.fullmatch(tid):
            raise self.fail(where, f"test id {tid!r} must be lower-case letters, digits, '.' and '-'")
        check = self.field(obj, "check", tid)
        if check not in CHECKS:
            raise self.fail(tid, f"check {check!r} is not registered; known: {', '.join(sorted(CHECKS))}")
        params = dict(self.field(obj, "params", tid, dict, {}))
        params.update(extra or {})
        return TestSpec(
            id=tid,
            title=fill(self.field(obj, "title", tid)),
            check=check,
            requirement=self.requirement(self.field(obj, "requirement", tid, (str, dict)), tid),  # type: ignore[arg-type]
            required=self.field(obj, "required", tid, bool, True),
            needs=tuple(fill(n) for n in self.field(obj, "needs", tid, list, [])),
            params=params,
        )

    def expand_inputs(self, gid: str, spec: dict[str, Any], templates: list[Any], tag: str = "") -> list[TestSpec]:
        """One copy of each template per input file; a single placeholder test when the format is not converted
        by this build (optional: nothing to test) or no input file is found (required unless the spec says
        `"required": false`, as for formats whose examples are still to come)."""
        wanted = self.field(spec, "formats", gid, list)
        fmt = next((f for f in wanted if f in self.formats), None)
        if fmt is None:
            return [self.placeholder(gid, f"this helixgate build has no {' / '.join(wanted)} → FHIR converter "
                                          "(the format registry)", required=False, tag=tag)]
        files = self.find_inputs(self.field(spec, "paths", gid, list))
        if not files:
            return [self.placeholder(gid, f"no reference inputs matching {', '.join(spec['paths'])} under "
                                          f"{', '.join(map(str, self.roots))}; pass --inputs DIR",
                                     required=self.field(spec, "required", gid, bool, True), tag=tag)]
        facts_suffix = self.field(spec, "facts", gid, str, ".facts.json")
        suffixes = self.field(spec, "suffixes", gid, list, [])
        tests: list[TestSpec] = []
        for n, (input_id, path) in enumerate(_input_ids(files, suffixes)):  # an input's tests side by side
            facts = _facts_path(path, suffixes, facts_suffix)
            for i, t in enumerate(templates):
                mode = t.get("per_input", "each") if isinstance(t, dict) else "each"
                if mode not in PER_INPUT:
                    raise self.fail(f"{gid}.tests[{i}]", f"per_input {mode!r} is not one of {', '.join(PER_INPUT)}")
                if (mode == "first" and n) or (mode == "with-facts" and facts is None):
                    continue
                info = {"id": input_id, "path": str(path), "format": fmt,
                        "content_type": self.field(spec, "content_type", gid),
                        "query": {k: v.replace("{format}", fmt) for k, v in spec.get("query", {}).items()},
                        "facts": str(facts) if facts else None}
                tests.append(self.test({k: v for k, v in t.items() if k != "per_input"}, f"{gid}.tests[{i}]",
                                       {"input": input_id}, {"input": info}))
        return tests

    def find_inputs(self, patterns: list[str]) -> list[Path]:
        for root in self.roots:  # the first root holding any input wins, so a checkout never mixes with cwd
            found = [Path(p) for pat in patterns for p in sorted(glob.glob(str(root / pat)))]
            if found:
                return list(dict.fromkeys(found))
        return []

    def placeholder(self, gid: str, reason: str, *, required: bool, tag: str = "") -> TestSpec:
        return TestSpec(f"{gid}-inputs{tag}", f"{gid}: reference inputs are available", "not-applicable",
                        Requirement("conversion", "The kit posts every reference input of this format.",
                                    "https://hl7.org/fhir/R4/resource-operation-convert.html"),
                        required=required, params={"reason": reason})


def _strip(name: str, suffixes: list[str]) -> str:
    for s in sorted(suffixes, key=len, reverse=True):
        if name.endswith(s):
            return name[: -len(s)]
    return name.rsplit(".", 1)[0]


def _input_ids(files: list[Path], suffixes: list[str]) -> list[tuple[str, Path]]:
    out, seen = [], set()
    for path in files:
        base = re.sub(r"[^a-z0-9.-]+", "-", _strip(path.name, suffixes).lower()).strip("-.") or "input"
        iid, n = base, 2
        while iid in seen:
            iid, n = f"{base}-{n}", n + 1
        seen.add(iid)
        out.append((iid, path))
    return out


def _facts_path(path: Path, suffixes: list[str], facts_suffix: str) -> Path | None:
    facts = path.with_name(_strip(path.name, suffixes) + facts_suffix)
    return facts if facts.is_file() else None
