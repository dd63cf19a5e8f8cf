"""The MLLP listener: an asyncio TCP server that appends each message to a Redis Stream, then acknowledges it.

An AA (CA) goes out only after Redis has the entry; while Redis is unreachable every message gets AR (CR) with an
ERR saying to send it again, and the listener recovers by itself when Redis returns. Frames read together are
checked and enqueued together (one Redis round trip) and acknowledged in order.

Connections are bounded in number (overall and per peer address) and in time: one that sends nothing for
`idle_timeout` seconds, takes longer than `read_timeout` to deliver a message it started (a trickle of bytes
included), or does not take its ACKs within `read_timeout`, is closed, so slow or silent peers cannot hold the
slots real senders need.

Over TLS (`tls`), the handshake runs before a connection counts as open and is bounded by the config's handshake
timeout, so a peer that never finishes it holds no slot and does not delay others. With `partners`, a message from a
sending facility (MSH-4) that is not allowed, or not with the client certificate of its connection, gets AR and is not
queued (see gateway.mllp.partners).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from gateway import metrics
from gateway.mllp.ack import AckPolicy, Header, Refused, build_ack, check, read_header, should_send
from gateway.mllp.framing import Frame, Framer, Oversized, frame

if TYPE_CHECKING:
    from gateway.auth.certs import CertIdentity
    from gateway.mllp.partners import Partners
    from gateway.tls import TlsConfig

log = logging.getLogger("helixgate.mllp")
OFFLOAD_BYTES = 1 << 20


class Enqueue(Protocol):
    async def add(self, fields: dict[str, Any]) -> str: ...


class Recorder(Protocol):
    def record(self, event: dict[str, Any]) -> None: ...


class _Deadline:
    """When a connection's current state times out (loop time, None: never) and why; `expired` once enforced."""

    __slots__ = ("expired", "task", "when", "why")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.when: float | None = None
        self.why = "idle"
        self.expired = False

    def set(self, when: float | None, why: str) -> None:
        self.when, self.why = when, why


