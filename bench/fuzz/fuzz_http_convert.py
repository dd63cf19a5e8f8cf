"""Fuzz `POST /fhir/$convert` over the real app (bench/fuzz/http_client.py): no 5xx, every error an OperationOutcome,
no empty answer (a Bundle, a document, NDJSON or a Parameters). Nothing is a declared refusal: a 4xx is an answer.

Bodies: the inputs of the mapper harnesses (fuzz_hl7v2, fuzz_vcf, fuzz_cda_cn, fuzz_ws445: mutated documents of
each format) and of the writer harnesses (mutated FHIR Bundles and resources, with a `target`), sent with their
Content-Type (one time in eight a wrong, junk or missing one), sometimes wrapped in a Parameters (`input` as
valueString, valueBase64Binary or resource, with `source`/`target`/options, values sometimes of the wrong JSON type).
Query: `target`, `source`, `bundleType`, `allowInvalid` and format options (`sample`, `variableNames`, …), junk
one time in five; `Accept` sometimes NDJSON (streamed VCF) or a format the gateway does not render.

    python bench/fuzz/fuzz_http_convert.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
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
import fuzz_cda_cn
import fuzz_hl7v2
import fuzz_vcf
import fuzz_ws445
import writers
from common import ROOT, arguments, run
from http_client import client, close, pack, send
from mutations import JUNK_VALUES, dumps, junk_text, rss_mb

TARGETS = ["fhir", "hl7v2", "vcf", "cda-cn", "ws445", "x", ""]
MEDIA = ["x-application/hl7-v2+er7", "text/vcf", "application/cda+xml", "application/x-ws445+json",
         "application/fhir+json", "application/fhir+xml", "application/json", "text/plain", "application/octet-stream",
         "application/fhir+ndjson", "", "text/vcf; charset=gb18030", "application/xml"]
OPTIONS = {"bundleType": ["collection", "transaction", "batch", ""], "allowInvalid": ["true", "false", "x"],
           "sample": ["NA12878", "TUMOR", ""], "genomicSource": ["germline", "somatic", "x"], "sex": ["male", "x"],
           "patient": ["p1", "|", "urn:oid:1|x"], "assembly": ["GRCh37", "hg19"], "lenient": ["true"],
           "keepFiltered": ["1"], "variableNames": ['{"Gene": "48018-6"}', "{", "[]", '{"a": 5}', '"x"', "null",
                                                    '{"' + "a" * 5000 + '": "48018-6"}'],
           "source": ["hl7v2", "vcf", "cda-cn", "ws445", "fhir", "x"]}
ACCEPT = ["application/fhir+ndjson", "application/fhir+xml", "text/turtle", "*/*", "application/json"]


def _parameters(rng: random.Random, draw: st.DrawFn, body: bytes, given: dict[str, str]) -> bytes:
    how = rng.choice(["valueString", "valueBase64Binary", "resource"])
    value: Any = body.decode("utf-8", "replace") if how == "valueString" else base64.b64encode(body).decode()
    if how == "resource":
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            how = "valueString"
            value = body.decode("utf-8", "replace")
    params: list[Any] = [{"name": "input", how: value}]
    params += [{"name": k, rng.choice(["valueCode", "valueString", "valueBoolean"]): v} for k, v in given.items()]
    if rng.random() < 0.33:  # a parameter of the wrong shape
        p = rng.choice(params)
        p[rng.choice(list(p))] = rng.choice(JUNK_VALUES)
    return dumps({"resourceType": "Parameters", "parameter": params})


def inputs() -> st.SearchStrategy[bytes]:
    hl7 = fuzz_hl7v2.inputs(fuzz_hl7v2.seeds())
    vcf = fuzz_vcf.inputs(fuzz_vcf.seeds()).map(fuzz_vcf._encode)
    china, eu = fuzz_cda_cn.seeds()
    cda = fuzz_cda_cn.inputs(china, eu)
    ws = fuzz_ws445.inputs(fuzz_ws445.seeds())
    fhir = writers.inputs(writers.seeds())
    kinds = [(hl7, "x-application/hl7-v2+er7"), (vcf, "text/vcf"), (cda, "application/cda+xml"),
             (ws, "application/x-ws445+json"), (fhir, "application/fhir+json")]

    @st.composite
    def draw_input(draw: st.DrawFn) -> bytes:
        rng = random.Random(draw(st.integers(0, 2**32)))
        strategy, media = kinds[rng.randint(0, len(kinds) - 1)]
        body = draw(strategy)
        given: dict[str, str] = {}
        if media == "text/vcf":
            body, params = fuzz_vcf._decode(body)
            given.update(params)
        if media == "application/fhir+json":
            given["target"] = rng.choice(TARGETS[1:5])
        elif rng.random() < 0.1:
            given["target"] = rng.choice(TARGETS)
        if rng.randint(0, 4) == 0:
            for name in rng.sample(sorted(OPTIONS), rng.randint(1, 3)):
                given[name] = rng.choice([*OPTIONS[name], junk_text(draw, rng)])
        headers = {"content-type": media}
        if rng.randint(0, 7) == 0:
            body = _parameters(rng, draw, body, given)
            headers["content-type"], given = "application/fhir+json", {}
        if rng.randint(0, 7) == 0:
            headers["content-type"] = rng.choice([*MEDIA, junk_text(draw, rng)])
        if rng.random() < 0.1:
            headers["accept"] = rng.choice(ACCEPT)
        return pack("POST", "/fhir/$convert", sorted(given.items()), headers, body)

    return draw_input()


def main() -> None:
    args = arguments(__doc__.splitlines()[0], http=True)
    c = client(args.transport, args.sandbox)
    strategy = inputs()
    for p, media in [("examples/oru-egfr-somatic.hl7", "x-application/hl7-v2+er7"),
                     ("examples/germline-grch38.vcf", "text/vcf"), ("examples/cn-lab-record.utf8.xml",
                                                                     "application/cda+xml")]:
        # loads the packages and compiles the profiles before anything is timed
        send(c, pack("POST", "/fhir/$convert", [], {"content-type": media}, (ROOT / p).read_bytes()),
             "convert")

    def target(data: bytes) -> None:
        send(c, data, "convert")

    print(f"baseline RSS {rss_mb():.0f} MB", file=sys.stderr)
    try:
        stats = run("http-convert", strategy, target, (), args, "req")
    finally:
        close(c)  # the app's worker threads end with it: the process can exit
    sys.exit(1 if stats.crashes else 0)


if __name__ == "__main__":
    main()
