"""POST /fhir/$convert with VCF bodies over real HTTP (uvicorn on loopback, Redis cache): Bundle and streamed
NDJSON, gzip bodies, options as query parameters (part of the cache key), and bad input as OperationOutcome."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.mappers.vcf.facts import records, vcf_file

VCF = {"Content-Type": "text/vcf"}
NDJSON = "application/fhir+ndjson"


def example4() -> bytes:
    """vcf_example4.vcf of the vcf corpus (the calling test skips, or fails under CI, without it)."""
    return vcf_file("vcf_example4.vcf").read_bytes()


def post(url: str, body: bytes, headers: dict[str, str] | None = None, **params: str) -> httpx.Response:
    return httpx.post(f"{url}/fhir/$convert", content=body, headers=headers or VCF, params=params, timeout=30)


def clinical(bundle: dict) -> list[dict]:
    """Resources without the per-request parts (DiagnosticReport.issued)."""
    out = []
    for e in bundle["entry"]:
        res = dict(e["resource"])
        res.pop("issued", None)
        out.append(res)
    return out


def outcome(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    doc = r.json()
    assert doc["resourceType"] == "OperationOutcome"
    return doc["issue"][0]


def test_vcf_to_bundle_cached_by_body_and_options(gateway) -> None:
    first = post(gateway.url, example4(), genomicSource="somatic", sample="Sample")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/fhir+json; charset=utf-8"
    bundle = first.json()
    variants = [r for r in clinical(bundle) if r.get("code", {}).get("coding", [{}])[0].get("code") == "69548-6"]
    assert len(variants) == 9
    again = post(gateway.url, example4(), genomicSource="somatic", sample="Sample")
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    other = post(gateway.url, example4(), genomicSource="germline", sample="Sample")
    assert other.headers["x-cache"] == "miss"  # the options are part of the cache key
    assert clinical(other.json()) != clinical(bundle)


def _located(bundle: dict) -> list[tuple]:
    return [tuple(c.get("valueString") or str(c.get("valueRange")) for c in r["component"][:7])
            for r in clinical(bundle) if r.get("code", {}).get("coding", [{}])[0].get("code") == "69548-6"]


@pytest.mark.parametrize("how", ["gzip body", "content-encoding", "bgzip file"])
def test_gzip_bodies_convert_like_plain_text(gateway, how: str) -> None:
    plain = post(gateway.url, example4(), assembly="GRCh37").json()
    if how == "gzip body":
        r = post(gateway.url, gzip.compress(example4()), assembly="GRCh37")
    elif how == "content-encoding":
        r = post(gateway.url, gzip.compress(example4()), {"Content-Type": "text/x-vcf", "Content-Encoding": "gzip"},
                 assembly="GRCh37")
    else:  # the corpus .vcf.gz lacks one ##FORMAT line of the .vcf, so its ids differ; the variants do not
        r = post(gateway.url, vcf_file("vcf_example4.vcf.gz").read_bytes(), assembly="GRCh37")
        assert r.status_code == 200, r.text
        assert _located(r.json()) == _located(plain) and len(_located(plain)) == 9
        return
    assert r.status_code == 200, r.text
    assert clinical(r.json()) == clinical(plain)


def test_ndjson_is_streamed_and_not_cached(gateway) -> None:
    body = vcf_file("vcf_example2.vcf").read_bytes()
    for _ in range(2):
        with httpx.stream("POST", f"{gateway.url}/fhir/$convert", content=body,
                          headers={**VCF, "Accept": NDJSON}, params={"genomicSource": "germline"}, timeout=30) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith(NDJSON)
            assert "content-length" not in r.headers  # streamed (chunked), not buffered
            assert r.headers["x-cache"] == "bypass"
            lines = [orjson.loads(line) for line in r.iter_lines() if line]
    known = {f"{d['resourceType']}/{d['id']}" for d in lines}
    report = lines[-1]
    assert report["resourceType"] == "DiagnosticReport"
    assert {ref["reference"] for ref in report["result"]} <= known
    converted = {r.pos for r in records(vcf_file("vcf_example2.vcf"))
                 if r.filter in ("PASS", ".") and any(a and a > 0 for a in r.gt)
                 and all(set(r.alts[a - 1]) <= set("ACGT") for a in r.gt if a)}
    starts = {c["valueRange"]["low"]["value"] + 1 for d in lines for c in d.get("component", [])
              if c["code"]["coding"][0]["code"] == "81254-5"}
    assert starts == converted


def test_bad_vcf_is_a_400_naming_the_line_before_any_stream(gateway) -> None:
    body = vcf_file("vcf_example1.vcf").read_bytes()
    line = next(n for n, text in enumerate(body.decode().splitlines(), 1) if "\t.\tG\t" in text and "\t15\t" in text)
    for headers in (VCF, {**VCF, "Accept": NDJSON}):
        issue = outcome(post(gateway.url, body, headers), 400)
        assert issue["expression"] == [f"line {line}"] and "REF '.'" in issue["details"]["text"]
    lenient = post(gateway.url, body, lenient="true")
    assert lenient.status_code == 200
    # three records skipped (REF '.', 'A,T' and empty), and no assembly in the header
    assert lenient.headers["x-conversion-report"].startswith("warnings=4;")  # the mapper's; validation= apart


@pytest.mark.parametrize(("body", "params", "status", "text"), [
    (example4, {"sample": "NOPE"}, 400, "sample 'NOPE' is not in the VCF"),
    (example4, {"genomicSource": "mixed"}, 400, "genomicSource 'mixed' must be one of germline, somatic"),
    (lambda: b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n", {}, 422, "no sample columns"),
    (lambda: gzip.compress(example4())[:200], {}, 400, "truncated"),
], ids=["unknown-sample", "bad-source", "no-samples", "truncated-gzip"])
def test_bad_requests_are_operation_outcomes(gateway, body: Callable[[], bytes], params: dict[str, str], status: int,
                                             text: str) -> None:
    assert text in outcome(post(gateway.url, body(), **params), status)["details"]["text"]


def test_fhir_bundle_back_to_vcf(gateway) -> None:
    bundle = post(gateway.url, vcf_file("NB6TK328_filtered.vcf").read_bytes()).content
    r = post(gateway.url, bundle, {"Content-Type": "application/fhir+json"}, target="vcf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/vcf")
    got = sorted((x.chrom, x.pos, x.ref, x.alts, x.sample["GT"]) for x in records(r.text))
    want = sorted((x.chrom, x.pos, x.ref, x.alts, x.sample["GT"]) for x in records(vcf_file("NB6TK328_filtered.vcf")))
    assert got == want


def test_a_stream_past_the_request_budget_ends_with_an_operation_outcome() -> None:
    from gateway.settings import Settings
    from tests.conftest import ServedApp

    head = (b"##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n"
            b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n")
    body = head + b"".join(b"1\t%d\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n" % (1000 + i) for i in range(20_000))
    with ServedApp(Settings(http_timeout_ms=200)) as app, httpx.stream(
            "POST", f"{app.url}/fhir/$convert", content=body, headers={**VCF, "Accept": NDJSON}, timeout=120) as r:
        assert r.status_code == 200  # the stream had begun
        lines = [orjson.loads(line) for line in r.iter_lines() if line]
    last = lines[-1]
    assert last["resourceType"] == "OperationOutcome", "the stream ran to its end within 200 ms: proves nothing"
    assert last["issue"][0]["details"]["coding"][0]["code"] == "over-time-budget"
    assert "HELIXGATE_HTTP_TIMEOUT_MS" in last["issue"][0]["details"]["text"]
    assert 0 < len(lines) - 1 < 20_000 * 2


def test_a_read_count_vcf_cannot_carry_is_a_400_before_the_stream(gateway) -> None:
    """AD past VCF's Integer range on a later record: refused before the first NDJSON byte, as the Bundle is
    (the stream used to begin and end with an OperationOutcome line)."""
    head = (b"##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n"
            b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n")
    good = b"".join(b"1\t%d\t.\tA\tC\t50\tPASS\t.\tGT:AD\t0/1:10,12\n" % (1000 + i) for i in range(3))
    body = head + good + b"1\t5000\t.\tA\tC\t50\tPASS\t.\tGT:AD\t0/1:10,18446744073709551616\n"
    for headers in (VCF, {**VCF, "Accept": NDJSON}):
        issue = outcome(post(gateway.url, body, headers), 400)
        assert issue["expression"] == ["line 7"], issue
        assert "AD" in issue["details"]["text"]


def test_a_bundle_past_the_variant_limit_is_too_costly_and_ndjson_carries_it(gateway) -> None:
    """One Bundle holds at most 5,000 variants: past that the answer is 422 `too-costly` naming the limit and the way
    out (NDJSON), and the same body asked for as NDJSON converts every variant."""
    head = (b"##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n"
            b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n")
    body = head + b"".join(b"1\t%d\t.\tA\tC\t50\tPASS\t.\tGT\t0/1\n" % (1000 + i) for i in range(5_001))
    issue = outcome(post(gateway.url, body, genomicSource="germline"), 422)
    assert issue["code"] == "too-costly"
    assert issue["details"]["coding"][0]["code"] == "vcf-too-many-variants"
    assert "5000" in issue["details"]["text"] and "NDJSON" in issue["details"]["text"]
    with httpx.stream("POST", f"{gateway.url}/fhir/$convert", content=body, headers={**VCF, "Accept": NDJSON},
                      params={"genomicSource": "germline"}, timeout=120) as r:
        assert r.status_code == 200
        lines = [orjson.loads(line) for line in r.iter_lines() if line]
    variants = [x for x in lines if x.get("resourceType") == "Observation"
                and x.get("code", {}).get("coding", [{}])[0].get("code") == "69548-6"]
    assert len(variants) == 5_001
