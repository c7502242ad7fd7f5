"""The read path: finding and decoding batches, building records, the time index."""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial
from itertools import repeat
from typing import Any, Final

from ._catalog import BATCH_KEY, STATE_OFFSET, TIME_KEY, PartitionState, TopicInfo, state_key
from ._codec import DecodedBatch, batch_crc, decode_batch, read_header, verified_header
from ._errors import CorruptLogError, InvalidArgumentError, PartitionNotFoundError
from ._records import Headers, Record, RecordColumns

_new_record = partial(tuple.__new__, Record)
_EMPTY: Headers = ()

# Decoded batches kept per environment, so that paging through a batch decodes it once.
_CACHE_BYTES: Final = 8 << 20


class BatchCache:
    """A small, bounded cache of decoded batches (oldest evicted first), keyed by (topic id,
    partition, base offset) and validated by the stored CRC, so a batch rewritten in place
    is never served stale. Paging through a batch in several reads decodes it once."""

    def __init__(self, max_bytes: int = _CACHE_BYTES) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, int, int], tuple[int, DecodedBatch, int]] = (
            OrderedDict()
        )
        self._bytes = 0
        self._max = max_bytes

    def get(self, key: tuple[int, int, int], crc: int) -> DecodedBatch | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != crc:
            return None
        return entry[1]

    def put(self, key: tuple[int, int, int], crc: int, batch: DecodedBatch, size: int) -> None:
        # What the decoded batch holds in memory: its bytes (``size``, the payload before
        # compression) plus roughly 100 bytes of Python objects per record.
        cost = size + 100 * batch.count
        if cost > self._max // 4:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[key] = (crc, batch, cost)
            self._bytes += cost
            while self._bytes > self._max and self._entries:
                _k, (_c, _b, c) = self._entries.popitem(last=False)
                self._bytes -= c


