"""The one place Redis clients are made, for the three ways Redis is deployed (HELIXGATE_REDIS_URL):

    redis://[user:password@]host:port/db          one server (also rediss:// for TLS, unix:///path/to/socket)
    redis+cluster://[user:password@]host:port,host:port,...
                                                  a Redis Cluster: any reachable nodes as seeds, the rest is
                                                  discovered (rediss+cluster:// for TLS); always database 0
    redis+sentinel://[user:password@]host:port,host:port,.../master-name[/db]
                                                  a master watched by Sentinels: the client asks them where the
                                                  master is and follows a failover (rediss+sentinel:// for TLS)

Query parameters are redis-py's URL options (e.g. `?ssl_ca_certs=/etc/ca.pem`), applied to every data node;
`sentinel_password=` (Sentinel only) is the Sentinels' own password when they have one.

Keys that one MULTI/EXEC, one script or one multi-stream read touch together carry the hash tag `{helixgate}`
(gateway.workers.streams), so a cluster keeps them in one slot; every other key hashes on its own and spreads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedSSLConnection
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import parse_url

from gateway.settings import SettingsError

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SENTINEL_SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
PLAIN_SCHEMES = ("redis", "rediss", "unix")


def mode_of(url: str) -> str:
    """'single', 'cluster' or 'sentinel'; SettingsError for a scheme that is none of them."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    if scheme in PLAIN_SCHEMES:
        return "single"
    raise SettingsError(f"HELIXGATE_REDIS_URL must start with redis://, rediss://, unix://, redis+cluster:// or "
                        f"redis+sentinel:// (got {scheme + '://' if scheme else 'no scheme'})")


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    """'h1:p1,h2:p2' (IPv6 in brackets) as (host, port) pairs."""
    out: list[tuple[str, int]] = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            continue
        host, port = part, default_port
        if part.startswith("["):
            end = part.find("]")
            if end < 0:
                raise SettingsError(f"HELIXGATE_REDIS_URL: unclosed '[' in {part!r}")
            host, rest = part[1:end], part[end + 1:]
            if rest:
                if not rest.startswith(":"):
                    raise SettingsError(f"HELIXGATE_REDIS_URL: {part!r} is not host:port")
                port = _port(rest[1:], part)
        elif ":" in part:
            host, raw = part.rsplit(":", 1)
            port = _port(raw, part)
        if not host:
            raise SettingsError(f"HELIXGATE_REDIS_URL: {part!r} has no host")
        out.append((host, port))
    if not out:
        raise SettingsError("HELIXGATE_REDIS_URL names no host")
    return out


def _port(raw: str, part: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"HELIXGATE_REDIS_URL: {part!r} has no valid port")
    return int(raw)


def _split(url: str) -> tuple[str, str, list[tuple[str, int]], str, dict[str, str]]:
    """(scheme, userinfo, hosts, path, query) of a multi-host URL (urlsplit cannot read 'h1:p1,h2:p2')."""
    scheme, rest = url.split("://", 1)
    rest, _, query = rest.partition("?")
    rest, _, _fragment = rest.partition("#")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostpart = netloc.rpartition("@")
    if not at:
        userinfo, hostpart = "", netloc
    return scheme.lower(), userinfo, _hosts(hostpart, 26379 if scheme.lower() in SENTINEL_SCHEMES else 6379), \
        (slash + path), dict(parse_qsl(query, keep_blank_values=True))


def _node_options(plain_scheme: str, userinfo: str, db: str, query: dict[str, str]) -> dict[str, Any]:
    """redis-py's connection options from the URL's credentials, database and query (parsed as a one-host URL)."""
    auth = f"{userinfo}@" if userinfo else ""
    try:
        options = parse_url(f"{plain_scheme}://{auth}localhost/{db}?{urlencode(query)}")
    except ValueError as e:
        raise SettingsError(f"HELIXGATE_REDIS_URL: {e}") from None
    for name in ("host", "port", "connection_class"):  # the nodes are the URL's hosts; the class is the mode's
        options.pop(name, None)
    return options


@dataclass(frozen=True, slots=True)
class Target:
    """What HELIXGATE_REDIS_URL names: the mode, the nodes (seeds or Sentinels), the master's name (Sentinel) and
    redis-py's options for the data nodes."""

    mode: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    sentinel_options: dict[str, Any] = field(default_factory=dict)


