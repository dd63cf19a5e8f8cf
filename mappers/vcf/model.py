"""Parsed VCF: the header, and records with the chosen sample's call. Fields stay text until a mapper asks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Contig:
    name: str  # as the header spells it (chr7, 7)
    length: int | None
    assembly: str | None  # the contig line's assembly= attribute, verbatim


@dataclass(frozen=True, slots=True)
class Header:
    """The meta-information lines and the #CHROM line of a VCF."""

    version: str  # "4.2"
    meta: tuple[tuple[str, str], ...]  # (key, value) of every ## line, in order
    contigs: dict[str, Contig]  # by normalised name (7, X, MT, or the contig's own name)
    formats: dict[str, str]  # FORMAT id -> Number
    samples: tuple[str, ...]
    sample: str | None  # the sample whose calls are converted
    sample_index: int  # its column, counted from the first sample
    chrom_line: int  # line number of #CHROM
    assembly: str | None  # GRCh37 | GRCh38 as the header states it (see reference.assembly_from_*)
    assembly_evidence: str  # which header line said so, for the conversion report
    roles: dict[str, tuple[str, str]] = field(default_factory=dict)  # sample -> (tumour|normal, evidence): roles.py

    @property
    def role(self) -> str | None:
        """The converted sample's role (tumour | normal) when the header places it in a tumour/normal pair."""
        return self.roles[self.sample][0] if self.sample in self.roles else None

    def values(self, key: str) -> list[str]:
        return [v for k, v in self.meta if k == key]


@dataclass(slots=True)
class Record:
    """One data line. `chrom` is normalised; `fmt`/`call` are the FORMAT keys and the chosen sample's values."""

    line: int | None  # 1-based line number; None when read through an index
    chrom_raw: str
    chrom: str
    pos: int
    id: str
    ref: str
    alts: list[str]
    qual: str
    filter: str
    info_raw: str
    fmt: list[str]
    call: list[str]
    end: int | None = None  # INFO END where it places the record (symbolic alleles, reference blocks)
    end_ignored: int | None = None  # INFO END that disagrees with REF on a sequence allele: REF decides (parse.py)
    _info: dict[str, str] | None = field(default=None, repr=False)
    _call: dict[str, str] | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else f"record {self.chrom_raw}:{self.pos}"

    @property
    def info(self) -> dict[str, str]:
        """INFO as key -> value text ('' for flags)."""
        if self._info is None:
            out: dict[str, str] = {}
            if self.info_raw not in (".", ""):
                for item in self.info_raw.split(";"):
                    if item:
                        k, _, v = item.partition("=")
                        out[k] = v
            self._info = out
        return self._info

    def sample(self, key: str) -> str | None:
        """The chosen sample's FORMAT `key` value, None when absent or '.' (trailing values may be dropped)."""
        if self._call is None:
            self._call = dict(zip(self.fmt, self.call, strict=False))
        v = self._call.get(key)
        return None if v in (".", "") else v


@dataclass(frozen=True, slots=True)
class Genotype:
    alleles: tuple[int | None, ...]  # allele indexes; None for '.'
    phased: bool
    text: str

    @property
    def called(self) -> bool:
        return any(a is not None for a in self.alleles)
