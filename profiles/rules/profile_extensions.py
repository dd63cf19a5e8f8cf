"""Rules that profiles state through extensions on their ElementDefinitions rather than through R4 elements:

- mustHaveValue / valueAlternatives (R5 ElementDefinition elements, carried in R4 by the cross-version
  extensions): a primitive must have a value, or, when it has none, one of the listed extensions;
- additional bindings (R5 ElementDefinition.binding.additional): a further value set the codes must (purpose
  required) or should (extensible) come from;
- narrative-source-control: every piece of the narrative must say where it came from (class boilerplate,
  generated, original, ...);
- narrative-language-control: the narrative must (_yes) or must not (_no) be divided into language sections
  (divs with lang / xml:lang), or must have one for Resource.language (_resource).

They apply to the profiles the resource was checked against (`run.applied`); the profiles are scanned once,
and a resource whose profiles carry none of these extensions costs a dict lookup.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from profiles.rules import rule
from profiles.snapshot import generate

_X5 = "http://hl7.org/fhir/5.0/StructureDefinition/extension-ElementDefinition."
MUST_HAVE_VALUE = (_X5 + "mustHaveValue", "http://hl7.org/fhir/tools/StructureDefinition/elementdefinition-mustHaveValue")
VALUE_ALTERNATIVES = (_X5 + "valueAlternatives",
                      "http://hl7.org/fhir/tools/StructureDefinition/elementdefinition-valueAlternatives")
ADDITIONAL_BINDING = (_X5 + "binding.additional", "http://hl7.org/fhir/tools/StructureDefinition/additional-binding")
SOURCE_CONTROL = "http://hl7.org/fhir/StructureDefinition/narrative-source-control"
LANGUAGE_CONTROL = "http://hl7.org/fhir/StructureDefinition/narrative-language-control"
_SOURCE_CLASSES = {"boilerplate", "generated", "original", "extensions", "additional"}
_XHTML = "{http://www.w3.org/1999/xhtml}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class _Control:
    """What one profile element asks beyond its R4 definition."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.must_have_value = False
        self.alternatives: list[str] = []
        self.bindings: list[tuple[str, str]] = []  # (purpose, value set)
        self.source_control: str | None = None
        self.language_control: str | None = None


# Definitions → profile url → its elements with controls (the rule runs for every resource: scan each profile once)
_controls: weakref.WeakKeyDictionary[Any, dict[str, list[_Control]]] = weakref.WeakKeyDictionary()


def controls(defs: Any, url: str) -> list[_Control]:
    """The elements of profile `url` carrying these extensions (computed once per Definitions and profile)."""
    table = _controls.get(defs)
    if table is None:
        table = _controls[defs] = {}
    hit = table.get(url)
    if hit is None:
        hit = table[url] = _scan(defs, url)
    return hit


def _scan(defs: Any, url: str) -> list[_Control]:
    sd = defs.structure(url)
    if sd is None or sd.get("derivation") != "constraint":
        return []
    try:
        elements = generate(sd, defs).get("snapshot", {}).get("element") or []
    except ValueError:  # no snapshot: the differential still says what this profile adds
        elements = (sd.get("differential") or {}).get("element") or []
    out = []
    for el in elements:
        if ":" in str(el.get("id", "")):
            continue  # slices: which items they apply to is the slicing's business
        c = _Control(el.get("path", ""))
        for ext in el.get("extension") or []:
            eu = ext.get("url")
            if eu in MUST_HAVE_VALUE:
                c.must_have_value = ext.get("valueBoolean") is True
            elif eu in VALUE_ALTERNATIVES and ext.get("valueCanonical"):
                c.alternatives.append(ext["valueCanonical"])
            elif eu == SOURCE_CONTROL:
                c.source_control = ext.get("valueCode") or "error"
            elif eu == LANGUAGE_CONTROL:
                c.language_control = ext.get("valueCode")
        for ext in (el.get("binding") or {}).get("extension") or []:
            if ext.get("url") not in ADDITIONAL_BINDING:
                continue
            parts = {p.get("url"): p for p in ext.get("extension") or []}
            if "usage" in parts:
                continue  # applies only in usage contexts this check cannot judge
            purpose = (parts.get("purpose") or {}).get("valueCode")
            vs = (parts.get("valueSet") or {}).get("valueCanonical")
            if purpose and vs:
                c.bindings.append((purpose, vs))
        if c.must_have_value or c.alternatives or c.bindings or c.source_control or c.language_control:
            out.append(c)
    return out


def instances(resource: dict[str, Any], element_path: str, location: str) -> Iterator[tuple[str, Any, Any]]:
    """(FHIRPath location, value, primitive extension holder `_name`) of each occurrence of the element at
    `element_path` (an ElementDefinition.path) in `resource`, which is at `location` in the instance."""
    steps = element_path.split(".")[1:]
    current: list[tuple[str, Any, Any]] = [(location, resource, None)]
    for step in steps:
        nxt = []
        for where, value, _ in current:
            if not isinstance(value, dict):
                continue
            keys = [step] if not step.endswith("[x]") else [k for k in value if k.startswith(step[:-3])
                                                             and k[len(step) - 3:][:1].isupper()]
            for key in keys:
                v, shadow = value.get(key), value.get("_" + key)
                if v is None and shadow is None:
                    continue
                name = step[:-3] if step.endswith("[x]") else key
                if isinstance(v, list) or isinstance(shadow, list):
                    vs = v if isinstance(v, list) else []
                    ss = shadow if isinstance(shadow, list) else []
                    for i in range(max(len(vs), len(ss))):
                        nxt.append((f"{where}.{name}[{i}]", vs[i] if i < len(vs) else None,
                                    ss[i] if i < len(ss) else None))
                else:
                    nxt.append((f"{where}.{name}", v, shadow))
        current = nxt
    return iter(current)


