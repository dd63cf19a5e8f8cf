"""A conversion process (`python -m gateway.workers.child`), started and watched by `gateway.workers.budget`.

It runs `Pipeline.bundle` (convert, validate, add the Provenance: the CPU- and memory-heavy part of a message) for
one message at a time, so the worker can kill it when a message exceeds its time or memory budget without losing
anything else. Protocol on stdin/stdout: frames of an 8-byte big-endian length and a pickle (both ends are this
package; the message bytes inside are never unpickled from outside). First frame in: the settings; first frame
out: ("ready", pid) or ("error", text). Then per message: Message in, ("ok", bundle JSON) or
("permanent", reason, detail) or ("error", text) out. EOF on stdin ends the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import signal
import sys
from typing import Any

from gateway.workers.frames import read_frame, write_frame


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the worker that started it dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def main() -> int:
    # The worker decides when this process ends (it kills it past the grace period): a Ctrl-C or SIGTERM sent to
    # the whole process group must not abort a conversion and count against the message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the protocol stream
    try:
        config = read_frame(stdin)
    except EOFError:
        return 0
    if config.get("path"):
        sys.path[:] = config["path"]
    if config.get("nice"):
        with contextlib.suppress(OSError):
            os.nice(config["nice"])
    import orjson

    from gateway.cache import MemoryCache
    from gateway.workers.pipeline import Permanent, Pipeline

    validator = None
    if config["validate"]:
        from profiles.context import default_validator
        from profiles.packages import PackageError

        try:
            validator = default_validator()
        except PackageError as e:
            if config["validate"] != "optional":  # HTTP jobs answer without it (422 / 503 naming the cause)
                write_frame(stdout, ("error", f"cannot validate before delivery: {e}"))
                return 1
    pipeline = Pipeline(None, MemoryCache(0), validator, config["timezone"])  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    _warm_up(loop, pipeline)
    gc.collect()
    gc.freeze()  # the definitions stay for the process's life: keep collections off them
    if config.get("address_space"):
        # A backstop under the worker's RSS watch: an allocation burst faster than its polling ends in
        # MemoryError here instead of taking the machine's memory.
        soft = _vm_size() + config["address_space"]
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (soft, soft))
    fingerprint = validator.defs.fingerprint if validator is not None else None
    write_frame(stdout, ("ready", os.getpid(), fingerprint))
    while True:
        try:
            msg = read_frame(stdin)
        except EOFError:
            return 0
        if isinstance(msg, tuple):  # an HTTP job (gateway.jobs)
            reply = _job(msg, validator)
        else:
            try:
                bundle = loop.run_until_complete(pipeline.bundle(msg))
                reply = ("ok", orjson.dumps(bundle))
                del bundle
            except Permanent as e:
                reply = ("permanent", e.reason, e.detail)
            except MemoryError:
                reply = ("memory", "")
            except Exception as e:
                reply = ("error", f"{type(e).__name__}: {str(e)[:500]}")
        try:
            write_frame(stdout, reply)
        except MemoryError:
            write_frame(stdout, ("memory", ""))
        del reply  # refcounting frees the message's objects; a gc.collect() here cost ~2 ms per message


def _job(job: tuple[Any, ...], validator: Any) -> tuple[Any, ...]:
    """("ok", result), ("refused", HTTP status, issues), ("memory", "") or ("error", text)."""
    from gateway import jobs
    from mappers.exceptions import MappingError

    try:
        return ("ok", jobs.run(job, validator))
    except MappingError as e:
        r = jobs.refused(e)
        return ("refused", r.status, r.issues)
    except MemoryError:
        return ("memory", "")
    except RecursionError:
        return ("refused", 422, [_too_deep()])
    except Exception as e:
        import traceback

        traceback.print_exc()  # to the server's stderr: a bug to fix; the client gets a 500 OperationOutcome
        return ("error", f"{type(e).__name__}: {str(e)[:500]}")


def _too_deep() -> Any:
    from mappers.exceptions import Issue

    return Issue("error", "too-costly", "input-too-deep", "the input is nested too deeply to process")


# A small genetic ORU^R01, converted (and validated) once before the process says it is ready: the tables and
# profiles a first message would load lazily are loaded then, outside any message's time budget.
WARM_UP = (b"MSH|^~\\&|WARM|UP|HELIXGATE|HG|20250301120000-0500||ORU^R01^ORU_R01|WARM-UP-1|P|2.5.1\r"
           b"PID|1||WARM1^^^HOSP&2.16.840.1.113883.19.5&ISO^MR||Warm^Up||19700101|F\r"
           b"OBR|1|ORD-W^HOSP|FIL-W^LAB|81247-9^Master HL7 genetic variant reporting panel^LN|||20250224093000-0500"
           b"||||||||||||||20250301115900-0500||GE|F\r"
           b"OBX|1|CWE|51968-6^Genetic analysis overall interpretation^LN|1|LA6576-8^Positive^LN||||||F\r"
           b"OBX|2|CWE|48018-6^Gene studied [ID]^LN|2a|HGNC:3236^EGFR^HGNC-Symb||||||F\r"
           b"OBX|3|CWE|48004-6^DNA change (c.HGVS)^LN|2a|NM_005228.5:c.2573T>G^^HGVS.c||||||F\r"
           b"OBX|4|CNE|69548-6^Genetic variant assessment^LN|2a|LA9633-4^Present^LN||||||F\r"
           b"SPM|1|SP-W&HOSP^GA-W&LAB||119376003^Tissue specimen^SCT\r")


def _warm_up(loop: asyncio.AbstractEventLoop, pipeline: Any) -> None:
    from datetime import UTC, datetime

    from gateway.workers.pipeline import Failure, Message

    with contextlib.suppress(Failure):  # the warm-up is for the lazy loads, not its verdict
        loop.run_until_complete(pipeline.bundle(Message(WARM_UP, "hl7v2", datetime.now(UTC), "WARM", "WARM-UP-1")))


def _vm_size() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


if __name__ == "__main__":
    sys.exit(main())
