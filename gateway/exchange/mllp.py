"""Delivery of an HL7 v2 output to a partner over MLLP (HL7 v2 Appendix C: 0x0B message 0x1C 0x0D), waiting for
its acknowledgement: AA or CA (MSA-1) delivers; anything else, a timeout or a closed connection is a failure (the
pipeline then releases the counted subjects and audits it)."""

from __future__ import annotations

import asyncio

from gateway.mllp.framing import END, START, frame
from mappers.exceptions import MappingError

MAX_ACK_BYTES = 1 << 20


class DeliveryFailed(MappingError):
    """The partner did not accept the message (HTTP 502)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, details="exchange-delivery-failed", code="transient")


async def send(host: str, port: int, message: bytes, timeout: float = 30.0) -> str:
    """Send `message` and return the ACK's MSA-2 (the control id it acknowledges). Raises DeliveryFailed."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as e:
        raise DeliveryFailed(f"cannot reach the MLLP partner {host}:{port}: {type(e).__name__}") from None
    try:
        writer.write(frame(message))
        await writer.drain()
        data = b""
        while END not in data:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                raise DeliveryFailed(f"the MLLP partner {host}:{port} closed the connection without an ACK")
            data += chunk
            if len(data) > MAX_ACK_BYTES:
                raise DeliveryFailed(f"the MLLP partner {host}:{port} sent more than {MAX_ACK_BYTES} bytes")
    except TimeoutError:
        raise DeliveryFailed(f"no ACK from the MLLP partner {host}:{port} within {timeout:g} s") from None
    except OSError as e:
        raise DeliveryFailed(f"the MLLP connection to {host}:{port} failed: {type(e).__name__}") from None
    finally:
        writer.close()
    ack = data[data.find(START) + 1: data.find(END)].decode("utf-8", "replace")
    segments = [s for s in ack.replace("\n", "\r").split("\r") if s]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 4:
        raise DeliveryFailed(f"the MLLP partner {host}:{port} answered something that is not an HL7 v2 ACK")
    field = segments[0][3]
    msa = next((s.split(field) for s in segments if s.startswith("MSA" + field)), None)
    if msa is None or len(msa) < 2:
        raise DeliveryFailed(f"the MLLP partner {host}:{port} answered without an MSA segment")
    if msa[1] not in ("AA", "CA"):
        text = msa[3] if len(msa) > 3 else ""
        raise DeliveryFailed(f"the MLLP partner {host}:{port} refused the message: MSA-1 {msa[1]}"
                             + (f" ({text[:200]})" if text else ""))
    return msa[2] if len(msa) > 2 else ""
