"""The record-batch codec: round trips, the single-record encoder, damage detection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog import CorruptLogError
from eventlog._codec import HEADER_SIZE, decode_batch, encode_batch, encode_single

nullable_bytes = st.none() | st.binary(max_size=300)
KEY = b"\x00\x00\x00\x01\x00\x00\x00\x00" + (42).to_bytes(8, "big")


@settings(max_examples=200, deadline=None)
@given(
    value=nullable_bytes,
    key=nullable_bytes,
    timestamp=st.integers(0, 2**62),
    compress=st.booleans(),
    log_append=st.booleans(),
)
def test_encode_single_matches_encode_batch(
    value: bytes | None, key: bytes | None, timestamp: int, compress: bool, log_append: bool
) -> None:
    one = encode_single(value, key, timestamp, log_append_time=log_append, compress=compress)
    many = encode_batch([value], None if key is None else [key], timestamp, None,
                        log_append_time=log_append, compress=compress)
    assert one.value(KEY) == many.value(KEY)
    assert (one.count, one.max_timestamp, one.nbytes) == (1, timestamp, many.nbytes)
    batch = decode_batch(KEY, one.value(KEY), 42)
    assert (batch.values, batch.keys, batch.timestamps) == ([value], [key], [timestamp])


records = st.lists(
    st.tuples(nullable_bytes, nullable_bytes, st.integers(0, 2**40),
              st.lists(st.tuples(st.text(max_size=10), nullable_bytes), max_size=3)),
    min_size=1, max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(rows=records, compress=st.booleans())
def test_batches_round_trip(rows: list[tuple], compress: bool) -> None:  # type: ignore[type-arg]
    values = [r[0] for r in rows]
    keys = [r[1] for r in rows]
    stamps = [r[2] for r in rows]
    headers = [tuple(r[3]) for r in rows]
    has_keys = any(k is not None for k in keys)
    has_headers = any(headers)
    encoded = encode_batch(values, keys if has_keys else None, stamps,
                           headers if has_headers else None, compress=compress)
    batch = decode_batch(KEY, encoded.value(KEY), 42)
    assert list(batch.offsets) == list(range(42, 42 + len(rows)))
    assert batch.values == values
    assert batch.keys == (keys if has_keys else [None] * len(rows))
    assert batch.timestamps == stamps
    assert batch.max_timestamp == max(stamps)
    assert (batch.headers or [()] * len(rows)) == headers


@settings(max_examples=100, deadline=None)
@given(rows=records, data=st.data())
def test_any_flipped_byte_is_detected(rows: list[tuple], data: st.DataObject) -> None:  # type: ignore[type-arg]
    values = [r[0] for r in rows]
    stored = bytearray(encode_batch(values, None, 5, None).value(KEY))
    position = data.draw(st.integers(0, len(stored) - 1))
    stored[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(CorruptLogError):
        decode_batch(KEY, bytes(stored), 42)


def test_batch_under_another_key_is_detected() -> None:
    stored = encode_batch([b"v"], None, 5, None).value(KEY)
    with pytest.raises(CorruptLogError):
        decode_batch(KEY[:-1] + b"\x2b", stored, 43)


def test_truncated_batch_is_detected() -> None:
    stored = encode_batch([b"value"] * 10, None, 5, None).value(KEY)
    for cut in (0, HEADER_SIZE - 1, HEADER_SIZE, len(stored) - 1):
        with pytest.raises(CorruptLogError):
            decode_batch(KEY, stored[:cut], 42)


def test_large_and_small_items_round_trip() -> None:
    # Sizes below 4 KiB come from a lookup table, larger ones are formatted.
    values: list[bytes | None] = [b"a" * 10, b"b" * 5000, None, b"", b"c" * 70_000, b"d" * 4095]
    keys: list[bytes | None] = [b"k" * 4096, None, b"k", b"k" * 4095, b"", b"k" * 9000]
    encoded = encode_batch(values, keys, 7, None)
    batch = decode_batch(KEY, encoded.value(KEY), 42)
    assert batch.values == values
    assert batch.keys == keys
