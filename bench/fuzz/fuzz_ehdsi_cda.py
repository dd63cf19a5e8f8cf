"""Fuzz the eHDSI (MyHealth@EU) CDA reader as `helixgate convert` and `POST /fhir/$convert` run it: the registry's
`ehdsi-cda` to_fhir (mappers.ehdsi_cda.to_fhir: safe XML intake, the Patient Summary read into an IPS document
Bundle, an ePrescription into MedicationRequests), the Bundle written by orjson. MappingError (ParseError,
UnsupportedMessage, EmitError) is the declared refusal.

Seeds: the corpora's ehdsi-cda/ documents (Patient Summaries and ePrescriptions, L3 and pivot) and
examples/ehdsi-*.xml (four times in five), the China CDA examples and samples (one time in five: another realm's CDA
read as far as the mapper goes). Each input is a seed with 1-4 mutations of its element tree (bench/fuzz/mutations.py
`mutate_xml`: elements dropped, repeated up to 1000 times, renamed, moved in from other seeds, nested up to 300 deep;
text, attributes and xsi:types replaced by junk and huge numbers), written as UTF-8 or GB18030, declared or not or
declared wrongly; one in five is then damaged as markup or bytes (DOCTYPEs, entities, CDATA, flips, cuts).

    python bench/fuzz/fuzz_ehdsi_cda.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import contextlib
import copy
import random
import sys
from pathlib import Path

import orjson
from hypothesis import strategies as st
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, run
from mutations import files, mutate_xml, parsed, read_seeds, rss_mb, write_xml, xml_damage

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

MAX_INPUT = 2 * 1024 * 1024  # larger (repeated subtrees) measure the size limit, not robustness: the seed as it was


def seeds() -> tuple[list[bytes], list[bytes]]:
    eu = read_seeds(files("corpora:ehdsi-cda/*.xml", "examples/ehdsi-*.xml"), limit=MAX_INPUT)
    china = read_seeds(files("examples/cn-*.xml", "tests/mappers/cda_cn/samples/*.xml"), limit=MAX_INPUT)
    if not eu:
        sys.exit("no seeds: the eHDSI corpus (HELIXGATE_TEST_CORPORA) and examples/ehdsi-*.xml are missing")
    return eu, china


def inputs(eu: list[bytes], china: list[bytes]) -> st.SearchStrategy[bytes]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    by_seed = parsed(eu + china, parser)
    trees = list(by_seed.values())
    pools = (eu, china or eu)

    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        data = rng.choice(pools[rng.randint(0, 4) == 0])
        root = copy.deepcopy(by_seed[data])
        elements = list(root.iter(etree.Element))  # listed once, kept up to date by each mutation
        n = rng.randint(1, 4)
        for k in range(n):
            try:
                mutate_xml(draw, rng, root, trees, elements, last=k == n - 1)
            except RecursionError:  # a copy of something an earlier mutation nested deep
                break
        with contextlib.suppress(RecursionError, ValueError, LookupError):
            written = write_xml(draw, rng, root)
            if len(written) <= MAX_INPUT:
                data = written
        return xml_damage(draw, rng, data) if rng.randint(0, 4) == 0 else data

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    fmt = get("ehdsi-cda")
    assert fmt.to_fhir is not None
    eu, china = seeds()
    opts = ConvertOptions()

    def target(data: bytes) -> None:
        orjson.dumps(fmt.to_fhir(data, opts).bundle)

    for s in eu + china:
        with contextlib.suppress(MappingError):
            target(s)
    print(f"{len(eu)} + {len(china)} seeds, baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    stats = run("ehdsi-cda", inputs(eu, china), target, (MappingError,), args, "xml")
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
