"""Validates FHIR R4 resources and Bundles against the base definitions and the profiles they claim
(meta.profile) or are asked for, returning OperationOutcome issues in the HL7 validator's style.

The work is split by concept: profiles compiled into element trees (trees.py) and into checkers (checkers.py);
resources (resources.py), Bundles (bundles.py), slicing, extensions, bindings, references, primitives, datatypes,
invariants (invariants.py, fhirpath_compiler.py), rules the HL7 validator applies in code (rules/). The Validator holds
the options, the verdicts it remembers, and the public interface those modules and the rule modules use:

    v.validate(resource, profiles) / v.outcome(...)      the entry points
    v.node(url), v.type_node(code), v.element(url, path)  compiled definitions
    v.type_of(url), v.conforms(resource, url, run)        what a profile is for, whether a resource meets it
    v.check_resource / check_against / check_object / check_value / check_invariants   parts of the walk
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from mappers.exceptions import Issue, operation_outcome
from profiles import fhirpath, invariants, patterns, resources, slicing, trees
from profiles import references as references_module
from profiles.checkers import MAX_DEPTH, Checkers, checkers_for
from profiles.definitions import Definitions, same_canonical
from profiles.elements import Node, TypeRef
from profiles.matching import pattern_test
from profiles.run import Run


class Validator:
    """Validates instances against compiled profiles; options as the HL7 validator names them."""

    def __init__(self, defs: Definitions, security_checks: bool = True, memo: bool = True,
                 examples: bool = True, html_in_markdown: str = "warning",
                 references: references_module.ReferencePolicy | None = None,
                 extensible_binding_warnings: bool = True, generated: bool = True) -> None:
        """`security_checks`: refuse active HTML (script, handlers, javascript: URLs) inside strings, as the HL7
        validator does with its security-checks option; a gateway wants it on. `memo`: remember the verdict on
        context-free datatype values (codes, quantities), which recur across resources. `examples`: accept
        references and extensions in the example domains (example.org, ...), as the HL7 validator does unless
        told otherwise. `html_in_markdown`: "warning" (the HL7 validator's default), "error" (its noHtmlInMarkdown
        option) or "ignore" for markdown holding what looks like an HTML tag (FHIR-38714). `references`: how far
        references and nested resources are followed (profiles/references.py). `extensible_binding_warnings`:
        False leaves out the warning for a code outside an extensible binding's value set (the HL7 validator's
        no-extensible-binding-warnings option). `generated`: the generated happy paths of the object checkers
        (profiles/generated.py); off, the closures alone give the same answers (the equivalence test compares them).

        Profiles compiled into element trees and checkers are shared by every Validator over the same `defs`
        (with the same options, for the checkers): a new Validator starts warm."""
        self.defs = defs
        self.extensible_binding_warnings = extensible_binding_warnings
        self.references = references or references_module.DEFAULT
        self.html_in_markdown = html_in_markdown
        self.security_checks = security_checks
        self.examples = examples
        self.use_memo = memo
        self.generated = generated
        self._lock = threading.RLock()
        self.trees = trees.trees(defs)
        self.tx = self.trees.terminology()
        self.regex = self.trees.regexes()
        self.memo: dict[Any, Any] = {}  # (element, type, content, language) → the issues to replay (memo.keep())
        self.slice_memo: dict[Any, Any] = {}  # (element, type, item content) → the slice it matched
        self._profiles: dict[str, _Profile] = {}  # url → what conforms() reads first
        self.checkers: Checkers = checkers_for(self)

    # ---- entry points ----
    def validate(self, resource: Any, profiles: Sequence[str] = ()) -> list[Issue]:
        """Issues for `resource` (a dict) against its base definition, its meta.profile and `profiles`.

        Thread-safe: calls are serialised, because the lazily filled caches (compiled profiles, slice indexes,
        expansions, the value memo, fhirpathpy's evaluator state) are shared; the work is CPU-bound, so threads
        would not run it in parallel anyway.
        """
        with self._lock:
            try:
                return self._validate(resource, profiles)
            except RecursionError:  # MAX_DEPTH keeps the element walk well inside the limit; this is the backstop
                return [Issue("error", "too-costly", "too-deep", "The content is nested too deeply to be validated",
                              None)]

    def _validate(self, resource: Any, profiles: Sequence[str]) -> list[Issue]:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return [Issue("error", "structure", "not-a-resource",
                          "the input is not a FHIR resource (a JSON object with a resourceType string)", None)]
        run = self.new_run(resource)
        if resource["resourceType"] in ("Bundle", "Parameters"):
            references_module.index(resource, run, self.references.bundle_rules)
        self.check_resource(resource, resource["resourceType"], list(profiles), run)
        return _dedupe(run.issues)

    def outcome(self, resource: Any, profiles: Sequence[str] = ()) -> dict[str, Any]:
        return operation_outcome(self.validate(resource, profiles))

    def new_run(self, root: dict[str, Any]) -> Run:
        """The state of a validation of `root` by this validator."""
        return Run(root, validator=self)

    def forget(self) -> None:
        """Drop the verdicts remembered about content seen so far (values, slices, regular-expression verdicts on
        short strings, narratives), keeping the compiled profiles and checkers: what follows is validated as on
        first sight (benchmarks' first pass; memory)."""
        with self._lock:
            self.memo.clear()
            self.slice_memo.clear()
            patterns.forget()
            fhirpath.forget()

    # ---- compiled definitions ----
    def node(self, url: str) -> Node | None:
        """Root element node of a StructureDefinition (compiled once per Definitions), or None when unknown."""
        return self.trees.node(url)

    def type_node(self, code: str) -> Node | None:
        """Root element node of the base definition of type `code`."""
        return self.trees.type_node(code)

    def element(self, url: str, path: str) -> Node | None:
        """The element at `path` of the StructureDefinition `url` (compiled)."""
        return self.trees.element(url, path)

    def children(self, node: Node, typ: str) -> dict[str, Node]:
        """The children of an element of type `typ` (its own, its content reference's, its type profile's or the
        type's)."""
        return self.trees.children(node, typ)

    def type_of(self, profile_url: str) -> str | None:
        """The type a profile (or a core definition) is for."""
        return self.defs.type_of(profile_url)

    def planned(self, node: Node) -> invariants.Planned:
        return self.checkers.planned(node)

    # ---- parts of the walk (for rules/, references, type profiles) ----
    def check_resource(self, res: dict[str, Any], path: str, profiles: list[str], run: Run) -> None:
        """A resource (root or nested) against its base definition, `profiles` and the profiles it claims."""
        resources.check(self, res, path, profiles, run)

    def check_against(self, resource: dict[str, Any], node: Node, path: str, run: Run) -> None:
        """`resource` against one more profile (`node`, its compiled root) exactly as against a claimed one."""
        resources.against(self, resource, node, path, run)

    def check_object(self, obj: Any, owner: Node, kids: dict[str, Node], path: str, typ: str, run: Run,
                     is_resource: bool = False) -> None:
        """A JSON object filling element `owner` (of type `typ`) whose children are `kids`."""
        self.checkers.object(owner, kids, typ)(obj, path, run, is_resource)

    def check_value(self, value: Any, ext: Any, typ: str, node: Node, path: str, run: Run) -> None:
        """One value of type `typ` in element `node` (with its `_name` holder `ext`, if any)."""
        self.checkers.value(node, typ)(value, ext, path, run)

    def check_invariants(self, value: Any, node: Node, path: str, run: Run) -> None:
        """The invariants of element `node` on `value`."""
        if node.constraints:  # planned afresh: a caller may hand over an element it has just built
            invariants.check(invariants.planned(node), node.path, value, path, run)

    def conforms(self, value: Any, url: str, run: Run, strict: bool = False) -> bool:
        """Whether `value` (a resource) meets the profile `url`. `strict` (FHIRPath conformsTo(), which the HL7
        validator answers by validating) also checks a resource against its own core definition."""
        if value.__class__ is not dict and not isinstance(value, dict):
            return False
        key = (id(value), url + "|strict" if strict else url)
        known = run.conforms.get(key)
        if known is not None:
            return known
        meta = value.get("meta")
        if meta.__class__ is dict or isinstance(meta, dict):
            claimed = meta.get("profile")
            if claimed.__class__ is list or isinstance(claimed, list):
                for c in claimed:  # same_canonical() of two different canonicals needs a version on one
                    if c == url or (isinstance(c, str) and ("|" in c or "|" in url) and same_canonical(url, c)):
                        run.conforms[key] = True
                        return True
        facts = self._profiles.get(url)
        if facts is None:
            facts = self._profiles[url] = _Profile(self, url)
        rtype = value.get("resourceType")
        if not strict and facts.base and rtype == facts.type:
            run.conforms[key] = True
            return True
        root = facts.root
        if root is None or root.path != rtype:
            run.conforms[key] = False
            return False
        if facts.code is not None and not facts.code(value.get("code")):
            run.conforms[key] = False  # the profile fixes another code: no need to walk the whole resource
            return False
        if slicing.surely_refused(self, root, value):
            run.conforms[key] = False  # a required element or slice is missing: the walk would report it
            return False
        run.conforms[key] = True  # provisional, guards against cycles
        sub = run.sub(value)
        self.check_object(value, root, root.children, root.path, root.path, sub, is_resource=True)
        ok = not any(i.severity in ("error", "fatal") for i in sub.issues)
        run.conforms[key] = ok
        return ok


class _Profile:
    """What conforms() reads about a profile before walking a resource against it, worked out once per url."""

    __slots__ = ("base", "code", "root", "type")

    def __init__(self, v: Validator, url: str) -> None:
        self.base = v.defs.is_base(url)
        self.type = v.type_of(url)
        self.root = v.node(url)
        code = self.root.children.get("code") if self.root is not None else None
        self.code = pattern_test(code.pattern) if code is not None and code.pattern is not None else None


def _dedupe(issues: Iterable[Issue]) -> list[Issue]:
    """The issues without repeats (same severity, code, place and message), each where it first came."""
    seen: dict[tuple[str, str, str | None, str], Issue] = {}
    for i in issues:
        key = (i.severity, i.code, i.expression, i.message)
        if key not in seen:
            seen[key] = i
    return list(seen.values())


__all__ = ["MAX_DEPTH", "Run", "TypeRef", "Validator"]
