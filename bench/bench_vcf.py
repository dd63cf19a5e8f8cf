"""VCF → FHIR streaming benchmark: records/s and peak RSS, against a floor and peer parsers/converters.

    python bench/bench_vcf.py        # 1M records: helixgate and the floor (peers where importable)
    python bench/bench_vcf.py --peer-python A/bin/python --vcf2fhir-python B/bin/python

A: a venv with `pip install cyvcf2 pysam`; B: one with `pip install vcf2fhir "pandas<2" "numpy<2"` (vcf2fhir 0.1.1
calls DataFrame.append, gone in pandas 2, and cyvcf2 needs numpy 2, so they cannot share a venv).

Generates a synthetic GRCh38 VCF (seeded, so every run reads the same bytes) into a temp directory, then runs
each contender in its own subprocess and reads that child's peak RSS from os.wait4. Contenders:

- floor: read 1 MiB chunks, split lines and tab-separated columns (the least any VCF reader does);
- helixgate parse: iter_lines + parse_record + genotype (the reader alone);
- helixgate convert: `helixgate convert FILE --ndjson -o /dev/null` (reader + FHIR + JSON; plain and gzip);
- cyvcf2 / pysam (htslib): iterate and read GT, AD, DP of the sample (with --peer-python, or if importable);
- vcf2fhir 0.1.1: Converter(...).convert() on the first --vcf2fhir-records records, and helixgate on the same
  file for the ratio (vcf2fhir holds its whole output in memory, so it gets a smaller input).
A contender that cannot run (not installed) shows as failed with its error, and the others still run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMS = [(str(i), n) for i, n in enumerate(
    [248956422, 242193529, 198295559, 190214555, 181538259, 170805979, 159345973, 145138636, 138394717,
     133797422, 135086622, 133275309, 114364328, 107043718, 101991189, 90338345, 83257441, 80373285,
     58617616, 64444167, 46709983, 50818468], 1)] + [("X", 156040895)]


def generate(path: Path, records: int, seed: int = 7) -> None:
    """A single-sample GRCh38 VCF 4.2: SNVs, indels, multi-allelic and phased calls, some no-calls and filters."""
    rnd = random.Random(seed)
    bases = "ACGT"
    per_chrom = max(1, records // len(CHROMS))
    with path.open("w", buffering=1 << 20) as f:
        f.write("##fileformat=VCFv4.2\n##reference=GRCh38\n")
        for c, n in CHROMS:
            f.write(f"##contig=<ID=chr{c},length={n},assembly=GRCh38>\n")
        f.write('##FILTER=<ID=PASS,Description="All filters passed">\n##FILTER=<ID=LowQual,Description="Low">\n'
                '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
                '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
                '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Quality">\n'
                '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">\n'
                '##INFO=<ID=AF,Number=A,Type=Float,Description="Cohort allele frequency">\n'
                "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tSAMPLE1\n")
        written = 0
        for c, _ in CHROMS:
            pos = 10_000
            ps = 0
            for _ in range(per_chrom):
                if written >= records:
                    break
                pos += rnd.randint(20, 400)
                ref = rnd.choice(bases)
                kind = rnd.random()
                if kind < 0.78:
                    alt = rnd.choice([b for b in bases if b != ref])
                elif kind < 0.86:
                    alt = ref + "".join(rnd.choice(bases) for _ in range(rnd.randint(1, 6)))
                elif kind < 0.93:
                    alt = ref
                    ref = ref + "".join(rnd.choice(bases) for _ in range(rnd.randint(1, 6)))
                else:
                    alt = ",".join(rnd.sample([b for b in bases if b != ref], 2))
                nalt = alt.count(",") + 1
                r = rnd.random()
                if nalt == 2:
                    gt = "1/2"
                elif r < 0.04:
                    gt = "./."
                elif r < 0.58:
                    gt = "0/1"
                elif r < 0.78:
                    gt = "1/1"
                else:
                    if rnd.random() < 0.2:
                        ps = pos
                    gt = rnd.choice(["0|1", "1|0"])
                depth = rnd.randint(10, 90)
                ad = [rnd.randint(0, depth) for _ in range(nalt + 1)]
                flt = "LowQual" if rnd.random() < 0.03 else "PASS"
                rid = f"rs{rnd.randint(1, 900_000_000)}" if rnd.random() < 0.4 else "."
                sample = f"{gt}:{','.join(map(str, ad))}:{depth}:{rnd.randint(1, 99)}"
                fmt = "GT:AD:DP:GQ"
                if "|" in gt and ps:
                    fmt += ":PS"
                    sample += f":{ps}"
                f.write(f"chr{c}\t{pos}\t{rid}\t{ref}\t{alt}\t{rnd.randint(20, 999)}\t{flt}\t"
                        f"AF={rnd.random():.3f}\t{fmt}\t{sample}\n")
                written += 1


FLOOR = """
import sys
n = 0
with open(sys.argv[1], "rb") as f:
    rest = b""
    for chunk in iter(lambda: f.read(1 << 20), b""):
        lines = (rest + chunk).split(b"\\n")
        rest = lines.pop()
        for line in lines:
            if line[:1] != b"#":
                line.split(b"\\t")
                n += 1
print(n)
"""

PARSE = """
import sys
from mappers.vcf.parse import genotype, iter_lines, parse_record, read_header
n = 0
with open(sys.argv[1], "rb") as f:
    lines = iter_lines(iter(lambda: f.read(1 << 20), b""))
    header = read_header(lines, None)
    ncols = 9 + len(header.samples)
    for raw in lines:
        rec = parse_record(raw.decode(), n, header, ncols)
        genotype(rec)
        rec.sample("AD"); rec.sample("DP")
        n += 1
