"""HL7 v2 escape sequences (v2.5.1 §2.7): unescape for reading, escape for writing."""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mappers.hl7v2.model import Delimiters

# Formatting commands of the FT data type (§2.7.6), rendered as plain text.
_FORMATTING = {".br": "\n", ".fi": "", ".nf": "", ".ce": "\n"}
_COUNT = re.compile(r"\s*([+-]?)([0-9]+)\s*")
_MAX_COUNT = 100  # \.sp n\ and \.sk n\ expand to at most this many characters (untrusted input)


def unescape(text: str, d: Delimiters, encoding: str = "utf-8") -> str:
    """Replace escape sequences in one leaf value with the characters they stand for.

    \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\ become the delimiters; \\Xhh..\\ the bytes, decoded with `encoding`;
    \\H\\ \\N\\ (highlighting) and \\Cxxyy\\ \\Mxxyyzz\\ (charset switches) are dropped; \\.br\\ and \\.sp n\\
    become line breaks, \\.sk n\\ spaces, other formatting commands nothing; \\Z..\\ and anything unknown stay
    as written, so no text is lost.
    """
    esc = d.escape
    if not esc or esc not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        start = text.find(esc, i)
        if start < 0:
            out.append(text[i:])
            break
        end = text.find(esc, start + 1)
        if end < 0:  # a lone escape character: keep it
            out.append(text[i:])
            break
        out.append(text[i:start])
        seq = text[start + 1 : end]
        out.append(_expand(seq, d, encoding, text[start : end + 1]))
        i = end + 1
    return "".join(out)


def _expand(seq: str, d: Delimiters, encoding: str, literal: str) -> str:
    simple = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition, "E": d.escape,
              "P": d.truncation or literal, "H": "", "N": ""}
    if seq in simple:
        return simple[seq]
    if not seq:
        return literal
    head = seq[0]
    if head == "X":
        try:
            data = bytes.fromhex(seq[1:])
        except ValueError:
            return literal
        try:
            return codecs.decode(data, encoding)
        except (UnicodeDecodeError, LookupError):
            return data.decode("latin-1")
    # \Cxxyy\ (two bytes), \Mxxyy\ or \Mxxyyzz\ (zz optional)
    if len(seq) in {"C": (5,), "M": (5, 7)}.get(head, ()) and all(c in "0123456789ABCDEFabcdef" for c in seq[1:]):
        return ""
    if head == ".":
        cmd, _, arg = seq.partition(" ")
        if cmd in _FORMATTING:
            return _FORMATTING[cmd]
        num = _COUNT.fullmatch(arg)
        count = 1
        if num:  # only ASCII digits; a long number is capped before int() sees it
            count = min(int(num[2].lstrip("0")[:10] or "0"), _MAX_COUNT) * (-1 if num[1] == "-" else 1)
        if cmd == ".sp":
            return "\n" * max(count, 1)
        if cmd == ".sk":
            return " " * max(count, 0)
        if cmd in (".in", ".ti"):
            return ""
    return literal


def escape(text: str, d: Delimiters) -> str:
    """Escape delimiters and line breaks in `text` so it can stand as one leaf value."""
    if not text:
        return text
    esc = d.escape
    out = text.replace(esc, f"{esc}E{esc}")
    for ch, code in ((d.field, "F"), (d.component, "S"), (d.subcomponent, "T"), (d.repetition, "R")):
        out = out.replace(ch, f"{esc}{code}{esc}")
    if d.truncation:
        out = out.replace(d.truncation, f"{esc}P{esc}")
    if "\r" in out or "\n" in out:
        out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{esc}.br{esc}")
    return out
