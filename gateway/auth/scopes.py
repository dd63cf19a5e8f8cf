"""SMART App Launch 2.2 scopes, parsed and checked (pure functions).

Grammar (scopes-and-launch-context.html):

    (patient|user|system)/(Type|*).[c][r][u][d][s]   letters in that order, at least one
    …[?param=value[&param=value…]]                  search-narrowed: grants only what also matches these
    (patient|user|system)/(Type|*).(read|write|*)   v1, read ⇒ rs, write ⇒ cud, * ⇒ cruds
    http://smarthealthit.org/fhir/scopes/<scope>    the URI form of any of the above

Operation scopes: SMART defines none for FHIR operations (HL7/smart-app-launch#296: "we have not come up with better
rules around operations"), and helixgate's own operations ($convert, $validate, $translate) read and store no
resource, so no CRUDS letter describes them. They get scopes of the same context/target shape, the target being the
operation as it appears in FHIR URLs:

    (patient|user|system)/$convert    (also $validate, $translate; and $metrics for GET /metrics)

Anything else — an unknown context or operation, letters out of order or repeated, `.all`, launch/openid/fhirUser
scopes, a narrowing with a modifier, chain, `_has` or `_include` (as Microsoft's FHIR server refuses them) — parses
to None and grants nothing (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

URI_PREFIX = "http://smarthealthit.org/fhir/scopes/"
CONTEXTS = ("patient", "user", "system")
INTERACTIONS = "cruds"  # create, read, update, delete, search: SMART's order
OPERATIONS = ("convert", "validate", "translate", "metrics", "exchange")  # helixgate's own operations (scopes)
V1 = {"read": "rs", "write": "cud", "*": "cruds"}

_CLINICAL = re.compile(r"(patient|user|system)/([A-Z][A-Za-z]{0,63}|\*)\.([a-z*]{1,5})(?:\?(.*))?\Z", re.DOTALL)
_OPERATION = re.compile(r"(patient|user|system)/\$([a-z][a-z-]{0,63})\Z")
_V2 = re.compile(r"c?r?u?d?s?\Z")
_PARAM = re.compile(r"[a-z][a-z0-9-]{0,63}\Z")  # a plain search parameter: no modifier, chain or _-parameter
_NARROW_VALUE = re.compile(r"[^\x00-\x1f&]{1,256}\Z")


@dataclass(frozen=True, slots=True)
class Scope:
    """One granted scope. `resource` is a type or '*' (None for operation scopes); `narrowing` holds the
    (parameter, value) pairs of a search-narrowed scope."""

    text: str
    context: str  # patient | user | system
    resource: str | None = None
    interactions: str = ""  # an ordered subset of 'cruds'
    operation: str | None = None
    narrowing: tuple[tuple[str, str], ...] = ()

    def covers(self, rtype: str, interaction: str) -> bool:
        return self.operation is None and interaction in self.interactions and self.resource in ("*", rtype)


def parse(text: str) -> Scope | None:
    """The Scope of one scope string, or None when it is malformed or not a scope helixgate grants on."""
    if not isinstance(text, str) or len(text) > 1024:
        return None
    body = text.removeprefix(URI_PREFIX)
    op = _OPERATION.match(body)
    if op:
        return Scope(text, op.group(1), operation=op.group(2)) if op.group(2) in OPERATIONS else None
    m = _CLINICAL.match(body)
    if not m:
        return None
    context, resource, letters, query = m.groups()
    if letters in V1:
        if query is not None:  # SMART defines narrowing for v2 scopes only
            return None
        letters = V1[letters]
    elif not _V2.match(letters):  # out of order, repeated, unknown letters, '*' mixed in
        return None
    narrowing: tuple[tuple[str, str], ...] = ()
    if query is not None:
        narrowed = _narrowing(query)
        if narrowed is None:
            return None
        narrowing = narrowed
    return Scope(text, context, resource, letters, narrowing=narrowing)


def _narrowing(query: str) -> tuple[tuple[str, str], ...] | None:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True, max_num_fields=16)
    except ValueError:
        return None
    if not pairs or any(not _PARAM.match(k) or not _NARROW_VALUE.match(v) for k, v in pairs):
        return None
    return tuple(pairs)


def parse_all(scopes: Iterable[str] | str) -> tuple[Scope, ...]:
    """The grantable scopes among `scopes` (a list, or one space-separated string as in a token's `scope`)."""
    items = scopes.split() if isinstance(scopes, str) else scopes
    return tuple(s for s in (parse(t) for t in items) if s is not None)


def grants_operation(scopes: Iterable[Scope], operation: str) -> bool:
    """Whether a scope grants one of helixgate's operations (any context: they touch no stored patient data)."""
    return any(s.operation == operation for s in scopes)


@dataclass(frozen=True, slots=True)
class Grant:
    """How a resource interaction is allowed: unrestricted, or only within a patient's compartment (`patient`) and/or
    only where extra search parameters also match (`narrowing`)."""

    patient: str | None = None
    narrowing: tuple[tuple[str, str], ...] = ()
    scope: str = ""  # the granting scope, for logs and messages

    @property
    def restricted(self) -> bool:
        return self.patient is not None or bool(self.narrowing)

    def constraints(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.narrowing) | ({("patient", self.patient)} if self.patient else set())


def grants(scopes: Iterable[Scope], rtype: str, interaction: str, *, patient: str | None,
           in_compartment: bool) -> tuple[Grant, ...]:
    """Every way the scopes allow `interaction` (one of c r u d s) on `rtype`; empty when none does.

    An unrestricted grant (user/system context, not narrowed) comes alone: nothing needs enforcing. patient/ scopes
    grant only with a patient in context (`patient`) and only for types in the Patient compartment
    (`in_compartment`); elsewhere they grant nothing. Narrowed scopes grant reads and searches (r, s) and deletes
    (checked against the stored resource); creates and updates would need the body matched against search
    parameters, which the gateway cannot evaluate, so for c/u a narrowed scope grants nothing."""
    found: list[Grant] = []
    for s in scopes:
        if not s.covers(rtype, interaction):
            continue
        if s.narrowing and interaction in "cu":
            continue
        if s.context == "patient":
            if not patient or not in_compartment:
                continue
            found.append(Grant(patient, s.narrowing, s.text))
        elif not s.narrowing:
            return (Grant(scope=s.text),)
        else:
            found.append(Grant(None, s.narrowing, s.text))
    return tuple(found)


def broadest(options: tuple[Grant, ...], present: Iterable[tuple[str, str]] = ()) -> Grant | None:
    """The grant to enforce among alternatives: one whose narrowing the request already states (`present`: its own
    search parameters), else one that is no narrower than every other; None when neither exists (the alternatives
    are ORed, which one FHIR search cannot express: the client must name one of them)."""
    if not options:
        return None
    if len(options) == 1 or not options[0].restricted:
        return options[0]
    given = set(present)
    for g in options:
        if g.narrowing and set(g.narrowing) <= given:
            return g
    for g in options:
        if all(g.constraints() <= other.constraints() for other in options):
            return g
    return None


def describe(rtype: str, interaction: str, context: str = "system") -> str:
    """The scope that would grant an interaction, for 403 messages (e.g. 'system/Observation.r')."""
    return f"{context}/{rtype}.{interaction}"
