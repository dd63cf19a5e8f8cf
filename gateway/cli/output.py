"""Where the CLI writes: stdout, or a file replaced only when the command succeeded. A regular file (or a new
one) is written to a temporary file beside it and renamed into place, so a refusal never truncates or deletes what
the user had; a device or FIFO (`-o /dev/null`) is opened and written as it is, never removed."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def target(path: str | None) -> Iterator[BinaryIO]:
    """A binary stream for `path` (None: stdout). The file takes the content only if the block ends normally."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    dest = Path(path)
    try:
        mode = dest.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with dest.open("wb") as out:  # a device or FIFO: nothing to replace, nothing to delete
            yield out
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent if str(dest.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(path: str | None, data: bytes) -> None:
    with target(path) as out:
        out.write(data)
