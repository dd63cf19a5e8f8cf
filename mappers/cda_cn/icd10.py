"""China's national clinical edition of ICD-10 (疾病分类与代码国家临床版 2.0, GB/T 14396 based) → WHO ICD-10.

The national codes extend WHO ICD-10 with a 6-character tail (K35.800x001, I24.000x003, F29.x00) and pair dagger
and asterisk codes with '+' (E11.502+I79.2*). With no official crosswalk (national-formats.md §5), the WHO code is
recovered by truncation: the 3-character category, plus '.' and the 5th character when it is a digit.

Equivalence follows FHIR R4 ConceptMap semantics, read from target to source: the WHO code is *wider* than an
extended national code (the national concept is-a WHO concept), and *equal* when the national code is already
a WHO code (K35.8, K35).
"""

from __future__ import annotations

import re

from mappers.terminology import Translation

WHO_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
_PART = re.compile(r"^([A-Z]\d{2})(?:\.([0-9x]{1,3}(?:x\d{3})?))?([*†+]?)$")


def _who(part: str) -> Translation | None:
    m = _PART.match(part)
    if not m:
        return None
    category, tail, _ = m.groups()
    if not tail:
        return Translation(category, "", "equal", WHO_SYSTEM)
    if tail[0] == "x":
        return Translation(category, "", "wider", WHO_SYSTEM)
    code = f"{category}.{tail[0]}"
    return Translation(code, "", "equal" if len(tail) == 1 else "wider", WHO_SYSTEM)


def to_who(code: str) -> list[Translation]:
    """WHO ICD-10 codes for a national clinical-edition code ([] when it is not one). A dagger/asterisk pair
    gives both codes."""
    text = code.strip()
    if not text:
        return []
    text = text[0].upper() + text[1:].replace("X", "x")
    parts = [p for p in re.split(r"\+(?=[A-Z])", text) if p]
    out = []
    for part in parts:
        t = _who(part.rstrip("*†"))
        if t is None:
            return []
        out.append(t)
    return out
