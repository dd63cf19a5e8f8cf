"""Issue 16: what the exchange rules cost, and how fast the volume counters count.

1. transfers/s through POST /fhir/$exchange for a genetic ORU^R01 → IPS route with every rule on (mechanism,
   consent + separate consent, HGR filing, minimisation, pseudonymisation, counters, audit chain), beside plain
   POST /fhir/$convert of the same messages to IPS: the rules' overhead as a ratio. Each request sends a new
   MSH-10 (and patient id), so neither path is served from the conversion cache; the two are interleaved
   request by request, so both see the same load.
2. counter increments/s against Redis (RedisCounters.reserve: one Lua script, a new subject each), one at a time
   and 32 in flight, beside a bare SADD round trip (the floor).

    nice python bench/bench_exchange.py [--requests 40] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ORU = (ROOT / "examples" / "oru-egfr-somatic.hl7").read_bytes()


def message(n: int) -> bytes:
    return ORU.replace(b"|MSG0001|", f"|MSG{n:06d}|".encode()).replace(b"PAT123^", f"P{n:06d}^".encode())


def routes_file(folder: Path) -> Path:
    for name in ("routes.json", "demo-keys.json"):
        shutil.copy(ROOT / "examples" / "exchange" / name, folder / name)
    (folder / "demo-keys.json").chmod(0o600)
    doc = orjson.loads((folder / "routes.json").read_bytes())
    route = doc["routes"][0]  # cn-eu-treatment: every rule, plus pseudonymisation
    route["rules"]["pseudonymise"] = {"keyFile": "demo-keys.json"}
    route["rules"]["counters"]["stopAt"] = 10_000_000
    route["rules"]["counters"]["warnAt"] = 9_000_000
    (folder / "routes.json").write_bytes(orjson.dumps(doc))
    return folder / "routes.json"


def exchange_body(n: int) -> bytes:
    consents = orjson.loads((ROOT / "examples" / "exchange" / "consents.json").read_bytes())
    params = [{"name": "route", "valueString": "cn-eu-treatment"}, {"name": "purpose", "valueCode": "treatment"},
              {"name": "content", "valueAttachment": {"contentType": "x-application/hl7-v2+er7",
                                                      "data": base64.b64encode(message(n)).decode()}},
              {"name": "mechanism", "valueString": "CN-SC-2026-0042"},
              {"name": "filing", "valueString": "MOST-HGR-2026-0001"}]
    for e in consents["entry"]:  # the consents name PAT123: make them name this message's patient
        c = e["resource"]
        if c["patient"]["identifier"]["value"] == "PAT123":
            c = orjson.loads(orjson.dumps(c).replace(b'"PAT123"', f'"P{n:06d}"'.encode()))
            params.append({"name": "consent", "resource": c})
    return orjson.dumps({"resourceType": "Parameters", "parameter": params})


def http_rates(url: str, requests: int) -> tuple[float, float]:
    with httpx.Client(timeout=120) as client:
        for warm in (0, 1):  # sandbox processes, validator, first-time paths
            assert client.post(f"{url}/fhir/$convert?target=ips", content=message(10**5 + warm),
                               headers={"Content-Type": "x-application/hl7-v2+er7"}).status_code == 200
            r = client.post(f"{url}/fhir/$exchange", content=exchange_body(10**5 + 10 + warm),
                            headers={"Content-Type": "application/fhir+json"})
            assert r.status_code == 200, r.text[:500]
        bodies = [exchange_body(n) for n in range(requests)]
        spent = {"convert": 0.0, "exchange": 0.0}
        for n, body in enumerate(bodies):  # interleaved, so both see the same load on a shared machine
            start = time.perf_counter()
            r = client.post(f"{url}/fhir/$convert?target=ips", content=message(2 * 10**5 + n),
                            headers={"Content-Type": "x-application/hl7-v2+er7"})
            spent["convert"] += time.perf_counter() - start
            assert r.status_code == 200 and r.headers["x-cache"] == "miss"
            start = time.perf_counter()
            r = client.post(f"{url}/fhir/$exchange", content=body, headers={"Content-Type": "application/fhir+json"})
            spent["exchange"] += time.perf_counter() - start
            assert r.status_code == 200, r.text[:300]
        convert, exchange = requests / spent["convert"], requests / spent["exchange"]
    return convert, exchange


async def counter_rates(redis_url: str, seconds: float) -> tuple[float, float, float]:
    import redis.asyncio as aioredis

    from gateway.exchange.counters import RedisCounters, member

    client = aioredis.from_url(redis_url)
    counters = RedisCounters(client)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await counters.reserve("bench", "2026", [member("bench", "s", str(n))], 10**9)
        n += 1
    single = n / (time.perf_counter() - start)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await asyncio.gather(*(counters.reserve("bench-c", "2026", [member("bench-c", "s", str(n + i))], 10**9)
                               for i in range(32)))
        n += 32
    concurrent = n / (time.perf_counter() - start)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await client.sadd("bench-floor", str(n))
        n += 1
    floor = n / (time.perf_counter() - start)
    await client.aclose()
    return single, concurrent, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    from gateway.settings import Settings
    from tests.conftest import ServedApp, start_redis

    redis_server = start_redis()
    folder = Path(tempfile.mkdtemp(prefix="helixgate-bench-exchange-"))
    try:
        os.environ["HELIXGATE_EXCHANGE_ROUTES"] = str(routes_file(folder))
        with ServedApp(Settings(redis_url=redis_server.url)) as app:
            convert, exchange = http_rates(app.url, args.requests)
        single, concurrent, floor = asyncio.run(counter_rates(redis_server.url, args.seconds))
    finally:
        redis_server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"$convert hl7v2 -> ips (cache miss):      {convert:7.1f} /s")
    print(f"$exchange, every rule on (-> ips):       {exchange:7.1f} /s   ({exchange / convert:.2f}x $convert)")
    print(f"counter increments, one at a time:       {single:7.0f} /s   ({single / floor:.2f}x a bare SADD)")
    print(f"counter increments, 32 in flight:        {concurrent:7.0f} /s")
    print(f"bare SADD round trip (floor):            {floor:7.0f} /s")


if __name__ == "__main__":
    main()
