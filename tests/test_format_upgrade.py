"""Logs written before compaction existed: their partition state records are 56 bytes and
they have no key index. A writable open indexes their compacted topics; state records are
read in the old size and rewritten in the new one."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog._catalog import NO_PASS, PartitionState, state_key
from eventlog._keyindex import INDEX_MARKER, KeyIndex


def _make_old(path: Path) -> None:
    """Write a log, then strip what older versions did not write."""
    with eventlog.open(path, durability="off") as log:
        log.create_topic("profiles", cleanup_policy="compact", min_cleanable_dirty_ratio=1.0)
        log.create_topic("events", retention_ms=-1)
        for i in range(30):
            log.append("profiles", b"v%d" % i, key=b"k%d" % (i % 4))
            log.append("events", b"e%d" % i)
        dbs = log._dbs
        topic_ids = [log.describe_topic(t).topic_id for t in ("profiles", "events")]

        def strip(txn: Any) -> None:
            txn.delete(INDEX_MARKER, db=dbs[b"meta"])
            for tid in topic_ids:
                KeyIndex(dbs).drop(txn, tid)
                key = state_key(tid, 0)
                state = PartitionState.unpack(txn.get(key, db=dbs[b"batches"]))
                old = struct.pack(
                    ">QQQQqQQ",
                    state.log_start,
                    state.next_offset,
                    state.size_bytes,
                    state.batches,
                    state.max_timestamp,
                    0,
                    state.index_bytes,
                )
                txn.put(key, old, db=dbs[b"batches"])

        log._storage.write(strip, "making an old log")


def test_an_older_log_gets_its_key_index_on_the_first_writable_open(tmp_path: Path) -> None:
    _make_old(tmp_path)
    with eventlog.open(tmp_path, readonly=True) as log:
        with pytest.raises(eventlog.InvalidArgumentError, match="open it writable once"):
            log.latest("profiles", b"k1")
        assert [r.value for r in log.scan("events")][:2] == [b"e0", b"e1"]  # old states read
    with eventlog.open(tmp_path) as log:
        latest = log.latest("profiles", b"k1")
        assert latest is not None
        assert latest.value == b"v29"
        assert dict(log.table("profiles")) == {b"k0": b"v28", b"k1": b"v29", b"k2": b"v26",
                                                b"k3": b"v27"}
        assert log.check(), log.check()
        # Old states count every byte as dirty: the first pass is due at once.
        assert log.compact("profiles")
        assert len(list(log.scan("profiles"))) == 4
        log.append("events", b"more")
        assert log.check()
    with eventlog.open(tmp_path, readonly=True) as log:  # indexed once, for good
        assert log.latest("profiles", b"k0") is not None


def test_a_56_byte_state_reads_as_all_dirty_and_no_pass() -> None:
    old = struct.pack(">QQQQqQQ", 3, 10, 500, 2, 1234, 0, 77)
    state = PartitionState.unpack(old)
    assert (state.log_start, state.next_offset, state.size_bytes, state.batches) == (3, 10, 500, 2)
    assert state.dirty_bytes == 500
    assert state.pass_pos == NO_PASS
    assert not state.compacting
    assert PartitionState.unpack(state.pack()) == state
    with pytest.raises(eventlog.CorruptLogError):
        PartitionState.unpack(old[:-1])
