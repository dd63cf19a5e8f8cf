"""Local ValueSet expansion and code membership, from the ValueSets and CodeSystems of installed packages.

No terminology server: a system whose content is not available locally (LOINC, SNOMED CT, HGNC, …) cannot
be checked, and the answer says so instead of rejecting the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from profiles import patterns
from profiles.definitions import Definitions

# Systems whose content is never local here; codes from them are reported as not checked.
EXTERNAL = ("http://loinc.org", "http://snomed.info/sct", "http://www.genenames.org", "http://unitsofmeasure.org",
            "http://www.nlm.nih.gov/research/umls/rxnorm", "http://hl7.org/fhir/sid/icd-10")

# Code systems whose codes are defined by a grammar rather than listed: MIME types (BCP 13, RFC 6838 §4.2: type "/"
# subtype, then optional ";" parameters), as terminology services check them, with the FHIR format shorthands that
# R4 allows where a MIME type is asked for (CapabilityStatement.format: "xml | json | ttl | mime type").
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
GRAMMARS = {
    "urn:ietf:bcp:13": patterns.compile(rf"xml|json|ttl|{_TOKEN}/{_TOKEN}(\s*;\s*{_TOKEN}=(\"[^\"]*\"|[^;\s]+))*"),
}


@dataclass(slots=True)
class Expansion:
    """codes[system] = the set of codes, or None when every code of that system is in (or cannot be listed)."""

    codes: dict[str, set[str] | None] = field(default_factory=dict)
    unchecked: set[str] = field(default_factory=set)  # systems included but not available locally
    complete: bool = True  # False when a part could not be expanded (missing ValueSet, unsupported filter)
    missing: list[str] = field(default_factory=list)

    def add(self, system: str, codes: set[str] | None) -> None:
        if system in self.codes:
            have = self.codes[system]
            self.codes[system] = None if have is None or codes is None else have | codes
        else:
            self.codes[system] = None if codes is None else set(codes)


@dataclass(frozen=True, slots=True)
class Membership:
    """in_set: True / False, or None when it cannot be known locally (`reason` says why)."""

    in_set: bool | None
    reason: str = ""


# the answers without a reason, made once: contains() runs for every bound code of every resource
_IN = Membership(True)
_OUT = Membership(False)
_UNSEEN: Any = object()
# canonicals found absent, remembered per generation of the definitions (Definitions.generation): codes of systems
# not loaded (LOINC, HGNC, ...) and value sets not loaded recur in every resource; bounded, since the canonicals a
# client can name are unbounded
ABSENT_MAX = 4096


class Terminology:
    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self._expansions: dict[str, Expansion | None] = {}
        self._cs_codes: dict[str, dict[str, dict[str, Any]] | None] = {}
        self._no_cs: set[str] = set()  # code systems absent at generation _absent_at
        self._no_vs: dict[str, Membership] = {}  # value sets absent at generation _absent_at → contains()'s answer
        self._absent_at = -1

    def _absent(self) -> bool:
        """Whether the absences remembered still hold (else they are dropped)."""
        if self._absent_at == self.defs.generation:
            return True
        self._no_cs.clear()
        self._no_vs.clear()
        self._absent_at = self.defs.generation
        return False

    # ---- code systems ----
    def system_codes(self, system: str) -> dict[str, dict[str, Any]] | None:
        """code → concept for a local, complete CodeSystem; None when not available locally."""
        known = self._cs_codes.get(system, _UNSEEN)
        if known is not _UNSEEN:
            return known  # type: ignore[no-any-return]
        if system in self._no_cs and self._absent():
            return None
        cs = self.defs.code_system(system)
        if cs is None:
            self._absent()
            if len(self._no_cs) >= ABSENT_MAX:
                self._no_cs.clear()
            self._no_cs.add(system)
            return None
        out: dict[str, dict[str, Any]] | None = None
        if cs.get("content", "complete") in ("complete", "fragment") and cs.get("concept"):
            out = {}

            def walk(concepts: list[dict[str, Any]], parent: str | None) -> None:
                for c in concepts:
                    out[c["code"]] = {**c, "_parent": parent}  # type: ignore[index]
                    walk(c.get("concept", []), c["code"])

            walk(cs["concept"], None)
            if cs.get("content") == "fragment":
                out["__fragment__"] = {}
        self._cs_codes[system] = out
        return out

    def _descendants(self, system: str, code: str, include_self: bool) -> set[str] | None:
        codes = self.system_codes(system)
        if codes is None:
            return None
        out = {code} if include_self else set()
        changed = True
        while changed:
            changed = False
            for c, concept in codes.items():
                parents = {concept.get("_parent")} | {p.get("valueCode") for p in concept.get("property", [])
                                                     if p.get("code") in ("parent", "subsumedBy")}
                if c not in out and (parents & (out | {code})):
                    out.add(c)
                    changed = True
        return out

    # ---- value sets ----
    def expand(self, url: str) -> Expansion | None:
        """The local expansion of a ValueSet, or None when the ValueSet itself is not available."""
        if url in self._expansions:
            return self._expansions[url]
        vs = self.defs.value_set(url)
        if vs is None:  # not remembered: the URLs a client can name are unbounded
            return None
        self._expansions[url] = None  # guards against import cycles
        result = self._expansions[url] = self._expand(vs)
        return result

    def _expand(self, vs: dict[str, Any]) -> Expansion:
        exp = Expansion()
        contains = (vs.get("expansion") or {}).get("contains")
        if contains and not vs.get("compose"):
            self._from_contains(exp, contains)
            return exp
        compose = vs.get("compose") or {}
        for inc in compose.get("include", []):
            self._include(exp, inc)
        for exc in compose.get("exclude", []):
            system = exc.get("system")
            listed = {c["code"] for c in exc.get("concept", [])}
            if system and listed and exp.codes.get(system):
                exp.codes[system] = exp.codes[system] - listed  # type: ignore[operator]
        return exp

    def _from_contains(self, exp: Expansion, contains: list[dict[str, Any]]) -> None:
        for c in contains:
            if c.get("system") and c.get("code"):
                exp.add(c["system"], {c["code"]})
            self._from_contains(exp, c.get("contains", []))

    def _include(self, exp: Expansion, inc: dict[str, Any]) -> None:
        parts: list[Expansion] = []
        for vs_url in inc.get("valueSet", []):
            sub = self.expand(vs_url)
            if sub is None:
                exp.complete = False
                exp.missing.append(vs_url)
                return
            parts.append(sub)
        system = inc.get("system")
        if system:
            local = Expansion()
            concepts = inc.get("concept")
            filters = inc.get("filter")
            if concepts:
                local.add(system, {c["code"] for c in concepts})
            elif filters:
                codes: set[str] | None = None
                for f in filters:
                    got = self._filter(system, f)
                    if got is None:
                        local.unchecked.add(system)
                        local.add(system, None)
                        codes = None
                        break
                    codes = got if codes is None else codes & got
                if codes is not None:
                    local.add(system, codes)
            else:
                all_codes = self.system_codes(system)
                if all_codes is None:
                    local.unchecked.add(system)
                    local.add(system, None)
                else:
                    local.add(system, {c for c in all_codes if c != "__fragment__"})
            parts.append(local)
        if not parts:
            return
        merged = parts[0]
        for p in parts[1:]:  # valueSet and system together: intersection
            for s, codes in list(merged.codes.items()):
                other = p.codes.get(s, set())
                merged.codes[s] = other if codes is None else (codes if other is None else codes & other)
        for s, codes in merged.codes.items():
            exp.add(s, codes)
        exp.unchecked |= merged.unchecked

    def _filter(self, system: str, f: dict[str, Any]) -> set[str] | None:
        op, value, prop = f.get("op"), f.get("value", ""), f.get("property")
        if op in ("is-a", "descendent-of") and prop == "concept":
            return self._descendants(system, value, include_self=op == "is-a")
        if op == "=" and prop:
            codes = self.system_codes(system)
            if codes is None:
                return None
            return {c for c, concept in codes.items()
                    if any(p.get("code") == prop and str(next((v for k, v in p.items() if k.startswith("value")),
                                                               "")) == value for p in concept.get("property", []))}
        return None

    # ---- membership ----
    def contains(self, url: str, system: str | None, code: str) -> Membership:
        if (code.__class__ is not str and not isinstance(code, str)) or (
                system is not None and system.__class__ is not str and not isinstance(system, str)):
            return Membership(None, "the code or system is not a string")  # the JSON type checks report it
        exp = self._expansions.get(url)
        if exp is None:
            known = self._no_vs.get(url)
            if known is not None and self._absent():
                return known
            exp = self.expand(url)
        if exp is None:
            answer = Membership(None, f"ValueSet {url} is not available locally")
            if url not in self._expansions:  # absent (not an expansion in progress)
                self._absent()
                if len(self._no_vs) >= ABSENT_MAX:
                    self._no_vs.clear()
                self._no_vs[url] = answer
            return answer
        if system is None and len(exp.codes) == 1:
            system = next(iter(exp.codes))
        elif system is None:
            if any(codes is None or code in codes for codes in exp.codes.values()):
                return _IN
            if exp.complete:
                return _OUT
            return Membership(None, f"ValueSet {url} could not be fully expanded locally")
        if system not in exp.codes:
            if exp.complete:
                return _OUT
            return Membership(None, f"ValueSet {url} could not be fully expanded locally")
        codes = exp.codes[system]
        if codes is None:
            grammar = GRAMMARS.get(system)
            if grammar is not None:  # a code system defined by a grammar: its codes are judged by their form
                return Membership(grammar.full(code))
            if system in exp.unchecked:
                return Membership(None, f"codes of {system} are not available locally")
            return _IN
        return _IN if code in codes else _OUT
