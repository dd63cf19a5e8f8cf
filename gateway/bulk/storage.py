"""Where bulk job files live, kept private to the user the gateway and its workers run as: the root and every job
folder 0700, every file 0600 (bulk outputs are patient data; the FHIR security page asks that they be reachable by
their owner only).

The default root, `<temp dir>/helixgate-bulk-<uid>`, has a predictable name in a world-writable directory, so an
existing one is trusted only when it is a real directory owned by this user; one readable by others is repaired
(chmod 0700, logged), one owned by someone else or a symlink is refused.

The gateway writes a job's input here, the worker that takes the job writes its outputs here, and the gateway serves
them: with workers on several hosts, HELIXGATE_BULK_DIR must be one shared filesystem (NFS, CephFS, …) mounted at the
same path on every gateway and worker host and used by the same uid. Only POSIX calls are used (mkdir, lstat, chmod,
open with O_NOFOLLOW, rmtree), which such filesystems provide.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import IO

log = logging.getLogger("helixgate.bulk")
DIR_MODE = 0o700
FILE_MODE = 0o600


class BulkDirError(RuntimeError):
    """The bulk directory cannot be made private (a symlink, not a directory, or owned by another user)."""


def default_root() -> Path:
    uid = os.geteuid() if hasattr(os, "geteuid") else 0
    return Path(tempfile.gettempdir()) / f"helixgate-bulk-{uid}"


def root_of(configured: str) -> Path:
    """The bulk root: HELIXGATE_BULK_DIR when set, else the per-user default."""
    return Path(configured) if configured else default_root()


def private_dir(path: Path) -> Path:
    """`path` as a directory only this user can list or enter: created 0700 when missing, repaired to 0700 when
    others had access. Raises BulkDirError for a symlink, a non-directory or a directory owned by someone else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=DIR_MODE)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise BulkDirError(f"bulk directory {path} is not a plain directory (a symlink or a file); remove it or set "
                           "HELIXGATE_BULK_DIR")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise BulkDirError(f"bulk directory {path} belongs to uid {st.st_uid}, not to this process (uid "
                           f"{os.geteuid()}); remove it or set HELIXGATE_BULK_DIR")
    if st.st_mode & 0o077:
        log.warning("bulk directory %s had mode %03o (open to other users); changed to 0700", path,
                    stat.S_IMODE(st.st_mode))
        os.chmod(path, DIR_MODE)
    return path


def job_dir(root: Path, job: str) -> Path:
    """The folder of one job (0700) under the private root."""
    return private_dir(private_dir(root) / job)


def open_private(path: Path) -> IO[bytes]:
    """`path` opened for writing (truncated), mode 0600 even when it existed with another mode; symlinks refused."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, data: bytes) -> None:
    with open_private(path) as f:
        f.write(data)
