"""Fuzz the VCF reader as `helixgate convert` and `POST /fhir/$convert` run it, on plain and gzip input: the
registry's `vcf` to_fhir (mappers.vcf.to_fhir: one Bundle, up to its variant cap) with random format options,
one input in four also through the streaming NDJSON path (`Accept: application/fhir+ndjson`), the output written
by orjson. MappingError (ParseError, UnsupportedMessage) is the declared refusal.

Seeds: examples/*.vcf, the tests' VCFs, the corpora's vcf/ and real-world/vcf/ (gzip ones inflated; each cut to its
first 16 KB at a line end). Each input is a seed with 1-4 mutations of its header lines and records (duplicated,
dropped, cut, spliced from other seeds; columns, INFO entries and sample fields replaced by junk and huge numbers,
repeated or dropped; tabs, separators and line ends changed); one in six is then damaged as bytes. One in three is
sent gzipped (one member or several, sometimes cut or damaged after compression).

    python bench/fuzz/fuzz_vcf.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import contextlib
import gzip
import random
import sys
from pathlib import Path

import orjson
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, run
from mutations import JUNK, damage, files, mutate_lines, read_seeds, rss_mb

from mappers.exceptions import MappingError
from mappers.toolkit.registry import ConvertOptions, get

OPTION_VALUES = {"sample": ["NA12878", "TUMOR", "NORMAL", "", "x"], "genomicSource": ["germline", "somatic", "x"],
                 "sex": ["male", "female", "other", "unknown", ""], "patient": ["urn:oid:1.2|123", "p1", "|", ""],
                 "assembly": ["GRCh37", "GRCh38", "hg19"], "lenient": ["true", "false"],
                 "keepFiltered": ["true", "1"]}


class LateRefusal(Exception):
    """A MappingError after the first NDJSON piece: the HTTP answer has already started (a crash here)."""


def seeds() -> list[bytes]:
    out = read_seeds(files("examples/*.vcf", "tests/mappers/vcf/data/*.vcf", "corpora:vcf/*.vcf",
                           "corpora:vcf/*.vcf.gz", "corpora:real-world/vcf/*.vcf", "corpora:real-world/vcf/*.vcf.gz"),
                     limit=16 * 1024)
    if not out:
        sys.exit("no seeds: set HELIXGATE_TEST_CORPORA")
    return out


def _gzip(draw: st.DrawFn, rng: random.Random, data: bytes) -> bytes:
    op = rng.randint(0, 5)
    if op == 0:  # several members, as bgzip writes them
        cut = rng.randint(0, len(data))
        return gzip.compress(data[:cut], 1) + gzip.compress(data[cut:], 1)
    packed = gzip.compress(data, 1)
    if op == 1:
        return packed[:rng.randint(0, len(packed))]
    if op == 2:
        return damage(draw, rng, packed)
    if op == 3 and rng.random() < 0.05:  # a small bomb: zeros behind the header
        return packed + gzip.compress(b"\0" * (8 << 20), 9)
    return packed


def inputs(corpus: list[bytes]) -> st.SearchStrategy[tuple[bytes, tuple[tuple[str, str], ...]]]:
    @st.composite
    def draw_input(draw: st.DrawFn) -> tuple[bytes, tuple[tuple[str, str], ...]]:
        rng = random.Random(draw(st.integers(0, 2**32)))
        data = rng.choice(corpus)
        for _ in range(rng.randint(1, 4)):
            data = mutate_lines(draw, rng, data, corpus, fields=b"\t", inner=rng.choice([b";", b":", b",", b"="]),
                                delimiters=b"\t;:,=|/\n", copies=(1, 1, 2, 2, 3, 99, 1500))
        if rng.randint(0, 5) == 0:
            data = damage(draw, rng, data)
        if rng.randint(0, 2) == 0:
            data = _gzip(draw, rng, data)
        params: list[tuple[str, str]] = []
        if rng.randint(0, 5) == 0:
            for name in rng.sample(sorted(OPTION_VALUES), rng.randint(1, 3)):
                params.append((name, rng.choice(OPTION_VALUES[name] + [rng.choice(JUNK)])))
        return data, tuple(sorted(params))

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    fmt = get("vcf")
    assert fmt.to_fhir is not None and fmt.ndjson is not None
    corpus = seeds()

    def target(raw: bytes) -> None:
        data, params = _decode(raw)
        opts = ConvertOptions(params=params)
        with contextlib.suppress(MappingError):
            orjson.dumps(fmt.to_fhir(data, opts).bundle)
        if len(data) % 4 == 0:  # the streaming path reads the input twice (checked, then converted)
            pieces = fmt.ndjson(data, opts)
            next(pieces, b"")  # refusals come before the first piece
            try:
                for _ in pieces:
                    pass
            except MappingError as e:
                raise LateRefusal(str(e)) from e

    for s in corpus[:10]:
        with contextlib.suppress(MappingError):
            target(s)
    print(f"{len(corpus)} seeds, baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    stats = run("vcf", inputs(corpus).map(_encode), target, (MappingError,), args, "vcf")
    sys.exit(1 if stats.crashes else 0)


def _encode(given: tuple[bytes, tuple[tuple[str, str], ...]]) -> bytes:
    """The runner saves bytes: options travel in a first line `#helixgate-options <json>`."""
    data, params = given
    return b"#helixgate-options " + orjson.dumps(params) + b"\n" + data if params else data


def _decode(data: bytes) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    if data.startswith(b"#helixgate-options "):
        head, _, rest = data.partition(b"\n")
        return rest, tuple(tuple(p) for p in orjson.loads(head[19:]))  # type: ignore[misc]
    return data, ()


if __name__ == "__main__":
    main()
