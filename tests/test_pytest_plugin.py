"""eventlog's pytest plugin, tested the way applications use it: a test session inside a
test (pytest's ``pytester``), with the plugin loaded through its ``pytest11`` entry point
as in any environment where eventlog is installed.

What is verified (issue 7):

- ``eventlog_log``: a fresh, open log per test, durability "off", closed and its directory
  removed after the test; ``eventlog_factory``: a reopen keeps the data, two names are two
  logs, the same name while open is a second handle, options reach ``eventlog.open``,
  everything closed after; ``eventlog_clock``: drives record timestamps during the test
  and is gone after it;
- seeding and dumping: seed, dump to JSON lines, compare with a golden file, load into
  another log, the same dump again (and a golden comparison that fails when it should);
- ``run_until_caught_up`` over several partitions of a group, with a handler appending to
  another topic and one appending to its own topic;
- time control: ``retention.ms`` applied by ``run_retention()`` and by an append once the
  clock moved past it; the tombstone horizon of compaction; a consumer whose session
  timeout passes in clock time loses its partitions to the other member (which takes them
  over) and hears of it in ``on_partitions_lost``;
- the leak check: consumers, producers and logs left open make the test error at teardown,
  naming each and the ``file:line`` where it was opened, and are closed; nothing when
  closed; ``@pytest.mark.eventlog(leak_check=False)`` turns it off; the ini option
  ``eventlog_leak_check = true`` checks tests that use none of the fixtures, which are
  otherwise not checked; objects from fixtures of a wider scope are not blamed on a test.

Inner sessions run in this process (fast); one runs in a subprocess, to show the plugin
is found from the entry point alone. Inner sessions turn off the plugins they do not need
(the cache, and hypothesis, which would be re-imported by each in-process session).
"""

from __future__ import annotations

import os
import re
import textwrap

import pytest

import eventlog
from eventlog import _tracking

pytest_plugins = ["pytester"]

QUIET_PLUGINS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest")


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the inner session in this process (eventlog's plugin comes from the entry
    point, as for any installed user)."""
    return pytester.runpytest(*QUIET_PLUGINS, *args)


# fnmatch patterns below write a literal "[" as "[[]".


def line_of(source: str, marker: str) -> int:
    """The 1-based line number of the line containing ``marker`` in ``source`` as
    ``makepyfile`` writes it (dedented, leading blank lines dropped)."""
    lines = textwrap.dedent(source).lstrip("\n").splitlines()
    matches = [n for n, line in enumerate(lines, 1) if marker in line]
    assert len(matches) == 1, marker
    return matches[0]


# --------------------------------------------------------------------------- fixtures


def test_eventlog_log_is_fresh_open_and_removed_after_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import os
        import pathlib

        import eventlog

        PATHS = pathlib.Path(__file__).parent / "paths.txt"
        HANDLES = []

        def use(log):
            assert isinstance(log, eventlog.Log)
            assert not log.closed and not log.readonly
            assert log.durability == "off"
            assert log.list_topics() == []  # fresh: nothing from the other test
            log.create_topic("t")
            log.append("t", b"x")
            HANDLES.append(log)
            with PATHS.open("a") as f:
                f.write(log.path + "\\n")

        def test_first(eventlog_log):
            use(eventlog_log)

        def test_second(eventlog_log):
            (first,) = PATHS.read_text().split()
            assert HANDLES[0].closed
            assert not os.path.exists(first)
            assert eventlog_log.path != first
            use(eventlog_log)
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=2)
    paths = (pytester.path / "paths.txt").read_text().split()
    assert len(paths) == 2
    for path in paths:
        assert not os.path.exists(path)
        assert not os.path.exists(os.path.dirname(path))  # the whole temporary directory


def test_eventlog_factory_reopens_by_name_and_closes_everything(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        OPENED = []

        def test_factory(eventlog_factory):
            first = eventlog_factory("orders")
            first.create_topic("t")
            first.append("t", b"kept")
            first.close()
            again = eventlog_factory("orders")  # a reopen: same directory, same data
            assert again.path == first.path
            assert [r.value for r in again.scan("t")] == [b"kept"]
            other = eventlog_factory("other")  # another name: another log
            assert other.path != again.path
            assert other.list_topics() == []
            second_handle = eventlog_factory("orders")  # while open: a second handle
            second_handle.append("t", b"more")
            assert [r.value for r in again.scan("t")] == [b"kept", b"more"]
            reader = eventlog_factory("orders", readonly=True)
            assert reader.readonly
            normal = eventlog_factory("normal", durability="normal")
            assert normal.durability == "normal"
            assert again.durability == "off"
            OPENED.extend([again, other, second_handle, reader, normal])

        def test_default_name_is_the_eventlog_log(eventlog_log, eventlog_factory):
            eventlog_log.create_topic("shared")
            handle = eventlog_factory()
            assert handle.path == eventlog_log.path
            assert handle.list_topics() == ["shared"]
            OPENED.append(handle)

        def test_all_were_closed():
            assert len(OPENED) == 6
            assert all(log.closed for log in OPENED)
        """
    )
    run_inner(pytester).assert_outcomes(passed=3)


