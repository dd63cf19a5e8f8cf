"""HTTP to the target under test: every exchange recorded for the report, reads capped, failures made plain.

A hostile or broken target must cost one test, not the run: timeouts, TLS and connection failures and bodies
over the cap become TargetError (the test is an `error`) with a message that says what happened.
"""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from conformance.exceptions import TargetError
from conformance.model import Exchange

REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
USER_AGENT = "helixgate-conformance"


@dataclass(frozen=True, slots=True)
class Reply:
    """A response as the checks see it: the status, headers and the whole body (within the read cap)."""

    method: str
    url: str  # as requested, credentials redacted (it goes into messages)
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (whatever the Content-Type says)."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None

    def describe(self) -> str:
        """'HTTP 502 Bad Gateway, text/html (an HTML page: "Bad gateway")' — for failure messages."""
        text = f"HTTP {self.status}"
        if self.media_type:
            text += f", {self.media_type}"
        return text + (f" ({describe_body(self.body)})" if self.body else " (empty body)")


def describe_body(body: bytes) -> str:
    head = body[:4096].decode("utf-8", "replace").strip()
    low = head.lower()
    if low.startswith(("<!doctype html", "<html")) or "<body" in low:
        start, end = low.find("<title>"), low.find("</title>")
        title = head[start + 7:end].strip() if 0 <= start < end else ""
        return f'an HTML page: "{title[:80]}"' if title else "an HTML page"
    first = head.splitlines()[0] if head else ""
    return f'"{first[:100]}{"…" if len(first) > 100 else ""}"'


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"[redacted]@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: "[redacted]" if k.lower() in REDACTED_HEADERS else v for k, v in headers.items()}


def _body_text(body: bytes, limit: int) -> tuple[str | None, bool]:
    if not body:
        return None, False
    cut = body[:limit]
    try:
        text = cut.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(cut) - 4:  # binary (a gzip VCF), not a character cut by the limit
            return f"[{len(body)} bytes of binary data; base64 of the first 48: "\
                   f"{base64.b64encode(body[:48]).decode()}]", len(body) > 48
        text = cut[: e.start].decode("utf-8")
    return text, len(body) > limit


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "certificate" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Target:
    """The FHIR base under test. `exchanges` collects what each test sent and got; the runner empties it."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0,
                 max_body: int = 32 << 20, report_body_limit: int = 16 << 10, verify_tls: bool = True) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.max_body = max_body
        self.report_body_limit = report_body_limit
        self.exchanges: list[Exchange] = []
        self._client = httpx.Client(headers={"User-Agent": USER_AGENT, **(headers or {})}, verify=verify_tls,
                                    timeout=httpx.Timeout(timeout), follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                params: Mapping[str, str] | None = None, content: bytes | None = None, json: Any = None) -> Reply:
        """Send one request and read the response within the cap and the deadline. Raises TargetError."""
        if json is not None:
            content = orjson.dumps(json)
            headers = {"Content-Type": "application/fhir+json", **(headers or {})}
        request = self._client.build_request(method, self.url(path), headers=headers, params=params,
                                             content=content)
        shown = redact_url(str(request.url))
        sent, sent_cut = _body_text(content or b"", self.report_body_limit)
        started = time.monotonic()

        def record(error: str | None, response: httpx.Response | None = None, body: bytes = b"",
                   capped: bool = False) -> None:
            got, got_cut = _body_text(body, self.report_body_limit)
            self.exchanges.append(Exchange(
                method, shown, _headers(request.headers), sent, len(content or b""),
                None if response is None else response.status_code,
                "" if response is None else response.reason_phrase,
                {} if response is None else _headers(response.headers), got, len(body),
                sent_cut or got_cut or capped, (time.monotonic() - started) * 1000, error))

        try:
            response = self._client.send(request, stream=True)
        except httpx.TimeoutException:
            msg = f"{method} {shown}: no response within {self.timeout:g} s (timeout)"
            record(msg)
            raise TargetError(msg) from None
        except httpx.HTTPError as e:
            host = request.url.host
            msg = (f"{method} {shown}: TLS handshake with {host} failed: {e}" if _is_tls(e)
                   else f"{method} {shown}: cannot reach {host}: {e or type(e).__name__}")
            record(msg)
            raise TargetError(msg) from None
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                chunks.append(chunk)
                if size > self.max_body:
                    msg = (f"{method} {shown}: the response body passed the {self.max_body} byte read cap; "
                           "the kit stopped reading (raise it with --max-body)")
                    record(msg, response, b"".join(chunks), capped=True)
                    raise TargetError(msg)
                if time.monotonic() - started > self.timeout:
                    msg = f"{method} {shown}: the response body was still arriving after {self.timeout:g} s"
                    record(msg, response, b"".join(chunks), capped=True)
                    raise TargetError(msg)
        except httpx.TimeoutException:
            msg = f"{method} {shown}: the response body stalled for {self.timeout:g} s (timeout)"
            record(msg, response, b"".join(chunks), capped=True)
            raise TargetError(msg) from None
        except httpx.HTTPError as e:
            msg = f"{method} {shown}: the response broke off after {size} bytes: {e or type(e).__name__}"
            record(msg, response, b"".join(chunks), capped=True)
            raise TargetError(msg) from None
        finally:
            response.close()
        body = b"".join(chunks)
        record(None, response, body)
        return Reply(method, shown, response.status_code, response.headers, body)
