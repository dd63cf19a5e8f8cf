"""The share of phenopacket fields carried through FHIR and back, per field, for bench/README.md (Issue 17).

    python bench/phenopacket_fields.py [--corpus DIR] [FILE.json ...]

Each phenopacket is read with the official package (canonical protobuf JSON), converted to FHIR and back; a field
occurrence (a leaf of the JSON, list indices kept) is carried when the round trip has the same value at the same
path. Prints a Markdown table per input set: field (indices left out), occurrences, carried, share. Extra FILEs
(e.g. tests/mappers/phenopacket/data/wide.json, which fills fields the corpus never uses) get a table of their own.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mappers.phenopacket import schema  # noqa: E402
from mappers.phenopacket.from_fhir import from_fhir  # noqa: E402
from mappers.phenopacket.to_fhir import to_fhir  # noqa: E402
from mappers.phenopacket.unmapped import leaves  # noqa: E402

_INDEX = re.compile(r"\[\d+\]")


def table(paths: list[Path]) -> str:
    seen: Counter[str] = Counter()
    carried: Counter[str] = Counter()
    for path in paths:
        data = path.read_bytes()
        original = schema.read(data).doc
        back_data, _ = from_fhir(to_fhir(data).bundle)
        back = {(p, orjson.dumps(v)) for p, v in leaves(orjson.loads(back_data))}
        for p, v in leaves(original):
            field = _INDEX.sub("", p)
            seen[field] += 1
            carried[field] += (p, orjson.dumps(v)) in back
    total, kept = sum(seen.values()), sum(carried.values())
    lines = [f"{len(paths)} phenopacket(s): {kept:,} of {total:,} field values carried ({100 * kept / total:.1f} %)",
             "", "| field | values | carried | share |", "|---|---:|---:|---:|"]
    lines += [f"| `{f}` | {n:,} | {carried[f]:,} | {100 * carried[f] / n:.0f} % |" for f, n in sorted(seen.items())]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", help="folder of phenopacket JSON files (default: the phenopackets corpus)")
    ap.add_argument("files", nargs="*", type=Path)
    args = ap.parse_args()
    base = os.environ.get("HELIXGATE_TEST_CORPORA", "").strip()
    folder = Path(args.corpus) if args.corpus else (Path(base) if base else ROOT.parent / "shared" / "corpora") \
        / "phenopackets"
    print(table(sorted(folder.glob("*.json"))))
    for f in args.files:
        print(f"\n{f.name}:\n")
        print(table([f]))


if __name__ == "__main__":
    main()
