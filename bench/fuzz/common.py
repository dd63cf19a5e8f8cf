"""The fuzz runner shared by the harnesses in bench/fuzz/: hypothesis generates the inputs (mutations of seeds taken
from the tests' inputs and corpora), the runner feeds them to one entry point and records what goes wrong.

Bounded in count and time (`--count`, `--seconds`): hypothesis runs in chunks of `--chunk` examples, each chunk with
its own seed (`--seed` + chunk number, so a run can be repeated), until either bound is reached. An input that
raises an exception the entry point does not declare (a crash), or runs past `--timeout` seconds (interrupted by
SIGPROF and counted as a crash), is saved under `--out` once per crash site (exception type and the innermost frame
inside the repository); inputs slower than 1 s are counted, the first 50 kept (slow-NNN.*) and the slowest
(slowest.*), and so is the input that raised the peak RSS most (peak.*, by `peak_rise_mb`). Times are the process's
CPU time, so that a machine shared with other work does not turn slow scheduling into timeouts. Nothing is shrunk: the
run goes on to find other crash sites. The summary (inputs, rate, crashes, slow inputs, peak RSS) is printed and
written as JSON (`--out`/NAME/summary.json) at the end, after each chunk, and when the run is stopped by SIGTERM or
SIGINT (`stopped` names the signal; the input it interrupted is counted, its outcome unknown).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SLOW_SECONDS = 1.0
KEPT_SLOW = 50  # slow inputs saved as slow-NNN.* (the count goes on past it)


class InputTimeout(BaseException):
    """An input ran past the per-input time limit. A BaseException: the targets' own `except Exception` (the
    validator's around each FHIRPath evaluation) would otherwise swallow it and let the input run on unbounded."""


class Stopped(BaseException):
    """SIGTERM or SIGINT: the run ends where it is and writes its summary (BaseException: the targets' and
    hypothesis's `except Exception` let it through)."""


@dataclass
class Stats:
    harness: str
    inputs: int = 0
    seconds: float = 0.0
    rate_per_second: float = 0.0
    crashes: dict[str, str] = field(default_factory=dict)  # crash site → saved input
    crash_inputs: int = 0  # inputs that crashed (several may share a site)
    slow_inputs: int = 0  # > SLOW_SECONDS of CPU time
    slowest_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_rise_mb: float = 0.0  # the most the peak RSS rose during one input (that input kept as peak.*)
    chunks: int = 0
    harness_errors: int = 0  # chunks hypothesis stopped early (a fault of the harness, not of the target)
    seed: int = 0
    stopped: str = ""  # the signal that ended the run early (SIGTERM, SIGINT), else empty
    running: bool = False  # true in the summaries written along the way


# Values that have broken parsers and validators elsewhere: wrong JSON types, numbers past every limit, strings that
# make backtracking regexes, HTML sanitisers or date parsers work hard, references and URLs of every form.
JUNK_STRINGS: list[str] = [
    "", " ", "x", " x ", "\t\n", "\u0000", "\u00a0", "\x0b", "\x1c", "é", "检验", "\U0001f600", "\ufeff",
    "AAAA  " * 30 + "!", "a" * 5000, "1" * 5000, "-0", "00", "1e400", "-1e-400", "0.1e-999", "1" * 30, "1.5", "+1",
    "2024-02-30", "2024-13-01T25:61:61+15:00", "2024-02-29T10:00:00." + "0" * 3000 + "+15:00", "true", "null",
    "Patient/1", "Patient/../../admin", "Patient/1/_history/", "#", "#p1", "urn:oid:1." + "1." * 2000,
    "urn:uuid:00000000-0000-0000-0000-000000000000", "http://hl7.org/fhir/StructureDefinition/Patient",
    "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant", "http://example.org/fhir/Patient/1",
    "https://" + "a/" * 3000 + "Patient/1", "javascript:alert(1)", "http://loinc.org", "urn:ietf:bcp:13",
    '<div xmlns="http://www.w3.org/1999/xhtml"><script>x</script></div>',
    '<div xmlns="http://www.w3.org/1999/xhtml"><a href="#x">y</a><p id="x"/></div>',
    '<div xmlns="http://www.w3.org/1999/xhtml">' + "<b>" * 2000 + "</div>", "<" * 3000, "<a" * 2000,
    "%resource", "$this", "a" * 65, "application/fhir+json; charset=" + "x;" * 500, "a " * 3000 + "\x0b",
    "x" * 70000, "\\", "'", '"', "\r\n" * 1000, "&amp;", "]]>",
]


