"""`helixgate doctor`: check a deployment the way its operator would before going live, and say what to fix.

Each check returns Findings (ok / warn / fail, what was seen, what to do). Checks read the same settings the server
reads (environment, or the TOML file applied before), touch only what the deployment names (its Redis, its
upstream, its files) and each takes at most a few seconds. Nothing is changed: the doctor only reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import redis
import redis.cluster
import redis.sentinel
from cryptography import x509
from redis.exceptions import RedisClusterException

from gateway import tls
from gateway.auth.config import AuthConfig, is_loopback
from gateway.redis_client import describe, mode_of, sync_clients
from gateway.settings import Settings, SettingsError
from profiles.packages import DEFAULT_PACKAGES, cache_dir, installed

# The checks run side by side in threads (diagnose); what they import is imported here, once, first: two threads
# importing one package at once can fail with a _DeadlockError on its module locks (seen with redis.exceptions).

MAX_SKEW_S = 30  # tokens, audit trails and consent periods compare times across machines


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "warn", detail, fix)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "fail", detail, fix)


def check_settings(env: Mapping[str, str]) -> Iterator[Finding]:
    try:
        Settings.from_env(env)
    except SettingsError as e:
        yield fail("settings", str(e), "correct the variable (or its key in the configuration file)")
        return
    yield ok("settings", "every HELIXGATE_* setting parses")


def check_packages(env: Mapping[str, str]) -> Iterator[Finding]:
    have = {p.ref.name: p for p in installed()}
    missing = [str(ref) for ref in DEFAULT_PACKAGES if getattr(ref, "name", str(ref).split("#")[0]) not in have]
    if missing:
        yield fail("packages", f"not in {cache_dir()}: {', '.join(missing)}; conversions are refused without them "
                   "(their output cannot be validated)", "run: helixgate packages install")
        return
    gaps = [f"{p.ref} lacks {n}#{v}" for p in have.values() for n, v in p.missing_dependencies.items()]
    yield ok("packages", f"{len(have)} FHIR package(s) in {cache_dir()}")
    if gaps:
        yield warn("packages", "; ".join(gaps) + " (resources that refer to them do not resolve)",
                   "install them from a FHIR package registry or a file: helixgate packages install NAME#VERSION "
                   "--registry URL")


def _redis_checks(url: str) -> list[Finding]:
    """Every data node: the one server, each master of a cluster, the master the Sentinels name
    (gateway/redis_client.py reads the URL)."""
    try:
        nodes = sync_clients(url, timeout=3)
        if mode_of(url) == "single":
            nodes = [(_safe_url(url), client) for _, client in nodes]
    except (redis.RedisError, RedisClusterException, OSError) as e:
        return [fail("redis", f"{_redis_name(url)} does not answer ({type(e).__name__})",
                     "start Redis, or correct HELIXGATE_REDIS_URL (hosts, ports, password, master name, TLS)")]
    return [finding for name, client in nodes for finding in _node_checks(name, client)]


def _redis_name(url: str) -> str:
    return describe(url) if "+" in url.split("://", 1)[0] else _safe_url(url)


def _node_checks(name: str, client: Any) -> list[Finding]:
    out: list[Finding] = []
    try:
        client.ping()
    except redis.RedisError as e:
        return [fail("redis", f"{name} does not answer ({type(e).__name__})",
                     "start Redis, or correct HELIXGATE_REDIS_URL (host, port, password, TLS scheme rediss://)")]
    out.append(ok("redis", f"{name} answers"))
    try:
        conf = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                for name in ("appendonly", "appendfsync", "maxmemory-policy")
                for k, v in client.config_get(name).items()}
    except redis.RedisError:
        out.append(warn("redis persistence", "CONFIG GET is not allowed here, so persistence cannot be read",
                        "make sure the server keeps an append-only file (appendonly yes) and evicts nothing "
                        "(maxmemory-policy noeviction)"))
        conf = {}
    if conf.get("appendonly") == "no":
        out.append(fail("redis persistence", "appendonly is off: messages the MLLP listener acknowledged (AA) "
                        "live in a stream that a restart loses", "set appendonly yes (appendfsync everysec or always)"))
    elif conf.get("appendonly") == "yes":
        out.append(ok("redis persistence", f"append-only file on (appendfsync {conf.get('appendfsync', '?')})"))
    policy = conf.get("maxmemory-policy")
    if policy and policy != "noeviction":
        out.append(fail("redis eviction", f"maxmemory-policy is {policy}: under memory pressure Redis may evict "
                        "queued messages, bulk job state or exchange counters", "set maxmemory-policy noeviction "
                        "(give the cache its own Redis if it should evict)"))
    elif policy:
        out.append(ok("redis eviction", "noeviction"))
    try:
        seconds, micros = client.time()
        out.append(_skew("clock (redis)", seconds + micros / 1e6))
    except redis.RedisError:
        pass
    client.close()
    return out


def check_redis(env: Mapping[str, str]) -> Iterator[Finding]:
    url = env.get("HELIXGATE_REDIS_URL")
    if not url:
        yield warn("redis", "no HELIXGATE_REDIS_URL: the embedded in-process cache is used, and there is no MLLP "
                   "queue, worker delivery or bulk job store", "set HELIXGATE_REDIS_URL for an integration engine")
        return
    yield from _redis_checks(url)


def _safe_url(url: str) -> str:
    """A URL without its user and password (secrets never reach the output)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _skew(check: str, remote: float) -> Finding:
    skew = remote - time.time()
    if abs(skew) > MAX_SKEW_S:
        return fail(check, f"this machine's clock is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} "
                    "the other side's", "synchronise the clock (NTP: chrony or systemd-timesyncd)")
    return ok(check, f"within {abs(skew):.1f} s")


