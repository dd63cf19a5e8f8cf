"""eHDSI Patient Summary CDA → IPS document, per document, beside the China CDA mapper on a China document, in one
process on one core; and python-fhir-converter's C-CDA → FHIR (the issue's named peer) on a C-CDA document of similar
size, run in its own virtual environment (its pinned dependencies — lxml 5.3, typing_extensions 4.12 — would
downgrade helixgate's), so in another process, also one core.

Rows: documents/s and KB/s of the source for
- ehdsi-cda: PS_L3_W6.xml (the eHDSI Critical Test Data document, every PS section) and the largest PS sample;
- cda-cn: examples/cn-lab-record.utf8.xml (WS/T 500 C0007);
- the same eHDSI documents converted and then validated against IPS 2.0.0 (what the gateway does per request);
- python-fhir-converter 0.3.0 ccda_to_fhir on a C-CDA document of similar size (--peer-venv PATH, default
  /tmp/pfc-venv; left out, saying why, when that venv does not exist).

    python bench/bench_ehdsi.py [--seconds 2] [--peer-venv /tmp/pfc-venv]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mappers.cda_cn import to_fhir as cn_to_fhir  # noqa: E402
from mappers.ehdsi_cda.to_fhir import to_fhir as ehdsi_to_fhir  # noqa: E402
from tests.corpora import location  # noqa: E402

PEER = """
import sys, time
from fhir_converter.renderers import CcdaRenderer
data = open(sys.argv[1], encoding="utf-8").read()
renderer = CcdaRenderer()
renderer.render_fhir_string("CCD", data)  # warm: templates compiled
n, start = 0, time.perf_counter()
while time.perf_counter() - start < float(sys.argv[2]):
    renderer.render_fhir_string("CCD", data)
    n += 1
print(n / (time.perf_counter() - start))
"""


def rate(fn: Callable[[], object], seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--peer-venv", default="/tmp/pfc-venv")
    args = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, the same for every row
    eu = location("ehdsi-cda")
    summaries = [p for p in eu.glob("*.xml") if "-eP-" not in p.name]
    largest = max(summaries, key=lambda p: p.stat().st_size)
    docs = [("ehdsi-cda", eu / "PS_L3_W6.xml", ehdsi_to_fhir)]
    if largest.name != "PS_L3_W6.xml":
        docs.append(("ehdsi-cda", largest, ehdsi_to_fhir))
    docs.append(("cda-cn", ROOT / "examples" / "cn-lab-record.utf8.xml", cn_to_fhir))
    from profiles.context import default_validator

    validator = default_validator()
    rows = []
    base = None
    for name, path, fn in docs:
        data = path.read_bytes()
        r = rate(lambda data=data, fn=fn: fn(data), args.seconds)
        base = base or r
        rows.append((f"{name} {path.name}", len(data), r))
    for name, path, fn in docs[:-1]:
        data = path.read_bytes()
        r = rate(lambda data=data, fn=fn: validator.outcome(fn(data).bundle, ()), args.seconds)
        rows.append((f"{name} {path.name} + IPS validation", len(data), r))
    ccda = location("ccda") / "C-CDA_R2-1_CCD.xml.ccda"
    python = Path(args.peer_venv) / "bin" / "python"
    if python.exists() and ccda.exists():
        out = subprocess.run(["taskset", "-c", str(min(os.sched_getaffinity(0))), str(python), "-c", PEER,
                              str(ccda), str(args.seconds)], capture_output=True, text=True, timeout=300)
        if out.returncode == 0:
            rows.append((f"python-fhir-converter 0.3.0 {ccda.name} (own process)", ccda.stat().st_size,
                         float(out.stdout.strip().splitlines()[-1])))
        else:
            print(f"python-fhir-converter failed: {out.stderr.strip().splitlines()[-1:]}")
    else:
        print(f"python-fhir-converter left out: no venv at {args.peer_venv} (pip install python-fhir-converter "
              "there) or no C-CDA corpus")
    print(f"{'document':72} {'KB':>6} {'docs/s':>8} {'KB/s':>8} {'x first':>8}")
    for what, size, r in rows:
        print(f"{what:72} {size / 1024:6.0f} {r:8.1f} {r * size / 1024:8.0f} {r / base:8.2f}")


if __name__ == "__main__":
    main()
