"""Write docs/openapi.json: the OpenAPI document GET /openapi.json serves (gateway/openapi.py).

    python scripts/openapi.py           # write it
    python scripts/openapi.py --check   # exit 1 when the committed file differs from what the gateway serves
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.openapi import rendered  # noqa: E402

TARGET = ROOT / "docs" / "openapi.json"


def main(argv: list[str]) -> int:
    text = rendered()
    if "--check" in argv:
        same = TARGET.exists() and TARGET.read_bytes() == text
        print("docs/openapi.json is up to date" if same else "docs/openapi.json differs: run python scripts/openapi.py")
        return 0 if same else 1
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_bytes(text)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
