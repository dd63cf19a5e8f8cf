"""Regular expressions applied to input, on RE2: time linear in the input whatever the pattern, so no value can make
validation backtrack for seconds (the R4 base64Binary regex `(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+` takes time exponential
in the length of a value like "AAAA  AAAA  …!" on Python's backtracking `re`).

The pattern dialect is the one FHIR's definitions are written for, java.util.regex, which the HL7 validator
evaluates them with; where RE2 differs it is brought in line:

- `\\s` is Java's `[ \\t\\n\\x0B\\f\\r]` (RE2's own lacks \\x0B; Python's `re` also takes Unicode spaces such as
  U+00A0, so `[ \\r\\n\\t\\S]+`, the string regex, used to refuse a no-break space); `\\d`, `\\w` and `\\b` are ASCII,
  as in Java.
- `\\uXXXX` is RE2's `\\x{XXXX}`; Python's `\\Z` (end of text) is RE2's `\\z`.
- `$` is the end of the text (Java and Python also accept it before a final line break).

Patterns RE2 cannot run (backreferences, lookaround, possessive quantifiers, or too large a program) run on the
`regex` module with a time budget instead: past it a PatternTimeout is raised and the caller reports the check as
not done. Everything in profiles/ that matches a regular expression against input goes through this module
(tests/profiles/test_patterns.py holds it to that).
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import re2
import regex

from profiles.sure import SURE

IGNORECASE = 1
DOTALL = 2  # `.` also matches a line break (FHIRPath's "single line mode")
FALLBACK_SECONDS = 0.25  # per call, for patterns RE2 cannot run

_FULL = re2._Anchor.ANCHOR_BOTH
_START = re2._Anchor.ANCHOR_START
_ANY = re2._Anchor.UNANCHORED
_NO_SPAN = (-1, -1)
_HEX = frozenset("0123456789abcdefABCDEF")
_SHORT, _SEEN_MAX = 64, 4096  # up to 4096 verdicts or matches on values of up to 64 characters, per pattern
_NOT_SEEN = object()
_LIVE: weakref.WeakSet[Pattern] = weakref.WeakSet()  # every compiled pattern, for forget()


def forget() -> None:
    """Drop the verdicts every pattern remembers on short values (a validator's forget(): first-sight timing)."""
    for p in list(_LIVE):
        p._seen.clear()


class PatternTimeout(Exception):
    """A pattern RE2 cannot run took longer than its budget on the `regex` module."""


def _encode(text: str) -> bytes:
    # a lone surrogate (Python's json module lets one through) cannot be UTF-8: kept as bytes RE2 matches nothing to
    return text.encode("utf-8", "surrogatepass")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


class Match:
    """A match over the UTF-8 bytes of the text: groups are decoded on demand, so many matches over a long
    non-ASCII text cost no more than the text."""

    __slots__ = ("_ascii", "_data", "_spans", "re", "string")

    def __init__(self, pattern: Pattern, string: str, data: bytes, spans: list[tuple[int, int]]) -> None:
        self.re, self.string, self._data, self._spans = pattern, string, data, spans
        self._ascii = len(data) == len(string)  # byte offsets are character offsets

    def group(self, index: int = 0) -> str | None:
        s, e = self._spans[index]
        if s < 0:
            return None
        return self.string[s:e] if self._ascii else _decode(self._data[s:e])

    def groups(self) -> tuple[str | None, ...]:
        return tuple(self.group(i) for i in range(1, len(self._spans)))

    def _char(self, offset: int) -> int:
        return offset if offset < 0 or self._ascii else len(_decode(self._data[:offset]))

    def start(self, index: int = 0) -> int:
        return self._char(self._spans[index][0])

    def end(self, index: int = 0) -> int:
        return self._char(self._spans[index][1])

    def span(self, index: int = 0) -> tuple[int, int]:
        return self.start(index), self.end(index)

    def __bool__(self) -> bool:
        return True


class _FallbackMatch(Match):
    """A `regex` module match behind the same interface."""

    __slots__ = ("_m",)

    def __init__(self, pattern: Pattern, m: Any) -> None:
        self.re, self.string, self._m = pattern, m.string, m

    def group(self, index: int = 0) -> str | None:
        return self._m.group(index)

    def groups(self) -> tuple[str | None, ...]:
        return self._m.groups()

    def start(self, index: int = 0) -> int:
        return self._m.start(index)

    def end(self, index: int = 0) -> int:
        return self._m.end(index)


def java_to_re2(pattern: str) -> str:
    """The pattern in RE2's syntax with Java's meaning (see the module's docstring); unknown escapes are left for
    RE2 to refuse."""
    out: list[str] = []
    in_class = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "sS":
                negated = "^" if nxt == "S" else ""
                out.append(f"[:{negated}space:]" if in_class else f"[[:{negated}space:]]")
            elif nxt == "Z":
                out.append("\\z")
            elif nxt == "u" and len(code := pattern[i + 2:i + 6]) == 4 and all(h in _HEX for h in code):
                out.append("\\x{" + code + "}")
                i += 6
                continue
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):  # a POSIX class inside a class: copied whole
                end = pattern.find(":]", i + 2)
                if end > 0:
                    out.append(pattern[i:end + 2])
                    i = end + 2
                    continue
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is a literal
                out.append("\\]")
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


