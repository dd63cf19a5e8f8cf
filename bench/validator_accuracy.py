"""Agreement with the HL7 Java validator on the R4 cases of FHIR/fhir-test-cases (recorded outcomes).

For every case of fhir-test-cases/manifest-r4-selfcontained.json (base step, and the profile step where there is
one), the corpus found in $HELIXGATE_TEST_CORPORA (default: ../shared/corpora beside the repository, as for the
tests; they set CORPUS through tests/corpora.py): load the case's supporting files over R4 core + THO +
extensions, validate the input (JSON or XML), and compare with the Java validator's recorded outcome:
  verdict agreement = (helixgate has an error) == (Java has an error)
  count agreement   = same number of errors

    python bench/validator_accuracy.py [--list] [--json OUT]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from profiles.definitions import CONFORMANCE_TYPES, Definitions  # noqa: E402
from profiles.packages import closure, conformance_resources  # noqa: E402
from profiles.references import HL7_VALIDATOR_DEFAULT as DEFAULT_REFERENCES  # noqa: E402
from profiles.references import ReferencePolicy  # noqa: E402
from profiles.validator import Validator  # noqa: E402

CORPUS = Path(os.environ.get("HELIXGATE_TEST_CORPORA") or ROOT.parent / "shared" / "corpora") / "fhir-test-cases"
BASE = ("hl7.fhir.r4.core#4.0.1", "hl7.terminology.r4#7.0.1", "hl7.fhir.uv.extensions.r4#5.3.0-ballot-tc1")
TYPES = CONFORMANCE_TYPES

# Why the remaining disagreements remain: (case-name pattern, class). First match wins.
CLASSES = [
    (r"^patient-circle", "validateReference CHECK_VALID: the Java test harness fetches the linked patients "
     "(patient-circle*-bad-target and the like) from files the corpus lacks, then validates them against the "
     "targetProfile; helixgate has nothing to fetch them from"),
    (r"^aggregation-apart-good4", "recorded against R5 (outcome file R5.aggregation-apart-good-*), where "
     "Encounter.class is optional; R4 requires it. Patient/aggregated is served by the Java harness's fetcher"),
]


def read(path: Path, allow_comments: bool = False) -> Any:
    data = path.read_bytes()
    if path.suffix == ".xml":
        from profiles.xml import xml_to_json

        return xml_to_json(data, None)
    if allow_comments:  # the Java validator's allow-comments option
        from profiles.jsonc import loads

        return loads(data, allow_comments=True)
    return orjson.loads(data)


def supporting(paths: list[str]) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        try:
            doc = read(CORPUS / p)
        except Exception:  # unreadable support files are counted by the case failing, not here
            continue
        docs = [e.get("resource") for e in doc.get("entry", [])] if doc.get("resourceType") == "Bundle" else [doc]
        out += [d for d in docs if isinstance(d, dict) and d.get("resourceType") in TYPES]
    return out


def steps(case: dict[str, Any]) -> list[tuple[str, dict[str, Any], list[str], list[str]]]:
    """(step name, expected, supporting files, profiles) per step of a case."""
    out = [("base", case["expected"], case.get("supporting", []), [])]
    prof = case.get("profile")
    if prof:
        src = prof["source"]
        url = None
        with contextlib.suppress(Exception):
            url = read(CORPUS / src).get("url")
        out.append(("profile", prof["expected"], [*case.get("supporting", []), *prof.get("supporting", []), src],
                    [url] if url else []))
    return out


def reference_policy(case: dict[str, Any], step: str) -> ReferencePolicy:
    """The case's reference options (validateReference, validateContains, bundle-param, and the profile step's
    assumeValidRestReferences, which only the original entry keeps). validateReference CHECK_VALID (fetch targets
    and validate them) is not mapped: its targets are files of the Java test harness that the corpus lacks."""
    options = case.get("options") or {}
    param = options.get("bundle-param")
    rules = ((param["rule"], param["profile"]),) if isinstance(param, dict) and param.get("rule") else ()
    profile_opts = ((case.get("originalEntry") or {}).get("profile") or {}) if step == "profile" else {}
    return ReferencePolicy(
        check_exists=options.get("validateReference") in ("CHECK_EXISTS", "CHECK_EXISTS_AND_TYPE"),
        assume_valid_rest=bool(profile_opts.get("assumeValidRestReferences")
                               or options.get("assumeValidRestReferences")),
        contained=options.get("validateContains") != "IGNORE",
        bundle_rules=rules)


def evaluate() -> list[dict[str, Any]]:
    """One row per case step: expected (Java) and got (helixgate) error counts, with helixgate's first messages."""
    manifest = orjson.loads((CORPUS / "manifest-r4-selfcontained.json").read_bytes())
    base_resources = list(conformance_resources(closure(BASE), TYPES))
    base_validator = Validator(Definitions(base_resources), security_checks=False,  # the Java defaults
                               references=DEFAULT_REFERENCES)
    rows: list[dict[str, Any]] = []
    for case in manifest["test-cases"]:
        for step, expected, support, profiles in steps(case):
            row = {"case": case["name"], "module": case["module"], "step": step,
                   "format": Path(case["input"]).suffix[1:], "expected": expected["errorCount"]}
            try:
                resource = read(CORPUS / case["input"], bool((case.get("options") or {}).get("allow-comments")))
            except Exception as e:
                row.update(got=1, note=f"unreadable input: {type(e).__name__}: {str(e)[:80]}")
                rows.append(row)
                continue
            extra = supporting(support)
            options = case.get("options") or {}
            security = bool(options.get("security-checks"))
            examples = options.get("examples", True)
            markdown = "error" if options.get("noHtmlInMarkdown") else "warning"
            policy = reference_policy(case, step)
            if extra or security or not examples or markdown != "warning" or policy != DEFAULT_REFERENCES:
                validator = Validator(Definitions([*base_resources, *extra]), security_checks=security,
                                      examples=examples, html_in_markdown=markdown, references=policy)
            else:
                validator = base_validator
            try:
                issues = validator.validate(resource, profiles)
            except Exception as e:  # a crash is a disagreement to fix, not a reason to stop the run
                row.update(got=-1, note=f"crash: {type(e).__name__}: {e}")
                rows.append(row)
                continue
            errs = [i for i in issues if i.severity in ("error", "fatal")]
            row.update(got=len(errs), messages=[f"{i.expression}: {i.message[:140]}" for i in errs[:4]])
            rows.append(row)
    return rows


