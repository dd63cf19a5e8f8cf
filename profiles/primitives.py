"""R4 primitive types: which JSON type carries each, and the spec's regular expressions (read from the
type StructureDefinitions, so they are the published ones)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from profiles import patterns
from profiles.definitions import Definitions
from profiles.matching import short

INTEGER_TYPES = {"integer", "positiveInt", "unsignedInt", "integer64"}
JSON_KIND = {"boolean": "boolean", "decimal": "number", **{t: "integer" for t in INTEGER_TYPES}}


def regexes(defs: Definitions) -> dict[str, patterns.Pattern]:
    """type name → compiled regex (on RE2: profiles/patterns.py), from `<type>.value` of each primitive type's
    snapshot. FHIR's primitive regexes match the whole value."""
    out: dict[str, patterns.Pattern] = {}
    for name in defs.types_of_kind("primitive-type"):  # read only these definitions
        sd = defs.type_definition(name) or {}
        for el in (sd.get("snapshot") or {}).get("element", []):
            if el.get("path") != f"{name}.value":
                continue
            for t in el.get("type", []):
                for ext in t.get("extension", []):
                    if ext.get("url", "").endswith("/regex") and ext.get("valueString"):
                        try:
                            out[name] = patterns.compile(ext["valueString"])
                        except patterns.error:  # a malformed regex in a type definition: the type goes unchecked
                            continue
    return out


def json_type_error(type_code: str, value: Any) -> str | None:
    """Why `value` cannot carry FHIR primitive `type_code` in JSON, or None when it can."""
    kind = JSON_KIND.get(type_code, "string")
    if kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if ok:
        return None
    return f"a {type_code} must be a JSON {kind}, found {type(value).__name__} {str(value)[:40]!r}"


def lexical(type_code: str, value: Any) -> str:
    """The primitive's lexical form, as the regexes expect it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, float) else repr(value)


# ---- a primitive value against its type and element: JSON type, lexical form, bounds, content rules ----
ACTIVE_HTML = patterns.compile(r"<\s*(script|iframe|object|embed|form|img|a|svg)\b|\son\w+\s*=|javascript:",
                               patterns.IGNORECASE)
MARKDOWN_TAG = patterns.compile(r"</?[A-Za-z]")  # the start of an HTML tag (or end tag) inside markdown
# a canonical is an absolute URL (a lower-case scheme, then something) unless it is a #fragment reference
ABSOLUTE_CANONICAL = patterns.compile(r"#|[a-z][a-z0-9+.\-_]*:\S")
MAX_STRING = 1048576  # FHIR strings end at 1 MB (R4 datatypes, string)


# Shortcuts for the commonest primitive regexes, keyed by the regex's text: True only where the regex is sure to
# match (printable ASCII holds no whitespace but the space, and no character \S or [^\s] refuses); anything
# else goes to the regex. code `[^\s]+(\s[^\s]+)*`: no leading, trailing or doubled whitespace; uri `\S*`: no
# whitespace; string `[ \r\n\t\S]+`: no vertical tab or form feed (the caller has refused "").
SURE_SOURCE: dict[str, str] = {  # as Python expressions on `x` (profiles/generated.py inlines them)
    r"[^\s]+(\s[^\s]+)*": 'x.isascii() and x.isprintable() and x[0] != " " and x[-1] != " " and "  " not in x',
    r"\S*": 'x.isascii() and x.isprintable() and " " not in x',
    r"[ \r\n\t\S]+": "x.isascii() and x.isprintable()",
}
TRIMMED = frozenset({r"[^\s]+(\s[^\s]+)*", r"\S*"})  # the code and uri shortcuts also say: no space at either end
SURE_MATCH: dict[str, Callable[[str], bool]] = {rx: eval(f"lambda x: {src}") for rx, src in SURE_SOURCE.items()}


def checker(v: Any, typ: str, node: Any) -> Callable[[Any, str, Any], None] | None:
    """A check of values of primitive type `typ` in element `node`, specialised once: only the rules that can
    apply to that type and element are in it (None for FHIRPath System types: their owner checks them)."""
    if typ.startswith("System."):
        return None
    from profiles.fhirpath import _html_checks
    from profiles.references import EXAMPLE_DOMAIN

    kind = JSON_KIND.get(typ, "string")
    rx = v.regex.get(typ)
    sure = SURE_MATCH.get(rx.pattern) if rx is not None else None
    trimmed = typ not in ("xhtml", "markdown", "string")
    positive = typ == "positiveInt"
    int32 = typ in ("integer", "positiveInt", "unsignedInt")
    security = bool(v.security_checks) and typ in ("string", "markdown")
    markdown = typ == "markdown" and v.html_in_markdown != "ignore"
    markdown_severity = "error" if v.html_in_markdown == "error" else "warning"
    canonical = typ == "canonical"
    examples = not v.examples and typ in ("uri", "url", "canonical")
    min_length, max_length = node.min_length, node.max_length
    xhtml = typ == "xhtml"

    def check(value: Any, path: str, run: Any) -> None:
        if kind == "string":
            ok = isinstance(value, str)
        elif kind == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            run.add("error", "structure", path, f"Error parsing JSON: {json_type_error(typ, value)}")
            return
        if kind == "string":
            if value == "":
                run.add("error", "invalid", path, "@value cannot be empty")
                return
            if trimmed and value != value.strip():
                run.add("error", "invalid", path, f"The value {value!r} has leading or trailing whitespace")
            if rx is not None and not (sure is not None and sure(value)) and not rx.full(value):
                run.add("error", "invalid", path, f"The value {short(value)} is not a valid {typ}")
        else:
            if rx is not None and not rx.full(lexical(typ, value)):
                run.add("error", "invalid", path, f"The value {short(value)} is not a valid {typ}")
            if positive and value < 1:
                run.add("error", "invalid", path, f"The value {value} is not a valid positiveInt (must be > 0)")
            if int32 and abs(value) > 2**31 - 1:
                run.add("error", "invalid", path, f"The value {value} is outside the range of a 32-bit {typ}")
            return
        if security and "<" in value and ACTIVE_HTML.found(value):
            run.add("error", "security", path, "The string value contains text that looks like embedded HTML tags, "
                    "which are not allowed for security reasons in this context")
        if markdown and "<" in value:
            tag = MARKDOWN_TAG.search(value)
            if tag:
                run.add(markdown_severity, "invalid", path,
                        f"The markdown contains content that appears to be an embedded HTML tag starting at "
                        f"'{tag.group()}'. This will (or SHOULD) be escaped by the presentation layer. The content "
                        "should be checked to confirm that this is the desired behaviour")
        if canonical and not ABSOLUTE_CANONICAL.match(value):
            run.add("error", "invalid", path, "Canonical URLs must be absolute URLs if they are not fragment "
                    f"references ({value})")
        if examples and EXAMPLE_DOMAIN.match(value):  # the HL7 validator's examples=false option
            run.add("error", "invalid", path, f"Example URLs are not allowed in this context ({value})")
        if len(value) > MAX_STRING:
            run.add("error", "invalid", path, "value is longer than permitted maximum length of 1 MB (1048576 bytes)")
        if min_length and len(value) < min_length:
            run.add("error", "invalid", path, f"Value '{value[:40]}' is shorter than permitted minimum length of "
                    f"{min_length}")
        if max_length and len(value) > max_length:
            run.add("error", "invalid", path, f"The value is longer than the maximum length {max_length}")
        if xhtml and not _html_checks([value])[0]:
            run.add("error", "invalid", path, "The narrative must be an XHTML div with no active content")

    return check
