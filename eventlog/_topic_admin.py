"""Topic administration on a Log: create, list, describe, alter, grow and delete topics.

A mixin of :class:`eventlog.Log` (kept apart so each module stays one concern), like the
group administration in ``_group_admin``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._catalog import (
    NO_PASS,
    Catalog,
    PartitionState,
    TopicInfo,
    state_key,
)
from ._clock import now_ms
from ._compaction import finish_pending
from ._errors import (
    InvalidArgumentError,
    InvalidConfigError,
    InvalidTopicNameError,
    TopicExistsError,
)
from ._group_admin import forget_topic_offsets
from ._idempotence import forget_topic as forget_producers
from ._keyindex import KeyIndex, build_index, drop_tombstones
from ._logbase import LogBase
from ._records import (
    PartitionInfo,
    TopicDescription,
)
from ._topics import (
    DEFAULT_CONFIG,
    TopicConfig,
    parse_config,
    topic_collision_key,
    validate_topic_name,
)


def _merge_config(config: object, configs: dict[str, object]) -> dict[str, object]:
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise InvalidConfigError(
            f"config must be a mapping of config keys to values, like "
            f"{{'retention.ms': 3600000}}; got {type(config).__name__}"
        )
    merged: dict[str, object] = dict(config)
    for key in configs:
        if key in merged or key.replace("_", ".") in merged:
            raise InvalidConfigError(
                f"config key {key!r} is given twice (in config= and as a keyword)", key=key
            )
    merged.update(configs)
    # None means "the default" (like deleting a config in Kafka).
    defaults = DEFAULT_CONFIG.to_dict()
    for key, value in merged.items():
        if value is None and isinstance(key, str) and key.replace("_", ".") in defaults:
            merged[key] = defaults[key.replace("_", ".")]
    return merged


def _check_int(name: str, value: object, low: int, high: int, allowed: str) -> int:
    if type(value) is not int:
        if isinstance(value, int) and not isinstance(value, bool):
            value = int(value)
        else:
            raise InvalidArgumentError(
                f"{name} must be an integer {allowed}; got {type(value).__name__} {value!r}"
            )
    assert isinstance(value, int)
    if not low <= value <= high:
        raise InvalidArgumentError(f"{name} must be {allowed}; got {value}")
    return value


class TopicAdmin(LogBase):
    """Topic administration methods of :class:`eventlog.Log`."""

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        config: Mapping[str, object] | None = None,
        exist_ok: bool = False,
        **configs: object,
    ) -> TopicDescription:
        """Create a topic.

        Args:
            name: topic name: 1-249 characters of ``[a-zA-Z0-9._-]``, not ``.`` or ``..``.
            partitions: number of partitions (1 to 10,000).
            config: topic configuration with Kafka's names (``{"retention.ms": 3600000}``).
            exist_ok: when the topic already exists, return it instead of raising.
            **configs: configuration as keyword arguments (``retention_ms=3600000``).

        Returns:
            The new topic's description.

        Raises:
            InvalidTopicNameError, InvalidConfigError, InvalidArgumentError: bad arguments.
            TopicExistsError: the topic exists (and ``exist_ok`` is false).
        """
        self._check()
        validate_topic_name(name)
        partitions = _check_int("partitions", partitions, 1, 10_000, "between 1 and 10000")
        merged = _merge_config(config, configs)
        topic_config = parse_config(merged)
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def create(txn: Any) -> bool:
            existing = txn.get(name.encode(), db=topics)
            if existing is not None:
                if exist_ok:
                    return False
                raise TopicExistsError(f"topic {name!r} already exists", topic=name)
            collision = topic_collision_key(name)
            for other in txn.cursor(db=topics).iternext(values=False):
                other_name = bytes(other).decode()
                if topic_collision_key(other_name) == collision:
                    raise InvalidTopicNameError(
                        f"topic name {name!r} collides with existing topic {other_name!r}: "
                        f"as in Kafka, names that differ only in '.' versus '_' cannot both "
                        f"exist",
                        topic=name,
                    )
            topic_id = int(bytes(txn.get(b"next_topic_id", db=meta)))
            txn.put(b"next_topic_id", str(topic_id + 1).encode(), db=meta)
            info = TopicInfo(
                name=name,
                topic_id=topic_id,
                partitions=partitions,
                config=topic_config,
                created_ms=now_ms(),
            )
            txn.put(name.encode(), info.pack(), db=topics)
            empty = PartitionState().pack()
            for p in range(partitions):
                txn.put(state_key(topic_id, p), empty, db=self._batches_db)
            Catalog.bump(txn, meta)
            return True

        self._write(create, f"creating topic {name!r}")
        return self.describe_topic(name)

    def list_topics(self) -> list[str]:
        """The names of all topics, sorted."""
        self._check()
        return self._topic_names()

    def describe_topic(self, name: str) -> TopicDescription:
        """A topic's id, configuration and per-partition offsets and sizes.

        Raises:
            TopicNotFoundError: no such topic.
        """
        self._check()

        def describe(txn: Any) -> TopicDescription:
            info = self._info(txn, name)
            parts = tuple(
                PartitionInfo(
                    p, st.log_start, st.next_offset, st.size_bytes, st.batches, st.max_timestamp
                )
                for p, st in enumerate(self._reader.states(txn, info))
            )
            return TopicDescription(
                name=name,
                topic_id=info.topic_id,
                config=info.config.to_dict(),
                partitions=parts,
                created_ms=info.created_ms,
            )

        return self._storage.read(describe, f"describing topic {name!r}")

    def topic_config(self, name: str) -> TopicConfig:
        """A topic's configuration as a :class:`TopicConfig`.

        Raises:
            TopicNotFoundError: no such topic.
        """
        self._check()
        return self._storage.read(
            lambda txn: self._info(txn, name).config, f"reading topic {name!r}"
        )

    def alter_topic(
        self, name: str, config: Mapping[str, object] | None = None, **configs: object
    ) -> TopicDescription:
        """Change some of a topic's configuration; unspecified keys keep their values.

        Args:
            name: the topic name.
            config: keys in Kafka spelling (``{"retention.ms": 3600000}``); a value of None
                resets that key to its default.
            **configs: the same as keyword arguments (``retention_ms=3600000``).

        Raises:
            TopicNotFoundError: no such topic.
            InvalidConfigError: an unknown key or a bad value (nothing is changed).
        """
        self._check()
        validate_topic_name(name)
        merged = _merge_config(config, configs)
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def alter(txn: Any) -> None:
            info = self._info(txn, name, writing=True)
            new_config = parse_config(merged, base=info.config)
            self._reindex(txn, info, new_config)
            txn.put(
                name.encode(),
                TopicInfo(
                    name=name,
                    topic_id=info.topic_id,
                    partitions=info.partitions,
                    config=new_config,
                    created_ms=info.created_ms,
                ).pack(),
                db=topics,
            )
            Catalog.bump(txn, meta)

        self._write(alter, f"altering topic {name!r}")
        return self.describe_topic(name)

    def _reindex(self, txn: Any, info: TopicInfo, new: TopicConfig) -> None:
        """Start or stop keeping the key index when the cleanup policy or ``key_index``
        changes (in the altering transaction: indexing the stored records of a large topic
        holds other writers for as long as it takes)."""
        old = info.config
        was = old.compacted or old.key_index
        will = new.compacted or new.key_index
        tid = info.topic_id
        if was and not will:
            KeyIndex(self._dbs).drop(txn, tid)
        elif will and not was:
            for p in range(info.partitions):
                state = self._reader.state(txn, info, p)
                build_index(txn, self._dbs, tid, p, state.log_start, info.name)
        if old.compacted and not new.compacted:
            for p in range(info.partitions):
                state = self._reader.state(txn, info, p)
                if state.compacting:
                    # The batch the pass stopped inside loses now what the pass found
                    # obsolete in it (their index entries are gone already).
                    finish_pending(txn, self._dbs, info, p, state)
                    state.pass_pos = NO_PASS  # a later pass starts afresh
                    txn.put(state_key(tid, p), state.pack(), db=self._batches_db)
            drop_tombstones(txn, self._dbs[b"tombstones"], tid, None, 0)

    def create_partitions(self, name: str, total: int) -> TopicDescription:
        """Grow a topic to ``total`` partitions (like Kafka, partitions are never removed).

        Existing records stay where they are; keyed records appended from now on may map
        to different partitions than before (as in Kafka).

        Raises:
            TopicNotFoundError: no such topic.
            InvalidArgumentError: ``total`` is not larger than the current count.
        """
        self._check()
        validate_topic_name(name)
        total = _check_int("total", total, 1, 10_000, "between 1 and 10000")
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def grow(txn: Any) -> None:
            info = self._info(txn, name, writing=True)
            if total <= info.partitions:
                raise InvalidArgumentError(
                    f"topic {name!r} has {info.partitions} partitions; the new total must be "
                    f"larger (partitions can be added, never removed); got {total}",
                    topic=name,
                )
            empty = PartitionState().pack()
            for p in range(info.partitions, total):
                txn.put(state_key(info.topic_id, p), empty, db=self._batches_db)
            txn.put(
                name.encode(),
                TopicInfo(
                    name=name,
                    topic_id=info.topic_id,
                    partitions=total,
                    config=info.config,
                    created_ms=info.created_ms,
                ).pack(),
                db=topics,
            )
            Catalog.bump(txn, meta)

        self._write(grow, f"adding partitions to topic {name!r}")
        return self.describe_topic(name)

    def delete_topic(self, name: str) -> None:
        """Delete a topic and all its records. A topic re-created with the same name starts
        empty (topic ids are never reused).

        Raises:
            TopicNotFoundError: no such topic.
        """
        self._check()
        validate_topic_name(name)
        meta = self._dbs[b"meta"]
        topics = self._dbs[b"topics"]

        def delete(txn: Any) -> None:
            info = self._info(txn, name, writing=True)
            prefix = info.topic_id.to_bytes(4, "big")
            for db in (self._batches_db, self._dbs[b"timeindex"]):
                cursor = txn.cursor(db=db)
                if cursor.set_range(prefix):
                    while bytes(cursor.key()[:4]) == prefix:
                        if not cursor.delete():
                            break
            KeyIndex(self._dbs).drop(txn, info.topic_id)
            drop_tombstones(txn, self._dbs[b"tombstones"], info.topic_id, None, 0)
            forget_producers(txn, self._dbs[b"producers"], info.topic_id)
            txn.delete(name.encode(), db=topics)
            forget_topic_offsets(txn, self._dbs, info.topic_id)
            Catalog.bump(txn, meta)

        self._write(delete, f"deleting topic {name!r}")
