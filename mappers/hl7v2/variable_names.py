"""Which LRI genetic variable an OBX row carries when OBX-3 does not say it with its LOINC code: an alternate LOINC
coding (OBX-3.4-6), a local code (OBX-3.1) or a name (OBX-3.2/3.5/3.9), looked up in
tables/genetic-variable-names.json plus a site's own entries (Options.variable_names).

A site table is a JSON object {name or local code: LOINC}, e.g. {"Mutation": "48004-6", "GEN-01": "48018-6"};
the edge may read it from a file and pass its text as the hl7v2 option `variableNames` (parse_site_entries).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from mappers.hl7v2 import memo
from mappers.hl7v2.model import Segment

_TABLE = Path(__file__).parent / "tables" / "genetic-variable-names.json"
_LOINC = re.compile(r"[0-9]{1,7}-[0-9]")
_LOINC_SYSTEMS = {"LN", "LOINC", "HTTP://LOINC.ORG", "2.16.840.1.113883.6.1"}
_NOT_KEPT = re.compile(r"[^a-z0-9.]+")


@dataclass(frozen=True, slots=True, init=False)
class Recognised:
    """The LOINC variable of a row and how it was found: 'code' (OBX-3.1 is that LOINC code), 'alternate'
    (OBX-3.4), 'local-code' (OBX-3.1 under a local system) or 'name' (OBX-3 text); `taken` is the text or code
    read and `where` the component it came from (OBX[3]-3.2)."""

    loinc: str
    how: str
    taken: str = ""
    where: str = ""

    def __init__(self, loinc: str, how: str, taken: str = "", where: str = "") -> None:
        # one per row: slots filled directly (the frozen dataclass __init__ costs more)
        _SET_LOINC(self, loinc)
        _SET_HOW(self, how)
        _SET_TAKEN(self, taken)
        _SET_WHERE(self, where)


_SET_LOINC, _SET_HOW, _SET_TAKEN, _SET_WHERE = (Recognised.__dict__[k].__set__ for k in ("loinc", "how", "taken",
                                                                                          "where"))


def normalise(text: str) -> str:
    """Case, punctuation other than '.', and repeated spaces do not matter."""
    return _normalised(text) if len(text) <= memo.SHORT else _normalise(text)


def _normalise(text: str) -> str:
    return " ".join(_NOT_KEPT.sub(" ", text.lower()).split())


_normalised = lru_cache(maxsize=memo.SIZE)(_normalise)  # OBX-3 names are looked up on every row


def is_loinc(code: str) -> bool:
    """A LOINC code with a valid mod-10 check digit (LOINC Users' Guide, appendix: check digit)."""
    if not _LOINC.fullmatch(code):
        return False
    number, check = code.split("-")
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d // 10 + d % 10
        total += d
    return (10 - total % 10) % 10 == int(check)


@cache
def _shipped() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    table = json.loads(_TABLE.read_text(encoding="utf-8"))

    def flat(section: str) -> dict[str, str]:
        return {normalise(name): code for code, names in table[section].items() for name in names}

    return flat("names"), flat("generic_names"), flat("local_codes")


def parse_site_entries(text: str) -> tuple[tuple[str, str], ...]:
    """A site table (JSON object {name or local code: LOINC}) as Options.variable_names. Raises ValueError naming
    the first entry that is not a string mapped to a valid LOINC code."""
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"variableNames is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError("variableNames must be a JSON object {name or local code: LOINC code}")
    out = []
    for name, code in doc.items():
        if not isinstance(code, str) or not is_loinc(code) or not normalise(name):
            raise ValueError(f"variableNames entry {name!r}: {code!r} is not a LOINC code (NNNNN-C, check digit valid)")
        out.append((name, code))
    return tuple(sorted(out))


@lru_cache(maxsize=64)
def _site(site: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """A site table keyed as the shipped ones are (normalised names)."""
    return {normalise(n): c for n, c in site}


def _loinc_system(name: str) -> bool:
    return name.upper() in _LOINC_SYSTEMS


def coded_loinc(obx: Segment) -> str | None:
    """OBX-3.1 when OBX-3 is coded in LOINC (OBX-3.3 LN), else None."""
    code = obx.get(3)
    return code if code and _loinc_system(obx.get(3, 3)) else None


def recognise(obx: Segment, known: set[str] | frozenset[str], site: tuple[tuple[str, str], ...] = (),
              genetic_order: bool = False) -> Recognised | None:
    """The LRI variable in `known` (LOINC codes) that OBX-3 stands for, or None.

    Order: OBX-3.1 itself when it is one of them (or has no coding system and is one), the alternate coding
    OBX-3.4 under LOINC, OBX-3.1 as a local code, then the text of OBX-3.9, 3.2 and 3.5 as a name. Site entries
    win over shipped ones; generic names count only in a `genetic_order`. The result may name a LOINC code outside
    `known` (e.g. 51967-6, genetic disease assessed): the row then stays a plain result under that code too.
    """
    known = known if isinstance(known, frozenset) else frozenset(known)
    signature = obx.signature(3)
    if len(signature[0]) > memo.SHORT:
        found = _reading(obx, known, site, genetic_order)
    else:
        key = (*signature, known, site, genetic_order)
        found = _READINGS.get(key, _UNREAD)
        if found is _UNREAD:
            found = memo.remember(_READINGS, key, _reading(obx, known, site, genetic_order))
    if found is None:
        return None
    loinc, how, taken, comp = found
    return Recognised(loinc, how, taken, f"{obx.ref}-3.{comp}")


def recognise_row(obx: Segment, known: frozenset[str], site: tuple[tuple[str, str], ...] = (),
                  genetic_order: bool = False) -> tuple[Recognised | None, str | None]:
    """recognise(), and with a variable found by its code the one OBX-3's text names (named_variable: the two may
    disagree), from one memo lookup: the mapper asks both of every row."""
    raw = obx.fields[3] if len(obx.fields) > 3 else ""
    if len(raw) > memo.SHORT:
        found = _reading(obx, known, site, genetic_order)
        named = _named(obx, site) if found is not None and found[1] == "code" else None
    else:
        key = (raw, obx.dialect, known, site, genetic_order)
        both = _ROWS.get(key)
        if both is None:
            found = _reading(obx, known, site, genetic_order)
            both = memo.remember(_ROWS, key, (found, _named(obx, site) if found is not None and found[1] == "code"
                                              else None))
        found, named = both
    if found is None:
        return None, None
    # a Recognised is immutable: the same row (OBX[n]) of the same reading is one object (memo)
    key2 = (found, obx.ref)
    rec = _RECOGNISED.get(key2)
    if rec is None:
        loinc, how, taken, comp = found
        rec = Recognised(loinc, how, taken, f"{obx.ref}-3.{comp}")
        if len(taken) <= memo.SHORT:
            memo.remember(_RECOGNISED, key2, rec)
    return rec, named


def _reading(obx: Segment, known: frozenset[str], site: tuple[tuple[str, str], ...],
             genetic_order: bool) -> tuple[str, str, str, int] | None:
    """recognise's answer as (LOINC, how, text or code taken, OBX-3 component)."""
    code, system = obx.get(3), obx.get(3, 3)
    if code in known and (not system or _loinc_system(system)):
        return code, "code", code, 1
    alt, alt_system = obx.get(3, 4), obx.get(3, 6)
    if alt in known and _loinc_system(alt_system):
        return alt, "alternate", alt, 4
    names, generic, local = _shipped()
    own = _site(site)
    if code and not _loinc_system(system):
        key = normalise(code)
        hit = own.get(key) or local.get(key) or (names.get(key) if not system else None)
        if hit:
            return hit, "local-code", code, 1
    for comp in (9, 2, 5):
        text = obx.get(3, comp)
        key = normalise(text)
        if not key:
            continue
        hit = own.get(key) or names.get(key) or (generic.get(key) if genetic_order else None)
        if hit:
            return hit, "name", text, comp
    return None


def named_variable(obx: Segment, site: tuple[tuple[str, str], ...] = ()) -> str | None:
    """The LOINC variable OBX-3's text names (site entries and distinctive names only), for spotting a row whose
    LOINC code and name disagree."""
    signature = obx.signature(3)
    if len(signature[0]) > memo.SHORT:
        return _named(obx, site)
    key = (*signature, site)
    found = _NAMED.get(key, _UNREAD)
    if found is _UNREAD:
        found = memo.remember(_NAMED, key, _named(obx, site))
    return found


def _named(obx: Segment, site: tuple[tuple[str, str], ...]) -> str | None:
    names, _, _ = _shipped()
    own = _site(site)
    for comp in (9, 2):
        key = normalise(obx.get(3, comp))
        if key and (hit := own.get(key) or names.get(key)):
            return hit
    return None


# What an OBX-3 means is vocabulary: readings are kept by Segment.signature and what else they depend on.
_UNREAD = object()
_READINGS: dict[tuple[Any, ...], tuple[str, str, str, int] | None] = {}
_NAMED: dict[tuple[Any, ...], str | None] = {}
_ROWS: dict[tuple[Any, ...], tuple[tuple[str, str, str, int] | None, str | None]] = {}
_RECOGNISED: dict[tuple[tuple[str, str, str, int], str], Recognised] = {}
