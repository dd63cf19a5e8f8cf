"""Volume counters: distinct data subjects exported per exporter per calendar year (the 2024 Provisions on
Promoting and Regulating Cross-Border Data Flows count people since 1 January: 10,000 for sensitive personal
information triggers a security assessment). Exact: each subject is a member of a Redis set
`helixgate:exchange:subjects:<exporter>:<year>` (a HyperLogLog would only estimate), kept as an HMAC of its
identifier under the route's counter key (`rules.counters.keyFile` + `keyId`; without one a SHA-256, which a reader
of Redis could reverse for a structured national id by trying them all), never the identifier; the key id is fixed
in the route, as a new key would start the year's count again. Adding a transfer's subjects is one Lua script, so
concurrent transfers cannot both pass the hard stop: the subjects are added only when the count stays within it.
Redis persistence keeps the counts across restarts. Without Redis (the embedded mode) counts live in the process
and are lost on restart, which is logged once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("helixgate.exchange")
PREFIX = "helixgate:exchange:subjects:"

# KEYS[1] the set; ARGV[1] the hard stop; ARGV[2..] distinct members. Returns {added?, count after, new members...}.
_RESERVE = """
local new = {}
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then new[#new + 1] = ARGV[i] end
end
local count = redis.call('SCARD', KEYS[1])
if count + #new > tonumber(ARGV[1]) then return {0, count, #new} end
if #new > 0 then redis.call('SADD', KEYS[1], unpack(new)) end
return {1, count + #new, #new, unpack(new)}
"""


def member(exporter: str, system: str, value: str, key: bytes | None = None) -> str:
    """How a subject is kept in the set: HMAC-SHA-256 under the route's counter key when it has one (a national id
    has too few possible values for a plain hash to hide it from whoever reads Redis), else SHA-256."""
    msg = f"{exporter}\x00{system}|{value}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest() if key else hashlib.sha256(msg).hexdigest()


def key(exporter: str, year: str) -> str:
    return f"{PREFIX}{exporter}:{year}"


@dataclass(frozen=True, slots=True)
class Reservation:
    admitted: bool
    count: int  # distinct subjects this year, with this transfer's when admitted
    new: int  # how many of this transfer's subjects were not counted before
    members: tuple[str, ...] = ()  # the ones this transfer added (released again if delivery fails)


class RedisCounters:
    kind = "redis"

    def __init__(self, client: Any) -> None:
        self.client = client
        self._script: Any = None

    async def reserve(self, exporter: str, year: str, members: list[str], stop: int) -> Reservation:
        if self._script is None:
            self._script = self.client.register_script(_RESERVE)
        got = await self._script(keys=[key(exporter, year)], args=[stop, *dict.fromkeys(members)])
        ok, count, new, *added = got
        return Reservation(bool(ok), int(count), int(new), tuple(m.decode() if isinstance(m, bytes) else m
                                                                   for m in added))

    async def peek(self, exporter: str, year: str, members: list[str]) -> Reservation:
        k = key(exporter, year)
        distinct = list(dict.fromkeys(members))
        known = await self.client.smismember(k, distinct) if distinct else []
        count = int(await self.client.scard(k))
        new = sum(1 for m in known if not m)
        return Reservation(True, count + new, new)

    async def release(self, exporter: str, year: str, members: tuple[str, ...]) -> None:
        if members:
            await self.client.srem(key(exporter, year), *members)

    async def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        async for k in self.client.scan_iter(match=PREFIX + "*", count=500):
            name = k.decode() if isinstance(k, bytes) else k
            out[name.removeprefix(PREFIX)] = int(await self.client.scard(name))
        return dict(sorted(out.items()))


class MemoryCounters:
    """The embedded mode's counters: in this process only, gone on restart (logged once)."""

    kind = "memory"
    _warned = False

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}
        if not MemoryCounters._warned:
            log.warning("exchange volume counters are kept in process memory (no HELIXGATE_REDIS_URL): they are "
                        "lost on restart and not shared between processes; use Redis to enforce yearly thresholds")
            MemoryCounters._warned = True

    async def reserve(self, exporter: str, year: str, members: list[str], stop: int) -> Reservation:
        s = self.sets.setdefault(key(exporter, year), set())
        new = [m for m in dict.fromkeys(members) if m not in s]
        if len(s) + len(new) > stop:
            return Reservation(False, len(s), len(new))
        s.update(new)
        return Reservation(True, len(s), len(new), tuple(new))

    async def peek(self, exporter: str, year: str, members: list[str]) -> Reservation:
        s = self.sets.get(key(exporter, year), set())
        new = [m for m in dict.fromkeys(members) if m not in s]
        return Reservation(True, len(s) + len(new), len(new))

    async def release(self, exporter: str, year: str, members: tuple[str, ...]) -> None:
        self.sets.get(key(exporter, year), set()).difference_update(members)

    async def counts(self) -> dict[str, int]:
        return {k.removeprefix(PREFIX): len(v) for k, v in sorted(self.sets.items())}
