"""The validator before profiles were compiled into checkers (issue 14), kept only until the equivalence test
(tests/profiles/test_compiled_equivalence.py) has shown on every corpus and example resource that the compiled
validator (profiles/validator.py) gives the same issues; then it goes. Not for new code."""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from mappers.exceptions import Issue, operation_outcome
from profiles import content, fhirpath, fixed_values, invariants, narrative_links, patterns, rules, type_profiles
from profiles import references as references_module
from profiles.definitions import CORE_PREFIX, Definitions, same_canonical
from profiles.displays import binding_value_set, display_problem, value_set_displays
from profiles.elements import PRIMITIVES, Node, TypeRef, compile_snapshot
from profiles.matching import contains_pattern, equal_fixed, short, split_path, typed_values_at, values_at
from profiles.primitives import json_type_error, lexical, regexes
from profiles.quantities import ucum_base as _ucum_base
from profiles.snapshot import generate
from profiles.valuesets import Terminology

_REF_RELATIVE = patterns.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
_REF_ABSOLUTE = patterns.compile(r"^(https?://\S+/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/\S+)?$")
_CODED = {"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"}
_CANONICAL = {
    "ActivityDefinition", "CapabilityStatement", "ChargeItemDefinition", "CodeSystem", "CompartmentDefinition",
    "ConceptMap", "EffectEvidenceSynthesis", "EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario",
    "GraphDefinition", "ImplementationGuide", "Library", "Measure", "MessageDefinition", "NamingSystem",
    "OperationDefinition", "PlanDefinition", "Questionnaire", "ResearchDefinition", "ResearchElementDefinition",
    "RiskEvidenceSynthesis", "SearchParameter", "StructureDefinition", "StructureMap", "TerminologyCapabilities",
    "TestScript", "ValueSet",
}
_ACTIVE_HTML = patterns.compile(r"<\s*(script|iframe|object|embed|form|img|a|svg)\b|\son\w+\s*=|javascript:",
                                patterns.IGNORECASE)
_EXAMPLE_URL = patterns.compile(r"^https?://(www\.)?example\.(org|com|net)/")
_EXAMPLE_DOMAIN = patterns.compile(r"^https?://([\w-]+\.)*(example\.(org|com|net)|acme\.com)([:/]|$)")
_MARKDOWN_TAG = patterns.compile(r"</?[A-Za-z]")  # the start of an HTML tag (or end tag) inside markdown
# a canonical is an absolute URL (a lower-case scheme, then something) unless it is a #fragment reference
_ABSOLUTE_CANONICAL = patterns.compile(r"#|[a-z][a-z0-9+.\-_]*:\S")
_ID = patterns.compile(r"[A-Za-z0-9\-.]{1,64}")
_CONTEXT_TAIL = patterns.compile(r"\.(where|ofType|exists|first)\(.*$")
_CONTEXT_PATH = patterns.compile(r"[A-Za-z][\w.]*")


@dataclass
class _Run:
    """State of one validate() call: the issues found and the Bundle's resources for resolution."""

    root: dict[str, Any]
    issues: list[Issue] = field(default_factory=list)
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    conforms: dict[tuple[int, str], bool] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    container: dict[str, Any] | None = None  # while inside a contained resource: the resource containing it
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # Type/id → the Bundle entries with it
    applied: list[str] = field(default_factory=list)  # while rules run: the profiles the resource was checked against
    full_urls: dict[int, str] = field(default_factory=dict)  # id(entry resource) → its Bundle entry's fullUrl
    extra_profiles: dict[int, list[str]] = field(default_factory=dict)  # id(entry resource) → bundle-param profiles
    type_ids: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # Type/id → (entry no, fullUrl)
    depth: int = 0  # how many JSON objects deep the element walk is
    bundle: dict[str, Any] | None = None  # the nearest Bundle around the element being walked (root or nested)

    def add(self, severity: str, code: str, path: str, message: str, details: str = "validation") -> None:
        self.issues.append(Issue(severity, code, details, message, path))

    def resolve(self, ref: str) -> dict[str, Any] | None:
        if not isinstance(ref, str):
            return None  # a malformed Reference.reference (reported by the type checks) resolves to nothing
        if ref.startswith("#"):
            # inside a contained resource, #id names a sibling: the container holds them all (R4 References 2.3.0.1)
            holder = self.container if self.container is not None else self.resource
            return next((c for c in content.objects(holder.get("contained")) if c.get("id") == ref[1:]), None)
        return references_module.resolve(self, ref)