def test_eventlog_clock_drives_timestamps_during_the_test_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import datetime as dt

        from eventlog.testing import ManualClock

        DAY = 86_400_000
        CLOCKS = []

        def test_clock(eventlog_clock, eventlog_log):
            assert isinstance(eventlog_clock, ManualClock)
            eventlog_log.create_topic("t", retention_ms=-1)
            start = eventlog_clock.now_ms()
            assert eventlog_log.append("t", b"a").timestamp == start
            eventlog_clock.advance(days=3650)
            assert eventlog_log.append("t", b"b").timestamp == start + 3650 * DAY
            eventlog_clock.set(dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc))
            assert eventlog_log.append("t", b"c").timestamp == 4_102_444_800_000
            CLOCKS.append(eventlog_clock)

        def test_after(eventlog_log):
            eventlog_log.create_topic("t")
            stamped = eventlog_log.append("t", b"now").timestamp
            assert stamped < CLOCKS[0].now_ms() - 3000 * DAY  # the system clock again
            assert "installed" not in repr(CLOCKS[0])
        """
    )
    run_inner(pytester).assert_outcomes(passed=2)


def test_fixtures_come_from_the_entry_point_in_a_fresh_process(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from eventlog.testing import seed, assert_topic_contains

        def test_uses_all_three(eventlog_log, eventlog_factory, eventlog_clock):
            seed(eventlog_log, "t", [b"a"])
            assert_topic_contains(eventlog_log, "t", [{"value": b"a",
                                  "timestamp": eventlog_clock.now_ms()}])
            assert eventlog_factory("other").list_topics() == []

        def test_leak(eventlog_log):
            eventlog_log.create_topic("t")
            eventlog_log.consumer("t")
        """
    )
    result = pytester.runpytest_subprocess(*QUIET_PLUGINS)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leak*", "*left 1 eventlog object*"])
    # Without the plugin, the fixtures do not exist: it is the entry point that gave them.
    without = pytester.runpytest_subprocess(*QUIET_PLUGINS, "-p", "no:eventlog")
    without.stdout.fnmatch_lines(["*fixture 'eventlog_log' not found*"])


# --------------------------------------------------------------------------- seeding and dumping

GOLDEN = (
    '{"headers": [["source", "web"]], "key": "o-1", "offset": 0, "partition": 0, '
    '"timestamp": 1700000000000, "topic": "orders", "value": "{\\"qty\\":2}"}\n'
    '{"headers": [], "key": "o-1", "offset": 1, "partition": 0, '
    '"timestamp": 1700000000002, "topic": "orders", "value": null}\n'
    '{"headers": [], "key": "o-2", "offset": 0, "partition": 1, '
    '"timestamp": 1700000000001, "topic": "orders", "value": {"base64": "/wA="}}\n'
)


