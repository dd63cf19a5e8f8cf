"""Fuzz the HL7 v2 reader as `helixgate convert`, `POST /fhir/$convert` and the MLLP worker run it: the bytes parsed by
mappers.hl7v2.parse.parse_batch, split into messages by the format's `split`, each converted by the registry's
`hl7v2` to_fhir (mappers.hl7v2.to_fhir, with and without a default time zone) and the Bundle written by orjson.
MappingError (ParseError, UnsupportedMessage with the parser's limits, EmitError) is the declared refusal.

Seeds: examples/*.hl7, the tests' messages and inputs, the corpora's hl7v2/ and real-world/hl7v2/ (up to 64 KB).
Each input is a seed with 1-4 mutations of its segments, fields and components (duplicated, dropped, cut, spliced
from other seeds, replaced by junk and huge numbers, delimiters and terminators changed, MSH-18 character sets
swapped); one in five is then damaged as bytes (flips, inserts, cuts, wrong encodings, MLLP framing).

    python bench/fuzz/fuzz_hl7v2.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import contextlib
import random
import sys
from pathlib import Path

import orjson
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, run
from mutations import damage, files, mutate_lines, read_seeds, rss_mb

from mappers.exceptions import MappingError
from mappers.hl7v2.parse import parse_batch
from mappers.toolkit.registry import ConvertOptions, get

CHARSETS = [b"", b"ASCII", b"8859/1", b"8859/15", b"UNICODE UTF-8", b"GB 18030-2000", b"ISO IR87", b"UNICODE",
            b"UNICODE UTF-16", b"BOGUS", b"8859/1~UNICODE UTF-8"]


def seeds() -> list[bytes]:
    out = read_seeds(files("examples/*.hl7", "tests/mappers/hl7v2/messages/*.hl7", "tests/mappers/hl7v2/inputs/*.hl7",
                           "corpora:hl7v2/**/*.hl7", "corpora:hl7v2/**/*.txt", "corpora:real-world/hl7v2/*.hl7"))
    if not out:
        sys.exit("no seeds: set HELIXGATE_TEST_CORPORA")
    return out


def _msh18(rng: random.Random, data: bytes) -> bytes:
    """MSH-18 (the character set) replaced, the rest of the message unchanged."""
    head, sep, rest = data.partition(b"\r" if b"\r" in data else b"\n")
    parts = head.split(b"|")
    while len(parts) < 19:
        parts.append(b"")
    parts[18] = rng.choice(CHARSETS)
    return b"|".join(parts) + sep + rest


def inputs(corpus: list[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        data = rng.choice(corpus)
        for _ in range(rng.randint(1, 4)):
            if rng.randint(0, 15) == 0:
                data = _msh18(rng, data)
            else:
                data = mutate_lines(draw, rng, data, corpus, fields=b"|", inner=rng.choice([b"^", b"~", b"&"]),
                                    delimiters=b"|^~\\&\r\n", copies=(1, 1, 2, 2, 3, 99, 99, 2000, 12000))
        if rng.randint(0, 4) == 0:
            data = damage(draw, rng, data)
        if rng.randint(0, 19) == 0:
            data = b"\x0b" + data + b"\x1c\r"  # MLLP framing left on
        return data

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    fmt = get("hl7v2")
    assert fmt.to_fhir is not None and fmt.split is not None
    corpus = seeds()
    zoned = ConvertOptions(timezone="+01:00")
    plain = ConvertOptions()

    def target(data: bytes) -> None:
        with contextlib.suppress(MappingError):
            parse_batch(data)
        for n, (_, doc) in enumerate(fmt.split(data)):  # as $convert and the CLI do with a batch file
            try:
                conv = fmt.to_fhir(doc, zoned if n % 2 else plain)
            except MappingError:
                continue
            orjson.dumps(conv.bundle)

    for s in corpus[:20]:  # warm the tables before anything is timed
        target(s)
    print(f"{len(corpus)} seeds, baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    stats = run("hl7v2", inputs(corpus), target, (MappingError,), args, "hl7")
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