def check_upstream(env: Mapping[str, str]) -> Iterator[Finding]:
    url = (env.get("HELIXGATE_UPSTREAM_URL") or "").rstrip("/")
    if not url:
        yield ok("upstream", "none configured (no facade, no delivery)")
        return
    try:
        started = time.monotonic()
        r = httpx.get(f"{url}/metadata", headers={"Accept": "application/fhir+json"}, timeout=5)
        took = time.monotonic() - started
    except httpx.HTTPError as e:
        yield fail("upstream", f"{_safe_url(url)}/metadata cannot be reached ({type(e).__name__})",
                   "check HELIXGATE_UPSTREAM_URL, the network path and the server")
        return
    if r.status_code in (401, 403):
        yield ok("upstream", f"reachable ({r.status_code} without credentials, {took * 1000:.0f} ms)")
        if not any(env.get(k) for k in ("HELIXGATE_UPSTREAM_TOKEN_FILE", "HELIXGATE_UPSTREAM_CLIENT_ID")):
            yield fail("upstream credentials", "the upstream wants credentials and none are configured",
                       "set HELIXGATE_UPSTREAM_TOKEN_FILE or HELIXGATE_UPSTREAM_CLIENT_ID with its token settings")
    elif r.status_code >= 400:
        yield fail("upstream", f"{_safe_url(url)}/metadata answers {r.status_code}",
                   "HELIXGATE_UPSTREAM_URL must be the server's FHIR base (where /metadata is)")
    else:
        kind = ""
        with contextlib.suppress(ValueError, AttributeError):
            kind = r.json().get("resourceType", "")
        if kind != "CapabilityStatement":
            yield warn("upstream", f"{_safe_url(url)}/metadata is not a CapabilityStatement",
                       "HELIXGATE_UPSTREAM_URL must be the server's FHIR base")
        else:
            yield ok("upstream", f"{_safe_url(url)} answers its CapabilityStatement in {took * 1000:.0f} ms")
    date = r.headers.get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError):  # a malformed Date header is the other side's problem
            yield _skew("clock (upstream)", email.utils.parsedate_to_datetime(date).timestamp())


def check_auth(env: Mapping[str, str]) -> Iterator[Finding]:
    config = AuthConfig.from_env(env)
    host = env.get("HELIXGATE_HOST", Settings().host)
    if not config.enabled:
        if is_loopback(host):
            yield warn("auth", "no authentication configured: open to every process on this machine",
                       "configure HELIXGATE_API_KEYS_FILE, HELIXGATE_OAUTH_ISSUER or HELIXGATE_MTLS_CLIENTS")
        else:
            yield fail("auth", f"no authentication configured and HELIXGATE_HOST={host} is not loopback: "
                       "`helixgate serve` refuses to start", "configure API keys (helixgate keys create), "
                       "HELIXGATE_OAUTH_ISSUER or HELIXGATE_MTLS_CLIENTS")
        return
    yield ok("auth", f"on: {', '.join(config.mechanisms())}")
    if config.api_keys_file:
        path = Path(config.api_keys_file)
        if not path.exists():
            yield fail("api keys", f"{path} does not exist: every API key is refused", "run: helixgate keys create")
        elif path.stat().st_mode & 0o077:
            yield warn("api keys", f"{path} is readable by other users (mode {path.stat().st_mode & 0o777:o})",
                       f"chmod 600 {path}")
    issuer = env.get("HELIXGATE_OAUTH_ISSUER")
    if issuer:
        yield from _oauth(issuer.rstrip("/"), env)


