"""StructureDefinition snapshots compiled into element trees, once per profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRIMITIVES = {
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant", "date",
    "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid", "xhtml", "integer64",
}
FHIRPATH_STRING = "http://hl7.org/fhirpath/System.String"
NATIVE_KEYS = {"ele-1", "ext-1"}  # checked structurally by the validator (empty values; extension value xor children)
# Published invariant expressions that contradict their own human text, read as the HL7 validator reads them
# (its FHIRPathExpressionFixer). que-12: "If there are more than one enableWhen, enableBehavior must be specified".
FIXED_EXPRESSIONS = {
    "enableWhen.count() > 2 implies enableBehavior.exists()": "enableWhen.count() > 1 implies enableBehavior.exists()",
}


def _anchored(expr: str) -> str:
    """`x.matches('re')` → `x.matches('^re$')`: matches() finds the pattern anywhere in the string."""
    head, _, regex = expr.partition(".matches('")
    return f"{head}.matches('^{regex[:-2]}$')"


# eld-19, eld-20 and the canonical-resource name rule (sdf-0, opd-0, ...) give regexes meant for the whole value but
# unanchored, so that any value with one valid character run passed; the HL7 validator anchors them.
_R4_ELD19 = ("path.matches('[^\\\\s\\\\.,:;\\\\\\'\"\\\\/|?!@#$%&*()\\\\[\\\\]{}]{1,64}(\\\\.[^\\\\s\\\\.,:;"
             "\\\\\\'\"\\\\/|?!@#$%&*()\\\\[\\\\]{}]{1,64}(\\\\[x\\\\])?(\\\\:[^\\\\s\\\\.]+)?)*')")
_R4_ELD20 = "path.matches('[A-Za-z][A-Za-z0-9]*(\\\\.[a-z][A-Za-z0-9]*(\\\\[x])?)*')"
_R4_NAME = "name.matches('[A-Z]([A-Za-z0-9_]){0,254}')"
FIXED_EXPRESSIONS.update({_R4_ELD19: _anchored(_R4_ELD19), _R4_ELD20: _anchored(_R4_ELD20),
                          _R4_NAME: "name.exists() implies " + _anchored(_R4_NAME)})
# R4 gives txt-1 and txt-2 the same expression (htmlChecks()); txt-2 is the "some non-whitespace content" half
FIXED_BY_KEY = {("txt-2", "htmlChecks()"): "htmlChecks2()"}


def _expression(key: str, expression: str) -> str:
    return FIXED_BY_KEY.get((key, expression)) or FIXED_EXPRESSIONS.get(expression, expression)


@dataclass(frozen=True, slots=True)
class TypeRef:
    code: str
    profiles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    aggregation: tuple[str, ...] = ()  # Reference: contained | referenced | bundled (none = any)


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str
    source: str


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[tuple[str, str], ...]  # (type, path)
    rules: str  # open | closed | openAtEnd
    ordered: bool


@dataclass(eq=False, slots=True)
class Node:
    """One ElementDefinition; `children` by element name, `slices` by slice name (in definition order)."""

    path: str
    name: str
    min: int = 0
    max: int | None = None  # None = unbounded
    repeats: bool = False  # the base definition allows many: JSON holds an array even when a profile caps it at 1
    types: tuple[TypeRef, ...] = ()
    fixed: Any = None
    pattern: Any = None
    binding: tuple[str, str | None] | None = None  # (strength, valueSet)
    constraints: tuple[Constraint, ...] = ()
    slicing: Slicing | None = None
    slice_name: str | None = None
    content_ref: str | None = None
    max_length: int | None = None
    min_length: int | None = None
    min_value: Any = None
    max_value: Any = None
    children: dict[str, Node] = field(default_factory=dict)
    slices: dict[str, Node] = field(default_factory=dict)
    profile_url: str = ""

    is_choice: bool = False  # value[x]: set from the name at compile time (read on every instance property)
    base_name: str = ""

    def __post_init__(self) -> None:
        self.is_choice = self.name.endswith("[x]")
        self.base_name = self.name[:-3] if self.is_choice else self.name

    def type_codes(self) -> list[str]:
        return [t.code for t in self.types]


def _type_code(t: dict[str, Any]) -> str:
    code = t.get("code", "")
    for ext in t.get("extension", []):  # R4 types Resource.id and friends as System.String + their FHIR type
        if ext.get("url", "").endswith("structuredefinition-fhir-type"):
            return ext.get("valueUrl") or ext.get("valueUri") or code
    if code.startswith("http://hl7.org/fhirpath/System."):
        # The `value` of primitive types: typed as FHIRPath System types in R4 snapshots.
        return "System." + code.rsplit(".", 1)[1]
    return code


def _fixed_or_pattern(el: dict[str, Any], prefix: str) -> Any:
    for key, value in el.items():
        if key.startswith(prefix) and key != prefix:
            return value
    return None


def compile_snapshot(sd: dict[str, Any]) -> Node:
    """Build the element tree of a StructureDefinition's snapshot. Raises ValueError when it has none."""
    elements = (sd.get("snapshot") or {}).get("element")
    if not elements:
        raise ValueError(f"StructureDefinition {sd.get('url')} has no snapshot")
    by_id: dict[str, Node] = {}
    root: Node | None = None
    url = sd.get("url", "")
    for el in elements:
        path = el["path"]
        eid = el.get("id") or (path + (f":{el['sliceName']}" if el.get("sliceName") else ""))
        parts = eid.split(".")  # slice names with dots are not supported
        last = parts[-1]
        name, _, slice_name = last.partition(":")
        max_raw = el.get("max", "*")
        node = Node(
            path=path,
            name=name,
            min=int(el.get("min", 0)),
            max=None if max_raw == "*" else int(max_raw),
            repeats=(el.get("base") or {}).get("max", max_raw) != "1" and path.count(".") > 0,
            types=tuple(TypeRef(_type_code(t), tuple(t.get("profile", [])), tuple(t.get("targetProfile", [])),
                                tuple(t.get("aggregation", [])))
                        for t in el.get("type", [])),
            fixed=_fixed_or_pattern(el, "fixed"),
            pattern=_fixed_or_pattern(el, "pattern"),
            binding=(el["binding"]["strength"], el["binding"].get("valueSet")) if el.get("binding") else None,
            constraints=tuple(Constraint(c["key"], c.get("severity", "error"), c.get("human", ""),
                                         _expression(c["key"], c.get("expression", "")),
                                         c.get("source", url))
                              for c in el.get("constraint", [])
                              if c.get("expression") and c["key"] not in NATIVE_KEYS),
            slicing=Slicing(tuple((d["type"], d["path"]) for d in el["slicing"].get("discriminator", [])),
                            el["slicing"].get("rules", "open"), bool(el["slicing"].get("ordered")))
            if el.get("slicing") else None,
            slice_name=slice_name or None,
            content_ref=el.get("contentReference"),
            max_length=el.get("maxLength"),
            min_length=next((x.get("valueInteger") for x in el.get("extension", [])
                             if x.get("url") == "http://hl7.org/fhir/StructureDefinition/minLength"), None),
            min_value=_fixed_or_pattern(el, "minValue"),
            max_value=_fixed_or_pattern(el, "maxValue"),
            profile_url=url,
        )
        by_id[eid] = node
        if root is None:
            root = node
            continue
        parent = by_id.get(".".join(parts[:-1]))
        if parent is None:
            continue  # malformed ids: skip rather than guess
        if slice_name:
            base = parent.children.get(name)
            if base is None:
                continue
            # re-slices (`a/b`) sit beside their parent slice: matching picks the most specific one
            base.slices[slice_name] = node
        else:
            parent.children[name] = node
    assert root is not None
    return root
