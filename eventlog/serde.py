"""Serializers and deserializers for producer and consumer clients.

Keys and values are stored as bytes. A producer turns application objects into bytes with a
*serializer*; a consumer turns them back with a *deserializer*. Each built-in here is one
object that does both, so the same name configures both sides::

    producer = log.producer(value_serializer=eventlog.serde.json)
    consumer = log.consumer("orders", value_deserializer=eventlog.serde.json)

Built-ins:

- :data:`json`: JSON text in UTF-8, compact (no spaces), non-ASCII characters kept as
  UTF-8 rather than ``\\u`` escapes, strict (NaN and infinities are refused, as JSON has no
  such values and other languages' parsers reject them). Deserialized with ``json.loads``.
- :data:`str`: text encoded as UTF-8 (strict: invalid UTF-8 fails to deserialize).
- :data:`bytes`: no conversion; serializing accepts ``bytes``, ``bytearray`` and
  ``memoryview`` (copied, so that later changes to a mutable buffer do not change what
  is sent).

Anything else is a callable: ``value_serializer=msgpack.packb`` or
``value_deserializer=lambda data: MyEvent.parse(data)``, or a :class:`Serde` subclass that
defines both directions. Clients never pass ``None`` (a null key or a tombstone value) to a
serializer or deserializer: ``None`` stays ``None``.

Security: data read from a log is never unpickled or evaluated by eventlog; pickle, if
wanted at all, must be the application's explicit choice (and only for trusted logs).
"""

from __future__ import annotations

# This module's public names ``json``, ``str`` and ``bytes`` shadow the stdlib module and
# two builtins. Everything below therefore refers to the originals through private
# aliases (also in annotations, which mypy resolves in this module's namespace), and the
# public instances are bound at the very end.
import builtins
import json as _json
from collections.abc import Callable
from typing import Any, Final, NoReturn, cast

from ._errors import InvalidArgumentError

_str = builtins.str
_bytes = builtins.bytes

__all__ = ["Serde", "as_deserializer", "as_serializer", "bytes", "json", "str"]

Serializer = Callable[[Any], _bytes]
"""A serializer: object -> bytes."""

Deserializer = Callable[[_bytes], Any]
"""A deserializer: bytes -> object."""


class Serde:
    """A serializer and its matching deserializer, usable on both client sides.

    Subclass it for a format of your own and define :meth:`serialize` and
    :meth:`deserialize`; pass the instance as ``key_serializer`` / ``value_serializer`` to
    a producer and as ``key_deserializer`` / ``value_deserializer`` to a consumer.

    Attributes:
        name: a short name for messages and ``repr`` (``"json"`` for :data:`json`).
    """

    __slots__ = ("name",)

    def __init__(self, name: _str) -> None:
        """Create a serde called ``name`` (used in error messages)."""
        self.name = name

    def serialize(self, obj: Any) -> _bytes:
        """Turn ``obj`` into bytes (never called with None).

        Raises:
            Exception: any error means ``obj`` cannot be serialized; the producer reports
                it as a :class:`~eventlog.SerializationError` from ``send()``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define serialize()")

    def deserialize(self, data: _bytes) -> Any:
        """Turn stored bytes back into an object (never called with None).

        Raises:
            Exception: any error means the bytes cannot be read; the consumer reports it as
                a :class:`~eventlog.DeserializationError` naming the record.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define deserialize()")

    def __repr__(self) -> _str:
        return f"<{type(self).__name__} {self.name!r}>"


class _BuiltinSerde(Serde):
    """A serde defined in this module: shown and pickled as ``eventlog.serde.<name>``."""

    __slots__ = ()

    def __repr__(self) -> _str:
        return f"eventlog.serde.{self.name}"

    def __reduce__(self) -> _str:
        # Pickle by reference, so that a client configuration sent to another process (for
        # example with multiprocessing) arrives as the very same module-level object.
        return self.name


# One encoder for every call: json.dumps() with non-default options builds a new
# JSONEncoder each time, which costs more than encoding a small object. JSONEncoder keeps
# no state between calls, so sharing it between threads is safe.
_ENCODER: Final = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode_json: Final = _ENCODER.encode
_loads: Final = _json.loads


class _JsonSerde(_BuiltinSerde):
    __slots__ = ()

    def serialize(self, obj: Any) -> _bytes:
        """JSON text of ``obj`` as UTF-8 bytes (compact, non-ASCII kept, NaN refused)."""
        return _encode_json(obj).encode()

    def deserialize(self, data: _bytes) -> Any:
        """Parse JSON from ``data`` (``json.loads``)."""
        if type(data) is not _bytes:
            data = _bytes(data)
        return _loads(data)


