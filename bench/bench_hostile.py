"""The gateway under the hostile inputs of issue 12: for each, the answer (status, seconds), the server's peak RSS
over its idle baseline, and the slowest /healthz answer while the request was in flight. A real `helixgate serve`
on loopback, its embedded cache; one hostile request at a time.

    python bench/bench_hostile.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


CASES: dict[str, Callable[[], tuple[str, bytes, str]]] = {
    "ReDoS body to $validate (Binary.data 'AAAA  '×24 + '!')": redos,
    "gzip bomb VCF (2 GiB inflated) to $convert": gzip_bomb,
    "HL7 v2 of 1.7 M OBX segments to $convert": many_obx,
    "HL7 v2 of 450k NTE segments to $convert": many_nte,
    "extension nested 300 deep to $validate": deep_extension,
}


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
        # warm the validator once, then take the baseline
        httpx.post(f"{base}/fhir/$validate", json={"resourceType": "Patient"}, timeout=120)
        baseline = rss_mb(server.pid)
        print(f"server baseline RSS {baseline:.0f} MB (validator loaded)\n")
        print("| hostile input | body | answer | seconds | peak RSS over baseline | slowest /healthz |")
        print("|---|---:|---|---:|---:|---:|")
        for name, make in CASES.items():
            path, body, media = make()
            result: dict = {}

            def send(path: str = path, body: bytes = body, media: str = media, result: dict = result) -> None:
                started = time.perf_counter()
                try:
                    r = httpx.post(f"{base}{path}", content=body, headers={"Content-Type": media}, timeout=300)
                    result["status"] = r.status_code
                except httpx.HTTPError as e:
                    result["status"] = type(e).__name__
                result["seconds"] = time.perf_counter() - started

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
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
