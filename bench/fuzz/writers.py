"""The FHIR → format writers as one harness shape (bench/fuzz/fuzz_fhir_to_*.py): the body read by mappers.fhir
(the registry's `fhir` to_fhir: JSON, XML, NDJSON, a Bundle, a single resource or a Parameters), then the target's
from_fhir and its output check, exactly as `helixgate convert X --to T` and `$convert?target=T` run them
(gateway.convert.run). MappingError (ParseError, UnsupportedMessage, EmitError, InvalidOutput) is the refusal.

Seeds: the Bundles the readers make from the tests' inputs and examples (HL7 v2 messages, VCFs, China CDA documents,
WS 445 datasets), the corpora's real-world/fhir/ resources (mCODE, Genomics Reporting STU1, genomics-operations
Parameters), tests/mappers/fhir/inputs/ and the Genomics Reporting IG examples (up to 64 KB). Each input is a seed
with 1-4 mutations of its JSON (values of the wrong type, huge numbers, codes and subtrees moved between seeds,
elements deleted, repeated or nested deep); one in six is then damaged as text or bytes, one in ten sent as NDJSON.
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from common import arguments, run
from hypothesis import strategies as st
from mutations import MAX_INPUT, dumps, files, json_junk, json_text_damage, mutate_json, rss_mb

from gateway.convert import run as convert
from gateway.formats import Request
from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

MAX_SEED = 64 * 1024
READERS = {"hl7v2": ["examples/*.hl7", "tests/mappers/hl7v2/messages/*.hl7"],
           "vcf": ["examples/*.vcf", "tests/mappers/vcf/data/*.vcf", "corpora:vcf/vcf_example*.vcf"],
           "cda-cn": ["examples/cn-*.xml", "tests/mappers/cda_cn/samples/*.xml"],
           "ws445": ["examples/cn-ws445-lab.json", "tests/mappers/ws445/samples/*.json"]}
PACKAGES = Path.home() / ".fhir" / "packages"
EXAMPLES = PACKAGES / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "example"
# The readers of the formats added in the third session (eHDSI CDA, phenopackets; the corpora's first 40
# phenopackets: 362 would outweigh every other seed) and the IPS 2.0.0 examples: seeds for the harnesses of
# their writers and of the FHIR document writers (IPS, EU Lab, FHIR XML), which `main(..., more_seeds=True)` adds.
MORE_READERS = {"ehdsi-cda": ["examples/ehdsi-*.xml", "corpora:ehdsi-cda/*.xml"],
                "phenopacket": ["examples/phenopacket-case.json", "tests/mappers/phenopacket/data/*.json"]}
MORE_PHENOPACKETS = 40
IPS_EXAMPLES = PACKAGES / "hl7.fhir.uv.ips#2.0.0" / "package" / "example"


def seeds(more: bool = False) -> list[Any]:
    out: list[Any] = []
    readers = {name: files(*patterns) for name, patterns in READERS.items()}
    if more:
        readers.update({name: files(*patterns) for name, patterns in MORE_READERS.items()})
        readers["phenopacket"] += files("corpora:phenopackets/*.json")[:MORE_PHENOPACKETS]
    for name, paths in readers.items():
        reader = get(name).to_fhir
        assert reader is not None
        for p in paths:
            with contextlib.suppress(MappingError):
                out.append(reader(p.read_bytes(), ConvertOptions()).bundle)
    fhir = get("fhir").to_fhir
    assert fhir is not None
    extra = files("corpora:real-world/fhir/*.json", "corpora:real-world/fhir/*.xml", "tests/mappers/fhir/inputs/*.json")
    extra += sorted(EXAMPLES.glob("*.json"))
    if more:
        extra += sorted(IPS_EXAMPLES.glob("*.json"))
    for p in extra:
        data = p.read_bytes()
        if len(data) <= MAX_SEED:
            with contextlib.suppress(MappingError):
                out.append(fhir(data, ConvertOptions()).bundle)
    return [d for d in out if len(orjson.dumps(d)) <= MAX_SEED * 4]


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
        shape = rng.randint(0, 9)
        if shape == 0 and isinstance(doc, dict) and isinstance(doc.get("entry"), list):  # NDJSON of the entries
            data = b"\n".join(dumps(e.get("resource") if isinstance(e, dict) else e) for e in doc["entry"])
        else:
            data = dumps(doc)
        data = data if len(data) <= MAX_INPUT else seed
        return json_text_damage(draw, rng, data) if rng.randint(0, 5) == 0 else data

    return draw_input()


class WriterBug(Exception):
    """A refusal that names the writer's own fault (its output does not read back): a finding, not a refusal."""


def main(target_format: str, doc: str, more_seeds: bool = False, bugs: tuple[str, ...] = (),
         also: Callable[[bytes], None] | None = None) -> None:
    """`more_seeds`: also the Bundles of the eHDSI and phenopacket readers and the IPS examples; `bugs`: the
    `details` of MappingErrors that are the writer's faults (e.g. `ips-unreadable`), counted as crashes; `also`: a
    further check of an input the conversion accepted (raising is a finding)."""
    args = arguments(doc.splitlines()[0])
    docs = seeds(more_seeds)
    requests = [Request("fhir", target_format, ConvertOptions()),
                Request("fhir", target_format, ConvertOptions(recorded="2024-05-01T10:00:00+02:00"), True)]

    def target(data: bytes) -> None:
        try:
            convert(data, requests[len(data) % 2])
            if also is not None:
                also(data)
        except MappingError as e:
            bug = next((i for i in e.issues if i.details in bugs), None)
            if bug is not None:
                raise WriterBug(f"{bug.details}: {bug.message}") from e
            raise

    invalid: list[str] = []  # seeds (unmutated, mostly valid FHIR) whose output fails the writer's own check
    for d in docs:  # warms the tables; a seed that crashes is reported here and met again by the run
        try:
            data = orjson.dumps(d)
            target(data)
            convert(data, requests[0])
        except MappingError as e:
            if any(i.details.endswith("invalid-output") for i in e.issues):  # the edge's check or the writer's own
                invalid.append(f"{d.get('id')}: {e.issues[1].message if len(e.issues) > 1 else e}")
        except Exception as e:
            print(f"  seed {d.get('id')}: {type(e).__name__}: {e}", file=sys.stderr)
    for line in invalid[:3]:
        print(f"  seed's output fails its check: {line[:300]}", file=sys.stderr)
    print(f"{len(docs)} seeds ({len(invalid)} with output failing its check), baseline RSS {rss_mb():.0f} MB",
          file=sys.stderr)
    stats = run(f"fhir-to-{target_format}", inputs(docs), target, (MappingError,), args, "json")
    sys.exit(1 if stats.crashes else 0)
