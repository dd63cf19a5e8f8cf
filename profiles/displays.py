"""Coding.display against the CodeSystem: "the display SHALL be ... one of the displays defined by the code
system" (http://hl7.org/fhir/R4/datatypes.html#Coding) — its display or one of its designations (translations,
synonyms), compared as the HL7 validator does: ignoring case and runs of whitespace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()  # runs of (Unicode) white space as one space


def valid_displays(concept: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(display, language) pairs a concept accepts: its display, then its designations."""
    out: list[tuple[str, str | None]] = []
    if isinstance(concept.get("display"), str):
        out.append((concept["display"], None))
    for d in concept.get("designation") or []:
        if isinstance(d, dict) and isinstance(d.get("value"), str):
            out.append((d["value"], d.get("language")))
    return out


def display_problem(system: str, code: str, display: Any, concept: dict[str, Any],
                    also: Sequence[tuple[str, str | None]] = (), language: Any = None) -> tuple[str, str] | None:
    """(severity, message) for a display the concept does not define (nor `also`, the displays a bound ValueSet
    gives it), or None when it is fine (or not checkable). When the resource declares a language other than
    English and the code system has no designation in it, a display in that language cannot be checked: a
    warning, not an error."""
    if not isinstance(display, str) or not display.strip():
        return None
    choices = valid_displays(concept)
    if not choices or any(_norm(d) == _norm(display) for d, _ in [*choices, *also]):
        return None
    unique = list(dict.fromkeys(choices))
    shown = " or ".join(f"'{d}'" + (f" ({lang})" if lang else "") for d, lang in unique)
    lead = f"one of {len(unique)} choices: " if len(unique) > 1 else ""
    message = f"Wrong Display Name '{display}' for {system}#{code}. Valid display is {lead}{shown}"
    lang = language.split("-")[0].lower() if isinstance(language, str) and language else None
    if lang and lang != "en" and not any((dl or "").split("-")[0].lower() == lang for _, dl in choices):
        return "warning", f"{message} (no display is defined for the language '{language}', so it was not checked)"
    return "error", message


def value_set_displays(vs: dict[str, Any] | None) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    """(system, code) → the displays and designations a ValueSet itself gives its codes (in compose concepts or
    its expansion): a binding to it makes them valid displays too."""
    out: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    if not vs:
        return out

    def add(system: Any, concept: dict[str, Any]) -> None:
        if isinstance(system, str) and isinstance(concept.get("code"), str):
            out.setdefault((system, concept["code"]), []).extend(valid_displays(concept))

    for inc in (vs.get("compose") or {}).get("include") or []:
        for concept in inc.get("concept") or []:
            add(inc.get("system"), concept)
    stack = list((vs.get("expansion") or {}).get("contains") or [])
    while stack:
        item = stack.pop()
        add(item.get("system"), item)
        stack.extend(item.get("contains") or [])
    return out


def binding_value_set(defs: Any, vs_url: str, profile_url: str) -> dict[str, Any] | None:
    """The ValueSet a binding names: a `#id` is contained in the profile that declares the binding."""
    if vs_url.startswith("#"):
        sd = defs.structure(profile_url) or {}
        return next((c for c in sd.get("contained") or [] if c.get("resourceType") == "ValueSet"
                     and c.get("id") == vs_url[1:]), None)
    return defs.value_set(vs_url)
