"""Extensions: the definition an extension is checked against (its slice's profile, else the StructureDefinition its
url names), where it may be used (StructureDefinition.context and contextInvariant), the url rules (absolute, no
version, a complex extension's own sub-extension names), and the `_name` holders of primitives' extensions."""

from __future__ import annotations

from typing import Any

from profiles import content, fhirpath, narrative_links, patterns
from profiles.definitions import CORE_PREFIX
from profiles.elements import Node

Item = tuple[str, Any, Any, str]  # (JSON key, value, its `_key` holder, type)
EXAMPLE_URL = patterns.compile(r"^https?://(www\.)?example\.(org|com|net)/")
_CONTEXT_TAIL = patterns.compile(r"\.(where|ofType|exists|first)\(.*$")
_CONTEXT_PATH = patterns.compile(r"[A-Za-z][\w.]*")
_CANONICAL = {
    "ActivityDefinition", "CapabilityStatement", "ChargeItemDefinition", "CodeSystem", "CompartmentDefinition",
    "ConceptMap", "EffectEvidenceSynthesis", "EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario",
    "GraphDefinition", "ImplementationGuide", "Library", "Measure", "MessageDefinition", "NamingSystem",
    "OperationDefinition", "PlanDefinition", "Questionnaire", "ResearchDefinition", "ResearchElementDefinition",
    "RiskEvidenceSynthesis", "SearchParameter", "StructureDefinition", "StructureMap", "TerminologyCapabilities",
    "TestScript", "ValueSet",
}


def definition(v: Any, value: dict[str, Any], node: Node, path: str, run: Any) -> Node:
    """The definition an extension is checked against: its slice's profile, else the one its url names."""
    if any(t.profiles for t in node.types) or (node.children.get("url") and node.children["url"].fixed):
        return node
    url = value.get("url")
    if not isinstance(url, str) or ":" not in url:
        return node  # a complex extension's sub-extension, named relative to it
    root = v.node(url)
    if root is None:
        if v.examples and EXAMPLE_URL.match(url):  # example extensions are accepted unchecked (Java too)
            run.add("information", "informational", path, f"The extension {url} is an example and not checked",
                    "unknown-extension")
        else:
            run.add("error", "structure", path, f"The extension {url} could not be found so is not allowed "
                    "here", "unknown-extension")
        return node
    return root


def contexts(v: Any, items: list[Item], owner: Node, typ: str, path: str, run: Any, owner_value: Any = None) -> None:
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
        if isinstance(url, str) and "|" in url and (versioned := v.defs.structure(url)) is not None:
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
        sd = v.defs.structure(url) if isinstance(url, str) else None
        allowed_in = (sd or {}).get("context") or []
        if not allowed_in:
            continue
        if not any(context_allows(v, ctx, owner, typ, owner_value, run) for ctx in allowed_in):
            allowed = ", ".join(f"{c.get('type', '')[:1]}:{c.get('expression', '')}" for c in allowed_in)
            run.add("error", "business-rule", where, f"The extension {url} is not allowed to be used at this "
                    f"point (this element is [{owner.path}, {typ}]; allowed = {allowed})")
            continue
        res = run.resource or run.root
        failed = next((inv for inv in (sd or {}).get("contextInvariant") or []
                       if fhirpath.select(inv, res) == [False]), None)  # a path from the resource type
        if failed:
            run.add("error", "business-rule", where, f"The extension {url} is not allowed to be used at this "
                    f"point (based on context invariant '{failed}')")


def context_allows(v: Any, ctx: dict[str, Any], owner: Node, typ: str, owner_value: Any = None,
                   run: Any = None) -> bool:
    kind, expr = ctx.get("type"), ctx.get("expression", "")
    if expr == "Element":
        return True
    if kind == "extension":  # on that extension, or on its value
        if not (typ == "Extension" or owner.path.startswith("Extension.")):
            return False
        sd = v.defs.structure(owner.profile_url)  # the enclosing extension, when its definition is known
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
    if expr in (owner.path, typ) or type_is_a(v, typ, expr):
        return True
    if owner.content_ref and owner.content_ref.partition("#")[2] == expr:  # Questionnaire.item.item is an item
        return True
    head, _, rest = expr.partition(".")
    if rest:
        root, _, tail = owner.path.partition(".")
        if tail == rest and type_is_a(v, root, head):  # DomainResource.text allows Patient.text
            return True
        datatype = v.defs.type_definition(head)  # Address.line allows Patient.address.line
        return bool(datatype) and datatype.get("kind") == "complex-type" and owner.path.endswith("." + rest)
    return False


def type_is_a(v: Any, typ: str, ancestor: str) -> bool:
    """Whether datatype/resource `typ` specialises `ancestor` (e.g. Patient is a DomainResource)."""
    if ancestor in ("CanonicalResource", "MetadataResource"):  # R5 interfaces used by R4-era extensions
        return typ in _CANONICAL
    seen = 0
    while typ and seen < 10:
        if typ == ancestor:
            return True
        sd = v.defs.type_definition(typ)
        base = (sd or {}).get("baseDefinition", "")
        typ = base.rsplit("/", 1)[-1] if base.startswith(CORE_PREFIX) else ""
        seen += 1
    return False


def primitive_holder(v: Any, ext: Any, no_value: bool, node: Node, typ: str, path: str, run: Any) -> None:
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
    element = v.type_node("Element")
    items = [("extension", e, None, "Extension") for e in content.items(ext.get("extension"))]
    ext_node = v.type_node("Extension")
    for i, (_, e, _, _) in enumerate(items):
        if ext_node is not None:
            v.check_value(e, None, "Extension", element.children.get("extension", ext_node) if element else ext_node,
                          f"{path}.extension[{i}]", run)
    if items:
        contexts(v, items, node, typ, path, run)
