"""Fuzz the FHIR → fhir-xml writer as `helixgate convert BUNDLE --to fhir-xml` and `$convert?target=fhir-xml` run it:
FHIR read by mappers.fhir, written by the registry's `fhir-xml` from_fhir, its output checked
(bench/fuzz/writers.py), with the Bundles of the eHDSI and phenopacket readers and the IPS examples among the seeds.
A `fhir-xml-unreadable` refusal (the writer's output does not read back) is a finding, not a refusal.

    python bench/fuzz/fuzz_fhir_to_fhir_xml.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writers import main

if __name__ == "__main__":
    main("fhir-xml", __doc__, more_seeds=True, bugs=("fhir-xml-unreadable",))
