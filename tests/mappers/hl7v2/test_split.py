"""Batch files split into messages (mappers.hl7v2.format.split): MSH after MSH and FHS/BHS envelopes; a single
message comes back as given, without a walk over its lines (a 10 MB message of 1.7 M segments took ~0.8 s of
CPU here before the segment cap refused it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.hl7v2.format import split

MESSAGE = next(iter(sorted((Path(__file__).parent / "messages").glob("*.hl7")))).read_bytes()


def _walked(data: bytes) -> list[bytes]:
    """The line walk itself, as a reference for the messages split() finds."""
    text = data.replace(b"\x0b", b"").replace(b"\x1c", b"").removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\r")
    messages: list[list[bytes]] = []
    for line in text.split(b"\r") if b"\r" in text else text.split(b"\n"):
        line = line.strip(b"\n")
        if not line.strip() or line[:3] in (b"FHS", b"BHS", b"BTS", b"FTS"):
            continue
        if line.startswith(b"MSH") or not messages:
            messages.append([line])
        else:
            messages[-1].append(line)
    return [b"\r".join(m) + b"\r" for m in messages]


@pytest.mark.parametrize("data", [
    MESSAGE,
    b"\x0b" + MESSAGE + b"\x1c\r",
    b"\xef\xbb\xbf" + MESSAGE.replace(b"\r", b"\r\n"),
    b"\r\n  \r" + MESSAGE,
    MESSAGE + b"OBX|1\r" * 100_000,
], ids=["plain", "mllp-framed", "bom-crlf", "blank-lines-first", "100k-segments"])
def test_a_single_message_comes_back_as_given(data: bytes) -> None:
    (where, message), = split(data)
    assert where == "message 1" and message is data
    assert len(_walked(data)) == 1


@pytest.mark.parametrize("data, count", [
    (MESSAGE + MESSAGE, 2),
    (MESSAGE.replace(b"\r", b"\n") * 3, 3),
    (b"PID|1\r" + MESSAGE, 2),  # a stray segment first is a message of its own, as the line walk makes it
    (b"FHS|^~\\&\rBHS|^~\\&\r" + MESSAGE + b"BTS|1\rFTS|1\r", 1),  # an envelope: its lines dropped
    (MESSAGE.replace(b"OBX|", b"OBX|MSH", 1), 1),  # MSH inside a field: walked, still one message
], ids=["two", "three-lf", "stray-first", "envelope", "msh-in-content"])
def test_batches_split_as_the_line_walk_does(data: bytes, count: int) -> None:
    found = [m for _, m in split(data)]
    assert len(found) == count
    assert found == _walked(data) or (count == 1 and found == [data])


def test_nothing_but_blank_lines_is_no_message() -> None:
    assert split(b" \r\n\r\n") == [] and split(b"") == []
