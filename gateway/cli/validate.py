"""helixgate validate: FHIR resources and Bundles against the official packages and the profiles they claim.

The options are the HL7 Java validator's (validator_cli.jar), spelt as it spells them (one leading dash; two work as
well), with the defaults its recorded test outcomes were made with (no security checks, REST references' types not
assumed, example URLs allowed), so that a command line written for it gives the same verdicts here; the gateway's
own validation (POST $validate, conversions) keeps its stricter defaults. `--format json` (or `xml`) is a
contract a CI can parse: stdout holds one OperationOutcome per run (a Bundle of them, one per file, for several
files; the HL7 validator's shape), also when the input cannot be read (a fatal issue with its line and column) or
validation cannot run at all; the exit code says which (EXIT_CODES).

Imports are kept to what validating needs (no HTTP stack, no Redis): a new process reaches its first verdict in
well under 1.5 s once `helixgate packages install` has run (the definitions are read as used, their index cached on
disk: profiles/deferred.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson

from gateway.cli import status

SUMMARY = "validate FHIR resources against R4 and the profiles they claim (or --profile)"
NOT_RUN = 3  # validation could not run: packages missing, an --ig package that cannot be installed or read
EXIT_CODES = {
    status.OK: "every file validated without an error",
    status.INPUT_REJECTED: "a file has an error or fatal issue, or cannot be read or parsed",
    status.USAGE: "usage: an unknown option, a bad value, an --ig that is neither a path nor NAME#VERSION",
    NOT_RUN: "validation could not run: the FHIR packages are not installed (or an --ig package cannot be)",
}
# R4 extensions of the HL7 extensions pack (hl7.fhir.uv.extensions.r4), as the HL7 validator writes them
EXT_FILE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-file"
EXT_LINE = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
EXT_COL = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col"
LEVELS = {"hints": ("information", "warning", "error", "fatal"), "warnings": ("warning", "error", "fatal"),
          "errors": ("error", "fatal")}
FHIR_VERSIONS = ("4.0", "4.0.1", "r4", "R4")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help=SUMMARY, description=SUMMARY, formatter_class=argparse.RawTextHelpFormatter,
                       epilog="exit codes:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items()))
    p.add_argument("files", nargs="+", metavar="FILE", help="FHIR JSON or XML files (- for stdin)")
    p.add_argument("--profile", "-profile", action="append", default=[], metavar="URL",
                   help="also validate against this profile (repeatable)")
    p.add_argument("--ig", "-ig", action="append", default=[], metavar="NAME#VERSION|PATH",
                   help="load a package, or a file/folder of StructureDefinitions, ValueSets, CodeSystems, ...")
    p.add_argument("--format", choices=("table", "json", "xml"), default="table",
                   help="table (default), or json / xml: an OperationOutcome in FHIR JSON / XML (a Bundle of them "
                   "for several files)")
    p.add_argument("--output", "-output", metavar="FILE",
                   help="also write the OperationOutcome (or Bundle) to FILE: FHIR XML when it ends in .xml, else "
                   "JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="table: show errors only")
    hl7 = p.add_argument_group("HL7 validator options", "named, and defaulting, as the HL7 Java validator's "
                               "(validator_cli.jar); one or two leading dashes")
    hl7.add_argument("-security-checks", "--security-checks", action="store_true",
                     help="active HTML (script, event handlers, javascript: URLs) in strings is an error")
    hl7.add_argument("-check-references", "--check-references", action="store_true",
                     help="a reference that resolves nowhere (Bundle, Parameters, contained) is an error")
    hl7.add_argument("-assumeValidRestReferences", "--assumeValidRestReferences", action="store_true",
                     help="check the type a Type/id reference names against the allowed target types even when "
                     "it does not resolve")
    hl7.add_argument("-allow-example-urls", "--allow-example-urls", nargs="?", const="true", default="true",
                     choices=("true", "false"), metavar="true|false",
                     help="accept references and extensions in the example domains (example.org, ...) unchecked "
                     "(default true, as the HL7 validator's own tests run; its CLI says false)")
    hl7.add_argument("-html-in-markdown", "--html-in-markdown", choices=("ignore", "warning", "error"),
                     default="warning", help="severity for HTML tags inside markdown (default warning)")
    hl7.add_argument("-no-extensible-binding-warnings", "--no-extensible-binding-warnings", action="store_true",
                     help="no warning for a code outside an extensible binding's value set")
    hl7.add_argument("-bundle", "--bundle", nargs=2, action="append", default=[], metavar=("RULE", "PROFILE"),
                     help="validate Bundle entries against PROFILE: RULE is a type (Patient), an entry index (2) "
                     "or the n-th entry of a type (Patient:0)")
    hl7.add_argument("-level", "--level", choices=tuple(LEVELS), default="hints",
                     help="the least severe issues shown (default hints: all)")
    hl7.add_argument("-tx", "--tx", metavar="n/a", help="only n/a: helixgate never calls a terminology server "
                     "(codes of systems not installed locally are reported as not checked)")
    hl7.add_argument("-version", "--version", dest="fhir_version", metavar="4.0.1", help="only R4 (4.0 or 4.0.1)")
    # usage errors, unknown options included (argparse leaves those to the top-level parser), go through
    # _usage_error, so that --format json gets its OperationOutcome then too
    p.error = lambda message: _usage_error(p, message)  # type: ignore[method-assign]
    parse_known_args = p.parse_known_args

    def parse_all(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = parse_known_args(_explicit_booleans(list(sys.argv[1:] if args is None else args)),
                                          namespace)
        if extras:
            p.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, []

    p.parse_known_args = parse_all  # type: ignore[method-assign]
    p.set_defaults(run=run)


def _explicit_booleans(args: list[str]) -> list[str]:
    """`-allow-example-urls` takes an optional true|false (as the HL7 validator's does); when none follows, `true`
    is made explicit, so that argparse does not take the next file name for the value."""
    out = []
    for i, a in enumerate(args):
        out.append(a)
        if a in ("-allow-example-urls", "--allow-example-urls") and (args[i + 1:i + 2] or [""])[0] not in (
                "true", "false"):
            out.append("true")
    return out


def run(args: argparse.Namespace) -> int:
    if args.tx is not None and args.tx != "n/a":
        return _not_run(args, f"-tx {args.tx}: helixgate has no terminology server client; give -tx n/a or leave it "
                        "out", status.USAGE)
    if args.fhir_version is not None and args.fhir_version not in FHIR_VERSIONS:
        return _not_run(args, f"-version {args.fhir_version}: helixgate validates FHIR R4 (4.0.1) only",
                        status.USAGE)
    from profiles.packages import PackageError  # after the quick usage checks: these imports take a moment

    try:
        validator = _validator(args)
    except PackageError as e:
        message = str(e)
        return _not_run(args, message, status.USAGE if message.startswith("--ig ") else NOT_RUN)
    outcomes = []
    worst = status.OK
    for name in args.files:
        outcome = _validate_file(name, validator, args)
        if _errors(outcome):
            worst = status.INPUT_REJECTED
        outcomes.append((name, outcome))
    shown = [(name, _at_level(outcome, args.level)) for name, outcome in outcomes]
    result = _result(shown)
    if args.output:
        from gateway.cli.output import write

        write(args.output, _dump(result, "xml" if args.output.lower().endswith(".xml") else "json"))
    if args.format in ("json", "xml"):
        sys.stdout.buffer.write(_dump(result, args.format))
    else:
        for name, outcome in shown:
            _table(name, outcome, args.quiet)
    return worst


def _validator(args: argparse.Namespace) -> Any:
    """The validator for this run's packages, `--ig` sources and options. Raises PackageError."""
    from profiles.context import load, split_igs
    from profiles.packages import DEFAULT_PACKAGES
    from profiles.references import ReferencePolicy
    from profiles.validator import Validator

    specs, paths = split_igs(args.ig)
    if specs:
        from profiles.packages import install

        install(specs, log=lambda m: print(m, file=sys.stderr))
    policy = ReferencePolicy(check_exists=args.check_references, assume_valid_rest=args.assumeValidRestReferences,
                             bundle_rules=tuple((rule, profile) for rule, profile in args.bundle))
    return Validator(load((*DEFAULT_PACKAGES, *specs), paths), security_checks=args.security_checks,
                     examples=args.allow_example_urls == "true", html_in_markdown=args.html_in_markdown,
                     references=policy, extensible_binding_warnings=not args.no_extensible_binding_warnings)


def _validate_file(name: str, validator: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The file's OperationOutcome: the validation's, or one fatal issue saying why the file could not be read."""
    from mappers.exceptions import operation_outcome

    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as e:
        return _fatal(name, "not-found", "cannot-read", f"cannot read {name}: {e.strerror}")
    try:
        resource = _read(data, name, validator)
    except _Unreadable as e:
        return _fatal(name, "structure", e.details, str(e), e.line, e.column)
    return operation_outcome(validator.validate(resource, tuple(args.profile)))


class _Unreadable(ValueError):
    def __init__(self, message: str, details: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.details, self.line, self.column = details, line, column


def _read(data: bytes, name: str, validator: Any) -> dict[str, Any]:
    """FHIR JSON or XML (by the file's name, else its first character) → a resource dict, read as POST $validate
    reads a body (gateway/validate.py read_resource), keeping where the parser stopped. Raises _Unreadable."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if name.endswith(".xml") or head == b"<":
        from profiles.xml import XmlError, xml_to_json

        try:
            return xml_to_json(data, validator.defs)
        except XmlError as e:
            raise _Unreadable(f"the XML cannot be read: {e}", "bad-xml", e.line, e.column) from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise _Unreadable(f"the JSON cannot be read: {e}", "bad-json", e.lineno, e.colno) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise _Unreadable("expected a FHIR resource: a JSON object with a resourceType", "not-a-resource")
    return doc


def _fatal(name: str, code: str, details: str, message: str, line: int | None = None,
           column: int | None = None) -> dict[str, Any]:
    print(f"helixgate: {name}: {message}", file=sys.stderr)
    issue: dict[str, Any] = {"severity": "fatal", "code": code,
                             "details": {"coding": [{"system": "urn:helixgate:issue", "code": details}],
                                         "text": message}}
    if line is not None:
        issue["extension"] = [{"url": EXT_LINE, "valueInteger": line}]
        if column is not None:  # the extension's published type is string
            issue["extension"].append({"url": EXT_COL, "valueString": str(column)})
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _errors(outcome: dict[str, Any]) -> int:
    return sum(1 for i in outcome.get("issue", []) if i.get("severity") in ("error", "fatal"))


def _at_level(outcome: dict[str, Any], level: str) -> dict[str, Any]:
    if level == "hints":
        return outcome
    kept = [i for i in outcome.get("issue", []) if i.get("severity") in LEVELS[level]]
    if not kept:
        from mappers.exceptions import operation_outcome

        return operation_outcome([])
    return {**outcome, "issue": kept}


def _result(outcomes: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One OperationOutcome naming its file, or for several files a Bundle of them (as the HL7 validator writes)."""
    named = [{"resourceType": "OperationOutcome", "extension": [{"url": EXT_FILE, "valueString": name}],
              "issue": outcome["issue"]} for name, outcome in outcomes]
    if len(named) == 1:
        return named[0]
    import uuid

    # fullUrls are required outside transactions; derived from position and name, so a rerun writes the same bytes
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{n}:{name}')}", "resource": oo}
        for n, ((name, _), oo) in enumerate(zip(outcomes, named, strict=True))]}


def _not_run(args: argparse.Namespace, message: str, code: int) -> int:
    """Validation did not run: the message on stderr and, under --format json, as a fatal OperationOutcome."""
    print(f"helixgate: {message}", file=sys.stderr)
    fmt = getattr(args, "format", None)
    if fmt in ("json", "xml"):
        details = "usage" if code == status.USAGE else "cannot-validate"
        issue = {"severity": "fatal", "code": "exception" if code == NOT_RUN else "invalid",
                 "details": {"coding": [{"system": "urn:helixgate:issue", "code": details}], "text": message}}
        sys.stdout.buffer.write(_dump({"resourceType": "OperationOutcome", "issue": [issue]}, fmt))
    return code


def _dump(doc: dict[str, Any], fmt: str) -> bytes:
    """An OperationOutcome or Bundle as FHIR JSON (indented) or FHIR XML (http://hl7.org/fhir/R4/xml.html); XML
    needs the R4 core definitions and characters XML 1.0 can hold (a message may quote a control character of the
    input), so failing those it is JSON after all, said on stderr."""
    if fmt == "xml":
        from profiles.packages import PackageError
        from profiles.xmlwrite import XmlWriteError, json_to_xml

        try:
            return json_to_xml(doc) + b"\n"
        except (PackageError, XmlWriteError) as e:
            print(f"helixgate: written as JSON, not FHIR XML: {e}", file=sys.stderr)
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """argparse's usage error; with --format json on the command line, stdout holds the OperationOutcome too."""
    parser.print_usage(sys.stderr)
    argv = sys.argv[1:]
    wanted = next((f for i, a in enumerate(argv) for f in ("json", "xml")
                   if a == f"--format={f}" or (a == "--format" and argv[i + 1:i + 2] == [f])), "table")
    _not_run(argparse.Namespace(format=wanted), f"validate: {message}", status.USAGE)
    sys.exit(status.USAGE)


def _table(name: str, outcome: dict, quiet: bool) -> None:
    issues = [i for i in outcome.get("issue", []) if i["details"].get("coding", [{}])[0].get("code") != "ok"]
    errors = sum(1 for i in issues if i["severity"] in ("error", "fatal"))
    warnings = sum(1 for i in issues if i["severity"] == "warning")
    print(f"{name}: {'FAIL' if errors else 'OK'} ({errors} error(s), {warnings} warning(s), "
          f"{len(issues) - errors - warnings} information)")
    for i in issues:
        if quiet and i["severity"] not in ("error", "fatal"):
            continue
        where = (i.get("expression") or [_position(i)])[0]
        print(f"  {i['severity']:<11} {i['code']:<13} {where:<45} {i['details']['text']}")


def _position(issue: dict[str, Any]) -> str:
    ext = {e["url"]: e.get("valueInteger", e.get("valueString")) for e in issue.get("extension", [])}
    return f"line {ext[EXT_LINE]}, column {ext.get(EXT_COL, '?')}" if EXT_LINE in ext else ""
