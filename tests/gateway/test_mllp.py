"""The MLLP listener: framing, ACKs, intake checks, and the listener over real TCP with a real Redis
(ACK only after XADD; AR while Redis is down; recovery without a restart)."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from gateway.mllp.ack import AckPolicy, Refused, build_ack, check, read_header, should_send
from gateway.mllp.framing import Frame, Framer, Oversized, frame
from gateway.mllp.server import MllpServer
from gateway.workers.streams import INBOUND, Enqueuer, redis_client
from tests import corpora
from tests.conftest import ROOT, RedisServer, free_port
from tests.upstream.engine import MllpClient, segments, unique_message
from tests.upstream.fixtures import wait_for

# -- framing -------------------------------------------------------------------------------------------------


def test_framer_reassembles_frames_that_span_reads() -> None:
    messages = [unique_message(n) for n in range(12)]
    stream = b"noise before" + b"".join(frame(m) for m in messages) + b"\x0bMSH|unfinished"
    rng = random.Random(7)
    for _ in range(50):
        framer, out, i = Framer(), [], 0
        while i < len(stream):
            n = rng.choice((1, 2, 3, 17, 500, 4096))
            out += framer.feed(stream[i:i + n])
            i += n
        assert [e.data for e in out if isinstance(e, Frame)] == messages
        assert framer.junk == len(b"noise before")
        assert framer.buffered == len(b"MSH|unfinished")


def test_framer_skips_an_oversized_frame_keeping_its_head_and_goes_on() -> None:
    big = b"MSH|^~\\&|A|B|C|D|||ORU^R01|BIG1|P|2.5.1\r" + b"OBX|" + b"x" * 5000 + b"\r"
    stream = frame(big) + frame(b"MSH|small")
    for piece in (7, 1000, len(stream)):
        framer, out = Framer(max_bytes=1000), []
        for i in range(0, len(stream), piece):
            out += framer.feed(stream[i:i + piece])
        assert isinstance(out[0], Oversized) and out[0].size == len(big)
        assert out[0].head.startswith(b"MSH|") and read_header(out[0].head).control_id == "BIG1"
        assert out[1] == Frame(b"MSH|small")
        assert framer.buffered == 0


# -- ACKs and intake -------------------------------------------------------------------------------------------


def test_ack_swaps_sender_and_receiver_and_echoes_the_control_id() -> None:
    msg = unique_message(1, original_mode=True)
    ack = segments(build_ack(check(msg), "AA"))
    assert ack["MSH"][3:7] == ["HELIXGATE", "HOSP-B", "HELIX-NGS", "GENLAB-A^2.16.840.1.113883.19.20^ISO"]
    assert ack["MSH"][9] == "ACK^R01^ACK" and ack["MSH"][11:13] == ["P", "2.5.1"]
    assert ack["MSA"][1:3] == ["AA", "HGT-T00001"]
    assert "ERR" not in ack


def test_enhanced_mode_answers_with_commit_codes_as_msh15_asks() -> None:
    header = check(unique_message(1))  # MSH-15 AL, MSH-16 NE
    assert segments(build_ack(header, "AA"))["MSA"][1] == "CA"
    assert segments(build_ack(header, "AR", "down", "207"))["MSA"][1] == "CR"
    er = check(unique_message(1).replace(b"|||AL|NE", b"|||ER|NE"))
    assert not should_send(er, "AA") and should_send(er, "AE")
    ne = check(unique_message(1).replace(b"|||AL|NE", b"|||NE|AL"))
    assert not should_send(ne, "AA") and not should_send(ne, "AR")
    assert should_send(check(unique_message(1, original_mode=True)), "AA")


@pytest.mark.parametrize(("mutate", "failure", "error", "location"), [
    (lambda m: b"PID|1||X\r" + m, "unparseable", "100", ""),
    (lambda m: m.replace(b"MSH|^~\\&|", b"MSH|^^\\&|", 1), "unparseable", "102", "MSH^1^2"),
    (lambda m: m.replace(b"\rPV1|", b"\rpv1|"), "unparseable", "100", "line 3"),
    (lambda m: m.replace(b"ORU^R01^ORU_R01", b"ADT^A01^ADT_A01"), "rejected", "200", "MSH^1^9"),
    (lambda m: m.replace(b"ORU^R01^ORU_R01", b"ORU^R30"), "rejected", "201", "MSH^1^9"),
    (lambda m: m.replace(b"|HGT-T00001|", b"||"), "rejected", "101", "MSH^1^10"),
    (lambda m: m.replace(b"|P|2.5.1|", b"|P|3.0|"), "rejected", "203", "MSH^1^12"),
    (lambda m: m + m, "rejected", "100", "line 29"),
    (lambda m: m[:300], "unparseable", "100", "OBR^1"),  # cut short: no OBR, nothing to convert
    (lambda m: m.replace(b"\rOBX|1|", b"\rOXB|1|"), "unparseable", "100", "OXB^1"),  # misspelled: the row is lost
    (lambda m: m.replace(b"\rOBR|", b"\rNTE|"), "unparseable", "100", "OBX^1"),  # an OBX outside any order
    (lambda m: m.replace(b"\rSPM|", b"\rPID|1\rSPM|"), "unparseable", "100", "SPM^1"),
    (lambda m: m.replace(b"\r", b"\rNTE|1\r") + b"OBX|1\r" * 60, "too-large", "207", ""),  # HELIXGATE_MLLP_MAX_SEGMENTS
])
def test_intake_check_refuses_with_a_reason_an_hl7_error_code_and_a_location(mutate, failure, error, location) -> None:
    with pytest.raises(Refused) as caught:
        check(mutate(unique_message(1)), max_segments=80)
    assert (caught.value.failure, caught.value.error, caught.value.location) == (failure, error, location)


def test_the_intake_segment_cap_is_within_the_parsers() -> None:
    from gateway.settings import Settings
    from mappers.hl7v2.parse import Limits

    assert 0 < Settings().mllp_max_segments <= Limits().max_segments  # more would be ACKed, then never converted


def test_intake_lets_z_segments_and_v28_patient_observations_through() -> None:
    msg = unique_message(1)
    assert check(msg.replace(b"\rOBR|", b"\rZXY|a|b\rOBR|"), max_segments=80)
    v28 = msg.replace(b"|P|2.5.1|", b"|P|2.8.2|").replace(b"\rPV1|", b"\rOBX|1|ST|x||y\rPV1|")
    assert check(v28)  # PATIENT_OBSERVATION (v2.8+): valid, listed as not mapped by the conversion
    with pytest.raises(Refused):
        check(v28.replace(b"|P|2.8.2|", b"|P|2.5.1|"))


MESSAGES = sorted((ROOT / "tests" / "mappers" / "hl7v2" / "messages").glob("*.hl7"))


def _converts(data: bytes) -> bool:
    """Whether the worker's mapper converts `data`; False when it refuses it (a MappingError: dead-lettered at
    once). Any other exception fails the test."""
    from mappers.exceptions import MappingError
    from mappers.hl7v2 import to_fhir

    try:
        to_fhir(data)
    except MappingError:
        return False
    return True


@pytest.mark.parametrize("path", MESSAGES, ids=[p.stem for p in MESSAGES])
def test_intake_accepts_only_what_the_worker_converts(path) -> None:
    """The names-only check (gateway/mllp/structure.py) against the mapper's own parse and grouping: every
    message cut at each segment end, or inside each segment, and every segment ID misspelled.

    The whole-message rules (no OBR, no OBX) agree both ways. What the check cannot see without converting (e.g.
    a message cut after an OBX that yields no Observation on its own) the worker refuses with a MappingError,
    which dead-letters it at once; such cuts must stay rare."""
    msg = path.read_bytes()
    assert check(msg) and _converts(msg)
    ends = [i for i, b in enumerate(msg) if b == 0x0D]
    cuts = sorted({*ends, *(e - 5 for e in ends if e > 5)})
    missed = []
    for cut in cuts:
        data = msg[:cut]
        try:
            check(data)
        except Refused as refused:
            if refused.location.startswith("OBR^"):  # the whole-message rules: the worker must refuse it too
                assert not _converts(data), f"refused, but the worker converts {path.name} cut at byte {cut}"
            continue
        if not _converts(data):
            missed.append(cut)
    assert len(missed) <= max(2, len(cuts) // 10), f"accepted, but the worker refuses {path.name} cut at {missed}"
    lines = msg.split(b"\r")
    for n, line in enumerate(lines[1:], 1):
        if line[:3] in (b"OBX", b"OBR", b"SPM", b"PID"):
            typo = b"\r".join([*lines[:n], line[:1] + line[2:3] + line[1:2] + line[3:], *lines[n + 1:]])
            with pytest.raises(Refused):
                check(typo)


@pytest.mark.parametrize("path", corpora.params("hl7v2", lambda _: sorted(corpora.root().rglob("*.hl7"))))
def test_intake_accepts_the_oru_messages_of_the_shared_corpora(path) -> None:
    data = path.read_bytes().lstrip(b"\xef\xbb\xbf")
    if b"ORU^R01" not in data[:1000] or data.count(b"MSH|") != 1:
        return
    if path.name == "ORU-R01-01.hl7":  # a converter's kitchen-sink fixture: TXA and OBX outside orders in 2.5.1
        with pytest.raises(Refused, match="outside an order"):
            check(data)
        return
    if not _converts(data):  # e.g. a corrected report (OBR-25 C) sent without its results
        with pytest.raises(Refused, match="no OBX"):
            check(data)
        return
    assert check(data)


def test_nak_codes_are_configurable_per_sending_facility() -> None:
    policy = AckPolicy((("*", "unparseable", "AR"), ("GENLAB-A", "rejected", "AE")))
    assert policy.code("unparseable", "ANY") == "AR"
    assert policy.code("rejected", "GENLAB-A") == "AE"
    assert policy.code("rejected", "OTHER") == "AR"
    assert AckPolicy().code("unparseable", "x") == "AE"


# -- the listener over TCP with a real Redis --------------------------------------------------------------------


class Listener:
    """An MllpServer on its own event loop thread (the tests' MLLP clients block)."""

    def __init__(self, redis_url: str, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.options = options
        self.redis_url = redis_url
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the MLLP listener did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self.client = redis_client(self.redis_url, timeout=1.0)
            self.enqueuer = Enqueuer(self.client)
            self.server = MllpServer(self.enqueuer, port=0, **self.options)
            await self.server.start()
            self.ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    @property
    def port(self) -> int:
        return self.server.port

    def close(self) -> None:
        async def stop() -> None:
            await self.server.close()
            await self.enqueuer.close()
            await self.client.aclose()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture()
def stream(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.delete(INBOUND)
    yield client
    client.delete(INBOUND)
    client.close()


def test_each_message_is_in_the_stream_before_its_aa_goes_out(redis_server: RedisServer, stream) -> None:
    listener = Listener(redis_server.url)
    client = MllpClient(listener.port)
    try:
        for n, piece in enumerate((0, 1, 5, 333, 4096)):
            msg = unique_message(n, original_mode=True)
            ack = segments(client.send(msg, piece=piece))
            assert ack["MSA"][1:3] == ["AA", f"HGT-T{n:05d}"]
            last = stream.xrevrange(INBOUND, count=1)[0][1]  # already there when the ACK arrived
            assert last[b"data"] == msg and last[b"control"] == f"HGT-T{n:05d}".encode()
            assert last[b"facility"] == b"GENLAB-A" and last[b"source"] == b"hl7v2"
        # several frames in one write: ACKed in order, enqueued in order
        batch = [unique_message(n, original_mode=True) for n in range(10, 30)]
        client.send_raw(b"".join(frame(m) for m in batch))
        acks = [segments(client.receive())["MSA"][2] for _ in batch]
        assert acks == [f"HGT-T{n:05d}" for n in range(10, 30)]
        entries = stream.xrange(INBOUND)
        assert [f[b"data"] for _, f in entries[-20:]] == batch
        assert stream.xlen(INBOUND) == 25
    finally:
        client.close()
        listener.close()


def test_unparseable_and_unsupported_messages_get_naks_with_err_and_are_not_enqueued(redis_server, stream) -> None:
    listener = Listener(redis_server.url, policy=AckPolicy((("OTHER-LAB", "rejected", "AE"),)))
    client = MllpClient(listener.port)
    try:
        garbage = segments(client.send(b"this is not HL7"))
        assert garbage["MSA"][1] == "AE" and garbage["ERR"][3].startswith("100^")
        adt = unique_message(1, original_mode=True).replace(b"ORU^R01^ORU_R01", b"ADT^A01")
        nak = segments(client.send(adt))
        assert nak["MSA"][1:3] == ["AR", "HGT-T00001"] and "unsupported message type" in nak["MSA"][3]
        assert nak["ERR"][2] == "MSH^1^9" and nak["ERR"][3] == "200^Unsupported message type^HL70357"
        assert nak["ERR"][4] == "E"
        assert nak["MSH"][9] == "ACK^A01^ACK"
        partner = segments(client.send(adt.replace(b"|GENLAB-A^", b"|OTHER-LAB^")))
        assert partner["MSA"][1] == "AE"  # this facility is configured to get AE for rejections
        enhanced = segments(client.send(unique_message(2).replace(b"ORU^R01^ORU_R01", b"ADT^A01")))
        assert enhanced["MSA"][1] == "CR"
        assert stream.xlen(INBOUND) == 0
        assert segments(client.send(unique_message(3, original_mode=True)))["MSA"][1] == "AA"  # the connection lives
    finally:
        client.close()
        listener.close()


def test_an_oversized_message_gets_ar_and_the_connection_goes_on(redis_server, stream) -> None:
    listener = Listener(redis_server.url, max_message_bytes=20_000)
    client = MllpClient(listener.port)
    try:
        big = unique_message(1, original_mode=True) + b"NTE|1||" + b"x" * 50_000 + b"\r"
        nak = segments(client.send(big, piece=8192))
        assert nak["MSA"][1:3] == ["AR", "HGT-T00001"] and "over the limit of 20000" in nak["MSA"][3]
        assert segments(client.send(unique_message(2, original_mode=True)))["MSA"][1] == "AA"
        assert stream.xlen(INBOUND) == 1
    finally:
        client.close()
        listener.close()


def test_connections_over_the_limit_are_turned_away(redis_server, stream) -> None:
    listener = Listener(redis_server.url, max_connections=2)
    clients = [MllpClient(listener.port) for _ in range(2)]
    try:
        for n, c in enumerate(clients):
            assert segments(c.send(unique_message(n, original_mode=True)))["MSA"][1] == "AA"
        extra = MllpClient(listener.port)
        with pytest.raises((ConnectionError, OSError)):
            extra.send(unique_message(9, original_mode=True))
        extra.close()
        assert listener.server.stats["turned_away"] == 1
        clients.pop().close()
        wait_for(lambda: listener.server.active < 2, 5, what="a connection slot")
        again = MllpClient(listener.port)
        assert segments(again.send(unique_message(10, original_mode=True)))["MSA"][1] == "AA"
        again.close()
    finally:
        for c in clients:
            c.close()
        listener.close()


def test_while_redis_is_down_every_message_gets_ar_and_the_listener_recovers(own_redis: RedisServer) -> None:
    listener = Listener(own_redis.url)
    client = MllpClient(listener.port)
    try:
        assert segments(client.send(unique_message(1, original_mode=True)))["MSA"][1] == "AA"
        own_redis.stop()
        for n in (2, 3):
            nak = segments(client.send(unique_message(n, original_mode=True)))
            assert nak["MSA"][1:3] == ["AR", f"HGT-T{n:05d}"]
            assert "NOT accepted" in nak["MSA"][3] and nak["ERR"][3].startswith("207^")
        enhanced = segments(client.send(unique_message(4)))
        assert enhanced["MSA"][1] == "CR"
        own_redis.start()  # same port, empty: the listener reconnects by itself
        ack = wait_for(lambda: _accepted(client, unique_message(5, original_mode=True)), 10, what="AA after restart")
        assert ack["MSA"][2] == "HGT-T00005"
        stored = redis.Redis.from_url(own_redis.url).xrange(INBOUND)
        assert [f[b"control"] for _, f in stored] == [b"HGT-T00005"]
        assert listener.server.stats["unavailable"] >= 3
    finally:
        client.close()
        listener.close()


def _accepted(client: MllpClient, msg: bytes) -> dict[str, list[str]] | None:
    ack = segments(client.send(msg))
    return ack if ack["MSA"][1] == "AA" else None


def test_serve_runs_the_listener_beside_http(redis_server: RedisServer, stream) -> None:
    port, mllp_port = free_port(), free_port()
    env = {**os.environ, "HELIXGATE_REDIS_URL": redis_server.url}
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--mllp-port",
                             str(mllp_port), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = wait_for(lambda: _connect(mllp_port), 15, what="the MLLP port")
        ack = segments(client.send(unique_message(7, original_mode=True)))
        client.close()
        assert ack["MSA"][1:3] == ["AA", "HGT-T00007"]
        assert stream.xlen(INBOUND) == 1
    finally:
        proc.terminate()
        proc.wait(15)
    refused = subprocess.run([sys.executable, "-m", "gateway.cli.main", "serve", "--mllp-port", "2575"], cwd=ROOT,
                             env={k: v for k, v in os.environ.items() if k != "HELIXGATE_REDIS_URL"},
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "needs HELIXGATE_REDIS_URL" in refused.stdout


def _connect(port: int) -> MllpClient | None:
    try:
        return MllpClient(port)
    except OSError:
        time.sleep(0.1)
        return None
