"""Records as JSON lines: the exchange format of ``eventlog.testing`` (seeding and golden
files) and of exports.

One JSON object per line::

    {"topic": "orders", "partition": 0, "offset": 3, "timestamp": 1700000000000,
     "key": "ABC123", "value": "{\\"id\\": 1}", "headers": [["source", "web"]]}

Keys, values and header values are bytes in the log; in JSON each is ``null`` (None), a
string (the bytes decoded as UTF-8) or ``{"base64": "..."}`` (bytes that are not UTF-8).
When loading, any other JSON value (an object, a list, a number) is accepted as a value
and stored as its compact JSON encoding, so hand-written seed files can hold JSON
documents directly. ``topic``, ``partition``, ``offset`` and ``timestamp`` are optional
when loading (the partitioner chooses a partition; offsets are assigned by the log).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._errors import InvalidRecordError
from ._records import NewRecord, Record

__all__ = ["bytes_to_json", "json_to_bytes", "parse_line", "record_to_json"]

Codec = Callable[[Any], Any]


def bytes_to_json(data: bytes | None) -> Any:
    """A key, value or header value as JSON: null, text, or ``{"base64": ...}``."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def json_to_bytes(item: Any, what: str) -> bytes | None:
    """The inverse of :func:`bytes_to_json`; other JSON values become their encoding."""
    if item is None:
        return None
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, dict) and set(item) == {"base64"} and isinstance(item["base64"], str):
        try:
            return base64.b64decode(item["base64"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRecordError(f"{what}: invalid base64 data") from None
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_to_json(
    record: Record,
    *,
    key_deserializer: Codec | None = None,
    value_deserializer: Codec | None = None,
) -> dict[str, Any]:
    """A record as a JSON-ready dict (deserializers, when given, turn key/value bytes into
    JSON values, e.g. ``eventlog.serde.json`` for readable golden files)."""
    key: Any = record.key
    value: Any = record.value
    key = bytes_to_json(key) if key_deserializer is None or key is None else key_deserializer(key)
    if value_deserializer is None or value is None:
        value = bytes_to_json(value)
    else:
        value = value_deserializer(value)
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": key,
        "value": value,
        "headers": [[name, bytes_to_json(hvalue)] for name, hvalue in record.headers],
    }


def parse_line(
    obj: Any,
    where: str,
    *,
    key_serializer: Codec | None = None,
    value_serializer: Codec | None = None,
) -> tuple[str | None, NewRecord]:
    """(topic or None, record to append) from one parsed JSON line.

    Raises:
        InvalidRecordError: the object is not a record (the message names ``where``).
    """
    if not isinstance(obj, dict):
        raise InvalidRecordError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    unknown = set(obj) - {"topic", "partition", "offset", "timestamp", "key", "value", "headers"}
    if unknown:
        raise InvalidRecordError(
            f"{where}: unknown field(s) {sorted(unknown)}; a record has topic, partition, "
            f"offset, timestamp, key, value and headers"
        )
    topic = obj.get("topic")
    if topic is not None and not isinstance(topic, str):
        raise InvalidRecordError(f"{where}: topic must be a string")
    for name in ("partition", "timestamp"):
        field = obj.get(name)
        if field is not None and (type(field) is not int or field < 0):
            raise InvalidRecordError(f"{where}: {name} must be an integer >= 0; got {field!r}")
    key = obj.get("key")
    value = obj.get("value")
    key = (
        key_serializer(key)
        if key_serializer is not None and key is not None
        else (json_to_bytes(key, f"{where}: key"))
    )
    if value_serializer is not None and value is not None:
        value = value_serializer(value)
    else:
        value = json_to_bytes(value, f"{where}: value")
    headers_in = obj.get("headers") or []
    if not isinstance(headers_in, list):
        raise InvalidRecordError(f"{where}: headers must be a list of [name, value] pairs")
    headers = []
    for pair in headers_in:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise InvalidRecordError(
                f"{where}: each header must be a [name, value] pair with a string name; got "
                f"{pair!r}"
            )
        headers.append((pair[0], json_to_bytes(pair[1], f"{where}: header {pair[0]!r}")))
    return topic, NewRecord(
        value,
        key=key,
        partition=obj.get("partition"),
        timestamp=obj.get("timestamp"),
        headers=headers or None,
    )


def read_lines(lines: Iterable[str], source: str) -> Iterator[tuple[str, Any]]:
    """(where, parsed object) of each non-blank line."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRecordError(f"{where}: not valid JSON ({exc.msg})") from None
