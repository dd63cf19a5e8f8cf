"""Fuzz FHIR JSON validation as `POST /fhir/$validate` and `helixgate validate` run it: the body read by
gateway.validate.read_resource, validated by the default validator (R4 core, Genomics Reporting, IPS), the
OperationOutcome written by orjson. ParseError (the 400 of an unreadable body) is the one declared refusal.

Seeds: the JSON instances of fhir-test-cases/validator (corpora, see common.corpora_root) and the examples of the
installed IG packages, up to 64 KB each. Each input is a seed with 1-4 structural mutations (values replaced by
wrongly typed or extreme ones, keys deleted or invented, arrays and objects swapped, subtrees moved between seeds,
items multiplied, deep nesting, resource types changed, strings spoiled); one in eight is then damaged as bytes.

    python bench/fuzz/fuzz_fhir_json.py --count 100000 --seconds 3600 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import copy
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import JUNK_STRINGS, arguments, corpora_root, run

from gateway.validate import read_resource
from mappers.exceptions import ParseError, operation_outcome

MAX_SEED = 64 * 1024
NAMES = ["extension", "modifierExtension", "id", "meta", "text", "contained", "resourceType", "valueString",
         "valueInteger", "valueCodeableConcept", "valueReference", "coding", "system", "code", "display",
         "reference", "url", "profile", "entry", "resource", "fullUrl", "status", "subject", "component", "item",
         "linkId", "answer", "div", "_status", "_id", "versionId", "lastUpdated", "identifier", "type", "data",
         "contentType", "size", "valueQuantity", "unit", "low", "high", "start", "end", "signature", "link",
         "relation", "request", "response", "search", "total", "parameter", "name", "part", "valueBase64Binary",
         "language", "implicitRules", "fhir_comments", "valueBoolean", "_value", "effectiveDateTime", "category"]
TYPES = ["Patient", "Observation", "Bundle", "Parameters", "Binary", "DiagnosticReport", "Questionnaire",
         "QuestionnaireResponse", "StructureDefinition", "ValueSet", "CodeSystem", "Measure", "MeasureReport",
         "OperationOutcome", "Composition", "Provenance", "Unknown", "", "Resource", "DomainResource", "Extension",
         "SearchParameter", "CapabilityStatement", "ImplementationGuide", "ServiceRequest", "Specimen"]
JUNK_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64, 10**30, 1.5, -0.0, 1e308, [], {}, [None], [[]],
    [{}], {"": ""}, {"resourceType": 5}, {"reference": {"a": 1}}, {"coding": "s"},
    {"coding": [{"system": {}, "code": []}]}, {"system": ["x"], "code": {"a": 1}}, {"resourceType": "Patient"},
    {"resourceType": "Bundle", "type": "collection",
     "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient", "meta": "x"}}]},
    {"url": 5}, {"extension": "x"}, {"value": 1}, {"div": 5}, {"profile": [5]}, {"meta": []},
    {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": {"x": 1}},
]
DEPTHS = [1, 2, 10, 60, 101, 130, 260, 300, 520]
_NESTS: dict[str, Any] = {
    "extension": lambda v: {"url": "http://example.org/x", "extension": [v]},
    "item": lambda v: {"linkId": "x", "type": "group", "item": [v]},
    "bundle": lambda v: {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:x",
                                                                                    "resource": v}]},
    "contained": lambda v: {"resourceType": "Patient", "id": "p", "contained": [v]},
    "array": lambda v: [v],
    "mixed": None,
}


def _seeds() -> list[bytes]:
    files = sorted((corpora_root() / "fhir-test-cases" / "validator").rglob("*.json"))
    cache = Path.home() / ".fhir" / "packages"
    files += sorted(cache.glob("*/package/example/*.json"))
    out, seen = [], set()
    for f in files:
        data = f.read_bytes()
        if len(data) > MAX_SEED or data in seen:
            continue
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("resourceType"), str):
            seen.add(data)
            out.append(orjson.dumps(doc))
    if not out:
        sys.exit("no seeds: install the FHIR packages (helixgate packages install) or set HELIXGATE_TEST_CORPORA")
    return out



def _walk(rng: random.Random, doc: Any) -> tuple[Any, Any] | None:
    """A random (container, key) of the instance: a walk down from the root that stops at each level with
    probability 1/4 (a full list of paths would cost more than the validation of most inputs)."""
    node, found = doc, None
    while True:
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else None
        if not keys:
            return found
        key = rng.choice(keys)
        found = (node, key)
        if rng.random() < 0.25:
            return found
        node = node[key]


# the values hypothesis generates; `_junk` adds the fixed lists
junk = [st.text(max_size=20), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(NAMES), inner, max_size=3), max_leaves=8)]
short_text = st.text(max_size=5)


def _junk(draw: st.DrawFn, rng: random.Random) -> Any:
    """Each kind as likely as the others (as hypothesis's one_of of them picked); JUNK_VALUES as a fresh copy:
    later mutations change the value in place."""
    k = rng.randrange(len(junk) + 2)
    if k == 0:
        return copy.deepcopy(rng.choice(JUNK_VALUES))
    if k == 1:
        return rng.choice(JUNK_STRINGS)
    return draw(junk[k - 2])


def _mutate(draw: st.DrawFn, rng: random.Random, doc: dict[str, Any], seeds: list[bytes]) -> None:
    op = rng.randint(0, 9)
    spot = _walk(rng, doc)
    if spot is None:
        doc[rng.choice(NAMES)] = _junk(draw, rng)
        return
    parent, key = spot
    value = parent[key]
    if op == 0:
        parent[key] = _junk(draw, rng)
    elif op == 1:
        del parent[key]
    elif op == 2:
        holder = value if isinstance(value, dict) else parent if isinstance(parent, dict) else doc
        holder[rng.choice(NAMES)] = _junk(draw, rng)
    elif op == 3:
        parent[key] = value[0] if isinstance(value, list) and value else [value]
    elif op == 4:  # a subtree of another seed: right shapes in wrong places
        other = _walk(rng, orjson.loads(rng.choice(seeds)))
        if other is not None:
            parent[key] = other[0][other[1]]
    elif op == 5:
        times = rng.choice([2, 3, 50, 300])
        parent[key] = value * min(times, 20) if isinstance(value, list) else [value] * times
    elif op == 6:  # deep nesting, in one of the shapes FHIR allows to recurse, or plain arrays
        style = rng.choice(list(_NESTS))
        for _ in range(rng.choice(DEPTHS)):
            value = _NESTS[style if style != "mixed" else rng.choice(list(_NESTS)[:-1])](value)
        parent[key] = value
    elif op == 7:
        holder = value if isinstance(value, dict) else parent if isinstance(parent, dict) else doc
        holder["resourceType"] = rng.choice(TYPES)
    elif op == 8 and isinstance(value, str):
        cut = rng.randint(0, len(value))
        parent[key] = value[:cut] + (rng.choice(JUNK_STRINGS) if rng.random() < 0.5 else draw(short_text)) + value[cut:]
    else:  # swapped with another value of the same instance
        other = _walk(rng, doc)
        if other is not None and other[0] is not value and other[0][other[1]] is not parent:
            parent[key], other[0][other[1]] = other[0][other[1]], value


def _dumps(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:  # deeper than 255 levels or integers past 64 bits: Python's writer takes them
        try:
            return json.dumps(doc).encode()
        except (RecursionError, ValueError):
            return b'{"resourceType": "Patient"}'


def _damage(draw: st.DrawFn, rng: random.Random, data: bytes) -> bytes:
    at = rng.randint(0, len(data))
    op = rng.randint(0, 4)
    if op == 0:
        return data[:at]
    if op == 1:
        return data[:at] + rng.choice([b"\xff", b"\\u", b'{"', b"]]]", b"\x00", b"\xed\xa0\x80", b","])\
            + data[at:]
    if op == 2:
        return data[:at] + data[at + rng.randint(1, 16):]
    if op == 3:
        return b"\xef\xbb\xbf" + data
    return data[:at] + data[at:at + 64] * 2 + data[at:]


def inputs(light: list[bytes], seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed (seven times in eight one that validates in under 20 ms, so the heavy few do not set the rate), 1-4
    mutations, and one time in eight damage to the bytes."""
    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        doc = orjson.loads(rng.choice(light if rng.randint(0, 7) else seeds))
        for _ in range(rng.randint(1, 4)):
            _mutate(draw, rng, doc, seeds)
        data = _dumps(doc)
        return _damage(draw, rng, data) if rng.randint(0, 7) == 0 else data

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    from profiles.context import default_validator

    validator = default_validator()
    seeds = _seeds()
    light = []
    for s in seeds:  # also compiles the profiles the seeds claim, before anything is timed
        t0 = time.perf_counter()
        validator.validate(orjson.loads(s))
        if time.perf_counter() - t0 < 0.02:
            light.append(s)

    def target(data: bytes) -> None:
        doc = read_resource(data, "application/fhir+json")
        orjson.dumps(operation_outcome(validator.validate(doc)))

    print(f"{len(seeds)} seeds, {len(light)} light", file=sys.stderr)
    stats = run("fhir-json", inputs(light, seeds), target, (ParseError,), args, "json")
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
