"""Section narrative: CDA R2 narrative block ⇄ FHIR XHTML keeps the text, tables, lists and IDs; active content and
elements with no counterpart are dropped (and named)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from mappers.ehdsi_cda.narrative import from_xhtml, to_xhtml
from tests.corpora import params

V3 = "urn:hl7-org:v3"


def _text(el: etree._Element) -> str:
    return " ".join("".join(el.itertext()).split())


def _cda(xml: str) -> etree._Element:
    return etree.fromstring(f'<text xmlns="{V3}">{xml}</text>')


def test_structure_and_ids_are_kept_both_ways() -> None:
    src = _cda('<paragraph>Blood <content ID="c1" styleCode="Bold">O+</content></paragraph>'
               '<list listType="ordered"><item>one</item><item>two</item></list>'
               '<table><thead><tr><th>Drug</th></tr></thead><tbody><tr><td ID="d1">Eutirox</td></tr></tbody></table>')
    div, dropped = to_xhtml(src, "en-GB")
    assert dropped == []
    html = etree.fromstring(div)
    x = "{http://www.w3.org/1999/xhtml}"
    assert html.tag == f"{x}div" and html.get("lang") == "en-GB"
    assert html.find(f"{x}p/{x}span").get("id") == "c1" and html.find(f"{x}p/{x}span/{x}b").text == "O+"
    assert [li.text for li in html.find(f"{x}ol")] == ["one", "two"]
    assert html.find(f".//{x}td").get("id") == "d1"
    back, dropped = from_xhtml(div)
    assert dropped == [] and _text(back) == _text(src)
    assert back.find(f".//{{{V3}}}td").get("ID") == "d1"
    assert back.find(f"{{{V3}}}list").get("listType") == "ordered"


def test_active_content_and_unknown_elements_do_not_pass() -> None:
    src = _cda('<paragraph><linkHtml href="javascript:alert(1)">x</linkHtml><renderMultiMedia referencedObject="m"/>'
               ' kept</paragraph>')
    div, dropped = to_xhtml(src)
    assert "javascript" not in div and "renderMultiMedia" in dropped and "kept" in div
    back, dropped = from_xhtml('<div xmlns="http://www.w3.org/1999/xhtml"><div><p>a<img src="x.png"/></p>'
                               '<p>b</p></div></div>')
    assert "img" in dropped and _text(back) == "ab"
    # CDA paragraphs do not nest, whatever the XHTML held
    assert back.find(f".//{{{V3}}}paragraph/{{{V3}}}paragraph") is None


def _summaries(folder: Path) -> list[object]:
    return [pytest.param(p, id=p.name) for p in sorted(folder.glob("*.xml")) if "-eP-" not in p.name]


@pytest.mark.parametrize("path", params("ehdsi-cda", _summaries))
def test_every_sample_section_keeps_its_narrative_text(path: Path) -> None:
    root = etree.parse(str(path), etree.XMLParser(remove_comments=True, resolve_entities=False)).getroot()
    for text in root.iter(f"{{{V3}}}text"):
        if etree.QName(text.getparent()).localname != "section" or not _text(text):
            continue
        div, _ = to_xhtml(text)
        back, _ = from_xhtml(div)
        assert _text(etree.fromstring(div)) == _text(text)
        assert _text(back) == _text(text)
