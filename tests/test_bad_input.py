"""The bad-input matrix: every public entry point, fed every kind of wrong argument.

Each case checks three things:

- the specific eventlog error class, and the builtin exception it must also be (so that
  ``except ValueError`` / ``except KeyError`` / ``except IndexError`` keep working);
- an informative message: it names the offending thing (name, key, value, type) or states
  what is allowed (the range, the rule);
- nothing changed: topics, configs, offsets, sizes and batch counts are equal before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import NewRecord

Call = Callable[[eventlog.Log], object]

NAME_RULE = "a-zA-Z0-9._-"


def snapshot(log: eventlog.Log) -> dict[str, Any]:
    """Everything observable about the log's state, cheap to compare."""
    topics = log.list_topics()
    return {
        "topics": topics,
        "describe": {t: log.describe_topic(t) for t in topics},
        "config": {t: log.topic_config(t) for t in topics},
        "end": {t: log.end_offsets(t) for t in topics},
        "start": {t: log.beginning_offsets(t) for t in topics},
        "records": {t: {p: log.read(t, p, max_records=10_000) for p in range(3)}
                    for t in topics if t == "t"},
    }


@pytest.fixture
def populated(log: eventlog.Log) -> eventlog.Log:
    """"t": 3 partitions with records; "small": max.message.bytes=100; "compacted"."""
    log.create_topic("t", 3, retention_ms=-1)  # keep the 1970 timestamps
    for p in range(3):
        log.append_batch("t", [NewRecord(b"v%d" % i, key=b"k", partition=p, timestamp=10 + i)
                               for i in range(3)])
    log.create_topic("small", max_message_bytes=100)
    log.append("small", b"x" * 100)
    log.create_topic("compacted", cleanup_policy="compact")
    return log


def check(log: eventlog.Log, call: Call, error: type[eventlog.EventLogError],
          builtin: type[BaseException], fragments: tuple[str, ...]) -> BaseException:
    assert issubclass(error, builtin), "the test's own expectation is inconsistent"
    before = snapshot(log)
    with pytest.raises(eventlog.EventLogError) as info:
        call(log)
    err = info.value
    assert isinstance(err, error), f"expected {error.__name__}, got {type(err).__name__}: {err}"
    assert isinstance(err, builtin)
    message = str(err)
    assert message == err.message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in message {message!r}"
    assert snapshot(log) == before
    return err


# --- the entry points that take a topic name ------------------------------------------

TOPIC_CALLS: dict[str, Callable[[eventlog.Log, Any], object]] = {
    "create_topic": lambda log, n: log.create_topic(n),
    "describe_topic": lambda log, n: log.describe_topic(n),
    "topic_config": lambda log, n: log.topic_config(n),
    "alter_topic": lambda log, n: log.alter_topic(n, retention_ms=1000),
    "create_partitions": lambda log, n: log.create_partitions(n, 5),
    "delete_topic": lambda log, n: log.delete_topic(n),
    "append": lambda log, n: log.append(n, b"v"),
    "append_batch": lambda log, n: log.append_batch(n, [NewRecord(b"v")]),
    "append_columns": lambda log, n: log.append_columns(n, [b"v"]),
    "read": lambda log, n: log.read(n, 0),
    "read_columns": lambda log, n: log.read_columns(n, 0),
    "scan": lambda log, n: list(log.scan(n)),
    "beginning_offsets": lambda log, n: log.beginning_offsets(n),
    "end_offsets": lambda log, n: log.end_offsets(n),
    "offsets_for_times": lambda log, n: log.offsets_for_times(n, 0),
    "wait": lambda log, n: log.wait(n, 0, 0, timeout=0),
}

ILLEGAL_NAMES: list[object] = ["", ".", "..", "a b", "x" * 250, "tö", "a/b", None, 3, b"t"]


