"""What composing an IPS document (and an EU Lab document) costs per source document, beside the plain conversion
to FHIR, in one process on one core.

Rows, per source (WS/T 500 C0007 examples/cn-lab-record.utf8.xml, the genetic ORU examples/oru-egfr-somatic.hl7,
a VCF examples/germline-grch38.vcf with --recorded):
- read: the reader alone (source → FHIR Bundle), the floor;
- read + ips / read + eu-lab: the reader then the composer (mappers.ips.compose / mappers.eu_lab.compose);
- convert fhir / convert ips: what the gateway does per request (gateway.convert.run: the reader, the writer, and
  validation of the output against the installed packages) for the plain Bundle and for the IPS document.
Ratios are against `read` and against `convert fhir` of the same run.

    python bench/bench_ips.py [--seconds 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.convert import run  # noqa: E402
from gateway.formats import Request  # noqa: E402
from mappers.eu_lab.compose import compose as eu_lab  # noqa: E402
from mappers.ips.compose import compose as ips  # noqa: E402
from mappers.toolkit.registry import ConvertOptions, detect  # noqa: E402
from profiles.context import default_validator  # noqa: E402

SOURCES = [("cn-lab-record.utf8.xml", None, True), ("oru-egfr-somatic.hl7", None, True),
           ("germline-grch38.vcf", "2024-03-15T10:30:00+08:00", False)]


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def measure(name: str, recorded: str | None, lab: bool, seconds: float, validator: object) -> dict[str, float]:
    data = (ROOT / "examples" / name).read_bytes()
    fmt = detect(data)
    assert fmt is not None and fmt.to_fhir is not None
    read = fmt.to_fhir
    opts = ConvertOptions(recorded=recorded)
    rows: list[tuple[str, Callable[[], object]]] = [
        ("read", lambda: read(data, opts)),
        ("read + ips", lambda: ips(read(data, opts).bundle, opts)),
    ]
    if lab:
        rows.append(("read + eu-lab", lambda: eu_lab(read(data, opts).bundle, opts)))
    rows += [("convert fhir", lambda: run(data, Request(fmt.name, "fhir", opts), validator)),
             ("convert ips", lambda: run(data, Request(fmt.name, "ips", opts), validator))]
    return {label: rate(fn, seconds) for label, fn in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    validator = default_validator()
    print(f"{'source':28} {'row':16} {'docs/s':>9} {'x read':>7} {'x convert fhir':>15}")
    for name, recorded, lab in SOURCES:
        rates = measure(name, recorded, lab, args.seconds, validator)
        for label, r in rates.items():
            print(f"{name:28} {label:16} {r:9.1f} {rates['read'] / r:7.2f} {rates['convert fhir'] / r:15.2f}")


if __name__ == "__main__":
    main()
