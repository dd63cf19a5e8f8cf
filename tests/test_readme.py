"""The README's shell examples, run as written.

README.md is read when the tests run (others edit it): every ```sh (or bash, shell) block is split into commands
(`\\` continuations joined, comments dropped) and each command is either run or explicitly not run, with the reason,
below.

- Run: `helixgate convert|translate|validate` and `curl` lines, through bash, in a scratch folder where the repository's
  top-level folders (examples/, ...) are linked, so `examples/...` resolves and `> bundle.json` lands in the scratch
  folder. `helixgate` is this checkout's console script (pyproject's [project.scripts] entry, run with this
  interpreter), whatever is installed on the machine. The curl lines go to a real `helixgate serve` started on a free
  loopback port (HELIXGATE_PORT), their `http://127.0.0.1:8080` rewritten to it. Each must exit 0 and give sensible
  output: a Bundle with entries, a Parameters whose result is true, an ORU^R01, a CDA document, a VCF with records;
  where the line's comment starts with `→` (`# → wider  icd-10|K35.8`), the output holds each word after it.
- Not run: the commands in NOT_RUN_COMMANDS (installers, long-running servers, placeholder targets) and lines reading
  an input in NOT_RUN_INPUTS (files the repository does not ship, placeholder hosts). A later line reading a file
  that a not-run line would have written runs on a stand-in from STAND_INS, or is not run, saying why.
- Anything else (a new command, or an input neither the repository nor an earlier line provides) fails
  test_every_readme_command_is_run_or_explained: the README promises something this test cannot check.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import orjson
import pytest

from tests.conftest import ROOT, free_port

README = ROOT / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8080"  # the gateway's address in the README (HELIXGATE_HOST/PORT defaults)
RUN = ("helixgate convert", "helixgate translate", "helixgate validate", "curl")
NOT_RUN_COMMANDS = {
    "python3 -m pip": "installs the project into the machine's Python",
    "bash scripts/test": "is the test command itself",
    "helixgate serve": "runs until stopped; this test starts its own `helixgate serve` for the curl lines",
    "helixgate packages": "installs into (or lists) the user's FHIR package cache; scripts/test has filled it",
    "helixgate conformance": "runs suites against a vendor's server (fhir.example.org is a placeholder)",
    "helixgate worker": "runs until stopped and needs Redis and an upstream FHIR server",
    "helixgate keys": "writes the reader's API keys file (tests/gateway/auth run create, list and revoke)",
    "helixgate dlq": "needs Redis with dead letters; `list | show ID | replay ID` is a synopsis",
    "helixgate exchange": "tests/gateway/exchange/test_cli.py runs each of these on the example routes (PSEUDONYM and "
                          "mpi-identifiers.txt are the reader's own; keys new writes to /etc)",
    "export": "sets variables for the commands after it (a placeholder upstream, http://fhir.example)",
}
NOT_RUN_INPUTS = {
    "sample.vcf.gz": "the reader's own bgzipped VCF: the repository ships none (examples/ has a plain VCF)",
    "big.vcf.gz": "the reader's own large VCF: the repository ships none",
    "panel.bed": "the reader's own BED of regions to convert: the repository ships none",
    "studied.bed": "the reader's own BED of studied regions: the repository ships none",
    "fhir.example": "a placeholder host, not a server",
}
# file → repository input it is converted from (`helixgate convert INPUT > file`) when the README line that writes
# it is not run but a later line reads it
STAND_INS = {"bundle.json": "examples/germline-grch38.vcf"}
FILE = re.compile(r"^[\w./-]+\.(?:json|ndjson|hl7|er7|xml|vcf|gz|bed|tbi|csi|txt)$")
URL = re.compile(r"https?://[^\s'\"]+")
OUTPUT_FLAGS = ("-o", "--out", "--report")


@dataclass
class Command:
    line: int  # README line number of its first line
    heading: str
    text: str
    words: list[str] = field(default_factory=list)
    verdict: str = "run"  # run | not run | unexplained
    reason: str = ""
    stand_ins: dict[str, str] = field(default_factory=dict)

    def starts(self, prefix: str) -> bool:
        head = prefix.split()
        return self.words[:len(head)] == head

    @property
    def outputs(self) -> list[str]:
        return [b for a, b in zip(self.words, self.words[1:], strict=False) if a in (">", *OUTPUT_FLAGS)]

    @property
    def main_output(self) -> str | None:
        """The file the command's result goes to (`> FILE` or `-o FILE`), else None for stdout."""
        return next((b for a, b in zip(self.words, self.words[1:], strict=False) if a in (">", "-o", "--out")), None)

    @property
    def inputs(self) -> list[str]:
        out = []
        for i, w in enumerate(self.words[1:], 1):
            w = w.removeprefix("@") if self.words[0] == "curl" else w
            if FILE.match(w) and self.words[i - 1] not in (">", *OUTPUT_FLAGS):
                out.append(w)
        return out

    @property
    def hosts(self) -> list[str]:
        return [httpx.URL(u).netloc.decode() for u in URL.findall(self.text)]


