"""Hostile MLLP peers against the real listener over TCP with a real Redis: slow and silent connections, one peer
holding many connections, truncated and misspelled messages, a message of 1.7 M segments, and a second
`helixgate serve` started on ports that are taken."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from gateway.mllp.framing import frame
from gateway.settings import Settings
from gateway.workers.streams import INBOUND
from tests.conftest import ROOT, RedisServer, free_port
from tests.gateway.test_mllp import Listener
from tests.upstream.engine import MllpClient, segments, unique_message
from tests.upstream.fixtures import wait_for

DEFAULTS = Settings()
ATTACKER = "127.0.0.2"  # loopback too (127/8): a peer address other than the real sender's 127.0.0.1


@pytest.fixture()
def stream(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(INBOUND)
    yield client
    client.delete(INBOUND)
    client.close()


def _defaults(**override: object) -> dict[str, object]:
    """The listener as `helixgate serve` configures it by default."""
    options: dict[str, object] = {
        "max_connections": DEFAULTS.mllp_max_connections,
        "max_connections_per_peer": DEFAULTS.mllp_max_connections_per_peer,
        "max_segments": DEFAULTS.mllp_max_segments, "idle_timeout": DEFAULTS.mllp_idle_timeout_ms / 1000,
        "read_timeout": DEFAULTS.mllp_read_timeout_ms / 1000}
    return {**options, **override}


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the listener has closed `sock` (EOF or reset), without blocking."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_a_truncated_or_misspelled_oru_gets_ae_and_is_not_enqueued(redis_server: RedisServer, stream) -> None:
    listener = Listener(redis_server.url, **_defaults())
    client = MllpClient(listener.port)
    try:
        msg = unique_message(1, original_mode=True)
        cut = segments(client.send(msg[:300]))
        assert cut["MSA"][1:3] == ["AE", "HGT-T00001"] and "no OBR" in cut["MSA"][3]
        assert cut["ERR"][2] == "OBR^1" and cut["ERR"][3].startswith("100^")
        typo = segments(client.send(msg.replace(b"\rOBX|1|", b"\rOXB|1|")))
        assert typo["MSA"][1] == "AE" and typo["ERR"][2] == "OXB^1" and "misspelled" in typo["MSA"][3]
        assert stream.xlen(INBOUND) == 0
        assert segments(client.send(msg))["MSA"][1] == "AA"
        assert stream.xlen(INBOUND) == 1
    finally:
        client.close()
        listener.close()


def test_110_slow_connections_from_one_peer_do_not_lock_out_other_senders(redis_server: RedisServer, stream) -> None:
    """The reproducer: 110 connections sending 1 byte/s used to take all 100 slots for as long as they lasted."""
    listener = Listener(redis_server.url, **_defaults())
    slow: list[socket.socket] = []
    try:
        for _ in range(110):
            s = socket.create_connection(("127.0.0.1", listener.port), timeout=5, source_address=(ATTACKER, 0))
            slow.append(s)
        payload = frame(unique_message(99, original_mode=True))
        client = MllpClient(listener.port)
        latencies = []
        for second in range(4):  # bounded: 4 rounds of one byte per connection
            for s in slow:
                with contextlib.suppress(OSError):  # turned away by the per-peer cap
                    s.send(payload[second:second + 1])
            started = time.monotonic()
            ack = segments(client.send(unique_message(second, original_mode=True)))
            latencies.append(time.monotonic() - started)
            assert ack["MSA"][1] == "AA"
            time.sleep(1.0)
        client.close()
        assert max(latencies) < 1.0, latencies
        stats = listener.server.stats
        assert stats["turned_away_peer"] == 110 - DEFAULTS.mllp_max_connections_per_peer
        assert stats["turned_away"] == 0  # the global cap was never reached
        assert stream.xlen(INBOUND) == 4
    finally:
        for s in slow:
            s.close()
        listener.close()


def test_trickling_silent_and_junk_sending_connections_are_closed_by_their_timeouts(
        redis_server: RedisServer, stream) -> None:
    listener = Listener(redis_server.url, **_defaults(read_timeout=1.0, idle_timeout=1.5))
    try:
        def connect() -> socket.socket:
            return socket.create_connection(("127.0.0.1", listener.port), timeout=5)

        trickle, silent, junk = connect(), connect(), connect()
        busy = MllpClient(listener.port)  # a real sender: a message every 0.4 s keeps it open
        payload = frame(unique_message(50, original_mode=True))
        opened = time.monotonic()
        closed: dict[str, float] = {}
        n = 0
        while len(closed) < 3 and time.monotonic() - opened < 6:
            if "trickle" not in closed:
                with contextlib.suppress(OSError):
                    trickle.send(payload[n % len(payload):n % len(payload) + 1])
            if "junk" not in closed:
                with contextlib.suppress(OSError):
                    junk.send(b"x")
            if n % 2 == 0:
                assert segments(busy.send(unique_message(n, original_mode=True)))["MSA"][1] == "AA"
            for name, s in (("trickle", trickle), ("silent", silent), ("junk", junk)):
                if name not in closed and _closed_by_peer(s):
                    closed[name] = time.monotonic() - opened
            n += 1
            time.sleep(0.2)
        assert set(closed) == {"trickle", "silent", "junk"}, closed
        assert 0.9 <= closed["trickle"] < 2.5 and 0.9 <= closed["junk"] < 2.5  # read timeout 1 s
        assert 1.4 <= closed["silent"] < 3.0  # idle timeout 1.5 s
        assert segments(busy.send(unique_message(999, original_mode=True)))["MSA"][1] == "AA"  # still open
        busy.close()
        assert listener.server.stats["timed_out"] == 3
        for s in (trickle, silent, junk):
            s.close()
    finally:
        listener.close()


def test_a_message_of_1_7_million_segments_gets_ar_and_other_senders_go_on(redis_server: RedisServer,
                                                                          stream) -> None:
    """The reproducer: 10 MB of 1.7 M OBX segments was ACKed AA (and became a poison message for the workers)."""
    listener = Listener(redis_server.url, **_defaults())
    poison = unique_message(1, original_mode=True) + b"OBX|1\r" * 1_700_000
    assert 10_000_000 < len(poison) < DEFAULTS.mllp_max_message_bytes
    big, small = MllpClient(listener.port, timeout=30), MllpClient(listener.port)
    answer: list[tuple[bytes, float]] = []
    try:
        def send_big() -> None:
            started = time.monotonic()
            answer.append((big.send(poison, piece=1 << 20), time.monotonic() - started))

        sender = threading.Thread(target=send_big)
        sender.start()
        latencies = []
        while sender.is_alive() and len(latencies) < 100:
            started = time.monotonic()
            assert segments(small.send(unique_message(len(latencies) + 2, original_mode=True)))["MSA"][1] == "AA"
            latencies.append(time.monotonic() - started)
        sender.join(30)
        (ack, took), = answer
        nak = segments(ack)
        assert nak["MSA"][1:3] == ["AR", "HGT-T00001"] and "HELIXGATE_MLLP_MAX_SEGMENTS" in nak["MSA"][3]
        assert took < 5
        assert max(latencies) < 1.0, latencies
        assert all(f[b"control"] != b"HGT-T00001" for _, f in stream.xrange(INBOUND))
    finally:
        big.close()
        small.close()
        listener.close()


def _serve(port: int, mllp_port: int, redis_url: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HELIXGATE_REDIS_URL": redis_url}
    return subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--mllp-port",
                             str(mllp_port), "--log-level", "warning", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_second_serve_on_a_taken_port_starts_nothing_and_takes_no_traffic(redis_server: RedisServer,
                                                                           stream) -> None:
    """The reproducer: a second `helixgate serve` on the same MLLP port joined it (SO_REUSEPORT) and took half of
    the messages into its own Redis while its HTTP port had failed to bind."""
    port, mllp = free_port(), free_port()
    first = _serve(port, mllp, redis_server.url, "--workers", "2")
    try:
        wait_for(lambda: _listening(mllp) and _listening(port), 30, what="the first gateway")
        other_redis = redis_server.url.rsplit("/", 1)[0] + "/1"
        other_http, other_mllp = free_port(), free_port()
        for args, named in (((other_http, mllp), f"MLLP on 127.0.0.1:{mllp}"),
                            ((port, other_mllp), f"HTTP on 127.0.0.1:{port}")):
            second = _serve(*args, other_redis)
            out, _ = second.communicate(timeout=30)
            assert second.returncode == 1, out
            assert f"cannot listen for {named}" in out and "nothing was started" in out
        assert not _listening(other_http) and not _listening(other_mllp)
        for n in range(20):  # every message reaches the first gateway's stream
            client = MllpClient(mllp)
            assert segments(client.send(unique_message(n, original_mode=True)))["MSA"][1] == "AA"
            client.close()
        assert stream.xlen(INBOUND) == 20
        assert redis.Redis.from_url(other_redis).xlen(INBOUND) == 0
    finally:
        first.terminate()
        first.communicate(timeout=30)


def test_unfinished_messages_over_all_connections_are_held_to_the_buffer_cap(redis_server: RedisServer,
                                                                            stream) -> None:
    """Three senders each hold 600 KB of an unfinished message; the cap is 1 MB over all connections: the later
    ones are held back (their senders' TCP windows fill), the listener holds no more than the cap and the largest
    message, and as messages end the others go on: every message is ACKed AA."""
    cap = 1 << 20
    listener = Listener(redis_server.url, **_defaults(max_message_bytes=cap, max_buffered_bytes=cap))
    msg = unique_message(1, original_mode=True)
    nte = b"NTE|1||" + b"n" * 1000 + b"\r"
    body = msg + nte * 600  # ~ 600 KB: fits the 1 MB message limit, two do not fit the buffer cap
    socks = [socket.create_connection(("127.0.0.1", listener.port)) for _ in range(3)]
    peak = 0
    try:
        for s in socks:
            s.settimeout(30)
            framed = frame(body)
            s.sendall(framed[:-2])  # all but the end of the frame: unfinished
            time.sleep(0.3)
            peak = max(peak, listener.server.buffered)
        assert listener.server.stats["held_back"] >= 1
        assert peak <= cap + len(body) + 65536, peak  # the cap, plus the largest message, which may finish
        for s in socks:  # every message ends; the largest goes first, then the others as room frees up
            s.sendall(frame(body)[-2:])
        acks = [s.recv(65536) for s in socks]
        assert all(b"MSA|AA|" in a for a in acks), acks
        assert listener.server.buffered == 0
    finally:
        for s in socks:
            s.close()
        listener.close()
