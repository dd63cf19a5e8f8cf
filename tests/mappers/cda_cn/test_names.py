"""Chinese names → HumanName family/given (compound surnames as data)."""

from __future__ import annotations

import pytest

from mappers.cda_cn.names import compound_surnames, human_name, name_text, split_name


@pytest.mark.parametrize(("name", "parts"), [
    ("张三", ("张", "三")),
    ("王小明", ("王", "小明")),
    ("欧阳明", ("欧阳", "明")),
    ("司马青", ("司马", "青")),
    ("诸葛婷", ("诸葛", "婷")),
    ("上官雪", ("上官", "雪")),
    ("慕容秀兰", ("慕容", "秀兰")),
    ("欧阳", ("欧", "阳")),  # a two-character name that equals a compound surname: single surname + given
    ("买买提·艾力", None),  # interpunct names are not surname-first Han names
    ("John Smith", None),
    ("李", None),
    ("", None),
])
def test_split(name: str, parts: tuple[str, str] | None) -> None:
    assert split_name(name) == parts


def test_human_name_keeps_text_and_round_trips() -> None:
    name, split = human_name("诸葛婷")
    assert split and name == {"use": "official", "text": "诸葛婷", "family": "诸葛", "given": ["婷"]}
    assert name_text({"family": "诸葛", "given": ["婷"]}) == "诸葛婷"
    assert name_text({"family": "Smith", "given": ["John", "Q"]}) == "John Q Smith"
    text_only, split = human_name("买买提·艾力")
    assert not split and text_only == {"use": "official", "text": "买买提·艾力"}


def test_compound_surnames_are_data_and_longest_first() -> None:
    names = compound_surnames()
    assert {"欧阳", "司马", "诸葛", "上官", "慕容", "皇甫"} <= set(names)
    assert all(len(n) == 2 for n in names) and len(set(names)) == len(names)
