"""Which sample of a tumour/normal VCF is the tumour and which the matched normal, from the header.

Somatic callers say it in one of these ways (first match wins):
- `##tumor_sample=NAME` / `##normal_sample=NAME` (GATK Mutect2 since 4.1);
- `##SAMPLE=<ID=TUMOR,SampleName=NAME>` / `<ID=NORMAL,...>` (Mutect2 before 4.1);
- `##SAMPLE=<ID=NAME,Genomes=Germline;Tumor,...>` (the VCF 4.1-4.3 specification's cancer section: a sample whose
  Genomes include Tumor is a tumour, one of Germline genomes only the normal);
- the #CHROM column names themselves, TUMOR/TUMOUR and NORMAL as a word (Strelka writes `NORMAL` and `TUMOR`;
  merged files `TUMOR.variant`); only when at least one column is a tumour, so a germline cohort with a sample
  called "Normal1" is not taken for a pair.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mappers.vcf.meta import structured

TUMOUR, NORMAL = "tumour", "normal"
_WORD = re.compile(r"(?<![A-Za-z])(tumou?r|normal)(?![A-Za-z])", re.I)

Roles = dict[str, tuple[str, str]]  # sample -> (role, the header text that says so)


def sample_roles(meta: Sequence[tuple[str, str]], samples: Sequence[str]) -> Roles:
    """The role of each sample the header places, with the header text that says so."""
    names = set(samples)
    roles: Roles = {}
    for key, value in meta:
        role = {"tumor_sample": TUMOUR, "tumour_sample": TUMOUR, "normal_sample": NORMAL}.get(key.lower())
        if role and value in names:
            roles.setdefault(value, (role, f"##{key}={value}"))
    if roles:
        return roles
    for key, value in meta:
        if key != "SAMPLE":
            continue
        attrs = structured(value)
        ident, name = attrs.get("ID", ""), attrs.get("SampleName", "")
        if ident.upper() in ("TUMOR", "NORMAL") and name in names:
            roles.setdefault(name, (TUMOUR if ident.upper() == "TUMOR" else NORMAL, f"##SAMPLE=<ID={ident},"
                                                                                    f"SampleName={name}>"))
        elif ident in names and attrs.get("Genomes"):
            genomes = {g.strip().lower() for g in attrs["Genomes"].split(";")}
            role = TUMOUR if "tumor" in genomes or "tumour" in genomes else NORMAL if genomes == {"germline"} else None
            if role:
                roles.setdefault(ident, (role, f"##SAMPLE=<ID={ident},Genomes={attrs['Genomes']}>"))
    if roles:
        return roles
    by_name: Roles = {}
    for sample in samples:
        m = _WORD.search(sample)
        if m:
            by_name[sample] = (TUMOUR if m.group(1).lower().startswith("tumo") else NORMAL,
                               f"#CHROM column name {sample}")
    return by_name if any(role == TUMOUR for role, _ in by_name.values()) else {}


def default_sample(samples: Sequence[str], roles: Roles) -> int:
    """The column converted when the caller names none: the first tumour, else the first sample."""
    return next((i for i, s in enumerate(samples) if roles.get(s, ("",))[0] == TUMOUR), 0)
