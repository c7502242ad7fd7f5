"""``eventlog.testing`` and ``eventlog.replay`` called directly (no pytest plugin involved).

What is verified (issue 7):

- ``ManualClock``: every unit of ``advance``, time never going back (``advance``, ``set``),
  integer and aware-datetime starts, ``install``/``uninstall`` (also nested, and as a
  context manager) making it the clock of record timestamps and giving the previous clock
  back, ``repr``;
- ``seed``: every item form (``NewRecord``, mapping, bare value), the default and custom
  serializers, headers, topic creation (unlimited retention) and ``create=False``, one
  atomic batch; ``None`` values stay tombstones; the library's own ``Serde`` objects are
  accepted like the clients accept them;
- ``load_jsonl``: paths and iterables, text / base64 / other JSON values, headers,
  partitions and timestamps, bad lines reported with their line number, nothing appended
  when a line is bad;
- ``dump``/``dump_jsonl``: the row format, a group's view, one partition, deserializers,
  ``timestamps=False``, and a dump loaded into another log dumping the same;
- ``run_until_caught_up``: several partitions, group commits, handler errors, and the
  ``TimeoutError`` message for a paused partition and for a member without partitions;
- ``assert_topic_contains`` (exact and in-order subsequence, the diff in the message) and
  ``wait_for_records`` (records another thread appends later; the timeout);
- ``replay``: folds in offset order, a key's stream through the key index (compacted and
  ``key_index=True`` topics, more than one index page) equal to the stream found by
  scanning, ``until_offset`` (int, per partition, bad values), ``until_timestamp``, the
  merge order across partitions, deserializers, tombstones, records appended during the
  fold left out.

Time is never waited for: record timestamps are explicit or come from a ManualClock. The
one real delay (another thread appending while ``wait_for_records`` waits) is what that
helper exists for.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
import eventlog.serde
from eventlog import NewRecord, Record, TopicPartition
from eventlog._clock import now_ms as process_now_ms
from eventlog._errors import (
    InvalidArgumentError,
    InvalidRecordError,
    PartitionNotFoundError,
    TopicNotFoundError,
)
from eventlog.testing import (
    ManualClock,
    assert_topic_contains,
    dump,
    dump_jsonl,
    load_jsonl,
    replay,
    run_until_caught_up,
    seed,
    wait_for_records,
)

T0 = 1_700_000_000_000  # an arbitrary fixed instant (ms): explicit timestamps near it


def values_of(log: eventlog.Log, topic: str) -> list[bytes | None]:
    return [record.value for record in log.scan(topic)]


def collect(state: list[Record], record: Record) -> list[Record]:
    """A fold that keeps every record (to check what replay feeds and in what order)."""
    return [*state, record]


@pytest.fixture
def other_log(tmp_path: Path) -> Iterator[eventlog.Log]:
    """A second fresh log (for copying a dump into)."""
    handle = eventlog.open(tmp_path / "other", durability="off")
    try:
        yield handle
    finally:
        handle.close()


# --------------------------------------------------------------------------- ManualClock


def test_advance_moves_time_by_each_unit_and_returns_the_new_time() -> None:
    clock = ManualClock(1_000)
    assert clock.now_ms() == clock() == 1_000
    assert clock.advance(5) == 1_005
    assert clock.advance(seconds=1.5) == 2_505
    assert clock.advance(minutes=1) == 62_505
    assert clock.advance(hours=1) == 3_662_505
    assert clock.advance(days=1) == 90_062_505
    # Units add up within one call.
    assert clock.advance(1, seconds=1, minutes=1) == 90_062_505 + 61_001
    assert clock.advance() == clock.now_ms()  # a zero step is allowed


def test_default_start_is_the_current_time() -> None:
    before = time.time_ns() // 1_000_000
    clock = ManualClock()
    after = time.time_ns() // 1_000_000
    assert before <= clock.now_ms() <= after


def test_time_never_goes_back() -> None:
    clock = ManualClock(10_000)
    with pytest.raises(InvalidArgumentError, match="forward"):
        clock.advance(-1)
    with pytest.raises(InvalidArgumentError, match="forward"):
        clock.advance(seconds=-0.5)
    with pytest.raises(InvalidArgumentError, match="forward"):
        clock.set(9_999)
    assert clock.now_ms() == 10_000  # refused steps changed nothing
    clock.set(10_000)  # standing still is allowed
    clock.set(20_000)
    assert clock.now_ms() == 20_000


def test_start_and_set_accept_aware_datetimes_only() -> None:
    new_year = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    clock = ManualClock(new_year)
    assert clock.now_ms() == 1_704_067_200_000
    clock.set(new_year + dt.timedelta(milliseconds=1))
    assert clock.now_ms() == 1_704_067_200_001
    # Another zone names the same instant.
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert ManualClock(dt.datetime(2024, 1, 1, 2, tzinfo=plus_two)).now_ms() == 1_704_067_200_000
    with pytest.raises(InvalidArgumentError, match="aware"):
        ManualClock(dt.datetime(2024, 1, 1))
    with pytest.raises(InvalidArgumentError, match="aware"):
        clock.set(dt.datetime(2030, 1, 1))
    for bad in (-1, 1.5, True, "0", None):
        with pytest.raises(InvalidArgumentError):
            clock.set(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        ManualClock(-5)


def test_installed_clock_gives_default_record_timestamps(log: eventlog.Log) -> None:
    log.create_topic("t", retention_ms=-1)
    with ManualClock(T0) as clock:
        assert process_now_ms() == T0
        assert log.append("t", b"a").timestamp == T0
        clock.advance(seconds=3)
        assert log.append("t", b"b").timestamp == T0 + 3_000
    # Uninstalled: the system clock again.
    before = time.time_ns() // 1_000_000
    stamped = log.append("t", b"c").timestamp
    assert before <= stamped <= time.time_ns() // 1_000_000


def test_nested_installs_give_back_the_previous_clock() -> None:
    outer = ManualClock(1_000)
    inner = ManualClock(5_000)
    outer.install()
    try:
        with inner:
            assert process_now_ms() == 5_000
        assert process_now_ms() == 1_000  # the outer clock again, not the system's
        inner.install()
        outer.advance(1)
        assert process_now_ms() == 5_000
        inner.uninstall()
        assert process_now_ms() == 1_001
    finally:
        outer.uninstall()
    assert process_now_ms() > 1_000_000_000_000  # the system clock
    outer.uninstall()  # not installed: nothing to do, nothing changes
    assert process_now_ms() > 1_000_000_000_000


def test_installing_an_installed_clock_is_refused() -> None:
    with ManualClock(1) as clock:
        with pytest.raises(InvalidArgumentError, match="already installed"):
            clock.install()
        assert process_now_ms() == 1


def test_repr_shows_the_time_and_whether_installed() -> None:
    clock = ManualClock(42)
    assert repr(clock) == "<ManualClock 42 ms>"
    with clock:
        assert repr(clock) == "<ManualClock 42 ms (installed)>"


# --------------------------------------------------------------------------- seed


def test_seed_accepts_every_item_form(log: eventlog.Log) -> None:
    metadata = seed(
        log,
        "events",
        [
            NewRecord(b"as-is", key=b"k0", timestamp=T0, headers=[("h", b"1")]),
            {
                "value": "text",
                "key": "k1",
                "headers": [("h", "x"), ("b", b"\xff"), ("n", None)],
                "timestamp": T0 + 1,
            },
            {"key": "only-a-key"},  # no value: a record with a None value
            b"\x00bytes",
            "h\u00e9llo",
            {"value": {"json": [1, 2]}},  # a mapping value goes in under "value"
            [1, "two"],
            7,
            None,
        ],
    )
    assert [(m.topic, m.partition, m.offset) for m in metadata] == [
        ("events", 0, offset) for offset in range(9)
    ]
    stored = list(log.scan("events"))
    assert [m.timestamp for m in metadata] == [r.timestamp for r in stored]
    assert (stored[0].key, stored[0].value, stored[0].timestamp, stored[0].headers) == (
        b"k0",
        b"as-is",
        T0,
        (("h", b"1"),),
    )
    assert (stored[1].key, stored[1].value, stored[1].timestamp) == (b"k1", b"text", T0 + 1)
    # Header values: text as UTF-8, bytes as they are, None kept.
    assert stored[1].headers == (("h", b"x"), ("b", b"\xff"), ("n", None))
    assert [(r.key, r.value) for r in stored[2:]] == [
        (b"only-a-key", None),
        (None, b"\x00bytes"),
        (None, "h\u00e9llo".encode()),
        (None, b'{"json":[1,2]}'),  # anything else: compact JSON
        (None, b'[1,"two"]'),
        (None, b"7"),
        (None, None),
    ]


def test_seed_puts_records_in_the_partition_they_name(log: eventlog.Log) -> None:
    metadata = seed(
        log,
        "t",
        [
            {"value": b"a", "partition": 2},
            {"value": b"b", "partition": 0},
            {"value": b"c", "partition": 2},
        ],
        partitions=3,
    )
    assert [(m.partition, m.offset) for m in metadata] == [(2, 0), (0, 0), (2, 1)]
    assert [r.value for r in log.scan("t", 2)] == [b"a", b"c"]


def test_seed_creates_a_missing_topic_with_unlimited_retention(log: eventlog.Log) -> None:
    seed(log, "old", [{"value": b"ancient", "timestamp": 1, "partition": 0}], partitions=3)
    described = log.describe_topic("old")
    assert described.partition_count == 3
    # A later append would run retention; the old record must survive it.
    log.append("old", b"new", partition=0)
    assert values_of(log, "old") == [b"ancient", b"new"]
    assert seed(log, "empty", []) == []
    assert "empty" in log.list_topics()


def test_seed_into_an_existing_topic_keeps_its_settings(log: eventlog.Log) -> None:
    log.create_topic("t", 2, retention_ms=60_000)
    seed(log, "t", [b"a"], partitions=5)
    assert log.describe_topic("t").partition_count == 2


def test_seed_without_create_refuses_a_missing_topic(log: eventlog.Log) -> None:
    with pytest.raises(TopicNotFoundError):
        seed(log, "missing", [b"x"], create=False)
    assert "missing" not in log.list_topics()
    log.create_topic("present")
    seed(log, "present", [b"x"], create=False)
    assert values_of(log, "present") == [b"x"]


def test_seed_uses_the_serializers_for_keys_and_values_but_not_new_records(
    log: eventlog.Log,
) -> None:
    seed(
        log,
        "t",
        [{"key": 1, "value": {"n": 1}}, 2, NewRecord(b"raw", key=b"raw")],
        key_serializer=lambda k: f"key-{k}".encode(),
        value_serializer=lambda v: repr(v).encode(),
    )
    assert [(r.key, r.value) for r in log.scan("t")] == [
        (b"key-1", b"{'n': 1}"),
        (None, b"2"),
        (b"raw", b"raw"),
    ]


def test_seed_with_a_value_serializer_keeps_none_values_as_tombstones(log: eventlog.Log) -> None:
    # serde.py's contract (and the clients'): a serializer never sees None; a None value
    # is a tombstone. load_jsonl keeps that rule; seed must as well.
    seed(
        log,
        "profiles",
        [{"key": "k", "value": {"v": 1}}, {"key": "k", "value": None}, None],
        value_serializer=lambda v: json.dumps(v).encode(),
    )
    assert [r.value for r in log.scan("profiles")] == [b'{"v": 1}', None, None]


def test_seed_rejects_unknown_fields_naming_the_record(log: eventlog.Log) -> None:
    with pytest.raises(InvalidArgumentError, match=r"record 1: unknown field\(s\) \['vale'\]"):
        seed(log, "t", [b"ok", {"vale": b"typo"}])
    assert "t" not in log.list_topics()  # nothing happened


def test_seed_is_one_atomic_batch(log: eventlog.Log) -> None:
    log.create_topic("t")
    with pytest.raises(PartitionNotFoundError):
        seed(log, "t", [b"first", {"value": b"second", "partition": 5}])
    assert values_of(log, "t") == []


SERDE_HELPERS: dict[str, Callable[[eventlog.Log], object]] = {
    "seed": lambda log: seed(log, "s", [{"value": {"n": 2}}], value_serializer=eventlog.serde.json),
    "load_jsonl": lambda log: load_jsonl(
        log, ['{"topic": "s", "value": {"n": 2}}'], value_serializer=eventlog.serde.json
    ),
    "dump": lambda log: dump(log, "s", value_deserializer=eventlog.serde.json),
    "replay": lambda log: replay(
        log, "s", lambda s, r: [*s, r.value], [], value_deserializer=eventlog.serde.json
    ),
    "assert_topic_contains": lambda log: assert_topic_contains(
        log, "s", [{"value": {"n": 1}}], value_deserializer=eventlog.serde.json
    ),
}


@pytest.mark.parametrize("helper", sorted(SERDE_HELPERS))
def test_helpers_accept_the_library_serdes(log: eventlog.Log, helper: str) -> None:
    # dump()'s docstring recommends eventlog.serde.json; producers and consumers take Serde
    # objects (through serde.as_serializer/as_deserializer), so the helpers must too.
    seed(log, "s", [{"value": {"n": 1}}])
    SERDE_HELPERS[helper](log)


# --------------------------------------------------------------------------- load_jsonl


def test_load_jsonl_from_a_path_keeps_keys_values_headers_timestamps_partitions(
    log: eventlog.Log, tmp_path: Path
) -> None:
    source = tmp_path / "seed.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "topic": "orders",
                        "partition": 2,
                        "timestamp": T0,
                        "key": "o-1",
                        "value": "created",
                        "headers": [["source", "web"], ["raw", {"base64": "/w=="}]],
                    }
                ),
                "",  # blank lines are skipped
                json.dumps({"topic": "orders", "partition": 0, "value": {"base64": "AAE="}}),
                json.dumps({"topic": "orders", "partition": 0, "value": {"id": 1, "ok": True}}),
                json.dumps({"topic": "orders", "partition": 0, "value": [1, 2], "key": 5}),
                json.dumps({"topic": "audit", "value": None, "key": "gone"}),
                json.dumps({"topic": "audit", "value": 3.5, "offset": 99}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    metadata = load_jsonl(log, source)
    assert len(metadata) == 6
    # A missing topic gets one partition more than the largest named.
    assert log.describe_topic("orders").partition_count == 3
    assert log.describe_topic("audit").partition_count == 1
    (first,) = log.read("orders", 2)
    assert (first.key, first.value, first.timestamp) == (b"o-1", b"created", T0)
    assert first.headers == (("source", b"web"), ("raw", b"\xff"))
    assert [(r.key, r.value) for r in log.read("orders", 0)] == [
        (None, b"\x00\x01"),
        (None, b'{"id":1,"ok":true}'),  # other JSON values: their compact encoding
        (b"5", b"[1,2]"),
    ]
    audit = log.read("audit", 0)
    assert [(r.offset, r.key, r.value) for r in audit] == [(0, b"gone", None), (1, None, b"3.5")]
    # The same from a str path.
    load_jsonl(log, str(source), topic="copy")
    assert len(list(log.scan("copy"))) == 6


def test_load_jsonl_from_lines_with_a_topic_override_and_serializers(log: eventlog.Log) -> None:
    lines = iter(['{"value": "a", "key": "k"}\n', '{"topic": "elsewhere", "value": {"x": 1}}\n'])
    load_jsonl(
        log,
        lines,
        topic="t",
        key_serializer=lambda k: k.upper().encode(),
        value_serializer=lambda v: b"<" + json.dumps(v).encode() + b">",
    )
    assert "elsewhere" not in log.list_topics()
    assert [(r.key, r.value) for r in log.scan("t")] == [(b"K", b'<"a">'), (None, b'<{"x": 1}>')]


def test_load_jsonl_without_any_topic_asks_for_one(log: eventlog.Log) -> None:
    with pytest.raises(InvalidArgumentError, match="line 1: the line names no topic"):
        load_jsonl(log, ['{"value": "a"}'])


def test_load_jsonl_without_create_refuses_missing_topics(log: eventlog.Log) -> None:
    with pytest.raises(TopicNotFoundError):
        load_jsonl(log, ['{"topic": "nope", "value": "a"}'], create=False)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a", "list"]', "expected a JSON object, got list"),
        ('{"topic": "t", "valeu": "typo"}', r"unknown field\(s\) \['valeu'\]"),
        ('{"topic": 5, "value": "a"}', "topic must be a string"),
        ('{"topic": "t", "partition": -1}', "partition must be an integer >= 0"),
        ('{"topic": "t", "partition": "0"}', "partition must be an integer >= 0"),
        ('{"topic": "t", "timestamp": 1.5}', "timestamp must be an integer >= 0"),
        ('{"topic": "t", "timestamp": true}', "timestamp must be an integer >= 0"),
        ('{"topic": "t", "value": {"base64": "@@@"}}', "value: invalid base64"),
        ('{"topic": "t", "key": {"base64": "@"}}', "key: invalid base64"),
        ('{"topic": "t", "headers": {"a": "b"}}', "headers must be a list"),
        ('{"topic": "t", "headers": [["a"]]}', r"each header must be a \[name, value\] pair"),
        ('{"topic": "t", "headers": [[1, "v"]]}', "each header must be"),
        ('{"topic": "t", "headers": [["h", {"base64": "!"}]]}', "header 'h': invalid base64"),
    ],
)
def test_load_jsonl_reports_a_bad_line_by_number_and_appends_nothing(
    log: eventlog.Log, tmp_path: Path, line: str, message: str
) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"topic": "t", "value": "fine"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InvalidRecordError, match=message) as caught:
        load_jsonl(log, source)
    assert f"{source} line 3:" in str(caught.value)
    with pytest.raises(InvalidRecordError, match=r"^<lines> line 2: "):
        load_jsonl(log, ['{"topic": "t", "value": "fine"}', line])
    assert "t" not in log.list_topics()  # the good first line was not appended either


# --------------------------------------------------------------------------- dump


def seed_two_partitions(log: eventlog.Log) -> None:
    seed(
        log,
        "t",
        [
            {"value": b"p0-a", "key": b"k", "partition": 0, "timestamp": T0},
            {"value": b"p1-a", "partition": 1, "timestamp": T0 + 1, "headers": [("h", b"\xfe")]},
            {"value": b"p0-b", "partition": 0, "timestamp": T0 + 2},
            {"value": None, "key": b"gone", "partition": 1, "timestamp": T0 + 3},
            {"value": b"\x80binary", "partition": 0, "timestamp": T0 + 4},
        ],
        partitions=2,
    )


def test_dump_rows_partition_by_partition_in_offset_order(log: eventlog.Log) -> None:
    seed_two_partitions(log)
    rows = dump(log, "t")
    assert rows == [
        {
            "topic": "t",
            "partition": 0,
            "offset": 0,
            "timestamp": T0,
            "key": "k",
            "value": "p0-a",
            "headers": [],
        },
        {
            "topic": "t",
            "partition": 0,
            "offset": 1,
            "timestamp": T0 + 2,
            "key": None,
            "value": "p0-b",
            "headers": [],
        },
        {
            "topic": "t",
            "partition": 0,
            "offset": 2,
            "timestamp": T0 + 4,
            "key": None,
            "value": {"base64": "gGJpbmFyeQ=="},
            "headers": [],
        },
        {
            "topic": "t",
            "partition": 1,
            "offset": 0,
            "timestamp": T0 + 1,
            "key": None,
            "value": "p1-a",
            "headers": [["h", {"base64": "/g=="}]],
        },
        {
            "topic": "t",
            "partition": 1,
            "offset": 1,
            "timestamp": T0 + 3,
            "key": "gone",
            "value": None,
            "headers": [],
        },
    ]
    assert dump(log, "t", partition=1) == rows[3:]
    assert dump(log, "t", partition=0) == rows[:3]
    assert [row.keys() for row in dump(log, "t", timestamps=False)] == [
        {"topic", "partition", "offset", "key", "value", "headers"}
    ] * 5


def test_dump_of_a_group_shows_only_what_it_committed(log: eventlog.Log) -> None:
    seed_two_partitions(log)
    assert dump(log, "t", group="never-committed") == []
    with log.consumer(group="g", enable_auto_commit=False) as consumer:
        consumer.assign([TopicPartition("t", 0), TopicPartition("t", 1)])
        consumer.commit({TopicPartition("t", 0): 2})
        assert [(r["partition"], r["offset"]) for r in dump(log, "t", group="g")] == [
            (0, 0),
            (0, 1),
        ]
        consumer.commit({TopicPartition("t", 1): 1})
    assert [(r["partition"], r["offset"]) for r in dump(log, "t", group="g")] == [
        (0, 0),
        (0, 1),
        (1, 0),
    ]
    assert [r["offset"] for r in dump(log, "t", group="g", partition=1)] == [0]


def test_dump_applies_deserializers_but_not_to_none(log: eventlog.Log) -> None:
    seed(
        log,
        "t",
        [{"key": {"id": 1}, "value": {"n": [1, 2]}}, {"key": {"id": 2}, "value": None}],
    )
    calls: list[bytes] = []

    def value_de(data: bytes) -> Any:
        calls.append(data)
        return json.loads(data)

    rows = dump(log, "t", key_deserializer=json.loads, value_deserializer=value_de)
    assert [(row["key"], row["value"]) for row in rows] == [
        ({"id": 1}, {"n": [1, 2]}),
        ({"id": 2}, None),
    ]
    assert calls == [b'{"n":[1,2]}']


def test_dump_jsonl_writes_sorted_lines_that_load_back_to_the_same_dump(
    log: eventlog.Log, other_log: eventlog.Log, tmp_path: Path
) -> None:
    seed_two_partitions(log)
    dest = tmp_path / "golden.jsonl"
    text = dump_jsonl(log, "t", dest)
    assert dest.read_text(encoding="utf-8") == text
    lines = text.splitlines()
    assert len(lines) == 5
    assert all(list(json.loads(line)) == sorted(json.loads(line)) for line in lines)
    load_jsonl(other_log, dest)
    assert dump_jsonl(other_log, "t") == text
    assert dump_jsonl(log, "t", timestamps=False, partition=1).count("\n") == 2


# --------------------------------------------------------------------------- run_until_caught_up


def test_run_until_caught_up_reads_every_partition_and_calls_the_handler(
    log: eventlog.Log,
) -> None:
    seed(
        log,
        "t",
        [{"value": f"{p}-{i}", "partition": p} for i in range(5) for p in range(3)],
        partitions=3,
    )
    handled: list[bytes] = []
    with log.consumer("t", auto_offset_reset="earliest") as consumer:
        records = run_until_caught_up(consumer, lambda r: handled.append(r.value))
        assert len(records) == 15
        assert handled == [r.value for r in records]
        for p in range(3):
            assert [r.value for r in records if r.partition == p] == [
                f"{p}-{i}".encode() for i in range(5)
            ]
        # Caught up already: returns at once with nothing.
        assert run_until_caught_up(consumer) == []


def test_run_until_caught_up_commits_a_group_unless_told_not_to(log: eventlog.Log) -> None:
    seed(log, "t", [{"value": b"x", "partition": p} for p in (0, 1, 1)], partitions=2)
    with log.consumer(
        "t", group="no-commit", auto_offset_reset="earliest", enable_auto_commit=False
    ) as c:
        assert len(run_until_caught_up(c, commit=False)) == 3
    assert log.committed_offsets("no-commit") == {}
    with log.consumer("t", group="g", auto_offset_reset="earliest", enable_auto_commit=False) as c:
        assert len(run_until_caught_up(c)) == 3
        committed = {tp.partition: m.offset for tp, m in log.committed_offsets("g").items()}
        assert committed == {0: 1, 1: 2}


def test_run_until_caught_up_lets_handler_errors_through(log: eventlog.Log) -> None:
    seed(log, "t", [b"1", b"2", b"boom", b"4"])
    handled: list[bytes] = []

    def handler(record: Record) -> None:
        if record.value == b"boom":
            raise RuntimeError("handler failed")
        handled.append(record.value)

    with (
        log.consumer("t", auto_offset_reset="earliest") as consumer,
        pytest.raises(RuntimeError, match="handler failed"),
    ):
        run_until_caught_up(consumer, handler)
    assert handled == [b"1", b"2"]


def test_run_until_caught_up_times_out_on_a_paused_partition(log: eventlog.Log) -> None:
    # The docstring: it returns once the position reached the end offset of *every*
    # assigned partition. A paused partition with records left never gets there.
    seed(log, "t", [{"value": b"x", "partition": p} for p in (0, 0, 1)], partitions=2)
    with log.consumer("t", auto_offset_reset="earliest") as consumer:
        consumer.pause(TopicPartition("t", 0))
        with pytest.raises(TimeoutError, match=r"t\[0\] at 0 of 2"):
            run_until_caught_up(consumer, timeout=0.3)


def test_run_until_caught_up_times_out_for_a_member_without_partitions(
    log: eventlog.Log,
) -> None:
    seed(log, "t", [b"only one partition"])
    with log.consumer("t", group="g", auto_offset_reset="earliest") as owner:
        assert len(run_until_caught_up(owner)) == 1
        with (
            log.consumer("t", group="g", auto_offset_reset="earliest") as idle,
            pytest.raises(TimeoutError, match=r"within 0\.3 s: it has no assignment yet"),
        ):
            run_until_caught_up(idle, timeout=0.3)


# --------------------------------------------------------------------------- assertions


def test_assert_topic_contains_exactly(log: eventlog.Log) -> None:
    seed(
        log,
        "t",
        [
            {"value": b"a", "key": b"k1", "headers": [("h", b"1")]},
            {"value": b"b", "key": b"k2"},
            b"c",
        ],
    )
    assert_topic_contains(log, "t", [b"a", b"b", b"c"])
    assert_topic_contains(log, "t", [(b"k1", b"a"), (b"k2", b"b"), (None, b"c")])
    assert_topic_contains(
        log,
        "t",
        [{"key": b"k1", "headers": (("h", b"1"),)}, {"offset": 1}, {"value": b"c", "partition": 0}],
    )
    assert_topic_contains(log, "t", ["a", "b", "c"], value_deserializer=bytes.decode)
    assert_topic_contains(log, "t", [("k2", b"b")], exact=False, key_deserializer=bytes.decode)
    with pytest.raises(AssertionError) as caught:
        assert_topic_contains(log, "t", [b"a", b"b"])
    message = str(caught.value)
    assert "topic 't' does not contain exactly the expected records" in message
    assert "expected:\n  {'value': b'a'}\n  {'value': b'b'}\nfound:\n" in message
    assert "{'partition': 0, 'offset': 2, 'key': None, 'value': b'c'}" in message
    with pytest.raises(AssertionError):
        assert_topic_contains(log, "t", [b"a", b"c", b"b"])  # order matters
    with pytest.raises(AssertionError):
        assert_topic_contains(log, "t", [(b"k1", b"b"), (b"k2", b"b"), b"c"])


def test_assert_topic_contains_an_in_order_subsequence(log: eventlog.Log) -> None:
    seed(log, "t", [b"a", b"b", b"c", b"d"])
    assert_topic_contains(log, "t", [b"a", b"c"], exact=False)
    assert_topic_contains(log, "t", [], exact=False)
    assert_topic_contains(log, "t", [b"a", b"b", b"c", b"d"], exact=False)
    with pytest.raises(AssertionError, match="does not contain the expected records"):
        assert_topic_contains(log, "t", [b"c", b"a"], exact=False)
    with pytest.raises(AssertionError):
        assert_topic_contains(log, "t", [b"a", b"a"], exact=False)  # one "a" only


def test_assert_topic_contains_one_partition(log: eventlog.Log) -> None:
    seed(log, "t", [{"value": b"x", "partition": 0}, {"value": b"y", "partition": 1}], partitions=2)
    assert_topic_contains(log, "t", [b"y"], partition=1)
    with pytest.raises(AssertionError):
        assert_topic_contains(log, "t", [b"y"], partition=0)


def test_wait_for_records_sees_what_another_thread_appends_later(log: eventlog.Log) -> None:
    log.create_topic("t", 2)
    log.append("t", b"already", partition=0)
    start_appending = threading.Event()

    def append_later() -> None:
        start_appending.wait()
        time.sleep(0.15)  # the waiter is waiting by then
        log.append("t", b"first", partition=1)
        log.append("t", b"second", partition=0)

    writer = threading.Thread(target=append_later)
    writer.start()
    try:
        start_appending.set()
        wait_for_records(log, "t", [b"second"], timeout=10)
        assert_topic_contains(log, "t", [b"already", b"second", b"first"])
        wait_for_records(log, "t", [b"first"], partition=1, exact=True, timeout=10)
    finally:
        writer.join()


def test_wait_for_records_times_out_with_an_assertion_error(log: eventlog.Log) -> None:
    seed(log, "t", [b"a"])
    with pytest.raises(AssertionError, match=r"within 0.2 s\nexpected:\n  \{'value': b'b'\}"):
        wait_for_records(log, "t", [b"b"], timeout=0.2)
    with pytest.raises(AssertionError):
        wait_for_records(log, "t", [], exact=True, timeout=0.1)  # not exactly nothing


# --------------------------------------------------------------------------- replay


def test_replay_folds_a_topic_in_offset_order(log: eventlog.Log) -> None:
    seed(log, "counts", [{"value": {"add": n}} for n in (1, 2, 3, 4)])
    total = replay(log, "counts", lambda s, r: s + r.value["add"], 0, value_deserializer=json.loads)
    assert total == 10
    assert replay(log, "counts", collect, []) == list(log.scan("counts"))
    assert replay(log, "counts", collect, [], until_offset=0) == []
    log.create_topic("empty")
    assert replay(log, "empty", collect, ["initial"]) == ["initial"]


def test_replay_is_as_of_the_call(log: eventlog.Log) -> None:
    # A fold that appends to the topic it replays must not see its own records (and must
    # end): the scan path and the key-index path.
    log.create_topic("plain")
    log.create_topic("indexed", key_index=True)
    for topic in ("plain", "indexed"):
        seed(log, topic, [{"key": b"k", "value": b"v"}] * 3)

        def echo(count: int, record: Record, topic: str = topic) -> int:
            log.append(topic, b"echo", key=b"k")
            return count + 1

        assert replay(log, topic, echo, 0) == 3
        assert replay(log, topic, echo, 0, key=b"k") == 6


_topic_numbers = itertools.count()  # unique topic names across hypothesis examples


def key_stream(log: eventlog.Log, topic: str, key: bytes, **options: Any) -> list[tuple]:
    """One key's replayed stream as (partition, offset, timestamp, value) tuples."""
    return replay(
        log,
        topic,
        lambda s, r: [*s, (r.partition, r.offset, r.timestamp, r.value)],
        [],
        key=key,
        **options,
    )