def corpora_root() -> Path:
    """The third-party test corpora: $HELIXGATE_TEST_CORPORA, else <repo root>/../shared/corpora."""
    value = os.environ.get("HELIXGATE_TEST_CORPORA", "").strip()
    root = Path(value).expanduser() if value else ROOT.parent / "shared" / "corpora"
    if not root.is_dir():  # a run on the project's own few inputs would look like a full one in its counts
        sys.exit(f"the test corpora are not at {root}: set HELIXGATE_TEST_CORPORA to the corpora folder "
                 "(most of the seeds come from there)")
    return root


def arguments(description: str, http: bool = False) -> argparse.Namespace:
    """The runner's options; `http`: also the HTTP harnesses' transport and sandbox (bench/fuzz/http_client.py)."""
    ap = argparse.ArgumentParser(description=description)
    if http:
        ap.add_argument("--transport", choices=("asgi", "testclient", "loopback"), default="asgi",
                        help="asgi: the app in this thread (default, fastest); testclient: starlette's TestClient; "
                             "loopback: uvicorn on 127.0.0.1 and httpx over TCP")
        ap.add_argument("--sandbox", action="store_true",
                        help="run conversions and validations in the sandbox processes, as deployed (their CPU "
                             "is then not counted per input)")
    ap.add_argument("--count", type=int, default=10_000, help="stop after this many inputs (default 10000)")
    ap.add_argument("--seconds", type=float, default=600.0, help="stop after this many seconds (default 600)")
    ap.add_argument("--chunk", type=int, default=500, help="hypothesis examples per chunk (default 500)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first chunk (default 0)")
    ap.add_argument("--engine", choices=("buffer", "engine"), default="buffer",
                    help="buffer: hypothesis's fuzz_one_input on random buffers (default, fastest); engine: "
                         "hypothesis's own generation loop, in chunks")
    ap.add_argument("--buffer", type=int, default=4096, help="bytes of random buffer per input (default 4096)")
    ap.add_argument("--batch", type=int, default=4,
                    help="inputs drawn per fuzz_one_input call (buffer engine; default 4): its fixed cost, "
                         "~0.25 ms, shared")
    ap.add_argument("--timeout", type=float, default=10.0, help="per-input limit in CPU seconds (default 10)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/helixgate-fuzz"), help="crash inputs and summary")
    return ap.parse_args()