class Reader:
    """Reads partitions inside a caller's read transaction."""

    def __init__(self, dbs: dict[bytes, Any], cache: BatchCache) -> None:
        self._dbs = dbs
        self._batches_db = dbs[b"batches"]
        self._batch_cache = cache

    def states(self, txn: Any, info: TopicInfo) -> list[PartitionState]:
        return [self._load_state(txn, info, p) for p in range(info.partitions)]

    def _load_state(self, txn: Any, info: TopicInfo, partition: int) -> PartitionState:
        raw = txn.get(state_key(info.topic_id, partition), db=self._batches_db)
        if raw is None:
            raise CorruptLogError(
                f"partition {partition} of topic {info.name!r} has no state",
                topic=info.name,
                partition=partition,
            )
        return PartitionState.unpack(raw)

    def state(self, txn: Any, info: TopicInfo, partition: int) -> PartitionState:
        if type(partition) is not int or isinstance(partition, bool):
            raise InvalidArgumentError(
                f"partition must be an integer; got {type(partition).__name__} {partition!r}",
                topic=info.name,
            )
        if not 0 <= partition < info.partitions:
            raise PartitionNotFoundError(
                f"partition {partition} does not exist; topic {info.name!r} has partitions "
                f"0..{info.partitions - 1}",
                topic=info.name,
                partition=partition,
            )
        return self._load_state(txn, info, partition)

    def batch_at(
        self, txn: Any, cursor: Any, info: TopicInfo, partition: int, offset: int
    ) -> DecodedBatch | None:
        """The stored batch holding ``offset``, or the first one after it, or None.

        Every batch is verified (CRC) before any of its fields is trusted: a damaged header
        must raise, never make the read skip records.
        """
        tid = info.topic_id
        found = cursor.set_range(BATCH_KEY.pack(tid, partition, offset))
        if found:
            key = cursor.key()
            t, p, base = BATCH_KEY.unpack(key)
            if (t, p) == (tid, partition) and base == offset:
                return self._decode(info, partition, base, bytes(key), cursor.value())
            moved = cursor.prev()
        else:
            moved = cursor.last()
        # The batch before may still hold `offset` (it starts below it).
        if moved:
            key = cursor.key()
            t, p, base = BATCH_KEY.unpack(key)
            if (t, p) == (tid, partition) and base != STATE_OFFSET:
                batch = self._decode(info, partition, base, bytes(key), cursor.value())
                if batch.last_offset >= offset:
                    return batch
        if not found:
            return None
        # Otherwise the first batch after `offset` (removed offsets continue there).
        cursor.set_range(BATCH_KEY.pack(tid, partition, offset))
        key = cursor.key()
        t, p, base = BATCH_KEY.unpack(key)
        if (t, p) != (tid, partition) or base == STATE_OFFSET:
            return None
        return self._decode(info, partition, base, bytes(key), cursor.value())

    @staticmethod
    def _corrupt(
        info: TopicInfo, partition: int, base: int, exc: CorruptLogError
    ) -> CorruptLogError:
        return CorruptLogError(
            f"topic {info.name!r} partition {partition}: the record batch at offset "
            f"{base} is corrupt: {exc.message}",
            topic=info.name,
            partition=partition,
            offset=base,
        )

    def _decode(
        self, info: TopicInfo, partition: int, base: int, key: bytes, value: Any
    ) -> DecodedBatch:
        cache = self._batch_cache
        try:
            crc = batch_crc(value)
        except Exception:
            crc = -1
        cache_key = (info.topic_id, partition, base)
        hit = cache.get(cache_key, crc)
        if hit is not None:
            return hit
        try:
            batch = decode_batch(key, value, base)
        except CorruptLogError as exc:
            raise self._corrupt(info, partition, base, exc) from None
        cache.put(cache_key, crc, batch, max(len(value), read_header(value)[7]))
        return batch

    def collect(
        self,
        txn: Any,
        info: TopicInfo,
        partition: int,
        offset: int,
        end: int,
        max_records: int,
        max_bytes: int | None,
        records: bool,
    ) -> list[Record] | RecordColumns:
        topic = info.name
        out: list[Record] = []
        c_off: list[int] = []
        c_ts: list[int] = []
        c_keys: list[bytes | None] = []
        c_vals: list[bytes | None] = []
        c_hdrs: list[Headers] = []
        remaining = max_records
        budget = max_bytes
        position = offset
        cursor = txn.cursor(db=self._batches_db)
        while remaining > 0 and position < end:
            batch = self.batch_at(txn, cursor, info, partition, position)
            if batch is None:
                break
            i = batch.index_of(position)
            j = min(batch.count, i + remaining)
            if budget is not None:
                j = self._bytes_cut(batch, i, j, budget, first=position == offset)
                if j == i:
                    break
                budget -= sum(
                    len(v or b"") + len(k or b"")
                    for k, v in zip(batch.keys[i:j], batch.values[i:j], strict=True)
                )
            if j > i:
                offs = batch.offsets[i:j]
                hdrs = batch.headers[i:j] if batch.headers is not None else repeat(_EMPTY, j - i)
                if records:
                    k = j - i
                    out.extend(
                        map(
                            _new_record,
                            zip(
                                repeat(topic, k),
                                repeat(partition, k),
                                offs,
                                batch.timestamps[i:j],
                                batch.keys[i:j],
                                batch.values[i:j],
                                hdrs,
                                strict=False,
                            ),
                        )
                    )
                else:
                    c_off.extend(offs)
                    c_ts.extend(batch.timestamps[i:j])
                    c_keys.extend(batch.keys[i:j])
                    c_vals.extend(batch.values[i:j])
                    c_hdrs.extend(hdrs)
                remaining -= j - i
            if j < batch.count:
                position = batch.offsets[j]
                break
            position = batch.last_offset + 1
            if budget is not None and budget <= 0:
                break
        if records:
            return out
        return RecordColumns(
            topic=topic,
            partition=partition,
            offsets=c_off,
            timestamps=c_ts,
            keys=c_keys,
            values=c_vals,
            headers=c_hdrs,
            next_offset=max(position, offset),
        )

    @staticmethod
    def _bytes_cut(batch: DecodedBatch, i: int, j: int, budget: int, first: bool) -> int:
        total = 0
        for n in range(i, j):
            size = len(batch.values[n] or b"") + len(batch.keys[n] or b"")
            if total + size > budget and not (first and n == i):
                return n
            total += size
        return j

    def offset_for_time(
        self, txn: Any, info: TopicInfo, partition: int, state: PartitionState, timestamp: int
    ) -> int | None:
        if state.max_timestamp < timestamp or state.next_offset <= state.log_start:
            return None
        # The index is sparse: start after the last entry whose running maximum is below
        # `timestamp` (every record up to its batch is older); the first qualifying record
        # comes before or in the batch of the next entry.
        tid = info.topic_id
        cursor = txn.cursor(db=self._dbs[b"timeindex"])
        start = state.log_start
        if cursor.set_range(TIME_KEY.pack(tid, partition, timestamp, 0)):
            moved = cursor.prev()
        else:
            moved = cursor.last()
        if moved:
            t, p, _ts, base = TIME_KEY.unpack(cursor.key())
            if (t, p) == (tid, partition):
                start = max(base, state.log_start)
        position = start
        bcursor = txn.cursor(db=self._batches_db)
        # The log start may lie inside a batch (delete_records): that batch comes first.
        found = self._batch_holding(bcursor, info, partition, position)
        while position < state.next_offset:
            # Batches whose largest timestamp is older are skipped on their (checksummed)
            # header alone; only the batch holding the answer is decoded.
            if found is None:
                if not bcursor.set_range(BATCH_KEY.pack(tid, partition, position)):
                    return None
                key = bytes(bcursor.key())
                t, p, base = BATCH_KEY.unpack(key)
                if (t, p) != (tid, partition) or base == STATE_OFFSET:
                    return None
                try:
                    header = verified_header(key, bcursor.value())
                except CorruptLogError as exc:
                    raise self._corrupt(info, partition, base, exc) from None
            else:
                key, base, header = found
                found = None
            if header[6] < timestamp:  # max timestamp
                position = base + header[4] + 1  # past its last offset
                continue
            batch = self._decode(info, partition, base, key, bcursor.value())
            for i in range(batch.index_of(position), batch.count):
                if batch.timestamps[i] >= timestamp:
                    return batch.offsets[i]
            # Only records below `position` (below the log start) were recent enough.
            position = batch.last_offset + 1
        return None

    def _batch_holding(
        self, cursor: Any, info: TopicInfo, partition: int, offset: int
    ) -> tuple[bytes, int, tuple[int, int, int, int, int, int, int, int, int]] | None:
        """(key, base offset, verified header) of the batch that starts below ``offset``
        and holds it, with ``cursor`` on it; None when ``offset`` starts a batch or falls
        between batches."""
        tid = info.topic_id
        if cursor.set_range(BATCH_KEY.pack(tid, partition, offset)):
            if BATCH_KEY.unpack(cursor.key())[2] == offset or not cursor.prev():
                return None
        elif not cursor.last():
            return None
        key = bytes(cursor.key())
        t, p, base = BATCH_KEY.unpack(key)
        if (t, p) != (tid, partition) or base == STATE_OFFSET:
            return None
        try:
            header = verified_header(key, cursor.value())
        except CorruptLogError as exc:
            raise self._corrupt(info, partition, base, exc) from None
        if base + header[4] < offset:
            return None
        return key, base, header
