"""Topic names and topic configuration, with Kafka's names, defaults and rules.

Configuration keys are Kafka's (``retention.ms``); Python code may spell them with
underscores (``retention_ms``), which is also the attribute name on :class:`TopicConfig`.
Values may be given as strings, as the CLI and Kafka's own tools do (``"604800000"``).
Every value is checked when a :class:`TopicConfig` is built, so a config object that exists
is always valid.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, SupportsIndex

import attrs

from eventlog._errors import InvalidArgumentError, InvalidConfigError, InvalidTopicNameError

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_CONFIG",
    "MAX_TOPIC_NAME_LENGTH",
    "TOPIC_NAME_RULE",
    "TopicConfig",
    "parse_config",
    "topic_collision_key",
    "validate_topic_name",
]

# --- topic names -----------------------------------------------------------------

MAX_TOPIC_NAME_LENGTH: Final = 249
TOPIC_NAME_RULE: Final = (
    "topic names are 1 to 249 characters from [a-zA-Z0-9._-] (ASCII letters, digits, "
    "'.', '_' and '-') and must not be '.' or '..'"
)

# The fast path: one C-level match decides almost every call. `re.ASCII` is implied by the
# explicit class; no `$`, which would also match before a trailing newline.
_VALID_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}").fullmatch
_BAD_NAME_CHAR = re.compile(r"[^a-zA-Z0-9._-]")
_RESERVED_NAMES: Final = frozenset({".", ".."})


def _show(value: object, limit: int = 80) -> str:
    """``repr(value)``, shortened so that a huge value cannot flood an error message."""
    text = repr(value)
    if len(text) > limit:
        text = f"{text[: limit - 3]}..."
    return text


# Types whose repr already shows what they are; other values get their type named too.
_SELF_EVIDENT_TYPES: Final = frozenset({str, int, float, bool, type(None), bytes, list, tuple})


def _got(value: object) -> str:
    """Describe a rejected value for an error message: its repr, and its type if unclear."""
    if type(value) in _SELF_EVIDENT_TYPES:
        return _show(value)
    return f"{_show(value)} ({type(value).__name__})"


def validate_topic_name(name: object) -> str:
    """Check a topic name against Kafka's rule and return it.

    Args:
        name: the candidate name.

    Returns:
        ``name``, unchanged.

    Raises:
        InvalidTopicNameError: ``name`` is not a ``str``, is empty, is longer than 249
            characters, is ``.`` or ``..``, or contains a character outside
            ``[a-zA-Z0-9._-]``. The message says which rule broke and states the rule.
    """
    if isinstance(name, str) and _VALID_NAME(name) is not None and name not in _RESERVED_NAMES:
        return name
    raise _name_error(name)


def _name_error(name: object) -> InvalidTopicNameError:
    """Build the error for a name that failed the fast check: find the rule it breaks."""
    if not isinstance(name, str):
        hint = " (decode it first)" if isinstance(name, bytes | bytearray) else ""
        return InvalidTopicNameError(
            f"topic name must be a str, not {type(name).__name__}{hint}: got {_show(name)}; "
            f"{TOPIC_NAME_RULE}"
        )
    if not name:
        problem = "topic name must not be empty"
    elif len(name) > MAX_TOPIC_NAME_LENGTH:
        problem = (
            f"topic name {_show(name, 60)} is too long: {len(name)} characters, "
            f"the limit is {MAX_TOPIC_NAME_LENGTH}"
        )
    elif name in _RESERVED_NAMES:
        problem = f"topic name {name!r} is not allowed: '.' and '..' are reserved"
    else:
        bad = sorted(set(_BAD_NAME_CHAR.findall(name)))
        shown = ", ".join(repr(c) for c in bad[:5]) + (", ..." if len(bad) > 5 else "")
        noun = "character" if len(bad) == 1 else "characters"
        problem = f"topic name {_show(name, 60)} contains the invalid {noun} {shown}"
    return InvalidTopicNameError(f"{problem}; {TOPIC_NAME_RULE}", topic=name)


def topic_collision_key(name: str) -> str:
    """Return the form under which Kafka considers two topic names to collide.

    Kafka's metric names replace ``.`` with ``_``, so it refuses to create ``a.b`` when
    ``a_b`` exists (and vice versa). Two names collide when their keys are equal.

    Args:
        name: a valid topic name.
    """
    return name.replace(".", "_")


# --- value checks ----------------------------------------------------------------

_I64_MAX: Final = (1 << 63) - 1
_I32_MAX: Final = (1 << 31) - 1
# Kafka parses numbers after trimming; accept an optional sign and ASCII digits only (no
# "1_000", no non-ASCII digits), with a bound that keeps int() cheap.
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]{1,40}\s*").fullmatch


def _int_value(key: str, value: object, lo: int, hi: int, allowed: str) -> int:
    """Coerce an int config value (int, int-like, or decimal str) and range-check it."""
    if isinstance(value, bool):
        # bool is an int subclass, but `True` for a byte count is a mistake, not a 1.
        number = None
    elif isinstance(value, int):
        number = int(value)
    elif isinstance(value, str):
        number = int(value) if _INT_TEXT(value) is not None else None
    elif isinstance(value, SupportsIndex):
        number = operator.index(value)  # numpy integers and other int-likes
    else:
        number = None
    if number is None:
        raise InvalidConfigError(f"{key} must be {allowed}; got {_got(value)}", key=key)
    if number < lo:
        raise InvalidConfigError(f"{key} must be {allowed}; got {_got(value)}", key=key)
    if number > hi:
        # Name the upper bound unless `allowed` already does (it is rarely the issue).
        bound = "" if str(hi) in allowed else f", at most {hi}"
        raise InvalidConfigError(f"{key} must be {allowed}{bound}; got {_show(value)}", key=key)
    return number


def _float_value(key: str, value: object, lo: float, hi: float, allowed: str) -> float:
    """Coerce a float config value (int, float or numeric str) and range-check it."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            number = math.inf
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None:
        raise InvalidConfigError(f"{key} must be {allowed}; got {_got(value)}", key=key)
    # `not lo <= x <= hi` also rejects NaN, for which every comparison is false.
    if not lo <= number <= hi:
        raise InvalidConfigError(f"{key} must be {allowed}; got {_got(value)}", key=key)
    return number


