"""HL7 Europe Laboratory Report 2.0.0 documents as a helixgate writer format (mappers.toolkit.registry): a lab
result Bundle from any reader composed into an EU Lab document (mappers.eu_lab.compose).

The package `hl7.fhir.eu.laboratory#2.0.0` is not published on npm: users install it from a FHIR package registry
(`helixgate packages install hl7.fhir.eu.laboratory#2.0.0 --registry URL`) or from its tarball
(`helixgate packages install FILE.tgz`). When it is installed (with its dependencies) the edge validator checks the
written document against it (profiles.context.default_validator); when it is not, the conversion report says so, and
the must-have elements of its profiles are checked as code (mappers.eu_lab.must_have) either way.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from mappers.eu_lab import must_have
from mappers.eu_lab.compose import PACKAGE, VERSION, compose
from mappers.exceptions import Issue
from mappers.ips.format import checked, fhir_of
from mappers.toolkit.registry import ConvertOptions, Format, Rendered


def _from_fhir(bundle: dict[str, Any], opts: ConvertOptions) -> Rendered:
    doc, issues = checked(compose, bundle, opts)
    return Rendered(orjson.dumps(doc), tuple(issues))


@cache
def package_usable() -> bool:
    """Whether the EU Lab package and its dependencies are in the package cache, so the validator uses it."""
    from profiles.context import usable_optional

    return PACKAGE in usable_optional()


def check_output(data: bytes) -> list[Issue]:
    issues = must_have.check(fhir_of(data))
    if not package_usable():
        issues.append(Issue("warning", "not-found", "eu-lab-package-missing",
                            f"the document was not validated against HL7 Europe Laboratory Report 2.0.0: {PACKAGE} "
                            "(and its dependencies) is not installed; its must-have elements were checked as code. "
                            f"It is not on npm: install it from a FHIR package registry (helixgate packages install "
                            f"{PACKAGE} --registry URL) or from its tarball (helixgate packages install FILE.tgz)",
                            "Bundle.meta.profile"))
    return issues


FORMAT = Format(
    name="eu-lab",
    title="HL7 Europe Laboratory Report 2.0.0 document (written from FHIR; EU Lab input is read as fhir)",
    version=VERSION,
    media_type="application/fhir+json; charset=utf-8",
    media_types=(),  # EU Lab documents are FHIR JSON: the hub reads them
    sniff=lambda data: False,
    from_fhir=_from_fhir,
    check_output=check_output,
    fhir_of=fhir_of,
)
