"""Mutations shared by the mapper and HTTP harnesses (bench/fuzz/fuzz_*.py): bytes, line formats (HL7 v2 ER7, VCF),
JSON documents and XML trees, and the seeds they start from. Hypothesis draws the choices that matter (which
mutation, which junk value); a `random.Random` seeded by hypothesis picks positions, which keeps drawing cheap.

Mutations: byte flips, inserts, deletions, cuts and duplications; line (segment, record) duplication, deletion,
truncation and splicing from other seeds; field and component duplication, deletion and replacement; delimiter and
terminator changes; huge and malformed numbers; deep nesting; JSON values of the wrong type; wrong encodings.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from common import JUNK_STRINGS, ROOT, corpora_root
from hypothesis import strategies as st

MAX_SEED = 64 * 1024
MAX_INPUT = 2 * 1024 * 1024  # a mutated input past this is replaced by its seed: larger ones measure size, not
# robustness (the HTTP body limit is 10 MiB)

# Numbers and near-numbers: past 64 bits, past float range, digits str.isdigit() accepts but int() does not, …
NUMBERS: list[str] = [
    "0", "-0", "00", "-1", "1" * 19, "9" * 40, "18446744073709551616", "-9223372036854775809", "2147483648", "1e309",
    "-1e309", "1e-400", "NaN", "nan", "inf", "-Infinity", "1.", ".", "-", "+", "e5", "5e", "1_000", "0x10", "１２３",
    "٣", "²", "½", "1,5", "1.5.5", "0" * 400, "9" * 5000, "3.4028235e+38", "4.9e-324", " 1", "1 ", "+-1", "--1",
]
JUNK: list[str] = JUNK_STRINGS + NUMBERS
SHORT_BYTES = st.binary(min_size=1, max_size=8)
ALPHABET = "aZ09 .-+:/|^~&\\;=,<>&\"'\t\r\n\x00\x0b\x1c\x7f\x85\xa0\xadé中检\u2028\u200b\ufeff\ufffd\U0001f600"


def junk_text(draw: st.DrawFn, rng: random.Random) -> str:
    """A junk value: four times in five one of JUNK, else random text (random picks: hypothesis's text strategy
    costs ~2 ms a draw, more than most targets take)."""
    if rng.random() < 0.8:
        return rng.choice(JUNK)
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))
JUNK_BYTES: list[bytes] = [
    b"\xff", b"\xfe\xff", b"\xef\xbb\xbf", b"\x00", b"\xed\xa0\x80", b"\xc3", b"\x80", b"\xf4\x90\x80\x80", b"\x0b",
    b"\x1c", b"\x1c\r", b"\r", b"\n", b"\r\n", b"\t", b"|", b"^", b"~", b"\\", b"&", b";", b"=", b",", b":", b"<", b">",
    b'"', b"{", b"}", b"[", b"]", b"\\X0D\\", b"\\E\\", b"\\Cxxyy\\", b"\\M\\", b"\\.br\\", "检".encode("gb18030"),
]
ENCODINGS = ["utf-16", "utf-16-be", "utf-32", "latin-1", "gb18030", "cp1252", "utf-8-sig", "big5", "shift_jis"]


def rss_mb() -> float:
    """Resident set size now (the runner's summary gives the peak; the difference is the growth over the run)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_seeds(paths: Iterable[Path], limit: int = MAX_SEED) -> list[bytes]:
    """The distinct files of `paths` (gzip ones inflated) no larger than `limit` bytes; larger ones are cut to
    their first `limit` bytes at a line end, so every corpus file contributes its shape."""
    out: list[bytes] = []
    seen: set[bytes] = set()
    for p in paths:
        data = p.read_bytes()
        if data[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):
                data = gzip.decompress(data)[: limit * 4]
        if len(data) > limit:
            data = data[:limit]
            end = max(data.rfind(b"\n"), data.rfind(b"\r"))
            data = data[: end + 1] if end > 0 else data
        if data and data not in seen:
            seen.add(data)
            out.append(data)
    return out


def files(*patterns: str) -> list[Path]:
    """Files of the repository (`tests/...`) or the corpora (`corpora:hl7v2/**/*.hl7`) matching glob patterns."""
    out: list[Path] = []
    for pattern in patterns:
        base, _, glob = pattern.rpartition(":") if pattern.startswith("corpora:") else ("", "", pattern)
        root = corpora_root() if base else ROOT
        out += sorted(p for p in root.glob(glob) if p.is_file())
    return out


# -- bytes ------------------------------------------------------------------------------------------------------------

def damage(draw: st.DrawFn, rng: random.Random, data: bytes) -> bytes:
    """One byte-level mutation: flip, insert, delete, cut, duplicate, prefix or a wrong encoding."""
    op = rng.randint(0, 8)
    at = rng.randint(0, len(data))
    if op == 0 and data:
        at = min(at, len(data) - 1)
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1:]
    if op == 1:
        return data[:at] + (rng.choice(JUNK_BYTES) if rng.random() < 0.5 else draw(SHORT_BYTES)) + data[at:]
    if op == 2:
        return data[:at] + data[at + rng.choice([1, 2, 7, 64, 4096]):]
    if op == 3:
        return data[:at]
    if op == 4:
        return data[:at] + data[at:at + rng.choice([1, 16, 256])] * rng.choice([2, 3, 100]) + data[at:]
    if op == 5:
        return rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x0b", b"\x00", b" \r\n"]) + data
    if op == 6:  # the text in another encoding than the one declared (or assumed)
        text = data.decode("utf-8", "replace")
        return text.encode(rng.choice(ENCODINGS), "replace")
    if op == 7:  # the bytes read as Latin-1 and written as UTF-8 (double encoding)
        return data.decode("latin-1").encode("utf-8")
    return data[at:] + data[:at]  # rotated: the start is now in the middle


