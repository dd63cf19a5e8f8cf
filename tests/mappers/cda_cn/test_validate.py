"""The structural CDA R2 checker catches what a schema would."""

from __future__ import annotations

import pytest

from mappers.cda_cn import check, parse_xml
from tests.mappers.cda_cn.helpers import SAMPLES

LAB = (SAMPLES / "lab-cbc.utf8.xml").read_bytes()


@pytest.mark.parametrize(("old", "new", "problem"), [
    (b"<title>\xe6\xa3\x80\xe9\xaa\x8c\xe8\xae\xb0\xe5\xbd\x95</title>", b"", None),  # title is optional
    (b'<languageCode code="zh-CN"/>', b'<languageCode code="zh-CN"/><bogus/>', "<bogus> is not allowed"),
    (b'<confidentialityCode code="N"', b'<confidentialityCodeX code="N"', "lacks required <confidentialityCode>"),
    (b'extension="POCD_MT000040"', b'extension="POCD_XX"', "typeId must be"),
    (b'<value xsi:type="REAL" value="11.2"/>', b'<value value="11.2"/>', "has no xsi:type"),
    (b'<value xsi:type="CD" code="2"', b'<value xsi:type="CD" codeX="2"', "is coded (CD) but has no code"),
    (b'<effectiveTime value="20240315103000"/>', b'<effectiveTime value="2024-03-15"/>', "is not an HL7 TS"),
    (b'<id extension="D0421" root="2.16.156.10011.1.7"/>', b'<id extension="D0421"/>', "neither root nor"),
    (b'<statusCode code="completed"/>', b"", "lacks required <statusCode>"),
])
def test_problems_are_found(old: bytes, new: bytes, problem: str | None) -> None:
    assert old in LAB
    problems = check(parse_xml(LAB.replace(old, new, 1))[0])
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems
        assert all(p.startswith("line ") for p in problems)


def test_order_is_checked() -> None:
    swapped = LAB.replace(b'<languageCode code="zh-CN"/>', b"").replace(
        b"<title>", b'<languageCode code="zh-CN"/><title>')
    problems = check(parse_xml(swapped)[0])
    assert any("<title> is out of order" in p for p in problems), problems
