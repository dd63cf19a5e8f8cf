"""VCF 4.1-4.3 text → Header and Records, streaming: lines are read one at a time and never all kept.

Input is an iterable of byte chunks (any size; gzip/BGZF is recognised by its magic and decompressed on the
fly), so a caller can hand over a file read 1 MiB at a time, an HTTP body, or lines from an index query.
Every error names its line: ParseError(expression="line N").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.vcf import reference
from mappers.vcf.bgzf import decompress, is_gzip
from mappers.vcf.model import Contig, Genotype, Header, Record

COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
VERSIONS = ("4.1", "4.2", "4.3")
TOLERATED_VERSIONS = ("4.0", "4.4", "4.5")  # read the same way, with a warning
_REF = re.compile(r"[ACGTNRYKMSWBDHV]+", re.I)  # VCF 4.1 allowed IUPAC codes in REF; htslib still does
_BASES = re.compile(r"[ACGTN]+", re.I)
_ATTR = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^,]*)')
_GT_SPLIT = re.compile(r"[/|]")


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (without terminator; CRLF tolerated) of plain or gzipped VCF bytes given in chunks."""
    it = iter(chunks)
    first = b""
    for first in it:
        if first:
            break
    if not first:
        return
    source: Iterable[bytes] = _chain(first, it)
    if is_gzip(first):
        source = decompress(source)
    rest = b""
    for chunk in source:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if rest:
        yield rest[:-1] if rest.endswith(b"\r") else rest


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ParseError(f"{where} is not UTF-8 text (byte {e.start + 1}); VCF is UTF-8 (4.3) or ASCII",
                         details="vcf-not-utf8", expression=where) from None


def structured(value: str) -> dict[str, str]:
    """Attributes of a structured meta value `<ID=1,length=249250621,Description="...">`."""
    inner = value[1:-1] if value.startswith("<") and value.endswith(">") else value
    return {k: v[1:-1] if v.startswith('"') else v for k, v in _ATTR.findall(inner)}


def read_header(lines: Iterator[bytes], sample: str | None) -> Header:
    """Consume the header lines (through #CHROM) of `lines` and pick the sample to convert.

    Raises ParseError (not a VCF, no #CHROM line, bad columns, unknown sample) and UnsupportedMessage (no
    sample columns)."""
    meta: list[tuple[str, str]] = []
    contigs: dict[str, Contig] = {}
    formats: dict[str, str] = {}
    n = 0
    for n, raw in enumerate(lines, 1):
        where = f"line {n}"
        line = _text(raw, where)
        if n == 1 and not line.startswith("##fileformat=VCFv"):
            shown = line[:40] + ("…" if len(line) > 40 else "")
            raise ParseError(f"not a VCF file: line 1 must be ##fileformat=VCFv4.x, found {shown!r}",
                             details="vcf-not-vcf", expression=where)
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
                    name, int(length) if length.isdigit() else None, attrs.get("assembly"))
            elif key == "FORMAT":
                attrs = structured(value)
                if "ID" in attrs:
                    formats[attrs["ID"]] = attrs.get("Number", ".")
            continue
        if line.startswith("#CHROM") or line.startswith("#"):
            return _chrom_line(line, n, meta, contigs, formats, sample)
        raise ParseError("a data line comes before the #CHROM header line", details="vcf-no-chrom-line",
                         expression=where)
    if n == 0:
        raise ParseError("the input is empty", details="vcf-empty", expression="line 1")
    raise ParseError(f"the header ends without a #CHROM line after line {n}: the file is truncated",
                     details="vcf-truncated", expression=f"line {n + 1}")


