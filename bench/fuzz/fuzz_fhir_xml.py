"""Fuzz FHIR XML validation as `POST /fhir/$validate` (Content-Type application/fhir+xml) and `helixgate validate
FILE.xml` run it: the body read by gateway.validate.read_resource (profiles/xml.py, defused), validated by the
default validator, the OperationOutcome written by orjson. ParseError (the 400 of unreadable XML) is the one
declared refusal.

Seeds: the XML instances of fhir-test-cases/validator (corpora, see common.corpora_root) and the JSON examples of the
installed IG packages written as FHIR XML, up to 64 KB each. Each input is a seed with 1-4 mutations of its element
tree (values replaced by extreme ones, elements renamed, dropped, multiplied, moved or nested deep, attributes and
text added, narratives replaced); one in six is then damaged as bytes (cut, DOCTYPE and entities, encodings, BOMs,
invalid UTF-8).

    python bench/fuzz/fuzz_fhir_xml.py --count 100000 --seconds 3600 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import contextlib
import copy
import random
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, fromstring, tostring

import orjson
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import JUNK_STRINGS, ROOT, arguments, corpora_root, run

from gateway.validate import read_resource
from mappers.exceptions import ParseError as GatewayParseError
from mappers.exceptions import operation_outcome

MAX_SEED = 64 * 1024
MAX_INPUT = 512 * 1024  # larger inputs measure size limits, not robustness: the seed is used as it was
F = "{http://hl7.org/fhir}"
XHTML = "{http://www.w3.org/1999/xhtml}"
NAMES = ["extension", "modifierExtension", "id", "meta", "text", "contained", "valueString", "valueInteger",
         "valueDecimal", "valueBoolean", "valueCodeableConcept", "coding", "system", "code", "display", "reference",
         "url", "profile", "entry", "resource", "fullUrl", "status", "subject", "component", "item", "linkId",
         "answer", "div", "versionId", "lastUpdated", "identifier", "type", "data", "contentType", "size", "unit",
         "low", "high", "start", "end", "signature", "link", "relation", "parameter", "name", "part", "language",
         "Patient", "Observation", "Bundle", "Parameters", "Binary", "Questionnaire", "StructureDefinition",
         "effectiveDateTime", "valueQuantity", "valueBase64Binary", "total"]
ATTRIBUTES = ["value", "id", "url", "other", "{http://www.w3.org/2001/XMLSchema-instance}type",
              "{http://www.w3.org/XML/1998/namespace}lang", "{http://example.org/ns}x", "xmlns"]
TEXT = st.text(max_size=12)
DEPTHS = [1, 2, 10, 60, 101, 130, 260, 300, 520, 2000]
DIVS = ['<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>',
        '<div xmlns="http://www.w3.org/1999/xhtml"><a href="#x">y</a><p id="x"/><img src="javascript:x"/></div>',
        '<div xmlns="http://www.w3.org/1999/xhtml">' + "<b>" * 300 + "x" + "</b>" * 300 + "</div>",
        '<div xmlns="http://www.w3.org/1999/xhtml" onclick="x"><p>检验</p></div>', "<div>not xhtml</div>"]
BYTES = [b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b"&a;", b"&#0;", b"&#x110000;", b"<![CDATA[x]]>", b"<?pi x?>",
         b"\xff\xfe", b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\x00", b"</", b"<a:b>",
         b'<?xml version="1.0" encoding="GB18030"?>', b'<?xml version="1.0" encoding="UTF-16"?>',
         b'<?xml version="1.0" encoding="bogus"?>', b"]]>", b"&#xD800;"]


def _to_xml(doc: dict[str, Any]) -> bytes:
    """A JSON resource as FHIR XML by the R4 rules (tests/profiles/test_xml.py has the writer the round trip uses)."""
    from tests.profiles.test_xml import to_xml

    return to_xml(doc)


def _seeds() -> list[bytes]:
    out: list[bytes] = []
    for f in sorted((corpora_root() / "fhir-test-cases" / "validator").rglob("*.xml")):
        data = f.read_bytes()
        if len(data) <= MAX_SEED and b"<!DOCTYPE" not in data:
            out.append(data)  # malformed ones too: their bytes still get damaged in other ways
    for f in sorted((Path.home() / ".fhir" / "packages").glob("*/package/example/*.json")):
        if f.stat().st_size > MAX_SEED:
            continue
        try:
            out.append(_to_xml(orjson.loads(f.read_bytes())))
        except Exception:  # the test writer covers valid FHIR JSON only
            continue
    if not out:
        sys.exit("no seeds: install the FHIR packages (helixgate packages install) or set HELIXGATE_TEST_CORPORA")
    return out


def _elements(root: Element) -> list[tuple[Element, Element]]:
    """(parent, child) pairs of the tree, the root under a dummy parent."""
    holder = Element("holder")
    holder.append(root)
    return [(p, c) for p in holder.iter() for c in p]


_CHILDREN: dict[bytes, list[Element] | None] = {}


def _children(data: bytes) -> list[Element] | None:
    """The elements of a seed (its root included; None: not XML), parsed and listed once: callers place copies."""
    if data not in _CHILDREN:
        try:
            _CHILDREN[data] = [c for _, c in _elements(fromstring(data))]
        except ParseError:
            _CHILDREN[data] = None
    return _CHILDREN[data]


def _mutate(draw: st.DrawFn, rng: random.Random, root: Element, trees: list[bytes]) -> None:
    pairs = _elements(root)
    parent, el = rng.choice(pairs)
    op = rng.randint(0, 9)
    value = rng.choice(JUNK_STRINGS) if rng.random() < 0.5 else draw(TEXT)
    if op == 0:
        targets = [e for _, e in pairs if "value" in e.attrib] or [el]
        rng.choice(targets).set("value", value)
    elif op == 1:
        el.tag = F + rng.choice(NAMES) if rng.random() < 0.8 else rng.choice(["{urn:x}y", "value", F])
    elif op == 2 and parent.tag != "holder":
        parent.remove(el)
    elif op == 3 and parent.tag != "holder":
        for _ in range(rng.choice([1, 2, 20, 100])):
            parent.append(copy.deepcopy(el))
    elif op == 4:  # an element of another seed placed here (a copy: the seeds' trees are parsed once)
        others = _children(rng.choice(trees))
        if others is None:
            return
        el.append(copy.deepcopy(rng.choice(others)))
    elif op == 5:
        el.set(rng.choice(ATTRIBUTES), value)
    elif op == 6 and parent.tag != "holder":
        inner = el
        for _ in range(rng.choice(DEPTHS)):
            outer = Element(F + rng.choice(["extension", "item", "contained", "valueCodeableConcept"]),
                            {"url": "http://example.org/x"})
            outer.append(inner)
            inner = outer
        parent.remove(el)
        parent.append(inner)
    elif op == 7:
        el.text = value
        if rng.random() < 0.5:
            el.tail = value
    elif op == 8:
        text = SubElement(el, F + "text")
        try:
            text.append(fromstring(rng.choice(DIVS)))
        except ParseError:
            text.text = "<div"
    else:
        root.tag = F + rng.choice(NAMES)


def _damage(draw: st.DrawFn, rng: random.Random, data: bytes) -> bytes:
    at = rng.randint(0, len(data))
    op = rng.randint(0, 3)
    if op == 0:
        return data[:at]
    if op == 1:
        return data[:at] + rng.choice(BYTES) + data[at:]
    if op == 2:
        return rng.choice(BYTES) + data
    return data[:at] + data[at + rng.randint(1, 16):]


def inputs(light: list[bytes], seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed (seven times in eight one that validates in under 20 ms), 1-4 tree mutations when it parses, and one
    time in six damage to the bytes."""
    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        data = rng.choice(light if rng.randint(0, 7) else seeds)
        try:
            root = fromstring(data)  # expat in C: faster than copying a parsed tree (ElementTree copies in Python)
        except ParseError:
            root = None
        if root is not None:
            for _ in range(rng.randint(1, 4)):
                try:
                    _mutate(draw, rng, root, seeds)
                except RecursionError:  # copying a tree an earlier mutation nested deep: enough mutations
                    break
            with contextlib.suppress(RecursionError, ValueError):  # too deep to write: the seed as it was
                # the bytes tostring(root) writes (ASCII, character references), ~20 % sooner
                written = tostring(root, encoding="unicode").encode("ascii", "xmlcharrefreplace")
                if len(written) <= MAX_INPUT:
                    data = written
        return _damage(draw, rng, data) if rng.randint(0, 5) == 0 else data

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    from profiles.context import default_validator

    validator = default_validator()
    seeds = _seeds()
    light = []
    for s in seeds:  # also compiles the profiles the seeds claim, before anything is timed
        t0 = time.perf_counter()
        try:
            validator.validate(read_resource(s, "application/fhir+xml"))
        except GatewayParseError:
            continue
        if time.perf_counter() - t0 < 0.02:
            light.append(s)

    def target(data: bytes) -> None:
        doc = read_resource(data, "application/fhir+xml")
        orjson.dumps(operation_outcome(validator.validate(doc)))

    print(f"{len(seeds)} seeds, {len(light)} light, from {ROOT}", file=sys.stderr)
    stats = run("fhir-xml", inputs(light, seeds), target, (GatewayParseError,), args, "xml")
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
