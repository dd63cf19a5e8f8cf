"""VCF 4.0-4.3 text → Header and Records, streaming: lines are read one at a time and never all kept.

Input is an iterable of byte chunks (any size; gzip/BGZF is recognised by its magic and decompressed on the
fly), so a caller can hand over a file read 1 MiB at a time, an HTTP body, or lines from an index query.
Every error names its line: ParseError(expression="line N"). Lines, the header and gzip output are capped
(Options.max_*): hostile input ends in a ParseError naming the limit, never in unbounded memory.

Versions: 4.1, 4.2 and 4.3 are read as specified; 4.0 is read as 4.1 (4.1 only added to it: ##contig,
breakends, ##SAMPLE). Any other ##fileformat — 4.4 and 4.5 included — is refused at line 1, before anything is
emitted: 4.4 redefined END and SVLEN for symbolic structural variants (END is derived from SVLEN) and added
local-allele FORMAT fields (LAA, LGT, LAD, LPL) and an explicit phasing prefix on GT, which a 4.3 reader would
silently misplace or misread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mappers.exceptions import LimitExceeded, ParseError, UnsupportedMessage
from mappers.vcf import reference
from mappers.vcf.bgzf import decompress, is_gzip
from mappers.vcf.context import Options
from mappers.vcf.meta import structured
from mappers.vcf.model import Contig, Genotype, Header, Record
from mappers.vcf.roles import default_sample, sample_roles

__all__ = ["genotype", "integers", "iter_lines", "parse_record", "read_header", "reals", "structured", "symbolic"]

COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
VERSIONS = ("4.0", "4.1", "4.2", "4.3")
INT32 = 2**31 - 1  # VCF Integer values (POS, END, counts) are 32-bit signed (VCF 4.3 §1.3)
_DEFAULTS = Options()
_SLICE = 1 << 20
_REF = re.compile(r"[ACGTNRYKMSWBDHV]+", re.I)  # VCF 4.1 allowed IUPAC codes in REF; htslib still does
_BASES = re.compile(r"[ACGTN]+", re.I)
_INT = re.compile(r"[+-]?[0-9]{1,12}")
_REAL = re.compile(r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,4})?")
_GT_SPLIT = re.compile(r"[/|]")


def iter_lines(chunks: Iterable[bytes], options: Options | None = None) -> Iterator[bytes]:
    """Lines (without terminator; CRLF tolerated) of plain or gzipped VCF bytes given in chunks.

    Raises ParseError past options.max_line_bytes (and the gzip limits, see bgzf.decompress)."""
    opts = options or _DEFAULTS
    limit = opts.max_line_bytes
    it = iter(chunks)
    first = b""
    for first in it:
        if first:
            break
    if not first:
        return
    source: Iterable[bytes] = _chain(first, it)
    if is_gzip(first):
        source = decompress(source, opts.max_decompressed_bytes, opts.max_compression_ratio)
    rest = b""
    n = 0
    for chunk in source:
        # A large chunk (a whole HTTP body) is split a slice at a time: a body of tiny lines would otherwise become
        # millions of line objects at once.
        for start in range(0, len(chunk), _SLICE):
            lines = (rest + chunk[start:start + _SLICE]).split(b"\n")
            rest = lines.pop()
            for line in lines:
                n += 1
                if len(line) > limit:
                    _too_long(n, limit)
                yield line[:-1] if line.endswith(b"\r") else line
            if len(rest) > limit:
                _too_long(n + 1, limit)
    if rest:
        yield rest[:-1] if rest.endswith(b"\r") else rest


def _too_long(n: int, limit: int) -> None:
    raise LimitExceeded(f"line {n} is longer than {limit:,} bytes (limit max_line_bytes)", details="vcf-line-too-long",
                        expression=f"line {n}")


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParseError(f"{where} is not UTF-8 text (byte {e.start + 1}); VCF is UTF-8 (4.3) or ASCII",
                         details="vcf-not-utf8", expression=where) from None


def _version(line: str) -> str:
    """The version line 1 declares; refuses a file that is not VCF or of a version this reader does not read."""
    if not line.startswith("##fileformat=VCFv"):
        shown = line[:40] + ("…" if len(line) > 40 else "")
        raise ParseError(f"not a VCF file: line 1 must be ##fileformat=VCFv4.x, found {shown!r}",
                         details="vcf-not-vcf", expression="line 1")
    version = line[len("##fileformat=VCFv"):].strip()
    if version not in VERSIONS:
        shown = version[:20] + ("…" if len(version) > 20 else "")
        why = (": 4.4 redefined END and SVLEN of structural variants and added local-allele fields (LAA, LGT, "
               "LAD) and GT phasing prefixes, which would be misread; write the calls as VCF 4.2 or 4.3"
               if re.fullmatch(r"4\.[4-9]", version) else "")
        raise UnsupportedMessage(f"VCF version {shown!r} is not supported (helixgate reads 4.0-4.3){why}",
                                 details="vcf-version", expression="line 1")
    return version


def read_header(lines: Iterator[bytes], sample: str | None, options: Options | None = None) -> Header:
    """Consume the header lines (through #CHROM) of `lines` and pick the sample to convert: `sample`, else the
    tumour of a tumour/normal pair (roles.py), else the first.

    Raises ParseError (not a VCF, no #CHROM line, bad columns, unknown sample), LimitExceeded (a header or sample
    count past the options' limits) and UnsupportedMessage (a VCF version not read, no sample columns)."""
    opts = options or _DEFAULTS
    max_bytes, max_lines = opts.max_header_bytes, opts.max_header_lines
    meta: list[tuple[str, str]] = []
    contigs: dict[str, Contig] = {}
    formats: dict[str, str] = {}
    version = ""
    size = 0
    n = 0
    for n, raw in enumerate(lines, 1):
        where = f"line {n}"
        size += len(raw) + 1
        if size > max_bytes or n > max_lines:
            limit = (f"{max_bytes:,} bytes (limit max_header_bytes)" if size > max_bytes else
                     f"{max_lines:,} lines (limit max_header_lines)")
            raise LimitExceeded(f"the header is longer than {limit}", details="vcf-header-too-long", expression=where)
        line = _text(raw, where)
        if n == 1:
            version = _version(line)
        if line.startswith("##"):
            key, _, value = line[2:].partition("=")
            meta.append((key, value))
            if key == "contig":
                attrs = structured(value)
                name = attrs.get("ID")
                if not name:
                    raise ParseError("##contig line has no ID", details="vcf-bad-header", expression=where)
                length = attrs.get("length", "")
                contigs[reference.normalise_chrom(name)] = Contig(
                    name, int(length) if _INT.fullmatch(length) else None, attrs.get("assembly"))
            elif key == "FORMAT":
                attrs = structured(value)
                if "ID" in attrs:
                    formats[attrs["ID"]] = attrs.get("Number", ".")
            continue
        if line.startswith("#"):
            return _chrom_line(line, n, version, meta, contigs, formats, sample, opts.max_samples)
        raise ParseError("a data line comes before the #CHROM header line", details="vcf-no-chrom-line",
                         expression=where)
    if n == 0:
        raise ParseError("the input is empty", details="vcf-empty", expression="line 1")
    raise ParseError(f"the header ends without a #CHROM line after line {n}: the file is truncated",
                     details="vcf-truncated", expression=f"line {n + 1}")


def _chrom_line(line: str, n: int, version: str, meta: list[tuple[str, str]], contigs: dict[str, Contig],
                formats: dict[str, str], sample: str | None, max_samples: int) -> Header:
    where = f"line {n}"
    if line.count("\t") - 8 > max_samples:
        raise LimitExceeded(f"the #CHROM line names {line.count(chr(9)) - 8:,} samples, more than {max_samples:,} "
                            "(limit max_samples)", details="vcf-too-many-samples", expression=where)
    cols = line.split("\t")
    if len(cols) < 8 or tuple(cols[:8]) != COLUMNS:
        hint = " (columns must be separated by tabs)" if "\t" not in line else ""
        raise ParseError(f"the #CHROM line must start with {' '.join(COLUMNS)}{hint}; found {line[:80]!r}",
                         details="vcf-bad-columns", expression=where)
    if len(cols) > 8 and cols[8] != "FORMAT":
        raise ParseError(f"column 9 of the #CHROM line must be FORMAT, not {cols[8][:40]!r}",
                         details="vcf-bad-columns", expression=where)
    samples = tuple(cols[9:])
    if len(set(samples)) != len(samples):
        raise ParseError("the #CHROM line names a sample twice", details="vcf-bad-columns", expression=where)
    if not samples:
        raise UnsupportedMessage("the VCF has no sample columns (sites only); helixgate converts the calls of "
                                 "one sample", details="vcf-no-samples", expression=where)
    roles = sample_roles(meta, samples)
    if sample is None:
        index = default_sample(samples, roles)
    elif sample in samples:
        index = samples.index(sample)
    else:
        listed = ", ".join(s[:40] for s in samples[:10]) + (", …" if len(samples) > 10 else "")
        raise ParseError(f"sample {sample[:40]!r} is not in the VCF; the #CHROM line (line {n}) names: {listed}",
                         details="vcf-sample-not-found", expression=where)
    assembly, evidence = _assembly(meta, contigs)
    return Header(version, tuple(meta), contigs, formats, samples, samples[index], index, n, assembly, evidence,
                  roles)


def _assembly(meta: list[tuple[str, str]], contigs: dict[str, Contig]) -> tuple[str | None, str]:
    """The assembly the header states: ##reference/##assembly, then contig assembly=, then other
    reference-naming lines, then contig lengths."""
    for key, value in meta:
        if key in ("reference", "assembly"):
            asm = reference.assembly_from_name(value)
            if asm:
                return asm, f"##{key}={value}"
    for c in contigs.values():
        if c.assembly:
            asm = reference.assembly_from_name(c.assembly)
            if asm:
                return asm, f"##contig=<ID={c.name},assembly={c.assembly}>"
    for key, value in meta:
        if "reference" in key.lower() and key not in ("reference", "assembly"):
            asm = reference.assembly_from_name(value)
            if asm:
                return asm, f"##{key}={value}"
    lengths = {chrom: c.length for chrom, c in contigs.items() if c.length}
    asm = reference.assembly_from_lengths(lengths)
    if asm:
        return asm, "##contig lengths"
    return None, ""


def parse_record(line: str, number: int | None, header: Header, ncols: int) -> Record:
    """One data line → Record, checking what the mappers rely on. Raises ParseError naming the line."""
    where = f"line {number}" if number is not None else None
    tabs = line.count("\t")
    # Split no further than the converted sample: the other samples' columns are never read.
    f = line.split("\t", min(tabs, 10 + header.sample_index))
    if tabs + 1 != ncols:
        hint = " (columns must be separated by tabs)" if tabs == 0 and " " in line else ""
        raise ParseError(f"the record has {tabs + 1} columns but the #CHROM line declares {ncols}{hint}",
                         details="vcf-wrong-columns", expression=where or _where(f))
    chrom_raw, pos_text, ref = f[0], f[1], f[3]
    where = where or f"record {chrom_raw[:40]}:{pos_text[:12]}"
    if not chrom_raw:
        raise ParseError("CHROM is empty", details="vcf-bad-chrom", expression=where)
    chrom = reference.normalise_chrom(chrom_raw)
    if header.contigs and chrom not in header.contigs:
        raise ParseError(f"contig {_short(chrom_raw)} is not declared by a ##contig line of the header",
                         details="vcf-unknown-contig", expression=where)
    if not _INT.fullmatch(pos_text) or not 0 <= int(pos_text) <= INT32:
        raise ParseError(f"POS {_short(pos_text)} is not an integer from 0 to 2^31-1", details="vcf-bad-pos",
                         expression=where)
    pos = int(pos_text)
    if not _REF.fullmatch(ref):
        raise ParseError(f"REF {_short(ref)} is not a sequence of bases (A, C, G, T, N)", details="vcf-bad-ref",
                         expression=where)
    alts = f[4].split(",")
    for alt in alts:
        if not (_BASES.fullmatch(alt) or alt in ("*", ".") or (alt.startswith("<") and alt.endswith(">"))
                or "[" in alt or "]" in alt):
            raise ParseError(f"ALT allele {_short(alt)} is neither bases, a symbolic <ID>, '*', '.' nor a breakend",
                             details="vcf-bad-alt", expression=where)
    if "." in alts and len(alts) > 1:
        raise ParseError("ALT '.' (no alternate allele) cannot be listed with other alleles",
                         details="vcf-bad-alt", expression=where)
    fmt = f[8].split(":") if ncols > 8 else []
    call = f[9 + header.sample_index].split(":") if ncols > 9 else []
    if len(call) > len(fmt):
        raise ParseError(f"the sample column has {len(call)} values but FORMAT {_short(f[8])} names {len(fmt)}",
                         details="vcf-bad-sample", expression=where)
    rec = Record(number, chrom_raw, chrom, pos, f[2], ref, alts, f[5], f[6], f[7], fmt, call)
    if "END=" in rec.info_raw:
        _place_end(rec, where)
    return rec


def _where(f: list[str]) -> str:
    return f"record {f[0][:40]}:{f[1][:12]}" if len(f) > 1 else "record"


def symbolic(alt: str) -> bool:
    return alt.startswith("<")


def _place_end(rec: Record, where: str) -> None:
    """INFO END. VCF 4.1-4.3 (§1.6.1, reserved INFO keys) define it "for use with symbolic alleles": it places
    a symbolic allele's record, and a gVCF reference block's (ALT `.` or <NON_REF>/<*>: the gVCF conventions of
    Illumina's gvcftools and GATK). A record of sequence alleles spans POS..POS+len(REF)-1 whatever END says
    (VCF 4.4 §1.6.1 makes that explicit), so a disagreeing END there is set aside (rec.end_ignored, reported
    by the mapper) rather than the record refused: the VCF 4.1 specification's own SV example has one."""
    text = rec.info.get("END")
    if text is None:
        return
    if not _INT.fullmatch(text) or not 0 <= int(text) <= INT32:
        raise ParseError(f"INFO END {_short(text)} is not an integer from 0 to 2^31-1", details="vcf-bad-end",
                         expression=where)
    end = int(text)
    sequence = all(_BASES.fullmatch(a) or a == "*" for a in rec.alts)
    if sequence:
        if end != rec.pos + len(rec.ref) - 1:
            rec.end_ignored = end
        return
    if end < rec.pos:
        raise ParseError(f"INFO END={end} is before POS {rec.pos}", details="vcf-bad-end", expression=where)
    rec.end = end


def _short(text: str) -> str:
    return repr(text) if len(text) <= 12 else repr(text[:10] + "…")


def genotype(rec: Record) -> Genotype | None:
    """The sample's GT, or None when FORMAT has no GT. Raises ParseError for an unreadable GT or an allele
    index beyond ALT."""
    if not rec.fmt or rec.fmt[0] != "GT" or not rec.call:
        if "GT" in rec.fmt[1:]:  # the spec puts GT first; be forgiving when it is not
            text = rec.sample("GT")
        else:
            return None
    else:
        text = rec.call[0]
    if text is None:
        return Genotype((None,), False, ".")
    alleles: list[int | None] = []
    for part in _GT_SPLIT.split(text):
        if part == ".":
            alleles.append(None)
            continue
        if not (part.isascii() and part.isdigit()):
            raise ParseError(f"GT {_short(text)} is not a genotype (allele indexes separated by / or |)",
                             details="vcf-bad-gt", expression=rec.where)
        idx = int(part) if len(part) <= 12 else INT32 + 1
        if idx > len(rec.alts):
            raise ParseError(f"GT {_short(text)} names allele {part[:12]} but ALT lists {len(rec.alts)}",
                             details="vcf-bad-gt", expression=rec.where)
        alleles.append(idx)
    return Genotype(tuple(alleles), "|" in text, text)


def integers(rec: Record, key: str) -> list[int | None] | None:
    """The sample's FORMAT `key` as counts ('17,31', '5,.'): None when absent. Raises ParseError naming the
    field when a value is not an Integer of VCF's range (0..2^31-1 for counts): such a value cannot be carried."""
    text = rec.sample(key)
    if text is None:
        return None
    out: list[int | None] = []
    for part in text.split(","):
        if part == ".":
            out.append(None)
        elif _INT.fullmatch(part) and 0 <= int(part) <= INT32:
            out.append(int(part))
        else:
            raise ParseError(f"FORMAT {key} {_short(text)} is not a count (an integer from 0 to 2^31-1)",
                             details="vcf-bad-number", expression=rec.where)
    return out


def reals(rec: Record, key: str, high: float = INT32) -> list[float | None] | None:
    """The sample's FORMAT `key` as finite numbers from 0 to `high` (fractions: 1); None when absent. Raises
    ParseError naming the field for anything else (1e309, nan, -1)."""
    text = rec.sample(key)
    if text is None:
        return None
    out: list[float | None] = []
    for part in text.split(","):
        if part == ".":
            out.append(None)
            continue
        value = float(part) if _REAL.fullmatch(part) else -1.0
        if not 0 <= value <= high:  # also false for nan; inf is above high
            raise ParseError(f"FORMAT {key} {_short(text)} is not a number from 0 to "
                             f"{'2^31-1' if high == INT32 else f'{high:g}'}",
                             details="vcf-bad-number", expression=rec.where)
        out.append(value)
    return out
