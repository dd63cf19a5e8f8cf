"""Extensions that point into a narrative (narrativeLink, originalText as a url): inside a Bundle, `fullUrl#id`
must name exactly one element of the narrative of the entry with that fullUrl. The HL7 validator checks these
links when it follows the links between a Bundle's entries (BundleValidator: "Can't find ... in the bundle",
"Found N matches for fragment ...")."""

from __future__ import annotations

from typing import Any

from profiles import patterns
from profiles.references import json_objects

URLS = frozenset({"http://hl7.org/fhir/StructureDefinition/narrativeLink",
                  "http://hl7.org/fhir/StructureDefinition/originalText"})
_ID_ATTR = patterns.compile(r"""\sid\s*=\s*["']([^"']*)["']""")  # an id attribute and its value


def check(extension: dict[str, Any], path: str, run: Any) -> None:
    """Report a narrative link of `extension` (at `path`) that names no element, or several, in its target."""
    if not isinstance(run.root, dict) or run.root.get("resourceType") != "Bundle":
        return
    link = next((v for k, v in extension.items() if k.startswith("value") and isinstance(v, str)), None)
    if link is None or "#" not in link or link.startswith("#"):
        return
    base, _, fragment = link.partition("#")
    target = run.resolve(base)
    if not isinstance(target, dict) or not fragment:
        return  # an unresolvable target is the reference checks' business
    hits = sum(_ID_ATTR.findall(div).count(fragment) for div in _divs(target))
    if hits == 0:
        run.add("error", "not-found", "Bundle", f"Can't find '{base}' in the bundle ({fragment})")
    elif hits > 1:
        run.add("error", "invalid", "Bundle", f"Found {hits} matches for fragment {fragment} in resource '{base}' "
                f"in the bundle ({path}.value[x])")


def _divs(resource: Any) -> list[str]:
    """The XHTML of every narrative in a resource (its text and, for a Composition, its sections')."""
    return [div for o in json_objects(resource) if isinstance(div := o.get("div"), str)]