print(n)
"""

CYVCF2 = """
import sys
from cyvcf2 import VCF
n = 0
for v in VCF(sys.argv[1]):
    v.genotypes; v.format("AD"); v.format("DP")
    n += 1
print(n)
"""

PYSAM = """
import sys
import pysam
n = 0
for rec in pysam.VariantFile(sys.argv[1]):
    s = rec.samples[0]
    s["GT"]; s.get("AD"); s.get("DP")
    n += 1
print(n)
"""

VCF2FHIR = """
import sys, logging
logging.disable(logging.CRITICAL)
import vcf2fhir
vcf2fhir.Converter(sys.argv[1], "GRCh38", "P1", genomic_source_class="germline").convert(sys.argv[2])
print(sum(1 for l in open(sys.argv[1]) if not l.startswith("#")))
"""


def run(argv: list[str], label: str) -> dict[str, object]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, cwd=ROOT)
    return {"label": label, "seconds": time.perf_counter() - started, "stdout": proc.stdout.decode(),
            "stderr": proc.stderr.decode(), "returncode": proc.returncode}


def measured(argv: list[str], label: str) -> dict[str, object]:
    """Run under a tiny Python wrapper that reports the child's peak RSS (ru_maxrss of that child alone)."""
    wrapper = ("import os, sys, time, json\n"
               "t = time.perf_counter(); pid = os.fork()\n"
               "if pid == 0:\n    os.execvp(sys.argv[1], sys.argv[1:])\n"
               "_, status, ru = os.wait4(pid, 0)\n"
               "print(json.dumps({'seconds': time.perf_counter() - t, 'rss_kb': ru.ru_maxrss, "
               "'status': os.waitstatus_to_exitcode(status)}), file=sys.stderr)\n")
    result = run([sys.executable, "-c", wrapper, *argv], label)
    stats = json.loads(str(result["stderr"]).strip().splitlines()[-1])
    result.update(seconds=stats["seconds"], rss_mb=stats["rss_kb"] / 1024, status=stats["status"])
    return result


def records_of(result: dict[str, object], default: int) -> int:
    lines = str(result["stdout"]).strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].isdigit() else default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--vcf2fhir-records", type=int, default=20_000)
    ap.add_argument("--peer-python", help="a Python with cyvcf2 and pysam installed (default: this one)")
    ap.add_argument("--vcf2fhir-python", help="a Python with vcf2fhir installed (it needs pandas<2, numpy<2)")
    ap.add_argument("--keep", help="write the synthetic VCF here and keep it")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each parser (best counts); conversions run once")
    args = ap.parse_args()
    peer = args.peer_python or sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="helixgate-bench-vcf-"))
    path = Path(args.keep) if args.keep else tmp / "synthetic.vcf"
    t = time.perf_counter()
    generate(path, args.records)
    with path.open("rb") as f:
        args.records = sum(1 for line in f if line[:1] != b"#")
    gz = tmp / "synthetic.vcf.gz"
    with path.open("rb") as src, gzip.open(gz, "wb", compresslevel=4) as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            dst.write(chunk)
    small = tmp / "small.vcf"
    with path.open() as src, small.open("w") as dst:
        n = 0
        for line in src:
            if not line.startswith("#"):
                n += 1
                if n > args.vcf2fhir_records:
                    break
            dst.write(line)
    print(f"# {args.records:,} records, {path.stat().st_size / 2**20:.0f} MiB plain, "
          f"{gz.stat().st_size / 2**20:.0f} MiB gzip (generated in {time.perf_counter() - t:.0f} s); "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} cores", flush=True)
    py = sys.executable
    cli = [py, "-m", "gateway.cli.main", "convert"]
    def best(argv: list[str], label: str) -> dict[str, object]:
        """Fastest of --repeat runs: the VM is shared, and the parsers take seconds, so noise dominates."""
        runs = [measured(argv, label) for _ in range(args.repeat)]
        return min(runs, key=lambda r: float(r["seconds"]) if r["status"] == 0 else float("inf"))

    rows = [
        (best([py, "-c", FLOOR, str(path)], "floor: read + split lines and columns"), args.records),
        (best([py, "-c", PARSE, str(path)], "helixgate parse (iter_lines + parse_record + GT/AD/DP)"),
         args.records),
        (measured([*cli, str(path), "--ndjson", "-o", os.devnull], "helixgate convert → NDJSON, plain VCF"),
         args.records),
        (measured([*cli, str(gz), "--ndjson", "-o", os.devnull], "helixgate convert → NDJSON, gzip VCF"),
         args.records),
    ]
    for code, label in ((CYVCF2, "cyvcf2 (htslib) parse GT/AD/DP"), (PYSAM, "pysam (htslib) parse GT/AD/DP")):
        r = best([peer, "-c", code, str(path)], label)
        rows.append((r, args.records) if r["status"] == 0 else (r, 0))
    small_n = args.vcf2fhir_records
    rows.append((measured([*cli, str(small), "-o", os.devnull], f"helixgate convert → Bundle, {small_n:,} records"),
                 small_n))
    r = measured([args.vcf2fhir_python or peer, "-c", VCF2FHIR, str(small), str(tmp / "v2f.json")],
                 f"vcf2fhir 0.1.1, {small_n:,} records")
    rows.append((r, small_n if r["status"] == 0 else 0))
    print("\n| contender | records | seconds | records/s | peak RSS MB |\n|---|---:|---:|---:|---:|")
    for r, n in rows:
        if r["status"] != 0:
            why = str(r["stderr"]).strip().splitlines()
            print(f"| {r['label']} | – | – | failed: {why[-2] if len(why) > 1 else why} | – |")
            continue
        n = records_of(r, n)
        print(f"| {r['label']} | {n:,} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
