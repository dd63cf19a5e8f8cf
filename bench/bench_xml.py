"""FHIR XML serialise and parse rates beside FHIR JSON (orjson, the floor) and beside fhir.resources (a peer that
writes and reads FHIR XML: pydantic models, `model_dump_xml` / `model_validate_xml`), on the same resources.

Resources: every example of the installed IG packages (the package client's cache: Genomics Reporting 3.0.0, IPS
2.0.0, ...) and the Bundles helixgate converts examples/ into (so mapper output, which the gateway serves, is in the
set). fhir.resources models R4B (its R4 classes are gone since 7.0); the resources it refuses are counted and left
out of its rows, and the helixgate rows are also given over the same subset, so each ratio compares like with like.

Rows, each over about --seconds, resources/s and MB/s (of the JSON form):
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


def timed(items: list[Any], fn: Callable[[Any], Any], seconds: float) -> float:
    """Items per second over about `seconds` (whole passes)."""
    for item in items:  # warm: compiled shapes, caches
        fn(item)
    n, start = 0, time.perf_counter()
    while True:
        for item in items:
            fn(item)
        n += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


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
    s = args.seconds
    core_definitions()
    docs = resources()
    dicts = [d for _, d in docs]
    json_bytes = [orjson.dumps(d) for d in dicts]
    xml_bytes = [json_to_xml(d) for d in dicts]
    mb = sum(map(len, json_bytes)) / len(dicts) / 1e6  # mean JSON size, MB
    print(f"{len(docs)} resources, {sum(map(len, json_bytes)) / 1e6:.2f} MB as JSON, "
          f"{sum(map(len, xml_bytes)) / 1e6:.2f} MB as XML (helixgate)")
    rows: list[tuple[str, str, float, float | None]] = []  # (what, row, rate, ratio to the floor)

    def row(kind: str, name: str, rate: float, floor: float | None) -> None:
        rows.append((kind, name, rate, rate / floor if floor else None))
        print(f"{kind:<10} {name:<62} {rate:>9,.0f}/s {rate * mb:>7.1f} MB/s"
              + (f" {rate / floor:>7.3f}x" if floor else ""), flush=True)

    floor = timed(dicts, orjson.dumps, s)
    row("serialise", "orjson.dumps (JSON, the floor)", floor, floor)
    row("serialise", "helixgate json_to_xml", timed(dicts, json_to_xml, s), floor)
    row("serialise", "helixgate HTTP path: json.loads(Decimal) + json_to_xml",
        timed(json_bytes, lambda b: json_to_xml(json.loads(b, parse_float=Decimal)), s), floor)
    pfloor = timed(json_bytes, orjson.loads, s)
    row("parse", "orjson.loads (JSON, the floor)", pfloor, pfloor)
    row("parse", "helixgate xml_to_json", timed(xml_bytes, lambda b: xml_to_json(b, None), s), pfloor)

    found = peer()
    if found is None:
        print("fhir.resources is not installed: no peer rows (pip install 'fhir.resources>=8')")
        return
    module, model_class = found
    ok, refused = [], []
    for (name, d), jb in zip(docs, json_bytes, strict=True):
        try:
            model = model_class(d["resourceType"]).model_validate(d)
            mx = model.model_dump_xml()
            model_class(d["resourceType"]).model_validate_xml(mx)
            ok.append((d, jb, model, mx))
        except Exception as e:  # the peer's refusal, counted
            refused.append(f"{name}: {type(e).__name__}")
    print(f"fhir.resources {module.__version__} (R4B models) takes {len(ok)} of {len(docs)} resources; refused: "
          f"{len(refused)} (e.g. {', '.join(refused[:3])})")
    sub = [d for d, *_ in ok]
    sub_json = [jb for _, jb, *_ in ok]
    sub_xml = [json_to_xml(d) for d in sub]
    mb = sum(map(len, sub_json)) / len(sub) / 1e6
    floor = timed(sub, orjson.dumps, s)
    row("serialise", "subset: orjson.dumps", floor, floor)
    ours = timed(sub, json_to_xml, s)
    row("serialise", "subset: helixgate json_to_xml", ours, floor)
    dump = timed([m for *_, m, _ in ok], lambda m: m.model_dump_xml(), s)
    row("serialise", "subset: fhir.resources model_dump_xml (model built before)", dump, floor)
    both = timed(sub, lambda d: model_class(d["resourceType"]).model_validate(d).model_dump_xml(), s)
    row("serialise", "subset: fhir.resources model_validate + model_dump_xml", both, floor)
    pfloor = timed(sub_json, orjson.loads, s)
    row("parse", "subset: orjson.loads", pfloor, pfloor)
    pours = timed(sub_xml, lambda b: xml_to_json(b, None), s)
    row("parse", "subset: helixgate xml_to_json", pours, pfloor)
    types = [d["resourceType"] for d in sub]
    pxml = timed(list(zip(types, [mx for *_, mx in ok], strict=True)),
                 lambda t: model_class(t[0]).model_validate_xml(t[1]), s)
    row("parse", "subset: fhir.resources model_validate_xml", pxml, pfloor)
    pjson = timed(list(zip(types, sub_json, strict=True)), lambda t: model_class(t[0]).model_validate_json(t[1]), s)
    row("parse", "subset: fhir.resources model_validate_json", pjson, pfloor)
    print(f"helixgate / fhir.resources: serialise {ours / both:.2f}x (dict to XML), {ours / dump:.2f}x (vs its "
          f"dump alone); parse {pours / pxml:.2f}x")


if __name__ == "__main__":
    main()