# -- line formats (HL7 v2 ER7, VCF) -----------------------------------------------------------------------------------

def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    sep = b"\r\n" if b"\r\n" in data else b"\r" if b"\r" in data else b"\n"
    return data.split(sep), sep


def mutate_lines(draw: st.DrawFn, rng: random.Random, data: bytes, seeds: list[bytes], *,
                 fields: bytes, inner: bytes, delimiters: bytes, copies: tuple[int, ...] = (1, 2, 99, 2000)) -> bytes:
    """One structural mutation of a line-based document: `fields` separates fields, `inner` the parts of a field
    (components, INFO entries), `delimiters` are the characters a delimiter change picks from, `copies` how many
    times a line may be repeated (sizes where linear work stays well under a second, plus any cap to test)."""
    lines, sep = split_lines(data)
    n = rng.randrange(len(lines)) if lines else 0
    line = lines[n] if lines else b""
    op = rng.randint(0, 11)
    if op == 0:  # a line repeated: 2, 3, a hundred, thousands of times (up to 8 MiB: under the HTTP body limit)
        lines[n:n] = [line] * min(rng.choice(copies), (8 << 20) // (len(line) + 1) + 1)
    elif op == 1 and lines:
        del lines[n]
    elif op == 2:
        lines = lines[:n]
    elif op == 3:  # a line of another seed, spliced in
        other, _ = split_lines(rng.choice(seeds))
        lines.insert(n, rng.choice(other))
    elif op == 4 and len(lines) > 1:
        m = rng.randrange(len(lines))
        lines[n], lines[m] = lines[m], lines[n]
    else:
        parts = line.split(fields)
        k = rng.randrange(len(parts))
        value = junk_text(draw, rng).encode("utf-8", "surrogatepass")
        if op == 5:
            parts[k] = value
        elif op == 6:
            parts[k:k] = [parts[k]] * min(rng.choice([1, 2, 600]), (8 << 20) // (len(parts[k]) + 1) + 1)
        elif op == 7 and len(parts) > 1:
            del parts[k]
        elif op == 8:
            parts = parts[:k]
        elif op == 9:  # inside the field: a component/entry replaced, repeated or dropped
            sub = parts[k].split(inner)
            j = rng.randrange(len(sub))
            sub[j:j + rng.choice([0, 1])] = [value] * rng.choice([1, 2, 150])
            parts[k] = inner.join(sub)
        elif op == 10:  # a delimiter changed in this line, or everywhere
            a, b = rng.choice(delimiters), rng.choice(delimiters + b"#\x00 ")
            if rng.random() < 0.5:
                lines[n] = line.replace(bytes([a]), bytes([b]))
                return sep.join(lines)
            return data.replace(bytes([a]), bytes([b]))
        else:  # the terminators changed: LF, CR, CRLF, none, or mixed
            new = rng.choice([b"\n", b"\r", b"\r\n", b"", b"\n\r", b"\r\r"])
            return new.join(lines) if rng.random() < 0.7 else sep.join(lines[:n]) + new + sep.join(lines[n:])
        lines[n] = fields.join(parts)
    return sep.join(lines)


# -- JSON -------------------------------------------------------------------------------------------------------------

JUNK_VALUES: list[Any] = [
    None, True, False, 0, -1, 2**31, 2**63 - 1, -(2**63), 2**64, 10**40, 1.5, -0.0, 1e308, [], {}, [None], [[]], [{}],
    {"": ""}, {"resourceType": 5}, {"reference": {"a": 1}}, {"coding": "s"}, {"coding": [{"system": {}, "code": []}]},
    {"system": ["x"], "code": {"a": 1}}, {"resourceType": "Patient"}, {"value": "1e309"}, {"value": 10**30},
    {"valueQuantity": {"value": 1e308, "unit": 5}}, {"valueString": ["x"]}, {"reference": "Patient/../../x"},
]
DEPTHS = [2, 10, 60, 101, 300, 1000]


def walk(rng: random.Random, doc: Any) -> tuple[Any, Any] | None:
    """A random (container, key) of the document: a walk from the root that stops at each level with
    probability 1/4."""
    node, found = doc, None
    while True:
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else None
        if not keys:
            return found
        key = rng.choice(keys)
        found = (node, key)
        if rng.random() < 0.25:
            return found
        node = node[key]


def json_junk(names: list[str]) -> list[st.SearchStrategy[Any]]:
    """The junk values hypothesis generates (text, integers, floats, small JSON trees with the seeds' keys);
    `junk_value` adds the fixed lists."""
    return [st.text(max_size=12), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
            st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(names), inner,
                                                                                     max_size=3), max_leaves=6)]


