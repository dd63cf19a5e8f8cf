"""Facts read straight from a VCF or BED file, independently of mappers.vcf, for tests to compare against."""

from __future__ import annotations

import gc
import gzip
from dataclasses import dataclass
from pathlib import Path

from tests import corpora

DATA = Path(__file__).parent / "data"


def vcf_file(name: str) -> Path:
    """A file of the third-party vcf corpus; skips the test (fails it under CI=true) when the corpus is missing."""
    return corpora.corpus("vcf") / name


def corpus_vcfs() -> list:
    """parametrize values: the name of every VCF of the corpus (a placeholder case naming it when missing)."""
    return corpora.params("vcf", lambda d: sorted(p.name for p in d.glob("*.vcf*") if not p.name.endswith(".tbi")))


@dataclass
class Rec:
    line: int
    chrom: str
    pos: int
    id: str
    ref: str
    alts: list[str]
    filter: str
    info: dict[str, str]
    sample: dict[str, str]

    @property
    def norm(self) -> str:
        return norm(self.chrom)

    @property
    def gt(self) -> list[int | None]:
        text = self.sample.get("GT", ".")
        return [None if a == "." else int(a) for a in text.replace("|", "/").split("/")]


def norm(chrom: str) -> str:
    c = chrom[3:] if chrom.lower().startswith("chr") else chrom
    c = c.upper()
    return "MT" if c in ("M", "MT") else c


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()


def records(path: Path | str, sample: int = 0) -> list[Rec]:
    """Every data line; `path` is a file or the VCF text itself."""
    enabled = gc.isenabled()
    gc.disable()  # tests keep large Bundles alive; without this, GC passes over them dominate
    try:
        return _records(path, sample)
    finally:
        if enabled:
            gc.enable()


def _records(path: Path | str, sample: int) -> list[Rec]:
    text = read_text(Path(path)) if isinstance(path, Path) else path
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        info = dict(([*kv.split("=", 1), ""])[:2] for kv in f[7].split(";") if kv and kv != ".")
        keys = f[8].split(":") if len(f) > 8 else []
        vals = f[9 + sample].split(":") if len(f) > 9 else []
        sample_values = dict(zip(keys, vals, strict=False))
        out.append(Rec(n, f[0], int(f[1]), f[2], f[3], f[4].split(","), f[6], info, sample_values))
    return out


def bed(path: Path) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for line in path.read_text().splitlines():
        cols = line.split()
        if len(cols) >= 3 and not line.startswith(("#", "track", "browser")):
            out.setdefault(norm(cols[0]), []).append((int(cols[1]), int(cols[2])))
    return out


def overlaps(regions: dict[str, list[tuple[int, int]]], chrom: str, start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in regions.get(norm(chrom), []))


def called_alleles(rec: Rec) -> list[int]:
    """ALT indexes the sample carries (the variants a converter should emit, before allele-kind rules)."""
    return sorted({a for a in rec.gt if a})


def simple_convertible(rec: Rec) -> bool:
    """A PASS (or '.') record with a called, non-reference GT and only plain sequence ALTs."""
    return (rec.filter in ("PASS", ".") and bool(called_alleles(rec))
            and all(set(rec.alts[a - 1].upper()) <= set("ACGTN") for a in called_alleles(rec)))


def resources(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]]


def variants(bundle: dict) -> list[dict]:
    return [r for r in resources(bundle) if r["resourceType"] == "Observation"
            and r["code"]["coding"][0]["code"] == "69548-6"]


def component(obs: dict, code: str) -> dict | None:
    return next((c for c in obs.get("component", []) if c["code"]["coding"][0]["code"] == code), None)


def value(obs: dict, code: str) -> object:
    """The value of the component with `code` (LOINC or urn:helixgate:vcf): string, Range, code, or quantity."""
    c = component(obs, code)
    if c is None:
        return None
    if "valueString" in c:
        return c["valueString"]
    if "valueInteger" in c:
        return c["valueInteger"]
    if "valueRange" in c:
        return (c["valueRange"]["low"]["value"], c["valueRange"]["high"]["value"])
    if "valueQuantity" in c:
        return c["valueQuantity"]["value"]
    cc = c["valueCodeableConcept"]
    return cc["coding"][0]["code"] if cc.get("coding") else cc.get("text")


def location(obs: dict) -> tuple[int, int, str, str | None]:
    """(0-based start, end, REF, ALT) of a sequence variant."""
    start, end = value(obs, "81254-5")  # type: ignore[misc]
    return start, end, value(obs, "69547-8"), value(obs, "69551-0")  # type: ignore[return-value]
