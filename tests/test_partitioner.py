"""Tests for the Kafka-compatible partitioner (eventlog._partitioner)."""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog import _partitioner
from eventlog._errors import InvalidArgumentError
from eventlog._partitioner import (
    PartitionerFn,
    StickyPartitioner,
    default_partition,
    murmur2,
    to_positive,
)

# --- a literal reference: Kafka's Java Utils.murmur2, line by line -----------------


def _int32(x: int) -> int:
    """Wrap to Java's signed 32-bit int."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >= (1 << 31) else x


def _ushr(x: int, n: int) -> int:
    """Java's ``>>>`` on an int."""
    return (x & 0xFFFFFFFF) >> n


def reference_murmur2(data: bytes) -> int:
    length = len(data)
    seed = _int32(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = _int32(seed ^ length)
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = (
            (data[i4 + 0] & 0xFF)
            + ((data[i4 + 1] & 0xFF) << 8)
            + ((data[i4 + 2] & 0xFF) << 16)
            + ((data[i4 + 3] & 0xFF) << 24)
        )
        k = _int32(k)
        k = _int32(k * m)
        k ^= _ushr(k, r)
        k = _int32(k)
        k = _int32(k * m)
        h = _int32(h * m)
        h = _int32(h ^ k)
    rest = length % 4
    base = length & ~3
    if rest == 3:
        h = _int32(h ^ ((data[base + 2] & 0xFF) << 16))
    if rest >= 2:
        h = _int32(h ^ ((data[base + 1] & 0xFF) << 8))
    if rest >= 1:
        h = _int32(h ^ (data[base] & 0xFF))
        h = _int32(h * m)
    h = _int32(h ^ _ushr(h, 13))
    h = _int32(h * m)
    h = _int32(h ^ _ushr(h, 15))
    return h


# --- murmur2 ----------------------------------------------------------------------

KAFKA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_VECTORS)
def test_kafka_test_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected
    assert reference_murmur2(data) == expected


def test_empty_key_is_hashed_like_any_other() -> None:
    h = murmur2(b"")
    assert h == reference_murmur2(b"")
    assert -(2**31) <= h < 2**31
    assert 0 <= default_partition(b"", 7) < 7
    assert default_partition(b"", 7) == to_positive(h) % 7


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 7, 8, 255, 256, 257, 1000, 4099])
def test_lengths_including_beyond_precompiled_unpackers(length: int) -> None:
    data = bytes(random.Random(length).randrange(256) for _ in range(length))
    assert murmur2(data) == reference_murmur2(data)


def test_high_bytes_are_unsigned() -> None:
    # Java masks each byte with 0xff; every tail length with bytes >= 0x80.
    for data in (b"\xff", b"\xff\xfe", b"\x80\x81\x82", b"\xff" * 4, b"\xff" * 7):
        assert murmur2(data) == reference_murmur2(data)


def test_other_bytes_like_inputs() -> None:
    data = b"a-little-bit-long-string"
    assert murmur2(bytearray(data)) == -985981536
    assert murmur2(memoryview(data)) == -985981536  # type: ignore[arg-type]


@given(st.binary(max_size=300))
def test_murmur2_matches_reference(data: bytes) -> None:
    assert murmur2(data) == reference_murmur2(data)


@given(st.binary(max_size=64))
def test_murmur2_is_signed_32_bit(data: bytes) -> None:
    assert -(2**31) <= murmur2(data) <= 2**31 - 1


# --- to_positive / default_partition ------------------------------------------------


def test_to_positive_masks_instead_of_abs() -> None:
    assert to_positive(5) == 5
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(2**31)) == 0
    assert to_positive(2**31 - 1) == 2**31 - 1
    assert to_positive(-973932308) == -973932308 & 0x7FFFFFFF


@given(st.binary(max_size=40), st.integers(min_value=1, max_value=1000))
def test_default_partition_in_range(key: bytes, n: int) -> None:
    p = default_partition(key, n)
    assert 0 <= p < n
    assert p == to_positive(reference_murmur2(key)) % n


def test_default_partition_known_values() -> None:
    # to_positive(murmur2("foobar")) = -790332482 & 0x7fffffff = 1357151166.
    assert default_partition(b"foobar", 1) == 0
    assert default_partition(b"foobar", 10) == 1357151166 % 10
    assert default_partition(b"foobar", 12) == 1357151166 % 12


def test_default_partition_cache_is_consistent_and_bounded() -> None:
    keys = [f"user-{i}".encode() for i in range(20_000)]  # more than the cache holds
    expected = [to_positive(reference_murmur2(k)) % 24 for k in keys[:300]]
    for _ in range(2):  # second round hits the cache for what survived
        assert [default_partition(k, 24) for k in keys[:300]] == expected
    for k in keys:
        default_partition(k, 24)
    assert len(_partitioner._hash_cache) <= _partitioner._CACHE_MAX_ENTRIES
    # The same key under another partition count (a grown topic) is still right.
    assert [default_partition(k, 7) for k in keys[:300]] == [
        to_positive(reference_murmur2(k)) % 7 for k in keys[:300]
    ]


def test_default_partition_uncached_inputs() -> None:
    long_key = b"x" * (_partitioner._CACHE_MAX_KEY_LEN + 1)
    assert default_partition(long_key, 9) == to_positive(reference_murmur2(long_key)) % 9
    assert long_key not in _partitioner._hash_cache
    key = b"a-little-bit-longer-string"
    expected = to_positive(-1486304829) % 5
    assert default_partition(bytearray(key), 5) == expected
    assert default_partition(memoryview(key), 5) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -1])
