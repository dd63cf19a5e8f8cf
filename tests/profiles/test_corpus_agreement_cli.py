"""Agreement with the HL7 Java validator's recorded verdicts, measured through `helixgate validate` as its users run
it: one new process per case step, the case's options given as the HL7 validator's flags, its supporting files as
`-ig FILE`, the profile step's profile as `-profile URL`, and the verdict read from the `--format json`
OperationOutcome. Steps are scored as the library path's agreement test scores them (bench/validator_accuracy.py:
helixgate has an error exactly when Java recorded one); the exit code must say the same as the outcome.

One process per step, as the HL7 validator is run; the processes run side by side, one per core (a CI machine's
cores are its own), which changes nothing a step sees. Options no flag of the HL7 validator's CLI carries
(validateContains, allow-comments: switches of its test harness) are not given; UNMAPPED counts the steps they
concern."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import ROOT
from tests.profiles import corpus

THRESHOLD = 0.97  # the library path's threshold (test_corpus_agreement.py): the CLI must not do worse
UNMAPPED = ("validateContains", "allow-comments")  # harness switches the HL7 validator's CLI has no flag for
ERRORS = ("error", "fatal")


def cli_args(case: dict[str, Any], step: str, support: list[str], profiles: list[str], root: Path) -> list[str]:
    """The `helixgate validate` command line (after the command) for one step of a corpus case."""
    options = case.get("options") or {}
    profile_options = ((case.get("originalEntry") or {}).get("profile") or {}) if step == "profile" else {}
    args = ["--format", "json"]
    if options.get("validateReference") in ("CHECK_EXISTS", "CHECK_EXISTS_AND_TYPE"):
        args.append("-check-references")  # CHECK_VALID fetches files the corpus lacks, as in the library harness
    if options.get("assumeValidRestReferences") or profile_options.get("assumeValidRestReferences"):
        args.append("-assumeValidRestReferences")
    if options.get("security-checks"):
        args.append("-security-checks")
    if options.get("examples") is False:
        args += ["-allow-example-urls", "false"]
    if options.get("noHtmlInMarkdown"):
        args += ["-html-in-markdown", "error"]
    param = options.get("bundle-param")
    if isinstance(param, dict) and param.get("rule"):
        args += ["-bundle", param["rule"], param["profile"]]
    for s in support:
        args += ["-ig", str(root / s)]
    for url in profiles:
        args += ["-profile", url]
    return [*args, str(root / case["input"])]


def run_step(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "gateway.cli.main", "validate", *args], capture_output=True,
                          cwd=ROOT, env=env, timeout=300)
    row: dict[str, Any] = {"rc": proc.returncode, "stderr": proc.stderr.decode(errors="replace")[-300:]}
    try:
        outcome = orjson.loads(proc.stdout)
    except orjson.JSONDecodeError:
        return {**row, "got": -1, "note": "stdout is not JSON"}
    if outcome.get("resourceType") != "OperationOutcome":
        return {**row, "got": -1, "note": f"stdout is a {outcome.get('resourceType')}"}
    errors = [i for i in outcome["issue"] if i.get("severity") in ERRORS]
    return {**row, "got": len(errors), "messages": [i["details"]["text"][:120] for i in errors[:3]]}


def test_cli_verdict_agreement_with_the_java_validator(tmp_path_factory: pytest.TempPathFactory) -> None:
    harness = corpus.harness()  # skips, or fails under CI, without the corpus
    # An installed command has its modules' bytecode; without it (PYTHONDONTWRITEBYTECODE) each process would
    # compile them again, a third of its start. Kept outside the tree, for these processes only.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))
    manifest = orjson.loads((harness.CORPUS / "manifest-r4-selfcontained.json").read_bytes())
    rows, commands = [], []
    for case in manifest["test-cases"]:
        for step, expected, support, profiles in harness.steps(case):
            rows.append({"case": case["name"], "step": step, "expected": expected["errorCount"],
                         "unmapped": any(k in (case.get("options") or {}) for k in UNMAPPED)})
            commands.append(cli_args(case, step, support, profiles, harness.CORPUS))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for row, result in zip(rows, pool.map(lambda args: run_step(args, env), commands), strict=True):
            row.update(result)
    assert len(rows) >= 400
    broken = [r for r in rows if r["got"] < 0 or r["rc"] not in (0, 1) or (r["rc"] == 1) != (r["got"] > 0)]
    assert broken == [], broken[:5]  # every step: one OperationOutcome, and an exit code that says the same
    disagreements = [r for r in rows if not harness.agrees(r)]
    share = 1 - len(disagreements) / len(rows)
    listed = "\n".join(f"{r['case']}/{r['step']}: java={r['expected']} cli={r['got']} {r.get('messages', [])[:1]}"
                       for r in disagreements)
    print(f"CLI verdict agreement {share:.1%} of {len(rows)} steps; "
          f"{sum(r['unmapped'] for r in rows)} steps use options no HL7 CLI flag carries\n{listed}")
    assert share >= THRESHOLD, f"CLI verdict agreement fell to {share:.1%}:\n{listed}"
