"""Prometheus metrics (prometheus-client) and the `GET /metrics` route.

What is counted where:

- HTTP requests by route template, method and status, with a duration histogram: gateway.accesslog's middleware
  (the template, never the path: ids and query strings stay out of the labels);
- conversions by source/target format and outcome, and the issues of their reports by severity: gateway.convert,
  in the server process (the sandbox child processes only run the mapper and validator and return the result to
  the parent, which counts it); validation issues by severity: the $validate route and gateway.validate;
- cache lookups by cache (conversion, validation) and result (hit, miss): gateway.cache;
- jobs handed to the sandbox processes by job (convert, batch, validate, …): gateway.sandbox.run_job;
- MLLP messages by outcome and the ACK codes sent: gateway.mllp.server;
- stream length, consumer-group lag and pending entries, dead-letter count: read from Redis when /metrics is
  scraped (a few XLEN/XINFO GROUPS calls in one pipeline under a 0.5 s timeout: bounded cost per scrape);
- upstream request latency (time to response headers) by method and status class, and the circuit breaker's
  state: httpx event hooks on the app's upstream client, the breaker read when scraped.

Several server processes (`helixgate serve --workers N`): each process counts in its own memory unless
PROMETHEUS_MULTIPROC_DIR names a directory, where prometheus-client's multiprocess mode keeps each process's values
in files that a scrape of any process adds up (serve sets it to a fresh directory when --workers > 1). Workers
(`helixgate worker`) are other programs and are not scraped here; their progress shows in the stream gauges.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
REGISTRY = CollectorRegistry(auto_describe=False)  # the gateway's own, not prometheus-client's process-wide default
# Seconds: a cached $convert answers in about a millisecond, a cold conversion with validation in tens to hundreds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("helixgate_http_requests", "HTTP requests answered, by route template, method and status",
                   ("route", "method", "status"), registry=REGISTRY)
DURATION = Histogram("helixgate_http_request_duration_seconds", "HTTP request duration, by route template and method",
                     ("route", "method"), buckets=BUCKETS, registry=REGISTRY)
CONVERSIONS = Counter("helixgate_conversions", "Conversions by source and target format and outcome (converted, "
                      "cached, invalid-output, refused, error)", ("source", "target", "outcome"), registry=REGISTRY)
ISSUES = Counter("helixgate_validation_issues", "Issues in conversion reports and $validate outcomes, by where they "
                 "came from (convert, validate) and severity", ("origin", "severity"), registry=REGISTRY)
CACHE = Counter("helixgate_cache_lookups", "Cache lookups by cache (conversion, validation, translation, "
                "upstream-read) and result",
                ("cache", "result"), registry=REGISTRY)
HTTP_JOBS = Counter("helixgate_http_jobs", "CPU-bound work of HTTP requests handed to the sandbox processes (a thread "
                    "with HELIXGATE_HTTP_PROCESSES=0), by job (convert, batch, validate, validate-resource)", ("job",),
                    registry=REGISTRY)
MLLP_MESSAGES = Counter("helixgate_mllp_messages", "MLLP messages received, by outcome (accepted, unavailable, "
                        "or the refusal: unparseable, rejected, too-large, unknown-sender)", ("outcome",),
                        registry=REGISTRY)
MLLP_ACKS = Counter("helixgate_mllp_acks", "MLLP acknowledgements sent, by MSA-1 code (AA/AE/AR; CA/CE/CR)", ("code",),
                    registry=REGISTRY)
UPSTREAM = Histogram("helixgate_upstream_request_duration_seconds", "Upstream FHIR server requests: time to the "
                     "response headers, by method and status class (2xx..5xx)", ("method", "status"),
                     buckets=BUCKETS, registry=REGISTRY)
CIRCUIT = Gauge("helixgate_upstream_circuit_state", "The upstream circuit breaker: 1 for its current state",
                ("state",), registry=REGISTRY, multiprocess_mode="mostrecent")
STREAM_LENGTH = Gauge("helixgate_stream_length", "Entries in each Redis stream (read when scraped)", ("stream",),
                      registry=REGISTRY, multiprocess_mode="mostrecent")
STREAM_LAG = Gauge("helixgate_stream_lag", "Entries of each stream not yet read by the workers' consumer group",
                   ("stream",), registry=REGISTRY, multiprocess_mode="mostrecent")
STREAM_PENDING = Gauge("helixgate_stream_pending", "Entries read by a worker and not yet acknowledged", ("stream",),
                       registry=REGISTRY, multiprocess_mode="mostrecent")
DEAD_LETTERS = Gauge("helixgate_dead_letters", "Entries in the dead-letter stream", registry=REGISTRY,
                     multiprocess_mode="mostrecent")
REDIS_UP = Gauge("helixgate_redis_scrape_ok", "1 when the stream gauges were read from Redis at this scrape",
                 registry=REGISTRY, multiprocess_mode="mostrecent")

SEVERITIES = ("fatal", "error", "warning", "information")
# The issues gateway.convert.check adds to a conversion report: the validator's, on the output (the rest of the
# report is the mapper's own account of what it did not map)
VALIDATOR_DETAILS = frozenset({"invalid-output", "output-warning", "output-not-validated"})
# the key prefixes of gateway.cache, gateway.validate, gateway.terminology_routes and the facade's reads (not
# imported: they import this)
_CACHES = {"helixgate:conv:": "conversion", "helixgate:val:": "validation", "helixgate:tx:": "translation",
           "helixgate:up:": "upstream-read"}
_request_counters: dict[tuple[str, str, int], Any] = {}  # labelled children, looked up once per label set
_durations: dict[tuple[str, str], Any] = {}


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered HTTP request (the access-log middleware's hot path: labelled children are kept). Methods beyond
    HTTP's usual ones count as OTHER: a client cannot grow the label sets."""
    if method not in METHODS:
        method = "OTHER"
    key = (route, method, status)
    counter = _request_counters.get(key)
    if counter is None:
        counter = _request_counters[key] = REQUESTS.labels(route, method, str(status))
    counter.inc()
    hist = _durations.get(key[:2])
    if hist is None:
        hist = _durations[key[:2]] = DURATION.labels(route, method)
    hist.observe(seconds)


