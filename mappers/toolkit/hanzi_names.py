"""Chinese personal names for EU documents: the Han characters kept, plus a Hanyu Pinyin form with family and given.

A Han name is surname first; the surname is a compound one (欧阳, 司马, …) when the name starts with one, else its
first character. Romanisation follows GB/T 28039-2011 (Chinese names in Hanyu Pinyin): the surname one word, the given
name one word, written without tones, in capitals (the passport form, which cross-border identity matching uses), and
ü written YU (LÜ → LYU, NÜ → NYU; LÜE/NÜE → LUE/NUE). pypinyin reads a character with its common reading, which is
wrong for many surnames (曾 ceng instead of Zeng, 单 dan instead of Shan): surnames are read from a table
(surname-readings.json, data), the given name by pypinyin with its phrase dictionary.

Both forms carry the ISO 21090 name representation (FHIR extension iso21090-EN-representation, HL7 v3
EntityNameUse `ABC` alphabetic / `IDE` ideographic), so a reader can tell which is which.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef]+")
REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"


@cache
def readings() -> tuple[dict[str, str], dict[str, str]]:
    """(single-character surname readings, compound surname readings) from surname-readings.json."""
    doc = json.loads((Path(__file__).parent / "surname-readings.json").read_text(encoding="utf-8"))
    return doc["single"], doc["compound"]


@cache
def compound_surnames() -> tuple[str, ...]:
    """Every compound surname known (this table's and the WS/T 500 reader's list), longest first."""
    from mappers.cda_cn.names import compound_surnames as cn_list

    return tuple(sorted({*readings()[1], *cn_list()}, key=lambda s: (-len(s), s)))


def is_han(text: str) -> bool:
    return bool(text) and HAN.fullmatch(text) is not None


def split(text: str) -> tuple[str, str] | None:
    """(family, given) of an all-Han name of at least two characters, else None."""
    text = text.strip()
    if not is_han(text) or len(text) < 2:
        return None
    for surname in compound_surnames():
        if text.startswith(surname) and len(text) > len(surname):
            return surname, text[len(surname):]
    return text[0], text[1:]


def official(syllable: str) -> str:
    """One toneless pypinyin syllable (ü as v) as GB/T 28039-2011 spells it: lüe/nüe → lue/nue, lü/nü → lyu/nyu
    (after j, q, x and y ü is already written u)."""
    if "ve" in syllable:
        return syllable.replace("ve", "ue")
    return syllable.replace("v", "yu")


def _syllables(text: str) -> list[str]:
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(text, style=Style.NORMAL, errors="default")


def surname_pinyin(family: str) -> str:
    """The surname in pinyin (lowercase, one word): from the surname table, else each character by pypinyin's
    reading (a compound surname not in the table, or a common one whose usual reading is its surname reading)."""
    single, compound = readings()
    if family in compound:
        return official_word([compound[family]])
    return official_word([single.get(ch) or _syllables(ch)[0] for ch in family])


def given_pinyin(given: str) -> str:
    """The given name in pinyin (lowercase, one word)."""
    return official_word(_syllables(given))


def official_word(syllables: list[str]) -> str:
    return "".join(official(s) for s in syllables)


def _representation(code: str) -> dict[str, Any]:
    return {"url": REPRESENTATION, "valueCode": code}


def han_parts(name: dict[str, Any]) -> tuple[str, str] | None:
    """(family, given) in Han characters of a HumanName, from its family/given when both are Han, else its text."""
    family = name.get("family")
    givens = name.get("given") or []
    if isinstance(family, str) and is_han(family) and givens and all(isinstance(g, str) and is_han(g) for g in givens):
        return family, "".join(givens)
    text = name.get("text")
    if isinstance(text, str) and not family and not givens:
        return split(text)
    return None


def name_forms(name: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The two forms of a Han HumanName: alphabetic (ABC, pinyin in capitals, family/given split, text "FAMILY
    GIVEN") then ideographic (IDE, the Han characters, text as written). None for a name that is not all Han or
    cannot be split. Other elements of the name (use, period, …) are kept on both."""
    parts = han_parts(name)
    if parts is None:
        return None
    family, given = parts
    keep = {k: v for k, v in name.items() if k not in ("text", "family", "given", "extension")}
    keep.setdefault("use", "official")
    others = [e for e in name.get("extension") or [] if isinstance(e, dict) and e.get("url") != REPRESENTATION]
    py_family, py_given = surname_pinyin(family).upper(), given_pinyin(given).upper()
    abc = {"extension": [*others, _representation("ABC")], **keep, "text": f"{py_family} {py_given}",
           "family": py_family, "given": [py_given]}
    ide = {"extension": [*others, _representation("IDE")], **keep, "text": name.get("text") or family + given,
           "family": family, "given": [given]}
    return [abc, ide]


def with_name_forms(names: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """`names` with every Han name replaced by its two forms (alphabetic first); and how many were romanised.
    A name that already carries a representation extension is left as it is (the sender chose its forms)."""
    out: list[dict[str, Any]] = []
    done = 0
    for name in names:
        marked = any(isinstance(e, dict) and e.get("url") == REPRESENTATION for e in name.get("extension") or [])
        forms = None if marked else name_forms(name)
        if forms:
            out.extend(forms)
            done += 1
        else:
            out.append(name)
    return out, done
