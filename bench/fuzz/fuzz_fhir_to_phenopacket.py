"""Fuzz the FHIR → phenopacket writer as `helixgate convert BUNDLE --to phenopacket` and `$convert?target=phenopacket`
run it: FHIR read by mappers.fhir, written by the registry's `phenopacket` from_fhir, its output checked
(bench/fuzz/writers.py), with the Bundles of the eHDSI and phenopacket readers and the IPS examples among the seeds.
Output that does not read back with the official schema (`phenopacket-invalid-output`, a 422) is a declared refusal
here: mutated Bundles carry values the schema rightly refuses; the seeds that give it are printed at the start (they
are valid FHIR).

    python bench/fuzz/fuzz_fhir_to_phenopacket.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writers import main

if __name__ == "__main__":
    main("phenopacket", __doc__, more_seeds=True)
