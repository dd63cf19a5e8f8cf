"""GB 11643-1999 resident identity numbers (公民身份号码): check character, birth date, sex, 15-digit upgrade.

Layout of the 18-character number: 6-digit address code (GB/T 2260), birth date YYYYMMDD (positions 7-14),
3-digit sequence (15-17; odd = male, even = female), check character (ISO 7064 MOD 11-2, '0'-'9' or 'X').
Legacy 15-digit numbers (issued before 1999) have a YYMMDD birth date of the 1900s and no check character; they are
upgraded by inserting '19' and computing the check character, as GB 11643 prescribes.

python-stdnum's `stdnum.cn.ric` (2.2) agrees on the check character, but it rejects the 15-digit form and also checks
the address code against its GB/T 2260 history (a Pudong code with a 1905 birth date is "invalid"; some codes raise
KeyError). A document's ID is an identifier, not a residence proof, and we need the reason a number fails, so this
small module is ours; tests cross-check it against stdnum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
CHECK_CHARS = "10X98765432"
_SHAPE_18 = re.compile(r"[0-9]{17}[0-9X]")  # ASCII only: \d would accept full-width digits
_SHAPE_15 = re.compile(r"[0-9]{15}")


class ResidentIdError(ValueError):
    """Raised for a number that is not a valid resident identity number; `reason` is a stable kebab-case code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResidentId:
    number: str  # the 18-character form (upgraded when the input was a legacy 15-digit number)
    original: str  # as given (trimmed, 'x' upper-cased)
    birth_date: str  # ISO date YYYY-MM-DD
    sex: str  # 'male' | 'female' (FHIR administrative gender)
    region: str  # the 6-digit GB/T 2260 address code

    @property
    def legacy(self) -> bool:
        return len(self.original) == 15


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    if not re.fullmatch(r"[0-9]{17}", first17):
        raise ValueError("need exactly 17 digits")
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def upgrade_15(number: str) -> str:
    """A 15-digit legacy number as its 18-character equivalent ('19' inserted before the year, check added)."""
    if not _SHAPE_15.fullmatch(number):
        raise ResidentIdError("resident-id-format", "a legacy resident identity number has exactly 15 digits")
    first17 = number[:6] + "19" + number[6:]
    return first17 + check_character(first17)


def _birth_date(digits: str) -> str:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])).isoformat()
    except ValueError:
        raise ResidentIdError("resident-id-birth-date",
                              f"positions 7-14 ({digits}) are not a calendar date") from None


def parse_resident_id(value: str) -> ResidentId:
    """Validate and decode a resident identity number (18 characters, or a legacy 15-digit number).

    Raises ResidentIdError saying what is wrong: length/characters, an impossible birth date, or a check
    character that does not match (the expected one is named, so a typo can be found).
    """
    raw = value.strip().upper()
    if _SHAPE_15.fullmatch(raw):
        number = upgrade_15(raw)
        birth = _birth_date("19" + raw[6:12])
    elif _SHAPE_18.fullmatch(raw):
        number = raw
        birth = _birth_date(raw[6:14])
        expected = check_character(raw[:17])
        if raw[17] != expected:
            raise ResidentIdError("resident-id-check-digit",
                                  f"check character is {raw[17]!r}, but the first 17 digits give {expected!r}")
    else:
        raise ResidentIdError("resident-id-format",
                              f"a resident identity number has 18 characters (17 digits and a digit or X) or "
                              f"15 digits; got {len(raw)} character(s)")
    return ResidentId(number, raw, birth, "male" if int(number[16]) % 2 else "female", number[:6])


def is_valid(value: str) -> bool:
    try:
        parse_resident_id(value)
    except ResidentIdError:
        return False
    return True
