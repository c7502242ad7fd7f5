"""Unit tests for every public entry point of :class:`eventlog.Log`.

Bad input is covered by test_bad_input.py and random sequences of operations by
test_state_machine.py; this file checks what each call does when used correctly.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import NewRecord, Record, RecordMetadata

_names = (f"topic{i}" for i in itertools.count())


def kafka_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner, written from its definition."""
    return (eventlog.murmur2(key) & 0x7FFFFFFF) % partitions


def now_ms() -> int:
    return int(time.time() * 1000)


def set_log_start(log: eventlog.Log, topic: str, partition: int, start: int) -> None:
    """White box: move a partition's log start offset, as retention will once it exists.

    No public call can remove records yet, so this edits the partition state directly to
    reach the OffsetOutOfRange paths.
    """
    from eventlog._catalog import PartitionState, state_key

    topic_id = log.describe_topic(topic).topic_id
    db = log._storage.dbs[b"batches"]

    def move(txn: object) -> None:
        key = state_key(topic_id, partition)
        state = PartitionState.unpack(txn.get(key, db=db))  # type: ignore[attr-defined]
        state.log_start = start
        txn.put(key, state.pack(), db=db)  # type: ignore[attr-defined]

    log._storage.write(move, "test: moving the log start")


def all_records(log: eventlog.Log, topic: str) -> dict[int, list[Record]]:
    return {p: log.read(topic, p, max_records=100_000) for p in log.end_offsets(topic)}


def data_file_digest(path: Path) -> str:
    return hashlib.sha256((path / "data.mdb").read_bytes()).hexdigest()


# --- topics -------------------------------------------------------------------------


def test_new_log_has_no_topics(log: eventlog.Log) -> None:
    assert log.list_topics() == []


def test_create_topic_returns_its_description(log: eventlog.Log) -> None:
    before = now_ms()
    desc = log.create_topic("orders", partitions=3)
    after = now_ms()
    assert isinstance(desc, eventlog.TopicDescription)
    assert desc.name == "orders"
    assert desc.partition_count == 3
    assert isinstance(desc.topic_id, int)
    assert before <= desc.created_ms <= after
    assert [p.partition for p in desc.partitions] == [0, 1, 2]
    for info in desc.partitions:
        assert (info.log_start_offset, info.end_offset, info.size_bytes, info.batches,
                info.max_timestamp) == (0, 0, 0, 0, -1)
    assert desc.config["retention.ms"] == 604_800_000
    assert desc.config["cleanup.policy"] == "delete"
    assert desc.config["message.timestamp.type"] == "CreateTime"
    assert log.describe_topic("orders") == desc
    assert log.end_offsets("orders") == {0: 0, 1: 0, 2: 0}
    assert log.beginning_offsets("orders") == {0: 0, 1: 0, 2: 0}


def test_create_topic_default_is_one_partition(log: eventlog.Log) -> None:
    assert log.create_topic("t").partition_count == 1


def test_list_topics_is_sorted(log: eventlog.Log) -> None:
    for name in ["zeta", "Alpha", "beta", "a.b", "a-b", "a_c", "0"]:
        log.create_topic(name)
    assert log.list_topics() == sorted(["zeta", "Alpha", "beta", "a.b", "a-b", "a_c", "0"])


def test_longest_legal_name(log: eventlog.Log) -> None:
    name = "x" * 249
    log.create_topic(name)
    log.append(name, b"v")
    assert log.list_topics() == [name]
    assert log.read(name, 0)[0].topic == name


@pytest.mark.parametrize(
    ("config", "kwargs"),
    [
        ({"retention.ms": 3_600_000, "max.message.bytes": 2048}, {}),
        ({}, {"retention_ms": 3_600_000, "max_message_bytes": 2048}),
        ({"retention_ms": 3_600_000}, {"max_message_bytes": 2048}),
        ({"retention.ms": "3600000"}, {"max.message.bytes": "2048"}),
    ],
)
def test_create_topic_configs_in_both_spellings(
    log: eventlog.Log, config: dict[str, object], kwargs: dict[str, object]
) -> None:
    desc = log.create_topic("t", config=config, **kwargs)
    assert desc.config["retention.ms"] == 3_600_000
    assert desc.config["max.message.bytes"] == 2048
    cfg = log.topic_config("t")
    assert isinstance(cfg, eventlog.TopicConfig)
    assert (cfg.retention_ms, cfg.max_message_bytes) == (3_600_000, 2048)
    # The rest keeps Kafka's defaults.
    assert cfg.cleanup_policy == "delete"
    assert cfg.retention_bytes == -1


def test_create_topic_exists(log: eventlog.Log) -> None:
    first = log.create_topic("t", 2)
    with pytest.raises(eventlog.TopicExistsError) as info:
        log.create_topic("t", 2)
    assert info.value.topic == "t"
    assert "'t'" in str(info.value)
    again = log.create_topic("t", 2, exist_ok=True)
    assert again.topic_id == first.topic_id
    assert log.list_topics() == ["t"]


def test_exist_ok_keeps_existing_records(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"kept")
    log.create_topic("t", exist_ok=True)
    assert [r.value for r in log.read("t", 0)] == [b"kept"]