def test_default_partition_rejects_bad_partition_count(n: int) -> None:
    with pytest.raises(InvalidArgumentError, match="num_partitions"):
        default_partition(b"k", n)


def test_partitioner_fn_alias_accepts_a_plain_function() -> None:
    def by_first_byte(key: bytes | None, n: int) -> int:
        return key[0] % n if key else 0

    fn: PartitionerFn = by_first_byte
    assert fn(b"\x05", 3) == 2
    assert fn(None, 3) == 0


# --- sticky partitioner ----------------------------------------------------------


def stints(parts: list[int]) -> list[tuple[int, int]]:
    """Runs of equal consecutive partitions, as (partition, length)."""
    runs: list[tuple[int, int]] = []
    for p in parts:
        if runs and runs[-1][0] == p:
            runs[-1] = (p, runs[-1][1] + 1)
        else:
            runs.append((p, 1))
    return runs


def test_sticky_sticks_for_a_batch_then_switches() -> None:
    sp = StickyPartitioner(batch_size=100, rng=random.Random(1))
    parts = [sp.partition(4, 10) for _ in range(1000)]
    runs = stints(parts)
    # 10 records of 10 bytes reach 100 bytes; the next record switches, always to a
    # different partition.
    assert all(length == 10 for _, length in runs)
    assert len(runs) == 100
    assert set(parts) == {0, 1, 2, 3}


def test_sticky_record_reaching_the_batch_size_stays() -> None:
    sp = StickyPartitioner(batch_size=100, rng=random.Random(2))
    first = sp.partition(3, 60)
    assert sp.partition(3, 60) == first  # 120 bytes now: this one still stays
    assert sp.partition(3, 1) != first  # switched


def test_sticky_large_records_switch_every_time() -> None:
    sp = StickyPartitioner(batch_size=16384, rng=random.Random(3))
    parts = [sp.partition(5, 20000) for _ in range(200)]
    assert all(a != b for a, b in itertools.pairwise(parts))


def test_sticky_choice_is_spread_over_the_other_partitions() -> None:
    sp = StickyPartitioner(batch_size=1, rng=random.Random(4))
    parts = [sp.partition(4, 1) for _ in range(4000)]
    assert all(a != b for a, b in itertools.pairwise(parts))
    counts = Counter(parts)
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 800  # ~1000 each


def test_sticky_deterministic_with_seeded_rng() -> None:
    a = StickyPartitioner(batch_size=50, rng=random.Random(42))
    b = StickyPartitioner(batch_size=50, rng=random.Random(42))
    assert [a.partition(8, 7) for _ in range(500)] == [b.partition(8, 7) for _ in range(500)]


def test_sticky_single_partition() -> None:
    sp = StickyPartitioner(batch_size=10, rng=random.Random(5))
    assert {sp.partition(1, 7) for _ in range(100)} == {0}


def test_sticky_zero_byte_records_stick() -> None:
    sp = StickyPartitioner(batch_size=10, rng=random.Random(6))
    assert len({sp.partition(6, 0) for _ in range(100)}) == 1


def test_sticky_topic_grows() -> None:
    sp = StickyPartitioner(batch_size=10, rng=random.Random(7))
    first = sp.partition(2, 1)
    # The current partition stays valid after growth: keep it until the batch is full.
    assert [sp.partition(10, 1) for _ in range(9)] == [first] * 9
    parts = [sp.partition(10, 10) for _ in range(200)]
    assert max(parts) >= 2  # new partitions are used after switches
    assert all(0 <= p < 10 for p in parts)


def test_sticky_topic_shrinks_or_count_drops() -> None:
    # Find a seed whose first choice is a partition that will no longer exist.
    for seed in range(100):
        sp = StickyPartitioner(batch_size=1000, rng=random.Random(seed))
        if sp.partition(10, 1) >= 5:
            break
    else:
        pytest.fail("no seed picked a partition >= 5")
    p = sp.partition(3, 1)
    assert 0 <= p < 3
    assert sp.partition(3, 1) == p  # and it sticks to the new choice


def test_sticky_thread_safety() -> None:
    # 1-byte records and batch size 1000: if accounting is atomic, every stint is exactly
    # 1000 records, so every partition's total is a multiple of 1000.
    sp = StickyPartitioner(batch_size=1000)
    per_thread = 5000
    results: list[list[int]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def work(out: list[int]) -> None:
        barrier.wait()
        for _ in range(per_thread):
            out.append(sp.partition(6, 1))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter(p for out in results for p in out)
    assert sum(counts.values()) == 8 * per_thread
    assert set(counts) <= set(range(6))
    assert all(c % 1000 == 0 for c in counts.values()), counts


def test_sticky_default_batch_size() -> None:
    assert StickyPartitioner().batch_size == 16384


@pytest.mark.parametrize("batch_size", [0, -5, True, 1.5, "16384"])
def test_sticky_rejects_bad_batch_size(batch_size: object) -> None:
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        StickyPartitioner(batch_size=batch_size)  # type: ignore[arg-type]


def test_sticky_rejects_bad_arguments() -> None:
    sp = StickyPartitioner()
    with pytest.raises(InvalidArgumentError, match="num_partitions"):
        sp.partition(0, 10)
    with pytest.raises(InvalidArgumentError, match="nbytes"):
        sp.partition(3, -1)
    assert 0 <= sp.partition(3, 1) < 3  # still usable
