"""Parse throughput of helixgate's ER7 parser against python-hl7 and hl7apy, plus a quick feature probe.

Inputs: every ../shared/corpora/hl7v2/**/*.hl7 file (read as bytes) and a few genetic ORU^R01 messages built below
(UTF-8, GB 18030 and ISO 8859-1, one with 60 OBX). Each library parses all of them repeatedly for at least
--seconds seconds (after one warm-up pass that also records which messages it fails on):

  helixgate   parse_message(bytes), then Segment.get(n) on every field of every segment (fields are split lazily,
              so this is the fair comparison); a parse-only row is shown too.
  python-hl7  hl7.parse(str) on text pre-decoded by this script with CR terminators (it needs that).
  hl7apy      parser.parse_message(str, find_groups=False), same pre-decoded text; failures are counted.

Run from the repository root:  python bench/bench_parse.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import hl7  # noqa: E402
from hl7apy import parser as hl7apy_parser  # noqa: E402

from mappers.hl7v2.parse import parse_message  # noqa: E402

CORPORA = REPO / ".." / "shared" / "corpora" / "hl7v2"

# --- inline genetic ORU^R01 messages --------------------------------------------------------------------------------

_VARIANTS = [
    ("BRCA1", "1100", "NM_007294.3:c.5266dupC", "NP_009225.1:p.Gln1756fs", "NC_000017.10:g.41209079dup", "LA6668-3",
     "Pathogenic"),
    ("CFTR", "1884", "NM_000492.3:c.1521_1523delCTT", "NP_000483.3:p.Phe508del",
     "NC_000007.13:g.117199646_117199648del", "LA6668-3", "Pathogenic"),
    ("TP53", "11998", "NM_000546.5:c.215C>G", "NP_000537.3:p.Pro72Arg", "NC_000017.10:g.7579472G>C", "LA6675-8",
     "Benign"),
]


def _oru(charset: str, name: str, obx_sets: int, control: str) -> str:
    msh = (f"MSH|^~\\&|GENLAB|GENLAB^2.16.840.1.113883.3.999^ISO|EHR|HOSP|20240315103000+0100||ORU^R01^ORU_R01|"
           f"{control}|P|2.5.1|||NE|NE|CHN|{charset}")
    lines = [msh,
             f"PID|1||PAT-001^^^HOSP^MR~123-45-6789^^^SSA^SS||{name}||19800101|F|||1 Main St^^Springfield^IL^62701",
             "ORC|RE|ORD-1|FIL-1||CM",
             "OBR|1|ORD-1|FIL-1|81247-9^Master HL7 genetic variant reporting panel^LN|||20240310||||||||"
             "BLD^Blood||||||||20240315|||F",
             "OBX|1|CWE|53577-3^Reason for study^LN||Z15.01^Genetic susceptibility to breast cancer^I10C||||||F",
             "NTE|1||Indication: family history \\T\\ early onset.\\.br\\Method: NGS panel \\S\\ MLPA.\\.sp 2\\"
             "Ref genome \\F\\ GRCh37; see \\X41\\-list."]
    n = 2
    for k in range(obx_sets):
        gene, hgnc, c_dot, p_dot, g_dot, sig_code, sig = _VARIANTS[k % len(_VARIANTS)]
        sub = f"{k + 1}"
        lines += [
            f"OBX|{n}|CWE|48018-6^Gene studied^LN|{sub}|{hgnc}^{gene}^HGNC||||||F",
            f"OBX|{n + 1}|CWE|81290-9^Genomic DNA change (gHGVS)^LN|{sub}|{g_dot}^^HGVS||||||F",
            f"OBX|{n + 2}|CWE|48004-6^DNA change (c.HGVS)^LN|{sub}|{c_dot}^^HGVS||||||F",
            f"OBX|{n + 3}|CWE|48005-3^Amino acid change (pHGVS)^LN|{sub}|{p_dot}^^HGVS||||||F",
            f"OBX|{n + 4}|CWE|53037-8^Genetic variation clinical significance^LN|{sub}|{sig_code}^{sig}^LN||||||F",
            f"OBX|{n + 5}|NM|81258-6^Sample variant allelic frequency^LN|{sub}|0.48|1^^UCUM|||||F",
        ]
        n += 6
    return "\r".join(lines) + "\r"


def inline_messages() -> list[tuple[str, bytes, str]]:
    """(name, bytes, codec) of the built-in genetic ORU^R01 messages."""
    return [
        ("inline/oru-genetic-utf8", _oru("UNICODE UTF-8", "Müller^Zoë", 3, "G1").encode("utf-8"), "utf-8"),
        ("inline/oru-genetic-gb18030", _oru("GB 18030-2000", "张三億^乛乗", 3, "G2").encode("gb18030"), "gb18030"),
        ("inline/oru-genetic-8859-1", _oru("8859/1", "Müller^Jürgen", 1, "G3").encode("latin-1"), "latin-1"),
        ("inline/oru-genetic-60-obx", _oru("", "DOE^JANE", 10, "G4").encode("ascii"), "ascii"),
    ]


def load() -> list[tuple[str, bytes, str]]:
    """(name, raw bytes, text with CR terminators) for every benchmark message."""
    files = sorted(CORPORA.glob("**/*.hl7"))
    if not files:
        sys.exit(f"no corpus files under {CORPORA}")
    out = []
    for path in files:
        data = path.read_bytes()
        out.append((f"{path.parent.name}/{path.name}", data, _cr_text(data.decode("utf-8-sig"))))
    for name, data, codec in inline_messages():
        out.append((name, data, _cr_text(data.decode(codec))))
    return out


def _cr_text(text: str) -> str:
    return text.replace("\r\n", "\r").replace("\n", "\r")


# --- the contenders -------------------------------------------------------------------------------------------------


def ours_touch(data: bytes, _text: str) -> None:
    msg = parse_message(data)
    for seg in msg.segments:
        for n in range(1, len(seg.fields)):
            seg.get(n)


def ours_parse(data: bytes, _text: str) -> None:
    parse_message(data)


def python_hl7(_data: bytes, text: str) -> None:
    hl7.parse(text)


def hl7apy(_data: bytes, text: str) -> None:
    hl7apy_parser.parse_message(text, find_groups=False)


CONTENDERS: list[tuple[str, Callable[[bytes, str], None]]] = [
    ("helixgate parse_message + get() every field", ours_touch),
    ("helixgate parse_message only (lazy split)", ours_parse),
    (f"python-hl7 {getattr(hl7, '__version__', '')} hl7.parse".replace("  ", " "), python_hl7),
    ("hl7apy 1.3.5 parse_message(find_groups=False)", hl7apy),
]


def run(fn: Callable[[bytes, str], None], messages: list[tuple[str, bytes, str]], seconds: float
        ) -> tuple[float, int, list[tuple[str, str]]]:
    """Messages per second over the messages `fn` accepts, passes made, and the failures of the warm-up pass."""
    ok, failures = [], []
    for name, data, text in messages:
        try:
            fn(data, text)
        except Exception as exc:  # counting any library's failure is the point
            failures.append((name, f"{type(exc).__name__}: {str(exc)[:90]}"))
        else:
            ok.append((data, text))
    passes, start = 0, time.perf_counter()
    while True:
        for data, text in ok:
            fn(data, text)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return passes * len(ok) / elapsed, passes, failures


# --- feature probe ----------------------------------------------------------------------------------------------------

GB_MSG = ("MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5.1||||||GB 18030-2000\r"
          "PID|1||x||张三^李四\r"
          "OBX|1|FT|c||\\XD5C5C8FD\\ a\\S\\b\\T\\c\\.br\\d\r")


def _try(fn: Callable[[], object]) -> str:
    try:
        return repr(fn())
    except Exception as exc:
        return f"{type(exc).__name__}"


def probe() -> list[tuple[str, str, str, str]]:
    gb = GB_MSG.encode("gb18030")
    lf = GB_MSG.replace("\r", "\n")
    mllp = "\x0b" + GB_MSG + "\x1c\r"

    def h_seg(m: object, name: str) -> object:
        return m.segment(name)  # type: ignore[attr-defined]

    def apy_value(m: object, path: str) -> object:
        node = m
        for part in path.split("."):
            node = getattr(node, part)
        return node.value  # type: ignore[attr-defined]

    ours = parse_message(gb)
    obx = ours.first("OBX")
    rows = [
        ("GB 18030 bytes, MSH-18 = GB 18030-2000 → PID-5.1 (python-hl7 only with an explicit encoding= argument)",
         repr(ours.first("PID").get(5)),  # type: ignore[union-attr]
         _try(lambda: str(h_seg(hl7.parse(gb), "PID")[5][0][0])),
         _try(lambda: apy_value(hl7apy_parser.parse_message(gb, find_groups=False), "pid.pid_5.xpn_1"))),
        ("\\XD5C5C8FD\\ in a GB 18030 message (should be 张三)",
         repr(obx.get(5).split(" ")[0]),  # type: ignore[union-attr]
         _try(lambda: (lambda m: m.unescape(str(h_seg(m, "OBX")[5])).split(" ")[0])(hl7.parse(GB_MSG)))
         + " via explicit Message.unescape()",
         _try(lambda: apy_value(hl7apy_parser.parse_message(GB_MSG, find_groups=False), "obx.obx_5").split(" ")[0])
         + " (.value; no unescape API)"),
        ("a\\S\\b\\T\\c\\.br\\d (should be a^b&c, line break, d)",
         repr(obx.get(5).split(" ", 1)[1]),  # type: ignore[union-attr]
         _try(lambda: (lambda m: m.unescape(str(h_seg(m, "OBX")[5])).split(" ", 1)[1])(hl7.parse(GB_MSG)))
         + " via explicit Message.unescape(); hl7.parse itself leaves it escaped",
         _try(lambda: apy_value(hl7apy_parser.parse_message(GB_MSG, find_groups=False), "obx.obx_5").split(" ", 1)[1])
         + " (.value)"),
        ("LF segment terminators → number of segments (3)",
         repr(len(parse_message(lf).segments)),
         _try(lambda: len(hl7.parse(lf))),
         _try(lambda: len(hl7apy_parser.parse_message(lf, find_groups=False).children))),
        ("MLLP frame 0x0B … 0x1C 0x0D → MSH-3",
         repr(parse_message(mllp).msh.get(3)),
         _try(lambda: str(h_seg(hl7.parse(mllp), "MSH")[3])),
         _try(lambda: apy_value(hl7apy_parser.parse_message(mllp, find_groups=False), "msh.msh_3"))),
        ("UTF-8 BOM before MSH → MSH-3",
         repr(parse_message("\ufeff" + GB_MSG).msh.get(3)),
         _try(lambda: str(h_seg(hl7.parse("\ufeff" + GB_MSG), "MSH")[3])),
         _try(lambda: apy_value(hl7apy_parser.parse_message("\ufeff" + GB_MSG, find_groups=False), "msh.msh_3"))),
    ]
    return rows


# --- main -------------------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="minimum timed seconds per library (default 8)")
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    messages = load()
    total_bytes = sum(len(d) for _, d, _ in messages)
    print(f"{len(messages)} messages ({total_bytes / 1024:.0f} KiB): "
          f"{sum(1 for n, _, _ in messages if not n.startswith('inline/'))} corpus files + "
          f"{sum(1 for n, _, _ in messages if n.startswith('inline/'))} inline genetic ORU^R01; "
          f"Python {platform.python_version()} on {platform.machine()}, >= {args.seconds:g} s per library\n")

    results = []
    for label, fn in CONTENDERS:
        rate, passes, failures = run(fn, messages, args.seconds)
        results.append((label, rate, passes, failures))
    base = results[0][1]
    print("| Parser | Messages/s | Ratio to helixgate (parse + get) | Passes | Failed messages |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, rate, passes, failures in results:
        print(f"| {label} | {rate:,.0f} | {rate / base:.3f}× | {passes} | {len(failures)} of {len(messages)} |")

    print("\nFailures (warm-up pass):\n")
    for label, _, _, failures in results:
        if not failures:
            print(f"- {label}: none")
            continue
        print(f"- {label}:")
        for name, err in failures:
            print(f"  - `{name}`: {err}")

    print("\nFeature probe (values actually returned by each library):\n")
    print("| Input | helixgate | python-hl7 | hl7apy |")
    print("| --- | --- | --- | --- |")
    for row in probe():
        print("| " + " | ".join(cell.replace("|", "\\|").replace("\n", "\\n") for cell in row) + " |")


if __name__ == "__main__":
    main()
