"""FHIR R4 date/dateTime/instant values: what mappers may emit. A source time that is not a real calendar time
(`0000`, month 13, Feb 30) is never emitted; the mapper drops it with a warning naming the source field."""

from __future__ import annotations

import re
from datetime import date

# R4 datatypes: date, dateTime, instant (http://hl7.org/fhir/R4/datatypes.html#primitive).
_DATE = re.compile(r"([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?")
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
                   r"(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))")


def is_date(value: str) -> bool:
    """A FHIR date (YYYY, YYYY-MM, YYYY-MM-DD) naming a real day, year 0001 or later."""
    m = _DATE.fullmatch(value)
    if not m or int(m.group(1)) == 0:
        return False
    if m.group(5):
        try:
            date(int(m.group(1)), int(m.group(3)), int(m.group(5)))
        except ValueError:
            return False
    return True


def is_datetime(value: str) -> bool:
    """A FHIR dateTime: a date, or a full date with a time and a zone."""
    day, sep, clock = value.partition("T")
    if not sep:
        return is_date(day)
    return len(day) == 10 and is_date(day) and _TIME.fullmatch(clock) is not None


def is_instant(value: str) -> bool:
    """A FHIR instant: a full date, a time and a zone."""
    return "T" in value and is_datetime(value)