def test_replay_of_one_key_through_the_index_equals_the_scan(log: eventlog.Log) -> None:
    # More than one index page (1000 offsets) of the key, among other keys.
    records = [
        {"key": b"hot" if i % 3 else b"k%d" % (i % 7), "value": b"%d" % i, "timestamp": T0 + i}
        for i in range(3200)
    ]
    log.create_topic("indexed", key_index=True, retention_ms=-1)
    log.create_topic("plain", retention_ms=-1)
    seed(log, "indexed", records)
    seed(log, "plain", records)
    indexed = key_stream(log, "indexed", b"hot")
    assert len(indexed) == sum(1 for r in records if r["key"] == b"hot")
    assert indexed == key_stream(log, "plain", b"hot")
    assert key_stream(log, "indexed", b"k3") == key_stream(log, "plain", b"k3")
    assert key_stream(log, "indexed", b"absent") == [] == key_stream(log, "plain", b"absent")
    # Bounded, through the index and by scan alike.
    for bound in (0, 1, 1500, 3199):
        assert key_stream(log, "indexed", b"hot", until_offset=bound) == key_stream(
            log, "plain", b"hot", until_offset=bound
        )
    # Records below the log start are gone from both.
    for topic in ("indexed", "plain"):
        log.delete_records(topic, 0, 2000)
    after = key_stream(log, "indexed", b"hot")
    assert after == key_stream(log, "plain", b"hot")
    assert min(offset for _p, offset, _t, _v in after) >= 2000