def test_seed_dump_golden_file_and_load_round_trip(pytester: pytest.Pytester) -> None:
    (pytester.path / "orders.jsonl").write_text(GOLDEN, encoding="utf-8")
    pytester.makepyfile(
        """
        import pathlib

        from eventlog.testing import dump, dump_jsonl, load_jsonl, seed

        GOLDEN = pathlib.Path(__file__).parent / "orders.jsonl"
        ORDERS = [
            {"key": "o-1", "value": {"qty": 2}, "timestamp": 1700000000000,
             "headers": [("source", "web")], "partition": 0},
            {"key": "o-2", "value": b"\\xff\\x00", "timestamp": 1700000000001, "partition": 1},
            {"key": "o-1", "value": None, "timestamp": 1700000000002, "partition": 0},
        ]

        def test_round_trip(eventlog_log, eventlog_factory, tmp_path):
            seed(eventlog_log, "orders", ORDERS, partitions=2)
            actual = tmp_path / "actual.jsonl"
            text = dump_jsonl(eventlog_log, "orders", actual)
            assert text == GOLDEN.read_text()
            copy = eventlog_factory("copy")
            load_jsonl(copy, actual)
            assert dump_jsonl(copy, "orders") == text
            assert dump(copy, "orders") == dump(eventlog_log, "orders")
            from_golden = eventlog_factory("from-golden")
            load_jsonl(from_golden, GOLDEN)
            assert dump_jsonl(from_golden, "orders") == text

        def test_group_view_round_trip(eventlog_log, eventlog_factory):
            load_jsonl(eventlog_log, GOLDEN)
            with eventlog_log.consumer("orders", group="g", auto_offset_reset="earliest",
                                       enable_auto_commit=False) as consumer:
                while len(consumer.assignment()) < 2:
                    consumer.poll(0.05)
                consumer.commit({("orders", 0): 1})
            seen = dump_jsonl(eventlog_log, "orders", group="g")
            assert seen == GOLDEN.read_text().splitlines(keepends=True)[0]
            copy = eventlog_factory("copy")
            load_jsonl(copy, seen.splitlines())
            assert dump_jsonl(copy, "orders") == seen

        def test_a_changed_topic_differs_from_the_golden_file(eventlog_log):
            changed = [dict(ORDERS[0], value={"qty": 3}), *ORDERS[1:]]
            seed(eventlog_log, "orders", changed, partitions=2)
            assert dump_jsonl(eventlog_log, "orders") == GOLDEN.read_text()
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_a_changed_topic_differs_from_the_golden_file*"])
    assert 'qty\\":3' in result.stdout.str()  # the failure's diff shows the changed value


# --------------------------------------------------------------------------- caught up


def test_run_until_caught_up_with_several_partitions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from eventlog.testing import assert_topic_contains, run_until_caught_up, seed

        def test_handler_appending_to_another_topic(eventlog_log):
            log = eventlog_log
            seed(log, "orders", [{"key": f"o-{i}", "value": {"n": i}, "partition": i % 3}
                                 for i in range(30)], partitions=3)
            log.create_topic("shipments")

            def ship(record):
                log.append("shipments", record.value, key=record.key)

            with log.consumer("orders", group="shipper", auto_offset_reset="earliest",
                              enable_auto_commit=False) as consumer:
                handled = run_until_caught_up(consumer, ship)
            assert len(handled) == 30
            for p in range(3):
                assert [r.offset for r in handled if r.partition == p] == list(range(10))
            committed = log.committed_offsets("shipper")
            assert {tp.partition: m.offset for tp, m in committed.items()} == {0: 10, 1: 10, 2: 10}
            assert_topic_contains(log, "shipments", [(r.key, r.value) for r in handled])
            # The group continues where it committed.
            seed(log, "orders", [{"value": b"late", "partition": 2}])
            with log.consumer("orders", group="shipper", enable_auto_commit=False) as consumer:
                assert [r.value for r in run_until_caught_up(consumer, ship)] == [b"late"]
            assert_topic_contains(log, "shipments", [b"late"], exact=False)

        def test_handler_appending_to_its_own_topic(eventlog_log):
            log = eventlog_log
            seed(log, "countdown", [{"value": b"3", "partition": p} for p in range(2)],
                 partitions=2)

            def step(record):
                n = int(record.value)
                if n > 0:
                    log.append("countdown", str(n - 1).encode(), partition=record.partition)

            with log.consumer("countdown", auto_offset_reset="earliest") as consumer:
                seen = run_until_caught_up(consumer, step)
                assert consumer.lag() == {tp: 0 for tp in consumer.assignment()}
            for p in range(2):
                assert [r.value for r in seen if r.partition == p] == [b"3", b"2", b"1", b"0"]
        """
    )
    run_inner(pytester).assert_outcomes(passed=2)


# --------------------------------------------------------------------------- time control


def test_clock_drives_retention(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from eventlog import TopicPartition

        def values(log, topic):
            return [r.value for r in log.scan(topic)]

        def test_run_retention(eventlog_clock, eventlog_log):
            log = eventlog_log
            log.create_topic("metrics", 2, retention_ms=60_000)
            log.append("metrics", b"old-0", partition=0)
            log.append("metrics", b"old-1", partition=1)
            eventlog_clock.advance(seconds=59)
            assert log.run_retention() == {}
            log.append("metrics", b"recent", partition=0)
            eventlog_clock.advance(seconds=2)  # the old ones are 61 s old, "recent" 2 s
            removed = log.run_retention("metrics")
            assert set(removed) == {TopicPartition("metrics", 0), TopicPartition("metrics", 1)}
            assert values(log, "metrics") == [b"recent"]
            assert log.beginning_offsets("metrics") == {0: 1, 1: 1}

        def test_an_append_applies_retention_once_time_has_passed(eventlog_clock, eventlog_log):
            log = eventlog_log
            log.create_topic("t", retention_ms=1_000)
            log.append("t", b"a")
            log.append("t", b"b")
            eventlog_clock.advance(minutes=5)
            log.append("t", b"c")  # no waiting in real time: the clock says "a" expired
            assert values(log, "t") == [b"c"]
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=2)


