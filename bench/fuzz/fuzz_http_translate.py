"""Fuzz `GET/POST /fhir/ConceptMap/$translate` and `/fhir/ConceptMap/{id}/$translate` over the real app
(bench/fuzz/http_client.py): no 5xx, every error an OperationOutcome, no empty answer.

Seeds: every (map, source system, code, target system) of the ConceptMaps helixgate ships (mappers/conceptmaps/), as
a query string, a form body or a Parameters body (valueUri/valueCode/valueCoding/valueCodeableConcept/valueBoolean).
Each input is a seed with 1-3 mutations: values replaced by junk, huge numbers or values of the wrong JSON type,
parameters repeated, dropped or renamed, codings multiplied, the map id in the path junk, the Content-Type wrong,
the query and the body both given; one in six Parameters bodies is then damaged as JSON text.

    python bench/fuzz/fuzz_http_translate.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, arguments, run
from http_client import client, close, pack, send
from mutations import JUNK_VALUES, dumps, json_text_damage, junk_text, rss_mb

NAMES = ["url", "conceptMap", "system", "code", "coding", "codeableConcept", "target", "targetsystem", "reverse",
         "version", "source", "x", ""]
MEDIA = ["application/fhir+json", "application/json", "application/x-www-form-urlencoded", "text/plain", "",
         "application/fhir+xml"]


def seeds() -> list[dict[str, Any]]:
    """(map id, url, system, code, target system, target ValueSet) of every mapped code."""
    out = []
    for p in sorted((ROOT / "mappers" / "conceptmaps").glob("*.json")):
        cm = orjson.loads(p.read_bytes())
        for g in cm.get("group", []):
            for el in g.get("element", [])[:6]:
                out.append({"id": cm["id"], "url": cm["url"], "system": g.get("source"), "code": el["code"],
                            "targetsystem": g.get("target"), "target": cm.get("targetUri")})
    return out


def _pairs(rng: random.Random, seed: dict[str, Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [("code", seed["code"])]
    if rng.random() < 0.8:
        pairs.append(("system", seed["system"]))
    for name in ("url", "targetsystem", "target"):
        if rng.random() < 0.3:
            pairs.append((name, seed[name]))
    if rng.random() < 0.2:
        pairs.append(("reverse", rng.choice(["true", "false"])))
    return pairs


def _mutate(draw: st.DrawFn, rng: random.Random, pairs: list[tuple[str, Any]], seeds: list[dict[str, Any]]) -> None:
    op = rng.randint(0, 5)
    k = rng.randrange(len(pairs)) if pairs else 0
    if op == 0 and pairs:
        pairs[k] = (pairs[k][0], junk_text(draw, rng) if rng.random() < 0.5 else rng.choice(JUNK_VALUES))
    elif op == 1 and pairs:
        pairs.insert(k, pairs[k])
    elif op == 2 and pairs:
        del pairs[k]
    elif op == 3 and pairs:
        pairs[k] = (rng.choice(NAMES), pairs[k][1])
    elif op == 4:  # codings, as objects or wrongly shaped
        other = rng.choice(seeds)
        coding: Any = {"system": other["system"], "code": other["code"]}
        if rng.random() < 0.3:
            coding[rng.choice(["system", "code"])] = rng.choice(JUNK_VALUES)
        name = rng.choice(["coding", "codeableConcept"])
        value = coding if name == "coding" else {"coding": [coding] * rng.choice([1, 2, 500])}
        if name == "codeableConcept" and rng.random() < 0.3:
            value["coding"] = rng.choice(JUNK_VALUES)
        pairs.append((name, value))
    else:
        pairs.append((rng.choice(NAMES), junk_text(draw, rng)))


def _value_key(rng: random.Random, value: Any) -> str:
    if isinstance(value, bool):
        return "valueBoolean"
    if isinstance(value, dict):
        return "valueCodeableConcept" if "coding" in value else "valueCoding"
    return rng.choice(["valueUri", "valueCode", "valueString", "valueCanonical"])


def inputs(corpus: list[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        seed = rng.choice(corpus)
        pairs = _pairs(rng, seed)
        for _ in range(rng.randint(1, 3)):
            _mutate(draw, rng, pairs, corpus)
        path = "/fhir/ConceptMap/$translate"
        if rng.randint(0, 3) == 0:
            map_id = rng.choice([seed["id"], "x", "..", "a" * 300, junk_text(draw, rng)])
            path = f"/fhir/ConceptMap/{quote(map_id[:1024], safe='.%')}/$translate"  # servers refuse longer URLs
        how = rng.randint(0, 2)
        query: list[tuple[str, str]] = []
        body, media = b"", ""
        if how == 0:
            query = [(n, v if isinstance(v, str) else dumps(v).decode()) for n, v in pairs]
            method = "GET"
        elif how == 1:
            method, media = "POST", "application/x-www-form-urlencoded"
            body = urlencode([(n, v if isinstance(v, str) else str(v)) for n, v in pairs]).encode()
        else:
            method, media = "POST", "application/fhir+json"
            params = [{"name": n, _value_key(rng, v): v} for n, v in pairs]
            body = dumps({"resourceType": "Parameters", "parameter": params})
            if rng.randint(0, 5) == 0:
                body = json_text_damage(draw, rng, body)
            if rng.random() < 0.05:
                query = [("code", seed["code"])]
        if method == "POST" and rng.randint(0, 7) == 0:
            media = rng.choice(MEDIA)
        return pack(method, path, query, {"content-type": media} if media else {}, body)

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0], http=True)
    corpus = seeds()
    c = client(args.transport, args.sandbox)

    def target(data: bytes) -> None:
        send(c, data, "translate")

    print(f"{len(corpus)} seeds, baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    try:
        stats = run("http-translate", inputs(corpus), target, (), args, "req")
    finally:
        close(c)  # the app's worker threads end with it: the process can exit
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