@dataclass
class Block:
    line: int
    heading: str
    commands: list[Command]

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "top"


def blocks(text: str) -> list[Block]:
    """The ```sh blocks of the README with their commands, each classified."""
    out: list[Block] = []
    heading, block, pending, start = "", None, "", 0
    for n, line in enumerate(text.splitlines(), 1):
        if block is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.strip() in ("```sh", "```bash", "```shell"):
                block = Block(n + 1, heading, [])
            continue
        if line.strip() == "```":
            out.append(block)
            block = None
            continue
        if not pending:
            start = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command, pending = (pending + line).strip(), ""
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        if words:
            block.commands.append(Command(start, heading, command, words))
    for b in out:
        classify(b)
    return out


def classify(block: Block) -> None:
    """Decide, command by command, what runs: file flow within a block is followed (an input is in the repository,
    or written by an earlier command that runs, or by one that does not: then a stand-in or not run)."""
    written: dict[str, Command] = {}
    for cmd in block.commands:
        rule = next((p for p in NOT_RUN_COMMANDS if cmd.starts(p)), None)
        if rule is not None:
            cmd.verdict, cmd.reason = "not run", f"`{rule}` {NOT_RUN_COMMANDS[rule]}"
        elif not any(cmd.starts(p) for p in RUN):
            cmd.verdict, cmd.reason = "unexplained", "a command this test neither runs nor lists in NOT_RUN_COMMANDS"
        else:
            missing = [k for k in NOT_RUN_INPUTS if k in cmd.inputs or any(h.startswith(k) for h in cmd.hosts)]
            if missing:
                cmd.verdict, cmd.reason = "not run", "; ".join(f"{k}: {NOT_RUN_INPUTS[k]}" for k in missing)
            for host in cmd.hosts:
                if cmd.verdict == "run" and DEFAULT_BASE.split("//")[1] != host:
                    cmd.verdict, cmd.reason = "unexplained", f"calls {host}: not the gateway, not a known placeholder"
            for name in cmd.inputs if cmd.verdict == "run" else []:
                source = written.get(name)
                if source is None and "/" in name and (ROOT / name).is_file():
                    continue
                if source is not None and source.verdict == "run":
                    continue
                if source is not None and name in STAND_INS:
                    cmd.stand_ins[name] = STAND_INS[name]
                elif source is not None:
                    cmd.verdict, cmd.reason = "not run", f"reads {name}, written by README line {source.line}, not run"
                else:
                    cmd.verdict, cmd.reason = "unexplained", f"reads {name}: not in the repository, nor written above"
            for name in cmd.outputs if cmd.verdict == "run" else []:
                if "/" in name and (ROOT / name.split("/")[0]).is_dir():
                    cmd.verdict, cmd.reason = "unexplained", f"writes {name} inside the repository"
        for name in cmd.outputs:
            written[name] = cmd


def readme_blocks() -> list[Block]:
    return blocks(README.read_text(encoding="utf-8"))


def runnable_blocks() -> list[Any]:
    found = [b for b in readme_blocks() if any(c.verdict == "run" for c in b.commands)]
    ids = [b.id for b in found]
    return [pytest.param(b, id=i if ids.count(i) == 1 else f"{i}-{ids[:n].count(i) + 1}")
            for n, (b, i) in enumerate(zip(found, ids, strict=True))]


# --- running ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment the README's commands run in: `helixgate` on PATH is this checkout's entry point."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["helixgate"].partition(":")
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "helixgate"
    code = f"import sys; sys.argv[0] = 'helixgate'; from {module} import {function}; sys.exit({function}())"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)} \"$@\"\n")
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HELIXGATE_") or k in ("HELIXGATE_FHIR_PACKAGE_CACHE", "HELIXGATE_FHIR_REGISTRY")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


