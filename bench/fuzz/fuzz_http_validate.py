"""Fuzz `POST /fhir/$validate` and `POST /fhir/{type}/$validate` over the real app (bench/fuzz/http_client.py): no
5xx, every error an OperationOutcome, no empty answer. Nothing is a declared refusal: a 400 is an answer.

Bodies: the FHIR JSON and XML inputs of fuzz_fhir_json.py and fuzz_fhir_xml.py (seeds from fhir-test-cases and the
IG examples, the light ones, under 4 KB, seven times in eight), sent bare or wrapped in a Parameters (`resource`,
`valueString`, `valueBase64Binary`, `profile`; one time in three with values of the wrong JSON type), to the base
route or a type's (right, wrong or junk type), with the right, a wrong or no Content-Type and junk `profile` query
parameters.

    python bench/fuzz/fuzz_http_validate.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import base64
import random
import sys
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fuzz_fhir_json
import fuzz_fhir_xml
from common import arguments, run
from http_client import client, close, pack, send
from mutations import JUNK_VALUES, dumps, junk_text, rss_mb

LIGHT = 4 * 1024
TYPES = ["Patient", "Observation", "Bundle", "Parameters", "x", "..", "Patient%2F..", "%24validate", "a" * 300, "1",
         "%00", "%C3%A9"]
MEDIA = ["application/fhir+json", "application/json", "application/fhir+xml", "application/xml", "text/plain", "",
         "application/fhir+json; charset=latin-1", "application/x-www-form-urlencoded", "multipart/form-data"]
PROFILES = ["http://hl7.org/fhir/StructureDefinition/Patient",
            "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant", "urn:x", "", "%", "a" * 3000]


def _wrap(rng: random.Random, body: bytes, draw: st.DrawFn) -> bytes:
    """The body as a Parameters, its values sometimes of the wrong JSON type."""
    try:
        resource: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        resource = None
    how = rng.choice(["resource", "valueString", "valueBase64Binary"] if resource is not None
                     else ["valueString", "valueBase64Binary"])
    value: Any = (resource if how == "resource" else body.decode("utf-8", "replace") if how == "valueString"
                  else base64.b64encode(body).decode())
    params: list[Any] = [{"name": "resource", how: value}]
    if rng.random() < 0.5:
        params.append({"name": "profile", rng.choice(["valueUri", "valueCanonical", "valueString"]):
                       rng.choice(PROFILES)})
    if rng.random() < 0.33:  # a parameter of the wrong shape
        p = rng.choice(params)
        p[rng.choice([k for k in p if k != "name"] + ["name"])] = rng.choice(JUNK_VALUES)
    if rng.random() < 0.1:
        params.append(rng.choice(JUNK_VALUES))
    return dumps({"resourceType": "Parameters", "parameter": params})


def inputs(json_seeds: list[bytes], xml_seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    json_in = fuzz_fhir_json.inputs([s for s in json_seeds if len(s) <= LIGHT], json_seeds)
    xml_in = fuzz_fhir_xml.inputs([s for s in xml_seeds if len(s) <= LIGHT], xml_seeds)

    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        xml = rng.randint(0, 4) == 0
        body = draw(xml_in if xml else json_in)
        media = "application/fhir+xml" if xml else "application/fhir+json"
        if not xml and rng.randint(0, 3) == 0:
            body = _wrap(rng, body, draw)
        if rng.randint(0, 7) == 0:
            media = rng.choice(MEDIA)
        path = "/fhir/$validate"
        if rng.randint(0, 3) == 0:
            path = f"/fhir/{rng.choice(TYPES)}/$validate"
        query = [("profile", rng.choice([*PROFILES, junk_text(draw, rng)]))] if rng.random() < 0.1 else []
        return pack("POST", path, query, {"content-type": media} if media else {}, body)

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0], http=True)
    json_seeds, xml_seeds = fuzz_fhir_json._seeds(), fuzz_fhir_xml._seeds()
    c = client(args.transport, args.sandbox)
    for s in json_seeds[:5]:  # loads the packages and compiles the common profiles before anything is timed
        send(c, pack("POST", "/fhir/$validate", [], {"content-type": "application/fhir+json"}, s), "validate")

    def target(data: bytes) -> None:
        send(c, data, "validate")

    print(f"{len(json_seeds)} + {len(xml_seeds)} seeds, baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    try:
        stats = run("http-validate", inputs(json_seeds, xml_seeds), target, (), args, "req")
    finally:
        close(c)  # the app's worker threads end with it: the process can exit
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