class Validator:
    """Compiles each profile once (per Definitions) and validates instances against them."""

    def __init__(self, defs: Definitions, security_checks: bool = True, memo: bool = True,
                 examples: bool = True, html_in_markdown: str = "warning",
                 references: references_module.ReferencePolicy | None = None,
                 extensible_binding_warnings: bool = True) -> None:
        """`security_checks`: refuse active HTML (script, handlers, javascript: URLs) inside strings, as the HL7
        validator does with its security-checks option; a gateway wants it on. `memo`: remember the verdict on
        context-free datatype values (codes, quantities), which recur across resources. `examples`: accept
        references and extensions in the example domains (example.org, ...), as the HL7 validator does unless
        told otherwise. `html_in_markdown`: "warning" (the HL7 validator's default), "error" (its noHtmlInMarkdown
        option) or "ignore" for markdown holding what looks like an HTML tag (FHIR-38714). `references`: how far
        references and nested resources are followed (profiles/references.py). `extensible_binding_warnings`:
        False leaves out the warning for a code outside an extensible binding's value set (the HL7 validator's
        no-extensible-binding-warnings option)."""
        self.defs = defs
        self.extensible_binding_warnings = extensible_binding_warnings
        self.references = references or references_module.DEFAULT
        self.html_in_markdown = html_in_markdown
        self.security_checks = security_checks
        self.examples = examples
        self.use_memo = memo
        self._lock = threading.RLock()
        self.tx = Terminology(defs)
        self.regex = regexes(defs)
        self._nodes: dict[str, Node | None] = {}
        self._paths: dict[str, dict[str, Node]] = {}
        self._indexes: dict[int, _SliceIndex | None] = {}
        self._required_kids: dict[int, list[Node]] = {}
        self._type_nodes: dict[str, Node | None] = {}
        self._keymaps: dict[int, dict[str, tuple[Node, str]]] = {}
        self._memo: dict[tuple[int, str, bytes, Any], list[tuple[str, str, str, str, str]]] = {}
        self._node_memo: dict[tuple[int, str], Node | None] = {}
        self._slice_memo: dict[tuple[int, str, bytes], int | None] = {}  # item content → the slice it matched

    # ---- public ----
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
        run = _Run(resource)
        if resource["resourceType"] in ("Bundle", "Parameters"):
            self._index_bundle(resource, run)
        self._resource(resource, resource["resourceType"], list(profiles), run)
        return _dedupe(run.issues)

    def outcome(self, resource: Any, profiles: Sequence[str] = ()) -> dict[str, Any]:
        return operation_outcome(self.validate(resource, profiles))

    # ---- the public interface of profiles/validator.py, for the modules both validators share ----
    def check_object(self, obj: Any, owner: Node, kids: dict[str, Node], path: str, typ: str, run: _Run,
                     is_resource: bool = False) -> None:
        self._object(obj, owner, kids, path, typ, run, is_resource)

    def check_against(self, resource: dict[str, Any], node: Node, path: str, run: _Run) -> None:
        self._object(resource, node, node.children, path, node.path, run, is_resource=True)
        self._constraints(resource, node, node.path, path, run)

    def element(self, url: str, path: str) -> Node | None:
        return self._paths[url].get(path) if self.node(url) is not None else None

    def type_of(self, profile_url: str) -> str | None:
        return self._type_of(profile_url)

    def conforms(self, value: Any, url: str, run: _Run, strict: bool = False) -> bool:
        return self._conforms(value, url, run, strict)

    # ---- compilation ----
    def node(self, url: str) -> Node | None:
        """Root element node of a StructureDefinition (compiled once), or None when unknown."""
        if url not in self._nodes:
            sd = self.defs.structure(url)
            known = sd.get("url") if sd is not None else None
            if isinstance(known, str) and known != url and self.defs.structure(known) is sd:
                # `url|version` (or a bare url) naming the definition another spelling names: compiled once
                self._nodes[url] = self.node(known)
                if known in self._paths:
                    self._paths[url] = self._paths[known]
                return self._nodes[url]
            root = None
            if sd is not None:
                try:
                    root = compile_snapshot(generate(sd, self.defs))
                except (ValueError, TypeError, AttributeError, KeyError):  # SnapshotError, or a malformed definition:
                    # reported as a profile that is not known
                    root = None
            self._nodes[url] = root
            if root is not None:
                index: dict[str, Node] = {}
                stack = [root]
                while stack:
                    n = stack.pop()
                    index.setdefault(n.path, n)
                    stack.extend(n.children.values())
                self._paths[url] = index
        return self._nodes[url]

    def _type_node(self, code: str) -> Node | None:
        hit = self._type_nodes.get(code, _MISSING)
        if hit is _MISSING:
            sd = self.defs.type_definition(code)
            hit = self._type_nodes[code] = self.node(sd["url"]) if sd else None
        return hit  # type: ignore[return-value]

    def _children(self, node: Node, typ: str) -> dict[str, Node]:
        if node.children:
            return node.children
        if node.content_ref:
            url, _, path = node.content_ref.partition("#")
            url = url or node.profile_url
            if self.node(url) is not None:
                target = self._paths[url].get(path)
                if target is not None:
                    return target.children
        ref = next((t for t in node.types if t.code == typ), None)
        if ref and ref.profiles:
            prof = self.node(ref.profiles[0])
            if prof is not None:
                return prof.children
        base = self._type_node(typ)
        return base.children if base else _NO_CHILDREN

    # ---- resources ----
    def _index_bundle(self, bundle: dict[str, Any], run: _Run) -> None:
        """Index a Bundle's entries (or a Parameters' resources) for reference resolution."""
        references_module.index(bundle, run, self.references.bundle_rules)

    def _resource(self, res: dict[str, Any], path: str, profiles: list[str], run: _Run) -> None:
        rtype = res.get("resourceType")
        base = self._type_node(rtype) if isinstance(rtype, str) else None
        if base is None:
            run.add("error", "structure", path, f"Unknown resource type {rtype!r}")
            return
        meta = res.get("meta")
        profiles_claimed = content.items(meta.get("profile")) if isinstance(meta, dict) else []
        claimed = [p for p in profiles_claimed if isinstance(p, str)]
        roots: list[Node] = []
        for url in dict.fromkeys([*profiles, *claimed]):
            node = self.node(url)
            if node is None:
                sev = "error" if url in profiles else "warning"
                run.add(sev, "not-found", path, f"Profile {url} is not known locally, so it was not checked")
            elif node.path != rtype:
                run.add("error", "structure", path, f"Profile {url} is for {node.path}, not {rtype}")
            else:
                roots.append(node)
        rid = res.get("id")
        if isinstance(rid, str) and not _ID.full(rid):
            run.add("error", "invalid", f"{path}.id", f"Invalid Resource id {rid!r}: ids are 1-64 of A-Z a-z 0-9 - .")
        if rtype == "Bundle":
            self._bundle_rules(res, path, run)
        outer, outer_container, outer_bundle = run.resource, run.container, run.bundle
        if path.rsplit(".", 1)[-1].startswith("contained["):
            run.container = outer
        run.resource = res
        if rtype == "Bundle":
            run.bundle = res
        try:
            for root in roots or [base]:
                self._object(res, root, root.children, path, rtype, run, is_resource=True)
                self._constraints(res, root, rtype, path, run)
            run.applied = [r.profile_url for r in roots]
            rules.apply(self, res, path, run)
        finally:
            run.resource, run.container, run.bundle = outer, outer_container, outer_bundle

    def _bundle_rules(self, bundle: dict[str, Any], path: str, run: _Run) -> None:
        """Bundle rules the base definitions carry only as prose: unique fullUrls and ids, absolute fullUrls."""
        seen: dict[str, int] = {}
        btype = bundle.get("type")
        relations: dict[str, int] = {}
        for i, link in enumerate(content.items(bundle.get("link"))):
            rel = link.get("relation") if isinstance(link, dict) else None
            if not isinstance(rel, str):
                continue
            if rel in ("self", "first", "previous", "prev", "next", "last") and rel in relations:
                run.add("error", "invalid", f"{path}.link[{i}]", f"The link relationship type '{rel}' can only occur "
                        "once")
            relations[rel] = i
        for i, entry in enumerate(content.items(bundle.get("entry"))):
            if not isinstance(entry, dict):
                continue
            full = entry.get("fullUrl")
            res = entry.get("resource") if isinstance(entry.get("resource"), dict) else {}
            if res and not full and btype not in ("transaction", "batch", "transaction-response",
                                                  "batch-response"):
                run.add("error", "invalid", f"{path}.entry[{i}]", "Except for transactions and batches, each entry "
                        "in a Bundle must have a fullUrl which is the identity of the resource in the entry")
            if isinstance(full, str):
                if not references_module.ABSOLUTE_URL.match(full):
                    run.add("error", "invalid", f"{path}.entry[{i}]", f"The fullUrl must be an absolute URL (not "
                            f"'{full}')")
                meta = res.get("meta")
                key = full + "|" + str(meta.get("versionId", "") if isinstance(meta, dict) else "")
                if key in seen:
                    run.add("error", "invalid", f"{path}.entry[{i}]", f"Duplicate fullUrl {full} (also entry "
                            f"[{seen[key]}])")
                seen.setdefault(key, i)
                rest = references_module.RESTFUL_FULL_URL.match(full)
                if rest and res and (rest.group(1), rest.group(2)) != (res.get("resourceType"), res.get("id")):
                    why = "the resource has no id" if not res.get("id") else (
                        f"it must end with the correct type and id (/{res.get('resourceType')}/{res['id']})")
                    run.add("error", "invalid", f"{path}.entry[{i}]", f"The fullUrl '{full}' looks like a RESTful "
                            f"server URL, but {why}")

    # ---- elements ----
    def _object(self, obj: Any, owner: Node, kids: dict[str, Node], path: str, typ: str, run: _Run,
                is_resource: bool = False) -> None:
        if not isinstance(obj, dict):
            run.add("error", "structure", path, f"{typ} must be a JSON object, found {type(obj).__name__}")
            return
        if not obj:
            run.add("error", "invalid", path, "Object must have some content (empty elements are not allowed)")
            return
        if run.depth >= MAX_DEPTH:
            run.add("error", "too-costly", path, f"Elements nested more than {MAX_DEPTH} deep are not validated")
            return
        if not is_resource and set(obj) == {"id"}:
            run.add("error", "invariant", path, "Constraint failed: ele-1: 'All FHIR elements must have a @value or "
                    "children'")
        run.depth += 1
        try:
            found: dict[str, list[tuple[str, Any, Any, str]]] = {}
            for key, value in obj.items():
                if key == "resourceType" and is_resource:
                    continue
                if key.startswith("_"):
                    name = key[1:]
                    if name not in obj:
                        self._assign(found, kids, name, None, value, path, run, shadow_only=True)
                    continue
                self._assign(found, kids, key, value, obj.get("_" + key), path, run)
            if typ == "Extension" and ("extension" in obj) == any(k.startswith("value") for k in obj):
                run.add("error", "invariant", path, "Constraint failed: ext-1: 'Must have either extensions or "
                                                    "value[x], not both'")
            ids: set[str] = set()
            for name, items in found.items():
                kid = kids[name]
                for i, (_, v, e, _) in enumerate(items):
                    # element ids are unique among an element's children (R4 Element.id; the HL7 validator's scope);
                    # a primitive's id sits in its `_name` object, nested resources have ids of their own
                    holder = v if isinstance(v, dict) else e
                    if isinstance(holder, dict) and "id" in holder and "resourceType" not in holder:
                        eid = holder["id"]
                        if isinstance(eid, str) and eid in ids:
                            run.add("error", "business-rule", f"{path}.{kid.base_name}[{i}]" if kid.repeats else
                                    f"{path}.{kid.base_name}", f"Duplicate id value '{eid}'")
                        elif isinstance(eid, str) and eid:
                            ids.add(eid)
                self._element(items, kid, path, run)
                if name in ("extension", "modifierExtension") and items:
                    self._extension_contexts(items, owner, typ, path, run, obj)
            for kid in self._required(kids):  # absent but required: the cardinality (and slice) errors
                if kid.name not in found:
                    self._element([], kid, path, run)
        finally:
            run.depth -= 1

    def _required(self, kids: dict[str, Node]) -> list[Node]:
        """Children that must be present (min > 0, or a required slice), computed once per set of children."""
        key = id(kids)
        req = self._required_kids.get(key)
        if req is None:
            req = [k for k in kids.values() if k.min > 0 or any(s.min > 0 for s in k.slices.values())]
            self._required_kids[key] = req
        return req

    def _keymap(self, kids: dict[str, Node]) -> dict[str, tuple[Node, str]]:
        """JSON property name → (element, type) for a set of children, choice types spelled out (valueQuantity)."""
        key = id(kids)
        km = self._keymaps.get(key)
        if km is None:
            km = {}
            for kid in kids.values():
                if kid.is_choice:
                    for t in kid.types:
                        km[kid.base_name + t.code[:1].upper() + t.code[1:]] = (kid, t.code)
                else:
                    km[kid.name] = (kid, kid.types[0].code if kid.types else (
                        "BackboneElement" if kid.children else "Element"))
            self._keymaps[key] = km
        return km

    def _assign(self, found: dict[str, list[tuple[str, Any, Any, str]]], kids: dict[str, Node], key: str,
                value: Any, ext: Any, path: str, run: _Run, shadow_only: bool = False) -> None:
        kid, typ = self._keymap(kids).get(key, (None, ""))
        if kid is None:
            kid = type_profiles.restricted_choice(self, kids, key, path, run)
            if kid is None:
                run.add("error", "structure", f"{path}.{key}", f"Unrecognized property '{key}'")
                return
            typ = ""  # a type the profile does not allow (reported): the element is present, its value not checked
        bucket = found.setdefault(kid.name, [])
        if kid.is_choice and bucket and bucket[0][0] != key:
            run.add("error", "structure", f"{path}.{key}",
                    f"{kid.base_name}[x] has more than one value ({bucket[0][0]} and {key})")
            return
        values = value if isinstance(value, list) else [value]
        exts = ext if isinstance(ext, list) else [ext] * len(values)
        if isinstance(value, list) and not kid.repeats:
            # several items are one error, the cardinality one (_element); it is also how a single-valued XML
            # element given twice arrives here
            if kid.max is None or len(value) <= kid.max:
                run.add("error", "structure", f"{path}.{key}", "This property must be a single value, not an array")
        elif not isinstance(value, list) and value is not None and kid.repeats:
            run.add("error", "structure", f"{path}.{key}", f"This property must be an array, not {short(value)}")
        if isinstance(value, list) and not value:
            run.add("error", "invalid", f"{path}.{key}", "Array cannot be empty - the property should not be present")
        if shadow_only:
            values = [None] * (len(ext) if isinstance(ext, list) else 1)
            exts = ext if isinstance(ext, list) else [ext]
        for i, v in enumerate(values):
            e = exts[i] if i < len(exts) else None
            if v is None and e is None:
                if isinstance(value, list) and not shadow_only:
                    run.add("error", "structure", f"{path}.{key}[{i}]", "null is not allowed here")
                elif value is None and not shadow_only:  # JSON null stands for nothing only inside arrays
                    run.add("error", "invalid", f"{path}.{key}", f"The property {key} must be "
                            f"{'an Object' if typ[:1].isupper() else 'a JSON ' + typ}, not a Null")
                continue
            bucket.append((key, v, e, typ))

    def _element(self, items: list[tuple[str, Any, Any, str]], kid: Node, path: str, run: _Run) -> None:
        n = len(items)
        name = kid.base_name
        where = f"{path}.{name}"
        if n < kid.min:
            run.add("error", "structure", path, f"{kid.path}: minimum required = {kid.min}, but only found {n}"
                    f" (from {kid.profile_url})")
        if kid.max is not None and n > kid.max:
            run.add("error", "structure", path, f"{kid.path}: max allowed = {kid.max}, but found {n}"
                    f" (from {kid.profile_url})")
        if n < kid.min or (kid.max is not None and n > kid.max):
            type_profiles.base_cardinality(self, kid, n, path, run)  # the base definition's verdict too
        if not items:
            for name, snode in kid.slices.items():
                if snode.min > 0:
                    run.add("error", "structure", path, f"Slice '{kid.path}:{name}': a matching slice is required, "
                            f"but not found (from {kid.profile_url})")
            return
        many = kid.repeats
        targets: list[Node] = [kid] * n
        if kid.slicing is not None and kid.slices:
            targets = self._slice(items, kid, where, many, run)
        for i, (_key, value, ext, typ) in enumerate(items):
            if not typ:
                continue
            p = f"{where}[{i}]" if many else (f"{where}.ofType({typ[:1].upper() + typ[1:]})" if kid.is_choice
                                               else where)
            self._value(value, ext, typ, targets[i], p, run)

    def _value(self, value: Any, ext: Any, typ: str, node: Node, path: str, run: _Run) -> None:
        digest = _content_key(value) if self.use_memo and typ in _CONTEXT_FREE and ext is None else None
        if digest is not None:
            # Codes, quantities and identifiers recur across resources and nothing outside them changes their
            # verdict: replay the issues of an identical value checked against the same element before.
            lang = (run.resource or run.root).get("language")  # displays are judged per language
            key = (id(node), typ, digest, lang if isinstance(lang, str) else None)
            seen = self._memo.get(key)
            if seen is not None:
                run.issues.extend(Issue(sev, code, det, msg, path + rel) for sev, code, det, msg, rel in seen)
                return
            start = len(run.issues)
            self._value_checked(value, ext, typ, node, path, run)
            found = run.issues[start:]
            if all((i.expression or "").startswith(path) for i in found):
                if len(self._memo) > 100_000:
                    self._memo.clear()
                self._memo[key] = [(i.severity, i.code, i.details, i.message, (i.expression or "")[len(path):])
                                   for i in found]
            return
        self._value_checked(value, ext, typ, node, path, run)

    def _value_checked(self, value: Any, ext: Any, typ: str, node: Node, path: str, run: _Run) -> None:
        if ext is not None:
            self._primitive_ext(ext, value is None, node, typ, path, run)
        if value is None:
            return
        if typ in PRIMITIVES or typ.startswith("System."):
            self._primitive(value, typ, node, path, run)
            if value == "" and typ in PRIMITIVES and not (isinstance(ext, dict) and ext.get("extension")):
                # an empty value is no value: the element has neither (ele-1), besides being empty
                run.add("error", "invariant", path, "Constraint failed: ele-1: 'All FHIR elements must have a "
                        "@value or children'")
        elif typ == "Resource" or (typ[:1].isupper() and self.defs.type_definition(typ) is not None
                                   and self.defs.type_definition(typ).get("kind") == "resource"):
            if isinstance(value, dict):
                if not self.references.contained and path.endswith("]") and ".contained[" in path:
                    return  # validateContains IGNORE: contained resources are not validated
                claimed = references_module.element_profiles(self, node, value, path, run) if any(
                    t.profiles for t in node.types) else []
                if run.extra_profiles and id(value) in run.extra_profiles:
                    claimed = [*claimed, *run.extra_profiles[id(value)]]
                self._resource(value, path, claimed, run)
            else:
                run.add("error", "structure", path, "a resource must be a JSON object")
            return
        else:
            if typ == "Extension" and isinstance(value, dict):
                node = self._extension_definition(value, node, path, run)
            typed = type_profiles.profiles_of(node, typ) if typ != "Extension" else ()
            if not (typed and type_profiles.check(self, value, typ, typed, node, path, run)):
                self._object(value, node, self._children(node, typ), path, typ, run)
            if isinstance(value, dict):
                if typ == "Reference":
                    self._reference(value, node, path, run)
                if typ == "Attachment":
                    self._attachment(value, path, run)
                if typ in ("Coding", "CodeableConcept"):
                    self._codes_exist(value, typ, path, run, node)
                base = self._type_node(typ)
                if base is not None and base is not node:
                    self._constraints(value, base, typ, path, run)
        if node.fixed is not None and not equal_fixed(value, node.fixed):
            for where, message in fixed_values.differences(value, node.fixed, path, node.profile_url):
                run.add("error", "value", where, message)  # child by child, as the HL7 validator reports them
        if node.pattern is not None and not contains_pattern(value, node.pattern):
            run.add("error", "value", path, f"The pattern {short(node.pattern)} defined in the profile "
                    f"{node.profile_url} was not found in {short(value)}")
        if node.binding and typ in _CODED:
            self._binding(value, typ, node, path, run)
        if node.min_value is not None or node.max_value is not None:
            self._range(value, node, path, run)
        self._constraints(value, node, typ, path, run)

    def _attachment(self, value: dict[str, Any], path: str, run: _Run) -> None:
        data, size = value.get("data"), value.get("size")
        if isinstance(data, str) and isinstance(size, int):
            try:
                actual = len(base64.b64decode(data, validate=False))
            except (binascii.Error, ValueError):
                return  # the base64Binary regex reports it
            if actual != size:
                run.add("error", "invalid", path, f"Stated Attachment Size {size} does not match actual attachment "
                        f"size {actual}")

    def _primitive_ext(self, ext: Any, no_value: bool, node: Node, typ: str, path: str, run: _Run) -> None:
        """The `_name` object of a primitive: its id and extensions (and ele-1 when there is no value)."""
        if not isinstance(ext, dict):
            run.add("error", "structure", path, "a primitive's extension holder must be a JSON object")
            return
        for key in ext:
            if key not in ("id", "extension"):
                run.add("error", "structure", f"{path}.{key}", f"Unrecognized property '{key}'")
        if no_value and not ext.get("extension"):
            run.add("error", "invariant", path, "Constraint failed: ele-1: 'All FHIR elements must have a @value or "
                    "children'")
        element = self._type_node("Element")
        items = [("extension", e, None, "Extension") for e in content.items(ext.get("extension"))]
        for i, (_, e, _, _) in enumerate(items):
            self._extension(e, f"{path}.extension[{i}]", run, element)
        if items:
            self._extension_contexts(items, node, typ, path, run)

    def _extension_definition(self, value: dict[str, Any], node: Node, path: str, run: _Run) -> Node:
        """The definition an extension is checked against: its slice's profile, else the one its url names."""
        if any(t.profiles for t in node.types) or (node.children.get("url") and node.children["url"].fixed):
            return node
        url = value.get("url")
        if not isinstance(url, str) or ":" not in url:
            return node  # a complex extension's sub-extension, named relative to it
        root = self.node(url)
        if root is None:
            if self.examples and _EXAMPLE_URL.match(url):  # example extensions are accepted unchecked (Java too)
                run.add("information", "informational", path, f"The extension {url} is an example and not checked",
                        "unknown-extension")
            else:
                run.add("error", "structure", path, f"The extension {url} could not be found so is not allowed "
                        "here", "unknown-extension")
            return node
        return root

    def _extension_contexts(self, items: list[tuple[str, Any, Any, str]], owner: Node, typ: str, path: str,
                            run: _Run, owner_value: Any = None) -> None:
        """Each extension's StructureDefinition.context must allow the element it sits on (fhirpath contexts are
        evaluated on the resource when the element's own value is known), and its contextInvariants must hold."""
        for i, (key, value, _, _) in enumerate(items):
            url = value.get("url") if isinstance(value, dict) else None
            where = f"{path}.{key}[{i}]"
            if isinstance(value, dict) and not url:  # absent or empty: nothing to judge the extension by
                run.add("error", "invalid", where, "Extension.url is required in order to identify, use and "
                        "validate the extension")
                continue
            if isinstance(url, str) and url in narrative_links.URLS:
                narrative_links.check(value, where, run)
            if isinstance(url, str) and "|" in url and (versioned := self.defs.structure(url)) is not None:
                # Extension.url identifies the extension, not a version of it (the HL7 validator's rule)
                run.add("error", "invalid", f"{where}[url='{url}']", "The extension URL must not contain a version. "
                        f"The extension was validated against version {versioned.get('version')} of the extension")
            if isinstance(url, str) and ":" not in url:
                if typ != "Extension":
                    run.add("error", "invalid", where, "Extension.url must be an absolute URL")
                else:
                    defined = owner.children.get("extension")
                    names = {str(s.children["url"].fixed) for s in (defined.slices.values() if defined else [])
                             if s.children.get("url") is not None and s.children["url"].fixed}
                    if names and url not in names:
                        run.add("error", "structure", f"{where}[url='{url}']", f"Sub-extension url '{url}' is not "
                                f"defined by the Extension {owner.profile_url}")
                continue
            sd = self.defs.structure(url) if isinstance(url, str) else None
            contexts = (sd or {}).get("context") or []
            if not contexts:
                continue
            if not any(self._context_allows(ctx, owner, typ, owner_value, run) for ctx in contexts):
                allowed = ", ".join(f"{c.get('type', '')[:1]}:{c.get('expression', '')}" for c in contexts)
                run.add("error", "business-rule", where, f"The extension {url} is not allowed to be used at this "
                        f"point (this element is [{owner.path}, {typ}]; allowed = {allowed})")
                continue
            res = run.resource or run.root
            failed = next((inv for inv in (sd or {}).get("contextInvariant") or []
                           if fhirpath.select(inv, res) == [False]), None)  # a path from the resource type
            if failed:
                run.add("error", "business-rule", where, f"The extension {url} is not allowed to be used at this "
                        f"point (based on context invariant '{failed}')")

    def _context_allows(self, ctx: dict[str, Any], owner: Node, typ: str, owner_value: Any = None,
                        run: _Run | None = None) -> bool:
        kind, expr = ctx.get("type"), ctx.get("expression", "")
        if expr == "Element":
            return True
        if kind == "extension":  # on that extension, or on its value
            if not (typ == "Extension" or owner.path.startswith("Extension.")):
                return False
            sd = self.defs.structure(owner.profile_url)  # the enclosing extension, when its definition is known
            if sd and sd.get("type") == "Extension" and sd.get("url") != CORE_PREFIX + "Extension":
                return sd.get("url") == expr.split("|")[0]
            return True
        if kind == "fhirpath" and isinstance(owner_value, dict) and run is not None:
            res = run.resource or run.root
            selected = fhirpath.select(expr, res)
            if selected is not None:  # the element must be among what the expression selects
                return any(s == owner_value for s in selected)
        if kind == "fhirpath":  # judged by the path it selects, e.g. Patient.address.where(...) → Patient.address
            expr = _CONTEXT_TAIL.sub("", expr)
            if not _CONTEXT_PATH.full(expr):
                return True  # a context expression too rich to judge: allow rather than guess
        if expr in (owner.path, typ) or self._type_is_a(typ, expr):
            return True
        if owner.content_ref and owner.content_ref.partition("#")[2] == expr:  # Questionnaire.item.item is an item
            return True
        head, _, rest = expr.partition(".")
        if rest:
            root, _, tail = owner.path.partition(".")
            if tail == rest and self._type_is_a(root, head):  # DomainResource.text allows Patient.text
                return True
            datatype = self.defs.type_definition(head)  # Address.line allows Patient.address.line
            return bool(datatype) and datatype.get("kind") == "complex-type" and owner.path.endswith("." + rest)
        return False

    def _type_is_a(self, typ: str, ancestor: str) -> bool:
        """Whether datatype/resource `typ` specialises `ancestor` (e.g. Patient is a DomainResource)."""
        if ancestor in ("CanonicalResource", "MetadataResource"):  # R5 interfaces used by R4-era extensions
            return typ in _CANONICAL
        seen = 0
        while typ and seen < 10:
            if typ == ancestor:
                return True
            sd = self.defs.type_definition(typ)
            base = (sd or {}).get("baseDefinition", "")
            typ = base.rsplit("/", 1)[-1] if base.startswith(CORE_PREFIX) else ""
            seen += 1
        return False

    def _extension(self, e: Any, path: str, run: _Run, owner: Node | None) -> None:
        ext_node = self._type_node("Extension")
        if ext_node is not None:
            self._value(e, None, "Extension", owner.children.get("extension", ext_node) if owner else ext_node,
                        path, run)

    def _primitive(self, value: Any, typ: str, node: Node, path: str, run: _Run) -> None:
        if typ.startswith("System."):
            return  # the `value` of a primitive type itself: checked by its owner
        err = json_type_error(typ, value)
        if err:
            run.add("error", "structure", path, f"Error parsing JSON: {err}")
            return
        if isinstance(value, str) and value == "" :
            run.add("error", "invalid", path, "@value cannot be empty")
            return
        if isinstance(value, str) and typ not in ("xhtml", "markdown", "string") and value != value.strip():
            run.add("error", "invalid", path, f"The value {value!r} has leading or trailing whitespace")
        rx = self.regex.get(typ)
        if rx is not None and not rx.full(lexical(typ, value)):
            run.add("error", "invalid", path, f"The value {short(value)} is not a valid {typ}")
        if typ == "positiveInt" and isinstance(value, int) and value < 1:
            run.add("error", "invalid", path, f"The value {value} is not a valid positiveInt (must be > 0)")
        if typ in ("integer", "positiveInt", "unsignedInt") and isinstance(value, int) and abs(value) > 2**31 - 1:
            run.add("error", "invalid", path, f"The value {value} is outside the range of a 32-bit {typ}")
        if self.security_checks and typ in ("string", "markdown") and isinstance(value, str) and "<" in value \
                and _ACTIVE_HTML.found(value):
            run.add("error", "security", path, "The string value contains text that looks like embedded HTML tags, "
                    "which are not allowed for security reasons in this context")
        if typ == "markdown" and isinstance(value, str) and "<" in value and self.html_in_markdown != "ignore":
            tag = _MARKDOWN_TAG.search(value)
            if tag:
                run.add("error" if self.html_in_markdown == "error" else "warning", "invalid", path,
                        f"The markdown contains content that appears to be an embedded HTML tag starting at "
                        f"'{tag.group()}'. This will (or SHOULD) be escaped by the presentation layer. The content "
                        "should be checked to confirm that this is the desired behaviour")
        if typ == "canonical" and isinstance(value, str) and not _ABSOLUTE_CANONICAL.match(value):
            run.add("error", "invalid", path, "Canonical URLs must be absolute URLs if they are not fragment "
                    f"references ({value})")
        if not self.examples and typ in ("uri", "url", "canonical") and isinstance(value, str) \
                and _EXAMPLE_DOMAIN.match(value):  # the HL7 validator's examples=false option
            run.add("error", "invalid", path, f"Example URLs are not allowed in this context ({value})")
        if isinstance(value, str) and len(value) > 1048576:
            run.add("error", "invalid", path, "value is longer than permitted maximum length of 1 MB (1048576 bytes)")
        if node.min_length and isinstance(value, str) and len(value) < node.min_length:
            run.add("error", "invalid", path, f"Value '{value[:40]}' is shorter than permitted minimum length of "
                    f"{node.min_length}")
        if node.max_length and isinstance(value, str) and len(value) > node.max_length:
            run.add("error", "invalid", path, f"The value is longer than the maximum length {node.max_length}")
        if typ == "xhtml" and isinstance(value, str) and not fhirpath._html_checks([value])[0]:
            run.add("error", "invalid", path, "The narrative must be an XHTML div with no active content")

    def _range(self, value: Any, node: Node, path: str, run: _Run) -> None:
        """minValue[x] / maxValue[x]: numbers, ISO dates, Quantities (converted between common UCUM units), and
        Durations on dates (the date must lie within that span of today)."""
        def scalar(v: Any) -> Any:
            return v.get("value") if isinstance(v, dict) else v

        got = scalar(value)
        for bound, is_min in ((node.min_value, True), (node.max_value, False)):
            if bound is None or got is None:
                continue
            limit = scalar(bound)
            if isinstance(bound, dict) and isinstance(got, str):  # a Duration bounding a date
                limit = _date_offset(bound, -1 if is_min else 1)
                if limit is None:
                    continue
                got_cmp, limit_cmp = got[:10], limit
            elif isinstance(bound, dict) and isinstance(value, dict) and bound.get("code") != value.get("code"):
                a, b = _ucum_base(value), _ucum_base(bound)
                if a is None or b is None or a[0] != b[0]:
                    continue  # units not convertible here: not compared
                got_cmp, limit_cmp = a[1], b[1]
            else:
                got_cmp, limit_cmp = got, limit
            try:
                bad = got_cmp < limit_cmp if is_min else got_cmp > limit_cmp
            except TypeError:
                continue
            if bad:
                word = "less than the specified minimum" if is_min else "greater than the specified maximum"
                run.add("error", "invalid", path, f"The value in the instance ({got}) is {word} value ({limit})")

    # ---- slicing ----
    def _slice(self, items: list[tuple[str, Any, Any, str]], kid: Node, where: str, many: bool,
               run: _Run) -> list[Node]:
        assert kid.slicing is not None
        slices = list(kid.slices.items())
        chosen: list[Node] = []
        order: list[int] = []
        counts = dict.fromkeys(kid.slices, 0)
        index = self._slice_index(kid)
        memo = self.use_memo and self._context_free_slicing(kid)
        for i, (_, value, _, typ) in enumerate(items):
            digest = _content_key(value) if memo else None
            hit = self._slice_memo.get((id(kid), typ, digest), _MISSING) if digest is not None else _MISSING
            if hit is _MISSING:
                candidates = range(len(slices)) if index is None else index.candidates(value, run.resolve)
                hit = next((k for k in candidates if self._matches(value, typ, slices[k][1], kid, run)), None)
                if digest is not None:
                    if len(self._slice_memo) > 100_000:
                        self._slice_memo.clear()
                    self._slice_memo[(id(kid), typ, digest)] = hit
            if hit is None:
                chosen.append(kid)
                order.append(len(slices))
                if kid.slicing.rules == "closed":
                    run.add("error", "structure", f"{where}[{i}]" if many else where,
                            f"This element does not match any known slice defined in the profile "
                            f"{kid.profile_url} and slicing is closed")
                continue
            name, snode = slices[hit]
            counts[name] += 1
            chosen.append(snode)
            order.append(hit)
        for name, snode in slices:
            c = counts[name]
            if c < snode.min:
                run.add("error", "structure", where.rsplit(".", 1)[0],
                        f"Slice '{kid.path}:{name}': a matching slice is required, but not found"
                        f" (from {kid.profile_url})" if c == 0 else
                        f"Slice '{kid.path}:{name}': minimum required = {snode.min}, but only found {c}")
            if snode.max is not None and c > snode.max:
                run.add("error", "structure", where.rsplit(".", 1)[0],
                        f"{kid.path}:{name}: max allowed = {snode.max}, but found {c} (from {kid.profile_url})")
        if kid.slicing.ordered and order != sorted(order):
            run.add("error", "structure", where, f"The slices of {kid.path} are out of order (slicing is ordered)")
        return chosen

    def _context_free_slicing(self, kid: Node) -> bool:
        """Whether the slice an item falls in depends on the item alone (no profile or resolve() discriminator)."""
        key = (id(kid), "context-free")
        hit = self._node_memo.get(key, _MISSING)  # type: ignore[arg-type]
        if hit is _MISSING:
            assert kid.slicing is not None
            hit = all(dtype in ("value", "pattern", "exists", "type") and "resolve(" not in dpath
                      for dtype, dpath in kid.slicing.discriminators)
            self._node_memo[key] = hit  # type: ignore[assignment]
        return bool(hit)

    def _matches(self, value: Any, typ: str, snode: Node, kid: Node, run: _Run) -> bool:
        assert kid.slicing is not None
        if not kid.slicing.discriminators:
            return False
        for dtype, dpath in kid.slicing.discriminators:
            target = self._node_at(snode, dpath)
            found = values_at(value, dpath, run.resolve)
            if dtype in ("value", "pattern"):
                expected_fixed = target.fixed if target is not None else None
                expected_pattern = target.pattern if target is not None else None
                if expected_fixed is None and expected_pattern is None and dpath == "url":
                    prof = next((p for t in snode.types for p in t.profiles), None)
                    expected_fixed = prof
                if expected_fixed is None and expected_pattern is None:
                    continue  # the slice does not constrain this discriminator: anything matches it
                if not any((expected_fixed is not None and equal_fixed(v, expected_fixed)) or
                           (expected_pattern is not None and contains_pattern(v, expected_pattern)) for v in found):
                    return False
            elif dtype == "type":
                if dpath.endswith("resolve()"):  # the type of what the reference points at
                    wanted = {(self._type_of(u) or "").lower() for t in (target.types if target else snode.types)
                              for u in t.targets}
                else:
                    wanted = {t.code.lower() for t in (target.types if target else snode.types)}
                typed = typed_values_at(value, dpath, run.resolve, typ)
                actual = {(t or (target.types[0].code if target and len(target.types) == 1 else "")).lower()
                          for _, t in typed}
                if not typed or not actual & wanted:
                    return False
            elif dtype == "exists":
                required = target is not None and target.min > 0
                if bool(found) != required:
                    return False
            elif dtype == "profile":
                node_types = target.types if target is not None else snode.types
                urls = [u for t in node_types for u in (t.targets or t.profiles)]
                if not urls or not any(self._conforms(v, u, run) for v in found for u in urls):
                    return False
            else:
                return False
        return True

    def _slice_index(self, kid: Node) -> _SliceIndex | None:
        """Slices keyed by the codes or values their first discriminator fixes, so an item is only tried
        against the slices it could match (30 component slices × 8 components otherwise)."""
        key = id(kid)
        if key not in self._indexes:
            self._indexes[key] = None
            assert kid.slicing is not None
            dtype, dpath = kid.slicing.discriminators[0] if kid.slicing.discriminators else ("", "")
            if dtype in ("value", "pattern") and "(" not in dpath:
                idx = _SliceIndex(dpath)
                for k, snode in enumerate(kid.slices.values()):
                    target = self._node_at(snode, dpath)
                    expected = None if target is None else (target.fixed if target.fixed is not None
                                                            else target.pattern)
                    idx.add(k, _keys(expected))
                self._indexes[key] = idx
        return self._indexes[key]

    def _node_at(self, snode: Node, dpath: str) -> Node | None:
        memo = self._node_memo.get((id(snode), dpath), _MISSING)
        if memo is not _MISSING:
            return memo  # type: ignore[return-value]
        found = self._node_at_uncached(snode, dpath)
        self._node_memo[(id(snode), dpath)] = found
        return found

    def _node_at_uncached(self, snode: Node, dpath: str) -> Node | None:
        node: Node | None = snode
        for step in [s for s in split_path(dpath) if s not in ("$this", "")]:
            if node is None:
                return None
            if step.startswith(("resolve(", "ofType(", "as(")):
                continue
            if step.startswith("extension("):
                url = step[len("extension("):-1].strip("'\"")
                ext = node.children.get("extension")
                hits = [(name, s) for name, s in (ext.slices.items() if ext else [])
                        if any(url in t.profiles for t in s.types)]
                hits.sort(key=lambda h: "/" not in h[0])  # a re-slice says more than the slice it refines
                node = hits[0][1] if hits else None
                continue
            nxt = node.children.get(step) or node.children.get(step + "[x]")
            if nxt is None and not node.children and node.types:
                nxt = self._children(node, node.types[0].code).get(step)
            if nxt is not None and nxt.slicing is not None and nxt.slices and nxt.fixed is None \
                    and nxt.pattern is None:
                # A step onto an element the slice slices again (bp's component:SystolicBP.code.coding, sliced into
                # SBPCode) reads the discriminator's value from its first slice, where the profile fixes it; the
                # element itself fixes nothing, and every item would match the first component slice. The HL7
                # validator's FHIRPath walk over the definition likewise skips the slicing entry for the slice.
                nxt = next(iter(nxt.slices.values()))
            node = nxt
        return node

    def _conforms(self, value: Any, url: str, run: _Run, strict: bool = False) -> bool:
        """Whether `value` (a resource) meets the profile `url`. `strict` (FHIRPath conformsTo(), which the HL7
        validator answers by validating) also checks a resource against its own core definition."""
        if not isinstance(value, dict):
            return False
        key = (id(value), url + "|strict" if strict else url)
        if key in run.conforms:
            return run.conforms[key]
        meta = value.get("meta")
        claimed = content.items(meta.get("profile")) if isinstance(meta, dict) else []
        if any(isinstance(c, str) and same_canonical(url, c) for c in claimed) or (
                not strict and self.defs.is_base(url) and value.get("resourceType") == self._type_of(url)):
            run.conforms[key] = True
            return True
        root = self.node(url)
        if root is None or root.path != value.get("resourceType"):
            run.conforms[key] = False
            return False
        code = root.children.get("code")
        if code is not None and code.pattern is not None and not contains_pattern(value.get("code"), code.pattern):
            run.conforms[key] = False  # the profile fixes another code: no need to walk the whole resource
            return False
        run.conforms[key] = True  # provisional, guards against cycles
        sub = _Run(run.root, index=run.index, conforms=run.conforms, resource=value, full_urls=run.full_urls,
                   type_ids=run.type_ids, depth=run.depth)
        self._object(value, root, root.children, root.path, root.path, sub, is_resource=True)
        ok = not any(i.severity in ("error", "fatal") for i in sub.issues)
        run.conforms[key] = ok
        return ok

    # ---- terminology ----
    def _binding(self, value: Any, typ: str, node: Node, path: str, run: _Run) -> None:
        assert node.binding is not None
        strength, vs = node.binding
        if strength not in ("required", "extensible", "preferred") or not vs:
            return
        if typ in ("code", "string", "uri"):
            codings = [(None, value)] if isinstance(value, str) else []
        elif not isinstance(value, dict):
            return  # a Coding, CodeableConcept or Quantity that is not an object: reported as such
        elif typ == "Coding":
            codings = [(value.get("system"), value.get("code"))] if value.get("code") else []
        elif typ == "Quantity":
            if strength != "required" or not value.get("code"):
                return
            codings = [(value.get("system"), value.get("code"))]
        else:
            codings = [(c.get("system"), c.get("code")) for c in content.objects(value.get("coding")) if c.get("code")]
            if not codings:
                if strength == "required" and not value.get("text"):
                    run.add("error", "code-invalid", path, f"No code provided, and a code is required from the "
                            f"value set {vs}")
                return
        answers = [self.tx.contains(vs, s, c) for s, c in codings]
        if any(a.in_set for a in answers):
            return
        unknown = [a for a in answers if a.in_set is None]
        if unknown:
            run.add("information", "informational", path, f"Not checked against {vs}: {unknown[0].reason}",
                    "binding-not-checked")
            return
        if strength == "extensible" and not self.extensible_binding_warnings:
            return
        shown = ", ".join(f"{s}#{c}" if s else str(c) for s, c in codings)
        sev = "error" if strength == "required" else "warning"
        if strength == "required" and typ in ("code", "string", "uri"):
            # A bare code carries no system: the HL7 validator infers it from the value set's codes and, when the
            # code is in none of them, reports that failure (UNABLE_TO_INFER_CODESYSTEM) beside the binding error.
            run.add("error", "not-found", path, f"The System URI could not be determined for the code '{value}' in "
                    f"the ValueSet '{vs}'")
        if typ == "CodeableConcept":
            msg = f"None of the codings provided ({shown}) are in the value set {vs}"
        else:
            msg = f"The value provided ({shown}) is not in the value set {vs}"
        run.add(sev, "code-invalid", path, msg + f" (binding strength {strength})")

    def _codes_exist(self, value: dict[str, Any], typ: str, path: str, run: _Run, node: Node | None = None) -> None:
        codings = [value] if typ == "Coding" else content.items(value.get("coding"))
        for i, c in enumerate(codings):
            if not isinstance(c, dict):
                continue
            system, code = c.get("system"), c.get("code")
            if not isinstance(system, str) or not system or not isinstance(code, str) or not code:
                continue  # a wrongly typed system or code is reported as such by the primitive checks
            codes = self.tx.system_codes(system)
            if codes is not None and "__fragment__" not in codes and code not in codes:
                where = path if typ == "Coding" else f"{path}.coding[{i}]"
                run.add("error", "code-invalid", where, f"Unknown code '{code}' in the CodeSystem '{system}'")
            elif codes is not None and code in codes and "display" in c and not (
                    typ == "Coding" and node is not None and node.path.endswith(".coding")):  # CodeableConcept's
                problem = display_problem(system, code, c["display"], codes[code],
                                          self._bound_displays(node).get((system, code), []),
                                          _language(run))
                if problem:
                    where = path if typ == "Coding" else f"{path}.coding[{i}]"
                    run.add(problem[0], "invalid", f"{where}.display", problem[1])

    def _bound_displays(self, node: Node | None) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
        """Displays the ValueSet bound to `node` gives its codes (cached per element)."""
        if node is None or not node.binding or not node.binding[1]:
            return {}
        key = (id(node), "displays")
        hit = self._node_memo.get(key, _MISSING)  # type: ignore[arg-type]
        if hit is _MISSING:
            hit = value_set_displays(binding_value_set(self.defs, node.binding[1], node.profile_url))
            self._node_memo[key] = hit  # type: ignore[index]
        return hit  # type: ignore[return-value]

    # ---- references ----
    def _reference(self, value: dict[str, Any], node: Node, path: str, run: _Run) -> None:
        ref = value.get("reference")
        if not isinstance(ref, str):
            return
        target = run.resolve(ref)
        rtype: str | None = None
        rel = _REF_RELATIVE.match(ref)
        entries = run.versions.get(f"{rel.group(1)}/{rel.group(2)}", []) if rel else []
        # several versions of one resource (same fullUrl): only a versioned reference can pick one
        same = [e["resource"] for e in entries] if len({str(e.get("fullUrl")) for e in entries}) == 1 else []
        if rel and len(same) > 1:
            version = (rel.group(3) or "").removeprefix("/_history/")
            hits = [r for r in same if version and isinstance(r.get("meta"), dict)
                    and r["meta"].get("versionId") == version]
            if not version:
                run.add("error", "invalid", path, f"Found {len(same)} matches for '{ref}' in the Bundle")
                return
            if not hits:  # the HL7 validator warns here (an unresolved reference is not an error by itself)
                run.add("warning", "required", path, f"The bundle contains no match for '{ref}' by the rules of "
                        f"Bundle reference resolution, but it has {len(same)} resources that match it by resource "
                        "type and id (none with that version)")
                return
            target = hits[0]
        if target is not None:
            rtype = target.get("resourceType")
            if rel and rel.group(1) != rtype:
                run.add("error", "structure", path, f"Matching reference for reference {ref} has resourceType {rtype}")
                return
        elif ref == "#":
            return  # from a contained resource to its container
        elif ref.startswith("#"):
            run.add("error", "structure", path, f"The contained resource {ref} was not found")
            return
        elif ref.startswith(("urn:uuid:", "urn:oid:")):
            if run.root.get("resourceType") == "Bundle":
                if run.bundle is run.root and run.root.get("type") in ("transaction", "batch"):
                    # a server resolves urn: references only against the fullUrls of the entries it is given
                    # (R4 http.html#trules): one no entry carries can never be resolved. (A Bundle nested in an
                    # entry is not indexed for resolution: its references keep the warning.)
                    run.add("error", "not-found", path, f"Unable to resolve the reference {ref}: no entry of this "
                            f"{run.root['type']} has it as its fullUrl, so no server can resolve it")
                else:  # another kind of Bundle may stand for content kept elsewhere (the HL7 validator warns)
                    run.add("warning", "not-found", path, f"Unable to resolve the reference {ref} in the Bundle")
            return
        else:
            m = rel or _REF_ABSOLUTE.match(ref)
            if m is None:
                if not references_module.ABSOLUTE_URL.match(ref):
                    run.add("warning", "invalid", path, f"Invalid reference format {ref!r}")
                return
            rtype = m.group(1) if rel else m.group(2)
            if self.defs.type_definition(rtype) is None:
                run.add("warning", "invalid", path, f"The reference {ref!r} names an unknown resource type")
                return
            for i, full, url in references_module.near_misses(run, ref):
                run.add("warning", "required", path, f"Entry {i} matches the reference {ref} by type and id but its "
                        f"fullUrl {full} does not match the full target URL {url} by Bundle resolution rules")
        refs = [t for t in node.types if t.code == "Reference"]
        modes = {m for t in refs for m in t.aggregation}
        if modes:
            problem = references_module.aggregation_problem(modes, ref, target, run)
            if problem:
                run.add("error", problem[0], path, problem[1])
                return
        policy = self.references
        if target is None and policy.fetch is not None and not ref.startswith("#"):
            target = policy.fetch(ref)  # found outside the instance (a server, a store): not for aggregation
        if target is None and not ref.startswith("#") and policy.check_exists and not (
                self.examples and _EXAMPLE_DOMAIN.match(ref)):
            run.add("error", "structure", path, f"Unable to resolve resource with reference '{ref}'")
            return
        targets = [u for t in refs for u in t.targets]
        # the type an unresolved URL implies is trusted only when asked to (assumeValidRestReferences)
        if not targets or not isinstance(rtype, str) or (target is None and not policy.assume_valid_rest):
            return
        for u in references_module.unknown_profiles(self, targets):
            run.add("error", "structure", path, f"Unable to resolve the profile reference '{u}'")
        allowed = {self._type_of(u) for u in targets}
        if not ("Resource" in allowed or rtype in allowed):
            run.add("error", "structure", path, f"Invalid Resource target type. Found {rtype}, but expected one of "
                    f"({', '.join(sorted(a for a in allowed if a))})")
            return
        # a resolved target must also conform to one of the (non-core) target profiles of its type
        of_type = [u for u in targets if self._type_of(u) == rtype]
        profiled = [u for u in of_type if not self.defs.is_base(u)]
        if target is not None and profiled and len(profiled) == len(of_type) and not any(
                self._conforms(target, u, run) for u in profiled):
            run.add("error", "structure", path, f"Unable to find a profile match for {ref} among choices: "
                    f"{', '.join(profiled)}")

    def _type_of(self, profile_url: str) -> str | None:
        return self.defs.type_of(profile_url)

    # ---- invariants ----
    def _scope(self, run: _Run) -> fhirpath.Scope:
        return fhirpath.Scope(run.resolve, lambda url, s, c: self.tx.contains(url, s, c).in_set,
                              lambda res, url: self._conforms(res, url, run, strict=True))

    def _constraints(self, value: Any, node: Node, typ: str, path: str, run: _Run) -> None:
        if not node.constraints:
            return
        scope = self._scope(run)
        base = node.path
        res = run.resource or run.root
        for c in node.constraints:
            try:  # native, compiled or the FHIRPath engine (profiles/invariants.py)
                ok = invariants.verdict(c.expression, base, value, res, run.container or res, scope)
            except patterns.PatternTimeout:
                run.add("warning", "too-costly", path, f"Constraint not checked: {c.key}: its regular "
                        "expression (one RE2 cannot run) exceeded its time budget", c.key)
                continue
            if ok is False:
                sev = "error" if c.severity == "error" else "warning"
                run.add(sev, "invariant", path, f"Constraint failed: {c.key}: '{c.human}'", c.key)


