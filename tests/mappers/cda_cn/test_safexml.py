"""Hostile and broken XML is refused with a ParseError that says what and where, before any entity is expanded."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers.cda_cn import to_fhir
from mappers.cda_cn.safexml import parse_xml
from mappers.exceptions import LimitExceeded, ParseError

SAMPLES = Path(__file__).parent / "samples"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>"""
XXE_FILE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title></ClinicalDocument>"""
XXE_NETWORK = b"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument SYSTEM "http://127.0.0.1:9/evil.dtd">
<ClinicalDocument xmlns="urn:hl7-org:v3"/>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><r/>"""
LOWERCASE_DOCTYPE = b"""<?xml version="1.0"?>\n\n<!doctype ClinicalDocument><ClinicalDocument/>"""


@pytest.mark.parametrize(("data", "line"), [
    (BILLION_LAUGHS, "line 2"),
    (XXE_FILE, "line 2"),
    (XXE_NETWORK, "line 2"),
    (PARAMETER_ENTITY, "line 2"),
    (LOWERCASE_DOCTYPE, "line 3"),
])
def test_doctype_and_entities_are_refused(data: bytes, line: str) -> None:
    with pytest.raises(ParseError) as e:
        to_fhir(data)
    issue = e.value.issues[0]
    assert issue.details == "cda-doctype-forbidden"
    assert "not allowed" in issue.message and issue.expression == line
    assert "root:" not in str(e.value)  # /etc/passwd was never read into the message


def test_an_undeclared_entity_is_a_well_formedness_error_not_an_expansion() -> None:
    with pytest.raises(ParseError) as e:
        parse_xml(b"<ClinicalDocument>&xxe;</ClinicalDocument>")
    assert e.value.issues[0].details == "cda-not-well-formed" and "xxe" in str(e.value)


@pytest.mark.parametrize(("data", "details", "text"), [
    (b'<?xml version="1.0" encoding="ISO-8859-1"?><a/>', "cda-encoding", "'iso-8859-1' is not supported"),
    ('<?xml version="1.0" encoding="UTF-16"?><a/>'.encode("utf-16"), "cda-encoding", "UTF-16"),
    (b'<?xml version="1.0" encoding="UTF-8"?>\n<a>\xd5\xc5</a>', "cda-encoding", "not valid UTF-8 as declared"),
    (b"<a><b></a>", "cda-not-well-formed", "mismatch"),
    (b"", "cda-not-well-formed", ""),
])
def test_bad_bytes_are_named(data: bytes, details: str, text: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_xml(data)
    assert e.value.issues[0].details == details
    assert text in str(e.value)


def test_size_limit() -> None:
    data = (SAMPLES / "lab-cbc.utf8.xml").read_bytes()
    with pytest.raises(LimitExceeded, match=r"the limit is 1000"):
        parse_xml(data, max_bytes=1000)


def test_gb18030_declared_and_undeclared_and_gbk_alias() -> None:
    root, enc, notes = parse_xml((SAMPLES / "lab-genetic.gb18030.xml").read_bytes())
    assert enc == "gb18030" and not notes and "诸葛婷" in "".join(root.itertext())
    body = "<a>检验记录</a>".encode("gb18030")
    root, enc, notes = parse_xml(body)
    assert (root.text, enc) == ("检验记录", "gb18030") and "decoded as GB18030" in notes[0]
    root, enc, _ = parse_xml(b'<?xml version="1.0" encoding="GBK"?>' + body)
    assert (root.text, enc) == ("检验记录", "gb18030")


def test_utf8_bom_is_accepted() -> None:
    root, enc, _ = parse_xml(b"\xef\xbb\xbf<a>\xe5\xbc\xa0</a>")
    assert (root.text, enc) == ("张", "utf-8")