def junk_value(draw: st.DrawFn, rng: random.Random, junk: list[st.SearchStrategy[Any]]) -> Any:
    """One junk value, each kind as likely as the others (as hypothesis's one_of of them picked): one of
    JUNK_VALUES (a fresh copy: later mutations change the value in place) or JUNK, or one hypothesis generates."""
    k = rng.randrange(len(junk) + 2)
    if k == 0:
        return copy.deepcopy(rng.choice(JUNK_VALUES))
    if k == 1:
        return rng.choice(JUNK)
    return draw(junk[k - 2])


def mutate_json(draw: st.DrawFn, rng: random.Random, doc: Any, seeds: list[Any], names: list[str],
                junk: list[st.SearchStrategy[Any]]) -> Any:
    """One mutation of a parsed JSON document, in place where possible; returns the (new) root."""
    spot = walk(rng, doc)
    if spot is None:
        if not isinstance(doc, dict) or rng.random() < 0.2:
            return junk_value(draw, rng, junk)
        return {**doc, rng.choice(names): 1}
    parent, key = spot
    value = parent[key]
    op = rng.randint(0, 9)
    if op == 0:  # a value of the wrong type or out of range
        parent[key] = junk_value(draw, rng, junk)
    elif op == 1:
        del parent[key]
    elif op == 2:
        holder = value if isinstance(value, dict) else parent if isinstance(parent, dict) else None
        if holder is not None:
            holder[rng.choice(names)] = junk_value(draw, rng, junk)
    elif op == 3:  # an array where one value belongs, or one value where an array belongs
        parent[key] = value[0] if isinstance(value, list) and value else [value]
    elif op == 4:  # a subtree of another seed: right shapes in wrong places
        other = walk(rng, copy.deepcopy(rng.choice(seeds)))
        if other is not None:
            parent[key] = other[0][other[1]]
    elif op == 5:  # items multiplied (subtrees at most 50 times: the size stays within a request's)
        times = rng.choice([2, 3, 50, 1000])
        times = min(times, 50) if isinstance(value, dict | list) else times
        parent[key] = value * min(times, 50) if isinstance(value, list) else [value] * times
    elif op == 6:  # deep nesting, as an object or an array
        wrap = rng.choice([lambda v: [v], lambda v: {rng.choice(names): v}, lambda v: {"extension": [v]}])
        for _ in range(rng.choice(DEPTHS)):
            value = wrap(value)
        parent[key] = value
    elif op == 7 and isinstance(value, str):  # a string spoiled
        cut = rng.randint(0, len(value))
        parent[key] = value[:cut] + junk_text(draw, rng) + value[cut:]
    elif op == 8 and isinstance(value, int | float) and not isinstance(value, bool):
        parent[key] = rng.choice([2**64, -(2**64), 10**400, 1e308, -1e308, 0, -1, value * 10**20])
    else:  # swapped with another value of the document
        other = walk(rng, doc)
        if other is not None and other[0] is not value and other[0][other[1]] is not parent:
            parent[key], other[0][other[1]] = other[0][other[1]], value
    return doc