def test_describe_shows_offsets_and_sizes(log: eventlog.Log) -> None:
    log.create_topic("t", 3, retention_ms=-1)  # keep the 1970 timestamps
    log.append("t", b"vvv", key=b"kk", partition=1, timestamp=1_000)
    log.append_batch("t", [NewRecord(b"12345", partition=1, timestamp=500),
                           NewRecord(b"", partition=2, timestamp=7)])
    desc = log.describe_topic("t")
    p0, p1, p2 = desc.partitions
    assert (p0.end_offset, p0.size_bytes, p0.batches, p0.max_timestamp) == (0, 0, 0, -1)
    assert (p1.end_offset, p1.size_bytes, p1.batches, p1.max_timestamp) == (2, 10, 2, 1_000)
    assert (p2.end_offset, p2.size_bytes, p2.batches, p2.max_timestamp) == (1, 0, 1, 7)
    assert all(p.log_start_offset == 0 for p in desc.partitions)


def test_alter_topic_changes_only_the_given_keys(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=1_000, max_message_bytes=4096)
    desc = log.alter_topic("t", config={"retention.ms": 2_000})
    assert desc.config["retention.ms"] == 2_000
    assert desc.config["max.message.bytes"] == 4096
    desc = log.alter_topic("t", max_message_bytes=8192, compression_type="zstd")
    assert desc.config["retention.ms"] == 2_000
    assert desc.config["max.message.bytes"] == 8192
    assert log.topic_config("t").compression_type == "zstd"
    assert log.describe_topic("t").config == desc.config


def test_alter_topic_limit_applies_to_later_appends(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"x" * 100)
    log.alter_topic("t", max_message_bytes=50)
    with pytest.raises(eventlog.RecordTooLargeError):
        log.append("t", b"x" * 100)
    assert log.end_offsets("t") == {0: 1}
    assert log.read("t", 0)[0].value == b"x" * 100  # old records are untouched