def parse(url: str) -> Target:
    """HELIXGATE_REDIS_URL read (no connection made); SettingsError naming what is wrong."""
    mode = mode_of(url)
    if mode == "single":
        try:
            return Target(mode, options=parse_url(url))
        except ValueError as e:
            raise SettingsError(f"HELIXGATE_REDIS_URL: {e}") from None
    scheme, userinfo, hosts, path, query = _split(url)
    if mode == "cluster":
        if path.strip("/") not in ("", "0"):
            raise SettingsError("HELIXGATE_REDIS_URL: a Redis Cluster has database 0 only")
        options = _node_options(CLUSTER_SCHEMES[scheme], userinfo, "0", query)
        options.pop("db", None)
        options["ssl"] = CLUSTER_SCHEMES[scheme] == "rediss"
        return Target(mode, tuple(hosts), options=options)
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise SettingsError("HELIXGATE_REDIS_URL: redis+sentinel://host:port,.../master-name[/db] names the master")
    service, db = unquote(parts[0]), parts[1] if len(parts) > 1 else "0"
    sentinel_password = query.pop("sentinel_password", None)
    options = _node_options(SENTINEL_SCHEMES[scheme], userinfo, db, query)
    sentinel_options: dict[str, Any] = {}
    if sentinel_password:
        sentinel_options["password"] = sentinel_password
    if SENTINEL_SCHEMES[scheme] == "rediss":
        options["connection_class"] = SentinelManagedSSLConnection
        sentinel_options["ssl"] = True
    return Target(mode, tuple(hosts), service, options, sentinel_options)


def redis_client(url: str, timeout: float = 2.0) -> Any:
    """A client for `url` (see the module's doc) that fails fast while Redis is down: one retry, for a pooled
    connection that went stale or a node that moved; callers handle RedisError/OSError (retry or degrade)."""
    target = parse(url)
    common: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                              "health_check_interval": 0}
    if target.mode == "single":
        return aioredis.from_url(url, retry=Retry(NoBackoff(), 1), **common)
    if target.mode == "cluster":
        # redis-py follows MOVED/ASK (a resharding, a failover) and refreshes its slot map on its own; a few short
        # retries, not its default of seconds: callers would rather degrade or retry themselves.
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.hosts],
                            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 3), **common, **target.options)
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs={"socket_timeout": timeout,
                                                             "socket_connect_timeout": timeout,
                                                             **target.sentinel_options})
    return sentinel.master_for(target.service, retry=Retry(NoBackoff(), 1), **common, **target.options)


def sync_clients(url: str, timeout: float = 3.0) -> list[tuple[str, Any]]:
    """Synchronous clients for checks (`helixgate doctor`): (what it is, client) for the one server, each master of
    the cluster, or the master the Sentinels name. Raises RedisError/RedisClusterException/OSError when the cluster
    or the Sentinels cannot be reached (a single server is reached on first use)."""
    import redis
    from redis.cluster import ClusterNode as SyncNode
    from redis.cluster import RedisCluster as SyncCluster
    from redis.sentinel import Sentinel as SyncSentinel
    from redis.sentinel import SentinelManagedSSLConnection as SyncSentinelSSL

    target = parse(url)
    common = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.mode == "single":
        return [(describe(url), redis.Redis.from_url(url, **common))]
    if target.mode == "cluster":
        cluster = SyncCluster(startup_nodes=[SyncNode(h, p) for h, p in target.hosts], **common, **target.options)
        return [(f"Redis Cluster master {n.host}:{n.port}", cluster.get_redis_connection(n))
                for n in cluster.get_primaries()]
    options = dict(target.options)
    if "connection_class" in options:
        options["connection_class"] = SyncSentinelSSL
    sentinel = SyncSentinel(list(target.hosts), sentinel_kwargs={**common, **target.sentinel_options})
    host, port = sentinel.discover_master(target.service)
    return [(f"Redis master {target.service} ({host}:{port}, from the Sentinels)",
             sentinel.master_for(target.service, **common, **options))]


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


async def wait_replicas(client: Any, key: str, replicas: int, timeout_ms: int) -> int:
    """WAIT on the server that holds `key` (its cluster node, or the one master): the number of replicas that
    have every write this client made so far there."""
    if is_cluster(client):
        node = client.get_node_from_key(key)
        return int(await client.execute_command("WAIT", replicas, timeout_ms, target_nodes=node))
    return int(await client.execute_command("WAIT", replicas, timeout_ms))


def describe(url: str) -> str:
    """The URL without its credentials, for logs and `serve`'s banner."""
    mode = mode_of(url)
    if mode == "single":
        parts = urlsplit(url)
        host = parts.hostname or parts.path
        return f"Redis at {host}{':' + str(parts.port) if parts.port else ''}"
    _, _, hosts, path, _ = _split(url)
    nodes = ",".join(f"{h}:{p}" for h, p in hosts)
    if mode == "cluster":
        return f"Redis Cluster (seeds {nodes})"
    return f"Redis master {quote(path.strip('/').split('/')[0])} via Sentinels {nodes}"