_MISSING = object()
_SCALAR = (str, int, float, bool, type(None))
# Elements nested deeper than this are reported, not walked: a handful of Python frames per level, so the walk stays
# far inside the interpreter's recursion limit (1000) whoever calls it; real content nests a few dozen levels at most.
MAX_DEPTH = 100
# Datatypes whose verdict depends only on their own content and the element they fill (no references, no
# resolve(), no %resource in their invariants).
_CONTEXT_FREE = {"Coding", "CodeableConcept", "Quantity", "Range", "Period", "HumanName", "Address", "ContactPoint",
                 "Ratio"}
_NO_CHILDREN: dict[str, Node] = {}  # one shared empty set: caches key children sets by id()


_DAYS = {"a": 365.25, "mo": 30.4375, "wk": 7.0, "d": 1.0}


def _date_offset(duration: dict[str, Any], sign: int) -> str | None:
    """Today plus (sign=1) or minus (sign=-1) a Duration in a, mo, wk or d, as YYYY-MM-DD."""
    import datetime

    days = _DAYS.get(str(duration.get("code")))
    v = duration.get("value")
    if days is None or not isinstance(v, int | float):
        return None
    return (datetime.date.today() + datetime.timedelta(days=sign * v * days)).isoformat()


def _language(run: _Run) -> str | None:
    """The resource's language, when it is a string (anything else is reported by the type checks)."""
    lang = (run.resource or run.root).get("language")
    return lang if isinstance(lang, str) else None