def _oauth(issuer: str, env: Mapping[str, str]) -> Iterator[Finding]:
    verify: str | bool = env.get("HELIXGATE_OAUTH_CA_FILE") or True
    jwks = env.get("HELIXGATE_OAUTH_JWKS_URL")
    try:
        if not jwks and not env.get("HELIXGATE_OAUTH_INTROSPECTION_URL"):
            meta = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=5, verify=verify)
            if meta.status_code >= 400:
                meta = httpx.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=5, verify=verify)
            jwks = meta.json().get("jwks_uri") if meta.status_code < 400 else None
            if not jwks:
                yield fail("oauth", "the issuer publishes no metadata with a jwks_uri",
                           "set HELIXGATE_OAUTH_JWKS_URL (or HELIXGATE_OAUTH_INTROSPECTION_URL)")
                return
        if jwks:
            keys = httpx.get(jwks, timeout=5, verify=verify).json().get("keys")
            if not keys:
                yield fail("oauth", "the JWKS holds no keys: no token can be verified", "check the issuer's keys")
                return
            yield ok("oauth", f"the issuer's JWKS has {len(keys)} key(s)")
    except (httpx.HTTPError, ValueError, AttributeError) as e:
        yield fail("oauth", f"the issuer cannot be reached or answers no JSON ({type(e).__name__})",
                   "check HELIXGATE_OAUTH_ISSUER (and HELIXGATE_OAUTH_CA_FILE for a private CA)")


def check_tls(env: Mapping[str, str]) -> Iterator[Finding]:
    for prefix, what in (("HELIXGATE_TLS", "https"), ("HELIXGATE_MLLP_TLS", "mllp tls")):
        try:
            config = tls.TlsConfig.from_env(prefix, env)
            if config is None:
                continue
            tls.check(config)
        except (tls.TlsError, SettingsError, ValueError) as e:
            yield fail(what, str(e), f"correct {prefix}_CERT / {prefix}_KEY")
            continue
        with open(config.cert, "rb") as f:
            cert = x509.load_pem_x509_certificates(f.read())[0]
        left = (cert.not_valid_after_utc - datetime.now(UTC)).days
        if left < 0:
            yield fail(what, f"the certificate {config.cert} expired {-left} day(s) ago", "renew it")
        elif left < 30:
            yield warn(what, f"the certificate {config.cert} expires in {left} day(s)", "renew it")
        else:
            yield ok(what, f"certificate valid for {left} more days")


def check_bulk_dir(env: Mapping[str, str]) -> Iterator[Finding]:
    folder = Path(env.get("HELIXGATE_BULK_DIR") or Path(tempfile.gettempdir()) / "helixgate-bulk")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as e:
        yield fail("bulk dir", f"{folder} is not writable ({e.strerror})",
                   "set HELIXGATE_BULK_DIR to a folder this user can write (shared by every worker host)")
        return
    yield ok("bulk dir", f"{folder} is writable")


CHECKS: tuple[Callable[[Mapping[str, str]], Iterator[Finding]], ...] = (
    check_settings, check_packages, check_redis, check_upstream, check_auth, check_tls, check_bulk_dir)


def _run_one(check: Callable[[Mapping[str, str]], Iterator[Finding]], env: Mapping[str, str]) -> list[Finding]:
    try:
        return list(check(env))
    except Exception as e:  # a check that breaks must not hide the others' findings
        name = check.__name__.removeprefix("check_")
        return [fail(name, f"the check itself failed: {type(e).__name__}: {e}", "report this to the helixgate "
                     "developers with the doctor's output")]


async def diagnose(env: Mapping[str, str] | None = None) -> list[Finding]:
    """Every finding, checks run side by side (each waits on its own network peer)."""
    env = dict(os.environ if env is None else env)
    results = await asyncio.gather(*(asyncio.to_thread(_run_one, c, env) for c in CHECKS))
    return [f for found in results for f in found]
