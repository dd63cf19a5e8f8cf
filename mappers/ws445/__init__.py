"""WS 445 datasets (JSON keyed by WS 363 data-element ids) ⇄ FHIR R4, through the China national Report model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from mappers.cda_cn.context import Notes, Options
from mappers.cda_cn.read_fhir import read_bundle
from mappers.cda_cn.to_fhir import Conversion, report_to_fhir
from mappers.exceptions import Issue, LimitExceeded, operation_outcome
from mappers.ws445.dataset import SCHEMA_PATH, from_report, load, looks_like, schema, to_report

# 0.2.0: no wall-clock times (no Provenance without a stated instant); every data element not mapped is reported.
MAPPER_VERSION = "ws445/0.2.0"


@dataclass(frozen=True, slots=True)
class Dataset:
    doc: dict[str, Any]
    issues: tuple[Issue, ...] = field(default=())

    @property
    def data(self) -> bytes:
        return orjson.dumps(self.doc, option=orjson.OPT_INDENT_2) + b"\n"

    @property
    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def to_fhir(data: bytes | str | dict[str, Any], options: Options | None = None) -> Conversion:
    """Dataset → Bundle (no Composition: a dataset is not a document). Raises ParseError for bad JSON, a dataset over
    the size limit (5 MiB) or one that does not match the schema."""
    options = options or Options()
    if not isinstance(data, dict) and len(data) > options.max_bytes:
        raise LimitExceeded(f"the dataset is {len(data)} bytes; the limit is {options.max_bytes}",
                            details="ws445-too-large")
    notes = Notes()
    report = to_report(load(data), notes)
    return report_to_fhir(report, options, notes, document=False, source="ws445",
                          version=MAPPER_VERSION)


def from_fhir(bundle: bytes | str | dict[str, Any]) -> Dataset:
    """Bundle → dataset. Raises ParseError (not a Bundle) or EmitError (no report, patient name or results)."""
    notes = Notes()
    doc = from_report(read_bundle(bundle, notes), notes)
    return Dataset(doc, tuple(notes.issues))


__all__ = ["SCHEMA_PATH", "Dataset", "from_fhir", "load", "looks_like", "schema", "to_fhir"]