def test_create_partitions(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    metas = [log.append("t", b"v", key=b"k%d" % i) for i in range(20)]
    before = log.describe_topic("t")
    desc = log.create_partitions("t", 5)
    assert desc.partition_count == 5
    assert desc.topic_id == before.topic_id
    assert desc.partitions[:2] == before.partitions
    assert all(p.end_offset == 0 for p in desc.partitions[2:])
    # Old records stay where they were.
    for i, meta in enumerate(metas):
        assert log.read("t", meta.partition, meta.offset, max_records=1)[0].key == b"k%d" % i
    # Keys are now spread over the new partition count.
    for i in range(30):
        key = b"key-%d" % i
        assert log.append("t", b"v", key=key).partition == kafka_partition(key, 5)
    log.append("t", b"v", partition=4)


def test_delete_topic(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    log.create_topic("other")
    log.append("t", b"v", partition=1)
    log.append("other", b"o")
    assert log.delete_topic("t") is None
    assert log.list_topics() == ["other"]
    with pytest.raises(eventlog.TopicNotFoundError):
        log.describe_topic("t")
    with pytest.raises(eventlog.TopicNotFoundError):
        log.read("t", 1)
    with pytest.raises(eventlog.TopicNotFoundError):
        log.append("t", b"v")
    # Other topics are untouched.
    assert [r.value for r in log.read("other", 0)] == [b"o"]


def test_delete_then_recreate_never_resurrects(log: eventlog.Log, log_path: Path) -> None:
    old = log.create_topic("t", 2, retention_ms=-1)  # keeps the 1970 timestamps
    for i in range(5):
        log.append("t", b"old-%d" % i, partition=i % 2, timestamp=100 + i)
    log.delete_topic("t")
    new = log.create_topic("t", 3)
    assert new.topic_id != old.topic_id
    assert new.config["retention.ms"] == 604_800_000  # not the old config
    assert log.end_offsets("t") == {0: 0, 1: 0, 2: 0}
    assert all(log.read("t", p) == [] for p in range(3))
    assert log.offsets_for_times("t", 0) == {0: None, 1: None, 2: None}
    assert list(log.scan("t")) == []
    meta = log.append("t", b"new", partition=1)
    assert meta.offset == 0
    assert [r.value for r in log.read("t", 1)] == [b"new"]
    # Ids are never reused, also across a reopen.
    log.delete_topic("t")
    log.close()
    with eventlog.open(log_path, durability="off") as again:
        newest = again.create_topic("t")
        assert newest.topic_id not in (old.topic_id, new.topic_id)
        assert again.read("t", 0) == []


# --- append -------------------------------------------------------------------------


def test_append_returns_metadata(log: eventlog.Log) -> None:
    log.create_topic("t")
    metas = [log.append("t", b"v%d" % i) for i in range(3)]
    assert all(type(m) is RecordMetadata for m in metas)
    assert [(m.topic, m.partition, m.offset) for m in metas] == [("t", 0, i) for i in range(3)]


def test_keyed_partition_is_kafkas(log: eventlog.Log) -> None:
    log.create_topic("t", 7)
    keys = [b"", b"a", b"ABC123", b"user-42", bytes(range(256)), b"\xff" * 17]
    keys += [b"key-%d" % i for i in range(100)]
    for key in keys:
        expected = kafka_partition(key, 7)
        first = log.append("t", b"v", key=key)
        second = log.append("t", b"w", key=key)
        assert first.partition == second.partition == expected
    # Every record is where its key says.
    for p, records in all_records(log, "t").items():
        assert all(kafka_partition(r.key, 7) == p for r in records)  # type: ignore[arg-type]


def test_explicit_partition_overrides_key(log: eventlog.Log) -> None:
    log.create_topic("t", 4)
    key = b"some key"
    target = (kafka_partition(key, 4) + 1) % 4
    meta = log.append("t", b"v", key=key, partition=target)
    assert meta.partition == target
    assert log.read("t", target)[0].key == key


def test_null_key_appends_use_a_valid_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 3)
    metas = [log.append("t", b"x" * 100) for _ in range(50)]
    assert {m.partition for m in metas} <= {0, 1, 2}
    for m in metas:
        assert log.read("t", m.partition, m.offset, max_records=1)[0].offset == m.offset
    assert sum(log.end_offsets("t").values()) == 50


def test_timestamp_defaults_to_now(log: eventlog.Log) -> None:
    log.create_topic("t")
    before = now_ms()
    meta = log.append("t", b"v")
    after = now_ms()
    assert before <= meta.timestamp <= after
    assert log.read("t", 0)[0].timestamp == meta.timestamp


def test_explicit_timestamps_are_preserved(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)  # keep the old timestamps
    stamps = [5_000, 0, 2**63 - 1, 17, 5_000, 1_700_000_000_000]
    metas = [log.append("t", b"v", timestamp=ts) for ts in stamps]
    assert [m.timestamp for m in metas] == stamps
    assert [r.timestamp for r in log.read("t", 0)] == stamps
    batch = log.append_batch("t", [NewRecord(b"v", timestamp=ts) for ts in stamps])
    assert [m.timestamp for m in batch] == stamps
    assert [r.timestamp for r in log.read("t", 0, len(stamps))] == stamps


def test_log_append_time_overrides_timestamps(log: eventlog.Log) -> None:
    log.create_topic("t", message_timestamp_type="LogAppendTime")
    before = now_ms()
    meta = log.append("t", b"v", timestamp=1_000)
    metas = log.append_batch("t", [NewRecord(b"a", timestamp=5), NewRecord(b"b")])
    cols = log.append_columns("t", [b"c"], timestamp=7)
    after = now_ms()
    for m in [meta, *metas]:
        assert before <= m.timestamp <= after
    records = log.read("t", 0)
    assert [r.timestamp for r in records[:3]] == [meta.timestamp, *(m.timestamp for m in metas)]
    assert all(before <= r.timestamp <= after for r in records)
    assert cols == {0: range(3, 4)}


def test_headers_round_trip(log: eventlog.Log) -> None:
    log.create_topic("t")
    headers = [("trace", b"abc"), ("dup", b"1"), ("empty", b""), ("none", None),
               ("dup", b"2"), ("ünïcode", b"\x00\xff")]
    log.append("t", b"v", headers=headers)
    log.append("t", b"v", headers=tuple(headers))
    log.append("t", b"v")
    log.append("t", b"v", headers=[])
    records = log.read("t", 0)
    assert records[0].headers == tuple(headers)
    assert records[1].headers == tuple(headers)
    assert records[2].headers == ()
    assert records[3].headers == ()
    assert all(type(h) is tuple for h in records[0].headers)


def test_headers_mixed_within_a_batch(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append_batch("t", [NewRecord(b"a"), NewRecord(b"b", headers=[("h", None)]),
                           NewRecord(b"c", headers=[])])
    assert [r.headers for r in log.read("t", 0)] == [(), (("h", None),), ()]


def test_tombstones(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"value", key=b"k")
    log.append("t", None, key=b"k")
    log.append("t", b"", key=b"k")  # empty is not a tombstone
    records = log.read("t", 0)
    assert [r.value for r in records] == [b"value", None, b""]
    assert [r.key for r in records] == [b"k"] * 3


def test_null_and_empty_keys_differ(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"v", key=None)
    log.append("t", b"v", key=b"")
    assert [r.key for r in log.read("t", 0)] == [None, b""]


def test_large_value_round_trips(log: eventlog.Log) -> None:
    log.create_topic("t")
    value = bytes(range(256)) * 4000  # about 1 MB, compressible: exercises zstd
    log.append("t", value)
    log.append("t", b"small")
    assert [r.value for r in log.read("t", 0)] == [value, b"small"]


@pytest.mark.parametrize("compression", ["producer", "zstd", "uncompressed"])
def test_compression_settings_round_trip(log: eventlog.Log, compression: str) -> None:
    log.create_topic("t", compression_type=compression)
    values = [b"x" * 1000 + bytes([i]) for i in range(50)]
    log.append_batch("t", [NewRecord(v) for v in values])
    assert [r.value for r in log.read("t", 0, max_records=100)] == values


# --- append_batch -------------------------------------------------------------------


def test_append_batch_empty(log: eventlog.Log) -> None:
    log.create_topic("t")
    assert log.append_batch("t", []) == []
    assert log.describe_topic("t").partitions[0].batches == 0


def test_append_batch_mixed_partitions_in_input_order(log: eventlog.Log) -> None:
    log.create_topic("t", 3)
    log.append("t", b"pre", partition=2)
    parts = [2, 0, 1, 0, 2, 2, None]
    records = [NewRecord(b"v%d" % i, partition=p, key=b"k" if p is None else None)
               for i, p in enumerate(parts)]
    metas = log.append_batch("t", records)
    assert [m.partition for m in metas[:6]] == parts[:6]
    assert metas[6].partition == kafka_partition(b"k", 3)
    # Offsets within a partition follow input order.
    seen: dict[int, int] = {0: 0, 1: 0, 2: 1}
    for i, m in enumerate(metas[:6]):
        assert m.offset == seen[m.partition]
        seen[m.partition] += 1
        assert m.topic == "t"
        assert log.read("t", m.partition, m.offset, max_records=1)[0].value == b"v%d" % i
    last = metas[6]
    assert log.read("t", last.partition, last.offset, max_records=1)[0].value == b"v6"


def test_append_batch_metadata_is_a_sequence(log: eventlog.Log) -> None:
    log.create_topic("t", 3, retention_ms=-1)  # keep the 1970 timestamps
    records = [NewRecord(b"a", partition=2, timestamp=1), NewRecord(b"b", partition=0,
                                                                    timestamp=2),
               NewRecord(b"c", partition=2, timestamp=3)]
    metas = log.append_batch("t", records)
    expected = [RecordMetadata("t", 2, 0, 1), RecordMetadata("t", 0, 0, 2),
                RecordMetadata("t", 2, 1, 3)]
    assert len(metas) == 3
    assert list(metas) == expected
    assert metas == expected
    assert metas[0] == expected[0]
    assert metas[-1] == expected[2]
    assert metas[1:] == expected[1:]
    assert metas.partitions == {2: range(0, 2), 0: range(0, 1)}  # type: ignore[attr-defined]


def test_append_batch_one_entry_per_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 4)
    records = [NewRecord(b"v", partition=p) for p in [0, 2, 0, 2, 2, 0]]
    log.append_batch("t", records)
    assert [p.batches for p in log.describe_topic("t").partitions] == [1, 0, 1, 0]
    log.append_batch("t", [NewRecord(b"v", partition=3) for _ in range(100)])
    assert [p.batches for p in log.describe_topic("t").partitions] == [1, 0, 1, 1]
    assert log.end_offsets("t") == {0: 3, 1: 0, 2: 3, 3: 100}


def test_append_batch_accepts_any_iterable(log: eventlog.Log) -> None:
    log.create_topic("t")
    metas = log.append_batch("t", (NewRecord(b"%d" % i) for i in range(5)))
    assert [m.offset for m in metas] == list(range(5))
    metas = log.append_batch("t", tuple(NewRecord(b"x") for _ in range(2)))
    assert [m.offset for m in metas] == [5, 6]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (NewRecord("text"), eventlog.InvalidRecordError),  # type: ignore[arg-type]
        (NewRecord(b"v", key=1), eventlog.InvalidRecordError),  # type: ignore[arg-type]
        (NewRecord(b"v", partition=3), eventlog.PartitionNotFoundError),
        (NewRecord(b"v", headers=[("h", "s")]), eventlog.InvalidRecordError),  # type: ignore[list-item]
        (NewRecord(b"v", timestamp=-5), eventlog.InvalidRecordError),
        (NewRecord(b"x" * 2000), eventlog.RecordTooLargeError),
    ],
)
def test_append_batch_is_atomic(log: eventlog.Log, bad: NewRecord,
                                error: type[Exception]) -> None:
    log.create_topic("t", 3, max_message_bytes=1024)
    log.append("t", b"existing", partition=1)
    before = log.describe_topic("t")
    good = [NewRecord(b"v", partition=p) for p in (0, 1, 2)]
    with pytest.raises(error):
        log.append_batch("t", [*good, bad, *good])
    assert log.describe_topic("t") == before
    assert [r.value for r in log.read("t", 1)] == [b"existing"]
    assert log.read("t", 0) == []
    assert log.read("t", 2) == []


