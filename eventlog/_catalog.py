"""Key layouts of the sub-databases, partition state, and the topic catalog.

Every key is big-endian so that LMDB's byte order is numeric order (DESIGN.md section 3).
Topic ids, not names, appear in data keys: deleting and re-creating a topic gives it a new
id, so old records can never resurface under the new topic.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final

import attrs

from ._errors import (
    CorruptLogError,
    EventLogError,
    InvalidConfigError,
    TopicNotFoundError,
    UnsupportedFormatError,
)
from ._topics import TopicConfig, validate_topic_name

BATCH_KEY: Final = struct.Struct(">IIQ")  # topic id, partition, base offset
TIME_KEY: Final = struct.Struct(">IIQQ")  # topic id, partition, max timestamp so far, base
# log start offset, next offset, bytes, batch count, max timestamp, cleaner position,
# bytes appended since the last time-index entry
_STATE_V1: Final = struct.Struct(">QQQQqQQ")
# ... then the compaction counters: dirty bytes, the running pass's position and its end
PARTITION_STATE: Final = struct.Struct(">QQQQqQQQQQ")
# ``pass_pos`` when no compaction pass is running.
NO_PASS: Final = (1 << 64) - 1

# A partition's state record lives in the batches sub-database, under the partition's own
# key prefix with this (never used) base offset: it sorts right after the partition's last
# batch, so an append dirties one B-tree leaf for both, and a durable commit writes fewer
# pages (each extra sub-database touched cost ~100 us per fsync'd commit, measured).
STATE_OFFSET: Final = (1 << 64) - 1

# A time-index entry at most every this many bytes appended (Kafka's index.interval.bytes
# is 4 KiB, but Kafka scans raw segment bytes from an entry; here a lookup skips batches on
# their checksummed headers and decodes only the batch holding the answer, so a sparser
# index costs little and keeps the index page out of almost every commit).
TIME_INDEX_INTERVAL: Final = 1 << 20
# ... where each batch also counts as this many bytes: at most 256 batches per entry.
TIME_INDEX_BATCH_WEIGHT: Final = 4096


def state_key(topic_id: int, partition: int) -> bytes:
    """The key of a partition's state record (in the batches sub-database)."""
    return BATCH_KEY.pack(topic_id, partition, STATE_OFFSET)


MAX_OFFSET: Final = (1 << 63) - 1
MAX_TIMESTAMP: Final = (1 << 63) - 1


@attrs.define(slots=True)
class PartitionState:
    """Mutable per-partition counters, stored in the ``batches`` sub-database under
    ``state_key()`` (right after the partition's last batch)."""

    log_start: int = 0
    next_offset: int = 0
    size_bytes: int = 0
    batches: int = 0
    max_timestamp: int = -1
    # Compaction (``_compaction.py``): records below ``cleaner_offset`` have been through a
    # completed pass ("clean"); ``dirty_bytes`` counts the bytes appended at or above it
    # that no pass has reached yet (Kafka's dirty section, for min.cleanable.dirty.ratio).
    cleaner_offset: int = 0
    index_bytes: int = 0
    dirty_bytes: int = 0
    # The running compaction pass: the offset it continues from (NO_PASS: none runs) and
    # the first offset it leaves alone (fixed when it starts; min.compaction.lag.ms).
    pass_pos: int = NO_PASS
    pass_end: int = 0

    @property
    def compacting(self) -> bool:
        """Whether a compaction pass is under way."""
        return self.pass_pos != NO_PASS

    @property
    def was_compacted(self) -> bool:
        """Whether compaction ever ran here (so offsets may have gaps)."""
        return self.cleaner_offset > 0 or self.pass_pos != NO_PASS

    def pack(self) -> bytes:
        return PARTITION_STATE.pack(
            self.log_start,
            self.next_offset,
            self.size_bytes,
            self.batches,
            self.max_timestamp,
            self.cleaner_offset,
            self.index_bytes,
            self.dirty_bytes,
            self.pass_pos,
            self.pass_end,
        )

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> PartitionState:
        if len(data) == PARTITION_STATE.size:
            return cls(*PARTITION_STATE.unpack(data))
        if len(data) == _STATE_V1.size:
            # Written before compaction existed: everything is dirty, no pass runs.
            start, end, size, batches, max_ts, cleaner, index_bytes = _STATE_V1.unpack(data)
            return cls(start, end, size, batches, max_ts, cleaner, index_bytes, size, NO_PASS, 0)
        raise CorruptLogError("partition state record has the wrong size")