def dumps(doc: Any) -> bytes:
    """JSON text of `doc`; Python's writer for what orjson refuses (integers past 64 bits, deep nesting)."""
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:
        try:
            return json.dumps(doc, allow_nan=True).encode()
        except (RecursionError, ValueError):
            return b"{}"


def json_text_damage(draw: st.DrawFn, rng: random.Random, data: bytes) -> bytes:
    """JSON-aware text damage: a number made huge, a literal swapped, or the bytes damaged."""
    op = rng.randint(0, 3)
    if op == 0:  # raw numbers no JSON writer produces
        at = rng.randint(0, len(data))
        digit = next((i for i in range(at, len(data)) if 48 <= data[i] <= 57), None)
        if digit is not None:
            return data[:digit] + rng.choice([b"9" * 400, b"1e999", b"-1e999", b"1E+30", b"0" * 50 + b"1",
                                                         b"-"]) + data[digit:]
    if op == 1:
        return data.replace(rng.choice([b"true", b"null", b"false", b"[", b'"']),
                            rng.choice([b"NaN", b"Infinity", b"", b"{", b"'"]), rng.choice([1, -1]))
    return damage(draw, rng, data)


# -- XML --------------------------------------------------------------------------------------------------------------

XML_BYTES = [b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&a;", b"&#0;", b"&#x110000;", b"&#xD800;", b"<![CDATA[x]]>",
             b"<?pi x?>", b"</", b"<a:b>", b"]]>", b'<?xml version="1.0" encoding="GB18030"?>',
             b'<?xml version="1.0" encoding="UTF-16"?>', b'<?xml version="1.0" encoding="bogus"?>',
             b'<?xml version="1.1"?>', b"<!-- -- -->", b'xmlns="urn:x"', b"&lt;", b"&amp;amp;"]
XML_NAMES = ["component", "section", "entry", "observation", "value", "code", "id", "effectiveTime", "low", "high",
             "recordTarget", "patientRole", "patient", "name", "administrativeGenderCode", "birthTime", "author",
             "custodian", "templateId", "title", "text", "organizer", "entryRelationship", "interpretationCode",
             "referenceRange", "observationRange", "specimen", "ClinicalDocument", "structuredBody", "realmCode"]
XML_ATTRIBUTES = ["value", "code", "codeSystem", "codeSystemName", "displayName", "unit", "root", "extension",
                  "nullFlavor", "typeCode", "classCode", "moodCode", "{http://www.w3.org/2001/XMLSchema-instance}type",
                  "inclusive", "negationInd", "xmlns"]
XSI_TYPES = ["PQ", "CD", "CE", "CV", "ST", "INT", "REAL", "BL", "TS", "IVL_PQ", "IVL_TS", "ED", "SC", "RTO", "x:y",
             "", "MO"]


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(draw: st.DrawFn, rng: random.Random) -> str:
    """A junk value lxml accepts as text or attribute (control characters come in as damaged bytes instead)."""
    return _NOT_XML.sub("", junk_text(draw, rng))


_ELEMENTS: dict[int, tuple[Any, list[Any]]] = {}


def _elements_of(tree: Any) -> list[Any]:
    """The elements of a seed's tree (never changed: mutations copy from it), listed once."""
    from lxml import etree

    found = _ELEMENTS.get(id(tree))
    if found is None or found[0] is not tree:
        found = _ELEMENTS[id(tree)] = (tree, list(tree.iter(etree.Element)))
    return found[1]


def parsed(seeds: list[bytes], parser: Any) -> dict[bytes, Any]:
    """Each seed's tree, parsed once: an input starts from a copy (lxml copies a tree in about half the time it
    parses it)."""
    from lxml import etree

    return {s: etree.fromstring(s, parser) for s in seeds}


