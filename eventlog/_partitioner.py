"""Kafka-compatible partitioning.

A keyed record goes to ``to_positive(murmur2(key)) % num_partitions``, bit-for-bit what
Kafka's Java client computes, so a key lands on the same partition number here as it would
on a Kafka topic with the same partition count. Records without a key use a
:class:`StickyPartitioner`, which fills one partition for about a batch's worth of bytes
before moving on (Kafka's KIP-480/KIP-794 behaviour), so that null-key appends form large
batches instead of being sprayed one record per partition.
"""

from __future__ import annotations

import random
import struct
import threading
from collections.abc import Callable
from typing import TypeAlias

from eventlog._errors import InvalidArgumentError

__all__ = [
    "PartitionerFn",
    "StickyPartitioner",
    "default_partition",
    "murmur2",
    "to_positive",
]

PartitionerFn: TypeAlias = Callable[[bytes | None, int], int]
"""A custom partitioner: ``(key, num_partitions) -> partition``.

``key`` is the serialized key (``None`` for a record without one); the result must lie in
``0 .. num_partitions - 1``.
"""

# Bound struct methods that unpack n little-endian u32 chunks at once, for the key lengths
# that matter (up to 256 bytes); building the format string per call would cost more than
# hashing a short key.
_MAX_PRECOMPILED_CHUNKS = 64
_UNPACKERS = tuple(struct.Struct(f"<{n}I").unpack_from for n in range(_MAX_PRECOMPILED_CHUNKS + 1))