@rule("*")
def check_element_controls(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    for url in run.applied:
        for c in controls(validator.defs, url):
            for where, value, shadow in instances(resource, c.path, path):
                _check(validator, c, url, resource, where, value, shadow, run)


def _check(validator: Any, c: _Control, url: str, resource: dict[str, Any], where: str, value: Any, shadow: Any,
           run: Any) -> None:
    if value is None and shadow is not None:  # a primitive with extensions but no value
        if c.must_have_value:
            run.add("error", "invalid", where, f"The element definition ``{c.path}`` in the profile '{url}' "
                    "requires that a value be present in this element")
        elif c.alternatives:
            present = {e.get("url") for e in (shadow.get("extension") or []) if isinstance(e, dict)}
            if not present & set(c.alternatives):
                run.add("error", "invalid", where, f"The element definition ``{c.path}`` in the profile '{url}' "
                        f"requires that if a value is not present, one of the extensions "
                        f"{', '.join(c.alternatives)} must be present")
    if c.bindings and value is not None:
        _additional_bindings(validator, c, value, where, run)
    if (c.source_control or c.language_control) and isinstance(value, dict) and isinstance(value.get("div"), str):
        _narrative(c, url, resource, value["div"], where, run)


def _codings(value: Any) -> list[tuple[str | None, str]]:
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict):
        items = value.get("coding") if "coding" in value else [value]
        return [(i.get("system"), i["code"]) for i in items or [] if isinstance(i, dict) and i.get("code")]
    return []


def _additional_bindings(validator: Any, c: _Control, value: Any, where: str, run: Any) -> None:
    codings = _codings(value)
    if not codings:
        return
    for purpose, vs in c.bindings:
        if purpose not in ("required", "maximum", "extensible"):
            continue  # candidate, current, preferred, ui, starter, component: advice, not a rule
        answers = [validator.tx.contains(vs, s, code).in_set for s, code in codings]
        if any(a is True for a in answers) or any(a is None for a in answers):
            continue  # a match, or a code this validator cannot judge
        shown = ", ".join(f"{s}#{code}" if s else code for s, code in codings)
        vsr = validator.defs.value_set(vs) or {}
        title = vsr.get("title") or vsr.get("name") or vs
        label = f"{vsr.get('url', vs)}|{vsr['version']}" if vsr.get("version") else vs
        if purpose == "extensible":
            run.add("warning", "code-invalid", where, f"None of the codings provided are in the value set '{title}' "
                    f"({label}) specified in an additional binding, and a coding should come from this value set "
                    f"unless it has no suitable code (codes = {shown})")
        else:
            run.add("error", "code-invalid", where, f"None of the codings provided are in the value set '{title}' "
                    f"({label}) specified in an additional binding, and a coding from this value set is required "
                    f"(codes = {shown})")


def _parse(div: str) -> Any:
    from defusedxml import ElementTree

    try:
        return ElementTree.fromstring(div)
    except Exception:  # malformed narrative: the xhtml checks report it
        return None


def _narrative(c: _Control, url: str, resource: dict[str, Any], div: str, where: str, run: Any) -> None:
    root = _parse(div)
    if root is None:
        return
    if c.source_control and c.source_control != "information":
        # The extension's value is the level of the issue, but the HL7 validator reports these as errors.
        for text in _unattributed(root):
            run.add("error", "business-rule", where, f"The xhtml node at '{text}' does not have a class attribute "
                    f"to indicate its source (boilerplate, generated, or original) and this is required by the "
                    f"profile {url}")
    if c.language_control:
        langs = sorted({str(e.get(_XML_LANG) or e.get("lang")) for e in root
                        if e.tag in (_XHTML + "div", "div") and (e.get(_XML_LANG) or e.get("lang"))})
        mode = c.language_control
        if mode == "_no" and langs:
            run.add("error", "business-rule", where, f"The xhtml has some language sections ({', '.join(langs)}), "
                    f"but language sections are prohibited in this context by the profile {url}")
        elif mode == "_yes" and not langs:
            run.add("error", "business-rule", where, "The xhtml has no language sections, but language sections "
                    f"are required in this context by the profile {url}")
        elif mode == "_resource" and isinstance(resource.get("language"), str) and resource["language"] not in langs:
            run.add("error", "business-rule", where, f"The profile {url} requires a section in the narrative for "
                    f"the resource language ({resource['language']}), but it was not found (found "
                    f"{', '.join(langs) or 'none'})")


def _unattributed(root: Any) -> list[str]:
    """Text in the narrative not inside an element whose class names its source."""
    out: list[str] = []

    def walk(el: Any) -> None:
        if _SOURCE_CLASSES & set((el.get("class") or "").split()):
            return
        if el.text and el.text.strip():
            out.append(el.text.strip())
        for kid in el:
            walk(kid)
            if kid.tail and kid.tail.strip():
                out.append(kid.tail.strip())

    walk(root)
    return out
