"""Backups: a consistent copy of a log, optionally compacted, taken while it is in use."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile

from ._errors import InvalidArgumentError
from ._storage import Storage

__all__ = ["backup"]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(storage: Storage, dest: str | os.PathLike[str], *, compact: bool) -> str:
    """Copy ``storage``'s environment into the new directory ``dest`` (see Log.backup)."""
    if not isinstance(dest, str | os.PathLike):
        raise InvalidArgumentError(f"dest must be a str or os.PathLike; got {type(dest).__name__}")
    if not isinstance(compact, bool):
        raise InvalidArgumentError("compact must be True or False")
    target = os.path.abspath(os.fsdecode(dest))
    if os.path.lexists(target):
        if not os.path.isdir(target) or os.listdir(target):
            raise InvalidArgumentError(
                f"backup destination {target!r} exists and is not an empty directory; give "
                f"a new path (the backup never overwrites anything)"
            )
        if os.path.samefile(target, storage.path):
            raise InvalidArgumentError("a log cannot be backed up into its own directory")
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    # Built beside the destination and renamed into place: `dest` is a complete log or
    # nothing, even if this process dies halfway.
    work = tempfile.mkdtemp(prefix=".eventlog-backup-", dir=parent)
    try:
        # The backup gets the permissions of the log it copies (mkdtemp made it private).
        os.chmod(work, stat.S_IMODE(os.stat(storage.path).st_mode) & ~0o002)
        storage.copy_to(work, compact=compact)
        for name in os.listdir(work):
            fd = os.open(os.path.join(work, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.rename(work, target)  # replaces an empty directory atomically
        _fsync_dir(parent)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
        raise
    return target
