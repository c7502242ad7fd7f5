"""The public surface of ``eventlog``: the pinned ``__all__``, docstrings, the error tree.

Changing the public API is a deliberate act: a name added to or removed from ``__all__``
must be added to or removed from ``PUBLIC_NAMES`` here too, in the same change.
"""

from __future__ import annotations

import inspect

import pytest

import eventlog

PUBLIC_NAMES = sorted([
    "BatchMetadata",
    "CheckReport",
    "ClientClosedError",
    "CommitFailedError",
    "CompactionResult",
    "ConcurrencyError",
    "Consumer",
    "CorruptLogError",
    "DeserializationError",
    "DiskFullError",
    "DuplicateSequenceError",
    "EventLogError",
    "FencedInstanceIdError",
    "ForkedProcessError",
    "GroupDescription",
    "GroupNotEmptyError",
    "GroupNotFoundError",
    "IllegalStateError",
    "InconsistentGroupProtocolError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidRecordError",
    "InvalidTopicNameError",
    "Log",
    "LogClosedError",
    "LogNotFoundError",
    "MemberDescription",
    "NewRecord",
    "NoOffsetForPartitionError",
    "NotALogError",
    "OffsetAndMetadata",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PartitionInfo",
    "PartitionNotFoundError",
    "PartitionOffsets",
    "PermissionDeniedError",
    "Problem",
    "Processor",
    "Producer",
    "ProducerTimeoutError",
    "ReadOnlyLogError",
    "RebalanceListener",
    "Record",
    "RecordColumns",
    "RecordMetadata",
    "RecordTooLargeError",
    "RetentionResult",
    "SendFuture",
    "SerializationError",
    "StorageError",
    "Table",
    "TopicConfig",
    "TopicDescription",
    "TopicExistsError",
    "TopicNotFoundError",
    "TopicPartition",
    "Transaction",
    "UnsupportedFormatError",
    "__version__",
    "murmur2",
    "open",
    "replay",
    "serde",
])

# Every error class -> (its direct eventlog parent, the builtins it must also be).
ERRORS: dict[str, tuple[str, tuple[type[BaseException], ...]]] = {
    "InvalidArgumentError": ("EventLogError", (ValueError,)),
    "InvalidTopicNameError": ("InvalidArgumentError", (ValueError,)),
    "InvalidConfigError": ("InvalidArgumentError", (ValueError,)),
    "InvalidRecordError": ("InvalidArgumentError", (ValueError,)),
    "RecordTooLargeError": ("InvalidRecordError", (ValueError,)),
    "TopicExistsError": ("EventLogError", (ValueError,)),
    "TopicNotFoundError": ("EventLogError", (KeyError, LookupError)),
    "PartitionNotFoundError": ("EventLogError", (IndexError, LookupError)),
    "OffsetOutOfRangeError": ("EventLogError", (IndexError, LookupError)),
    "LogClosedError": ("EventLogError", (ValueError,)),
    "ReadOnlyLogError": ("EventLogError", (PermissionError, OSError)),
    "ForkedProcessError": ("EventLogError", (RuntimeError,)),
    "StorageError": ("EventLogError", (OSError,)),
    "NotALogError": ("StorageError", (OSError,)),
    "LogNotFoundError": ("StorageError", (FileNotFoundError, OSError)),
    "UnsupportedFormatError": ("StorageError", (OSError,)),
    "CorruptLogError": ("StorageError", (OSError,)),
    "DiskFullError": ("StorageError", (OSError,)),
    "PermissionDeniedError": ("StorageError", (PermissionError, OSError)),
    "SerializationError": ("InvalidRecordError", (ValueError,)),
    "DeserializationError": ("EventLogError", (ValueError,)),
    "ClientClosedError": ("EventLogError", (ValueError,)),
    "IllegalStateError": ("EventLogError", (RuntimeError,)),
    "NoOffsetForPartitionError": ("EventLogError", (LookupError,)),
    "CommitFailedError": ("EventLogError", (RuntimeError,)),
    "ConcurrencyError": ("EventLogError", (RuntimeError,)),
    "DuplicateSequenceError": ("EventLogError", (RuntimeError,)),
    "OutOfOrderSequenceError": ("EventLogError", (RuntimeError,)),
    "GroupNotFoundError": ("EventLogError", (KeyError, LookupError)),
    "GroupNotEmptyError": ("EventLogError", (RuntimeError,)),
    "InconsistentGroupProtocolError": ("EventLogError", (ValueError,)),
    "ProducerTimeoutError": ("EventLogError", (TimeoutError, OSError)),
    "FencedInstanceIdError": ("EventLogError", (RuntimeError,)),
}


def _public_objects() -> list[tuple[str, object]]:
    return [(name, getattr(eventlog, name)) for name in eventlog.__all__ if name != "__version__"]


def test_all_is_pinned_and_sorted() -> None:
    assert eventlog.__all__ == PUBLIC_NAMES
    assert sorted(eventlog.__all__) == eventlog.__all__
    assert len(set(eventlog.__all__)) == len(eventlog.__all__)


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_public_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from eventlog import {name}", namespace)
    assert namespace[name] is getattr(eventlog, name)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from eventlog import *", namespace)
    namespace.pop("__builtins__", None)
    assert sorted(namespace) == sorted(PUBLIC_NAMES)


def test_version_is_a_string() -> None:
    assert isinstance(eventlog.__version__, str)
    assert eventlog.__version__


def test_every_error_class_is_exported() -> None:
    exported = {name for name, obj in _public_objects()
                if isinstance(obj, type) and issubclass(obj, BaseException)}
    assert exported == set(ERRORS) | {"EventLogError"}