def _bool_value(key: str, value: object) -> bool:
    """Coerce a bool config value: a bool, or "true"/"false" in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "true":
            return True
        if word == "false":
            return False
    raise InvalidConfigError(
        f"{key} must be true or false (a bool, or the string 'true' or 'false'); got {_got(value)}",
        key=key,
    )


def _choice(key: str, value: object, choices: Mapping[str, str], allowed: str) -> str:
    """Look a str value up case-insensitively in ``choices`` (lowercase -> canonical)."""
    if isinstance(value, str):
        canonical = choices.get(value.strip().lower())
        if canonical is not None:
            return canonical
        raise InvalidConfigError(f"{key} must be {allowed}; got {_got(value)}", key=key)
    raise InvalidConfigError(f"{key} must be a str, {allowed}; got {_got(value)}", key=key)


# --- converters: one per field, used by TopicConfig's __init__ -------------------
# attrs runs these on every value given to TopicConfig (and on the defaults), so each one
# both coerces (from the CLI's strings) and validates. They are named functions because
# mypy's attrs plugin takes __init__'s parameter types from the converter's signature.

_POLICY_ALLOWED: Final = "'delete', 'compact' or 'compact,delete' (a str or a list of words)"
_POLICY_WORDS: Final = frozenset({"compact", "delete"})


def _cleanup_policy(value: str | Sequence[str]) -> str:
    key = "cleanup.policy"
    words: Sequence[object]
    if isinstance(value, str):
        words = value.split(",")
    elif isinstance(value, list | tuple):
        words = value
    else:
        raise InvalidConfigError(
            f"{key} must be {_POLICY_ALLOWED}; got {_got(value)}",
            key=key,
        )
    found: set[str] = set()
    for word in words:
        normal = word.strip().lower() if isinstance(word, str) else ""
        if normal not in _POLICY_WORDS:
            raise InvalidConfigError(
                f"{key} must be {_POLICY_ALLOWED}; got {_show(value)}", key=key
            )
        found.add(normal)
    if not found:  # an empty list; a str always yields at least one (possibly bad) word
        raise InvalidConfigError(f"{key} must be {_POLICY_ALLOWED}; got {_show(value)}", key=key)
    if len(found) == 2:
        return "compact,delete"
    return "compact" if "compact" in found else "delete"


def _retention_ms(value: int | str) -> int:
    return _int_value("retention.ms", value, -1, _I64_MAX, "-1 (unlimited) or an integer >= 0")


def _retention_bytes(value: int | str) -> int:
    return _int_value("retention.bytes", value, -1, _I64_MAX, "-1 (unlimited) or an integer >= 0")


def _max_message_bytes(value: int | str) -> int:
    return _int_value("max.message.bytes", value, 1, _I32_MAX, f"an integer from 1 to {_I32_MAX}")


_COMPRESSION_CHOICES: Final = {
    "producer": "producer",
    "zstd": "zstd",
    "uncompressed": "uncompressed",
}
_COMPRESSION_ALLOWED: Final = "'producer', 'zstd' or 'uncompressed'"


def _compression_type(value: str) -> str:
    key = "compression.type"
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("gzip", "snappy", "lz4"):
            raise InvalidConfigError(
                f"{key} {value!r} is not supported: eventlog stores batches compressed with "
                f"zstd or uncompressed; use 'zstd' (or 'producer' or 'uncompressed')",
                key=key,
            )
        if word == "none":
            raise InvalidConfigError(
                f"{key} 'none' is the producer's spelling; the topic config calls it "
                f"'uncompressed' (allowed: {_COMPRESSION_ALLOWED})",
                key=key,
            )
    return _choice(key, value, _COMPRESSION_CHOICES, _COMPRESSION_ALLOWED)


def _compression_zstd_level(value: int | str) -> int:
    return _int_value("compression.zstd.level", value, -131072, 22, "an integer from -131072 to 22")


_TIMESTAMP_CHOICES: Final = {"createtime": "CreateTime", "logappendtime": "LogAppendTime"}


def _message_timestamp_type(value: str) -> str:
    return _choice(
        "message.timestamp.type", value, _TIMESTAMP_CHOICES, "'CreateTime' or 'LogAppendTime'"
    )


def _delete_retention_ms(value: int | str) -> int:
    return _int_value("delete.retention.ms", value, 0, _I64_MAX, "an integer >= 0")


def _min_compaction_lag_ms(value: int | str) -> int:
    return _int_value("min.compaction.lag.ms", value, 0, _I64_MAX, "an integer >= 0")


def _max_compaction_lag_ms(value: int | str) -> int:
    return _int_value("max.compaction.lag.ms", value, 1, _I64_MAX, "an integer >= 1")


def _min_cleanable_dirty_ratio(value: float | str) -> float:
    return _float_value("min.cleanable.dirty.ratio", value, 0.0, 1.0, "a number from 0.0 to 1.0")


def _key_index(value: bool | str) -> bool:
    return _bool_value("key.index", value)


def _lag_order_error(min_lag: int, max_lag: int, key: str) -> InvalidConfigError:
    return InvalidConfigError(
        f"min.compaction.lag.ms ({min_lag}) must not exceed max.compaction.lag.ms ({max_lag})",
        key=key,
    )


# --- the config class ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TopicConfig:
    """A topic's configuration: Kafka's topic configs that eventlog implements.

    Attributes use Python spelling (``retention_ms``); :meth:`to_dict` and
    :func:`parse_config` use Kafka's (``retention.ms``). Defaults are Kafka's. Values are
    validated and normalised on construction, so an instance is always valid; build a
    changed copy with ``parse_config(updates, base=config)``.

    Attributes:
        cleanup_policy: ``"delete"``, ``"compact"`` or ``"compact,delete"``.
        retention_ms: how long records are kept (delete policy); -1 = forever.
        retention_bytes: the most bytes a partition keeps (delete policy); -1 = no limit.
        max_message_bytes: the largest record accepted (key + value + headers; Kafka
            applies it to a whole batch).
        compression_type: ``"producer"``, ``"zstd"`` or ``"uncompressed"``.
        compression_zstd_level: zstd level used when compressing.
        message_timestamp_type: ``"CreateTime"`` or ``"LogAppendTime"``.
        delete_retention_ms: how long tombstones survive compaction.
        min_compaction_lag_ms: the least time a record stays uncompacted.
        max_compaction_lag_ms: the longest time before a record may be compacted.
        min_cleanable_dirty_ratio: the dirty fraction that triggers compaction.
        key_index: keep a per-key index (eventlog's own ``key.index``; not in Kafka).

    Raises:
        InvalidConfigError: on construction, for a value of the wrong type or range.
    """

    cleanup_policy: str = attrs.field(default="delete", converter=_cleanup_policy)
    retention_ms: int = attrs.field(default=604_800_000, converter=_retention_ms)
    retention_bytes: int = attrs.field(default=-1, converter=_retention_bytes)
    max_message_bytes: int = attrs.field(default=1_048_588, converter=_max_message_bytes)
    compression_type: str = attrs.field(default="producer", converter=_compression_type)
    # Kafka defaults to 3; level 1 compresses event batches about as well at half the cost
    # (measured in docs/performance.md), and the append path is what users wait on.
    compression_zstd_level: int = attrs.field(default=1, converter=_compression_zstd_level)
    message_timestamp_type: str = attrs.field(
        default="CreateTime", converter=_message_timestamp_type
    )
    delete_retention_ms: int = attrs.field(default=86_400_000, converter=_delete_retention_ms)
    min_compaction_lag_ms: int = attrs.field(default=0, converter=_min_compaction_lag_ms)
    max_compaction_lag_ms: int = attrs.field(default=_I64_MAX, converter=_max_compaction_lag_ms)
    min_cleanable_dirty_ratio: float = attrs.field(
        default=0.5, converter=_min_cleanable_dirty_ratio
    )
    key_index: bool = attrs.field(default=False, converter=_key_index)

    def __attrs_post_init__(self) -> None:
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms:
            raise _lag_order_error(
                self.min_compaction_lag_ms, self.max_compaction_lag_ms, "min.compaction.lag.ms"
            )

    @property
    def compacted(self) -> bool:
        """Whether the cleanup policy includes ``compact``."""
        return "compact" in self.cleanup_policy

    @property
    def deletes(self) -> bool:
        """Whether the cleanup policy includes ``delete`` (time/size retention applies)."""
        return "delete" in self.cleanup_policy

    def to_dict(self) -> dict[str, object]:
        """Return the configuration as a dict with Kafka-spelled keys, JSON-serialisable.

        Keys are in :data:`CONFIG_KEYS` order.
        """
        return {kafka: getattr(self, python) for kafka, python in _KAFKA_TO_PYTHON.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TopicConfig:
        """Rebuild a configuration stored with :meth:`to_dict`.

        Keys missing from ``data`` take their defaults (logs written before the key
        existed).

        Args:
            data: a mapping of config keys (either spelling) to values.

        Raises:
            InvalidConfigError: an unknown key (data written by a newer eventlog is
                refused rather than misread), or an invalid value.
        """
        return _apply(DEFAULT_CONFIG, data, stored=True)


# Kafka name -> attribute name, in field order. Every Kafka name is the attribute name with
# '.' for '_', which keeps the two spellings impossible to get out of step.
_KAFKA_TO_PYTHON: Final = {
    field.name.replace("_", "."): field.name for field in attrs.fields(TopicConfig)
}
CONFIG_KEYS: Final[tuple[str, ...]] = tuple(_KAFKA_TO_PYTHON)
"""The configuration keys eventlog knows, in Kafka spelling."""

_PYTHON_TO_KAFKA: Final = {python: kafka for kafka, python in _KAFKA_TO_PYTHON.items()}
# Either spelling -> attribute name.
_RESOLVE: Final = {**_KAFKA_TO_PYTHON, **{python: python for python in _PYTHON_TO_KAFKA}}
_CONVERTERS: Final[dict[str, Any]] = {
    field.name: field.converter for field in attrs.fields(TopicConfig)
}

DEFAULT_CONFIG: Final = TopicConfig()
"""Kafka's defaults (eventlog's ``key.index`` off)."""

# Kafka topic configs that have no meaning in eventlog (segments, replication, flushing
# are not part of its design), so that a config copied from a Kafka topic gets a precise
# message instead of "unknown key".
_KAFKA_ONLY_KEYS: Final = frozenset(
    {
        "compression.gzip.level",
        "compression.lz4.level",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "message.downconversion.enable",
        "message.format.version",
        "min.insync.replicas",
        "preallocate",
        "remote.storage.enable",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    }
)


def _unknown_key_error(key: str, *, stored: bool) -> InvalidConfigError:
    known = ", ".join(CONFIG_KEYS)
    if stored:
        return InvalidConfigError(
            f"the stored topic config has the unknown key {_show(key)}; it was probably "
            f"written by a newer version of eventlog (this version knows: {known})",
            key=key,
        )
    if key in _KAFKA_ONLY_KEYS or key.replace("_", ".") in _KAFKA_ONLY_KEYS:
        return InvalidConfigError(
            f"{key} is a Kafka topic config that eventlog does not support (it has no "
            f"segments, replicas or flush settings); supported keys: {known}",
            key=key,
        )
    close = difflib.get_close_matches(key.lower(), _RESOLVE, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return InvalidConfigError(
        f"unknown topic config key {_show(key)}.{hint} Known keys (Kafka spelling, or "
        f"with '_' for '.'): {known}",
        key=key,
    )


def _apply(base: TopicConfig, updates: Mapping[str, object], *, stored: bool) -> TopicConfig:
    """Validate ``updates`` completely, then return ``base`` with them applied."""
    if not isinstance(updates, Mapping):
        raise InvalidConfigError(
            f"a topic config must be a mapping of keys to values; got {_got(updates)}",
            key=None,
        )
    given: dict[str, str] = {}  # attribute name -> the spelling the caller used
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        if not isinstance(key, str):
            raise InvalidConfigError(
                f"topic config keys must be str; got {_got(key)}",
                key=None,
            )
        name = _RESOLVE.get(key)
        if name is None:
            raise _unknown_key_error(key, stored=stored)
        kafka = _PYTHON_TO_KAFKA[name]
        if name in given:
            raise InvalidConfigError(
                f"{kafka} is given twice, as {given[name]!r} and as {key!r}; give it once",
                key=kafka,
            )
        given[name] = key
        # Each converter validates and raises InvalidConfigError naming the Kafka key.
        changes[name] = _CONVERTERS[name](value)
    min_lag = changes.get("min_compaction_lag_ms", base.min_compaction_lag_ms)
    max_lag = changes.get("max_compaction_lag_ms", base.max_compaction_lag_ms)
    if min_lag > max_lag:
        # Blame the key the caller changed, when only one of the two was changed.
        blamed = (
            "max.compaction.lag.ms"
            if "min_compaction_lag_ms" not in changes
            else "min.compaction.lag.ms"
        )
        raise _lag_order_error(min_lag, max_lag, blamed)
    if not changes:
        return base
    return attrs.evolve(base, **changes)


def parse_config(
    updates: Mapping[str, object] | None = None, *, base: TopicConfig | None = None
) -> TopicConfig:
    """Return a validated topic configuration: ``base`` (or the defaults) plus ``updates``.

    Args:
        updates: config keys in Kafka spelling (``"retention.ms"``) or Python spelling
            (``"retention_ms"``) mapped to values. Integers may be given as decimal
            strings (``"-1"``), booleans as ``"true"``/``"false"``, the cleanup policy as
            ``"compact,delete"`` or a list of words.
        base: the configuration to start from; Kafka's defaults when omitted.

    Returns:
        A new :class:`TopicConfig` (``base`` itself when ``updates`` is empty).

    Raises:
        InvalidConfigError: an unknown key (with a suggestion when one is close), a key
            given in both spellings, a value of the wrong type or range, or
            ``min.compaction.lag.ms`` above ``max.compaction.lag.ms``. Its ``key`` is the
            offending key in Kafka spelling. Nothing is applied unless everything is valid.
        InvalidArgumentError: ``base`` is not a TopicConfig.
    """
    if base is None:
        base = DEFAULT_CONFIG
    elif not isinstance(base, TopicConfig):
        raise InvalidArgumentError(f"base must be a TopicConfig or None; got {_got(base)}")
    if updates is None:
        return base
    return _apply(base, updates, stored=False)
