"""Worst-case inputs for every regular expression the mappers apply to input (used by tests/mappers/test_patterns.py).

For each pattern and each way it is called: a value of about 100 KB built to make Python's backtracking `re` try the
most ways to match before it fails (a long run the quantifiers could split many ways, then a character that spoils the
end), and the expected result (the span matched, or None). A linear pattern answers each in milliseconds; a quadratic
one takes minutes, so a finished run bounds the time hostile input can cost.

Calls: "match", "fullmatch", or "search", which stands for every call that scans the input from each position in
turn (search, sub, subn, split, findall, finditer).

Four patterns were quadratic on `re` and were rewritten (same matches, tests/mappers/test_patterns.py compares them):
`LRG_\\d+\\w*` in the HGVS check, `^\\s*([<>]=?)?\\s*...` in CN lab values, the WS/T 500 XML declaration's encoding
(lazy `[^>]*?` then `[^>]*\\?>`), and `(\\w+)\\.ofType(...)` searched in validator expressions.
"""

from __future__ import annotations

SIZE = 100_000

_D = "1" * SIZE  # a run of digits
_A = "a" * SIZE  # a run of letters
_SP = " " * SIZE  # a run of spaces
_FRACTION_DT = "2024-01-01T10:00:00." + _D + "+"  # a long fraction, then a zone cut short

Case = tuple[str | bytes, tuple[int, int] | None]  # (input, expected span or None)