def test_clock_drives_the_tombstone_horizon_of_compaction(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_tombstone_lives_delete_retention_ms_of_clock_time(eventlog_clock, eventlog_log):
            log = eventlog_log
            log.create_topic("profiles", cleanup_policy="compact", delete_retention_ms=60_000)
            log.append("profiles", b"v1", key=b"k")
            log.append("profiles", None, key=b"k")
            log.compact("profiles")  # first pass: v1 goes, the horizon is set
            assert [r.value for r in log.scan("profiles")] == [None]
            eventlog_clock.advance(seconds=59)
            log.compact("profiles")
            assert [r.value for r in log.scan("profiles")] == [None]
            eventlog_clock.advance(seconds=2)
            log.compact("profiles")
            assert list(log.scan("profiles")) == []
        """
    )
    run_inner(pytester).assert_outcomes(passed=1)


def test_session_timeout_in_clock_time_hands_partitions_over(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time

        from eventlog import RebalanceListener, TopicPartition
        from eventlog.testing import seed

        # No background heartbeats during the test (real-time interval): only polls renew
        # a member's lease, so "stalled" means "does not poll".
        OPTIONS = dict(group="g", session_timeout_ms=30_000, heartbeat_interval_ms=29_000,
                       auto_offset_reset="earliest")

        class Recorder(RebalanceListener):
            def __init__(self):
                self.lost = []
                self.assigned = []

            def on_partitions_assigned(self, partitions):
                self.assigned.append(set(partitions))

            def on_partitions_lost(self, partitions):
                self.lost.append(set(partitions))

        def poll_until(consumers, done, what):
            deadline = time.monotonic() + 10
            while not done():
                assert time.monotonic() < deadline, what
                for consumer in consumers:
                    consumer.poll(0.01)

        def test_stalled_member_loses_its_partitions(eventlog_clock, eventlog_log):
            log = eventlog_log
            seed(log, "t", [{"value": b"x", "partition": p} for p in range(4)], partitions=4)
            stalled_listener, other_listener = Recorder(), Recorder()
            with log.consumer("t", listener=stalled_listener, **OPTIONS) as stalled, \\
                    log.consumer("t", listener=other_listener, **OPTIONS) as other:
                poll_until([stalled, other],
                           lambda: len(stalled.assignment()) == len(other.assignment()) == 2,
                           "the two members never split the partitions")
                mine = stalled.assignment()
                assert stalled_listener.lost == []
                # Leases are renewed by the heartbeat threads only (polls do not write), so
                # in clock time both members' sessions end; the member that polls first
                # rejoins, expires the other and takes over everything.
                eventlog_clock.advance(seconds=31)
                poll_until([other], lambda: len(other.assignment()) == 4,
                           "the other member did not take over")
                assert mine <= set().union(*other_listener.assigned)
                assert stalled.assignment() == mine  # it has not looked yet
                # The stalled member finds out at its next poll, without a chance to commit.
                stalled.poll(0)
                assert stalled_listener.lost == [mine]
                assert other.assignment() == {TopicPartition("t", p) for p in range(4)}
        """
    )
    run_inner(pytester).assert_outcomes(passed=1)


# --------------------------------------------------------------------------- leak check

LEAKS = """
import eventlog
import pytest

KEPT = []

def test_consumer_left_open(eventlog_log):
    eventlog_log.create_topic("t")
    consumer = eventlog_log.consumer("t", group="g")  # CONSUMER
    KEPT.append(consumer)

def test_producer_and_log_left_open(eventlog_clock, tmp_path):
    log = eventlog.open(tmp_path / "mine", durability="off")  # LOG
    producer = log.producer(client_id="p-1")  # PRODUCER
    KEPT.extend([producer, log])

def test_leaked_objects_were_closed():
    assert len(KEPT) == 3
    assert all(obj.closed for obj in KEPT)

def test_closed_objects_are_fine(eventlog_log, tmp_path):
    eventlog_log.create_topic("t")
    with eventlog_log.consumer("t", group="g"), eventlog_log.producer():
        pass
    other = eventlog.open(tmp_path / "other", durability="off")
    other.create_topic("t2")
    other.consumer("t2").close()
    other.close()

@pytest.mark.eventlog(leak_check=False)
def test_check_turned_off(eventlog_log, tmp_path):
    KEPT.append(eventlog.open(tmp_path / "not-checked", durability="off"))

def test_no_fixture_no_check(tmp_path):
    KEPT.append(eventlog.open(tmp_path / "unchecked", durability="off"))

def test_unchecked_ones_stayed_open():
    unchecked = KEPT[3:]
    assert len(unchecked) == 2
    assert not any(log.closed for log in unchecked)
    for log in unchecked:
        log.close()
"""


