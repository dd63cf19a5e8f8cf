"""Worst-case inputs for every regular expression in the gateway package (used by tests/gateway/test_patterns.py,
through tests/patterns_support.py, which says what the tables hold).

Most are applied to what clients send (tokens, scopes, API keys, FHIR paths, patch paths, exchange bundles, HL7 v2
messages); the rest to configuration (rate limits, hosts, keys' durations, the config file) or to the gateway's own
output (OpenAPI paths, log lines). All are here, so a new pattern anywhere in gateway/ needs one.

Three were quadratic on `re` and were rewritten (same matches, tests/gateway/test_patterns.py compares them): the
rate-limit spec (`\\s*` on both sides of an optional `burst` group) and, in FHIRPath Patch paths, the string
literal (retried from every quote of one that never closes) and the function-call name (from every letter of a name).
"""

from __future__ import annotations

SIZE = 100_000

_D = "1" * SIZE  # a run of digits
_A = "a" * SIZE  # a run of letters
_SP = " " * SIZE  # a run of spaces


def _times(unit: str) -> str:
    """`unit` repeated to at least SIZE characters."""
    return unit * (SIZE // len(unit) + 1)


Case = tuple[str | bytes, tuple[int, int] | None]  # (input, expected span or None)

# pattern (its source, as written) → call → worst case
WORST: dict[str | bytes, dict[str, Case]] = {
    # --- auth: tokens, scopes, API keys, client certificates, JWKS caching, error descriptions
    r"[A-Za-z0-9\-._~+/]+=*": {"fullmatch": (_A + "=" * SIZE + "!", None)},
    r"(patient|user|system)/([A-Z][A-Za-z]{0,63}|\*)\.([a-z*]{1,5})(?:\?(.*))?\Z":
        {"match": ("patient/Observation.rs?" + _A + "\n", (0, SIZE + 24))},  # DOTALL: .* takes the newline
    r"(patient|user|system)/\$([a-z][a-z-]{0,63})\Z": {"match": ("user/$" + "-" * SIZE, None)},
    r"c?r?u?d?s?\Z": {"match": ("cruds" * (SIZE // 5), None)},
    r"[a-z][a-z0-9-]{0,63}\Z": {"match": (_A, None)},
    r"[^\x00-\x1f&]{1,256}\Z": {"match": (_A, None)},
    r"hgk_([a-z2-7]{12})_([A-Za-z0-9_-]{43})\Z": {"match": ("hgk_" + "a" * 12 + "_" + _A, None)},
    r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z": {"match": (_A, None)},
    r"[A-Za-z0-9\-.]{1,64}\Z": {"match": (_A, None)},
    r"(?<!\\),": {"search": ("\\," * (SIZE // 2), None)},
    r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)": {"search": (",max-age" + _SP + "=" + _SP + "\"x" + ", " * SIZE, None)},
    r'["\\\x00-\x1f\x7f-\U0010ffff]': {"search": (_A, None)},
    # was ([a-z]+)\s*(?:burst\s+(\d+))?\s*\Z: a run of spaces split between the two \s*
    r"\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)(?:\s*burst\s+(\d+))?\s*\Z": {"match": ("1/s" + _SP + "!", None)},
    # --- bulk job and file names
    r"[0-9a-f]{32}\Z": {"match": ("a" * SIZE, None)},
    r"[A-Za-z]{1,64}\.ndjson\Z": {"match": (_A + ".ndjson", None)},
    # --- facade: FHIR paths, FHIRPath Patch paths, forwarded hosts and prefixes
    r"[A-Z][A-Za-z]{1,63}\Z": {"match": ("A" + _A, None)},
    r"[A-Za-z]{1,64}\Z": {"match": (_A, None)},
    r"\$[A-Za-z][A-Za-z0-9\-_]{0,63}\Z": {"match": ("$" + _A, None)},
    # was '(?:[^'\\]|\\.)*': from every quote of a string that never closes (escaped quotes)
    # (now it takes a string that never closes whole, and sub goes on after it)
    r"'(?:[^'\\]|\\.)*(')?": {"search": ("\\'" * (SIZE // 2), (1, SIZE))},
    # was ([A-Za-z_][A-Za-z0-9_]*)\s*\(: from every letter of a long name; a name after digits is still one start
    r"(?<![A-Za-z0-9_])[0-9]*([A-Za-z_][A-Za-z0-9_]*)\s*\(": {"search": ("1a" * (SIZE // 2) + _SP, None)},
    r"(.+)\.([A-Za-z][A-Za-z0-9_]*)\s*": {"fullmatch": ((".a" + " " * 10) * (SIZE // 12 + 1) + "!", None)},
    r"[A-Za-z][A-Za-z0-9_]*(\[x\])?": {"fullmatch": (_A + "[x", None)},
    r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?\Z|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?\Z": {"match": (_A, None)},
    r"(/[A-Za-z0-9._~\-]{1,64}){0,8}\Z": {"match": (("/" + "a" * 64) * (SIZE // 65 + 1) + "!", None)},
    # --- exchange: stored bundles, pseudonymised references, conditional creates, minimised paths
    r"Bundle/[A-Za-z0-9\-.]{1,64}\Z": {"match": ("Bundle/" + _A, None)},
    r"(?:(.*/))?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?\Z":
        {"match": ("Ab/" * (SIZE // 3) + "!", None)},
    r"identifier=([^|&]*)\|([^&]*)\Z": {"match": ("identifier=" + "|" * SIZE + "&", None)},
    r"([A-Za-z_][A-Za-z0-9_]*|\*)(?:\(([^()]+)\))?\Z": {"match": ("a(" + _A, None)},
    # --- HL7 v2 over MLLP: segment names, ERR-2 locations
    rb"[A-Z][A-Z0-9]{2}": {"fullmatch": (b"A" * SIZE, None)},
    r"[A-Z][A-Z0-9]{2}(\^\d+)*": {"fullmatch": ("ERR" + "^1" * (SIZE // 2) + "^", None)},
    # --- log lines, settings, CLI key durations, the config file, OpenAPI paths
    "[\x00-\x1f\x7f\x85\u2028\u2029]": {"search": (_A, None)},
    r"[\s,]+": {"search": (_A, None)},
    r"[+-](0\d|1[0-4]):[0-5]\d": {"fullmatch": ("+01:0" + _D, None)},
    r"(\d{1,6})([dhm])\Z": {"match": (_D + "d", None)},
    r"HELIXGATE_[A-Z0-9_]*[A-Z0-9]": {"search": ("HELIXGATE_" + "_" * SIZE, None)},
    r"\{(\w+)(?::\w+)?\}": {"search": ("{" + _A + ":" + _A, None)},
}

# Patterns built at run time: (file, the pattern argument's source) → (a pattern it builds, call → worst case)
_BASES = r"(?i:http://upstream:8080/fhir|http:\\/\\/upstream:8080\\/fhir)(?=[/?#\"\\\s<>']|\Z)"
DYNAMIC: dict[tuple[str, str], tuple[str, dict[str, Case]]] = {
    # the upstream's base URLs (here one, configured as http://upstream:8080/fhir) where a URL path segment ends
    ("gateway/facade/addresses.py", "b'(?i:' + alternatives + b')(?=[/?#\\\\\"\\\\\\\\\\\\s<>\\']|\\\\Z)'"):
        (_BASES, {"search": (_times("http://upstream:8080/fhir2"), None)}),
    # the same, as text
    ("gateway/facade/addresses.py", "self._pattern.pattern.decode('latin-1')"):
        (_BASES, {"search": (_times("HTTP:\\/\\/UPSTREAM:8080\\/FHIRx"), None)}),
    # an upstream origin and the rest of its URL, in error texts
    ("gateway/facade/addresses.py", "re.escape(o) + '[^\\\\s\\\\\"\\'<>]*'"):
        (r"(?i)http://upstream:8080[^\s\"'<>]*", {"search": (_times("http://upstream:808"), None)}),
}
