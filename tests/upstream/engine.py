"""Test harness for the integration engine: distinct ORU^R01 messages, a blocking MLLP client over TCP, worker
processes (real `helixgate worker` subprocesses that tests may kill) and direct stream appends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import redis

from gateway.mllp.ack import read_header
from gateway.mllp.framing import Frame, Framer, frame
from gateway.workers.streams import INBOUND

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "mappers" / "hl7v2" / "messages" / "01-egfr-snv-somatic.hl7"
# Per message delivered upstream: these resources are its own (the Practitioner, Organization and Device are shared).
OWN = {"Patient": 1, "ServiceRequest": 1, "Specimen": 1, "DiagnosticReport": 1, "Observation": 3, "Provenance": 2}


def unique_message(n: int, tag: str = "T", original_mode: bool = False) -> bytes:
    """Sample 01 with its control id and every business identifier made unique by (tag, n)."""
    data = SAMPLE.read_bytes()
    key = f"{tag}{n:05d}"
    for old, new in ((b"HGT-20250301-0001", f"HGT-{key}"), (b"PAT10001", f"PAT-{key}"), (b"ORD-0001", f"ORD-{key}"),
                     (b"NGS-25-0001", f"NGS-{key}"), (b"SP-0001", f"SP-{key}"), (b"GA-25-0001", f"GA-{key}")):
        data = data.replace(old, new.encode())
    if original_mode:
        data = data.replace(b"|P|2.5.1|||AL|NE", b"|P|2.5.1")
    return data


def segments(ack: bytes) -> dict[str, list[str]]:
    """An ACK's segments by name (the first of each), as fields (index = field number; MSH-1 is the separator)."""
    out: dict[str, list[str]] = {}
    for line in ack.decode("latin-1").split("\r"):
        if not line:
            continue
        parts = line.split("|")
        if parts[0] == "MSH":
            parts = ["MSH", "|", *parts[1:]]
        out.setdefault(parts[0], parts)
    return out


class MllpClient:
    """A blocking MLLP client: `send` writes one framed message (optionally in pieces) and returns the ACK."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.framer = Framer()
        self.pending: list[bytes] = []

    def send_raw(self, data: bytes, piece: int = 0) -> None:
        if piece:
            for i in range(0, len(data), piece):
                self.sock.sendall(data[i:i + piece])
        else:
            self.sock.sendall(data)

    def receive(self) -> bytes:
        while not self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            self.pending += [e.data for e in self.framer.feed(chunk) if isinstance(e, Frame)]
        return self.pending.pop(0)

    def send(self, message: bytes, piece: int = 0) -> bytes:
        self.send_raw(frame(message), piece)
        return self.receive()

    def close(self) -> None:
        self.sock.close()


def enqueue(client: redis.Redis, data: bytes, facility: str = "GENLAB-A", control: str = "") -> str:
    """Append a message to the inbound stream as the MLLP listener does (control id: MSH-10)."""
    header = read_header(data)
    fields = {"data": data, "source": "hl7v2", "via": "test", "received": datetime.now(UTC).isoformat(),
              "facility": facility, "control": control or (header.control_id if header else "")}
    entry = client.xadd(INBOUND, fields)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


class WorkerProcess:
    """`helixgate worker` in a subprocess, with HELIXGATE_* settings from `env`; its log is kept in a file."""

    def __init__(self, env: dict[str, str], name: str, *args: str) -> None:
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"helixgate-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "worker", "--name", name, *args],
                                     cwd=ROOT, env=full_env, stdout=self.log_file, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def kill(self) -> None:
        """SIGKILL: no chance to finish or acknowledge anything."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log_file.close()
