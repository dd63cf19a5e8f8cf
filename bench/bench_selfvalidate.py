"""Conversion with and without self-validation, per format (library path, one core): what it costs that every
conversion validates its output (gateway.convert.run with the validator over the installed packages).

Inputs: every file under examples/ and the mapper tests' input folders that the registry detects as a format that
converts to FHIR. Each row runs conversions alone for about --seconds, then conversions + validation as long; the
validation share is 1 - (rate with validation / rate without). The validator remembers verdicts on recurring values,
so after the first pass it is faster: the first pass over the inputs is reported apart.

    python bench/bench_selfvalidate.py [--seconds 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.convert import run  # noqa: E402
from gateway.formats import HUB, Request  # noqa: E402
from mappers.exceptions import MappingError  # noqa: E402
from mappers.toolkit.registry import detect, registry  # noqa: E402
from profiles.context import default_validator  # noqa: E402

FOLDERS = ["examples", "tests/mappers/hl7v2/messages", "tests/mappers/vcf/data", "tests/mappers/cda_cn/samples",
           "tests/mappers/ws445/samples"]
_LIMIT = 1 << 20  # larger files stream (not this path)


def inputs() -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*")):
            if not path.is_file() or path.stat().st_size > _LIMIT:
                continue
            data = path.read_bytes()
            fmt = detect(data)
            if fmt is None or fmt.name == HUB or fmt.to_fhir is None:
                continue
            try:
                run(data, Request(fmt.name, HUB, allow_invalid=True))
            except MappingError:
                continue  # inputs of refusal tests
            found.setdefault(fmt.name, []).append(data)
    return found


def rate(docs: list[bytes], request: Request, validator: object, seconds: float) -> tuple[float, float]:
    """(documents/s of the first pass, documents/s over `seconds`)."""
    start = time.perf_counter()
    for d in docs:
        run(d, request, validator)
    first = len(docs) / (time.perf_counter() - start)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for d in docs:
            run(d, request, validator)
        n += len(docs)
    return first, n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    args = ap.parse_args()
    validator = default_validator()
    print(f"python {sys.version.split()[0]}; {args.seconds:.0f} s per row\n")
    print("| format | inputs | converted/s (alone) | converted + validated/s, first pass | steady | validation share |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, docs in inputs().items():
        request = Request(name, HUB, allow_invalid=True)
        _, alone = rate(docs, request, None, args.seconds)
        first, steady = rate(docs, Request(name, HUB), validator, args.seconds)
        print(f"| {name} ({registry()[name].title}) | {len(docs)} | {alone:,.0f} | {first:,.0f} | {steady:,.0f} | "
              f"{1 - steady / alone:.0%} |")


if __name__ == "__main__":
    main()