@pytest.fixture(scope="module")
def served(cli: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`helixgate serve` as the README starts it (embedded defaults), on a free loopback port: its base URL."""
    port = free_port()
    env = {**cli, "HELIXGATE_HOST": "127.0.0.1", "HELIXGATE_PORT": str(port)}
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["helixgate", "serve"], env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"helixgate serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"helixgate serve did not answer on {base}: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def sensible(data: bytes, where: str) -> str:
    """What the output is, asserting it is a useful one; fails with `where` otherwise."""
    text = data.strip()
    assert text, f"{where}: no output"
    doc = None
    if text[:1] == b"{":
        with contextlib.suppress(orjson.JSONDecodeError):  # else NDJSON, below
            doc = orjson.loads(text)
    if doc is not None:
        kind = doc.get("resourceType")
        if kind == "Bundle":
            assert doc.get("entry"), f"{where}: a Bundle without entries"
            return f"Bundle of {len(doc['entry'])}"
        if kind == "Parameters":
            params = {p.get("name"): p for p in doc.get("parameter", [])}
            assert params, f"{where}: an empty Parameters"
            if "result" in params:
                assert params["result"].get("valueBoolean") is True, f"{where}: result is not true: {doc}"
            return "Parameters"
        if kind is None and "metaData" in doc and "id" in doc:  # a GA4GH Phenopacket (protobuf JSON, no resourceType)
            from mappers.phenopacket import schema

            schema.read(text, "Phenopacket")  # raises unless the official schema reads it
            return "Phenopacket"
        assert kind not in (None, "OperationOutcome"), f"{where}: {text[:2000]!r}"
        return kind
    if text[:1] == b"{":  # NDJSON: one resource a line
        kinds = [orjson.loads(line).get("resourceType") for line in text.splitlines()]
        assert all(kinds), f"{where}: NDJSON lines without resourceType"
        return f"NDJSON of {len(kinds)}"
    if text.startswith(b"MSH|"):
        segments = text.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
        assert b"ORU^R01" in segments[0] and any(s.startswith(b"OBX|") for s in segments), f"{where}: {text[:500]!r}"
        return "ORU^R01"
    if text.startswith(b"##fileformat=VCF"):
        records = [ln for ln in text.splitlines() if ln and not ln.startswith(b"#")]
        assert records, f"{where}: a VCF without records"
        return f"VCF of {len(records)} records"
    if text.startswith(b"<"):
        root = ElementTree.fromstring(text)
        assert len(root), f"{where}: an empty XML document"
        return root.tag
    # plain text (helixgate translate: one line per match); exit 0 already says it translated
    return "text"


def run(cmd: Command, work: Path, env: dict[str, str], base: str | None) -> str:
    where = f"README.md:{cmd.line} `{cmd.text}`"
    for name, source in cmd.stand_ins.items():
        made = subprocess.run(["helixgate", "convert", source], cwd=work, env=env, capture_output=True, timeout=120)
        assert made.returncode == 0, f"{where}: stand-in {name} from {source}: {made.stderr.decode()[-2000:]}"
        (work / name).write_bytes(made.stdout)
    text = cmd.text.replace(DEFAULT_BASE, base) if base else cmd.text
    r = subprocess.run(["bash", "-o", "pipefail", "-c", text], cwd=work, env=env, capture_output=True, timeout=120)
    assert r.returncode == 0, f"{where}: exit {r.returncode}\n{r.stderr.decode()[-3000:]}"
    assert b"Traceback" not in r.stderr, f"{where}: {r.stderr.decode()[-3000:]}"
    output = cmd.main_output
    data = (work / output).read_bytes() if output else r.stdout
    kind = sensible(data, where)
    comment = cmd.text.split(" # ", 1)[1].strip() if " # " in cmd.text else ""
    if comment.startswith("→"):  # the README states the result: `# → wider  icd-10|K35.8`
        missing = [w for w in comment.removeprefix("→").split() if w.encode() not in data]
        assert not missing, f"{where}: the output lacks {missing}: {data[:1000]!r}"
    return kind


# --- the tests -------------------------------------------------------------------------------------------------------

def test_every_readme_command_is_run_or_explained() -> None:
    found = readme_blocks()
    commands = [c for b in found for c in b.commands]
    unexplained = [f"README.md:{c.line} `{c.text}`: {c.reason}" for c in commands if c.verdict == "unexplained"]
    assert not unexplained, "\n".join(unexplained)
    ran = [c for c in commands if c.verdict == "run"]
    assert any(c.starts("curl") for c in ran) and any(c.starts("helixgate convert") for c in ran), \
        "the README's examples were not found: is its ```sh block format unchanged?"
    for c in commands:  # shown with -rP / -s
        why = c.reason or ", ".join(f"{k} made from {v}" for k, v in c.stand_ins.items())
        print(f"README.md:{c.line} {c.verdict}{': ' + why if why else ''}  `{c.text}`")


@pytest.mark.parametrize("block", runnable_blocks())
def test_readme_block_runs_as_written(block: Block, cli: dict[str, str], request: pytest.FixtureRequest,
                                      tmp_path: Path) -> None:
    for entry in ROOT.iterdir():  # the repository's folders, read-only by convention: outputs stay in tmp_path
        if entry.is_dir() and not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry, target_is_directory=True)
    base = request.getfixturevalue("served") if any(c.hosts for c in block.commands if c.verdict == "run") else None
    results = [f"README.md:{c.line} {run(c, tmp_path, cli, base)}" for c in block.commands if c.verdict == "run"]
    print("\n".join(results))