def test_replay_of_one_key_on_a_compacted_topic(log: eventlog.Log) -> None:
    # A long min.compaction.lag.ms holds back the automatic compaction the appends would
    # start, so the stream can be seen before and after a pass.
    log.create_topic("profiles", 2, cleanup_policy="compact", min_compaction_lag_ms=10**12)
    seed(
        log,
        "profiles",
        [
            {"key": b"a", "value": b"a1", "partition": 0, "timestamp": T0},
            {"key": b"b", "value": b"b1", "partition": 0, "timestamp": T0 + 1},
            {"key": b"a", "value": b"a2", "partition": 1, "timestamp": T0 + 2},
            {"key": b"a", "value": b"a3", "partition": 0, "timestamp": T0 + 3},
            {"key": b"b", "value": None, "partition": 0, "timestamp": T0 + 4},
        ],
    )

    def scanned(key: bytes) -> list[tuple]:
        # What the key's stream is by definition: its records in the stored log.
        found = [r for r in log.scan("profiles") if r.key == key]
        found.sort(key=lambda r: (r.timestamp, r.partition, r.offset))
        return [(r.partition, r.offset, r.timestamp, r.value) for r in found]

    assert key_stream(log, "profiles", b"a") == [
        (0, 0, T0, b"a1"),
        (1, 0, T0 + 2, b"a2"),
        (0, 2, T0 + 3, b"a3"),
    ]
    assert key_stream(log, "profiles", b"b") == [(0, 1, T0 + 1, b"b1"), (0, 3, T0 + 4, None)]
    for key in (b"a", b"b"):
        assert key_stream(log, "profiles", key) == scanned(key)
    log.alter_topic("profiles", min_compaction_lag_ms=0)
    log.compact("profiles", now_ms=T0 + 10)
    for key in (b"a", b"b"):
        assert key_stream(log, "profiles", key) == scanned(key)
    assert key_stream(log, "profiles", b"a") == [(1, 0, T0 + 2, b"a2"), (0, 2, T0 + 3, b"a3")]
    # The tombstone is kept (delete.retention.ms) and replayed with its None value.
    assert key_stream(log, "profiles", b"b") == [(0, 3, T0 + 4, None)]
    assert key_stream(log, "profiles", b"a", partition=1) == [(1, 0, T0 + 2, b"a2")]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    partitions=st.integers(1, 3),
    rows=st.lists(
        st.tuples(
            st.sampled_from([b"a", b"b", b"c"]),
            st.one_of(st.none(), st.binary(max_size=3)),
            st.integers(0, 3),
            st.integers(0, 20),
        ),
        max_size=25,
    ),
    until=st.integers(0, 25),
    key=st.sampled_from([b"a", b"b"]),
)
def test_replay_through_the_index_equals_replay_by_scan(
    log: eventlog.Log,
    partitions: int,
    rows: list[tuple[bytes, bytes | None, int, int]],
    until: int,
    key: bytes,
) -> None:
    name = f"t{next(_topic_numbers)}"
    log.create_topic(f"{name}-indexed", partitions, key_index=True, retention_ms=-1)
    log.create_topic(f"{name}-plain", partitions, retention_ms=-1)
    records = [
        {"key": k, "value": v, "partition": p % partitions, "timestamp": T0 + t}
        for k, v, p, t in rows
    ]
    for suffix in ("indexed", "plain"):
        seed(log, f"{name}-{suffix}", records)
    options: dict[str, Any] = {"until_timestamp": T0 + until}
    if partitions == 1:
        options["until_offset"] = until
    indexed = key_stream(log, f"{name}-indexed", key, **options)
    assert indexed == key_stream(log, f"{name}-plain", key, **options)
    # And per partition, both are the definition: the key's records within the bounds, in
    # offset order. (Across partitions they are merged by timestamp, which this does not
    # pin down: the generated timestamps are not in order within a partition.)
    expected = []
    for p in range(partitions):
        offset = 0
        for r in records:
            if r["partition"] != p:
                continue
            if (
                r["key"] == key
                and r["timestamp"] <= T0 + until
                and (partitions > 1 or offset < until)
            ):
                expected.append((p, offset, r["timestamp"], r["value"]))
            offset += 1
    for p in range(partitions):
        assert [e for e in indexed if e[0] == p] == [e for e in expected if e[0] == p]