def _murmur2_unsigned(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` as an unsigned 32-bit int (see :func:`murmur2`)."""
    # The constants are written as literals rather than module globals: LOAD_CONST is the
    # cheapest load in CPython, and this loop is all loads and arithmetic.
    # m = 0x5BD1E995, r = 24, seed = 0x9747B28C. Python ints do not wrap, so products are
    # masked back to 32 bits; masking after the XOR (rather than each product) is the same
    # value with one operation fewer, because masking distributes over XOR.
    length = len(data)
    h = 0x9747B28C ^ length
    nchunks = length >> 2
    if nchunks:
        unpack = (
            _UNPACKERS[nchunks]
            if nchunks <= _MAX_PRECOMPILED_CHUNKS
            else struct.Struct(f"<{nchunks}I").unpack_from
        )
        for k in unpack(data):
            k = k * 0x5BD1E995 & 0xFFFFFFFF
            h = (h * 0x5BD1E995 ^ (k ^ k >> 24) * 0x5BD1E995) & 0xFFFFFFFF
    tail = length & 3
    if tail:
        # Java's switch falls through: 3 bytes mix in b2, b1 and b0; 2 bytes b1 and b0.
        i = length - tail
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h = (h ^ data[i]) * 0x5BD1E995 & 0xFFFFFFFF
    h ^= h >> 13
    h = h * 0x5BD1E995 & 0xFFFFFFFF
    return h ^ h >> 15


def murmur2(data: bytes) -> int:
    """Return Kafka's murmur2 hash of ``data``, exactly as Java's ``Utils.murmur2`` does.

    Args:
        data: the bytes to hash (any bytes-like object; an empty one is hashed like any
            other).

    Returns:
        The hash as a signed 32-bit int (``-2**31 .. 2**31 - 1``), the value Java returns.
    """
    # Reinterpret the unsigned result as two's complement without a branch.
    return (_murmur2_unsigned(data) ^ 0x80000000) - 0x80000000


def to_positive(x: int) -> int:
    """Return ``x`` with its sign bit cleared, like Kafka's ``Utils.toPositive``.

    Not ``abs()``: Kafka masks, so ``-2**31`` maps to 0 and a negative hash maps to a
    different value than its absolute value.

    Args:
        x: a signed 32-bit int, typically a :func:`murmur2` result.
    """
    return x & 0x7FFFFFFF


# Keys repeat in most workloads (user ids, aggregate ids), and a dict lookup is more than
# ten times cheaper than hashing a 16-byte key in Python. The cache maps key -> positive
# hash, independent of the partition count, so a topic that grows keeps its hits. It is
# bounded by being emptied when full: cheaper than LRU bookkeeping on every hit, and a
# working set that fits still ends up cached. Only short keys are kept so that the cache
# cannot pin much memory (at most ~8192 * 256 bytes of keys).
_CACHE_MAX_ENTRIES = 8192
_CACHE_MAX_KEY_LEN = 256
_hash_cache: dict[bytes, int] = {}


def default_partition(key: bytes, num_partitions: int) -> int:
    """Return Kafka's default partition for a non-null key.

    ``to_positive(murmur2(key)) % num_partitions``: the same partition Kafka's Java
    producer picks for this key and partition count.

    Args:
        key: the serialized key.
        num_partitions: the topic's partition count, at least 1.

    Raises:
        InvalidArgumentError: ``num_partitions`` is less than 1.
    """
    if num_partitions < 1:
        raise InvalidArgumentError(
            f"num_partitions must be an integer >= 1; got {num_partitions!r}"
        )
    # `type(...) is bytes`: bytearray is unhashable, and caching a memoryview would pin
    # the caller's buffer.
    if type(key) is bytes and len(key) <= _CACHE_MAX_KEY_LEN:
        h = _hash_cache.get(key)
        if h is None:
            h = _murmur2_unsigned(key) & 0x7FFFFFFF
            if len(_hash_cache) >= _CACHE_MAX_ENTRIES:
                _hash_cache.clear()
            _hash_cache[key] = h
        return h % num_partitions
    return (_murmur2_unsigned(key) & 0x7FFFFFFF) % num_partitions


class StickyPartitioner:
    """Chooses partitions for records without a key, the way Kafka's producer does.

    It sticks to one partition until about ``batch_size`` bytes have been sent to it, then
    switches to another partition chosen at random (never the same one again when there is
    more than one). Sticking makes null-key appends form large batches; switching spreads
    them over all partitions in the long run. Use one instance per topic.

    Thread-safe. The partition count may change between calls (a topic that grew): the
    current partition is kept while it is still valid, and new partitions become
    candidates at the next switch.
    """

    __slots__ = ("_batch_size", "_current", "_lock", "_rng", "_sent")

    def __init__(self, batch_size: int = 16384, rng: random.Random | None = None) -> None:
        """Create a sticky partitioner.

        Args:
            batch_size: bytes to send to a partition before switching (Kafka's
                ``batch.size``, 16 KiB by default); at least 1.
            rng: the random source for choosing partitions, for deterministic tests;
                a private ``random.Random()`` by default.

        Raises:
            InvalidArgumentError: ``batch_size`` is not an integer >= 1.
        """
        if type(batch_size) is not int or batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        self._batch_size = batch_size
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._current = -1  # no partition chosen yet
        self._sent = 0  # bytes accounted to the current partition

    @property
    def batch_size(self) -> int:
        """Bytes sent to one partition before switching to another."""
        return self._batch_size

    def partition(self, num_partitions: int, nbytes: int) -> int:
        """Return the partition for a null-key record of ``nbytes`` and account it.

        The record that reaches ``batch_size`` still goes to the current partition; the
        next call switches.

        Args:
            num_partitions: the topic's current partition count, at least 1.
            nbytes: the record's size in bytes, at least 0.

        Raises:
            InvalidArgumentError: ``num_partitions`` < 1 or ``nbytes`` < 0.
        """
        if num_partitions < 1:
            raise InvalidArgumentError(
                f"num_partitions must be an integer >= 1; got {num_partitions!r}"
            )
        if nbytes < 0:
            raise InvalidArgumentError(f"nbytes must be an integer >= 0; got {nbytes!r}")
        with self._lock:
            current = self._current
            if current < 0 or current >= num_partitions:
                # First use, or the topic has fewer partitions than before.
                current = self._rng.randrange(num_partitions)
                self._current = current
                self._sent = 0
            elif self._sent >= self._batch_size:
                if num_partitions > 1:
                    # Uniform over the other partitions: draw from n - 1 slots and skip
                    # over the current one.
                    nxt = self._rng.randrange(num_partitions - 1)
                    current = nxt + 1 if nxt >= current else nxt
                    self._current = current
                self._sent = 0
            self._sent += nbytes
            return current