def _chrom_line(line: str, n: int, meta: list[tuple[str, str]], contigs: dict[str, Contig],
                formats: dict[str, str], sample: str | None) -> Header:
    where = f"line {n}"
    cols = line.split("\t")
    if len(cols) < 8 or tuple(cols[:8]) != COLUMNS:
        hint = " (columns must be separated by tabs)" if "\t" not in line else ""
        raise ParseError(f"the #CHROM line must start with {' '.join(COLUMNS)}{hint}; found {line[:80]!r}",
                         details="vcf-bad-columns", expression=where)
    if len(cols) > 8 and cols[8] != "FORMAT":
        raise ParseError(f"column 9 of the #CHROM line must be FORMAT, not {cols[8]!r}",
                         details="vcf-bad-columns", expression=where)
    samples = tuple(cols[9:])
    if len(set(samples)) != len(samples):
        raise ParseError("the #CHROM line names a sample twice", details="vcf-bad-columns", expression=where)
    version = meta[0][1][len("VCFv"):] if meta and meta[0][0] == "fileformat" else ""
    if version not in VERSIONS + TOLERATED_VERSIONS:
        raise ParseError(f"VCF version {version!r} is not supported (4.1-4.3)", details="vcf-version",
                         expression="line 1")
    if not samples:
        raise UnsupportedMessage("the VCF has no sample columns (sites only); helixgate converts the calls of "
                                 "one sample", details="vcf-no-samples", expression=where)
    if sample is None:
        index = 0
    elif sample in samples:
        index = samples.index(sample)
    else:
        listed = ", ".join(samples[:10]) + (", …" if len(samples) > 10 else "")
        raise ParseError(f"sample {sample!r} is not in the VCF; the #CHROM line (line {n}) names: {listed}",
                         details="vcf-sample-not-found", expression=where)
    assembly, evidence = _assembly(meta, contigs)
    return Header(version, tuple(meta), contigs, formats, samples, samples[index], index, n, assembly, evidence)


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
    f = line.split("\t")
    where = f"line {number}" if number is not None else None
    if len(f) != ncols:
        hint = " (columns must be separated by tabs)" if len(f) == 1 and " " in line else ""
        raise ParseError(f"the record has {len(f)} columns but the #CHROM line declares {ncols}{hint}",
                         details="vcf-wrong-columns", expression=where or _where(f))
    chrom_raw, pos_text, ref = f[0], f[1], f[3]
    where = where or f"record {chrom_raw}:{pos_text}"
    if not chrom_raw:
        raise ParseError("CHROM is empty", details="vcf-bad-chrom", expression=where)
    chrom = reference.normalise_chrom(chrom_raw)
    if header.contigs and chrom not in header.contigs:
        raise ParseError(f"contig {chrom_raw!r} is not declared by a ##contig line of the header",
                         details="vcf-unknown-contig", expression=where)
    try:
        pos = int(pos_text)
    except ValueError:
        raise ParseError(f"POS {pos_text!r} is not an integer", details="vcf-bad-pos", expression=where) from None
    if pos < 0:
        raise ParseError(f"POS {pos} is negative", details="vcf-bad-pos", expression=where)
    if not _REF.fullmatch(ref):
        raise ParseError(f"REF {ref!r} is not a sequence of bases (A, C, G, T, N)", details="vcf-bad-ref",
                         expression=where)
    alts = f[4].split(",")
    for alt in alts:
        if not (_BASES.fullmatch(alt) or alt in ("*", ".") or (alt.startswith("<") and alt.endswith(">"))
                or "[" in alt or "]" in alt):
            raise ParseError(f"ALT allele {alt!r} is neither bases, a symbolic <ID>, '*', '.' nor a breakend",
                             details="vcf-bad-alt", expression=where)
    if "." in alts and len(alts) > 1:
        raise ParseError("ALT '.' (no alternate allele) cannot be listed with other alleles",
                         details="vcf-bad-alt", expression=where)
    fmt = f[8].split(":") if ncols > 8 else []
    call = f[9 + header.sample_index].split(":") if ncols > 9 else []
    if len(call) > len(fmt):
        raise ParseError(f"the sample column has {len(call)} values but FORMAT {f[8]!r} names {len(fmt)}",
                         details="vcf-bad-sample", expression=where)
    rec = Record(number, chrom_raw, chrom, pos, f[2], ref, alts, f[5], f[6], f[7], fmt, call)
    if "END=" in rec.info_raw:
        _check_end(rec, where)
    return rec


def _where(f: list[str]) -> str:
    return f"record {f[0]}:{f[1]}" if len(f) > 1 else "record"


def symbolic(alt: str) -> bool:
    return alt.startswith("<")


def _check_end(rec: Record, where: str) -> None:
    """INFO END is the last base the record covers: POS+len(REF)-1 unless an allele is symbolic."""
    text = rec.info.get("END")
    if text is None:
        return
    try:
        end = int(text)
    except ValueError:
        raise ParseError(f"INFO END {text!r} is not an integer", details="vcf-bad-end", expression=where) from None
    if end < rec.pos:
        raise ParseError(f"INFO END={end} is before POS {rec.pos}", details="vcf-bad-end", expression=where)
    if not any(symbolic(a) for a in rec.alts) and end != rec.pos + len(rec.ref) - 1:
        raise ParseError(f"REF {_short(rec.ref)} is {len(rec.ref)} bases long, so the record ends at "
                         f"{rec.pos + len(rec.ref) - 1}, but INFO END={end}",
                         details="vcf-ref-length-mismatch", expression=where)


def _short(seq: str) -> str:
    return repr(seq) if len(seq) <= 12 else repr(seq[:10] + "…")


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
        if not part.isdigit():
            raise ParseError(f"GT {text!r} is not a genotype (allele indexes separated by / or |)",
                             details="vcf-bad-gt", expression=rec.where)
        idx = int(part)
        if idx > len(rec.alts):
            raise ParseError(f"GT {text!r} names allele {idx} but ALT lists {len(rec.alts)}",
                             details="vcf-bad-gt", expression=rec.where)
        alleles.append(idx)
    return Genotype(tuple(alleles), "|" in text, text)


def numbers(text: str | None) -> list[float | None] | None:
    """A comma-separated numeric FORMAT value ('17,31', '0.5,.'); None when absent or unreadable."""
    if text is None:
        return None
    out: list[float | None] = []
    for part in text.split(","):
        if part == ".":
            out.append(None)
            continue
        try:
            out.append(float(part))
        except ValueError:
            return None
    return out
