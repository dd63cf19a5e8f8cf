"""Every conversion's output, written to a folder, so a speed-up can be shown to change no byte.

    python bench/conversion_snapshot.py write DIR      # before the change
    python bench/conversion_snapshot.py compare DIR    # after it: lists every output that differs, exit 1 if any

Inputs: every file under tests/ (not node_modules), examples/ and HELIXGATE_TEST_CORPORA (default
/work/shared/corpora) that a reader's sniff accepts, up to 4 MiB. Each is converted to FHIR by its format with the
default options (Bundle bytes, issues, origins, or the refusal). HL7 v2 inputs are also converted with other
options (transaction, time zone, recorded, site variable names), through gateway.convert.run with allow_invalid
(validator off, then on) and written back to ER7 (from_fhir of the Bundle). A difference only in the
`validated` records, with the `to_fhir` ones equal, is the validator's, not the mapper's. Each ORU^R01 is also
converted in MUTANTS seeded variants, one field of one segment replaced by an odd value (repetitions, components,
subcomponents, escapes, nothing), so paths the authored messages do not take are compared too.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.convert import run  # noqa: E402
from gateway.formats import HUB, Request  # noqa: E402
from mappers.exceptions import MappingError  # noqa: E402
from mappers.toolkit.registry import ConvertOptions, registry  # noqa: E402

MAX_BYTES = 4 << 20
MUTANTS = 12
ODD_VALUES = ("", "a~b", "x^y^z", "p&q^r&s", "\\T\\t\\E\\\\S\\", "\\X41C3A9\\", "~~", "^^^", "&", "\\.br\\x",
              "LA6576-8^Positive^LN", "1^2^3~4^5^6", "20240102", "  ")
HL7V2_OPTIONS = {
    "default": ConvertOptions(),
    "transaction": ConvertOptions(bundle_type="transaction", timezone="+02:00", recorded="2024-05-06T07:08:09Z"),
    "site-names": ConvertOptions(timezone="-05:00",
                                 params=(("variableNames", '{"Variant": "48004-6", "LOCAL1": "48018-6"}'),)),
}


def inputs() -> list[tuple[str, bytes]]:
    corpora = Path(os.environ.get("HELIXGATE_TEST_CORPORA", "/work/shared/corpora"))
    found: list[tuple[str, bytes]] = []
    for base, label in ((ROOT / "tests", "tests"), (ROOT / "examples", "examples"), (corpora, "corpora")):
        for p in sorted(base.rglob("*")):
            if "node_modules" in p.parts or not p.is_file() or p.stat().st_size > MAX_BYTES:
                continue
            found.append((f"{label}/{p.relative_to(base)}", p.read_bytes()))
    return found


def refusal(e: MappingError) -> dict[str, Any]:
    return {"refused": type(e).__name__, "message": str(e), "outcome": e.outcome()}


def records(data: bytes, validator: Any) -> dict[str, Any]:
    """Every output of `data`, by name; {} when no reader accepts it."""
    out: dict[str, Any] = {}
    for fmt in registry().values():
        if fmt.to_fhir is None or fmt.name == HUB or not fmt.sniff(data):
            continue
        variants = HL7V2_OPTIONS if fmt.name == "hl7v2" else {"default": ConvertOptions()}
        for name, opts in variants.items():
            key = f"{fmt.name}.{name}"
            try:
                conv = fmt.to_fhir(data, opts)
                out[f"{key}.to_fhir"] = {"bundle": conv.bundle, "outcome": conv.outcome, "origins": conv.origins}
            except MappingError as e:
                out[f"{key}.to_fhir"] = refusal(e)
                continue
            if fmt.name != "hl7v2":
                continue
            for label, v in (("unvalidated", None), ("validated", validator)):
                try:
                    c = run(data, Request(fmt.name, HUB, opts, allow_invalid=True), v)
                    out[f"{key}.{label}"] = {"body": c.body.decode(), "outcome": c.outcome}
                except MappingError as e:
                    out[f"{key}.{label}"] = refusal(e)
            if fmt.from_fhir is not None:
                try:
                    r = fmt.from_fhir(conv.bundle, opts)
                    out[f"{key}.from_fhir"] = {"data": r.data.decode("utf-8", "replace"), "outcome": r.outcome}
                except MappingError as e:
                    out[f"{key}.from_fhir"] = refusal(e)
        break  # the first reader that accepts it, as registry.detect picks
    return out


def mutants(data: bytes) -> list[bytes]:
    """MUTANTS variants of an ER7 message, each with one field of one segment (not MSH) set to an odd value."""
    rng = random.Random(data)
    sep = b"\r" if b"\r" in data else b"\n"
    lines = data.split(sep)
    rows = [i for i, ln in enumerate(lines) if ln[3:4] == b"|" and not ln.startswith(b"MSH")]
    out = []
    for _ in range(MUTANTS if rows else 0):
        i = rng.choice(rows)
        fields = lines[i].split(b"|")
        n = rng.randrange(1, len(fields) + 2)
        fields += [b""] * (n + 1 - len(fields))
        fields[n] = rng.choice(ODD_VALUES).encode()
        out.append(sep.join([*lines[:i], b"|".join(fields), *lines[i + 1:]]))
    return out


def mutant_records(data: bytes) -> dict[str, Any]:
    fmt = registry()["hl7v2"]
    out: dict[str, Any] = {}
    for k, m in enumerate(mutants(data)):
        try:
            conv = fmt.to_fhir(m, ConvertOptions())
            out[f"hl7v2.mutant{k:02}.to_fhir"] = {"bundle": conv.bundle, "outcome": conv.outcome,
                                                  "origins": conv.origins}
        except MappingError as e:
            out[f"hl7v2.mutant{k:02}.to_fhir"] = refusal(e)
    return out


def snapshot() -> dict[str, bytes]:
    from profiles.context import load
    from profiles.validator import Validator

    validator = Validator(load())
    files: dict[str, bytes] = {}
    for where, data in inputs():
        recs = records(data, validator)
        if "bundle" in recs.get("hl7v2.default.to_fhir", {}):
            recs.update(mutant_records(data))
        if recs:
            name = hashlib.sha256(where.encode()).hexdigest()[:16] + ".json"
            files[name] = orjson.dumps({"input": where, **recs}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    return files


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "compare"):
        print(__doc__)
        return 2
    folder = Path(sys.argv[2])
    files = snapshot()
    if sys.argv[1] == "write":
        folder.mkdir(parents=True, exist_ok=True)
        for name, blob in files.items():
            (folder / name).write_bytes(blob)
        print(f"{len(files)} inputs written to {folder}")
        return 0
    old = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    differ = 0
    for name in sorted(set(old) | set(files)):
        a, b = old.get(name), files.get(name)
        if a == b:
            continue
        differ += 1
        doc_a, doc_b = orjson.loads(a or b"{}"), orjson.loads(b or b"{}")
        keys = sorted(k for k in set(doc_a) | set(doc_b) if doc_a.get(k) != doc_b.get(k))
        print(f"DIFFERS {doc_a.get('input') or doc_b.get('input')}: {', '.join(keys)}")
    print(f"{len(files)} inputs compared with {folder}: {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
