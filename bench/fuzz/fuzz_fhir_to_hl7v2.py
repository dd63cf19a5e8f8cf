"""Fuzz the FHIR → hl7v2 writer as `helixgate convert BUNDLE --to hl7v2` and `$convert?target=hl7v2` run it: FHIR
read by mappers.fhir, written by the registry's `hl7v2` from_fhir, its output checked (bench/fuzz/writers.py).

    python bench/fuzz/fuzz_fhir_to_hl7v2.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writers import main

if __name__ == "__main__":
    main("hl7v2", __doc__)
