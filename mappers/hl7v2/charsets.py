"""MSH-18 character set names (HL7 table 0211) and the Python codecs that decode them."""

from __future__ import annotations

# Table 0211 names, plus spellings seen in the wild ("UTF-8", "UTF8"). Keys are upper-case without spaces.
_CODECS = {
    "ASCII": "ascii",
    "ISOIR6": "ascii",
    "8859/1": "latin-1",
    "ISOIR100": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODEUTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "ISOIR192": "utf-8",
    "GB18030-2000": "gb18030",
    "GB18030": "gb18030",
    "BIG-5": "big5",
    "KSX1001": "euc-kr",
    "ISOIR87": "iso2022-jp",
    "ISOIR159": "iso2022-jp-2",
    "ISOIR14": "shift_jis",
}

# What MSH-18 is written as when emitting, per codec.
DECLARED_NAME = {"utf-8": "UNICODE UTF-8", "gb18030": "GB 18030-2000", "latin-1": "8859/1", "ascii": "ASCII"}

# Tried in order when MSH-18 is empty or unknown.
FALLBACKS = ("utf-8", "gb18030")

# Multi-byte codecs whose trail bytes include ASCII 0x40-0x7E, so a character can end in '|', '^', '\\' or '~'.
ASCII_TRAIL_CODECS = ("gb18030", "big5", "shift_jis")


def codec_for(declared: str) -> str | None:
    """The codec for an MSH-18 value, or None when the name is unknown or empty."""
    return _CODECS.get(declared.replace(" ", "").upper()) if declared else None
