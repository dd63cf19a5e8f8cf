"""Where the upstream lives, and the rewriting that keeps its address from reaching a client.

The upstream's base URLs are learned from configuration (HELIXGATE_UPSTREAM_URL, HELIXGATE_UPSTREAM_ALIASES), from
its CapabilityStatement (`implementation.url`: HAPI's server_address, Medplum's baseUrl — what it calls itself
behind an ingress) and from what it puts in Location, fullUrl and Bundle links. Every absolute URL under any of them
is rewritten to the facade's public [base], in bodies (also JSON with escaped slashes) and headers. Whatever still
names an upstream origin afterwards is logged as an error (a test failure in tests/gateway/test_facade_clients.py).

The public base is HELIXGATE_PUBLIC_URL when set; else X-Forwarded-Host/-Proto/-Prefix when the peer is one of
HELIXGATE_TRUSTED_PROXIES (RFC 7239 §8.3: a forwarded header is only as good as who added it); else the Host the
client used.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from starlette.requests import Request

log = logging.getLogger("helixgate.facade")
MAX_LEARNED = 16  # bases taken from what the upstream says about itself (configuration adds more)
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?\Z|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?\Z")
_PREFIX = re.compile(r"(/[A-Za-z0-9._~\-]{1,64}){0,8}\Z")
_DEFAULT_PORT = {"http": 80, "https": 443}


def _variants(base: str) -> list[str]:
    """The spellings of one base URL: as given, with or without the scheme's default port."""
    parts = urlsplit(base)
    if parts.scheme not in _DEFAULT_PORT or not parts.hostname:
        return [base]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    path = parts.path.rstrip("/")
    port = parts.port or _DEFAULT_PORT[parts.scheme]
    out = [f"{parts.scheme}://{host}:{port}{path}"]
    if port == _DEFAULT_PORT[parts.scheme]:
        out.append(f"{parts.scheme}://{host}{path}")
    return out


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Addresses:
    """The upstream's known bases and the gateway's public base; `rewrite` puts one in place of the other."""

    def __init__(self, configured: list[str], public_url: str | None = None,
                 trusted_proxies: tuple[str, ...] = ()) -> None:
        self.configured = [b.rstrip("/") for b in configured if b]
        self.learned: list[str] = []
        self.public_url = public_url.rstrip("/") if public_url else None
        self.trusted = frozenset(trusted_proxies)
        self.capabilities_learned = False
        self._compile()

    @property
    def bases(self) -> list[str]:
        return [*self.configured, *self.learned]

    def _compile(self) -> None:
        spellings = sorted({v for b in self.bases for v in _variants(b)}, key=len, reverse=True)
        forms = [*spellings, *(s.replace("/", "\\/") for s in spellings)]  # JSON may escape '/' (RFC 8259 §7)
        alternatives = b"|".join(re.escape(f.encode()) for f in forms)
        # a base ends where the URL's path segment ends: http://up/fhir must not eat http://up/fhir2
        self._pattern = re.compile(rb"(?i:" + alternatives + rb")(?=[/?#\"\\\s<>']|\Z)")
        self._text = re.compile(self._pattern.pattern.decode("latin-1"))
        self.origins = sorted({origin(v) for b in self.bases for v in _variants(b)})

    def learn(self, base: str, where: str) -> None:
        """Adds a base URL the upstream uses for itself (from `where`), when new and absolute."""
        base = base.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in _DEFAULT_PORT or not parts.netloc or base in self.bases:
            return
        if any(v in {x for b in self.bases for x in _variants(b)} for v in _variants(base)):
            return
        if len(self.learned) >= MAX_LEARNED:
            log.error("the upstream named itself by more than %d base URLs; %s (from %s) is not learned: set "
                      "HELIXGATE_UPSTREAM_ALIASES", MAX_LEARNED, origin(base), where)
            return
        self.learned.append(base)
        self._compile()
        log.warning("the upstream calls itself %s (%s), not its configured URL: rewritten like it; list it in "
                    "HELIXGATE_UPSTREAM_ALIASES", base, where)

    def learn_suffixed(self, url: str, suffix: str, where: str) -> None:
        """Learns the base of an absolute `url` that ends in `suffix` (e.g. 'Patient/1/_history/2')."""
        if not url.startswith(("http://", "https://")) or not suffix:
            return
        path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        if path.endswith("/" + suffix.strip("/")):
            self.learn(path[: -len(suffix.strip("/")) - 1], where)

    def public_base(self, request: Request) -> str:
        """The facade's [base] as its clients must see it."""
        if self.public_url:
            return self.public_url
        client = request.client.host if request.client else ""
        if client in self.trusted:
            proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
            host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
            prefix = request.headers.get("x-forwarded-prefix", "").split(",")[0].strip().rstrip("/")
            if proto in _DEFAULT_PORT and _HOST.match(host) and _PREFIX.match(prefix):
                return f"{proto}://{host}{prefix}/fhir"
        return str(request.base_url).rstrip("/") + "/fhir"

    def rewrite(self, data: bytes, public: str) -> bytes:
        if not data or not self.bases:
            return data
        escaped = public.replace("/", "\\/").encode()
        plain = public.encode()
        return self._pattern.sub(lambda m: escaped if b"\\/" in m.group(0) else plain, data)

    def rewrite_text(self, text: str, public: str) -> str:
        return self._text.sub(public, text) if text and self.bases else text

    def leaks(self, data: bytes, public: str) -> list[str]:
        """Upstream origins still named in `data` (the public origin excepted: they may share one)."""
        mine = origin(public)
        low = data.lower()
        return [o for o in self.origins
                if o != mine and (o.encode() in low or o.replace("/", "\\/").encode() in low)]

    def scrub(self, text: str) -> str:
        """A message without any upstream address (for error texts the client sees)."""
        text = self._text.sub("[upstream]", text) if self.bases else text
        for o in self.origins:
            text = re.sub(re.escape(o) + r"[^\s\"'<>]*", "[upstream]", text, flags=re.IGNORECASE)
        return text
