"""The LICENSE file is the full Apache License 2.0 text that pyproject.toml declares."""

from __future__ import annotations

import hashlib
import tomllib

from tests.conftest import ROOT


def test_license_file_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert declared in ({"text": "Apache-2.0"}, "Apache-2.0")
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:3] == ["Apache", "License", "Version"] and "2.0, January 2004" in text
    # the full text: terms 1-9 and the appendix, as published (its whitespace normalised)
    assert "9. Accepting Warranty or Additional Liability." in text and "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text
    words = " ".join(text.split())
    assert hashlib.sha256(words.encode()).hexdigest() == EXPECTED


# SHA-256 of the published text with runs of whitespace made one space: the same for the copies other Apache-2.0
# projects ship (prometheus-client's, orjson's, trio's), whatever their line breaks
EXPECTED = "0ffddef9e48f8a09aed5caf2d44f7ba1c1be2d9b8e0a6f693b1635b2d5566645"