def test_leak_check_names_what_was_left_open_and_where(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile(test_leaks=LEAKS)
    result = run_inner(pytester, "-v")
    result.assert_outcomes(passed=7, errors=2)
    output = result.stdout.str()
    consumer_line = line_of(LEAKS, "# CONSUMER")
    log_line = line_of(LEAKS, "# LOG")
    producer_line = line_of(LEAKS, "# PRODUCER")
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_consumer_left_open*",
            "the test left 1 eventlog object(s) open (close them, or use them as context "
            "managers):",
            f"  - Consumer(topics=[[]'t'], group='g'), opened at {path}:{consumer_line}",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_producer_and_log_left_open*",
            "the test left 2 eventlog object(s) open*",
        ]
    )
    assert re.search(
        rf"  - Log\('[^']*mine'\), opened at {re.escape(str(path))}:{log_line}\n", output
    )
    assert f"  - Producer(client_id='p-1'), opened at {path}:{producer_line}\n" in output
    # Only the two leaking tests errored.
    assert output.count("ERROR at teardown") == 2


def test_ini_option_checks_tests_without_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\neventlog_leak_check = true\n")
    source = """
        import eventlog
        import pytest

        def test_leaks_without_fixtures(tmp_path):
            eventlog.open(tmp_path / "log", durability="off")  # OPENED

        def test_closes_without_fixtures(tmp_path):
            with eventlog.open(tmp_path / "log", durability="off") as log:
                log.create_topic("t")
                log.consumer("t").close()

        KEPT = []

        @pytest.mark.eventlog(leak_check=False)
        def test_marker_still_wins(tmp_path):
            KEPT.append(eventlog.open(tmp_path / "log", durability="off"))

        def test_cleanup():
            (log,) = KEPT
            assert not log.closed
            log.close()
        """
    path = pytester.makepyfile(source)
    result = run_inner(pytester)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_without_fixtures*",
            f"  - Log(*), opened at {path}:{line_of(source, '# OPENED')}",
        ]
    )


def test_leak_check_reaches_fixtures_built_on_eventlog_fixtures(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def orders(eventlog_log):
            eventlog_log.create_topic("orders")
            return eventlog_log
        """
    )
    pytester.makepyfile(
        """
        def test_leaks_through_an_application_fixture(orders):
            orders.consumer("orders")
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*Consumer(topics=[[]'orders'], group=None), opened at *"])


def test_objects_from_wider_scoped_fixtures_are_not_blamed_on_a_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import eventlog
        import pytest

        @pytest.fixture(scope="module")
        def shared(tmp_path_factory):
            log = eventlog.open(tmp_path_factory.mktemp("shared") / "log", durability="off")
            log.create_topic("t")
            consumer = log.consumer("t")
            yield log
            consumer.close()
            log.close()

        def test_one(shared, eventlog_clock):
            shared.append("t", b"a")

        def test_two(shared, eventlog_clock):
            assert [r.value for r in shared.scan("t")] == [b"a"]
        """
    )
    run_inner(pytester).assert_outcomes(passed=2)


def test_leak_report_names_user_code_in_a_directory_named_like_the_package(
    pytester: pytest.Pytester,
) -> None:
    # "The first caller outside eventlog": code in a sibling directory whose name merely
    # starts with the package's (an application package "eventlog_app", say, next to an
    # editable install) is outside eventlog and must be named, not skipped.
    package_dir = os.path.dirname(os.path.abspath(eventlog.__file__))
    fake_file = package_dir + "_app/consumers.py"
    pytester.makepyfile(
        f"""
        def test_leak_from_application_code(eventlog_log):
            eventlog_log.create_topic("t")
            code = compile("\\n\\nconsumer = log.consumer('t')", {fake_file!r}, "exec")
            exec(code, {{"log": eventlog_log}})
        """
    )
    result = run_inner(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*Consumer(topics=[[]'t'], group=None), opened at {fake_file}:3"])


def test_tracking_is_off_outside_checked_tests() -> None:
    # This test uses no eventlog fixture (and the suite sets no ini option): nothing is
    # recorded, so production-like code pays nothing.
    assert _tracking._registry is None