def mutate_xml(draw: st.DrawFn, rng: random.Random, root: Any, trees: list[Any],
               elements: list[Any] | None = None, last: bool = False) -> None:
    """One mutation of an lxml tree (in place): elements dropped, repeated, renamed, moved in from another seed or
    nested deep; text and attributes replaced by junk, huge numbers and wrong xsi:types. `elements`: the tree's
    elements in document order (`list(root.iter(etree.Element))`), kept up to date here for the next mutation
    (listing a 60 KB document again took ~0.1 ms a mutation) unless this is the `last`; without it they are
    listed."""
    from lxml import etree

    if elements is None:
        elements = list(root.iter(etree.Element))  # elements only (no comments, PIs), filtered in C
    el = rng.choice(elements)
    if last:  # nothing to keep up to date: the updates below work on a list thrown away
        elements = []
        at_el = span = 0
    else:
        at_el = elements.index(el)  # identity compares in C: a few µs
        span = sum(1 for _ in el.iter(etree.Element))  # el and its descendants: elements[at_el:at_el + span]
    parent = el.getparent()
    ns = el.tag[: el.tag.index("}") + 1] if el.tag.startswith("{") else ""
    op = rng.randint(0, 9)
    if op == 0 and parent is not None:
        parent.remove(el)
        del elements[at_el:at_el + span]
    elif op == 1 and parent is not None:
        times = rng.choice([1, 2, 50, 1000])
        if times > 2:  # no more copies than fit in MAX_INPUT: past it the whole input was built, written and
            # thrown away for its seed (most of the generator's time and its 1 GB peaks)
            times = min(times, MAX_INPUT // len(etree.tostring(el)) + 1)
        # one slice assignment of plain copies (what copy.deepcopy calls): the same tree, ~15 % less time than
        # deepcopy and insert one at a time
        at = parent.index(el)
        copies = [el.__copy__() for _ in range(times)]
        parent[at:at] = copies
        if not last:
            elements[at_el:at_el] = [e for c in copies for e in c.iter(etree.Element)]
    elif op == 2:
        el.text = xml_text(draw, rng)
    elif op == 3:
        el.set(rng.choice(XML_ATTRIBUTES[:-1]), xml_text(draw, rng))
    elif op == 4:  # a value or its type changed: the same element read as another data type
        el.set("{http://www.w3.org/2001/XMLSchema-instance}type", rng.choice(XSI_TYPES))
        el.set("value", _NOT_XML.sub("", rng.choice(JUNK)))
    elif op == 5:
        el.tag = ns + rng.choice(XML_NAMES) if rng.random() < 0.8 else rng.choice(["{urn:x}y", "x"])
    elif op == 6:  # an element of another seed placed here
        moved = copy.deepcopy(rng.choice(_elements_of(rng.choice(trees))))
        el.append(moved)
        if not last:
            elements[at_el + span:at_el + span] = list(moved.iter(etree.Element))
    elif op == 7 and parent is not None:  # nested deep
        # the wrappers are drawn innermost first, but built from the outside in: appending the nest to each new
        # wrapper walked the whole nest again (quadratic in the depth, ~0.4 ms an op); the tree is the same
        names = [rng.choice(["component", "entryRelationship", "section", "organizer"])
                 for _ in range(rng.choice([2, 10, 100, 300]))]
        outer = inner = etree.Element(ns + names[-1])
        for name in reversed(names[:-1]):
            inner = etree.SubElement(inner, ns + name)
        inner.append(el.__copy__())
        parent.replace(el, outer)
        if not last:
            elements[at_el:at_el + span] = list(outer.iter(etree.Element))
    elif op == 8:
        for a in list(el.attrib)[: rng.randint(1, 3)]:
            del el.attrib[a]
    else:  # text between elements, or a comment or processing instruction
        el.tail = xml_text(draw, rng)
        if parent is not None and rng.random() < 0.5:
            parent.insert(parent.index(el), rng.choice([etree.Comment("x"), etree.PI("x", "y")]))


def write_xml(draw: st.DrawFn, rng: random.Random, root: Any) -> bytes:
    """The tree as bytes: UTF-8 or GB18030, declared or not, or declared one way and written the other."""
    from lxml import etree

    encoding = rng.choice(["UTF-8", "GB18030", "UTF-8-undeclared", "lie"])
    if encoding == "UTF-8-undeclared":
        return etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    if encoding == "lie":
        body = etree.tostring(root, encoding="GB18030", xml_declaration=False)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
    return etree.tostring(root, encoding=encoding, xml_declaration=True)


def xml_damage(draw: st.DrawFn, rng: random.Random, data: bytes) -> bytes:
    """Markup inserted (DOCTYPEs, entities, CDATA, bad characters, declarations), or the bytes damaged."""
    if rng.random() < 0.5:
        at = rng.randint(0, len(data))
        return data[:at] + rng.choice(XML_BYTES) + data[at:]
    return damage(draw, rng, data)