@attrs.frozen(slots=True)
class TopicInfo:
    """A topic as stored in the ``topics`` sub-database."""

    name: str
    topic_id: int
    partitions: int
    config: TopicConfig
    created_ms: int

    def pack(self) -> bytes:
        return json.dumps(
            {
                "id": self.topic_id,
                "partitions": self.partitions,
                "config": self.config.to_dict(),
                "created_ms": self.created_ms,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def unpack(cls, name: str, data: bytes | memoryview) -> TopicInfo:
        try:
            raw = json.loads(bytes(data))
            return cls(
                name=name,
                topic_id=int(raw["id"]),
                partitions=int(raw["partitions"]),
                config=TopicConfig.from_dict(raw["config"]),
                created_ms=int(raw["created_ms"]),
            )
        except InvalidConfigError as exc:
            raise UnsupportedFormatError(
                f"topic {name!r} was configured by a newer version of eventlog ({exc.message});"
                f" upgrade eventlog to use this log",
                topic=name,
            ) from None
        except EventLogError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptLogError(
                f"the stored definition of topic {name!r} is unreadable ({exc})", topic=name
            ) from None


class Catalog:
    """A cache of topic definitions, shared by the Logs of one environment.

    Any change to topics bumps the ``schema`` counter in the meta sub-database (in the same
    transaction), so one ``get`` per transaction tells whether the cache is still valid,
    including after another process created, altered or deleted a topic.
    """

    def __init__(self, meta_db: Any, topics_db: Any) -> None:
        self._meta_db = meta_db
        self._topics_db = topics_db
        # (schema counter, definitions read at that schema), swapped as one value so that a
        # thread never files a definition under another schema's dictionary.
        self._state: tuple[bytes | None, dict[str, TopicInfo]] = (None, {})

    def get(self, txn: Any, name: str, *, writing: bool = False) -> TopicInfo:
        """The topic's definition as of ``txn``; raises TopicNotFoundError.

        ``writing``: ``txn`` is a write transaction. What it sees may never commit (an
        earlier operation of the same group may have changed topics), so it only uses the
        cache when its schema is the cached one, and never replaces the cache.
        """
        schema = bytes(txn.get(b"schema", db=self._meta_db) or b"")
        cached_schema, topics = self._state
        cache: dict[str, TopicInfo] | None = topics
        if cached_schema != schema:
            if writing:
                cache = None
            else:
                cache = {}
                self._state = (schema, cache)
        elif (info := topics.get(name)) is not None:
            return info
        validate_topic_name(name)
        raw = txn.get(name.encode(), db=self._topics_db)
        if raw is None:
            raise TopicNotFoundError(
                f"topic {name!r} does not exist; create it with create_topic()", topic=name
            )
        info = TopicInfo.unpack(name, raw)
        if cache is not None:
            cache[name] = info
        return info

    def cached(self, name: str) -> TopicInfo | None:
        """The cached definition, possibly stale (re-check inside a transaction)."""
        return self._state[1].get(name)

    @staticmethod
    def bump(txn: Any, meta_db: Any) -> None:
        """Mark the catalog changed (call inside the writing transaction)."""
        current = int(bytes(txn.get(b"schema", db=meta_db) or b"0"))
        txn.put(b"schema", str(current + 1).encode(), db=meta_db)