# --- append_columns -----------------------------------------------------------------


def test_append_columns_one_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 3, retention_ms=-1)  # keep the 1970 timestamps
    values = [b"a", b"b", None, b"d"]
    assert log.append_columns("t", values, partition=2, timestamp=1234) == {2: range(0, 4)}
    assert log.append_columns("t", (b"e",), partition=2) == {2: range(4, 5)}
    records = log.read("t", 2)
    assert [r.value for r in records] == [*values, b"e"]
    assert [r.timestamp for r in records[:4]] == [1234] * 4
    assert all(r.key is None and r.headers == () for r in records)
    assert log.describe_topic("t").partitions[2].batches == 2


def test_append_columns_with_keys(log: eventlog.Log) -> None:
    log.create_topic("t", 3)
    keys = [b"key-%d" % i for i in range(30)]
    values = [b"value-%d" % i for i in range(30)]
    result = log.append_columns("t", values, keys=keys)
    expected: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        expected.setdefault(kafka_partition(key, 3), []).append(i)
    assert set(result) == set(expected)
    for p, indexes in expected.items():
        offsets = result[p]
        assert isinstance(offsets, range)
        assert len(offsets) == len(indexes)
        records = log.read("t", p, offsets.start, max_records=len(offsets))
        assert [r.offset for r in records] == list(offsets)
        assert [r.value for r in records] == [values[i] for i in indexes]
        assert [r.key for r in records] == [keys[i] for i in indexes]
    assert [p.batches for p in log.describe_topic("t").partitions] == [
        1 if p in expected else 0 for p in range(3)]


def test_append_columns_empty(log: eventlog.Log) -> None:
    log.create_topic("t")
    assert log.append_columns("t", []) == {}
    assert log.end_offsets("t") == {0: 0}


def test_append_columns_without_keys_goes_to_one_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 4)
    result = log.append_columns("t", [b"v"] * 10)
    assert len(result) == 1
    ((p, offsets),) = result.items()
    assert offsets == range(0, 10)
    assert len(log.read("t", p)) == 10


# --- read ---------------------------------------------------------------------------


@pytest.fixture
def ten(log: eventlog.Log) -> eventlog.Log:
    """Topic "t" with 10 records in partition 0: batches [0..3], [4..8], [9]; kept forever
    (retention would delete their 1970 timestamps at once)."""
    log.create_topic("t", 2, retention_ms=-1)
    log.append_batch("t", [NewRecord(b"v%d" % i, key=b"k%d" % i, partition=0,
                                     timestamp=1000 + i) for i in range(4)])
    log.append_batch("t", [NewRecord(b"v%d" % i, key=b"k%d" % i, partition=0,
                                     timestamp=1000 + i) for i in range(4, 9)])
    log.append("t", b"v9", key=b"k9", partition=0, timestamp=1009)
    return log