# pattern (its source, as written) → call → worst case
WORST: dict[str | bytes, dict[str, Case]] = {
    # --- cda_cn
    r"^\d{1,7}-\d$": {"match": (_D, None)},
    # was ^\s*([<>]=?)?\s*(...): a run of spaces split between the two \s*
    r"^\s*(?:([<>]=?)\s*)?([-+]?\d+(?:\.\d+)?)\s*$": {"match": (_SP + "!", None)},
    r"基因|分子|遗传|测序|突变|PCR|NGS": {"search": ("PC" * (SIZE // 2 + 1), None)},
    r"CT|MR|磁共振|X线|DR|超声|彩超|影像|造影|PET": {"search": ("PE" * (SIZE // 2 + 1), None)},
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]": {"search": (_A, None)},
    r"^([A-Z]\d{2})(?:\.([0-9x]{1,3}(?:x\d{3})?))?([*†+]?)$": {"match": ("A11." + _D, None)},
    r"\+(?=[A-Z])": {"search": ("+" * SIZE, None)},
    r"[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef]+": {"fullmatch": ("汉" * SIZE + "a", None)},
    r"[0-9]{17}[0-9X]": {"fullmatch": (_D, None)},
    r"[0-9]{15}": {"fullmatch": (_D, None)},
    r"[0-9]{17}": {"fullmatch": (_D, None)},
    # was one pattern, [^>]*?encoding...["'][^>]*\?>: many encoding= in a declaration that never closes
    rb"^\s*<\?xml[^>]*\?>": {"match": (b"<?xml " + b'encoding="a" ' * (SIZE // 13 + 1), None)},
    rb"encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']": {"search": (b'encoding = "' + b"a" * SIZE, None)},
    r"^\s*<\?xml[^>]*\?>": {"search": (_SP + "<?xml" + "?" * SIZE, None)},
    r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2}(?:\.\d{1,6})?)?)?([+-]\d{4}|Z)?$": {"match": (_D, None)},
    r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T(\d{2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?(Z|[+-]\d{2}:\d{2})?)?$":
        {"match": (_FRACTION_DT, None)},
    r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?$": {"match": (_D, None)},
    r"\[\d+\]": {"search": ("[" + _D, None)},
    # --- ehdsi_cda
    r"^[a-z]{2}-[A-Z]{2}$": {"match": ("aa-" + "A" * SIZE, None)},
    r"([+-]\d{4}|Z)$": {"search": ("+1234" * (SIZE // 5 + 1) + "x", None)},
    r"^\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d+)?)?)?)?)?)?([+-]\d{4})?$":
        {"match": ("20240101101010." + _D + "+", None)},
    # --- fhir
    rb"""xmlns\s*=\s*["']http://hl7\.org/fhir["']""": {"search": (b"xmlns" + b" " * SIZE + b"=" + b" " * SIZE, None)},
    # --- hl7v2
    # was LRG_\d+\w*: a run of digits split between \d+ and \w*
    r"^(?:[A-Z]{1,3}_?\d+(?:\.\d+)?(?:\([^)]*\))?|LRG_\d\w*):[cgmnopr]\.": {"match": ("LRG_" + _D + "!", None)},
    r":([cgp])\.": {"search": (":c" * (SIZE // 2 + 1), None)},
    r"^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(\.\d{1,4})?)?([+-]\d{4})?$": {"match": (_D, None)},
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$":
        {"match": (_FRACTION_DT, None)},
    r"[+-]?(\d+(\.\d*)?|\.\d+)": {"fullmatch": ("1." + _D + "x", None)},
    r"[+-]?\d+": {"fullmatch": (_D + "x", None)},
    r"[0-2](\.(0|[1-9][0-9]*))+": {"fullmatch": ("1" + ".12" * (SIZE // 3 + 1) + ".", None)},
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}": {"fullmatch": (_A, None)},
    r"[A-Za-z][A-Za-z0-9+.-]*:\S+": {"fullmatch": (_A + ":" + _A + " ", None)},
    r"[a-z]+/[a-z0-9][a-z0-9!#$&^_.+-]*": {"fullmatch": (_A + "/" + _A + " ", None)},
    r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+": {"fullmatch": (_A + ":" + _A + " ", None)},
    r"\s+": {"search": (_A, None)},
    r"1[a-z]*": {"fullmatch": ("1" + _A + "1", None)},
    r"^chr": {"search": ("ch" * (SIZE // 2 + 1), None)},
    r"^\s*([-+]?\d+(?:\.\d+)?)\s*(?:-|to)\s*([-+]?\d+(?:\.\d+)?)\s*$":
        {"match": ("1" + _SP + "-" + _SP + "2" + _SP + "!", None)},
    r"([01]\d|2[0-3])([0-5]\d([0-5]\d)?)?": {"fullmatch": (_D, None)},
    r"^([A-Za-z]{2})(?:[-_]([A-Za-z]{2}))?$": {"match": ("aa-" + _A, None)},
    r"\s*([+-]?)([0-9]+)\s*": {"fullmatch": (_SP + "1" + _SP + "x", None)},
    r"Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)": {"fullmatch": ("+" + _D, None)},
    r"[A-Z][A-Z0-9]{2}\Z": {"match": ("A" * SIZE, None)},
    r"[0-9]{1,7}-[0-9]": {"fullmatch": (_D + "-1", None)},
    r"[^a-z0-9.]+": {"search": (_A, None)},
    # --- ips
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$": {"match": (_FRACTION_DT, None)},
    # --- phenopacket
    r"[ACGTNacgtn]+": {"fullmatch": ("A" * SIZE + "x", None)},
    r"P([1-9][0-9]{0,8})([YMWD])": {"fullmatch": ("P" + _D + "Y", None)},
    r"[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?": {"fullmatch": (_D, None)},
    r"P(?!$)([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?(T(?=[0-9])([0-9]+H)?([0-9]+M)?([0-9.]+S)?)?":
        {"fullmatch": ("P" + _D + "x", None)},
    r"(Z|[+-][0-9]{2}:[0-9]{2})$": {"search": ("+12:12" * (SIZE // 6 + 1) + "x", None)},
    r"[.\[]": {"search": (_A, None)},
    # --- toolkit
    r"([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?": {"fullmatch": (_D, None)},
    r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))":
        {"fullmatch": ("10:00:00." + _D + "+", None)},
    r"(N[CGMRTWP]|X[MRP]|YP)_[0-9]+\.[0-9]+": {"fullmatch": ("NM_" + _D + "x", None)},
    r"ENS[TGP][0-9]{11}\.[0-9]+": {"fullmatch": ("ENST" + "1" * 11 + "." + _D + "x", None)},
    r"^Bundle\.entry\[(\d+)\]\.resource(?:\.(.*))?$": {"match": ("Bundle.entry[" + _D + "x", None)},
    # was (\w+)\.ofType...: searched from each letter of a long word, rescanning it to its end
    r"(?<!\w)(\w+)\.ofType\((\w)(\w*)\)": {"search": (_A, None)},
    # --- vcf
    r"[ACGTNRYKMSWBDHV]+": {"fullmatch": ("A" * SIZE + "!", None)},
    r"[ACGTN]+": {"fullmatch": ("A" * SIZE + "!", None)},
    r"[+-]?[0-9]{1,12}": {"fullmatch": (_D, None)},
    r"[+-]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][+-]?[0-9]{1,4})?": {"fullmatch": (_D, None)},
    r"[/|]": {"search": ("0" * SIZE, None)},
    r"4\.[4-9]": {"fullmatch": ("4." + "4" * SIZE, None)},
    r"(?:build|ncbi|grch)\s*(37|38)\b": {"search": ("build" + _SP + "39", None)},
    r"CN\d+": {"fullmatch": ("CN" + _D + "x", None)},
    r"(?<![A-Za-z])(tumou?r|normal)(?![A-Za-z])": {"search": ("tumou " * (SIZE // 6 + 1), None)},
    # --- ws445
    r"^DE\d{2}\.\d{2}\.\d{3}\.\d{2}(\.\d{3})?$": {"match": ("DE01.01.001.01." + _D, None)},
}

# Patterns built at run time: (file, the pattern argument's source) → (a pattern it builds, call → worst case)
DYNAMIC: dict[tuple[str, str], tuple[str, dict[str, Case]]] = {
    # an assembly alias from vcf/assemblies, escaped: a literal between two look-arounds
    ("mappers/vcf/reference.py", "f'(?<![a-z0-9]){re.escape(alias)}(?![0-9])'"):
        (r"(?<![a-z0-9])human_g1k_v37(?![0-9])", {"search": ("human_g1k_v3" * (SIZE // 12 + 1), None)}),
    # the repetition and component separators as a character class
    ("mappers/hl7v2/parse.py", "'[' + re.escape(d.repetition + d.component) + ']'"):
        (r"[\~\^]", {"search": (_A, None)}),
}
