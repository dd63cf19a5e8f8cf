"""Worst-case inputs for the primitive type regexes of hl7.fhir.r4.core#4.0.1 (shared by tests/profiles/test_patterns.py
and bench/bench_patterns.py).

For each type: a value of about 10 KB built to make a backtracking engine try the most ways to match before it
fails (a long run a repeated group or quantifier can split many ways, then a character that spoils the end), and a
valid value of the same shape. On RE2 each is answered in one pass; on Python's `re` the base64Binary case never
finishes (time grows threefold per "AAAA  " group) and the others are linear or bounded.
"""

from __future__ import annotations

SIZE = 10_000

_FRACTION = "0" * SIZE

# type → (invalid, valid)
WORST: dict[str, tuple[str, str]] = {
    # (\s*([0-9a-zA-Z\+/=]){4}\s*)+ : each run of spaces can go to either \s* around a group
    "base64Binary": ("AAAA  " * (SIZE // 6 + 1) + "!", "AAAA  " * (SIZE // 6 + 1)),
    "boolean": ("true" * (SIZE // 4), "true"),
    # \S* : one long run, then a space
    "canonical": ("a" * SIZE + " ", "a" * SIZE),
    "uri": ("a" * SIZE + " ", "a" * SIZE),
    "url": ("a" * SIZE + " ", "a" * SIZE),
    # [^\s]+(\s[^\s]+)* : many words, then a second space
    "code": ("a " * (SIZE // 2) + " ", "a " * (SIZE // 2 - 1) + "a"),
    "date": ("1" * SIZE, "2024-02-29"),
    # (\.[0-9]+)? then the zone alternatives: a long fraction and a zone past +14:00
    "dateTime": ("2024-02-29T10:00:00." + _FRACTION + "+15:00", "2024-02-29T10:00:00." + _FRACTION + "+14:00"),
    "instant": ("2024-02-29T10:00:00." + _FRACTION + "+15:00", "2024-02-29T10:00:00." + _FRACTION + "Z"),
    "time": ("10:00:00." + _FRACTION + "Z", "10:00:00." + _FRACTION),
    # -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? : long digits, then an exponent without digits
    "decimal": ("1." + "1" * SIZE + "e+", "1." + "1" * SIZE + "e+5"),
    "id": ("a" * SIZE, "a" * 64),
    "integer": ("1" * SIZE + "x", "-" + "1" * 9),
    "positiveInt": ("1" * SIZE + "-", "1" * SIZE),
    "unsignedInt": ("1" * SIZE + "x", "1" * SIZE),
    # [ \r\n\t\S]+ : everything but the other white space (\x0B, \f)
    "string": ("a " * (SIZE // 2) + "\x0b", "a " * (SIZE // 2)),
    "markdown": ("a " * (SIZE // 2) + "\f", "a " * (SIZE // 2)),
    # urn:oid:[0-2](\.(0|[1-9][0-9]*))+ : many arcs, then a dangling dot
    "oid": ("urn:oid:1" + ".1" * (SIZE // 2) + ".", "urn:oid:1" + ".1" * (SIZE // 2)),
    "uuid": ("urn:uuid:" + "a" * SIZE, "urn:uuid:123e4567-e89b-12d3-a456-426614174000"),
}