def test_read_everything(ten: eventlog.Log) -> None:
    records = ten.read("t", 0)
    assert all(type(r) is Record for r in records)
    assert records == [Record("t", 0, i, 1000 + i, b"k%d" % i, b"v%d" % i, ())
                       for i in range(10)]


@pytest.mark.parametrize("offset", range(10))
def test_read_from_any_offset(ten: eventlog.Log, offset: int) -> None:
    records = ten.read("t", 0, offset)
    assert [r.offset for r in records] == list(range(offset, 10))
    assert [r.value for r in records] == [b"v%d" % i for i in range(offset, 10)]


@pytest.mark.parametrize(("offset", "max_records"), [(0, 1), (2, 3), (5, 2), (3, 6), (0, 10)])
def test_read_max_records(ten: eventlog.Log, offset: int, max_records: int) -> None:
    records = ten.read("t", 0, offset, max_records=max_records)
    assert [r.offset for r in records] == list(range(offset, min(10, offset + max_records)))


def test_read_max_bytes(ten: eventlog.Log) -> None:
    # Each record has 2 key bytes and 2 value bytes.
    assert [r.offset for r in ten.read("t", 0, 0, max_bytes=12)] == [0, 1, 2]
    assert [r.offset for r in ten.read("t", 0, 2, max_bytes=13)] == [2, 3, 4]
    assert [r.offset for r in ten.read("t", 0, 3, max_bytes=4)] == [3]
    assert [r.offset for r in ten.read("t", 0, 0, max_bytes=10**9)] == list(range(10))


def test_read_max_bytes_returns_at_least_one_record(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"x" * 1000)
    log.append("t", b"y" * 1000)
    records = log.read("t", 0, max_bytes=1)
    assert [r.value for r in records] == [b"x" * 1000]
    assert [r.offset for r in log.read("t", 0, 1, max_bytes=1)] == [1]


@pytest.mark.parametrize("offset", [10, 11, 1000, 2**63 - 1])
def test_read_at_or_past_end_is_empty(ten: eventlog.Log, offset: int) -> None:
    assert ten.read("t", 0, offset) == []
    assert len(ten.read_columns("t", 0, offset)) == 0


def test_read_empty_partition(ten: eventlog.Log) -> None:
    assert ten.read("t", 1) == []
    assert ten.read("t", 1, 5) == []


def test_read_below_log_start_raises(ten: eventlog.Log) -> None:
    set_log_start(ten, "t", 0, 4)
    assert ten.beginning_offsets("t") == {0: 4, 1: 0}
    for offset in (0, 3):
        with pytest.raises(eventlog.OffsetOutOfRangeError) as info:
            ten.read("t", 0, offset)
        err = info.value
        assert isinstance(err, IndexError)
        assert (err.topic, err.partition, err.offset) == ("t", 0, offset)
        assert "4" in str(err)  # says where the log starts
        with pytest.raises(eventlog.OffsetOutOfRangeError):
            ten.read_columns("t", 0, offset)
    assert [r.offset for r in ten.read("t", 0, 4)] == list(range(4, 10))
    # A scan starts at the log start.
    assert [r.offset for r in ten.scan("t", 0)] == list(range(4, 10))
    assert [r.offset for r in ten.scan("t", 0, start_offset=1)] == list(range(4, 10))


def test_log_start_zero_never_raises(ten: eventlog.Log) -> None:
    assert ten.beginning_offsets("t") == {0: 0, 1: 0}
    assert ten.read("t", 0, 0)[0].offset == 0
    assert ten.read("t", 1, 0) == []


# --- read_columns -------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "max_records"), [(0, 10_000), (0, 3), (4, 2), (7, 100)])
def test_read_columns_matches_read(ten: eventlog.Log, offset: int, max_records: int) -> None:
    records = ten.read("t", 0, offset, max_records=max_records)
    cols = ten.read_columns("t", 0, offset, max_records=max_records)
    assert isinstance(cols, eventlog.RecordColumns)
    assert (cols.topic, cols.partition) == ("t", 0)
    assert len(cols) == len(records)
    assert cols.offsets == [r.offset for r in records]
    assert cols.timestamps == [r.timestamp for r in records]
    assert cols.keys == [r.key for r in records]
    assert cols.values == [r.value for r in records]
    assert cols.headers == [r.headers for r in records]
    assert cols.next_offset == records[-1].offset + 1


def test_read_columns_next_offset_at_end(ten: eventlog.Log) -> None:
    cols = ten.read_columns("t", 0, 10)
    assert (len(cols), cols.next_offset) == (0, 10)
    empty = ten.read_columns("t", 1)
    assert (len(empty), empty.next_offset) == (0, 0)


def test_read_columns_paging_covers_everything(ten: eventlog.Log) -> None:
    offsets: list[int] = []
    position = 0
    while True:
        cols = ten.read_columns("t", 0, position, max_records=3)
        if not len(cols):
            break
        offsets += cols.offsets
        position = cols.next_offset
    assert offsets == list(range(10))


def test_read_columns_with_headers_and_max_bytes(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"aaaa", headers=[("h", b"1")])
    log.append("t", b"bbbb")
    cols = log.read_columns("t", 0, max_bytes=4)
    assert cols.values == [b"aaaa"]
    assert cols.headers == [(("h", b"1"),)]
    assert cols.next_offset == 1


# --- scan ---------------------------------------------------------------------------