def _keys(value: Any) -> set[Any] | None:
    """Index keys of a fixed/pattern value: (system, code) for codings, the value for primitives; None when
    the value cannot be indexed (the slice then stays a candidate for every item)."""
    if value is None:
        return None
    if isinstance(value, dict):
        codings = content.objects(value.get("coding")) if "coding" in value else [value] if "code" in value else []
        if not codings:
            return None
        # instance content may put objects where system and code belong: such a coding matches no slice key
        return {(s, c) for s, c in ((c.get("system"), c.get("code")) for c in codings)
                if isinstance(s, _SCALAR) and isinstance(c, _SCALAR)}
    if isinstance(value, list):
        return None
    return {value}


class _SliceIndex:
    def __init__(self, path: str) -> None:
        self.path = path
        self.by_key: dict[Any, list[int]] = {}
        self.always: list[int] = []

    def add(self, slice_no: int, keys: set[Any] | None) -> None:
        if keys is None:
            self.always.append(slice_no)
        for k in keys or ():
            self.by_key.setdefault(k, []).append(slice_no)

    def candidates(self, value: Any, resolve: Any) -> list[int]:
        found = set(self.always)
        for v in values_at(value, self.path, resolve):
            for k in _keys(v) or ():
                found.update(self.by_key.get(k, ()))
                if isinstance(k, tuple):  # a coding with extra elements still carries system and code
                    found.update(self.by_key.get((k[0], k[1]), ()))
        return sorted(found)


def _content_key(value: Any) -> bytes | None:
    """A JSON object's content as memo key bytes; None for other values and for what orjson cannot write (integers
    beyond 64 bits, which the XML reader and Python's json module can produce)."""
    if not isinstance(value, dict):
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None


def _dedupe(issues: Iterable[Issue]) -> list[Issue]:
    seen: set[tuple[str, str, str | None, str]] = set()
    out = []
    for i in issues:
        key = (i.severity, i.code, i.expression, i.message)
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


__all__ = ["TypeRef", "Validator"]
