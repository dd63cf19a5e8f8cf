"""Document Bundles (R4 bundle.html#document): the Composition's links resolve inside the Bundle and every entry
is reachable from the Composition, as the HL7 validator checks them."""

from __future__ import annotations

from typing import Any

from profiles.references import document_problems
from profiles.rules import rule


@rule("Bundle")
def document_links(validator: Any, bundle: dict[str, Any], path: str, run: Any) -> None:
    if bundle.get("type") != "document":
        return
    for severity, code, where, message in document_problems(bundle, path):
        run.add(severity, code, where, message)