class Pattern:
    """One compiled pattern. `fullmatch`/`match`/`search` give a Match or None, like `re`; `full` and `found` are
    their yes/no forms without capture groups (RE2's fastest path, for the checks that run on every value)."""

    __slots__ = ("__weakref__", "_bool", "_fallback", "_prog", "_seen", "_sure", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern, self.flags = pattern, flags
        self._sure = None if flags else SURE.get(pattern)  # an R4 primitive's regex: its exact shortcut
        self._seen: dict[Any, Any] = {}  # full() verdicts and matches on short values (see full)
        _LIVE.add(self)
        self._prog: Any = None
        self._bool: Any = None
        self._fallback: Any = None
        translated = java_to_re2(pattern)
        try:
            self._prog = self._re2(translated, capture=True)
            self._bool = self._re2(translated, capture=False)
        except re2.error:
            self._prog = self._bool = None
            options = (regex.IGNORECASE if flags & IGNORECASE else 0) | (regex.DOTALL if flags & DOTALL else 0)
            self._fallback = regex.compile(pattern, options)  # raises regex.error for a malformed pattern

    def _re2(self, translated: str, capture: bool) -> Any:
        options = re2.Options()
        options.log_errors = False
        options.case_sensitive = not self.flags & IGNORECASE
        options.dot_nl = bool(self.flags & DOTALL)
        options.never_capture = not capture
        prog = re2._re2.RE2(translated.encode(), options)
        if not prog.ok():
            raise re2.error(prog.error())
        return prog

    @property
    def engine(self) -> str:
        return "re2" if self._prog is not None else "regex"

    @property
    def groups(self) -> int:
        return self._prog.NumberOfCapturingGroups() if self._prog is not None else self._fallback.groups

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r}, engine={self.engine})"

    # ---- yes/no ----
    def full(self, text: str) -> bool:
        # RE2's fixed cost per call (the binding, the UTF-8 copy) is a few times `re`'s on a short value, and the
        # validator checks the same codes, systems and dates over and over: short values' verdicts are kept
        short = len(text) <= _SHORT
        if short and (hit := self._seen.get(text)) is not None:
            return hit
        if self._sure is not None and self._sure(text):
            ok = True
        elif self._bool is None:
            ok = self._call("fullmatch", text) is not None
        else:
            data = _encode(text)
            ok = self._bool.Match(_FULL, data, 0, len(data))[0][0] >= 0
        if short:
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen[text] = ok
        return ok

    def found(self, text: str) -> bool:
        if self._bool is None:
            return self._call("search", text) is not None
        data = _encode(text)
        return self._bool.Match(_ANY, data, 0, len(data))[0][0] >= 0

    # ---- matches ----
    def fullmatch(self, text: str) -> Match | None:
        return self._one(_FULL, "fullmatch", text)

    def match(self, text: str) -> Match | None:
        return self._one(_START, "match", text)

    def search(self, text: str) -> Match | None:
        return self._one(_ANY, "search", text)

    def finditer(self, text: str) -> Iterator[Match]:
        if self._fallback is not None:
            try:
                for m in self._fallback.finditer(text, timeout=FALLBACK_SECONDS):
                    yield _FallbackMatch(self, m)
            except TimeoutError:
                raise PatternTimeout(self.pattern) from None
            return
        data = _encode(text)
        pos, end = 0, len(data)
        while pos <= end:
            spans = self._prog.Match(_ANY, data, pos, end)
            if spans[0] == _NO_SPAN:
                return
            yield Match(self, text, data, spans)
            s, e = spans[0]
            pos = e if e > s else _next_char(data, e)

    def findall(self, text: str) -> list[Any]:
        """As `re`: the whole matches, group 1's text, or tuples of the groups."""
        groups = self.groups
        if groups == 0:
            return [m.group() for m in self.finditer(text)]
        if groups == 1:
            return [m.group(1) or "" for m in self.finditer(text)]
        return [tuple(g or "" for g in m.groups()) for m in self.finditer(text)]

    def sub(self, repl: str | Callable[[Match], str], text: str, count: int = 0) -> str:
        """Each match replaced by `repl`: a literal string (no group references) or a function of the Match."""
        if self._fallback is not None:
            fn: Any = (lambda m: repl(_FallbackMatch(self, m))) if callable(repl) else (lambda m: repl)
            try:
                return self._fallback.sub(fn, text, count=count, timeout=FALLBACK_SECONDS)
            except TimeoutError:
                raise PatternTimeout(self.pattern) from None
        parts: list[str] = []
        data = _encode(text)
        last = 0
        for done, m in enumerate(self.finditer(text), 1):
            s, e = m._spans[0]
            parts.append(_decode(data[last:s]))
            parts.append(repl(m) if callable(repl) else repl)
            last = e
            if count and done >= count:
                break
        parts.append(_decode(data[last:]))
        return "".join(parts)

    def _one(self, anchor: Any, name: str, text: str) -> Match | None:
        if self._fallback is not None:
            m = self._call(name, text)
            return None if m is None else _FallbackMatch(self, m)
        short = len(text) <= _SHORT  # references and paths recur as much as codes do (see full): matches are kept
        if short and (hit := self._seen.get((name, text), _NOT_SEEN)) is not _NOT_SEEN:
            return hit  # type: ignore[return-value]
        data = _encode(text)
        spans = self._prog.Match(anchor, data, 0, len(data))
        m = None if spans[0] == _NO_SPAN else Match(self, text, data, spans)
        if short:
            if len(self._seen) >= _SEEN_MAX:
                self._seen.clear()
            self._seen[(name, text)] = m  # type: ignore[index]
        return m

    def _call(self, name: str, text: str) -> Any:
        try:
            return getattr(self._fallback, name)(text, timeout=FALLBACK_SECONDS)
        except TimeoutError:
            raise PatternTimeout(self.pattern) from None


