"""Safe XML intake for WS/T 500 documents: no DTDs, no entities, no network, a size limit, two encodings.

A clinical document needs none of DTDs, entity declarations or external references, so any <!DOCTYPE> or
<!ENTITY> is refused before the parser runs (billion laughs, XXE and remote DTDs all need one). The parser is
configured the same way as a second line: resolve_entities=False, no_network=True, load_dtd=False.
Declared encodings accepted: UTF-8 and GB18030 (GBK and GB2312 are subsets and decode as GB18030).
"""

from __future__ import annotations

import re

from lxml import etree

from mappers.exceptions import LimitExceeded, ParseError

MAX_BYTES = 5 * 1024 * 1024
# the declaration, then the first encoding="..." in it: one pattern with a lazy [^>]*? before the encoding and [^>]*
# after it tried the tail once per encoding= seen (quadratic); the two steps are linear and find the same value
_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
_ENCODING = re.compile(rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_DECL_ANY = re.compile(r"^\s*<\?xml[^>]*\?>")
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gb18030": "gb18030", "gbk": "gb18030", "gb2312": "gb18030",
              "gb-18030": "gb18030", "gb18030-2000": "gb18030", "gb18030-2005": "gb18030"}


def decode(data: bytes) -> tuple[str, str, list[str]]:
    """The document as text, the encoding used and any notes (e.g. an undeclared GB18030 document).

    Raises ParseError for an unsupported declared encoding, UTF-16/32 input, or bytes that do not decode.
    """
    notes: list[str] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:4] in (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00") \
            or b"\x00" in data[:64]:
        raise ParseError("the document is UTF-16/32; only UTF-8 and GB18030 are accepted", details="cda-encoding",
                         expression="byte 0")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    decl = _DECL.match(data[:512])
    m = _ENCODING.search(decl.group()) if decl else None
    if m:
        declared = m.group(1).decode("ascii").lower()
        encoding = _ENCODINGS.get(declared)
        if encoding is None:
            raise ParseError(f"declared encoding {declared!r} is not supported; use UTF-8 or GB18030",
                             details="cda-encoding", expression="line 1 (XML declaration)")
        try:
            return data.decode(encoding), encoding, notes
        except UnicodeDecodeError as e:
            line = data[:e.start].count(b"\n") + 1
            raise ParseError(f"the bytes are not valid {encoding.upper()} as declared (byte {e.start})",
                             details="cda-encoding", expression=f"line {line}") from None
    try:
        return data.decode("utf-8"), "utf-8", notes
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise ParseError(f"no encoding is declared and the bytes are neither UTF-8 nor GB18030 (byte {e.start})",
                         details="cda-encoding", expression="line 1") from None
    notes.append("no encoding declared and the bytes are not UTF-8; decoded as GB18030")
    return text, "gb18030", notes


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def parse_xml(data: bytes, max_bytes: int = MAX_BYTES) -> tuple[etree._Element, str, list[str]]:
    """Parse `data` safely; returns the root element, the encoding and notes. Raises ParseError saying where."""
    if len(data) > max_bytes:
        raise LimitExceeded(f"the document is {len(data)} bytes; the limit is {max_bytes}", details="cda-too-large")
    text, encoding, notes = decode(data)
    for marker, what in (("<!DOCTYPE", "DOCTYPE declarations"), ("<!ENTITY", "entity declarations")):
        at = text.find(marker)
        if at < 0 and marker == "<!DOCTYPE":
            at = text.upper().find(marker)
        if at >= 0:
            raise ParseError(f"{what} are not allowed in a clinical document (no DTDs, entities or external "
                             "references are processed)", details="cda-doctype-forbidden",
                             expression=f"line {_line_of(text, at)}")
    body = _DECL_ANY.sub("", text, count=1)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=True, remove_pis=True, encoding="utf-8")
    try:
        root = etree.fromstring(body.encode("utf-8"), parser)
    except etree.XMLSyntaxError as e:
        line = e.lineno if e.lineno else "?"
        raise ParseError(f"not well-formed XML: {e.msg}", details="cda-not-well-formed",
                         expression=f"line {line}") from None
    if root is None:
        raise ParseError("the document is empty", details="cda-not-well-formed", expression="line 1")
    if root.getroottree().docinfo.doctype:  # defence in depth: the text scan should have caught it
        raise ParseError("DOCTYPE declarations are not allowed", details="cda-doctype-forbidden",
                         expression="line 1")
    return root, encoding, notes