def test_replay_until_offset(log: eventlog.Log) -> None:
    seed(log, "one", [b"a", b"b", b"c"])
    values = lambda **o: replay(log, "one", lambda s, r: [*s, r.value], [], **o)  # noqa: E731
    assert values(until_offset=2) == [b"a", b"b"]
    assert values(until_offset=99) == [b"a", b"b", b"c"]
    assert values(until_offset={0: 1}) == [b"a"]
    seed(
        log,
        "two",
        [{"value": b"%d" % i, "partition": i % 2, "timestamp": T0 + i} for i in range(6)],
        partitions=2,
    )
    two = lambda **o: replay(log, "two", lambda s, r: [*s, r.value], [], **o)  # noqa: E731
    assert two(until_offset={0: 1, 1: 2}) == [b"0", b"1", b"3"]
    assert two(until_offset={1: 0}) == [b"0", b"2", b"4"]  # unnamed partitions: unbounded
    assert two(partition=1, until_offset=1) == [b"1"]
    with pytest.raises(InvalidArgumentError, match="ambiguous on a topic with 2 partitions"):
        two(until_offset=1)
    with pytest.raises(InvalidArgumentError, match="names partition 2, which is not replayed"):
        two(until_offset={2: 1})
    with pytest.raises(InvalidArgumentError, match="names partition 0, which is not replayed"):
        two(partition=1, until_offset={0: 1})
    for bad in (-1, 1.0, True, "1"):
        with pytest.raises(InvalidArgumentError):
            values(until_offset=bad)
        with pytest.raises(InvalidArgumentError):
            values(until_offset={0: bad})


