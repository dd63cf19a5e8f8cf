"""Chinese personal names (a single unstructured string in WS/T 500) → FHIR HumanName with family/given.

EU receivers (eHDSI, EU Base) need `family` and `given`. A Han name is surname first: the first character is
the family name, unless the name starts with a known compound surname (欧阳, 司马, 诸葛, …, listed as data in
tables/compound-surnames.json). Names in other scripts, or with the interpunct used by Uyghur and other
transliterated names (买买提·艾力), are not split: they keep `text` only and the caller reports it.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef]+")


@cache
def compound_surnames() -> tuple[str, ...]:
    path = Path(__file__).parent / "tables" / "compound-surnames.json"
    names = json.loads(path.read_text(encoding="utf-8"))["compound_surnames"]
    return tuple(sorted(names, key=len, reverse=True))


def split_name(name: str) -> tuple[str, str] | None:
    """(family, given) of a Han name, or None when it cannot be split safely (not all Han, or too short)."""
    text = name.strip()
    if not _HAN.fullmatch(text) or len(text) < 2:
        return None
    for surname in compound_surnames():
        if text.startswith(surname) and len(text) > len(surname):
            return surname, text[len(surname):]
    return text[0], text[1:]


def human_name(name: str) -> tuple[dict[str, Any], bool]:
    """HumanName for `name` (use official, text kept as written) and whether family/given could be split."""
    text = name.strip()
    out: dict[str, Any] = {"use": "official", "text": text}
    parts = split_name(text)
    if parts:
        out["family"], given = parts
        out["given"] = [given]
    return out, parts is not None


def name_text(name: dict[str, Any]) -> str:
    """The single-string form of a HumanName: its text, else family+given (no space between Han parts)."""
    if name.get("text"):
        return str(name["text"])
    family = name.get("family", "")
    givens = [g for g in name.get("given", []) if g]
    if family and _HAN.fullmatch(family) and all(_HAN.fullmatch(g) for g in givens):
        return family + "".join(givens)
    return " ".join([*givens, family]).strip()
