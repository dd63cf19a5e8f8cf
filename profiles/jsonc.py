"""JSON with comments: the HL7 validator's allow-comments option accepts `//` and `/* */` comments in JSON
input (FHIR JSON itself has none, http://hl7.org/fhir/R4/json.html). `strip_comments` blanks them out so a
strict parser can read the rest; line and column numbers of what remains are unchanged."""

from __future__ import annotations

from typing import Any

import orjson


def strip_comments(data: bytes | str) -> bytes:
    """`data` with every comment outside a string replaced by spaces (newlines kept)."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    if "/" not in text:
        return text.encode("utf-8")
    out: list[str] = []
    i, n = 0, len(text)
    start = 0  # start of the pending run of kept characters
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "/" and i + 1 < n and text[i + 1] in "/*":
            out.append(text[start:i])
            if text[i + 1] == "/":
                end = text.find("\n", i)
                end = n if end < 0 else end
            else:
                end = text.find("*/", i + 2)
                end = n if end < 0 else end + 2
            out.append("".join(c if c in "\r\n" else " " for c in text[i:end]))
            i = start = end
            continue
        i += 1
    out.append(text[start:])
    return "".join(out).encode("utf-8")


def loads(data: bytes | str, allow_comments: bool = False) -> Any:
    """Parse JSON; with `allow_comments`, `//` and `/* */` comments are ignored (an unterminated `/*` runs to
    the end of the input, which then fails to parse as usual)."""
    return orjson.loads(strip_comments(data) if allow_comments else data)