def _site(e: BaseException) -> str:
    """Exception type and the innermost frame inside the repository: one saved input per site."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(str(ROOT))]
    where = f"{Path(frames[-1].filename).relative_to(ROOT)}:{frames[-1].lineno}" if frames else "outside the repo"
    return f"{type(e).__name__} at {where}"


def _alarm(signum: int, frame: Any) -> None:
    raise InputTimeout


def _progress(name: str, stats: Stats, start: float) -> None:
    elapsed = time.monotonic() - start
    print(f"  {name}: {stats.inputs} inputs, {elapsed:.0f} s, {stats.inputs / elapsed:.0f}/s, "
          f"{len(stats.crashes)} crash sites", file=sys.stderr)


def _stop(signum: int, frame: Any) -> None:
    raise Stopped(signal.Signals(signum).name)


def _summary(out: Path, stats: Stats, start: float, running: bool) -> dict[str, Any]:
    """The summary as it stands, written to `out`/summary.json (replaced atomically: a reader never sees half)."""
    stats.seconds = round(time.monotonic() - start, 1)
    stats.rate_per_second = round(stats.inputs / stats.seconds, 1) if stats.seconds else 0.0
    stats.peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    stats.running = running
    doc = asdict(stats)
    doc["slowest_seconds"] = round(stats.slowest_seconds, 3)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(out / "summary.json")
    return doc


def run(name: str, strategy: st.SearchStrategy[bytes], target: Callable[[bytes], None],
        expected: tuple[type[BaseException], ...], args: argparse.Namespace, suffix: str) -> Stats:
    """Feed `target` the inputs `strategy` draws until `args.count` inputs or `args.seconds` pass; exceptions
    in `expected` are the entry point's declared refusals (e.g. ParseError for unreadable bodies)."""
    out = args.out / name
    out.mkdir(parents=True, exist_ok=True)
    stats = Stats(name, seed=args.seed)
    start = time.monotonic()
    deadline = start + args.seconds
    signal.signal(signal.SIGPROF, _alarm)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    # The harness's warm-up (validator, packages, parsed seeds) lives for the whole run: out of the cyclic
    # collector's reach, so that the collections the inputs trigger do not walk it again (~15 % of FHIR JSON's CPU)
    gc.collect()
    gc.freeze()

    peak = [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]  # the peak RSS before the next input

    def done() -> bool:
        return stats.inputs >= args.count or time.monotonic() >= deadline

    def one(data: bytes) -> None:
        if done():
            return
        stats.inputs += 1
        t0 = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, args.timeout)
        try:
            target(data)
        except expected:
            pass
        except (Exception, InputTimeout) as e:  # a crash: kept once per site, the run goes on
            stats.crash_inputs += 1
            site = "timeout" if isinstance(e, InputTimeout) else _site(e)
            if site not in stats.crashes:
                path = out / f"crash-{hashlib.sha256(site.encode()).hexdigest()[:12]}.{suffix}"
                path.write_bytes(data)
                (out / (path.name + ".txt")).write_text(site + "\n\n" + "".join(traceback.format_exception(e)))
                stats.crashes[site] = str(path)
                print(f"  crash: {site} -> {path}", file=sys.stderr)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        elapsed = time.process_time() - t0
        if elapsed > SLOW_SECONDS:
            stats.slow_inputs += 1
            if stats.slow_inputs <= KEPT_SLOW:  # kept so that the slow ones can be told apart, not just the slowest
                (out / f"slow-{stats.slow_inputs:03d}.{suffix}").write_bytes(data)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if rss - peak[0] > stats.peak_rise_mb:  # the input that raised the peak most is the one to look at
            stats.peak_rise_mb = round(rss - peak[0], 1)
            (out / f"peak.{suffix}").write_bytes(data)
        peak[0] = rss
        if elapsed > stats.slowest_seconds:
            stats.slowest_seconds = elapsed
            (out / f"slowest.{suffix}").write_bytes(data)

    try:
        _chunks(name, strategy, one, done, args, stats, start, out)
    except Stopped as e:
        signal.setitimer(signal.ITIMER_PROF, 0)
        stats.stopped = str(e)
        print(f"  stopped by {stats.stopped}", file=sys.stderr)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    doc = _summary(out, stats, start, running=False)
    print(json.dumps(doc, indent=2))
    return stats


def _chunks(name: str, strategy: st.SearchStrategy[bytes], one: Callable[[bytes], None], done: Callable[[], bool],
            args: argparse.Namespace, stats: Stats, start: float, out: Path) -> None:
    """Run chunks until `done()`, counting them in `stats.chunks`."""
    if args.engine == "buffer":
        # Hypothesis's entry point for external fuzzers (`fuzz_one_input`): each input is drawn from a buffer of
        # random bytes, with no engine around it (no replay, no mutation of earlier examples, no database).
        # The strategies, and so the inputs, are the same; ~3x the inputs per second (bench/README.md). Each call
        # draws `--batch` inputs, then runs them one by one: the call's own cost (~0.25 ms of CPU, as much as a
        # FHIR JSON validation) is shared by the batch.
        batch = max(1, args.batch)

        def each(inputs: list[bytes]) -> None:
            for data in inputs:
                one(data)

        test = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))(
            given(st.lists(strategy, min_size=batch, max_size=batch))(each))
        fuzz = test.hypothesis.fuzz_one_input  # type: ignore[attr-defined]
        rng = random.Random(args.seed)
        while not done():
            for _ in range(0, args.chunk, batch):
                if done():
                    break
                try:
                    fuzz(rng.randbytes(args.buffer * batch))
                except Exception as e:  # the strategy refusing a buffer (a harness fault): counted, go on
                    stats.harness_errors += 1
                    if stats.harness_errors <= 3:
                        print(f"  buffer refused: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
            stats.chunks += 1
            _progress(name, stats, start)
            _summary(out, stats, start, running=True)
    while not done():
        test = settings(max_examples=args.chunk, deadline=None, database=None, phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck), derandomize=False)(given(strategy)(one))
        try:
            seed(args.seed + stats.chunks)(test)()
        except Exception as e:  # hypothesis refusing a chunk (a harness fault, not the target's): next chunk
            stats.harness_errors += 1
            print(f"  chunk {stats.chunks}: hypothesis stopped: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
        stats.chunks += 1
        _progress(name, stats, start)
        _summary(out, stats, start, running=True)
