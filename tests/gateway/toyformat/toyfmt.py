"""A format that lives outside helixgate, registered through the `helixgate.formats` entry point: rows of
`code,value,effective` after a `#toy` line. It shows that a format needs nothing but its own package."""

from __future__ import annotations

from typing import Any

from mappers.conversion import Conversion
from mappers.exceptions import ParseError
from mappers.ids import resource_id
from mappers.toolkit.bundle import bundle
from mappers.toolkit.registry import ConvertOptions, Format, Rendered


def to_fhir(data: bytes, opts: ConvertOptions) -> Conversion:
    resources, origins = [], {}
    for n, line in enumerate(data.decode().splitlines()[1:], 2):
        parts = line.split(",")
        if len(parts) != 3:
            raise ParseError(f"line {n} has {len(parts)} fields, not 3", expression=f"line {n}")
        code, value, effective = parts
        rid = resource_id("Observation", code, str(n))
        resources.append({"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": code},
                          "valueString": value, "effectiveDateTime": effective})
        origins[rid] = f"line {n}"
        origins[f"{rid}:effectiveDateTime"] = f"line {n} field 3"
    return Conversion(bundle(resources, opts.bundle_type, ("toy", data.decode())), (), origins)


def from_fhir(doc: dict[str, Any], opts: ConvertOptions) -> Rendered:
    rows = [f"{r['code']['text']},{r['valueString']},{r['effectiveDateTime']}"
            for r in (e["resource"] for e in doc["entry"]) if r["resourceType"] == "Observation"]
    return Rendered(("#toy\n" + "\n".join(rows) + "\n").encode())


FORMAT = Format(name="toy", title="toy rows", version="toy/1", media_type="text/x-toy",
                media_types=("text/x-toy",), sniff=lambda d: d.startswith(b"#toy"), to_fhir=to_fhir,
                from_fhir=from_fhir, sniff_order=5)