def _next_char(data: bytes, pos: int) -> int:
    """The byte offset after the UTF-8 character at `pos` (an empty match moves on by one character)."""
    pos += 1
    while pos < len(data) and data[pos] & 0xC0 == 0x80:
        pos += 1
    return pos


@functools.lru_cache(maxsize=2048)
def compile(pattern: str, flags: int = 0) -> Pattern:
    """The compiled pattern, cached (FHIRPath matches() compiles the same few patterns over and over). Raises
    regex.error for a pattern neither engine reads."""
    return Pattern(pattern, flags)


def character_class(spec: str) -> re.Pattern[str]:
    """A pattern of exactly one character class (`[...]`) for scanning text at C speed (an XML writer's "does this
    string need escaping"). One class cannot backtrack, so Python's engine is linear on it, and it is several
    times faster per call than RE2 on short strings. Raises ValueError for anything but a single class."""
    if not (spec.startswith("[") and spec.endswith("]") and spec.count("[") == 1 and spec.count("]") == 1
            and "\\" not in spec):
        raise ValueError(f"{spec!r} is not a single character class")
    return re.compile(spec)


def escape(text: str) -> str:
    """`text` as a pattern matching itself."""
    return _decode(re2._re2.RE2.QuoteMeta(_encode(text)))


error = (regex.error, re2.error)
