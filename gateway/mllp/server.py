"""The MLLP listener: an asyncio TCP server that appends each message to a Redis Stream, then acknowledges it.

An AA (CA) goes out only after Redis has the entry; while Redis is unreachable every message gets AR (CR) with an
ERR saying to send it again, and the listener recovers by itself when Redis returns. Frames read together are
checked and enqueued together (one Redis round trip) and acknowledged in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.exceptions import RedisError

from gateway.mllp.ack import AckPolicy, Header, Refused, build_ack, check, read_header, should_send
from gateway.mllp.framing import Frame, Framer, Oversized, frame

log = logging.getLogger("helixgate.mllp")


class Enqueue(Protocol):
    async def add(self, fields: dict[str, Any]) -> str: ...


class Recorder(Protocol):
    def record(self, event: dict[str, Any]) -> None: ...


class MllpServer:
    """Listens on host:port (port 0 picks one; see `.port` after `start`)."""

    def __init__(self, enqueuer: Enqueue, *, host: str = "127.0.0.1", port: int = 2575,
                 max_message_bytes: int = 16 * 1024 * 1024, max_connections: int = 100,
                 policy: AckPolicy | None = None, audit: Any = None, read_size: int = 1 << 16,
                 reuse_port: bool = False) -> None:
        self.enqueuer = enqueuer
        self.host = host
        self.port = port
        self.max_message_bytes = max_message_bytes
        self.max_connections = max_connections
        self.policy = policy or AckPolicy()
        self.audit = audit
        self.read_size = read_size
        self.reuse_port = reuse_port
        self.active = 0
        self.stats = {"accepted": 0, "refused": 0, "unavailable": 0, "connections": 0, "turned_away": 0}
        self._server: asyncio.Server | None = None
        self._redis_down = False
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=self.read_size,
                                                  reuse_port=self.reuse_port or None)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("MLLP listener on %s:%d (max message %d bytes, max %d connections)", self.host, self.port,
                 self.max_message_bytes, self.max_connections)

    async def close(self) -> None:
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
        self.active += 1
        self.stats["connections"] += 1
        self._writers.add(writer)
        framer = Framer(self.max_message_bytes)
        try:
            while True:
                data = await reader.read(self.read_size)
                if not data:
                    break
                events = framer.feed(data)
                if not events:
                    continue
                acks = await asyncio.gather(*(self._handle(e, peer_host) for e in events))
                out = b"".join(frame(a) for a in acks if a is not None)
                if out:
                    writer.write(out)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self.active -= 1
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, event: Frame | Oversized, peer: str) -> bytes | None:
        if isinstance(event, Oversized):
            header = read_header(event.head)
            refused = Refused("too-large", "207", "", f"the message has {event.size} bytes, over the limit of "
                              f"{self.max_message_bytes} (HELIXGATE_MLLP_MAX_MESSAGE_BYTES)", header)
            return self._refuse(refused, peer)
        try:
            header = check(event.data)
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
            return ack if should_send(header, "AR") else None
        if self._redis_down:
            log.warning("MLLP: Redis is reachable again; accepting messages")
            self._redis_down = False
        self.stats["accepted"] += 1
        self._audit(header, "accepted", peer)
        return build_ack(header, "AA") if should_send(header, "AA") else None

    def _refuse(self, refused: Refused, peer: str) -> bytes | None:
        header = refused.header
        code = self.policy.code(refused.failure, header.facility if header else "")
        self.stats["refused"] += 1
        log.info("MLLP message from %s refused (%s, HL7 error %s at %s)", peer, refused.failure, refused.error,
                 refused.location or "-")
        self._audit(header, refused.failure, peer)
        ack = build_ack(header, code, refused.text, refused.error, refused.location)
        return ack if should_send(header, code) else None

    def _audit(self, header: Header | None, outcome: str, peer: str) -> None:
        if self.audit is not None:
            from gateway.audit import mllp_event

            self.audit.record(mllp_event(header.control_id if header else "", header.facility if header else "",
                                         outcome, peer, time.time()))
