"""Backups: a consistent copy of a log, optionally compacted, taken while it is in use."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable

from ._errors import InvalidArgumentError
from ._storage import Storage

__all__ = ["backup"]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# How often the progress of a copy is reported (seconds).
_PROGRESS_INTERVAL = 0.1


def _watch(
    data_file: str, total: int, progress: Callable[[int, int], object], stop: threading.Event
) -> None:
    """Report the size of the copy being written, until ``stop`` is set."""
    while not stop.wait(_PROGRESS_INTERVAL):
        try:
            written = os.stat(data_file).st_size
        except OSError:
            written = 0
        progress(min(written, total), total)


def backup(
    storage: Storage,
    dest: str | os.PathLike[str],
    *,
    compact: bool,
    progress: Callable[[int, int], object] | None = None,
) -> str:
    """Copy ``storage``'s environment into the new directory ``dest`` (see Log.backup)."""
    if not isinstance(dest, str | os.PathLike):
        raise InvalidArgumentError(f"dest must be a str or os.PathLike; got {type(dest).__name__}")
    if not isinstance(compact, bool):
        raise InvalidArgumentError("compact must be True or False")
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(
            f"progress must be None or a callable (done, total); got {type(progress).__name__}"
        )
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
        if progress is None:
            storage.copy_to(work, compact=compact)
        else:
            # LMDB's copy reports nothing: watch the copy's data file grow, against the
            # pages the log uses (an upper bound; a compacted copy leaves free pages out).
            total = storage.used_bytes()
            progress(0, total)
            stop = threading.Event()
            watcher = threading.Thread(
                target=_watch,
                args=(os.path.join(work, "data.mdb"), total, progress, stop),
                name="eventlog-backup-progress",
                daemon=True,
            )
            watcher.start()
            try:
                storage.copy_to(work, compact=compact)
            finally:
                stop.set()
                watcher.join()
            progress(total, total)
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