@pytest.fixture
def three(log: eventlog.Log) -> eventlog.Log:
    """Topic "t", 3 partitions, partition p holding 5 + p records with timestamps
    100 * p + offset, kept forever (retention would delete them at once)."""
    log.create_topic("t", 3, retention_ms=-1)
    for p in range(3):
        for i in range(5 + p):
            log.append("t", b"p%d-%d" % (p, i), partition=p, timestamp=100 * p + i)
    return log


def test_scan_all_partitions(three: eventlog.Log) -> None:
    expected = [r for p in range(3) for r in three.read("t", p)]
    assert len(expected) == 18
    assert list(three.scan("t")) == expected


def test_scan_one_partition(three: eventlog.Log) -> None:
    assert list(three.scan("t", 1)) == three.read("t", 1)
    assert list(three.scan("t", partition=2)) == three.read("t", 2)


def test_scan_start_offset(three: eventlog.Log) -> None:
    records = list(three.scan("t", start_offset=3))
    assert [(r.partition, r.offset) for r in records] == [
        (p, o) for p in range(3) for o in range(3, 5 + p)]


def test_scan_start_timestamp(three: eventlog.Log) -> None:
    records = list(three.scan("t", start_timestamp=103))
    # Partition 0 holds timestamps 0..4 (none >= 103); partition 1 100..105; 2 200..206.
    assert [(r.partition, r.offset) for r in records] == [
        (1, 3), (1, 4), (1, 5), *((2, o) for o in range(7))]


def test_scan_end_offset(three: eventlog.Log) -> None:
    records = list(three.scan("t", end_offset=2))
    assert [(r.partition, r.offset) for r in records] == [
        (p, o) for p in range(3) for o in range(2)]
    assert [r.offset for r in three.scan("t", 2, start_offset=1, end_offset=4)] == [1, 2, 3]
    assert list(three.scan("t", 2, start_offset=4, end_offset=4)) == []


def test_scan_pages_with_short_reads(three: eventlog.Log,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # White-box: scan reads its pages through Log._read (topic, partition, offset,
    # max_records, ...), each page in its own short transaction.
    expected = [r for p in range(3) for r in three.read("t", p)]
    calls: list[int] = []
    real_read = three._read

    def counting_read(*args: object, **kwargs: object) -> list[Record]:
        calls.append(args[3])  # type: ignore[arg-type]
        return real_read(*args, **kwargs)  # type: ignore[arg-type, return-value]

    monkeypatch.setattr(three, "_read", counting_read)
    records = list(three.scan("t", page_size=2))
    assert records == expected
    # 5, 6 and 7 records in pages of 2: at least 3 + 3 + 4 page reads, each of <= 2.
    assert len(calls) >= 10
    assert set(calls) == {2}


def test_scan_page_size_one(three: eventlog.Log) -> None:
    assert list(three.scan("t", page_size=1)) == list(three.scan("t"))


def test_scan_excludes_records_appended_after_it_starts(three: eventlog.Log) -> None:
    before = list(three.scan("t"))
    iterator = three.scan("t")
    three.append("t", b"late", partition=0)
    three.append("t", b"late", partition=2)
    assert list(iterator) == before
    # Also when the appends happen in the middle of the iteration.
    iterator = three.scan("t", page_size=1)
    first = next(iterator)
    three.append("t", b"later", partition=0)
    three.append("t", b"later", partition=1)
    rest = list(iterator)
    assert [first, *rest] == [r for r in list(three.scan("t")) if r.value != b"later"]
    assert all(r.value != b"later" for r in rest)


def test_scan_empty_topic(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    assert list(log.scan("t")) == []
    assert list(log.scan("t", start_timestamp=0)) == []


def test_scan_is_an_iterator(three: eventlog.Log) -> None:
    iterator = three.scan("t")
    assert iter(iterator) is iterator


# --- offsets ------------------------------------------------------------------------


def test_beginning_and_end_offsets(three: eventlog.Log) -> None:
    assert three.beginning_offsets("t") == {0: 0, 1: 0, 2: 0}
    assert three.end_offsets("t") == {0: 5, 1: 6, 2: 7}
    three.append_batch("t", [NewRecord(b"x", partition=1)] * 3)
    assert three.end_offsets("t") == {0: 5, 1: 9, 2: 7}


def test_offsets_for_times_basic(three: eventlog.Log) -> None:
    assert three.offsets_for_times("t", 0) == {0: 0, 1: 0, 2: 0}
    assert three.offsets_for_times("t", 3) == {0: 3, 1: 0, 2: 0}
    assert three.offsets_for_times("t", 104) == {0: None, 1: 4, 2: 0}
    assert three.offsets_for_times("t", 206) == {0: None, 1: None, 2: 6}
    assert three.offsets_for_times("t", 207) == {0: None, 1: None, 2: None}
    assert three.offsets_for_times("t", 2**63 - 1) == {0: None, 1: None, 2: None}


def test_offsets_for_times_empty_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 2, retention_ms=-1)  # keep the 1970 timestamps
    log.append("t", b"v", partition=1, timestamp=50)
    assert log.offsets_for_times("t", 0) == {0: None, 1: 0}
    assert log.offsets_for_times("t", 51) == {0: None, 1: None}


_timestamps = st.integers(min_value=0, max_value=1_000)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_timestamps, min_size=1, max_size=8), max_size=8),
       probes=st.lists(st.integers(min_value=0, max_value=1_100), max_size=8))