@pytest.mark.parametrize("entry", list(TOPIC_CALLS))
def test_illegal_topic_names(populated: eventlog.Log, entry: str) -> None:
    for name in ILLEGAL_NAMES:
        fragments = (NAME_RULE,)
        if isinstance(name, str) and name not in ("", "x" * 250):
            fragments += (repr(name),)
        if not isinstance(name, str):
            fragments += ("str",)
        check(populated, lambda log, n=name: TOPIC_CALLS[entry](log, n),
              eventlog.InvalidTopicNameError, ValueError, fragments)


@pytest.mark.parametrize("entry", [e for e in TOPIC_CALLS if e != "create_topic"])
def test_unknown_topic(populated: eventlog.Log, entry: str) -> None:
    err = check(populated, lambda log: TOPIC_CALLS[entry](log, "nope"),
                eventlog.TopicNotFoundError, KeyError, ("'nope'",))
    assert err.topic == "nope"
    assert not str(err).startswith(("'", '"'))


@pytest.mark.parametrize("entry", list(TOPIC_CALLS))
def test_deleted_topic_is_unknown(populated: eventlog.Log, entry: str) -> None:
    populated.create_topic("gone")
    populated.delete_topic("gone")
    if entry == "create_topic":
        populated.create_topic("gone")  # a deleted name is free again
        return
    check(populated, lambda log: TOPIC_CALLS[entry](log, "gone"),
          eventlog.TopicNotFoundError, KeyError, ("'gone'",))


# --- keys, values, headers ---------------------------------------------------------------

BAD_BYTES: list[object] = ["text", 5, bytearray(b"x"), [b"x"], memoryview(b"x"), 1.5, True]

RECORD_CALLS: dict[str, Callable[[eventlog.Log, object, object], object]] = {
    "append": lambda log, value, key: log.append("t", value, key=key),
    "append_batch": lambda log, value, key: log.append_batch(
        "t", [NewRecord(b"ok", key=b"k"), NewRecord(value, key=key)]),  # type: ignore[arg-type]
    "append_columns": lambda log, value, key: log.append_columns(
        "t", [b"ok", value], keys=[b"k", key]),  # type: ignore[list-item]
}


@pytest.mark.parametrize("entry", list(RECORD_CALLS))
@pytest.mark.parametrize("bad", BAD_BYTES, ids=lambda b: type(b).__name__)
def test_value_must_be_bytes(populated: eventlog.Log, entry: str, bad: object) -> None:
    check(populated, lambda log: RECORD_CALLS[entry](log, bad, b"k"),
          eventlog.InvalidRecordError, ValueError, ("value", "bytes", type(bad).__name__))


@pytest.mark.parametrize("entry", list(RECORD_CALLS))
@pytest.mark.parametrize("bad", BAD_BYTES, ids=lambda b: type(b).__name__)
def test_key_must_be_bytes(populated: eventlog.Log, entry: str, bad: object) -> None:
    check(populated, lambda log: RECORD_CALLS[entry](log, b"v", bad),
          eventlog.InvalidRecordError, ValueError, ("key", "bytes", type(bad).__name__))


def test_str_value_gets_a_hint(populated: eventlog.Log) -> None:
    err = check(populated, lambda log: log.append("t", "text"),  # type: ignore[arg-type]
                eventlog.InvalidRecordError, ValueError, ("encode",))
    assert err.topic == "t"


BAD_HEADERS: dict[str, object] = {
    "str": "name=value",
    "bytes": b"abc",
    "dict": {"a": b"1"},
    "int": 5,
    "pair-too-short": [("a",)],
    "pair-too-long": [("a", b"1", b"2")],
    "pair-is-str": ["ab"],
    "pair-is-none": [None],
    "name-bytes": [(b"a", b"1")],
    "name-int": [(1, b"1")],
    "name-none": [(None, b"1")],
    "value-str": [("a", "1")],
    "value-int": [("a", 1)],
    "value-bytearray": [("a", bytearray(b"1"))],
    "second-pair-bad": [("a", b"1"), ("b", "2")],
}

