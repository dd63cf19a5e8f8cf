"""Datatype elements whose type lists several profiles (ElementDefinition.type.profile with more than one entry).

R4 (ElementDefinition.type.profile): "If more than one profile is specified, the content must conform to at least
one of them." The HL7 validator checks the value against each one; when exactly one fits it keeps that profile's
findings, when several fit it warns that the choice is ambiguous, and when none fits it reports "Unable to find a
match for the specified profile among choices" followed by what each profile found (marked with the profile).
A type profile that is not loaded is reported ("Unknown profile").

Also here, the other places where a profile and the base definition of a type meet: a choice type the profile has
restricted (`valueString` where only Quantity is left), and the base definition's own cardinality verdict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mappers.exceptions import Issue
from profiles.elements import Node


def profiles_of(node: Node, typ: str) -> tuple[str, ...]:
    """The profiles the element's type `typ` names (usually none). Cheap: called for every complex value."""
    for t in node.types:
        if t.code == typ:
            return t.profiles
    return ()


def check(validator: Any, value: Any, typ: str, urls: tuple[str, ...], node: Node, path: str, run: Any) -> bool:
    """Validate `value` against each of the type profiles `urls` of `node` and report as the HL7 validator does.
    False when that is not called for (one profile, or children the element defines itself: the caller validates
    as usual) or not possible (an unknown profile, reported here as the HL7 validator does: the caller then
    validates as before, against the first profile when it is known, else against the base type)."""
    known = [(u, validator.node(u)) for u in urls]
    missing = [u for u, n in known if n is None]
    for u in missing:
        run.add("error", "structure", path, f"Unknown profile {u}")
    if missing or len(known) < 2 or node.children or node.content_ref:
        return False
    good: list[tuple[str, list[Issue]]] = []
    bad: list[tuple[str, list[Issue]]] = []
    outer = run.issues
    for url, prof in known:
        run.issues = []
        try:
            validator.check_object(value, prof, prof.children, path, typ, run)
        finally:
            found, run.issues = run.issues, outer
        (bad if any(i.severity in ("error", "fatal") for i in found) else good).append((url, found))
    listed = ", ".join(urls)
    if len(good) == 1:
        run.issues.extend(good[0][1])
    elif good:
        run.add("warning", "structure", path, f"Found multiple matching profiles among {len(good)} choices: "
                f"{', '.join(u for u, _ in good)}")
        for _url, found in good:
            run.issues.extend(found)
    else:
        run.add("error", "structure", path, f"Unable to find a match for the specified profile among choices: "
                f"{listed}")
        # the same finding from several profiles is one finding (the HL7 validator reports it once)
        by_issue: dict[tuple[str, str, str | None, str], tuple[Issue, list[str]]] = {}
        for url, found in bad:
            for i in found:
                key = (i.severity, i.code, i.expression, i.message)
                by_issue.setdefault(key, (i, []))[1].append(url)
        for i, sources in by_issue.values():
            run.issues.append(dataclasses.replace(i, message=f"{i.message} (validating against "
                                                             f"{', '.join(dict.fromkeys(sources))})"))
    return True


def restricted_choice(validator: Any, kids: dict[str, Node], key: str, path: str, run: Any) -> Node | None:
    """A property such as `valueString` whose choice element (value[x]) the base definition allows that type for,
    but the profile has restricted to others. The HL7 validator parses it against the base definition, so the
    element is present (no cardinality error), and reports the one type error; returns that element (else None,
    for an unrecognized property). Only called for properties the profile does not know."""
    for kid in kids.values():
        name = kid.base_name
        if not kid.is_choice or kid.slicing is not None or not key.startswith(name) or len(key) == len(name):
            continue
        suffix = key[len(name):]
        if not suffix[:1].isupper():
            continue
        base_types = _base_types(validator, kid)
        found = next((t for t in base_types if t[:1].upper() + t[1:] == suffix), None)
        if found is None:
            continue
        allowed = [t.code for t in kid.types]
        if kid.path == "Extension.value[x]" and kid.profile_url:  # the extension's own definition restricts it
            run.add("error", "structure", path, f"The Extension '{kid.profile_url}' definition allows for the "
                    f"types [{', '.join(allowed)}] but found type {found}")
        elif len(allowed) == 1:
            run.add("error", "structure", f"{path}.{name}.ofType({found})", f"The Profile '{kid.profile_url}' "
                    f"definition allows for the type {allowed[0]} but found type {found}")
        else:
            run.add("error", "structure", path, f"The type of element {key} is not known - it could not be "
                    f"determined from the information available. Valid types at this point are {', '.join(allowed)}")
        return kid
    return None


def _base_element(validator: Any, kid: Node) -> tuple[str, Node] | None:
    """(url, element) of the core definition of the type owning `kid` at kid's path (Observation.value[x], ...)."""
    sd = validator.defs.type_definition(kid.path.split(".", 1)[0])
    if sd is None:
        return None
    base = validator.element(sd["url"], kid.path)
    return (sd["url"], base) if base is not None else None


def _base_types(validator: Any, kid: Node) -> list[str]:
    """The types the core definition of the type owning `kid` allows for it."""
    found = _base_element(validator, kid)
    return [t.code for t in found[1].types] if found else []


def base_cardinality(validator: Any, kid: Node, n: int, path: str, run: Any) -> None:
    """`kid` (an element of a profile) holds a number of values its profile refuses: report it against the base
    definition too when that refuses it as well. The HL7 validator validates an instance against its type's own
    definition besides its profiles, and a cardinality finding names the definition it comes from, so a profile
    that keeps the base's `1..1` gets two findings. Only called on the error path."""
    found = _base_element(validator, kid)
    if found is None or found[0] == kid.profile_url:
        return
    url, base = found
    if n < base.min:
        run.add("error", "structure", path, f"{kid.path}: minimum required = {base.min}, but only found {n} "
                f"(from {url})")
    if base.max is not None and n > base.max:
        run.add("error", "structure", path, f"{kid.path}: max allowed = {base.max}, but found {n} (from {url})")
