"""The gateway under the hostile inputs of issue 12: for each, the answer (status, seconds), the server's peak RSS
over its idle baseline, and the slowest /healthz answer while the request was in flight. A real `helixgate serve`
on loopback, its embedded cache; one hostile request at a time, sent by curl (another process), /healthz polled
from this one.

    python bench/bench_hostile.py
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def rss_mb(pid: int) -> float:
    """The resident set of `pid` and its descendants (the server and its sandbox processes)."""
    total = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return total + sum(rss_mb(c) for c in _children(pid))


def redos() -> tuple[str, bytes, str]:
    data = "AAAA  " * 24 + "!"
    return "/fhir/$validate", orjson.dumps({"resourceType": "Binary", "contentType": "text/plain", "data": data}), \
        "application/fhir+json"


def gzip_bomb() -> tuple[str, bytes, str]:
    """2 GiB of records once inflated, ~2 MB sent."""
    head = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
    line = b"1\t100\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n"
    chunk = line * ((1 << 20) // len(line))
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    parts = [z.compress(head)] + [z.compress(chunk) for _ in range(2048)] + [z.flush()]
    return "/fhir/$convert", b"".join(parts), "text/vcf"


def many_obx() -> tuple[str, bytes, str]:
    head = b"MSH|^~\\&|A|B|C|D|20250101120000+0000||ORU^R01|X1|P|2.5.1\rPID|1||P1^^^H&1.2.3&ISO^MR\rOBR|1||F1|1^T^L\r"
    return "/fhir/$convert", head + b"OBX|1|ST|1^x^L||v||||||F\r" * 1_700_000, "x-application/hl7-v2+er7"


def many_nte() -> tuple[str, bytes, str]:
    head = b"MSH|^~\\&|A|B|C|D|20250101120000+0000||ORU^R01|X2|P|2.5.1\rPID|1||P1^^^H&1.2.3&ISO^MR\rOBR|1||F1|1^T^L\r"
    body = head + b"OBX|1|ST|1^x^L||v||||||F\r" + b"NTE|1||" + b"n" * 40 + b"\r"
    return "/fhir/$convert", body + b"NTE|1||note\r" * 450_000, "x-application/hl7-v2+er7"


def deep_extension() -> tuple[str, bytes, str]:
    ext: dict = {"url": "http://x/e", "valueString": "v"}
    for _ in range(300):
        ext = {"url": "http://x/e", "extension": [ext]}
    body = json.dumps({"resourceType": "Patient", "extension": [ext]}).encode()  # deeper than orjson writes
    return "/fhir/$validate", body, "application/fhir+json"


def costly_structure_definition() -> tuple[str, bytes, str]:
    """A StructureDefinition whose differential is repeated 50 times (35 s of invariant checks unbudgeted)."""
    from profiles.packages import cache_dir

    path = cache_dir() / "hl7.fhir.uv.genomics-reporting#3.0.0" / "package" / "StructureDefinition-variant.json"
    sd = orjson.loads(path.read_bytes())
    sd["differential"] = [sd["differential"]] * 50
    return "/fhir/$validate", orjson.dumps(sd), "application/fhir+json"


def many_messages() -> tuple[str, bytes, str]:
    """A batch of 24,001 one-segment HL7 v2 messages (9 s of CPU in one request unbudgeted)."""
    one = b"MSH|^~\\&|A|B|C|D|20250101120000+0000||ORU^R01|X%d|P|2.5.1\r"
    return "/fhir/$convert", b"".join(one % i for i in range(24_001)), "x-application/hl7-v2+er7"


CASES: dict[str, Callable[[], tuple[str, bytes, str]]] = {
    "ReDoS body to $validate (Binary.data 'AAAA  '×24 + '!')": redos,
    "gzip bomb VCF (2 GiB inflated) to $convert": gzip_bomb,
    "HL7 v2 of 1.7 M OBX segments to $convert": many_obx,
    "HL7 v2 of 450k NTE segments to $convert": many_nte,
    "extension nested 300 deep to $validate": deep_extension,
    "StructureDefinition with its differential ×50 to $validate": costly_structure_definition,
    "HL7 v2 batch of 24,001 messages to $convert": many_messages,
}


def healthz_alone(base: str, seconds: float = 5.0) -> float:
    """The slowest /healthz over `seconds` with nothing else in flight: what the machine's load alone costs."""
    slowest, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        httpx.get(f"{base}/healthz", timeout=30)
        slowest = max(slowest, time.perf_counter() - started)
        time.sleep(0.05)
    return slowest


def settle(base: str, pid: int) -> None:
    """Both sandbox processes started and idle: two validations at once answered, then the resident set steady."""
    def one() -> None:
        httpx.post(f"{base}/fhir/$validate", json={"resourceType": "Basic", "code": {"text": "x"}}, timeout=300)

    pair = [threading.Thread(target=one) for _ in range(2)]
    for t in pair:
        t.start()
    for t in pair:
        t.join()
    last, steady = rss_mb(pid), 0
    while steady < 4:
        time.sleep(0.5)
        now = rss_mb(pid)
        steady = steady + 1 if abs(now - last) < 5 else 0
        last = now


def main() -> None:
    port = free_port()
    env = {**os.environ, "HELIXGATE_PORT": str(port), "HELIXGATE_MAX_REQUEST_BYTES": str(64 << 20)}
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        settle(base, server.pid)  # the sandbox processes started, then the baseline
        baseline = rss_mb(server.pid)
        print(f"server and sandbox processes' baseline RSS {baseline:.0f} MB (validators loaded)\n")
        print("| hostile input | body | answer | seconds | peak RSS over baseline | slowest /healthz |")
        print("|---|---:|---|---:|---:|---:|")
        print(f"| (none: /healthz alone for 5 s, the control) | | | | | {healthz_alone(base) * 1000:.0f} ms |")
        for name, make in CASES.items():
            path, body, media = make()
            result: dict = {}

            def send(path: str = path, body: bytes = body, media: str = media, result: dict = result) -> None:
                # The body goes out from another process (curl), so that sending it costs this process nothing:
                # the /healthz times below are the server's alone.
                with tempfile.NamedTemporaryFile(suffix=".body") as f:
                    f.write(body)
                    f.flush()
                    started = time.perf_counter()
                    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "300",
                                          "-H", f"Content-Type: {media}", "--data-binary", f"@{f.name}",
                                          f"{base}{path}"], capture_output=True, text=True)
                    result["seconds"] = time.perf_counter() - started
                result["status"] = out.stdout.strip() or f"curl exit {out.returncode}"

            t = threading.Thread(target=send)
            t.start()
            peak, slowest = 0.0, 0.0
            while t.is_alive():
                peak = max(peak, rss_mb(server.pid))
                started = time.perf_counter()
                httpx.get(f"{base}/healthz", timeout=30)
                slowest = max(slowest, time.perf_counter() - started)
                time.sleep(0.05)
            t.join()
            print(f"| {name} | {len(body) / 1e6:.1f} MB | {result['status']} | {result['seconds']:.2f} | "
                  f"{max(peak - baseline, 0):.0f} MB | {slowest * 1000:.0f} ms |")
            settle(base, server.pid)  # a process stopped over budget is replaced: waited for outside the figures
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
