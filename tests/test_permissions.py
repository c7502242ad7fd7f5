"""File permissions: errors a user can act on, and nothing world-writable.

Root bypasses file permissions, so when the suite runs as root (as CI does) the denial
comes from a patched system call instead of a chmod; the code path that turns it into an
error is the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lmdb
import pytest

import eventlog

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
AS_ROOT = os.geteuid() == 0


def _make_log(path: Path) -> None:
    with eventlog.open(path) as log:
        log.create_topic("t")
        log.append("t", b"v")


def test_unreadable_directory_gives_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_path = tmp_path / "log"
    _make_log(log_path)
    if AS_ROOT:
        real_listdir = os.listdir

        def denied(path: object) -> list[str]:
            if os.fspath(path) == str(log_path):  # type: ignore[arg-type]
                raise PermissionError(13, "Permission denied", str(path))
            return real_listdir(path)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "listdir", denied)
    else:
        log_path.chmod(0)
    try:
        with pytest.raises(eventlog.PermissionDeniedError) as info:
            eventlog.open(log_path, readonly=True)
    finally:
        log_path.chmod(0o755)
    assert isinstance(info.value, PermissionError)
    assert "permission denied" in str(info.value)


def test_readonly_open_without_lock_file_access_says_what_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_path = tmp_path / "log"
    _make_log(log_path)
    if AS_ROOT:
        def denied(*args: object, **kwargs: object) -> object:
            raise lmdb.ReadonlyError("mdb_env_open: Permission denied")

        monkeypatch.setattr(lmdb, "open", denied)
    else:
        (log_path / "lock.mdb").chmod(0o444)
    with pytest.raises(eventlog.PermissionDeniedError) as info:
        eventlog.open(log_path, readonly=True)
    assert "lock.mdb" in str(info.value)
    monkeypatch.undo()
    with eventlog.open(log_path, readonly=True) as log:  # nothing was changed
        assert [r.value for r in log.read("t", 0)] == [b"v"]


def test_new_log_directory_is_never_world_writable(tmp_path: Path) -> None:
    code = """
    import os, sys, eventlog
    os.umask(0)
    eventlog.open(sys.argv[1]).close()
    """
    target = tmp_path / "a" / "log"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(target)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for path in [target, *target.iterdir()]:
        assert not path.stat().st_mode & 0o002, f"{path} is world-writable"
