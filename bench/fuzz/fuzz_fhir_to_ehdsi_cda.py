"""Fuzz the FHIR → ehdsi-cda writer as `helixgate convert BUNDLE --to ehdsi-cda` and `$convert?target=ehdsi-cda` run it:
FHIR read by mappers.fhir, written by the registry's `ehdsi-cda` from_fhir, its output checked
(bench/fuzz/writers.py), with the Bundles of the eHDSI and phenopacket readers and the IPS examples among the seeds.
Output the check cannot parse (`cda-not-well-formed`, `cda-encoding`, `ehdsi-not-cda`: the writer's fault) is a
finding, not a refusal.

    python bench/fuzz/fuzz_fhir_to_ehdsi_cda.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writers import main

if __name__ == "__main__":
    main("ehdsi-cda", __doc__, more_seeds=True, bugs=("cda-not-well-formed", "cda-encoding", "ehdsi-not-cda"))
