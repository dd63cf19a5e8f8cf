"""FHIR XML serialise and parse rates beside FHIR JSON (orjson, the floor) and beside fhir.resources (a peer that
writes and reads FHIR XML: pydantic models, `model_dump_xml` / `model_validate_xml`), on the same resources.

Resources: every example of the installed IG packages (the package client's cache: Genomics Reporting 3.0.0, IPS
2.0.0, ...) and the Bundles helixgate converts examples/ into (so mapper output, which the gateway serves, is in the
set). fhir.resources models R4B (it ships no R4 4.0.1 classes); the resources it refuses are counted and left
out of every row, so each ratio compares like with like.

Rows: resources/s and MB/s (of the JSON form), the median of passes of about 0.5 s over the set (or one pass, when
that is longer), the contenders' passes interleaved round after round for about --seconds each and at least three
(the machine is shared: a load change hits all alike):
- serialise: orjson.dumps(dict); helixgate json_to_xml(dict); the HTTP path (the JSON body read keeping decimals as
  written, then json_to_xml: what gateway.negotiation does per response); fhir.resources model.model_dump_xml() of a
  model built beforehand, and model_validate(dict) + model_dump_xml() (dict to XML, as helixgate's row).
- parse: orjson.loads(JSON bytes); helixgate xml_to_json(XML bytes); fhir.resources model_validate_xml(its XML)
  and model_validate_json(JSON) (a model, with its validation: more work than a dict).

    python bench/bench_xml.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.convert import run  # noqa: E402
from gateway.formats import HUB, Request  # noqa: E402
from mappers.exceptions import MappingError  # noqa: E402
from mappers.toolkit.registry import detect  # noqa: E402
from profiles.packages import cache_dir  # noqa: E402
from profiles.xml import core_definitions, xml_to_json  # noqa: E402
from profiles.xmlwrite import json_to_xml  # noqa: E402


def resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for pkg in sorted(cache_dir().iterdir()):
        for f in sorted((pkg / "package" / "example").glob("*.json")):
            found.append((f"{pkg.name}/{f.name}", orjson.loads(f.read_bytes().removeprefix(b"\xef\xbb\xbf"))))
    for f in sorted((ROOT / "examples").iterdir()):
        if not f.is_file():
            continue
        data = f.read_bytes()
        fmt = detect(data)
        if fmt is None or fmt.name == HUB:
            continue
        try:
            bundle = run(data, Request(fmt.name, HUB, allow_invalid=True)).body
        except MappingError:
            continue
        found.append((f"examples/{f.name}", orjson.loads(bundle)))
    return found


PASS_SECONDS = 0.5  # a pass repeats the set until it lasts about this long, so short and long passes see alike load


def interleaved(contenders: dict[str, tuple[list[Any], Callable[[Any], Any]]], seconds: float) -> dict[str, float]:
    """Items per second of each contender: passes of about PASS_SECONDS (the set, repeated as needed), one pass
    each, round after round (so a load change on the shared machine hits all alike), each until it has run about
    `seconds` and at least three passes; the median pass counts."""
    repeat: dict[str, int] = {}
    for name, (items, fn) in contenders.items():  # warm (compiled shapes, caches), and size the passes
        start = time.perf_counter()
        for item in items:
            fn(item)
        repeat[name] = max(1, round(PASS_SECONDS / (time.perf_counter() - start)))
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    spent = dict.fromkeys(contenders, 0.0)
    while min(len(r) for r in rates.values()) < 3 or min(spent.values()) < seconds:
        for name, (items, fn) in contenders.items():
            if len(rates[name]) >= 3 and spent[name] >= seconds:
                continue  # done; the others go on
            start = time.perf_counter()
            for _ in range(repeat[name]):
                for item in items:
                    fn(item)
            elapsed = time.perf_counter() - start
            spent[name] += elapsed
            rates[name].append(repeat[name] * len(items) / elapsed)
    return {name: statistics.median(r) for name, r in rates.items()}


def peer() -> Any:
    try:
        import fhir.resources
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        return None
    return fhir.resources, get_fhir_model_class


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    core_definitions()
    docs = resources()
    found = peer()
    if found is None:
        print("fhir.resources is not installed: no peer rows (pip install 'fhir.resources>=8')")
        ok: list[tuple[dict[str, Any], Any, bytes]] = []
    else:
        module, model_class = found
        ok, refused = [], []
        for name, d in docs:
            try:
                model = model_class(d["resourceType"]).model_validate(d)
                mx = model.model_dump_xml()
                model_class(d["resourceType"]).model_validate_xml(mx)
                ok.append((d, model, mx))
            except Exception as e:  # the peer's refusal, counted
                refused.append(f"{name}: {type(e).__name__}")
        print(f"fhir.resources {module.__version__} (R4B models) takes {len(ok)} of {len(docs)} resources"
              + (f"; refused: {len(refused)} (e.g. {', '.join(refused[:3])}); the rows are over those it takes"
                 if refused else ""))
        docs = [(n, d) for n, d in docs if any(d is o[0] for o in ok)]
    dicts = [d for _, d in docs]
    json_bytes = [orjson.dumps(d) for d in dicts]
    xml_bytes = [json_to_xml(d) for d in dicts]
    mb = sum(map(len, json_bytes)) / len(dicts) / 1e6  # mean JSON size, MB
    print(f"{len(docs)} resources, {sum(map(len, json_bytes)) / 1e6:.2f} MB as JSON, "
          f"{sum(map(len, xml_bytes)) / 1e6:.2f} MB as XML (helixgate); median of interleaved passes")

    def table(kind: str, rates: dict[str, float], floor: str, ours: str) -> None:
        for name, rate in rates.items():
            print(f"{kind:<10} {name:<58} {rate:>8,.0f}/s {rate * mb:>6.1f} MB/s {rate / rates[floor]:>7.3f}x floor "
                  f"{rate / rates[ours]:>8.3f}x helixgate", flush=True)

    serialise: dict[str, tuple[list[Any], Callable[[Any], Any]]] = {
        "orjson.dumps (JSON, the floor)": (dicts, orjson.dumps),
        "helixgate json_to_xml": (dicts, json_to_xml),
        "helixgate HTTP path: json.loads(Decimal) + json_to_xml":
            (json_bytes, lambda b: json_to_xml(json.loads(b, parse_float=Decimal))),
    }
    parse: dict[str, tuple[list[Any], Callable[[Any], Any]]] = {
        "orjson.loads (JSON, the floor)": (json_bytes, orjson.loads),
        "helixgate xml_to_json": (xml_bytes, lambda b: xml_to_json(b, None)),
    }
    if ok:
        models = [m for _, m, _ in ok]
        typed_xml = [(d["resourceType"], mx) for d, _, mx in ok]
        typed_json = [(d["resourceType"], jb) for (d, _, _), jb in zip(ok, json_bytes, strict=True)]
        serialise["fhir.resources model_dump_xml (model built before)"] = (models, lambda m: m.model_dump_xml())
        serialise["fhir.resources model_validate + model_dump_xml"] = (
            dicts, lambda d: model_class(d["resourceType"]).model_validate(d).model_dump_xml())
        parse["fhir.resources model_validate_xml (its own XML)"] = (
            typed_xml, lambda t: model_class(t[0]).model_validate_xml(t[1]))
        parse["fhir.resources model_validate_json"] = (
            typed_json, lambda t: model_class(t[0]).model_validate_json(t[1]))
    table("serialise", interleaved(serialise, args.seconds), "orjson.dumps (JSON, the floor)", "helixgate json_to_xml")
    table("parse", interleaved(parse, args.seconds), "orjson.loads (JSON, the floor)", "helixgate xml_to_json")


if __name__ == "__main__":
    main()