HEADER_CALLS: dict[str, Callable[[eventlog.Log, object], object]] = {
    "append": lambda log, h: log.append("t", b"v", headers=h),  # type: ignore[arg-type]
    "append_batch": lambda log, h: log.append_batch(
        "t", [NewRecord(b"v", partition=0), NewRecord(b"v", headers=h)]),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("entry", list(HEADER_CALLS))
@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_malformed_headers(populated: eventlog.Log, entry: str, case: str) -> None:
    check(populated, lambda log: HEADER_CALLS[entry](log, BAD_HEADERS[case]),
          eventlog.InvalidRecordError, ValueError, ("header",))


def test_bad_header_message_names_the_header(populated: eventlog.Log) -> None:
    check(populated, lambda log: log.append("t", b"v", headers=[("trace-id", "abc")]),  # type: ignore[list-item]
          eventlog.InvalidRecordError, ValueError, ("'trace-id'", "str"))


# --- partitions ----------------------------------------------------------------------

PARTITION_CALLS: dict[str, Callable[[eventlog.Log, object], object]] = {
    "append": lambda log, p: log.append("t", b"v", partition=p),  # type: ignore[arg-type]
    "append_keyed": lambda log, p: log.append("t", b"v", key=b"k", partition=p),  # type: ignore[arg-type]
    "append_batch": lambda log, p: log.append_batch(
        "t", [NewRecord(b"v", partition=0), NewRecord(b"v", partition=p)]),  # type: ignore[arg-type]
    "append_columns": lambda log, p: log.append_columns("t", [b"v"], partition=p),  # type: ignore[arg-type]
    "read": lambda log, p: log.read("t", p),  # type: ignore[arg-type]
    "read_columns": lambda log, p: log.read_columns("t", p),  # type: ignore[arg-type]
    "scan": lambda log, p: list(log.scan("t", p)),  # type: ignore[arg-type]
    "wait": lambda log, p: log.wait("t", p, 0, timeout=0),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("entry", list(PARTITION_CALLS))
@pytest.mark.parametrize("partition", [-1, 3, 4, 10**9, 2**70])
def test_partition_out_of_range(populated: eventlog.Log, entry: str, partition: int) -> None:
    err = check(populated, lambda log: PARTITION_CALLS[entry](log, partition),
                eventlog.PartitionNotFoundError, IndexError, (str(partition), "0..2"))
    assert (err.topic, err.partition) == ("t", partition)


@pytest.mark.parametrize("entry", list(PARTITION_CALLS))
@pytest.mark.parametrize("partition", ["0", True, False, 1.0, b"0"],
                         ids=["str", "True", "False", "float", "bytes"])
def test_partition_wrong_type(populated: eventlog.Log, entry: str, partition: object) -> None:
    err = check(populated, lambda log: PARTITION_CALLS[entry](log, partition),
                eventlog.InvalidArgumentError, ValueError, ("partition", repr(partition)))
    assert not isinstance(err, LookupError)


@pytest.mark.parametrize("entry", ["read", "read_columns", "wait"])
def test_partition_is_required(populated: eventlog.Log, entry: str) -> None:
    check(populated, lambda log: PARTITION_CALLS[entry](log, None),
          eventlog.InvalidArgumentError, ValueError, ("partition",))


# --- offsets, counts, timestamps ------------------------------------------------------------

OFFSET_CALLS: dict[str, Callable[[eventlog.Log, object], object]] = {
    "read": lambda log, o: log.read("t", 0, o),  # type: ignore[arg-type]
    "read_columns": lambda log, o: log.read_columns("t", 0, o),  # type: ignore[arg-type]
    "scan_start": lambda log, o: list(log.scan("t", start_offset=o)),  # type: ignore[arg-type]
    "scan_end": lambda log, o: list(log.scan("t", end_offset=o)),  # type: ignore[arg-type]
    "wait": lambda log, o: log.wait("t", 0, o, timeout=0),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("entry", list(OFFSET_CALLS))
@pytest.mark.parametrize("offset", [-1, -(2**63), 2**63, 2**70])
def test_offset_out_of_range(populated: eventlog.Log, entry: str, offset: int) -> None:
    err = check(populated, lambda log: OFFSET_CALLS[entry](log, offset),
                eventlog.InvalidArgumentError, ValueError, ("offset", str(offset), "2**63-1"))
    assert not isinstance(err, eventlog.OffsetOutOfRangeError)


@pytest.mark.parametrize("entry", list(OFFSET_CALLS))
@pytest.mark.parametrize("offset", ["1", 1.0, True, b"1"], ids=["str", "float", "bool", "bytes"])
def test_offset_wrong_type(populated: eventlog.Log, entry: str, offset: object) -> None:
    check(populated, lambda log: OFFSET_CALLS[entry](log, offset),
          eventlog.InvalidArgumentError, ValueError, ("offset", type(offset).__name__))


@pytest.mark.parametrize("entry", ["read", "read_columns", "wait"])
def test_offset_none(populated: eventlog.Log, entry: str) -> None:
    check(populated, lambda log: OFFSET_CALLS[entry](log, None),
          eventlog.InvalidArgumentError, ValueError, ("offset",))


COUNT_CALLS: dict[str, Callable[[eventlog.Log, object], object]] = {
    "read.max_records": lambda log, n: log.read("t", 0, max_records=n),  # type: ignore[arg-type]
    "read_columns.max_records": lambda log, n: log.read_columns("t", 0, max_records=n),  # type: ignore[arg-type]
    "read.max_bytes": lambda log, n: log.read("t", 0, max_bytes=n),  # type: ignore[arg-type]
    "read_columns.max_bytes": lambda log, n: log.read_columns("t", 0, max_bytes=n),  # type: ignore[arg-type]
    "scan.page_size": lambda log, n: list(log.scan("t", page_size=n)),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("entry", list(COUNT_CALLS))
@pytest.mark.parametrize("count", [0, -1, "5", 2.0, True, 2**70],
                         ids=["0", "-1", "str", "float", "bool", "huge"])
def test_bad_counts(populated: eventlog.Log, entry: str, count: object) -> None:
    if count == 2**70 and "page_size" not in entry:
        # A huge max_records / max_bytes may mean "no limit" or be refused, but clearly.
        try:
            result = COUNT_CALLS[entry](populated, count)
        except eventlog.InvalidArgumentError as exc:
            result = exc
        if isinstance(result, eventlog.InvalidArgumentError):
            assert entry.split(".")[1] in str(result)
        else:
            assert len(result) == 3  # type: ignore[arg-type]
        return
    check(populated, lambda log: COUNT_CALLS[entry](log, count),
          eventlog.InvalidArgumentError, ValueError, (entry.split(".")[1],))


@pytest.mark.parametrize("timestamp", [-1, 2**63, 2**70, "5", 1.5, True, b"1"],
                         ids=["-1", "2**63", "2**70", "str", "float", "bool", "bytes"])
def test_offsets_for_times_bad_timestamp(populated: eventlog.Log, timestamp: object) -> None:
    check(populated, lambda log: log.offsets_for_times("t", timestamp),  # type: ignore[arg-type]
          eventlog.InvalidArgumentError, ValueError, ("timestamp",))


@pytest.mark.parametrize("timestamp", [-1, 2**63, 2**70, "5", 1.5, True],
                         ids=["-1", "2**63", "2**70", "str", "float", "bool"])
def test_scan_bad_start_timestamp(populated: eventlog.Log, timestamp: object) -> None:
    check(populated, lambda log: list(log.scan("t", start_timestamp=timestamp)),  # type: ignore[arg-type]
          eventlog.InvalidArgumentError, ValueError, ("timestamp",))


TIMESTAMP_CALLS: dict[str, Callable[[eventlog.Log, object], object]] = {
    "append": lambda log, ts: log.append("t", b"v", timestamp=ts),  # type: ignore[arg-type]
    "append_batch": lambda log, ts: log.append_batch(
        "t", [NewRecord(b"v", timestamp=5), NewRecord(b"v", timestamp=ts)]),  # type: ignore[arg-type]
    "append_columns": lambda log, ts: log.append_columns("t", [b"v"], timestamp=ts),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("entry", list(TIMESTAMP_CALLS))
@pytest.mark.parametrize("timestamp", [-1, 2**63, 2**70, "5", 1.5, True],
                         ids=["-1", "2**63", "2**70", "str", "float", "bool"])
def test_append_bad_timestamp(populated: eventlog.Log, entry: str, timestamp: object) -> None:
    check(populated, lambda log: TIMESTAMP_CALLS[entry](log, timestamp),
          eventlog.InvalidRecordError, ValueError, ("timestamp", repr(timestamp)))


def test_scan_start_offset_and_timestamp_together(populated: eventlog.Log) -> None:
    check(populated, lambda log: list(log.scan("t", start_offset=0, start_timestamp=0)),
          eventlog.InvalidArgumentError, ValueError, ("start_offset", "start_timestamp"))


@pytest.mark.parametrize("timeout", [-1, -0.5, "1", b"1"], ids=["-1", "-0.5", "str", "bytes"])
def test_wait_bad_timeout(populated: eventlog.Log, timeout: object) -> None:
    check(populated, lambda log: log.wait("t", 0, 100, timeout=timeout),  # type: ignore[arg-type]
          eventlog.InvalidArgumentError, ValueError, ("timeout",))


# --- record sizes ------------------------------------------------------------------------

SIZE_CALLS: dict[str, Callable[[eventlog.Log, str, bytes, bytes | None], object]] = {
    "append": lambda log, t, v, k: log.append(t, v, key=k),
    "append_batch": lambda log, t, v, k: log.append_batch(
        t, [NewRecord(b"ok", key=k and b"k"), NewRecord(v, key=k)]),
    "append_columns": lambda log, t, v, k: log.append_columns(
        t, [b"ok", v], keys=None if k is None else [b"k", k]),
}


@pytest.mark.parametrize("entry", list(SIZE_CALLS))
def test_record_larger_than_the_default_limit(populated: eventlog.Log, entry: str) -> None:
    limit = populated.topic_config("t").max_message_bytes
    assert limit == 1_048_588
    check(populated, lambda log: SIZE_CALLS[entry](log, "t", b"x" * (limit + 1), None),
          eventlog.RecordTooLargeError, ValueError,
          ("max.message.bytes", str(limit), str(limit + 1), "'t'"))


@pytest.mark.parametrize("entry", list(SIZE_CALLS))
@pytest.mark.parametrize(("value", "key"), [(b"x" * 101, None), (b"x" * 60, b"k" * 41),
                                            (b"x" * 10**6, b"k")])
def test_record_larger_than_a_configured_limit(populated: eventlog.Log, entry: str,
                                               value: bytes, key: bytes | None) -> None:
    check(populated, lambda log: SIZE_CALLS[entry](log, "small", value, key),
          eventlog.RecordTooLargeError, ValueError, ("max.message.bytes=100", "'small'"))


@pytest.mark.parametrize("entry", list(HEADER_CALLS))
def test_headers_count_towards_the_limit(populated: eventlog.Log, entry: str) -> None:
    def call(log: eventlog.Log) -> object:
        headers = [("h", b"y" * 60)]
        if entry == "append":
            return log.append("small", b"x" * 60, headers=headers)
        return log.append_batch("small", [NewRecord(b"x" * 60, headers=headers)])

    check(populated, call, eventlog.RecordTooLargeError, ValueError, ("max.message.bytes",))


def test_record_at_the_limit_is_accepted(populated: eventlog.Log) -> None:
    populated.append("small", b"x" * 100)
    populated.append("small", b"x" * 90, key=b"k" * 10)
    assert populated.end_offsets("small") == {0: 3}


def test_compacted_topic_needs_keys(populated: eventlog.Log) -> None:
    for call in (lambda log: log.append("compacted", b"v"),
                 lambda log: log.append_batch("compacted", [NewRecord(b"v", key=b"k"),
                                                            NewRecord(b"v")]),
                 lambda log: log.append_columns("compacted", [b"v"])):
        check(populated, call, eventlog.InvalidRecordError, ValueError, ("key", "compact"))


# --- batch and column shapes -------------------------------------------------------------


@pytest.mark.parametrize("records", [[(b"v",)], [{"value": b"v"}], [None], [b"v"],
                                     [NewRecord(b"v"), (b"w", None, None, None, None)]],
                         ids=["tuple", "dict", "None", "bytes", "second-is-tuple"])
def test_append_batch_items_must_be_new_records(populated: eventlog.Log,
                                                records: list[object]) -> None:
    check(populated, lambda log: log.append_batch("t", records),  # type: ignore[arg-type]
          eventlog.InvalidRecordError, ValueError, ("NewRecord",))


@pytest.mark.parametrize("records", [5, None, NewRecord(b"v")], ids=["int", "None", "one-record"])
def test_append_batch_needs_an_iterable_of_records(populated: eventlog.Log,
                                                   records: object) -> None:
    check(populated, lambda log: log.append_batch("t", records),  # type: ignore[arg-type]
          eventlog.InvalidArgumentError, ValueError, ())


@pytest.mark.parametrize(("values", "keys", "fragment"), [
    (b"abc", None, "values"),
    ("abc", None, "values"),
    (None, None, "values"),
    ([b"a", b"b"], [b"k"], "keys"),
    ([b"a"], [b"k", b"l"], "keys"),
    ([b"a"], b"k", "keys"),
])
def test_append_columns_shapes(populated: eventlog.Log, values: object, keys: object,
                               fragment: str) -> None:
    check(populated, lambda log: log.append_columns("t", values, keys=keys),  # type: ignore[arg-type]
          eventlog.InvalidRecordError, ValueError, (fragment,))


# --- topic creation and configuration ------------------------------------------------------


@pytest.mark.parametrize("partitions", [0, -1, 10_001, "3", 2.0, True, None],
                         ids=["0", "-1", "10001", "str", "float", "bool", "None"])
def test_create_topic_bad_partition_count(populated: eventlog.Log, partitions: object) -> None:
    check(populated, lambda log: log.create_topic("new", partitions),  # type: ignore[arg-type]
          eventlog.InvalidArgumentError, ValueError, ("partitions",))


@pytest.mark.parametrize("total", [0, 2, 3, -1, 10_001, "5", 5.0, True, None],
                         ids=["0", "fewer", "same", "-1", "10001", "str", "float", "bool", "None"])
def test_create_partitions_bad_total(populated: eventlog.Log, total: object) -> None:
    check(populated, lambda log: log.create_partitions("t", total),  # type: ignore[arg-type]
          eventlog.InvalidArgumentError, ValueError, ("total" if total not in (2, 3) else "3",))


def test_create_topic_that_exists(populated: eventlog.Log) -> None:
    err = check(populated, lambda log: log.create_topic("t", 3),
                eventlog.TopicExistsError, ValueError, ("'t'", "exists"))
    assert err.topic == "t"


BAD_CONFIGS: list[tuple[dict[str, object], str]] = [
    ({"retention.mss": 1}, "retention.mss"),
    ({"foo": 1}, "foo"),
    ({"segment.bytes": 1024}, "segment.bytes"),  # a Kafka key eventlog does not support
    ({"retention.ms": "abc"}, "retention.ms"),
    ({"retention.ms": 1.5}, "retention.ms"),
    ({"retention.ms": -2}, "retention.ms"),
    ({"retention.bytes": -5}, "retention.bytes"),
    ({"max.message.bytes": 0}, "max.message.bytes"),
    ({"max_message_bytes": 2**31}, "max.message.bytes"),
    ({"max.message.bytes": True}, "max.message.bytes"),
    ({"cleanup.policy": "shred"}, "cleanup.policy"),
    ({"cleanup.policy": 5}, "cleanup.policy"),
    ({"compression.type": "gzip"}, "compression.type"),
    ({"compression.type": "brotli"}, "compression.type"),
    ({"compression.zstd.level": 23}, "compression.zstd.level"),
    ({"message.timestamp.type": "Now"}, "message.timestamp.type"),
    ({"min.cleanable.dirty.ratio": 1.5}, "min.cleanable.dirty.ratio"),
    ({"min.cleanable.dirty.ratio": float("nan")}, "min.cleanable.dirty.ratio"),
    ({"key.index": "maybe"}, "key.index"),
    ({"min.compaction.lag.ms": 10, "max.compaction.lag.ms": 5}, "min.compaction.lag.ms"),
]


@pytest.mark.parametrize("how", ["create-config", "create-kwargs", "alter-config",
                                 "alter-kwargs"])
@pytest.mark.parametrize(("config", "key"), BAD_CONFIGS, ids=[k for _, k in BAD_CONFIGS])
def test_bad_configs(populated: eventlog.Log, how: str, config: dict[str, object],
                     key: str) -> None:
    kwargs = {k.replace(".", "_"): v for k, v in config.items()}
    if how.endswith("kwargs") and key not in populated.describe_topic("t").config:
        key = key.replace(".", "_")  # an unknown key is named as the caller spelled it
    calls: dict[str, Call] = {
        "create-config": lambda log: log.create_topic("new", config=config),
        "create-kwargs": lambda log: log.create_topic("new", **kwargs),
        "alter-config": lambda log: log.alter_topic("t", config=config),
        "alter-kwargs": lambda log: log.alter_topic("t", **kwargs),
    }
    err = check(populated, calls[how], eventlog.InvalidConfigError, ValueError, (key,))
    assert err.key is not None  # type: ignore[attr-defined]
    assert key in err.key  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["create-dict", "create-mixed", "alter-dict", "alter-mixed"])
def test_config_key_given_twice(populated: eventlog.Log, how: str) -> None:
    both = {"retention.ms": 1000, "retention_ms": 2000}
    calls: dict[str, Call] = {
        "create-dict": lambda log: log.create_topic("new", config=both),
        "create-mixed": lambda log: log.create_topic("new", config={"retention.ms": 1000},
                                                     retention_ms=2000),
        "alter-dict": lambda log: log.alter_topic("t", config=both),
        "alter-mixed": lambda log: log.alter_topic("t", config={"retention.ms": 1000},
                                                   retention_ms=2000),
    }
    err = check(populated, calls[how], eventlog.InvalidConfigError, ValueError,
                ("retention", "twice"))
    assert err.key in ("retention.ms", "retention_ms")  # type: ignore[attr-defined]


@pytest.mark.parametrize("config", [[1], "retention.ms=1", 5, [("retention.ms", 1)]],
                         ids=["list", "str", "int", "pairs"])
@pytest.mark.parametrize("how", ["create", "alter"])
def test_config_must_be_a_mapping(populated: eventlog.Log, how: str, config: object) -> None:
    def call(log: eventlog.Log) -> object:
        if how == "create":
            return log.create_topic("new", config=config)  # type: ignore[arg-type]
        return log.alter_topic("t", config=config)  # type: ignore[arg-type]

    check(populated, call, eventlog.InvalidConfigError, ValueError, ("mapping",))


@pytest.mark.parametrize("how", ["config", "kwargs"])
def test_kafka_only_config_key_in_either_spelling(populated: eventlog.Log, how: str) -> None:
    def call(log: eventlog.Log) -> object:
        if how == "config":
            return log.create_topic("new", config={"segment.bytes": 1024})
        return log.create_topic("new", segment_bytes=1024)

    check(populated, call, eventlog.InvalidConfigError, ValueError, ("segment", "not support"))


def test_unknown_config_key_suggests_the_right_one(populated: eventlog.Log) -> None:
    check(populated, lambda log: log.create_topic("new", retention_mss=5),
          eventlog.InvalidConfigError, ValueError, ("retention.ms", "retention_mss"))


# --- open() ----------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"durability": "fast"}, "durability"),
    ({"durability": None}, "durability"),
    ({"durability": True}, "durability"),
    ({"readonly": "yes"}, "readonly"),
    ({"readonly": 1}, "readonly"),
    ({"create": "no"}, "create"),
    ({"map_size": -1}, "map_size"),
    ({"map_size": 100}, "map_size"),
    ({"map_size": "1GB"}, "map_size"),
    ({"map_size": True}, "map_size"),
    ({"map_size": 2**20 + 0.5}, "map_size"),
], ids=lambda v: repr(v))
def test_open_bad_options(tmp_path: Path, kwargs: dict[str, object], fragment: str) -> None:
    path = tmp_path / "log"
    with pytest.raises(eventlog.InvalidArgumentError) as info:
        eventlog.open(path, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value)
    assert not path.exists()


@pytest.mark.parametrize("path", [None, 3, b"\xff/bad", ["log"]], ids=["None", "int", "bytes",
                                                                       "list"])
def test_open_bad_path(path: object) -> None:
    with pytest.raises(eventlog.InvalidArgumentError) as info:
        eventlog.open(path)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert "path" in str(info.value)


def test_open_refuses_a_different_durability_while_open(log: eventlog.Log,
                                                        log_path: Path) -> None:
    with pytest.raises(eventlog.InvalidArgumentError) as info:
        eventlog.open(log_path, durability="full")
    assert "durability" in str(info.value)
    assert log.list_topics() == []


# --- use after close -----------------------------------------------------------------------

CLOSED_CALLS: dict[str, Call] = {
    **{name: (lambda log, c=call: c(log, "t")) for name, call in TOPIC_CALLS.items()},
    "list_topics": lambda log: log.list_topics(),
    "sync": lambda log: log.sync(),
    "enter": lambda log: log.__enter__(),
    "scan_one_partition": lambda log: list(log.scan("t", 0)),
    "wait_forever": lambda log: log.wait("t", 0, 100),
}


@pytest.mark.parametrize("entry", list(CLOSED_CALLS))
def test_use_after_close(log_path: Path, entry: str) -> None:
    with eventlog.open(log_path, durability="off") as log:
        log.create_topic("t", 3)
        log.append("t", b"v", partition=0)
        other = eventlog.open(log_path, durability="off")  # keeps the environment alive
        try:
            before = snapshot(other)
            log.close()
            with pytest.raises(eventlog.LogClosedError) as info:
                CLOSED_CALLS[entry](log)
            assert isinstance(info.value, ValueError)
            assert "closed" in str(info.value)
            assert snapshot(other) == before
        finally:
            other.close()
    with eventlog.open(log_path, durability="off") as again:
        assert again.list_topics() == ["t"]
        assert again.end_offsets("t") == {0: 1, 1: 0, 2: 0}


@pytest.mark.parametrize("entry", ["read", "append", "list_topics", "wait_forever"])
def test_use_after_last_handle_closed(log_path: Path, entry: str) -> None:
    log = eventlog.open(log_path, durability="off")
    log.create_topic("t", 3)
    log.close()
    with pytest.raises(eventlog.LogClosedError):
        CLOSED_CALLS[entry](log)


def test_iterator_from_a_closed_log(log_path: Path) -> None:
    log = eventlog.open(log_path, durability="off")
    log.create_topic("t")
    log.append_batch("t", [NewRecord(b"v")] * 10)
    iterator = log.scan("t", page_size=2)
    assert next(iterator).offset == 0
    log.close()
    with pytest.raises(eventlog.LogClosedError):
        list(iterator)
