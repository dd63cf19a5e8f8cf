"""Reading facts back out of converted Bundles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).parent / "samples"
DOCUMENTS = sorted(p for p in SAMPLES.glob("*.xml"))


def resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def one(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    found = resources(bundle, rtype)
    assert len(found) == 1, f"{len(found)} {rtype}"
    return found[0]


def by_url(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def clinical(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything but the Provenance (which records the conversion, not the facts)."""
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] != "Provenance"]


def ext(res: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in res.get("extension", []) if e["url"] == url), None)


def observation(bundle: dict[str, Any], code: str) -> dict[str, Any]:
    return next(o for o in resources(bundle, "Observation") if any(c["code"] == code for c in o["code"]["coding"]))


def details(issues: Any) -> list[str]:
    return [i.details for i in issues]


def resolve(root: Any, xpath: str) -> list[Any]:
    """The elements an origin XPath (local names, optional [n]) names in a parsed document."""
    steps = []
    for step in xpath.strip("/").split("/"):
        name, _, index = step.partition("[")
        steps.append(f"*[local-name()='{name}']" + (f"[{index}" if index else ""))
    return root.xpath("/" + "/".join(steps))
