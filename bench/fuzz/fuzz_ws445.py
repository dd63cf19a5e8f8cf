"""Fuzz the WS 445 dataset reader as `helixgate convert` and `POST /fhir/$convert` run it: the registry's `ws445`
to_fhir (mappers.ws445.to_fhir: JSON, the dataset schema, then the report read into a Bundle), the Bundle written
by orjson. MappingError (ParseError, EmitError) is the declared refusal.

Seeds: examples/cn-ws445-lab.json, the tests' samples, and the datasets mappers.ws445.from_fhir writes from the
China CDA samples. Each input is a seed with 1-4 mutations (values replaced by wrongly typed or extreme ones,
data elements deleted or invented, items multiplied, subtrees moved between seeds, deep nesting, strings spoiled);
one in five is then damaged as JSON text (huge raw numbers, NaN, literals) or bytes (encodings, cuts, flips).

    python bench/fuzz/fuzz_ws445.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
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
from mutations import MAX_INPUT, dumps, files, json_junk, json_text_damage, mutate_json, rss_mb

from mappers import cda_cn, ws445
from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get


def seeds() -> list[Any]:
    out = [orjson.loads(p.read_bytes())
           for p in files("examples/cn-ws445-lab.json", "tests/mappers/ws445/samples/*.json")]
    for p in files("examples/cn-*.xml", "tests/mappers/cda_cn/samples/**/*.xml"):
        with contextlib.suppress(MappingError):
            out.append(ws445.from_fhir(cda_cn.to_fhir(p.read_bytes()).bundle).data)
    return [orjson.loads(d) if isinstance(d, bytes) else d for d in out]


def _names(docs: list[Any]) -> list[str]:
    keys: set[str] = {"dataset", "items", "resourceType"}
    for d in docs:
        for item in [d, *(d.get("items") or [])]:
            if isinstance(item, dict):
                keys.update(item)
    return sorted(keys)


def inputs(docs: list[Any]) -> st.SearchStrategy[bytes]:
    names = _names(docs)
    junk = json_junk(names)
    texts = [orjson.dumps(d) for d in docs]

    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        seed = rng.choice(texts)
        doc = orjson.loads(seed)
        for _ in range(rng.randint(1, 4)):
            doc = mutate_json(draw, rng, doc, docs, names, junk)
        data = dumps(doc)
        data = data if len(data) <= MAX_INPUT else seed
        return json_text_damage(draw, rng, data) if rng.randint(0, 4) == 0 else data

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    fmt = get("ws445")
    assert fmt.to_fhir is not None
    docs = seeds()
    opts = ConvertOptions()

    def target(data: bytes) -> None:
        orjson.dumps(fmt.to_fhir(data, opts).bundle)

    for d in docs:
        with contextlib.suppress(MappingError):
            target(orjson.dumps(d))
    print(f"{len(docs)} seeds, baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    stats = run("ws445", inputs(docs), target, (MappingError,), args, "json")
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
