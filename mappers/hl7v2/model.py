"""The parsed form of an HL7 v2 message: segments hold raw (escaped) field text, split lazily on access."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mappers.exceptions import Issue
from mappers.hl7v2.escape import unescape


@dataclass(frozen=True, slots=True)
class Delimiters:
    """MSH-1 and MSH-2 of a message (HL7 v2.5.1 §2.5.4)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""  # v2.7+: '#' when MSH-2 has five characters

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


DEFAULT_DELIMITERS = Delimiters()
_HEADERS = frozenset({"MSH", "FHS", "BHS"})  # SEG-1 is the field separator, SEG-2 the encoding characters


@dataclass(frozen=True, slots=True, init=False)
class Segment:
    """One segment. `fields[n]` is the raw text of SEG-n (for MSH/FHS/BHS, `fields[1]` is the field separator)."""

    name: str
    fields: tuple[str, ...]
    occurrence: int  # 1-based rank among same-named segments of the message: OBX[3]
    line: int  # 1-based line in the input
    delims: Delimiters = DEFAULT_DELIMITERS
    encoding: str = "utf-8"  # decodes hex escapes (\Xhh\)
    ref: str = field(init=False, compare=False, repr=False)  # path prefix of issue expressions: OBX[3]
    # The delimiters and the encoding as one string (dialect()): with a field's raw text, all a value read from it
    # depends on, so memos of what a coded field means key on the pair (signature).
    dialect: str = field(init=False, compare=False, repr=False)
    # Mappers read the same fields many times: what was split and read is kept, by key: n → the field's
    # repetitions, (n, rep) → a repetition's raw components, (n, comp, sub, rep) → a value read.
    _memo: dict[Any, Any] = field(init=False, compare=False, repr=False)

    def __init__(self, name: str, fields: tuple[str, ...], occurrence: int, line: int,
                 delims: Delimiters = DEFAULT_DELIMITERS, encoding: str = "utf-8", dialect: str = "") -> None:
        # A message has one Segment per line: its slots are filled directly (a frozen dataclass's generated
        # __init__ costs several times more).
        _SET_NAME(self, name)
        _SET_FIELDS(self, fields)
        _SET_OCCURRENCE(self, occurrence)
        _SET_LINE(self, line)
        _SET_DELIMS(self, delims)
        _SET_ENCODING(self, encoding)
        _SET_REF(self, f"{name}[{occurrence}]")
        _SET_DIALECT(self, dialect or dialect_of(delims, encoding))  # the parser passes its message's, made once
        _SET_MEMO(self, {})

    def raw(self, n: int) -> str:
        return self.fields[n] if n < len(self.fields) else ""

    def signature(self, n: int) -> tuple[str, str]:
        """What every value read from field n depends on: its raw text, the delimiters and the encoding. Readers
        that work out what a coded field means (vocabulary, the same on many rows and messages) key their memo
        on it."""
        return (self.fields[n] if n < len(self.fields) else "", self.dialect)

    def repetition(self, n: int, rep: int = 1) -> str:
        """The raw text of repetition `rep` of field n ("" when absent)."""
        reps = self._memo.get(n) or self._repeated(n)
        return reps[rep - 1] if rep <= len(reps) else ""

    def repetitions(self, n: int) -> list[str]:
        """Raw repetitions of field n ("" yields none)."""
        return list(self._repeated(n))

    def repetition_count(self, n: int) -> int:
        """How many repetitions field n has (0 when empty)."""
        return len(self._memo.get(n) or self._repeated(n))

    def _repeated(self, n: int) -> tuple[str, ...]:
        reps = self._memo.get(n)
        if reps is None:
            raw = self.fields[n] if n < len(self.fields) else ""
            if not raw:
                reps = ()
            elif self.name in _HEADERS and n <= 2:
                reps = (raw,)
            else:
                reps = tuple(raw.split(self.delims.repetition))
            self._memo[n] = reps
        return reps

    def components(self, n: int, rep: int = 1) -> list[str]:
        """Unescaped components of field n, repetition `rep` (subcomponents left joined by their separator)."""
        reps = self._repeated(n)
        if rep > len(reps):
            return []
        d = self.delims
        comps = self._components(n, rep)
        if d.escape not in reps[rep - 1]:
            return comps.copy()
        return [unescape(c, d, self.encoding) for c in comps]

    def _components(self, n: int, rep: int) -> list[str]:
        """The raw components of one repetition, split once for every component read."""
        memo = self._memo
        comps = memo.get((n, rep))
        if comps is None:
            reps = memo.get(n) or self._repeated(n)
            comps = memo[(n, rep)] = reps[rep - 1].split(self.delims.component) if rep <= len(reps) else []
        return comps

    def first(self, n: int) -> str:
        """get(n): the first component of field n."""
        return self.get(n)

    def get(self, n: int, comp: int = 1, sub: int = 1, rep: int = 1) -> str:
        """The unescaped text at SEG-n.comp.sub, repetition `rep`; "" when absent."""
        fields = self.fields
        raw = fields[n] if n < len(fields) else ""
        d = self.delims
        if not (d.component in raw or d.repetition in raw or d.subcomponent in raw or d.escape in raw):
            # a plain value (ID, NM, DTM…): nothing to split, nothing to remember
            return raw if comp == sub == rep == 1 or (n <= 2 and self.name in _HEADERS) else ""
        if n <= 2 and self.name in _HEADERS:
            return raw
        memo = self._memo
        key = (n, comp, sub, rep)
        value = memo.get(key)
        if value is not None:
            return value
        comps = memo.get((n, rep)) or self._components(n, rep)
        value = comps[comp - 1] if comp <= len(comps) else ""
        if d.subcomponent in value:
            subs = value.split(d.subcomponent)
            value = subs[sub - 1] if sub <= len(subs) else ""
        elif sub > 1:
            value = ""
        if d.escape in value:
            value = unescape(value, d, self.encoding)
        memo[key] = value
        return value

    def text(self, n: int, rep: int = 1) -> str:
        """Field n as one unescaped string: for ST/TX/FT values, where delimiters must not appear unescaped."""
        reps = self._repeated(n)
        return unescape(reps[rep - 1], self.delims, self.encoding) if rep <= len(reps) else ""


