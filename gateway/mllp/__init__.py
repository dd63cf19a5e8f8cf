"""The MLLP listener: streaming framing, intake checks and ACKs, and the asyncio TCP server."""

from __future__ import annotations

from gateway.mllp.ack import AckPolicy, Header, Refused, build_ack, check, read_header, should_send
from gateway.mllp.framing import Frame, Framer, Oversized, frame
from gateway.mllp.server import MllpServer

__all__ = ["AckPolicy", "Frame", "Framer", "Header", "MllpServer", "Oversized", "Refused", "build_ack", "check",
           "frame", "read_header", "should_send"]
