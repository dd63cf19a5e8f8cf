"""Exact shortcuts for the R4 primitive types' regular expressions, keyed by the regex's text: each says True only
for values its regex accepts (most ordinary values), and anything else goes to the regex (profiles/patterns.py
`Pattern.full` consults them before RE2, whose fixed cost per call is several times these checks').
tests/profiles/test_generated.py holds each to its regex."""

from __future__ import annotations

from collections.abc import Callable

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()  # [0-9]+ (isdigit alone takes other scripts' digits)


def _ymd(s: str) -> bool:
    """YYYY, YYYY-MM or YYYY-MM-DD (the year any four digits but 0000)."""
    n = len(s)
    if n not in (4, 7, 10) or not _digits(s[:4]) or s[:4] == "0000":
        return False
    if n >= 7 and not (s[4] == "-" and _digits(s[5:7]) and "01" <= s[5:7] <= "12"):
        return False
    return n < 10 or (s[7] == "-" and _digits(s[8:10]) and "01" <= s[8:10] <= "31")


def _time(s: str) -> bool:
    """hh:mm:ss with an optional fraction."""
    if len(s) < 8 or s[2] != ":" or s[5] != ":" or not (_digits(s[:2]) and _digits(s[3:5]) and _digits(s[6:8])):
        return False
    if not (s[:2] <= "23" and s[3:5] <= "59" and s[6:8] <= "60"):
        return False
    return len(s) == 8 or (s[8] == "." and _digits(s[9:]))


def _zone(s: str) -> bool:
    if s == "Z":
        return True
    if len(s) != 6 or s[0] not in "+-" or s[3] != ":" or not (_digits(s[1:3]) and _digits(s[4:6])):
        return False
    return (s[1:3] <= "13" and s[4:6] <= "59") or s[1:] == "14:00"


def _instant(s: str) -> bool:
    """YYYY-MM-DDThh:mm:ss[.f]zone."""
    if len(s) < 20 or s[10] != "T" or not _ymd(s[:10]):
        return False
    rest = s[11:]
    end = 8
    if len(rest) > 8 and rest[8] == ".":
        end = 9
        while end < len(rest) and "0" <= rest[end] <= "9":
            end += 1
    return _time(rest[:end]) and _zone(rest[end:])


def _date_time(s: str) -> bool:
    return _ymd(s) or _instant(s)


def _id(s: str) -> bool:
    rest = s.replace("-", "").replace(".", "")
    return 0 < len(s) <= 64 and s.isascii() and (rest.isalnum() or not rest)


def _decimal(s: str) -> bool:
    whole, dot, fraction = (s[1:] if s[:1] == "-" else s).partition(".")
    return _digits(whole) and (whole[0] != "0" or len(whole) == 1) and (not dot or _digits(fraction))


def _integer(s: str) -> bool:
    body = s[1:] if s[:1] == "-" else s
    return _digits(body) and (body[0] != "0" or len(body) == 1)


def _positive(s: str) -> bool:
    return _digits(s) and s[0] != "0"


def _unsigned(s: str) -> bool:
    return _digits(s) and (s[0] != "0" or len(s) == 1)


SURE: dict[str, Callable[[str], bool]] = {
    _YEAR + f"(-{_MONTH}(-{_DAY})?)?": _ymd,  # date
    _YEAR + f"(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?": _date_time,  # dateTime
    _YEAR + f"-{_MONTH}-{_DAY}T{_TIME}{_ZONE}": _instant,  # instant
    _TIME: _time,  # time
    r"[A-Za-z0-9\-\.]{1,64}": _id,  # id
    r"[A-Za-z0-9\-.]{1,64}": _id,  # a resource's id (profiles/resources.py)
    r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?": _decimal,  # decimal
    r"-?([0]|([1-9][0-9]*))": _integer,  # integer
    r"[1-9][0-9]*": _positive,  # positiveInt
    r"[0]|([1-9][0-9]*)": _unsigned,  # unsignedInt
}