_SET_NAME, _SET_FIELDS, _SET_OCCURRENCE, _SET_LINE, _SET_DELIMS, _SET_ENCODING, _SET_REF, _SET_DIALECT, _SET_MEMO = (
    Segment.__dict__[k].__set__
    for k in ("name", "fields", "occurrence", "line", "delims", "encoding", "ref", "dialect", "_memo"))


class _Draft:
    """A Segment being made: the parser makes one per line, and plain slot assignments followed by a change of
    class cost a third of what filling a frozen dataclass's slots through their descriptors does."""

    __slots__ = Segment.__slots__

    def __init__(self, name: str, fields: tuple[str, ...], occurrence: int, line: int, delims: Delimiters,
                 encoding: str, dialect: str) -> None:
        self.name = name
        self.fields = fields
        self.occurrence = occurrence
        self.line = line
        self.delims = delims
        self.encoding = encoding
        self.ref = f"{name}[{occurrence}]"
        self.dialect = dialect
        self._memo: dict[Any, Any] = {}
        self.__class__ = Segment  # type: ignore[assignment]


# Segment(...) as the parser makes them, with the message's dialect (dialect_of) given: the draft class itself, as
# a function around it would cost a call per line.
segment: Callable[[str, tuple[str, ...], int, int, Delimiters, str, str], Segment] = _Draft  # type: ignore[assignment]


def dialect_of(delims: Delimiters, encoding: str) -> str:
    """Delimiters and encoding as one string, unambiguous: the truncation character's count comes first (the
    other five are always one character each), the codec name last."""
    d = delims
    return f"{len(d.truncation)}{d.field}{d.component}{d.repetition}{d.escape}{d.subcomponent}{d.truncation}{encoding}"


@dataclass(frozen=True, slots=True)
class Message:
    """One HL7 v2 message; `warnings` records what the parser had to guess (charset fallbacks)."""

    segments: tuple[Segment, ...]
    delims: Delimiters
    encoding: str  # Python codec the bytes were decoded with ("" when text was given)
    warnings: tuple[Issue, ...] = ()

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def message_type(self) -> str:
        """MSH-9 as `ORU^R01`."""
        code, event = self.msh.get(9, 1), self.msh.get(9, 2)
        return f"{code}^{event}" if event else code

    @property
    def control_id(self) -> str:
        return self.msh.get(10)

    @property
    def version(self) -> str:
        return self.msh.get(12)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    @property
    def z_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.name.startswith("Z")]


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch or file (FHS/BHS ... BTS/FTS) or a plain run of messages."""

    messages: tuple[Message, ...]
    header: tuple[Segment, ...] = field(default=())
    trailer: tuple[Segment, ...] = field(default=())
    warnings: tuple[Issue, ...] = field(default=())