class MllpServer:
    """Listens on host:port (port 0 picks one; see `.port` after `start`)."""

    def __init__(self, enqueuer: Enqueue, *, host: str = "127.0.0.1", port: int = 2575,
                 max_message_bytes: int = 16 * 1024 * 1024, max_connections: int = 100,
                 max_connections_per_peer: int = 0, max_segments: int = 0, idle_timeout: float = 0.0,
                 read_timeout: float = 0.0, policy: AckPolicy | None = None, audit: Any = None,
                 read_size: int = 1 << 16, reuse_port: bool = False, sock: socket.socket | None = None,
                 tls: TlsConfig | None = None, partners: Partners | None = None,
                 max_buffered_bytes: int = 0) -> None:
        """`sock`: an already listening socket to serve (bound by `helixgate serve`, see gateway.mllp.listen);
        without one, `start` binds host:port itself. Limits and timeouts of 0 are off. `tls`: serve MLLP over TLS
        (mutual when it has a client CA); `partners`: the senders allowed (None: everyone). `max_buffered_bytes`:
        the bytes of unfinished messages held over all connections (at least one message's worth)."""
        self.enqueuer = enqueuer
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        self.max_segments = max_segments
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.policy = policy or AckPolicy()
        self.audit = audit
        self.read_size = read_size
        self.reuse_port = reuse_port
        self.sock = sock
        self.tls = tls
        self.partners = partners
        self.max_buffered_bytes = max(max_buffered_bytes, max_message_bytes) if max_buffered_bytes else 0
        self.buffered = 0  # bytes of unfinished messages over all connections
        self._framers: set[Framer] = set()
        self.active = 0
        self.per_peer: dict[str, int] = {}
        self.stats = {"accepted": 0, "refused": 0, "unavailable": 0, "connections": 0, "turned_away": 0,
                      "turned_away_peer": 0, "timed_out": 0, "unknown_sender": 0, "held_back": 0}
        self._server: asyncio.Server | None = None
        self._redis_down = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._clocks: set[_Deadline] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        tls: dict[str, Any] = {}
        if self.tls is not None:
            from gateway.tls import server_context

            tls = {"ssl": server_context(self.tls), "ssl_handshake_timeout": self.tls.handshake_timeout}
        if self.sock is not None:
            self._server = await asyncio.start_server(self._serve, sock=self.sock, limit=self.read_size, **tls)
        else:
            # No SO_REUSEPORT unless asked for: with it, a second gateway on the same port would silently take
            # part of the traffic instead of failing to start.
            self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=self.read_size,
                                                      reuse_port=self.reuse_port or None, **tls)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        if self.idle_timeout or self.read_timeout:
            self._sweeper = asyncio.create_task(self._sweep(), name="helixgate-mllp-timeouts")
        log.info("MLLP listener on %s:%d%s (max message %d bytes, %d connections, %d per peer; idle timeout %g s, "
                 "read timeout %g s)", self.host, self.port, self._security_text(), self.max_message_bytes,
                 self.max_connections, self.max_connections_per_peer, self.idle_timeout, self.read_timeout)

    def _security_text(self) -> str:
        text = ""
        if self.tls is not None:
            text = " over TLS" + {"none": "", "optional": " (client certificates optional)",
                                  "required": " (client certificates required)"}[self.tls.client_cert]
        if self.partners is not None:
            text += f", {len(self.partners.facilities)} partner facilities allowed"
        return text

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_host = peer[0] if isinstance(peer, tuple) else str(peer)
        if self.active >= self.max_connections:
            self.stats["turned_away"] += 1
            log.warning("MLLP connection from %s turned away: %d connections open (HELIXGATE_MLLP_MAX_CONNECTIONS)",
                        peer_host, self.active)
            writer.close()
            return
        held = self.per_peer.get(peer_host, 0)
        if self.max_connections_per_peer and held >= self.max_connections_per_peer:
            self.stats["turned_away_peer"] += 1
            log.warning("MLLP connection from %s turned away: it has %d open (HELIXGATE_MLLP_MAX_CONNECTIONS_PER_PEER)",
                        peer_host, held)
            writer.close()
            return
        self.active += 1
        self.per_peer[peer_host] = held + 1
        self.stats["connections"] += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        clock = _Deadline(task)
        self._clocks.add(clock)
        try:
            await self._converse(reader, writer, peer_host, clock, _peer_certificate(writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            if not clock.expired:  # not ours (the server is shutting down): let it through
                raise
            self.stats["timed_out"] += 1
            log.info("MLLP connection from %s closed: %s", peer_host, self._timeout_text(clock.why))
        finally:
            self._clocks.discard(clock)
            self.active -= 1
            left = self.per_peer.pop(peer_host, 1) - 1
            if left > 0:
                self.per_peer[peer_host] = left
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str,
                        clock: _Deadline, cert: CertIdentity | None = None) -> None:
        """Read frames and answer them until the peer closes, keeping `clock` on the deadline of the current state
        (the sweeper enforces it): idle → `idle_timeout` after the last message; bytes of an unfinished frame (or
        junk) pending → `read_timeout` after the first of them; ACKs being written → `read_timeout` for the peer
        to take them. Moving a number costs a message far less than a timer handle per read would."""
        loop = asyncio.get_running_loop()
        framer = Framer(self.max_message_bytes)
        idle, read = self.idle_timeout, self.read_timeout
        pending = False  # bytes of the next, unfinished message (or junk) have arrived
        clock.set(loop.time() + idle if idle else None, "idle")
        self._framers.add(framer)
        try:
            while True:
                await self._room(framer)
                data = await reader.read(self.read_size)
                if not data:
                    return
                held = framer.buffered
                events = framer.feed(data)
                self.buffered += framer.buffered - held
                if not events:
                    if not pending:
                        pending = True
                        if read:
                            clock.set(loop.time() + read, "read")
                    continue
                if read:
                    clock.set(loop.time() + read, "write")
                acks = await asyncio.gather(*(self._handle(e, peer, cert) for e in events))
                out = b"".join(frame(a) for a in acks if a is not None)
                if out:
                    writer.write(out)
                    await writer.drain()
                # What follows the last frame of this read starts the next message's clock.
                pending = framer.in_frame or framer.buffered > 0
                if pending and read:
                    clock.set(loop.time() + read, "read")
                else:
                    clock.set(loop.time() + idle if idle else None, "idle")
        finally:
            self.buffered -= framer.buffered
            self._framers.discard(framer)

    async def _room(self, framer: Framer) -> None:
        """Hold this connection's reads (TCP pushes back on its sender) while the unfinished messages of all
        connections fill HELIXGATE_MLLP_MAX_BUFFERED_BYTES, unless its message is the largest unfinished one: that
        one may always finish (so the listener holds at most the cap plus one message, and never stalls)."""
        if not self.max_buffered_bytes or self.buffered + self.read_size <= self.max_buffered_bytes:
            return
        self.stats["held_back"] += 1
        while (self.buffered + self.read_size > self.max_buffered_bytes
               and framer.buffered < max(f.buffered for f in self._framers)):
            await asyncio.sleep(0.05)

    async def _sweep(self) -> None:
        """Close the connections whose deadline has passed (one task for all of them)."""
        loop = asyncio.get_running_loop()
        every = min(1.0, *(t / 4 for t in (self.idle_timeout, self.read_timeout) if t))
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            for clock in list(self._clocks):
                if clock.when is not None and now > clock.when and not clock.expired:
                    clock.expired = True
                    clock.task.cancel()

    def _timeout_text(self, why: str) -> str:
        return {"idle": f"nothing received for {self.idle_timeout:g} s (HELIXGATE_MLLP_IDLE_TIMEOUT_MS)",
                "read": f"a message not complete {self.read_timeout:g} s after it began "
                        "(HELIXGATE_MLLP_READ_TIMEOUT_MS)",
                "write": f"ACKs not taken within {self.read_timeout:g} s (HELIXGATE_MLLP_READ_TIMEOUT_MS)"}[why]

    async def _handle(self, event: Frame | Oversized, peer: str, cert: CertIdentity | None = None) -> bytes | None:
        if isinstance(event, Oversized):
            header = read_header(event.head)
            refused = Refused("too-large", "207", "", f"the message has {event.size} bytes, over the limit of "
                              f"{self.max_message_bytes} (HELIXGATE_MLLP_MAX_MESSAGE_BYTES)", header)
            return self._refuse(refused, peer)
        if self.partners is not None:  # before the structural check: an unknown sender learns nothing more
            head = read_header(event.data)
            why = self.partners.refusal(head.facility, cert) if head is not None else None
            if why is not None:
                self.stats["unknown_sender"] += 1
                log.warning("MLLP message from %s refused: %s", peer, why)
                # Always AR (the configurable AE/AR codes are for content failures): sending it again cannot help.
                # HL7 table 0357 has no "unauthorised" code; 103 (table value not found) at MSH-4 says where.
                return self._refuse(Refused("unknown-sender", "103", "MSH^1^4", "the sending facility is not "
                                            "accepted from this connection", head), peer)
        try:
            if len(event.data) > OFFLOAD_BYTES:  # a big message is checked off the loop: other senders go on
                header = await asyncio.to_thread(check, event.data, self.max_segments)
            else:
                header = check(event.data, self.max_segments)
        except Refused as refused:
            return self._refuse(refused, peer)
        fields = {"data": event.data, "source": "hl7v2", "via": "mllp", "peer": peer,
                  "received": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "facility": header.facility, "control": header.control_id}
        try:
            await self.enqueuer.add(fields)
        except (RedisError, OSError) as e:
            self.stats["unavailable"] += 1
            if not self._redis_down:
                log.error("MLLP: cannot store messages in Redis (%s); answering AR until it is back", type(e).__name__)
                self._redis_down = True
            self._audit(header, "unavailable", peer)
            ack = build_ack(header, "AR", "message store unavailable: the message was NOT accepted; send it again "
                            "later", "207", "")
            ack = ack if should_send(header, "AR") else None
            metrics.mllp_message("unavailable", ack)
            return ack
        if self._redis_down:
            log.warning("MLLP: Redis is reachable again; accepting messages")
            self._redis_down = False
        self.stats["accepted"] += 1
        self._audit(header, "accepted", peer)
        ack = build_ack(header, "AA") if should_send(header, "AA") else None
        metrics.mllp_message("accepted", ack)
        return ack

    def _refuse(self, refused: Refused, peer: str) -> bytes | None:
        header = refused.header
        code = self.policy.code(refused.failure, header.facility if header else "")
        self.stats["refused"] += 1
        log.info("MLLP message from %s refused (%s, HL7 error %s at %s)", peer, refused.failure, refused.error,
                 refused.location or "-")
        self._audit(header, refused.failure, peer)
        ack = build_ack(header, code, refused.text, refused.error, refused.location)
        ack = ack if should_send(header, code) else None
        metrics.mllp_message(refused.failure, ack)
        return ack

    def _audit(self, header: Header | None, outcome: str, peer: str) -> None:
        if self.audit is not None:
            from gateway.audit import mllp_event

            self.audit.record(mllp_event(header.control_id if header else "", header.facility if header else "",
                                         outcome, peer, time.time()))


def _peer_certificate(writer: asyncio.StreamWriter) -> CertIdentity | None:
    """The client certificate the TLS handshake verified (None: plain TCP, or TLS without a client certificate)."""
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None
    from gateway.auth.certs import identity_from_der

    return identity_from_der(der)