def test_replay_until_timestamp_is_inclusive(log: eventlog.Log) -> None:
    seed(log, "t", [{"value": b"%d" % i, "timestamp": T0 + 10 * i} for i in range(4)])
    values = lambda **o: replay(log, "t", lambda s, r: [*s, r.value], [], **o)  # noqa: E731
    assert values(until_timestamp=T0 + 20) == [b"0", b"1", b"2"]
    assert values(until_timestamp=T0 + 19) == [b"0", b"1"]
    assert values(until_timestamp=T0 - 1) == []
    assert values(until_timestamp=T0 + 20, until_offset=2) == [b"0", b"1"]
    for bad in (-1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="until_timestamp"):
            values(until_timestamp=bad)


def test_replay_merges_partitions_by_timestamp_then_partition_then_offset(
    log: eventlog.Log,
) -> None:
    seed(
        log,
        "t",
        [
            {"value": b"p0@5", "partition": 0, "timestamp": T0 + 5},
            {"value": b"p0@5-again", "partition": 0, "timestamp": T0 + 5},
            {"value": b"p1@1", "partition": 1, "timestamp": T0 + 1},
            {"value": b"p1@5", "partition": 1, "timestamp": T0 + 5},
            {"value": b"p2@3", "partition": 2, "timestamp": T0 + 3},
            {"value": b"p2@9", "partition": 2, "timestamp": T0 + 9},
        ],
        partitions=3,
    )
    order = replay(log, "t", lambda s, r: [*s, r.value], [])
    assert order == [b"p1@1", b"p2@3", b"p0@5", b"p0@5-again", b"p1@5", b"p2@9"]
    assert replay(log, "t", lambda s, r: [*s, r.value], [], partition=2) == [b"p2@3", b"p2@9"]


