"""read_key(from_version=...) seeks to a version by binary search over the key's index
entries: checked against slicing the whole stream, for streams interleaved with other keys
in every pattern hypothesis finds, and against a processor handler that tries to end its
transaction itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import NewRecord


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.sampled_from([b"a", b"b", b"c"]), min_size=1, max_size=6),
        min_size=1,
        max_size=8,
    )
)
def test_from_version_equals_slicing_the_stream(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[bytes]]
) -> None:
    path = tmp_path_factory.mktemp("log")
    with eventlog.open(Path(path), durability="off") as log:
        log.create_topic("t", key_index=True)
        for i, keys in enumerate(batches):
            log.append_batch("t", [NewRecord(b"%d-%d" % (i, j), key=k) for j, k in enumerate(keys)])
        for key in (b"a", b"b", b"c", b"never"):
            stream = list(log.read_key("t", key))
            assert log.key_version("t", key) == len(stream)
            for version in range(1, len(stream) + 3):
                assert list(log.read_key("t", key, from_version=version)) == stream[version - 1 :]


def test_a_processor_handler_cannot_end_its_transaction(tmp_path: Path) -> None:
    with eventlog.open(tmp_path, durability="off") as log:
        log.create_topic("in")
        log.create_topic("out")
        log.append("in", b"x")

        def handler(record: eventlog.Record, tx: eventlog.Transaction) -> None:
            tx.append("out", record.value)
            tx.commit()

        with log.processor("in", group="g", handler=handler, auto_offset_reset="earliest") as p:
            with pytest.raises(eventlog.IllegalStateError, match="must not commit"):
                p.poll(timeout=1.0)
            assert list(log.scan("out")) == []
            assert log.committed_offsets("g") == {}
