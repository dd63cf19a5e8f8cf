"""Chinese names for EU documents: the surname-reading table, compound surnames, ü as YU, the two name forms."""

from __future__ import annotations

import pytest
from pypinyin import Style, lazy_pinyin, pinyin

from mappers.toolkit import hanzi_names as hn

SINGLE, COMPOUND = hn.readings()

# The readings the issue names (independent of the table: a typo in the table fails here)
EXPECTED_SINGLE = {"单": "SHAN", "曾": "ZENG", "解": "XIE", "仇": "QIU", "朴": "PIAO", "查": "ZHA", "区": "OU",
                   "盖": "GE", "乐": "YUE", "覃": "QIN", "缪": "MIAO", "翟": "ZHAI"}
EXPECTED_COMPOUND = {"欧阳": "OUYANG", "司马": "SIMA", "诸葛": "ZHUGE", "上官": "SHANGGUAN", "皇甫": "HUANGFU",
                     "尉迟": "YUCHI", "公孙": "GONGSUN", "慕容": "MURONG", "东方": "DONGFANG", "令狐": "LINGHU",
                     "长孙": "ZHANGSUN", "宇文": "YUWEN", "司徒": "SITU", "夏侯": "XIAHOU", "万俟": "MOQI",
                     "单于": "CHANYU", "澹台": "TANTAI", "乐正": "YUEZHENG"}


@pytest.mark.parametrize("surname", sorted(SINGLE))
def test_each_single_surname_reading_is_one_pypinyin_knows_and_overrides_its_first(surname: str) -> None:
    reading = SINGLE[surname]
    assert reading in pinyin(surname, style=Style.NORMAL, heteronym=True)[0]
    assert lazy_pinyin(surname)[0] != reading  # else the entry would be needless
    forms = hn.name_forms({"text": surname + "小明"})
    assert forms is not None
    assert forms[0]["family"] == hn.official(reading).upper() and forms[0]["given"] == ["XIAOMING"]
    assert forms[1]["family"] == surname and forms[1]["given"] == ["小明"]


@pytest.mark.parametrize("surname", sorted(COMPOUND))
def test_each_compound_surname_is_split_off_whole_and_read_from_the_table(surname: str) -> None:
    assert len(surname) == 2
    syllables = [pinyin(ch, style=Style.NORMAL, heteronym=True)[0] for ch in surname]
    # the reading is two syllables, each one pypinyin lists for its character
    assert any(COMPOUND[surname] == a + b for a in syllables[0] for b in syllables[1])
    assert hn.split(surname + "明") == (surname, "明")
    forms = hn.name_forms({"text": surname + "明"})
    assert forms is not None and forms[0]["family"] == hn.official_word([COMPOUND[surname]]).upper()


@pytest.mark.parametrize(("surname", "expected"), sorted(EXPECTED_SINGLE.items()))
def test_the_named_surnames_read_as_surnames(surname: str, expected: str) -> None:
    assert hn.surname_pinyin(surname).upper() == expected
    assert lazy_pinyin(surname)[0].upper() != expected  # pypinyin alone gets these wrong


@pytest.mark.parametrize(("surname", "expected"), sorted(EXPECTED_COMPOUND.items()))
def test_the_named_compound_surnames(surname: str, expected: str) -> None:
    family, given = hn.split(surname + "小明") or ("", "")
    assert (family, given) == (surname, "小明")
    assert hn.surname_pinyin(family).upper() == expected


def test_the_wider_compound_list_of_the_ws_t_500_reader_also_splits() -> None:
    # 太史 is only in mappers/cda_cn/tables/compound-surnames.json (if it is ever added here, the split stays)
    assert hn.split("太史慈") == ("太史", "慈")
    assert hn.name_forms({"text": "太史慈"})[0]["family"] == "TAISHI"  # type: ignore[index]


@pytest.mark.parametrize(("name", "family", "given"), [
    ("吕小明", "LYU", "XIAOMING"),   # lü → LYU (GB/T 28039-2011, passports)
    ("女娲", "NYU", "WA"),           # nü → NYU
    ("略小", "LUE", "XIAO"),         # lüe → LUE
    ("虐明", "NUE", "MING"),         # nüe → NUE
    ("张绿", "ZHANG", "LYU"),        # in a given name too
    ("闾丘露薇", "LYUQIU", "LUWEI"),  # and in a compound surname
    ("徐旭", "XU", "XU"),            # after j/q/x/y ü is already written u
    ("曾国藩", "ZENG", "GUOFAN"),
    ("单田芳", "SHAN", "TIANFANG"),
])
def test_u_umlaut_is_written_yu_on_official_names(name: str, family: str, given: str) -> None:
    abc, ide = hn.name_forms({"use": "official", "text": name}) or [{}, {}]
    assert (abc["family"], abc["given"], abc["text"]) == (family, [given], f"{family} {given}")
    assert not any(ch in abc["text"] for ch in "üÜvV:")
    assert ide["text"] == name and ide["family"] + ide["given"][0] == name


def test_name_forms_carry_their_representation_and_keep_the_rest() -> None:
    name = {"use": "official", "text": "欧阳明", "family": "欧阳", "given": ["明"], "period": {"start": "2000"},
            "extension": [{"url": "urn:x", "valueString": "kept"}]}
    abc, ide = hn.name_forms(name) or [{}, {}]
    assert abc["extension"][-1] == {"url": hn.REPRESENTATION, "valueCode": "ABC"}
    assert ide["extension"][-1] == {"url": hn.REPRESENTATION, "valueCode": "IDE"}
    for form in (abc, ide):
        assert form["use"] == "official" and form["period"] == {"start": "2000"}
        assert form["extension"][0] == {"url": "urn:x", "valueString": "kept"}
    assert (abc["family"], abc["given"]) == ("OUYANG", ["MING"])
    assert (ide["family"], ide["given"], ide["text"]) == ("欧阳", ["明"], "欧阳明")


def test_family_and_given_already_split_are_used_as_given() -> None:
    # HL7 v2 PID-5 gives family^given: 曾 / 小明, never re-split from the text
    abc, _ = hn.name_forms({"family": "曾", "given": ["小", "明"]}) or [{}, {}]
    assert (abc["family"], abc["given"]) == ("ZENG", ["XIAOMING"])


@pytest.mark.parametrize("name", [
    {"text": "买买提·艾力"},                 # transliterated (Uyghur) names keep their interpunct: not split
    {"family": "Doe", "given": ["Jane"]},   # not Han
    {"text": "张"},                          # too short to split
    {"text": "Li Ming"},
    {"family": "李", "given": ["Ming"]},    # mixed: not ours to guess
])
def test_names_that_are_not_all_han_are_left_alone(name: dict) -> None:
    assert hn.name_forms(name) is None
    assert hn.with_name_forms([name]) == ([name], 0)


def test_a_name_with_a_representation_already_is_kept_as_the_sender_chose() -> None:
    marked = {"text": "曾小明", "extension": [{"url": hn.REPRESENTATION, "valueCode": "IDE"}]}
    assert hn.with_name_forms([marked]) == ([marked], 0)
    out, n = hn.with_name_forms([{"text": "曾小明"}, {"family": "Doe"}])
    assert n == 1 and [f.get("family") for f in out] == ["ZENG", "曾", "Doe"]