def test_replay_deserializes_keys_and_values_but_keeps_tombstones(log: eventlog.Log) -> None:
    seed(
        log,
        "state",
        [
            {"key": {"id": 1}, "value": {"balance": 10}},
            {"key": {"id": 2}, "value": {"balance": 5}},
            {"key": {"id": 1}, "value": {"balance": 7}},
            {"key": {"id": 2}, "value": None},
        ],
    )

    def apply(state: dict[int, int], record: Record) -> dict[int, int]:
        account = record.key["id"]
        if record.value is None:
            state.pop(account, None)
        else:
            state[account] = record.value["balance"]
        return state

    final = replay(
        log, "state", apply, {}, key_deserializer=json.loads, value_deserializer=json.loads
    )
    assert final == {1: 7}
    as_of_third = replay(
        log,
        "state",
        apply,
        {},
        until_offset=3,
        key_deserializer=json.loads,
        value_deserializer=json.loads,
    )
    assert as_of_third == {1: 7, 2: 5}
    stream = replay(log, "state", collect, [], key=b'{"id":2}', value_deserializer=json.loads)
    assert [r.value for r in stream] == [{"balance": 5}, None]


def test_replay_checks_its_arguments(log: eventlog.Log) -> None:
    seed(log, "t", [b"a"])
    with pytest.raises(InvalidRecordError, match="key must be bytes"):
        replay(log, "t", collect, [], key="text")  # type: ignore[arg-type]
    with pytest.raises(TopicNotFoundError):
        replay(log, "missing", collect, [])
    with pytest.raises(PartitionNotFoundError):
        replay(log, "t", collect, [], partition=1)
    assert eventlog.replay is replay
