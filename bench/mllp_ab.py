"""MLLP throughput of two checkouts side by side, for before/after comparisons on a noisy machine.

    python bench/mllp_ab.py BEFORE_DIR AFTER_DIR [--slice 4] [--rounds 10] [--connections 32] [--processes 1]

Both trees' `helixgate serve` run at once on one redis-server (AOF, appendfsync everysec); the MLLP load generator
of bench_engine.py (its `--mllp-client` mode) alternates between them in short slices, in alternating order, so
whatever else loads the machine hits both alike. Prints the median ACKed msgs/s and the server CPU per message of
each side. A tree is a checkout or an export (`git archive REV | tar -x -C DIR`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.bench_engine import cpu_seconds, free_port, wait_port  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--slice", type=float, default=4.0, help="seconds per slice")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--processes", type=int, default=1, help="helixgate serve --workers")
    args = p.parse_args()
    rport, work = free_port(), tempfile.mkdtemp(prefix="helixgate-ab-redis-")
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                              "yes", "--appendfsync", "everysec", "--dir", work], stdout=subprocess.DEVNULL)
    wait_port(rport)
    env = {**os.environ, "HELIXGATE_REDIS_URL": f"redis://127.0.0.1:{rport}/0"}
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    rows: dict[str, list[tuple[float, float, int]]] = {"before": [], "after": []}
    try:
        for side, tree in (("before", args.before), ("after", args.after)):
            port, mllp = free_port(), free_port()
            proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port),
                                     "--mllp-port", str(mllp), "--log-level", "warning", "--workers",
                                     str(args.processes)], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            servers[side] = (proc, mllp)
        for _, mllp in servers.values():
            wait_port(mllp)
        time.sleep(3)  # every process has started serving
        for n in range(args.rounds):
            for side in ("before", "after") if n % 2 == 0 else ("after", "before"):
                proc, mllp = servers[side]
                cpu = cpu_seconds([proc.pid])
                out = subprocess.run([sys.executable, str(HERE / "bench_engine.py"), "--mllp-client", str(mllp),
                                      str(args.connections), str(args.slice)], capture_output=True,
                                     timeout=args.slice + 60)
                used = cpu_seconds([proc.pid]) - cpu
                result = json.loads(out.stdout)
                rows[side].append((result["rate"], used / max(1, result["acked"]) * 1e6, result["refused"]))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(20)
        redis.terminate()
        redis.wait(10)
    for side, got in rows.items():
        print(f"{side}: median {statistics.median(r[0] for r in got):,.0f} msgs/s ACKed "
              f"(slices {', '.join(f'{r[0]:,.0f}' for r in got)}), server CPU "
              f"{statistics.median(r[1] for r in got):.0f} µs/message, not AA: {sum(r[2] for r in got)}")


if __name__ == "__main__":
    main()