@pytest.mark.parametrize(("name", "obj"), _public_objects())
def test_public_objects_have_docstrings(name: str, obj: object) -> None:
    assert inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj), name
    doc = inspect.getdoc(obj)
    assert doc, f"eventlog.{name} has no docstring"
    if inspect.isclass(obj):
        # The class's own docstring, not one inherited from a base class.
        own = vars(obj).get("__doc__") or ""
        assert own.strip(), f"eventlog.{name} has no docstring of its own"


def _public_members(cls: type) -> list[str]:
    """Public methods and properties, including those of eventlog's own mixins (Log is
    assembled from topic, group and retention administration mixins)."""
    found = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("eventlog"):
            continue
        found += [name for name, member in vars(klass).items()
                  if not name.startswith("_")
                  and (inspect.isfunction(member) or isinstance(member, property))]
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("name", _public_members(eventlog.Log))
def test_log_methods_have_docstrings(name: str) -> None:
    member = inspect.getattr_static(eventlog.Log, name)
    target = member.fget if isinstance(member, property) else member
    assert inspect.getdoc(target), f"Log.{name} has no docstring"


def test_log_has_the_documented_entry_points() -> None:
    expected = {
        "create_topic", "list_topics", "describe_topic", "topic_config", "alter_topic",
        "create_partitions", "delete_topic", "append", "append_batch", "append_columns",
        "read", "read_columns", "scan", "beginning_offsets", "end_offsets",
        "offsets_for_times", "wait", "sync", "close", "path", "readonly", "durability",
        "closed", "producer", "consumer", "list_groups", "describe_group",
        "committed_offsets", "commit_offsets", "reset_offsets", "delete_group",
        "delete_records", "run_retention", "backup", "check",
    }
    assert expected <= set(_public_members(eventlog.Log))
    assert hasattr(eventlog.Log, "__enter__")
    assert hasattr(eventlog.Log, "__exit__")


def test_open_signature() -> None:
    params = inspect.signature(eventlog.open).parameters
    assert next(iter(params)) == "path"
    for option in ("readonly", "create", "durability", "map_size"):
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY


# --- the error hierarchy ----------------------------------------------------------


def test_root_error() -> None:
    assert issubclass(eventlog.EventLogError, Exception)
    err = eventlog.EventLogError("boom", topic="t", partition=1, offset=2)
    assert (err.message, err.topic, err.partition, err.offset) == ("boom", "t", 1, 2)
    assert str(err) == "boom"
    bare = eventlog.EventLogError("x")
    assert (bare.topic, bare.partition, bare.offset) == (None, None, None)


@pytest.mark.parametrize(("name", "spec"), sorted(ERRORS.items()))
def test_error_hierarchy(name: str, spec: tuple[str, tuple[type[BaseException], ...]]) -> None:
    parent_name, builtins = spec
    cls = getattr(eventlog, name)
    parent = getattr(eventlog, parent_name)
    assert issubclass(cls, parent)
    assert issubclass(cls, eventlog.EventLogError)
    for builtin in builtins:
        assert issubclass(cls, builtin), f"{name} should be a {builtin.__name__}"
    # Catchable by the builtin and by the root, and the message is kept verbatim.
    with pytest.raises(builtins[0]) as info:
        raise cls("what went wrong", topic="orders", partition=2, offset=7)
    assert isinstance(info.value, eventlog.EventLogError)
    assert str(info.value) == "what went wrong"
    assert (info.value.topic, info.value.partition, info.value.offset) == ("orders", 2, 7)


def test_topic_not_found_str_has_no_quotes() -> None:
    message = "topic 'orders' does not exist"
    err = eventlog.TopicNotFoundError(message, topic="orders")
    assert str(err) == message
    # A plain KeyError would show repr(message), quotes included.
    assert str(KeyError(message)) != message
    assert err.args == (message,)


def test_topic_not_found_from_the_api_reads_well(log: eventlog.Log) -> None:
    with pytest.raises(eventlog.TopicNotFoundError) as info:
        log.describe_topic("missing")
    text = str(info.value)
    assert text == info.value.message
    assert not text.startswith(("'", '"'))
    assert "missing" in text
    assert info.value.topic == "missing"


def test_invalid_config_error_carries_key() -> None:
    err = eventlog.InvalidConfigError("retention.ms must be >= -1", key="retention.ms")
    assert err.key == "retention.ms"  # type: ignore[attr-defined]
    assert isinstance(err, ValueError)


def test_errors_are_distinct_classes() -> None:
    classes = [getattr(eventlog, name) for name in ERRORS]
    assert len(set(classes)) == len(classes)
    # Unrelated branches do not catch each other.
    assert not issubclass(eventlog.TopicNotFoundError, ValueError)
    assert not issubclass(eventlog.InvalidArgumentError, LookupError)
    assert not issubclass(eventlog.PartitionNotFoundError, KeyError)
    assert not issubclass(eventlog.StorageError, ValueError)


def test_value_types_are_tuples_with_the_documented_fields() -> None:
    assert eventlog.Record._fields == (
        "topic", "partition", "offset", "timestamp", "key", "value", "headers")
    assert eventlog.RecordMetadata._fields == ("topic", "partition", "offset", "timestamp")
    assert eventlog.NewRecord._fields == ("value", "key", "partition", "timestamp", "headers")
    assert eventlog.TopicPartition._fields == ("topic", "partition")
    assert eventlog.NewRecord(b"v") == (b"v", None, None, None, None)
    assert eventlog.Record("t", 0, 0, 0, None, b"v").headers == ()