def test_offsets_for_times_matches_brute_force(
    log: eventlog.Log, batches: list[list[int]], probes: list[int]
) -> None:
    topic = next(_names)
    log.create_topic(topic, retention_ms=-1)  # keep the 1970 timestamps
    for stamps in batches:
        if len(stamps) == 1:
            log.append(topic, b"v", timestamp=stamps[0])
        else:
            log.append_batch(topic, [NewRecord(b"v", timestamp=ts) for ts in stamps])
    records = log.read(topic, 0, max_records=1_000)
    assert [r.timestamp for r in records] == [ts for stamps in batches for ts in stamps]
    interesting = {0, *probes, *(r.timestamp for r in records),
                   *(r.timestamp + 1 for r in records)}
    for t in sorted(interesting):
        expected = next((r.offset for r in records if r.timestamp >= t), None)
        assert log.offsets_for_times(topic, t) == {0: expected}, t


# --- wait ---------------------------------------------------------------------------


def test_wait_returns_true_at_once_when_records_exist(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    log.append("t", b"v", partition=1)
    log.append("t", b"v", partition=1)
    assert log.wait("t", 1, 0) is True
    assert log.wait("t", 1, 1, timeout=0) is True
    assert log.wait("t", 1, 0, timeout=0.05) is True


def test_wait_times_out(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    log.append("t", b"v", partition=1)
    assert log.wait("t", 0, 0, timeout=0.05) is False
    assert log.wait("t", 1, 1, timeout=0.05) is False
    assert log.wait("t", 1, 1, timeout=0) is False


def test_wait_wakes_when_another_thread_appends(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    log.append("t", b"first", partition=0)
    results: list[bool] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        results.append(log.wait("t", 0, 1, timeout=30))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    time.sleep(0.05)  # let the waiter block; the outcome does not depend on it
    assert results == []  # nothing at offset 1 yet
    log.append("t", b"noise", partition=1)  # another partition does not satisfy it
    log.append("t", b"second", partition=0)
    thread.join(30)
    assert not thread.is_alive()
    assert results == [True]


def test_wait_wakes_for_an_append_through_another_handle(log: eventlog.Log,
                                                         log_path: Path) -> None:
    log.create_topic("t")
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(log.wait("t", 0, 0, timeout=30)))
    thread.start()
    with eventlog.open(log_path, durability="off") as other:
        other.append("t", b"v")
    thread.join(30)
    assert results == [True]


# --- lifecycle ----------------------------------------------------------------------


def test_reopen_persists_everything(log_path: Path) -> None:
    with eventlog.open(log_path, durability="off") as log:
        # retention.ms=-1: the 1970 timestamps below must stay.
        log.create_topic("a", 3, retention_ms=-1, config={"cleanup.policy": "delete"})
        log.create_topic("b", compression_type="uncompressed", retention_ms=-1)
        log.create_partitions("b", 2)
        log.alter_topic("a", max_message_bytes=5_000)
        log.append_batch("a", [NewRecord(b"v%d" % i, key=b"k%d" % i, timestamp=10 + i,
                                         headers=[("h", b"%d" % i), ("n", None)])
                               for i in range(20)])
        log.append_columns("b", [b"x", None, b"z"], partition=1, timestamp=99)
        log.append("b", None, key=b"tomb", partition=0, timestamp=5)
        descriptions = {t: log.describe_topic(t) for t in log.list_topics()}
        contents = {t: all_records(log, t) for t in log.list_topics()}
        configs = {t: log.topic_config(t) for t in log.list_topics()}
        times = log.offsets_for_times("a", 15)
    with eventlog.open(log_path, durability="off") as log:
        assert log.list_topics() == ["a", "b"]
        assert {t: log.describe_topic(t) for t in log.list_topics()} == descriptions
        assert {t: all_records(log, t) for t in log.list_topics()} == contents
        assert {t: log.topic_config(t) for t in log.list_topics()} == configs
        assert log.offsets_for_times("a", 15) == times
        # And appends continue where they left off.
        assert log.append("b", b"more", partition=1).offset == 3


def test_open_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "log"
    with eventlog.open(path) as log:
        assert Path(log.path) == path
        assert Path(log.path).is_absolute()
    assert (path / "data.mdb").exists()


def test_open_accepts_str_paths(tmp_path: Path) -> None:
    with eventlog.open(str(tmp_path / "log")) as log:
        log.create_topic("t")
    with eventlog.open(str(tmp_path / "log")) as log:
        assert log.list_topics() == ["t"]


def test_properties(log: eventlog.Log, log_path: Path) -> None:
    assert Path(log.path) == log_path
    assert log.readonly is False
    assert log.durability == "off"
    assert log.closed is False
    assert "log" in repr(log)
    log.close()
    assert log.closed is True


def test_context_manager_closes(log_path: Path) -> None:
    with eventlog.open(log_path) as log:
        assert not log.closed
    assert log.closed
    with pytest.raises(eventlog.LogClosedError):
        log.list_topics()


def test_close_is_idempotent(log: eventlog.Log) -> None:
    log.close()
    log.close()
    assert log.closed


def test_two_opens_share_data(log_path: Path) -> None:
    first = eventlog.open(log_path, durability="off")
    second = eventlog.open(log_path, durability="off")
    try:
        first.create_topic("t")
        first.append("t", b"one")
        assert second.list_topics() == ["t"]
        assert [r.value for r in second.read("t", 0)] == [b"one"]
        second.append("t", b"two")
        assert [r.value for r in first.read("t", 0)] == [b"one", b"two"]
        first.close()
        assert second.closed is False
        second.append("t", b"three")
        assert [r.value for r in second.read("t", 0)] == [b"one", b"two", b"three"]
        with pytest.raises(eventlog.LogClosedError):
            first.read("t", 0)
    finally:
        first.close()
        second.close()
    with eventlog.open(log_path) as third:
        assert third.end_offsets("t") == {0: 3}


def test_sync(log: eventlog.Log) -> None:
    log.create_topic("t")
    log.append("t", b"v")
    assert log.sync() is None


@pytest.mark.parametrize("durability", ["full", "normal", "off"])
def test_durability_modes(log_path: Path, durability: str) -> None:
    with eventlog.open(log_path, durability=durability) as log:
        assert log.durability == durability
        log.create_topic("t", 2)
        log.append("t", b"a", partition=0)
        log.append_batch("t", [NewRecord(b"b", partition=1), NewRecord(b"c", partition=0)])
        log.append_columns("t", [b"d"], partition=1)
        log.sync()
    with eventlog.open(log_path, durability=durability) as log:
        assert [r.value for r in log.read("t", 0)] == [b"a", b"c"]
        assert [r.value for r in log.read("t", 1)] == [b"b", b"d"]


def _populated(log_path: Path) -> None:
    with eventlog.open(log_path) as log:
        log.create_topic("t", 2, retention_ms=-1)  # keep the 1970 timestamp
        log.append("t", b"v", key=b"k", partition=1, timestamp=42)


def test_readonly_can_read(log_path: Path) -> None:
    _populated(log_path)
    with eventlog.open(log_path, readonly=True) as ro:
        assert ro.readonly is True
        assert ro.list_topics() == ["t"]
        assert ro.describe_topic("t").partitions[1].end_offset == 1
        assert ro.read("t", 1) == [Record("t", 1, 0, 42, b"k", b"v", ())]
        assert ro.read_columns("t", 1).values == [b"v"]
        assert [r.value for r in ro.scan("t")] == [b"v"]
        assert ro.end_offsets("t") == {0: 0, 1: 1}
        assert ro.beginning_offsets("t") == {0: 0, 1: 0}
        assert ro.offsets_for_times("t", 0) == {0: None, 1: 0}
        assert ro.wait("t", 1, 0, timeout=0) is True


_WRITES = {
    "create_topic": lambda log: log.create_topic("new"),
    "create_topic_exist_ok": lambda log: log.create_topic("t", 2, exist_ok=True),
    "alter_topic": lambda log: log.alter_topic("t", retention_ms=5),
    "create_partitions": lambda log: log.create_partitions("t", 4),
    "delete_topic": lambda log: log.delete_topic("t"),
    "append": lambda log: log.append("t", b"x"),
    "append_batch": lambda log: log.append_batch("t", [NewRecord(b"x", partition=0)]),
    "append_columns": lambda log: log.append_columns("t", [b"x"], partition=0),
}


@pytest.mark.parametrize("write", list(_WRITES))
def test_readonly_rejects_every_write(log_path: Path, write: str) -> None:
    _populated(log_path)
    digest = data_file_digest(log_path)
    with eventlog.open(log_path, readonly=True) as ro:
        with pytest.raises(eventlog.ReadOnlyLogError) as info:
            _WRITES[write](ro)
        assert isinstance(info.value, PermissionError)
        assert "read-only" in str(info.value)
        assert ro.end_offsets("t") == {0: 0, 1: 1}
        assert ro.list_topics() == ["t"]
    assert data_file_digest(log_path) == digest


def test_readonly_handle_while_a_writer_is_open(log_path: Path) -> None:
    _populated(log_path)
    with eventlog.open(log_path) as writer, eventlog.open(log_path, readonly=True) as ro:
        assert ro.readonly is True
        with pytest.raises(eventlog.ReadOnlyLogError):
            ro.append("t", b"x", partition=0)
        assert writer.end_offsets("t") == {0: 0, 1: 1}
        assert ro.read("t", 1)[0].value == b"v"


def test_readonly_of_missing_log(tmp_path: Path) -> None:
    with pytest.raises(eventlog.LogNotFoundError):
        eventlog.open(tmp_path / "missing", readonly=True)
    assert not (tmp_path / "missing").exists()


# --- threads ------------------------------------------------------------------------


def test_threads_appending_to_one_partition(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    threads, per_thread = 8, 100
    metas: list[list[RecordMetadata]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            if i % 10 == 0:
                metas[n].extend(log.append_batch("t", [
                    NewRecord(b"%d-%d-b%d" % (n, i, j), partition=0) for j in range(3)]))
            else:
                metas[n].append(log.append("t", b"%d-%d" % (n, i), partition=0))

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not any(w.is_alive() for w in workers)
    total = threads * (per_thread + 2 * (per_thread // 10))
    flat = [m for ms in metas for m in ms]
    assert len(flat) == total
    assert sorted(m.offset for m in flat) == list(range(total))
    assert {m.partition for m in flat} == {0}
    for ms in metas:  # each thread's own appends are in order
        assert [m.offset for m in ms] == sorted(m.offset for m in ms)
    records = log.read("t", 0, max_records=total + 1)
    assert [r.offset for r in records] == list(range(total))
    by_offset = {m.offset: m for m in flat}
    expected_values = {b"%d-%d" % (n, i) for n in range(threads) for i in range(per_thread)
                       if i % 10} | {b"%d-%d-b%d" % (n, i, j) for n in range(threads)
                                     for i in range(0, per_thread, 10) for j in range(3)}
    assert {r.value for r in records} == expected_values
    assert len({r.value for r in records}) == total
    for r in records:
        assert by_offset[r.offset].timestamp == r.timestamp
    assert log.end_offsets("t") == {0: total, 1: 0}
