"""The real-world corpus table (bench/README.md): every file of corpora/real-world converted as `helixgate convert`
would — to FHIR, validated; FHIR inputs to HL7 v2 and to VCF — with what came out: exit code, variants and other
results produced, output validation errors, and how many source items the report lists as not mapped.

    python bench/realworld_table.py [CORPORA]      # default $HELIXGATE_TEST_CORPORA or ../shared/corpora
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.convert import run  # noqa: E402
from gateway.formats import HUB, Request, detect  # noqa: E402
from mappers.exceptions import MappingError  # noqa: E402
from profiles.context import default_validator  # noqa: E402

VARIANT = "69548-6"
NOT_MAPPED = ("not-mapped", "not-converted", "unmapped", "dropped", "not-carried")


def _count_unmapped(outcome: dict[str, Any]) -> int:
    return sum(1 for i in outcome.get("issue", [])
               if any(w in i["details"]["coding"][0]["code"] for w in NOT_MAPPED))


def _fhir_facts(body: bytes) -> tuple[int, int, int]:
    bundle = orjson.loads(body)
    variants = results = documents = 0
    for e in bundle.get("entry") or []:
        r = e.get("resource") or {}
        documents += len(r.get("presentedForm") or [])
        if r.get("resourceType") != "Observation":
            continue
        codes = {c.get("code") for c in (r.get("code") or {}).get("coding") or []}
        if VARIANT in codes:
            variants += 1
        else:
            results += 1
    return variants, results, documents


def row(path: Path, validator: Any) -> list[str]:
    data = path.read_bytes()
    if path.suffix == ".xml" and b"http://hl7.org/fhir" in data[:2048]:
        from gateway.validate import read_resource

        data = orjson.dumps(read_resource(data, "application/fhir+xml"))
    source = detect(data) or "?"
    targets = ["hl7v2", "vcf"] if source == HUB else [HUB]
    cells = []
    for target in targets:
        try:
            out = run(data, Request(source, target), validator)
        except MappingError as e:
            cells.append(f"{source}→{target}: exit 1 — {e.issues[0].message[:110]}")
            continue
        unmapped = _count_unmapped(out.outcome)
        if target == HUB:
            variants, results, documents = _fhir_facts(out.body)
            cells.append(f"{source}→{target}: exit 0, {variants} variants, {results} other Observations, "
                         f"{documents} documents, 0 output errors, {unmapped} unmapped items")
        else:
            rows = out.body.count(b"\rOBX|") if target == "hl7v2" else sum(
                1 for line in out.body.splitlines() if line and not line.startswith(b"#"))
            unit = "OBX rows" if target == "hl7v2" else "VCF records"
            cells.append(f"{source}→{target}: exit 0, {rows} {unit}, {unmapped} items not carried over")
    return [path.relative_to(path.parents[1]).as_posix(), "<br>".join(cells)]


def main() -> None:
    corpora = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HELIXGATE_TEST_CORPORA")
                   or ROOT.parent / "shared" / "corpora")
    validator = default_validator()
    print("| file | result |\n|---|---|")
    for path in sorted((corpora / "real-world").rglob("*")):
        if path.is_file() and path.name != "README.md":
            print("| " + " | ".join(row(path, validator)) + " |")


if __name__ == "__main__":
    main()
