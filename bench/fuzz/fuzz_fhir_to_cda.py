"""Fuzz the FHIR → cda-cn writer as `helixgate convert BUNDLE --to cda-cn` and `$convert?target=cda-cn` run it: FHIR
read by mappers.fhir, written by the registry's `cda-cn` from_fhir, its output checked (bench/fuzz/writers.py).

    python bench/fuzz/fuzz_fhir_to_cda.py --count 1000000 --seconds 7200 [--out /tmp/helixgate-fuzz]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from writers import main

if __name__ == "__main__":
    main("cda-cn", __doc__)