class _StrSerde(_BuiltinSerde):
    __slots__ = ()

    def serialize(self, obj: Any) -> _bytes:
        """``obj`` (a str) encoded as UTF-8."""
        if type(obj) is not _str and not isinstance(obj, _str):
            raise TypeError(
                f"eventlog.serde.str serializes str objects; got {type(obj).__name__} "
                f"(convert it with str() first, or use another serializer)"
            )
        return obj.encode()

    def deserialize(self, data: _bytes) -> _str:
        """``data`` decoded as UTF-8 (strict)."""
        return _str(data, "utf-8")


class _BytesSerde(_BuiltinSerde):
    __slots__ = ()

    def serialize(self, obj: Any) -> _bytes:
        """``obj`` unchanged if it is bytes; a copy as bytes if bytearray or memoryview."""
        if type(obj) is _bytes:
            return obj
        if isinstance(obj, _bytes | bytearray | memoryview):
            return _bytes(obj)
        raise TypeError(
            f"eventlog.serde.bytes accepts bytes, bytearray or memoryview; got "
            f"{type(obj).__name__} (use eventlog.serde.str for text, eventlog.serde.json "
            f"for JSON-compatible objects)"
        )

    def deserialize(self, data: _bytes) -> _bytes:
        """``data`` unchanged."""
        return data if type(data) is _bytes else _bytes(data)


_ALLOWED: Final = (
    "None (keys/values are already bytes), eventlog.serde.json, eventlog.serde.str, "
    "eventlog.serde.bytes, another eventlog.serde.Serde instance, or a callable"
)


def _check_serde_argument(x: object, what: _str, direction: _str) -> NoReturn:
    """Raise InvalidArgumentError for an argument that is neither a Serde nor callable."""
    hint = ""
    if isinstance(x, _str) and x in ("json", "str", "bytes"):
        hint = f" (did you mean eventlog.serde.{x}?)"
    elif isinstance(x, type) and issubclass(x, Serde):
        hint = f" (pass an instance, {x.__name__}(...), not the class)"
    raise InvalidArgumentError(
        f"{what} must be {_ALLOWED} taking {direction}; got {type(x).__name__} {x!r}{hint}"
    )


def as_serializer(x: object, what: _str = "serializer") -> Serializer | None:
    """Normalise a serializer argument to a function ``object -> bytes``, or None.

    Args:
        x: None (keys/values must already be bytes), a :class:`Serde` (its ``serialize``
            is used), or any callable taking one object and returning bytes.
        what: the argument's name, for the error message (``"value_serializer"``).

    Returns:
        The function to call, or None for "no serialization".

    Raises:
        InvalidArgumentError: ``x`` is none of the above (a string such as ``"json"``, a
            Serde class instead of an instance, ...).
    """
    if x is None:
        return None
    if isinstance(x, Serde):
        return x.serialize
    if callable(x) and not (isinstance(x, type) and issubclass(x, Serde)):
        return cast(Serializer, x)
    _check_serde_argument(x, what, "an object and returning bytes")


def as_deserializer(x: object, what: _str = "deserializer") -> Deserializer | None:
    """Normalise a deserializer argument to a function ``bytes -> object``, or None.

    Args:
        x: None (keys/values are returned as bytes), a :class:`Serde` (its
            ``deserialize`` is used), or any callable taking bytes.
        what: the argument's name, for the error message (``"value_deserializer"``).

    Returns:
        The function to call, or None for "no deserialization".

    Raises:
        InvalidArgumentError: ``x`` is none of the above.
    """
    if x is None:
        return None
    if isinstance(x, Serde):
        return x.deserialize
    if callable(x) and not (isinstance(x, type) and issubclass(x, Serde)):
        return cast(Deserializer, x)
    _check_serde_argument(x, what, "bytes")


# The public instances, bound last: from here on, ``json``, ``str`` and ``bytes`` in this
# module's namespace are these objects, not the stdlib module and builtins.
json: Final[Serde] = _JsonSerde("json")
"""JSON in UTF-8: compact, non-ASCII kept, NaN/infinity refused; read with ``json.loads``."""

str: Final[Serde] = _StrSerde("str")
"""Text as UTF-8 (strict)."""

bytes: Final[Serde] = _BytesSerde("bytes")
"""Bytes unchanged (bytearray and memoryview are copied to bytes when serializing)."""
