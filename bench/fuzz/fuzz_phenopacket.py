"""Fuzz the GA4GH Phenopackets v2 reader as `helixgate convert`, `POST /fhir/$convert` and bulk jobs run it: the
registry's `phenopacket` to_fhir (mappers.phenopacket: the official schema's reading of a Phenopacket, Family or
Cohort, then the FHIR Bundle), the Bundle written by orjson; one input in four also through the format's `split`
(a cohort's members, NDJSON lines: what a bulk job converts one by one), each piece converted. MappingError
(ParseError, UnsupportedMessage, EmitError) is the declared refusal.

Seeds: the corpora's phenopackets/ (phenopacket-store cases), examples/phenopacket-*.json and the tests' data.
Each input is a seed with 1-4 mutations of its JSON (bench/fuzz/mutations.py `mutate_json`: values of the wrong
type, huge numbers, keys invented or deleted, subtrees moved between seeds, arrays for objects, items multiplied,
nesting up to 1000 deep); one in ten is then sent as NDJSON of 2-5 seeds, one in ten wrapped as a Cohort (members)
or a Family (proband), one in five damaged as text or bytes.

    python bench/fuzz/fuzz_phenopacket.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import contextlib
import random
import sys
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, run
from mutations import MAX_INPUT, dumps, files, json_junk, json_text_damage, mutate_json, read_seeds, rss_mb

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

MAX_SEED = 64 * 1024


def seeds() -> list[Any]:
    paths = files("corpora:phenopackets/*.json", "examples/phenopacket-*.json", "tests/mappers/phenopacket/data/*.json")
    out = []
    for data in read_seeds([p for p in paths if not p.name.endswith(".facts.json")], limit=10 * MAX_SEED):
        if len(data) <= MAX_SEED:
            with contextlib.suppress(orjson.JSONDecodeError):
                out.append(orjson.loads(data))
    if not out:
        sys.exit("no seeds: the phenopacket corpus (HELIXGATE_TEST_CORPORA) and the examples are missing")
    return out


def _names(docs: list[Any]) -> list[str]:
    keys: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node)
            for v in node.values():
                visit(v)
        elif isinstance(node, list):
            for v in node:
                visit(v)

    for d in docs:
        visit(d)
    return sorted(keys | {"members", "proband", "relatives", "pedigree", "files", "phenopackets"})


def inputs(docs: list[Any]) -> st.SearchStrategy[bytes]:
    names = _names(docs)
    junk = json_junk(names)
    texts = [orjson.dumps(d) for d in docs]

    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        seed = rng.choice(texts)
        doc = orjson.loads(seed)
        shape = rng.randint(0, 9)
        if shape == 0:  # a Cohort or Family around this seed and others
            others = [orjson.loads(rng.choice(texts)) for _ in range(rng.randint(0, 3))]
            doc = ({"id": "cohort", "members": [doc, *others], "metaData": doc.get("metaData", {})}
                   if rng.random() < 0.5 else
                   {"id": "family", "proband": doc, "relatives": others, "metaData": doc.get("metaData", {})})
        for _ in range(rng.randint(1, 4)):
            doc = mutate_json(draw, rng, doc, docs, names, junk)
        data = dumps(doc)
        if shape == 1:  # NDJSON: this document and 1-4 seeds, one a line
            data = b"\n".join([data, *(rng.choice(texts) for _ in range(rng.randint(1, 4)))])
        data = data if len(data) <= MAX_INPUT else seed
        return json_text_damage(draw, rng, data) if rng.randint(0, 4) == 0 else data

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    fmt = get("phenopacket")
    assert fmt.to_fhir is not None and fmt.split is not None
    docs = seeds()
    opts = ConvertOptions()

    def target(data: bytes) -> None:
        if len(data) % 4 == 0:  # a bulk job: split, then each piece (at most 5: the pieces are seeds' sizes)
            for _, piece in fmt.split(data)[:5]:
                with contextlib.suppress(MappingError):
                    orjson.dumps(fmt.to_fhir(piece, opts).bundle)
        orjson.dumps(fmt.to_fhir(data, opts).bundle)

    for d in docs:
        with contextlib.suppress(MappingError):
            target(orjson.dumps(d))
    print(f"{len(docs)} seeds, baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    stats = run("phenopacket", inputs(docs), target, (MappingError,), args, "json")
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
