"""The cached `$convert` path over real HTTP: a cache hit hands no work to the sandbox processes (read from the
`helixgate_http_jobs` metric), and a batch file is still answered a Bundle per document when another caller has
cached a conversion of the same bytes taken whole (a phenopacket Cohort as one Bundle)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson

from gateway.cache import RedisCache
from gateway.convert import cached, conversion_key, convert
from gateway.formats import Request, format_params
from gateway.settings import Settings
from mappers.toolkit.registry import HUB, ConvertOptions
from tests.conftest import ROOT, ServedApp
from tests.gateway.test_metrics import scrape, value

V2 = {"Content-Type": "x-application/hl7-v2+er7"}
MESSAGE = (ROOT / "tests" / "mappers" / "hl7v2" / "messages" / "01-egfr-snv-somatic.hl7").read_bytes()
PHENOPACKET = {"Content-Type": "application/x-phenopacket+json"}


def _jobs(url: str) -> dict[str, float]:
    samples = scrape(url)
    return {job: value(samples, "helixgate_http_jobs_total", job=job) for job in ("batch", "convert")}


def test_a_cached_hl7v2_conversion_hands_no_job_to_the_sandbox(embedded_gateway: ServedApp) -> None:
    """The gateway as deployed (sandbox processes): the miss splits and converts there, the hit does neither."""
    body = MESSAGE.replace(b"HGT-20250301-0001", uuid.uuid4().hex[:20].encode())  # a message no test converted
    url = embedded_gateway.url
    before = _jobs(url)
    miss = httpx.post(f"{url}/fhir/$convert", content=body, headers=V2, timeout=300)
    assert miss.status_code == 200, miss.text[:500]
    after_miss = _jobs(url)
    hit = httpx.post(f"{url}/fhir/$convert", content=body, headers=V2, timeout=60)
    after_hit = _jobs(url)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("miss", "hit")
    assert hit.content == miss.content
    assert {k: after_miss[k] - before[k] for k in before} == {"batch": 1, "convert": 1}
    assert after_hit == after_miss  # the hit: no round trip to a sandbox process


def test_a_batch_file_is_not_answered_from_a_whole_conversion(own_redis, validator) -> None:  # type: ignore[no-untyped-def]
    """A Cohort converted whole (as the facade or a worker converts a document) is cached; $convert of the same
    bytes still answers a Bundle per member, each time, and its single documents are cached."""
    case = orjson.loads((ROOT / "examples" / "phenopacket-case.json").read_bytes())
    members = [{**case, "id": f"case-{n}", "subject": {**case["subject"], "id": f"person-{n}"}} for n in range(2)]
    body = orjson.dumps({"id": "cohort-cached", "members": members})
    settings = Settings(redis_url=own_redis.url, http_processes=0)
    # the request $convert builds for this body with no parameters
    req = Request("phenopacket", HUB, ConvertOptions("collection", settings.v2_timezone, None,
                                                     format_params("phenopacket", HUB, ())))

    async def whole() -> bool:
        cache = RedisCache(own_redis.url, settings.cache_ttl_seconds)
        try:
            await convert(body, req, cache, validator)  # the Cohort as one Bundle, cached
            return await cached(await conversion_key(body, req), req, cache) is not None
        finally:
            await cache.close()

    assert asyncio.run(whole())
    with ServedApp(settings) as app:
        answers = [httpx.post(f"{app.url}/fhir/$convert", content=body, headers=PHENOPACKET, timeout=120)
                   for _ in range(2)]
        single = [httpx.post(f"{app.url}/fhir/$convert", content=orjson.dumps(members[0]), headers=PHENOPACKET,
                             timeout=120) for _ in range(2)]
    for r in answers:
        assert r.status_code == 200, r.text[:500]
        assert r.headers["x-batch"] == "documents=2; converted=2; failed=0"
        assert [orjson.loads(line)["resourceType"] for line in r.content.splitlines()] == ["Bundle", "Bundle"]
    assert answers[0].content == answers[1].content
    assert [r.headers["x-cache"] for r in single] == ["miss", "hit"] and single[0].content == single[1].content
