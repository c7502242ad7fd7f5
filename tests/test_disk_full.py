"""A full disk gives DiskFullError, stores nothing of the failed write, and leaves the log
usable (DESIGN.md section 6). Needs a small filesystem to fill: a tmpfs mounted for the test,
which requires root (CI runs as root); elsewhere the test is skipped with that reason."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import eventlog


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root on Linux to mount a 4 MiB tmpfs to fill")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_is_a_clear_error_and_the_log_stays_usable(small_fs: Path) -> None:
    path = small_fs / "log"
    rng = random.Random(7)
    acked: list[bytes] = []
    with eventlog.open(path, durability="off") as log:
        log.create_topic("t")
        error: eventlog.DiskFullError | None = None
        for _ in range(1000):  # 100 MB at most: far more than the 4 MiB filesystem holds
            values = [rng.randbytes(1000) for _ in range(100)]
            try:
                log.append_columns("t", values)
            except eventlog.DiskFullError as exc:
                error = exc
                break
            acked.extend(values)
        assert error is not None, "the disk never filled up"
        assert isinstance(error, OSError)
        assert "disk is full" in str(error)
        # Nothing of the failed call was stored; everything acknowledged is intact.
        assert log.end_offsets("t") == {0: len(acked)}
        got = [r.value for r in log.scan("t")]
        assert got == acked
        # The log still takes writes that fit.
        assert log.append("t", b"small").offset == len(acked)
    with eventlog.open(path) as log:
        assert log.end_offsets("t") == {0: len(acked) + 1}