def conversion(source: str, target: str, outcome: str, report: dict[str, Any] | None = None) -> None:
    """One conversion; `report` (its OperationOutcome) adds the validator's issues on the output."""
    CONVERSIONS.labels(source, target, outcome).inc()
    if report:
        issues("convert", report, VALIDATOR_DETAILS)


def issues(origin: str, outcome: dict[str, Any], only: frozenset[str] | None = None) -> None:
    """Count an OperationOutcome's issues by severity (`only`: those with these details codes)."""
    counts: dict[str, int] = {}
    for issue in outcome.get("issue", ()):
        severity = issue.get("severity") if isinstance(issue, dict) else None
        if only is not None and _details(issue) not in only:
            continue
        if severity in SEVERITIES:
            counts[severity] = counts.get(severity, 0) + 1
    for severity, n in counts.items():
        ISSUES.labels(origin, severity).inc(n)


def _details(issue: Any) -> str | None:
    try:
        return issue["details"]["coding"][0]["code"]
    except (KeyError, IndexError, TypeError):
        return None


def cache_lookup(key: str, hit: bool) -> None:
    cache = next((name for prefix, name in _CACHES.items() if key.startswith(prefix)), "other")
    CACHE.labels(cache, "hit" if hit else "miss").inc()


def mllp_message(outcome: str, ack: bytes | None) -> None:
    """One MLLP message handled; `ack` is the ACK message sent (None when the sender asked for none), counted by
    its MSA-1 (AA/AE/AR, or CA/CE/CR in enhanced acknowledgement mode: HL7 v2.5.1 table 0008)."""
    MLLP_MESSAGES.labels(outcome).inc()
    if ack:
        at = ack.find(b"\rMSA|")
        code = ack[at + 5:at + 7].decode("ascii", "replace") if at >= 0 else "?"
        MLLP_ACKS.labels(code).inc()


def watch_upstream(client: Any) -> None:
    """Time each request of an httpx.AsyncClient to its response headers (event hooks; the client is not changed
    otherwise)."""

    async def started(request: Any) -> None:
        request.extensions["helixgate.started"] = time.perf_counter()

    async def answered(response: Any) -> None:
        began = response.request.extensions.get("helixgate.started")
        if began is not None:
            UPSTREAM.labels(response.request.method, f"{response.status_code // 100}xx").observe(
                time.perf_counter() - began)

    client.event_hooks["request"].append(started)
    client.event_hooks["response"].append(answered)


async def _read_streams(redis: Any) -> None:
    """The stream gauges from Redis: one pipeline of XLEN and XINFO GROUPS per stream, 0.5 s at most."""
    from gateway.workers.streams import BULK, DLQ, GROUP, INBOUND

    streams = (INBOUND, BULK)
    try:
        async with asyncio.timeout(0.5):
            pipe = redis.pipeline(transaction=False)
            for name in (*streams, DLQ):
                pipe.xlen(name)
            for name in streams:
                pipe.xinfo_groups(name)
            replies = await pipe.execute(raise_on_error=False)
    except Exception:  # Redis down or slow: say so, keep the last values out of sight
        REDIS_UP.set(0)
        return
    lengths, groups = replies[: len(streams) + 1], replies[len(streams) + 1:]
    for name, length in zip((*streams, DLQ), lengths, strict=True):
        if isinstance(length, int):
            STREAM_LENGTH.labels(name).set(length)
    if isinstance(lengths[-1], int):
        DEAD_LETTERS.set(lengths[-1])
    for name, length, reply in zip(streams, lengths, groups, strict=False):
        group = next((g for g in reply if _text(g.get("name")) == GROUP), None) if isinstance(reply, list) else None
        if group is None:  # no consumer group yet (no worker has started): every entry is unread
            STREAM_PENDING.labels(name).set(0)
            STREAM_LAG.labels(name).set(length if isinstance(length, int) else 0)
            continue
        STREAM_PENDING.labels(name).set(int(group.get("pending") or 0))
        lag = group.get("lag")  # Redis ≥ 7.0; None when Redis cannot tell (entries deleted past the group's last id)
        if lag is not None:
            STREAM_LAG.labels(name).set(int(lag))
    REDIS_UP.set(1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def metrics_route(request: Request) -> Response:
    state = request.app.state
    upstream = getattr(state, "upstream", None)
    if upstream is not None:
        current = upstream.breaker.state
        for name in ("closed", "open", "half-open"):
            CIRCUIT.labels(name).set(1 if name == current else 0)
    redis = getattr(state, "redis", None)
    if redis is not None:
        await _read_streams(redis)
    return Response(render(), media_type=CONTENT_TYPE_LATEST)


def render() -> bytes:
    """The exposition text: this process's registry, or every process's files in multiprocess mode."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def prepare_multiprocess(workers: int) -> None:
    """For `helixgate serve --workers N`: a PROMETHEUS_MULTIPROC_DIR for the server processes (they are started after
    this and read it when they import prometheus-client): a fresh one, or the operator's, emptied of its *.db files."""
    if workers <= 1:
        return
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not named:
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="helixgate-metrics-")
        return
    # prometheus-client's rule: the directory is emptied between runs (an earlier run's counts would be added in)
    from pathlib import Path

    folder = Path(named)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


routes = [Route("/metrics", metrics_route, methods=["GET"])]
