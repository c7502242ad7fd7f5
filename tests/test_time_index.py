"""offsets_for_times over a sparse time index: always the brute-force answer."""

from __future__ import annotations

import random
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
import eventlog._catalog
from eventlog import NewRecord


def _brute_force(records: list[tuple[int, int]], t: int) -> int | None:
    """Earliest offset whose timestamp is >= t."""
    for offset, ts in records:
        if ts >= t:
            return offset
    return None


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    value_size=st.sampled_from([10, 300, 3000]),
    interval=st.sampled_from([256, 4096, eventlog._catalog.TIME_INDEX_INTERVAL]),
)
def test_sparse_index_matches_brute_force(
    tmp_path_factory: pytest.TempPathFactory, seed: int, value_size: int, interval: int
) -> None:
    with mock.patch("eventlog._write.TIME_INDEX_INTERVAL", interval):
        _check_against_brute_force(tmp_path_factory, seed, value_size)


def _check_against_brute_force(
    tmp_path_factory: pytest.TempPathFactory, seed: int, value_size: int
) -> None:
    rng = random.Random(seed)
    path = tmp_path_factory.mktemp("log")
    with eventlog.open(path, durability="off") as log:
        log.create_topic("t", retention_ms=-1)  # keep 1970 timestamps
        stored: list[tuple[int, int]] = []
        clock = 1_000
        for _ in range(rng.randrange(20, 120)):
            # Mostly rising clocks with stretches of old (CreateTime) timestamps.
            clock += rng.choice([0, 1, 5, 50])
            if rng.random() < 0.5:
                ts = clock if rng.random() < 0.8 else clock - rng.randrange(0, 500)
                meta = log.append("t", b"v" * value_size, timestamp=max(0, ts))
                stored.append((meta.offset, meta.timestamp))
            else:
                count = rng.randrange(1, 30)
                stamps = [max(0, clock - rng.randrange(0, 300)) for _ in range(count)]
                metas = log.append_batch(
                    "t", [NewRecord(b"v" * value_size, timestamp=s) for s in stamps])
                stored.extend((m.offset, m.timestamp) for m in metas)
        probes = {0, 1, clock + 1, *(ts for _o, ts in stored), *(ts + 1 for _o, ts in stored)}
        for t in sorted(probes):
            assert log.offsets_for_times("t", t) == {0: _brute_force(stored, t)}, t


@pytest.mark.parametrize("interval", [4096, eventlog._catalog.TIME_INDEX_INTERVAL])
def test_index_is_sparse(tmp_path: Path, interval: int) -> None:
    """Appends add an index entry about once per interval (bytes appended, each batch
    weighing an extra 4 KiB), not one per append (each entry is another B-tree page in the
    commit)."""
    with mock.patch("eventlog._write.TIME_INDEX_INTERVAL", interval), \
            eventlog.open(tmp_path / "log", durability="off") as log:
        log.create_topic("t", retention_ms=-1)  # keep 1970 timestamps
        for i in range(400):
            log.append("t", b"x" * 100, timestamp=1_000 + i)
        db = log._storage.dbs[b"timeindex"]
        entries = log._storage.read(lambda txn: txn.stat(db)["entries"])
        per_batch = 100 + eventlog._catalog.TIME_INDEX_BATCH_WEIGHT  # bytes + batch weight
        assert 1 <= entries <= 400 * per_batch // interval + 2
        assert log.offsets_for_times("t", 1_250) == {0: 250}


def test_lookup_decodes_only_the_batch_holding_the_answer(tmp_path: Path) -> None:
    """Backfilled (older) timestamps after a newer batch: the lookup skips batches on their
    headers and decodes one, instead of decoding every batch in between."""
    with eventlog.open(tmp_path / "log", durability="off") as log:
        log.create_topic("t", retention_ms=-1)  # keep 1970 timestamps
        log.append_columns("t", [b"a"] * 10, timestamp=1_000)
        for _ in range(300):
            log.append_columns("t", [b"b"] * 10, timestamp=500)  # older than the max
        log.append_columns("t", [b"c"] * 10, timestamp=5_000)
        import eventlog._read as read_module

        with mock.patch.object(read_module, "decode_batch",
                               wraps=read_module.decode_batch) as decode:
            assert log.offsets_for_times("t", 2_000) == {0: 3_010}
            assert log.offsets_for_times("t", 600) == {0: 0}
        assert decode.call_count <= 2
