"""profiles.xmlwrite: FHIR JSON → FHIR R4 XML through the core definitions (http://hl7.org/fhir/R4/xml.html).

- Round trip: every resource of every installed package (the examples of each, and every conformance resource the
  packages hold: profiles, value sets, code systems, ...), found through the package client, written as XML and
  read back (profiles.xml) gives the same JSON, types included, narrative divs character for character (the writer
  writes the div as given, the reader takes it as written).
- Element order: every XML file of the fhir-test-cases corpus whose elements are in the order the definitions say
  (the spec's own examples) is written back, after a trip through JSON, with the same elements in the same order.
- Edge cases: primitive extensions and ids, nulls in arrays, xhtml, contained and Bundle resources, decimals,
  unicode, escaping, choice types, content references; and what XML cannot carry is refused, naming the path.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, fromstring

import orjson
import pytest

from profiles.definitions import Definitions
from profiles.packages import PackageError, cache_dir, closure
from profiles.xml import XmlError, core_definitions, xml_to_json
from profiles.xmlwrite import XmlWriteError, json_to_xml
from tests import corpora

F = "{http://hl7.org/fhir}"
XHTML = "http://www.w3.org/1999/xhtml"
DIV = f'<div xmlns="{XHTML}">'


@pytest.fixture(scope="module")
def defs() -> Definitions:
    try:
        return core_definitions()
    except PackageError as e:
        pytest.fail(f"the R4 core definitions are needed to write XML and are not installed: {e}")


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where `a` and `b` differ, types included (1, 1.0 and True are three values)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}" for k in a.keys() ^ b.keys()]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if type(a) is type(b) and a == b else [path]


def round_trip(doc: dict[str, Any], defs: Definitions) -> dict[str, Any]:
    return xml_to_json(json_to_xml(doc, defs), defs)


def write(doc: dict[str, Any], defs: Definitions) -> str:
    return json_to_xml(doc, defs, declaration=False).decode()


# ---- every resource of every installed package ----
def package_files() -> list[tuple[str, list[Path]]]:
    """(package, its JSON resources) for every installed package of the package client's cache, each package's
    own folder only (its dependencies are packages of their own)."""
    root = cache_dir()
    out = []
    for pkg in sorted(root.iterdir()) if root.is_dir() else []:
        files = [f for f in sorted((pkg / "package").rglob("*.json"))
                 if not f.name.startswith(".") and f.name != "package.json"]
        out.append((pkg.name, files))
    return out


PACKAGES = package_files()


def test_the_default_packages_are_installed() -> None:
    names = {name for name, _ in PACKAGES}
    for spec in ("hl7.fhir.r4.core#4.0.1", "hl7.fhir.uv.genomics-reporting#3.0.0", "hl7.fhir.uv.ips#2.0.0"):
        assert spec in names, f"{spec} is not installed (helixgate packages install)"
    closure(["hl7.fhir.uv.genomics-reporting#3.0.0"])  # the client resolves what the cache holds


@pytest.mark.parametrize(("package", "files"), PACKAGES, ids=[name for name, _ in PACKAGES])
def test_every_resource_of_the_package_round_trips(defs: Definitions, package: str, files: list[Path]) -> None:
    examples = resources = 0
    failures = []
    for f in files:
        doc = orjson.loads(f.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
            continue  # package metadata (.index.json and the like)
        resources += 1
        examples += "/example/" in f.as_posix()
        try:
            back = round_trip(doc, defs)
        except (XmlWriteError, XmlError) as e:
            failures.append(f"{f.name}: {e}")
            continue
        if diff := differences(doc, back):
            failures.append(f"{f.name}: {diff[:5]}")
    assert resources > 0
    assert not failures, f"{len(failures)} of {resources} resources did not round-trip: {failures[:10]}"
    if package.startswith(("hl7.fhir.uv.genomics-reporting#", "hl7.fhir.uv.ips#")):
        assert examples > 40  # the IGs' examples are among them (204 and 44)


# ---- element order against the spec's own XML ----
def element_names(el: Element) -> list[str]:
    out = [el.tag]
    if el.tag != f"{{{XHTML}}}div":
        for child in el:
            if isinstance(child.tag, str):
                out += element_names(child)
    return out


def test_element_order_is_the_specs(defs: Definitions) -> None:
    corpus = corpora.corpus("fhir-test-cases")
    same = differ = 0
    for f in sorted(corpus.rglob("*.xml")):
        data = f.read_bytes()
        try:
            doc = xml_to_json(data, defs)
            written = json_to_xml(doc, defs)
        except (XmlError, XmlWriteError):
            continue  # malformed on purpose, or content the reader kept that no definition has a place for
        if element_names(fromstring(data)) == element_names(fromstring(written)):
            same += 1
        else:
            differ += 1
            assert f.name in OUT_OF_ORDER, f"{f.name}: elements written in another order than the source's"
    assert same > 200 and differ == len(OUT_OF_ORDER)


# test cases whose source XML is out of the definitions' order on purpose (the writer puts it right)
OUT_OF_ORDER = {"observation-example.xml": "status after text's extension", "patient-min-length-profile.xml":
                "ElementDefinition.path after extension", "q-enablewhen-2.xml": "identifier after version"}


# ---- edge cases ----
def test_root_namespace_declaration_and_definition_order(defs: Definitions) -> None:
    doc = {"gender": "female", "name": [{"given": ["A"], "family": "B"}], "id": "p1", "resourceType": "Patient",
           "active": True, "meta": {"versionId": "2"}}
    assert json_to_xml(doc, defs) == (
        b'<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><id value="p1"/><meta>'
        b'<versionId value="2"/></meta><active value="true"/><name><family value="B"/><given value="A"/></name>'
        b'<gender value="female"/></Patient>')


def test_primitive_extensions_ids_and_nulls_in_arrays(defs: Definitions) -> None:
    ext = {"url": "http://e", "valueString": "x"}
    doc = {"resourceType": "Patient", "birthDate": "1970", "_birthDate": {"id": "b1", "extension": [ext]},
           "name": [{"given": ["A", None, "C"], "_given": [None, {"id": "g2", "extension": [ext]}, None]},
                    {"_given": [{"extension": [ext]}]}],
           "_gender": {"extension": [ext]}}
    xml = write(doc, defs)
    assert ('<birthDate id="b1" value="1970"><extension url="http://e"><valueString value="x"/></extension>'
            '</birthDate>') in xml
    assert ('<name><given value="A"/><given id="g2"><extension url="http://e"><valueString value="x"/></extension>'
            '</given><given value="C"/></name>') in xml
    assert '<gender><extension url="http://e">' in xml
    assert round_trip(doc, defs) == doc


def test_element_ids_and_extension_urls_are_attributes(defs: Definitions) -> None:
    doc = {"resourceType": "Observation", "id": "o", "status": "final", "code": {"id": "c", "text": "t"},
           "component": [{"id": "k", "modifierExtension": [{"id": "m", "url": "http://m", "valueBoolean": True}],
                          "code": {"text": "x"}}],
           "extension": [{"url": "http://a", "extension": [{"url": "n", "valueDecimal": 2.5}]}]}
    xml = write(doc, defs)
    assert xml.startswith('<Observation xmlns="http://hl7.org/fhir"><id value="o"/><extension url="http://a">'
                          '<extension url="n"><valueDecimal value="2.5"/></extension></extension>')
    assert '<code id="c"><text value="t"/></code>' in xml
    assert ('<component id="k"><modifierExtension id="m" url="http://m"><valueBoolean value="true"/>'
            '</modifierExtension><code><text value="x"/></code></component>') in xml
    assert round_trip(doc, defs) == doc


def test_contained_bundle_and_parameters_resources_are_wrapped(defs: Definitions) -> None:
    patient = {"resourceType": "Patient", "id": "p", "contained": [{"resourceType": "Organization", "id": "o",
                                                                    "name": "Acme"}],
               "managingOrganization": {"reference": "#o"}}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": patient},
        {"response": {"status": "201", "outcome": {"resourceType": "OperationOutcome",
                                                   "issue": [{"severity": "error", "code": "invalid"}]}}}]}
    xml = write(bundle, defs)
    assert ('<entry><fullUrl value="urn:uuid:1"/><resource><Patient><id value="p"/><contained><Organization>'
            '<id value="o"/><name value="Acme"/></Organization></contained>') in xml
    assert xml.count('xmlns="http://hl7.org/fhir"') == 1  # declared once, on the root
    assert "<outcome><OperationOutcome><issue>" in xml
    assert round_trip(bundle, defs) == bundle
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "p", "resource": {"resourceType": "Patient", "id": "x"}},
        {"name": "n", "valueInteger": 3, "part": [{"name": "q", "valueString": "s"}]}]}
    assert round_trip(params, defs) == params


def test_choice_types_and_content_references(defs: Definitions) -> None:
    q = {"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "group", "item": [
        {"linkId": "1.1", "type": "boolean", "enableWhen": [{"question": "0", "operator": "exists",
                                                            "answerBoolean": True}],
         "item": [{"linkId": "1.1.1", "type": "decimal", "initial": [{"valueDecimal": 0.5}]}]}]}]}
    xml = write(q, defs)
    assert ('<enableWhen><question value="0"/><operator value="exists"/><answerBoolean value="true"/>'
            '</enableWhen><item><linkId value="1.1.1"/>') in xml
    assert round_trip(q, defs) == q


def test_narrative_is_kept_as_written_in_the_xhtml_namespace(defs: Definitions) -> None:
    div = (f'{DIV}<p class="a">1 &lt; 2 &amp; 3<br/>caf\u00e9 \u2264 &#x2264;</p><!-- note -->'
           '<a href="?a=1&amp;b=&quot;2&quot;">x</a><img src="i.png" /></div>')
    doc = {"resourceType": "Patient", "text": {"status": "generated", "div": div}}
    xml = write(doc, defs)
    assert f'<text><status value="generated"/>{div}</text>' in xml
    assert round_trip(doc, defs)["text"]["div"] == div


@pytest.mark.parametrize(("div", "words"), [
    ("<div>no namespace</div>", "not an XHTML div"), (f"{DIV}<p>unclosed</div>", "not well-formed"),
    (f"{DIV}&nbsp;</div>", "undefined entity"), (f'<p xmlns="{XHTML}">x</p>', "its XHTML div element"),
    (f'<?xml version="1.0"?>{DIV}x</div>', "nothing before it"), (f"{DIV}bell\x07</div>", "not well-formed"),
    (f"{DIV}\ud800</div>", r"U\+D800"), ('<div xmlns="http://hl7.org/fhir">x</div>', "not an XHTML div"), (3, "string"),
])
def test_a_narrative_xml_cannot_hold_is_refused(defs: Definitions, div: Any, words: str) -> None:
    with pytest.raises(XmlWriteError, match=words) as e:
        json_to_xml({"resourceType": "Patient", "text": {"status": "generated", "div": div}}, defs)
    assert e.value.path == "Patient.text.div"


@pytest.mark.parametrize(("value", "lexical"), [
    (1.5, "1.5"), (100, "100"), (-0.0001, "-0.0001"), (1e21, "1e+21"), (1000.0, "1000.0"),
    (Decimal("1.50"), "1.50"), (Decimal("1E+3"), "1E+3"), (Decimal("-0.000"), "-0.000"), (12345678901234567890,
                                                                                            "12345678901234567890"),
])
def test_decimals_are_written_as_their_json_form(defs: Definitions, value: Any, lexical: str) -> None:
    doc = {"resourceType": "Observation", "status": "final", "code": {"text": "t"}, "valueQuantity": {"value": value}}
    xml = write(doc, defs)
    assert f'<valueQuantity><value value="{lexical}"/></valueQuantity>' in xml
    back = xml_to_json(xml.encode(), defs)["valueQuantity"]["value"]
    assert back == value  # the same number (a Decimal compares equal to the float or int read back)


def test_decimals_parsed_as_written_stay_as_written(defs: Definitions) -> None:
    import json

    text = b'{"resourceType": "Observation", "status": "final", "code": {"text": "t"}, "valueQuantity": ' \
           b'{"value": 1.50, "unit": "mg"}, "referenceRange": [{"low": {"value": 1e3}}]}'
    xml = json_to_xml(json.loads(text, parse_float=Decimal), defs)
    assert b'<value value="1.50"/>' in xml and b'<value value="1E+3"/>' in xml


def test_unicode_and_escaping(defs: Definitions) -> None:
    doc = {"resourceType": "Patient", "name": [{"text": "张三 \U0001f600 Zoë", "family": 'a&b<c>"d\'e',
                                                "given": ["line1\nline2\r\n\ttab", "  spaced  "]}]}
    xml = json_to_xml(doc, defs)
    assert '张三 \U0001f600 Zoë'.encode() in xml
    assert b'<family value="a&amp;b&lt;c&gt;&quot;d\'e"/>' in xml
    assert b'value="line1&#10;line2&#13;&#10;&#9;tab"' in xml  # attribute-value normalisation would eat these
    assert round_trip(doc, defs) == doc


@pytest.mark.parametrize(("doc", "path", "words"), [
    ({"resourceType": "Patient", "nickname": "Bob"}, "Patient.nickname", "unknown property"),
    ({"resourceType": "Patient", "": 1}, "Patient.", "unknown property ''"),
    ({"resourceType": "Patient", "name": [{"family": "F"}], "_name": [{"id": "n"}]}, "Patient.name",
     "unknown property '_name'"),  # a complex element has no shadow: refused, not dropped beside its value
    ({"resourceType": "Patient", "name": [{"id": "a", "_id": {"extension": []}}]}, "Patient.name[0].id",
     "unknown property '_id'"),  # nor an attribute
    ({"resourceType": "Patient", "_contained": [{}]}, "Patient.contained", "unknown property '_contained'"),
    ({"resourceType": "Patient", "name": []}, "Patient.name", "an empty array"),
    ({"resourceType": "Patient", "name": [{"given": []}]}, "Patient.name[0].given", "an empty array"),
    ({"resourceType": "Patient", "_birthDate": {"extension": []}}, "Patient.birthDate.extension", "an empty array"),
    ({"resourceType": "Patient", "_birthDate": {"extension": {"url": "u"}}}, "Patient.birthDate.extension",
     "must be an array"),
    ({"resourceType": "Patient", "name": [{"given": ["A", None]}]}, "Patient.name[0].given[1]", "null"),
    ({"resourceType": "Patient", "name": [{"given": ["A"], "_given": [None, None]}]}, "Patient.name[0].given",
     "different lengths"),
    ({"resourceType": "Patient", "_active": {"foo": 1}}, "Patient.active.foo", "only id and extension"),
    ({"resourceType": "Patient", "name": [{"text": "bell\x07"}]}, "Patient.name[0].text", r"U\+0007"),
    ({"resourceType": "Patient", "id": "\ud800"}, "Patient.id", r"U\+D800"),
    ({"resourceType": "Gizmo"}, "", "not a FHIR R4 resource type"),
    ({"resourceType": "DomainResource"}, "", "not a FHIR R4 resource type"),  # abstract
    ({"resourceType": "Patient", "contained": [{"id": "x"}]}, "Patient.contained[0]", "not a FHIR R4 resource"),
    ({"resourceType": "Patient", "name": "A"}, "Patient.name", "expected a JSON object"),
    ({"resourceType": "Patient", "extension": [{"url": 5}]}, "Patient.extension[0].url", "must be a string"),
    ({"resourceType": "Observation", "valueQuantity": {"value": float("nan")}}, "Observation.valueQuantity.value",
     "not a FHIR decimal"),
])
def test_what_xml_cannot_carry_is_refused_naming_the_path(defs: Definitions, doc: dict[str, Any], path: str,
                                                          words: str) -> None:
    with pytest.raises(XmlWriteError, match=words) as e:
        json_to_xml(doc, defs)
    assert e.value.path == path


def test_same_input_same_bytes_and_no_definitions_given_means_the_core(defs: Definitions) -> None:
    doc = {"resourceType": "Patient", "active": False, "name": [{"family": "F"}]}
    assert json_to_xml(doc) == json_to_xml(dict(reversed(doc.items())), defs)


def test_deep_nesting_is_refused_not_a_crash(defs: Definitions) -> None:
    ext: dict[str, Any] = {"url": "http://x", "valueString": "leaf"}
    for _ in range(5000):
        ext = {"url": "http://x", "extension": [ext]}
    with pytest.raises(XmlWriteError, match="nested too deeply"):
        json_to_xml({"resourceType": "Patient", "extension": [ext]}, defs)