def agrees(row: dict[str, Any]) -> bool:
    return row["got"] >= 0 and (row["got"] > 0) == (row["expected"] > 0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", action="store_true", help="list every disagreement")
    ap.add_argument("--json", help="write per-step results to this file")
    ap.add_argument("--markdown", help="write the disagreements, by class, as a markdown table to this file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = evaluate()
    manifest = {"test-cases": sorted({r["case"] for r in rows})}
    elapsed = time.perf_counter() - t0
    verdict = [r for r in rows if agrees(r)]
    counts = [r for r in rows if r["got"] == r["expected"]]
    print(f"{len(manifest['test-cases'])} cases, {len(rows)} steps, {elapsed:.1f} s")
    print(f"verdict agreement: {len(verdict)}/{len(rows)} = {len(verdict) / len(rows):.1%}")
    print(f"error-count agreement: {len(counts)}/{len(rows)} = {len(counts) / len(rows):.1%}")
    by_module: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for r in rows:
        by_module[r["module"]][1] += 1
        by_module[r["module"]][0] += r in verdict
    print("\n| module | verdict agreement |\n|---|---:|")
    for m, (ok, n) in sorted(by_module.items(), key=lambda kv: -kv[1][1]):
        print(f"| {m} | {ok}/{n} |")
    missed = [r for r in rows if r not in verdict and r["expected"] > 0]
    extra = [r for r in rows if r not in verdict and r["expected"] == 0]
    print(f"\nmissed errors (Java: error, helixgate: none): {len(missed)}; "
          f"extra errors (Java: none, helixgate: error): {len(extra)}")
    if args.markdown:
        import re

        lines = ["| case | step | Java errors | helixgate errors | class |", "|---|---|---:|---:|---|"]
        tally: collections.Counter[str] = collections.Counter()
        for r in [*missed, *extra]:
            cls = next((c for pat, c in CLASSES if re.search(pat, r["case"])), "unclassified: to investigate")
            tally[cls] += 1
            lines.append(f"| {r['case']} | {r['module']}/{r['step']}/{r['format']} | {r['expected']} | {r['got']} "
                         f"| {cls} |")
        summary = ["| class | steps |", "|---|---:|"] + [f"| {c} | {n} |" for c, n in tally.most_common()]
        counts_off = [r for r in verdict if r["got"] != r["expected"]]
        detail = ["", f"Same verdict, different error count ({len(counts_off)} steps; helixgate's first errors):", "",
                  "| case | step | Java errors | helixgate errors | helixgate's first errors |",
                  "|---|---|---:|---:|---|"]
        for r in counts_off:
            shown = "; ".join(m.replace("|", "\\|")[:110] for m in r.get("messages", [])[:2])
            detail.append(f"| {r['case']} | {r['module']}/{r['step']}/{r['format']} | {r['expected']} | {r['got']} "
                          f"| {shown} |")
        Path(args.markdown).write_text("\n".join([*summary, "", *lines, *detail]) + "\n")
    if args.list:
        for r in [*missed, *extra]:
            print(f"- {r['case']} [{r['module']}/{r['step']}/{r['format']}] java={r['expected']} "
                  f"helixgate={r['got']} {r.get('note', '')} {r.get('messages', [])[:2]}")
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
