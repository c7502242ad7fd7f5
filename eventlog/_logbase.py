"""What every part of :class:`eventlog.Log` shares: its storage handles and the checks
every call makes first.

Log is assembled from mixins of one concern each (topic, group and retention
administration, the integrity check); they all derive from this class, so each of them
finds these members defined — no placeholders to be overridden.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from . import _storage
from ._catalog import Catalog, TopicInfo
from ._errors import LogClosedError, ReadOnlyLogError
from ._keyindex import KeyIndex
from ._read import Reader
from ._topics import validate_topic_name

__all__ = ["LogBase"]

T = TypeVar("T")


class LogBase:
    """The state and helpers of a Log handle (set by ``Log.__init__``)."""

    _readonly: bool
    _closed: bool
    _storage: _storage.Storage
    _catalog: Catalog
    _reader: Reader
    _dbs: dict[bytes, Any]
    _batches_db: Any
    # None only on a read-only open of a log written before the key index existed.
    _keyindex: KeyIndex | None

    def _check(self) -> None:
        if self._closed:
            raise LogClosedError(f"the log {self._storage.path!r} is closed")
        self._storage.check_usable()

    def _write(self, fn: Callable[[Any], T], what: str, *, exclusive: bool = False) -> T:
        if self._readonly:
            raise ReadOnlyLogError(f"{what}: the log {self._storage.path!r} is open read-only")
        return self._storage.write(fn, what, exclusive=exclusive)

    def _info(self, txn: Any, topic: str, *, writing: bool = False) -> TopicInfo:
        if type(topic) is not str:
            validate_topic_name(topic)
        return self._catalog.get(txn, topic, writing=writing)

    def _topic_names(self) -> list[str]:
        """The names of all topics, sorted (in a short read transaction)."""
        topics = self._dbs[b"topics"]
        return self._storage.read(
            lambda txn: [bytes(k).decode() for k in txn.cursor(db=topics).iternext(values=False)],
            "listing topics",
        )
