"""FHIR validation throughput: helixgate vs @medplum/core (node) vs fhir.resources R4B, on the same files.

Inputs: the Genomics Reporting IG 3.0.0 examples installed under ~/.fhir/packages (variant Observations, i.e.
meta.profile = .../StructureDefinition/variant, and the example Bundles), plus synthetic Bundles of 10k and 100k
entries built from the variant Observations to check that Bundle validation scales linearly.

    python bench/bench_validate.py [--seconds 5] [--quick] [--sizes 10000,100000] [--no-node] [--no-scale]
                                   [--profile auto|always|never] [--json out.json]
    python bench/bench_validate.py --from-json out.json     # print the report of a saved run again

Rates are given per wall-clock second and per CPU-second of the timed loop; on a shared VM the second is the fairer
per-core comparison. `--profile auto` (the default) adds a cProfile of the helixgate variant loop when helixgate
validates fewer than half as many Observations per CPU-second as @medplum/core.

All peers run one after the other (never at the same time) on one core each; only the validation loops are timed,
the one-time load/index/compile costs are reported on their own. @medplum/core runs in node from bench/node
(installed with `npm install --prefix bench/node` when bench/node/node_modules is missing). Each synthetic Bundle is
validated in a fresh child process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import cProfile
import hashlib
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NODE_DIR = ROOT / "bench" / "node"
IG = "hl7.fhir.uv.genomics-reporting#3.0.0"
IG_DIR = Path.home() / ".fhir" / "packages" / IG / "package"
VARIANT = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"
GOAL_RATIO = 10.0  # t(100k)/t(10k): linear would be 10 (issue 14: ≤ 10×)
GOAL_RSS = 2.0  # peak RSS ≤ 2× the Bundle's in-memory size (issue 14)
# Issue 14's Measured list: per-core ratios to @medplum/core in the same run, and absolute goals
GOAL_FIRST_PASS = 5.0  # variant Observations, first pass over distinct files
GOAL_STEADY = 8.0  # variant Observations, steady state
GOAL_BUNDLES = 4.0  # whole example Bundles
GOAL_ORU = 1000.0  # genetic ORU^R01 converted and validated, messages per CPU-second
GOAL_COLD = 1.5  # seconds from a new process (packages installed) to the first verdict
ORU_DIR = ROOT / "tests" / "mappers" / "hl7v2" / "messages"

Doc = dict[str, Any]
Named = list[tuple[str, Doc]]


# ---------------------------------------------------------------- inputs
def examples() -> tuple[Named, Named, list[Doc]]:
    """(variant Observations, example Bundles, the IG's StructureDefinitions), sorted by file name."""
    if not IG_DIR.is_dir():
        sys.exit(f"{IG_DIR} is missing: run `python -m gateway.cli.main packages install` first")
    variants: Named = []
    bundles: Named = []
    for f in sorted((IG_DIR / "example").glob("*.json")):
        doc = orjson.loads(f.read_bytes())
        if f.name.startswith("Observation-") and VARIANT in (doc.get("meta") or {}).get("profile", []):
            variants.append((f.name, doc))
        elif f.name.startswith("Bundle-") and doc.get("resourceType") == "Bundle":
            bundles.append((f.name, doc))
    sds = [orjson.loads(f.read_bytes()) for f in sorted(IG_DIR.glob("StructureDefinition-*.json"))]
    return variants, bundles, sds


def declared(doc: Doc) -> tuple[str, ...]:
    return tuple(p for p in (doc.get("meta") or {}).get("profile", []) if isinstance(p, str))


def without_profiles(doc: Doc) -> Doc:
    """A copy with meta.profile removed, so that only the base R4 definition applies."""
    out = copy.deepcopy(doc)
    meta = out.get("meta")
    if isinstance(meta, dict):
        meta.pop("profile", None)
        if not meta:
            del out["meta"]
    return out


def synthetic_bundle(n_entries: int, variants: Sequence[Doc], seed: int = 20261124) -> Doc:
    """A collection Bundle: one Patient then n_entries - 1 copies of the variant examples, each with a unique id,
    a urn:uuid fullUrl and subject pointing at the Patient entry."""
    rng = random.Random(seed)

    def urn() -> str:
        return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"

    patient_url = urn()
    entry: list[Doc] = [{"fullUrl": patient_url, "resource": {
        "resourceType": "Patient", "id": "bench-patient", "name": [{"family": "Bench", "given": ["Synthetic"]}],
        "gender": "unknown", "birthDate": "1970-01-01"}}]
    blobs = [orjson.dumps(v) for v in variants]
    for i in range(n_entries - 1):
        obs = orjson.loads(blobs[i % len(blobs)])
        obs["id"] = f"bench-variant-{i}"
        obs["subject"] = {"reference": patient_url}
        entry.append({"fullUrl": urn(), "resource": obs})
    return {"resourceType": "Bundle", "id": f"bench-{n_entries}", "type": "collection", "entry": entry}


# ---------------------------------------------------------------- timing helpers
def rate(items: Sequence[Any], fn: Callable[[Any], Any], seconds: float) -> dict[str, float]:
    """Items/s of fn over `items`, full passes until `seconds` have elapsed (at least one pass)."""
    n = passes = 0
    start, cpu0 = time.perf_counter(), time.process_time()
    while True:
        for it in items:
            fn(it)
        n += len(items)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return {"per_second": n / elapsed, "passes": passes, "seconds": elapsed,
            "cpu_seconds": time.process_time() - cpu0}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def code_fingerprint() -> str:
    """Short hash of profiles/**/*.py: the validator is edited concurrently, so every part of a run records it."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "profiles").rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    return {"python": sys.version.split()[0], "cpus": os.cpu_count(), "cpu": model,
            "load_average_start": os.getloadavg(), "profiles_code": code_fingerprint()}


def severities(issues: Sequence[Any]) -> dict[str, int]:
    return dict(Counter(i.severity for i in issues))


# ---------------------------------------------------------------- helixgate
def forget(v: Any) -> None:
    """Drop what the validator remembers about content it has seen (verdicts on recurring values, the slice each
    item fell in, regular-expression verdicts on short strings, narrative checks), keeping what it compiled from
    the definitions: the next pass sees every file for the first time, as a new process with warm compiled
    checkers would (Validator.forget())."""
    v.forget()


def first_pass_rate(items: Sequence[Any], fn: Callable[[Any], Any], v: Any, seconds: float) -> dict[str, float]:
    """Items/s of fn over `items` when every pass starts with nothing remembered (forget(v) is not timed)."""
    n = passes = 0
    elapsed = cpu = 0.0
    while True:
        forget(v)
        t0, c0 = time.perf_counter(), time.process_time()
        for it in items:
            fn(it)
        elapsed += time.perf_counter() - t0
        cpu += time.process_time() - c0
        n += len(items)
        passes += 1
        if elapsed >= seconds:
            break
    return {"per_second": n / elapsed, "passes": passes, "seconds": elapsed, "cpu_seconds": cpu}


def oru_messages() -> list[bytes]:
    """The authored genetic ORU^R01 messages of the HL7 v2 mapper tests (bench/bench_convert.py's set)."""
    return [p.read_bytes() for p in sorted(ORU_DIR.glob("*.hl7"))]


def bench_oru(v: Any, seconds: float) -> dict[str, Any]:
    """ORU^R01 → FHIR as every conversion runs it (gateway.convert.run): alone, then with the output validated."""
    from gateway.convert import run
    from gateway.formats import HUB, Request

    messages = oru_messages()
    alone = Request("hl7v2", HUB, allow_invalid=True)
    checked = Request("hl7v2", HUB)
    failed = {}
    for i, m in enumerate(messages):
        try:
            run(m, checked, v)
        except Exception as e:  # InvalidOutput: the row still runs (allow_invalid), the report says so
            failed[i] = str(e)[:200]
    if failed:
        checked = Request("hl7v2", HUB, allow_invalid=True)
    entries = sum(len(orjson.loads(run(m, alone).body).get("entry") or []) for m in messages)
    return {"n": len(messages), "entries": entries, "failed": failed,
            "alone": rate(messages, lambda m: run(m, alone), seconds),
            "validated_first": first_pass_rate(messages, lambda m: run(m, checked, v), v, seconds),
            "validated": rate(messages, lambda m: run(m, checked, v), seconds)}


COLD_CHILD = """
import sys, time
t0 = time.perf_counter()
import orjson
from profiles.context import load
from profiles.validator import Validator
t1 = time.perf_counter()
defs = load()
t2 = time.perf_counter()
v = Validator(defs)
doc = orjson.loads(open(sys.argv[1], "rb").read())
issues = v.validate(doc, profiles=doc["meta"]["profile"])
t3 = time.perf_counter()
print(orjson.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_verdict_s": t3 - t2,
                    "errors": sum(i.severity in ("error", "fatal") for i in issues)}).decode())
"""


def bench_cold(variant_file: Path, runs: int = 3) -> dict[str, Any]:
    """A new process (packages installed) to its first verdict on one variant Observation, wall time from spawn to
    exit: the library (import, load, validate) and `helixgate validate FILE`. Best of `runs`, all runs kept."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lib, cli, phases = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", COLD_CHILD, str(variant_file)], capture_output=True, text=True,
                              cwd=ROOT, env=env)
        lib.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return {"failed": proc.stderr.strip().splitlines()[-1:]}
        phases.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "gateway.cli.main", "validate", "-q", str(variant_file)],
                              capture_output=True, text=True, cwd=ROOT, env=env)
        cli.append(time.perf_counter() - t0)
    best = min(range(runs), key=lambda i: lib[i])
    return {"library_s": lib, "cli_s": cli, "phases": phases[best], "cli_exit": proc.returncode}


def bench_helixgate(variants: Named, bundles: Named, seconds: float) -> tuple[dict[str, Any], Callable[[], Any]]:
    """Rates and one-time costs, plus the timed variant loop (for profiling)."""
    t0 = time.perf_counter()
    from profiles.context import load
    from profiles.validator import Validator
    t_import = time.perf_counter() - t0

    t0 = time.perf_counter()
    defs = load()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    v = Validator(defs)
    t_ctor = time.perf_counter() - t0
    t0 = time.perf_counter()
    compiled = v.node(VARIANT) is not None
    t_variant_compile = time.perf_counter() - t0

    obs = [(name, doc, declared(doc)) for name, doc in variants]

    def one(o: tuple[str, Doc, tuple[str, ...]]) -> list[Any]:
        return v.validate(o[1], profiles=o[2])

    # cold pass: lazily compiles the data types and extensions the examples touch; results kept for the report
    t0 = time.perf_counter()
    obs_issues = {name: one((name, doc, p)) for name, doc, p in obs}
    t_obs_cold = time.perf_counter() - t0
    obs_rate = rate(obs, one, seconds)
    obs_first = first_pass_rate(obs, one, v, seconds)

    base = [(name, without_profiles(doc), ()) for name, doc, _ in obs]
    base_issues = {name: one((name, doc, p)) for name, doc, p in base}
    base_rate = rate(base, one, seconds)

    t0 = time.perf_counter()
    bundle_issues = {name: v.validate(doc) for name, doc in bundles}
    t_bundle_cold = time.perf_counter() - t0
    bundle_rate = rate([d for _, d in bundles], v.validate, seconds)
    bundle_first = first_pass_rate([d for _, d in bundles], v.validate, v, seconds)
    n_entries = sum(len(d.get("entry") or []) for _, d in bundles)

    out: dict[str, Any] = {
        "import_s": t_import, "load_s": t_load, "validator_s": t_ctor,
        "variant_profile_compiled": compiled, "variant_compile_s": t_variant_compile,
        "obs_cold_pass_s": t_obs_cold, "obs_warm_pass_s": len(obs) / obs_rate["per_second"],
        "bundle_cold_pass_s": t_bundle_cold, "bundle_warm_pass_s": len(bundles) / bundle_rate["per_second"],
        "observations": {"n": len(obs), **obs_rate, "issues": {k: severities(i) for k, i in obs_issues.items()},
                         "errors": _errors(obs_issues)},
        "observations_first": {"n": len(obs), **obs_first},
        "observations_base": {"n": len(base), **base_rate, "errors": _errors(base_issues)},
        "bundles_first": {"n": len(bundles), "entries": n_entries, **bundle_first},
        "oru": bench_oru(v, seconds),
        "bundles": {"n": len(bundles), "entries": n_entries, **bundle_rate,
                    "entries_per_second": bundle_rate["per_second"] * n_entries / len(bundles),
                    "issues": {k: severities(i) for k, i in bundle_issues.items()},
                    "errors": _errors(bundle_issues)},
        "rss_mb": rss_mb(),
    }
    return out, lambda: [one(o) for o in obs]


def _errors(by_name: dict[str, list[Any]]) -> dict[str, list[str]]:
    return {name: [f"{i.code} {i.expression}: {i.message}" for i in issues if i.severity in ("error", "fatal")]
            for name, issues in by_name.items()
            if any(i.severity in ("error", "fatal") for i in issues)}


def profile_loop(fn: Callable[[], Any], seconds: float, top: int = 25) -> dict[str, Any]:
    """cProfile of fn() repeated for about `seconds`: the top functions by cumulative and by own time."""
    prof = cProfile.Profile()
    start = time.perf_counter()
    passes = 0
    prof.enable()
    while time.perf_counter() - start < seconds:
        fn()
        passes += 1
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = max(ct for _, _, _, ct, _ in stats.values())
    rows = []
    for (file, line, name), (prim, calls, tt, ct, _) in stats.items():
        if Path(file).name == Path(__file__).name:
            continue
        rows.append({"function": f"{_short(file)}:{line}({name})", "calls": calls if calls == prim else
                     f"{calls}/{prim}", "tottime": tt, "cumtime": ct, "share": ct / total})
    return {"passes": passes, "seconds": total,
            "cumulative": sorted(rows, key=lambda r: -r["cumtime"])[:top],
            "tottime": sorted(rows, key=lambda r: -r["tottime"])[:top]}


def invariant_costs(fn: Callable[[], Any], seconds: float, top: int = 12) -> dict[str, Any]:
    """Wall time per FHIRPath invariant expression over fn() repeated for about `seconds`.

    Wraps profiles.fhirpath.evaluate for the duration only (the validator calls it through the module)."""
    from profiles import fhirpath

    spent: dict[str, list[float]] = {}
    original = fhirpath.evaluate

    def timed(expression: str, *args: Any) -> bool | None:
        t0 = time.perf_counter()
        try:
            return original(expression, *args)
        finally:
            cell = spent.setdefault(expression, [0, 0.0])
            cell[0] += 1
            cell[1] += time.perf_counter() - t0

    fhirpath.evaluate = timed  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        passes = 0
        while time.perf_counter() - start < seconds:
            fn()
            passes += 1
        total = time.perf_counter() - start
    finally:
        fhirpath.evaluate = original  # type: ignore[assignment]
    rows = sorted(({"expression": e, "calls": int(c), "seconds": t} for e, (c, t) in spent.items()),
                  key=lambda r: -r["seconds"])
    return {"passes": passes, "seconds": total, "fhirpath_seconds": sum(r["seconds"] for r in rows),
            "distinct": len(rows), "top": rows[:top]}


def invariant_table(inv: dict[str, Any]) -> str:
    out = ["| FHIRPath expression | Calls per pass | Seconds | Share of loop |", "| --- | ---: | ---: | ---: |"]
    for r in inv["top"]:
        expr = r["expression"].replace("|", "\\|")
        expr = expr if len(expr) <= 90 else expr[:87] + "..."
        out.append(f"| `{expr}` | {r['calls'] / inv['passes']:.0f} | {r['seconds']:.3f} | "
                   f"{r['seconds'] / inv['seconds']:.0%} |")
    return "\n".join(out)


def _short(file: str) -> str:
    """Repository-relative path, `pkg/module.py` for installed packages, `~` for builtins."""
    if file == "~":
        return "builtin"
    p = Path(file)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        parts = p.parts
        return "/".join(parts[parts.index("site-packages") + 1:]) if "site-packages" in parts else p.name


def profile_table(rows: list[dict[str, Any]]) -> str:
    out = ["| Function | Calls | Own s | Cumulative s | Share of loop |", "| --- | ---: | ---: | ---: | ---: |"]
    out += [f"| `{r['function']}` | {r['calls']} | {r['tottime']:.3f} | {r['cumtime']:.3f} | {r['share']:.0%} |"
            for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- fhir.resources
def bench_fhir_resources(variants: Named, seconds: float) -> dict[str, Any] | None:
    try:
        t0 = time.perf_counter()
        from importlib.metadata import version

        from fhir.resources.R4B.observation import Observation
        t_import = time.perf_counter() - t0
    except ImportError:
        print("fhir.resources is not installed (pip install fhir.resources): skipped", file=sys.stderr)
        return None
    docs = [d for _, d in variants]
    failed: dict[str, str] = {}
    t0 = time.perf_counter()
    for name, d in variants:
        try:
            Observation.model_validate(d)
        except Exception as e:  # pydantic ValidationError: report, keep going
            failed[name] = str(e).splitlines()[0]
    t_cold = time.perf_counter() - t0

    def one(d: Doc) -> None:
        with contextlib.suppress(Exception):  # failures were collected above
            Observation.model_validate(d)

    r = rate(docs, one, seconds)
    return {"version": version("fhir.resources"), "pydantic": version("pydantic"), "import_s": t_import,
            "cold_pass_s": t_cold, "n": len(docs), **r, "failed": failed}


# ---------------------------------------------------------------- @medplum/core in node
def bench_medplum(variants: Named, bundles: Named, sds: list[Doc], seconds: float) -> dict[str, Any] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        print("node is not on PATH: @medplum/core skipped", file=sys.stderr)
        return None
    if not (NODE_DIR / "node_modules" / "@medplum" / "core").is_dir():
        if npm is None:
            print("npm is not on PATH: @medplum/core skipped", file=sys.stderr)
            return None
        print("installing @medplum/core into bench/node/node_modules ...", file=sys.stderr)
        subprocess.run([npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"], check=True,
                       stdout=sys.stderr)
    payload = {
        "seconds": seconds,
        "structure_definitions": sds,
        "observations": [{"name": n, "resource": d, "profile": (declared(d) or (None,))[0]} for n, d in variants],
        "bundles": [{"name": n, "resource": d} for n, d in bundles],
    }
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        path = Path(tmp) / "input.json"
        path.write_bytes(orjson.dumps(payload))
        t0 = time.perf_counter()
        proc = subprocess.run([node, str(NODE_DIR / "validate.cjs"), str(path)], cwd=NODE_DIR,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(f"node failed ({proc.returncode}):\n{proc.stderr}", file=sys.stderr)
        return None
    out = json.loads(proc.stdout)
    out["process_wall_s"] = wall
    out["cold"] = medplum_cold(node, {**payload, "observations": payload["observations"][:1], "bundles": [],
                                      "cold": True})
    return out


def medplum_cold(node: str, payload: dict[str, Any], runs: int = 3) -> dict[str, Any]:
    """A new node process indexing R4 core and the IG, to its first verdict (wall from spawn to exit), best of
    `runs`."""
    walls, phases = [], []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        path = Path(tmp) / "input.json"
        path.write_bytes(orjson.dumps(payload))
        for _ in range(runs):
            t0 = time.perf_counter()
            proc = subprocess.run([node, str(NODE_DIR / "validate.cjs"), str(path)], cwd=NODE_DIR,
                                  capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                return {"failed": proc.stderr.strip().splitlines()[-1:]}
            phases.append(json.loads(proc.stdout))
    best = min(range(runs), key=lambda i: walls[i])
    return {"process_s": walls, **phases[best]}


# ---------------------------------------------------------------- scaling (child processes)
def scale_child(n: int) -> None:
    """Run in a fresh process: build an n-entry Bundle, warm the validator on a small one, time the big one."""
    from profiles.context import load
    from profiles.validator import Validator

    variants, _, _ = examples()
    docs = [d for _, d in variants]
    v = Validator(load())
    v.validate(synthetic_bundle(2 * len(docs) + 1, docs))  # compiles everything the big Bundle needs
    rss_before_build = rss_mb()
    t0 = time.perf_counter()
    bundle = synthetic_bundle(n, docs)
    t_build = time.perf_counter() - t0
    rss_before = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    issues = v.validate(bundle)
    t_validate, cpu = time.perf_counter() - t0, time.process_time() - c0
    sev = severities(issues)
    def top(*sev: str) -> list[tuple[str, int]]:
        return Counter(f"{i.code}: {i.message[:90]}" for i in issues if i.severity in sev).most_common(5)

    print(json.dumps({
        "entries": n, "build_s": t_build, "validate_s": t_validate, "cpu_s": cpu,
        "entries_per_second": n / t_validate, "issues": sev, "top_errors": top("error", "fatal"),
        "top_warnings": top("warning"), "top_information": top("information"), "profiles_code": code_fingerprint(),
        "rss_before_build_mb": rss_before_build, "bundle_mb": rss_before - rss_before_build,
        "rss_before_validate_mb": rss_before, "rss_after_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(),
    }))


def bench_scaling(sizes: Sequence[int]) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        print(f"scaling: {n:,} entries ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--scale-child", str(n)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"scaling child for {n} failed:\n{proc.stderr}", file=sys.stderr)
            results.append({"entries": n, "failed": proc.stderr.strip().splitlines()[-1:]})
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["child_wall_s"] = time.perf_counter() - t0
        print(f"  {r['validate_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
        results.append(r)
    return results


# ---------------------------------------------------------------- report
def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"


def per_cpu(r: dict[str, Any]) -> float:
    """Items per CPU-second of the timed loop: the per-core rate, robust to a busy shared VM."""
    return r["per_second"] * r["seconds"] / r["cpu_seconds"] if r.get("cpu_seconds") else r["per_second"]


def report(res: dict[str, Any]) -> str:
    h, fr, mp, sc = res["helixgate"], res.get("fhir_resources"), res.get("medplum"), res.get("scaling") or []
    ho, hb, m = h["observations"], h["bundles"], res["machine"]
    hv, hc = ho["per_second"], per_cpu(ho)

    def obs_row(label: str, against: str, r: dict[str, Any], bad: int) -> str:
        return (f"| {label} | {against} | {fmt(r['per_second'])} | {fmt(per_cpu(r))} | {per_cpu(r) / hc:.3f}× | "
                f"{bad} of {r['n']} |")

    lines = [
        f"{ho['n']} variant Observations and {hb['n']} example Bundles ({hb['entries']} entries) from {IG}; "
        f"Python {m['python']}, {m['cpus']} × {m['cpu']}, >= {res['seconds']:g} s per row, one peer at a time; "
        f"load average {m['load_average_start'][0]:.1f} at start, {m.get('load_average_end', [0])[0]:.1f} at end; "
        f"profiles/ code {m['profiles_code']}",
        "",
        "| Variant Observations | Checked against | Obs/s | Obs per CPU-s | Ratio to helixgate (per CPU-s) | "
        "Rejected examples |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        obs_row("helixgate, full profile", "variant profile + base R4", ho, len(ho["errors"])),
        *([obs_row("helixgate, full profile, first pass (nothing remembered)", "variant profile + base R4",
                   h["observations_first"], len(ho["errors"]))] if "observations_first" in h else []),
        obs_row("helixgate, base R4 only (meta.profile removed)", "base R4", h["observations_base"],
                len(h["observations_base"]["errors"])),
    ]
    if mp:
        o = mp["observations"]
        against = Counter(r["against"] for r in o["results"])
        what = ", ".join(f"{k if k == 'base R4' else 'profile'} ×{v}" for k, v in against.items())
        lines.append(obs_row(f"@medplum/core {mp['medplum_core']} validateResource (node {mp['node']})", what, o,
                             sum(1 for r in o["results"] if r["errors"])))
        if "observations_first" in mp:
            lines.append(obs_row(f"@medplum/core {mp['medplum_core']}, first pass after indexing", what,
                                 mp["observations_first"], sum(1 for r in o["results"] if r["errors"])))
    if fr:
        lines.append(obs_row(f"fhir.resources {fr['version']} R4B Observation.model_validate", "R4B model (pydantic)",
                             fr, len(fr["failed"])))
    lines += [
        "",
        "| Example Bundles (whole) | Entries checked against | Bundles/s | Entries/s | Entries per CPU-s | "
        "Ratio to helixgate (per CPU-s) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        f"| helixgate | meta.profile of each entry + base R4, in-Bundle resolve() | {fmt(hb['per_second'])} | "
        f"{fmt(hb['entries_per_second'])} | {fmt(per_cpu(hb) * hb['entries'] / hb['n'])} | 1.000× |",
    ]
    if "bundles_first" in h:
        bf = h["bundles_first"]
        lines.append(f"| helixgate, first pass (nothing remembered) | same | {fmt(bf['per_second'])} | "
                     f"{fmt(bf['per_second'] * bf['entries'] / bf['n'])} | {fmt(per_cpu(bf) * bf['entries'] / bf['n'])}"
                     f" | {per_cpu(bf) / per_cpu(hb):.3f}× |")
    if mp and mp.get("bundles"):
        b = mp["bundles"]
        lines.append(f"| @medplum/core {mp['medplum_core']} | base R4 only (meta.profile not followed) | "
                     f"{fmt(b['per_second'])} | {fmt(b['entries_per_second'])} | "
                     f"{fmt(per_cpu(b) * b['entries'] / b['n'])} | {per_cpu(b) / per_cpu(hb):.3f}× |")
    lines += [
        "",
        "| One-time cost | Seconds |",
        "| --- | ---: |",
        f"| helixgate: import profiles.* | {h['import_s']:.2f} |",
        f"| helixgate: `load()` (R4 core + Genomics IG + IPS + deps, from ~/.fhir/packages) | {h['load_s']:.2f} |",
        f"| helixgate: `Validator(defs)` | {h['validator_s']:.3f} |",
        f"| helixgate: compile the variant profile (snapshot + compile) | {h['variant_compile_s']:.3f} |",
        f"| helixgate: first pass over the variant Observations minus a warm pass (lazy type compile) | "
        f"{max(0.0, h['obs_cold_pass_s'] - h['obs_warm_pass_s']):.2f} |",
        f"| helixgate: first pass over the example Bundles minus a warm pass (other profiles) | "
        f"{max(0.0, h['bundle_cold_pass_s'] - h['bundle_warm_pass_s']):.2f} |",
    ]
    if mp:
        core_fail = sum(1 for f in mp["failures"] if f["origin"] == "core")
        lines += [
            f"| @medplum/core: index R4 core (types + resources bundles, others one by one: {core_fail} throw) | "
            f"{mp['index_core_ms'] / 1000:.2f} |",
            f"| @medplum/core: index the IG's {mp['ig_sds']} SDs one by one ({mp['ig_sds'] - mp['ig_sds_indexed']} "
            f"throw) | {mp['index_ig_ms'] / 1000:.2f} |",
        ]
    if fr:
        lines.append(f"| fhir.resources: import R4B Observation model | {fr['import_s']:.2f} |")
    oru = h.get("oru")
    if oru:
        lines += [
            "",
            f"| Genetic ORU^R01 → FHIR ({oru['n']} messages, {oru['entries']} entries), `gateway.convert.run` | "
            "Messages/s | Messages per CPU-s | Entries per CPU-s |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label, key in (("converted only (validator off)", "alone"),
                           ("converted and validated, first pass (nothing remembered)", "validated_first"),
                           ("converted and validated, steady", "validated")):
            r = oru[key]
            lines.append(f"| {label} | {fmt(r['per_second'])} | {fmt(per_cpu(r))} | "
                         f"{fmt(per_cpu(r) * oru['entries'] / oru['n'])} |")
        if oru["failed"]:
            lines.append(f"\nWARNING: {len(oru['failed'])} conversions had validation errors (timed with "
                         "allow-invalid): " + "; ".join(oru["failed"].values())[:300])
    cold = res.get("cold")
    if cold and "library_s" in cold:
        ph = cold["phases"]
        lines += [
            "",
            "| Cold start: new process (packages installed) to first verdict | Seconds (best; all runs) |",
            "| --- | ---: |",
            f"| helixgate library: spawn, import, `load()`, `Validator`, validate one variant Observation | "
            f"{min(cold['library_s']):.2f} ({', '.join(f'{x:.2f}' for x in cold['library_s'])}) |",
            f"| — of which import / load / first validate (best run, in process) | {ph['import_s']:.2f} / "
            f"{ph['load_s']:.2f} / {ph['first_verdict_s']:.2f} |",
            f"| `helixgate validate FILE` (the CLI, same file) | {min(cold['cli_s']):.2f} "
            f"({', '.join(f'{x:.2f}' for x in cold['cli_s'])}) |",
        ]
        mc = (mp or {}).get("cold") or {}
        if "process_s" in mc:
            lines += [
                f"| @medplum/core: node process, index R4 core + the IG, validate one | {min(mc['process_s']):.2f} "
                f"({', '.join(f'{x:.2f}' for x in mc['process_s'])}) |",
                f"| — of which index R4 core / the IG (best run) | {mc['index_core_ms'] / 1000:.2f} / "
                f"{mc['index_ig_ms'] / 1000:.2f} |",
            ]
    if sc:
        lines += [
            "",
            "| Synthetic Bundle entries (1 Patient + variant Observations) | Validate s (wall) | CPU s | "
            "Entries per CPU-s | Build s | Bundle in memory MB | Peak RSS MB | Peak RSS / Bundle | Errors |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in sc:
            if "validate_s" not in r:
                lines.append(f"| {r['entries']:,} | failed: {r.get('failed')} | | | | | | |")
                continue
            lines.append(f"| {r['entries']:,} | {r['validate_s']:.1f} | {r['cpu_s']:.1f} | "
                         f"{fmt(r['entries'] / r['cpu_s'])} | {r['build_s']:.1f} | {r['bundle_mb']:.0f} | "
                         f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / r['bundle_mb']:.2f}× | "
                         f"{r['issues'].get('error', 0) + r['issues'].get('fatal', 0)} |")
        ok = [r for r in sc if "validate_s" in r]
        changed = {r["profiles_code"] for r in ok} - {m["profiles_code"]}
        if changed:
            lines.append(f"\nWARNING: profiles/ changed during the run (children saw {sorted(changed)}): rerun")
        if len(ok) >= 2:
            a, b = ok[0], ok[-1]
            goal = GOAL_RATIO * (b["entries"] / a["entries"]) / 10
            wall, cpu = b["validate_s"] / a["validate_s"], b["cpu_s"] / a["cpu_s"]
            lines.append(f"\nt({b['entries']:,}) / t({a['entries']:,}) = {wall:.1f}× wall, {cpu:.1f}× CPU, for "
                         f"{b['entries'] / a['entries']:.0f}× the entries (goal ≤ {goal:.0f}×: "
                         f"{'met' if max(wall, cpu) <= goal else 'met on CPU time' if cpu <= goal else 'NOT met'})")
    lines.append("")
    if mp:
        o = mp["observations"]
        lines.append(f"helixgate full profile vs @medplum/core per core: {hc / per_cpu(o):.3f}× "
                     f"(wall: {hv / o['per_second']:.3f}×; CPU/wall in the timed loop: helixgate "
                     f"{ho['cpu_seconds'] / ho['seconds']:.2f}, node {o['cpu_seconds'] / o['seconds']:.2f})")
        lines.append("Medplum could not index: " + ", ".join(
            f"{f['url'].rsplit('/', 1)[-1]} ({f['error'][:60]})" for f in mp["failures"]))
    if fr:
        lines.append(f"helixgate full profile vs fhir.resources per core: {hc / per_cpu(fr):.3f}×")
    return "\n".join(lines)


def targets(res: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """Issue 14's Measured list: (figure, measured, goal, met) from one run; met is None when not measured."""
    h, mp = res["helixgate"], res.get("medplum") or {}
    out: list[tuple[str, str, str, bool | None]] = []

    def ratio(label: str, ours: dict[str, Any] | None, theirs: dict[str, Any] | None, goal: float,
              shown: float = 1.0) -> None:
        """`shown`: what one timed item stands for in the figures printed (a Bundle's entries)."""
        if not ours or not theirs:
            out.append((label, "not measured", f"≥ {goal:g}×", None))
            return
        x = per_cpu(ours) / per_cpu(theirs)
        out.append((label, f"{x:.2f}× ({fmt(per_cpu(ours) * shown)} vs {fmt(per_cpu(theirs) * shown)} per CPU-s)",
                    f"≥ {goal:g}×", x >= goal))

    ratio("variant Observations, full profile, first pass over distinct files ÷ @medplum/core (base R4, its "
          "steady loop)", h.get("observations_first"), mp.get("observations"), GOAL_FIRST_PASS)
    ratio("variant Observations, full profile, steady state ÷ @medplum/core", h["observations"],
          mp.get("observations"), GOAL_STEADY)
    hb, mb = h["bundles"], mp.get("bundles")
    ratio("whole example Bundles (entries per CPU-s) ÷ @medplum/core", hb, mb, GOAL_BUNDLES,
          hb["entries"] / hb["n"])
    ratio("whole example Bundles, first pass (nothing remembered) ÷ @medplum/core", h.get("bundles_first"), mb,
          GOAL_BUNDLES, hb["entries"] / hb["n"])
    oru = h.get("oru")
    if oru:
        first, steady = per_cpu(oru["validated_first"]), per_cpu(oru["validated"])
        out.append(("genetic ORU^R01 converted and validated, messages per CPU-s (first pass; steady)",
                    f"{fmt(first)}; {fmt(steady)}", f"≥ {GOAL_ORU:,.0f}", min(first, steady) >= GOAL_ORU))
    sc = [r for r in res.get("scaling") or [] if "validate_s" in r]
    if len(sc) >= 2:
        a, b = sc[0], sc[-1]
        goal = GOAL_RATIO * (b["entries"] / a["entries"]) / 10
        x = b["cpu_s"] / a["cpu_s"]
        out.append((f"{b['entries']:,}-entry Bundle time ÷ {a['entries']:,}-entry time (CPU)", f"{x:.1f}×",
                    f"≤ {goal:g}×", x <= goal))
        y = b["peak_rss_mb"] / b["bundle_mb"]
        out.append((f"peak RSS ÷ the {b['entries']:,}-entry Bundle's in-memory size", f"{y:.2f}× "
                    f"({b['peak_rss_mb']:,.0f} MB / {b['bundle_mb']:,.0f} MB)", f"≤ {GOAL_RSS:g}×", y <= GOAL_RSS))
    cold = res.get("cold") or {}
    if "library_s" in cold:
        best = min(cold["library_s"])
        mc = mp.get("cold") or {}
        beside = (f"; @medplum/core {min(mc['process_s']):.2f} s to its first verdict, "
                  f"{mc['index_core_ms'] / 1000:.2f} s of it indexing R4 core") if "process_s" in mc else ""
        out.append(("cold start: new process to first verdict (library)", f"{best:.2f} s{beside}",
                    f"≤ {GOAL_COLD:g} s", best <= GOAL_COLD))
    return out


def targets_table(res: dict[str, Any]) -> str:
    rows = ["| Issue 14 figure | Measured | Goal | Met |", "| --- | --- | --- | --- |"]
    rows += [f"| {label} | {got} | {goal} | {'—' if met is None else 'yes' if met else '**no**'} |"
             for label, got, goal, met in targets(res)]
    return "\n".join(rows)


def print_report(res: dict[str, Any]) -> None:
    mp, n_obs = res.get("medplum"), res["helixgate"]["observations"]["n"]
    print(report(res))
    print()
    print(targets_table(res))
    for name, part in (("helixgate Observations", res["helixgate"]["observations"]["errors"]),
                       ("helixgate Bundles", res["helixgate"]["bundles"]["errors"]),
                       ("fhir.resources", (res.get("fhir_resources") or {}).get("failed", {}))):
        if part:
            print(f"\n{name}: errors on the examples")
            for k, errs in part.items():
                print(f"- {k}: {errs if isinstance(errs, str) else '; '.join(errs[:3])}")
    if mp:
        bad = [r for r in mp["observations"]["results"] if r["errors"]]
        for r in bad:
            print(f"- medplum {r['name']}: " + "; ".join(f"{e['expression']}: {e['message']}"
                                                         for e in r["errors"][:3]))
    if "profile" in res["helixgate"]:
        prof = res["helixgate"]["profile"]
        print(f"\ncProfile of the helixgate variant loop ({prof['passes']} passes over {n_obs} Observations, "
              f"{prof['seconds']:.2f} s under the profiler), by cumulative time:\n")
        print(profile_table(prof["cumulative"]))
        print("\nby own time:\n")
        print(profile_table(prof["tottime"]))
        inv = res["helixgate"]["invariants"]
        print(f"\nInvariants that reached the FHIRPath engine (profiles.fhirpath.evaluate: no native form, or the "
              f"native form failed), same loop without the profiler: {inv['fhirpath_seconds'] / inv['seconds']:.0%} "
              f"of the time, {inv['distinct']} distinct expressions; the most expensive:\n")
        print(invariant_table(inv))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="minimum timed seconds per row (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 s per row; synthetic Bundles of 1k and 10k entries")
    ap.add_argument("--sizes", default=None, help="synthetic Bundle sizes, comma-separated (default 10000,100000)")
    ap.add_argument("--no-node", action="store_true", help="skip @medplum/core")
    ap.add_argument("--no-scale", action="store_true", help="skip the synthetic Bundles")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-start processes")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="cProfile the helixgate variant loop (auto: when slower than half of @medplum/core)")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--from-json", type=Path, help="print the report of a run saved with --json, then exit")
    ap.add_argument("--scale-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_child:
        scale_child(args.scale_child)
        return
    if args.from_json:
        print_report(orjson.loads(args.from_json.read_bytes()))
        return
    seconds = 1.0 if args.quick and args.seconds == ap.get_default("seconds") else args.seconds
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "10000,100000")).split(",")]

    variants, bundles, sds = examples()
    print(f"{len(variants)} variant Observations, {len(bundles)} Bundles, {len(sds)} IG StructureDefinitions",
          file=sys.stderr)
    res: dict[str, Any] = {"seconds": seconds, "machine": machine()}
    print("helixgate ...", file=sys.stderr, flush=True)
    res["helixgate"], variant_loop = bench_helixgate(variants, bundles, seconds)
    print("fhir.resources ...", file=sys.stderr, flush=True)
    res["fhir_resources"] = bench_fhir_resources(variants, seconds)
    if not args.no_node:
        print("@medplum/core (node) ...", file=sys.stderr, flush=True)
        res["medplum"] = bench_medplum(variants, bundles, sds, seconds)
    mp = res.get("medplum")
    slow = bool(mp) and per_cpu(res["helixgate"]["observations"]) < per_cpu(mp["observations"]) / 2
    if args.profile == "always" or (args.profile == "auto" and slow):
        print("profiling the helixgate variant loop ...", file=sys.stderr, flush=True)
        res["helixgate"]["profile"] = profile_loop(variant_loop, seconds)
        res["helixgate"]["invariants"] = invariant_costs(variant_loop, seconds)
    if not args.no_cold:
        print("cold start ...", file=sys.stderr, flush=True)
        res["cold"] = bench_cold(IG_DIR / "example" / variants[0][0])
    if not args.no_scale:
        res["scaling"] = bench_scaling(sizes)
    res["machine"]["load_average_end"] = os.getloadavg()

    if args.json:
        args.json.write_bytes(orjson.dumps(res, option=orjson.OPT_INDENT_2))
    print_report(res)


if __name__ == "__main__":
    main()
