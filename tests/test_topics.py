"""Tests for topic names and topic configuration (eventlog._topics)."""

from __future__ import annotations

import json
import math
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventlog._errors import InvalidArgumentError, InvalidConfigError, InvalidTopicNameError
from eventlog._topics import (
    CONFIG_KEYS,
    DEFAULT_CONFIG,
    TOPIC_NAME_RULE,
    TopicConfig,
    parse_config,
    topic_collision_key,
    validate_topic_name,
)

# --- topic names -----------------------------------------------------------------

NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"


@pytest.mark.parametrize(
    "name", ["a", "a" * 249, ".a", "a.", "a..b", "_-.", "...", "-", "_", "Orders.v1_x-2"]
)
def test_valid_topic_names(name: str) -> None:
    assert validate_topic_name(name) == name


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "must not be empty"),
        ("a" * 250, "too long"),
        ("x" * 100_000, "too long"),
        (".", "reserved"),
        ("..", "reserved"),
        ("a b", "invalid character ' '"),
        ("ü", "invalid character 'ü'"),
        ("a/b", "invalid character '/'"),
        ("a\n", "invalid character '\\n'"),
        ("a:b*c", "invalid characters '*', ':'"),
    ],
)
def test_invalid_topic_names(name: str, rule: str) -> None:
    with pytest.raises(InvalidTopicNameError) as info:
        validate_topic_name(name)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.topic == name
    message = str(err)
    assert rule in message
    assert TOPIC_NAME_RULE in message
    assert len(message) < 600  # a huge name is truncated, not echoed


@pytest.mark.parametrize(("name", "type_name"), [(None, "NoneType"), (3, "int"), (b"x", "bytes")])
def test_non_str_topic_names(name: object, type_name: str) -> None:
    with pytest.raises(InvalidTopicNameError) as info:
        validate_topic_name(name)
    assert isinstance(info.value, ValueError)
    assert info.value.topic is None
    assert f"must be a str, not {type_name}" in str(info.value)
    assert TOPIC_NAME_RULE in str(info.value)


def test_bytes_name_hint() -> None:
    with pytest.raises(InvalidTopicNameError, match="decode it first"):
        validate_topic_name(b"orders")


@given(st.text(alphabet=NAME_ALPHABET, min_size=1, max_size=249))
def test_names_from_the_alphabet_are_valid(name: str) -> None:
    if name in (".", ".."):
        with pytest.raises(InvalidTopicNameError):
            validate_topic_name(name)
    else:
        assert validate_topic_name(name) == name


@given(
    st.text(alphabet=NAME_ALPHABET, max_size=20),
    st.characters().filter(lambda c: c not in NAME_ALPHABET),
    st.text(alphabet=NAME_ALPHABET, max_size=20),
)
def test_names_with_any_other_character_are_invalid(a: str, bad: str, b: str) -> None:
    with pytest.raises(InvalidTopicNameError, match="invalid character"):
        validate_topic_name(a + bad + b)


def test_collision_key() -> None:
    assert topic_collision_key("a.b") == topic_collision_key("a_b")
    assert topic_collision_key("a.b") != topic_collision_key("a-b")


# --- defaults ---------------------------------------------------------------------


def test_defaults_are_kafkas() -> None:
    assert DEFAULT_CONFIG == TopicConfig() == parse_config() == parse_config({})
    assert DEFAULT_CONFIG.to_dict() == {
        "cleanup.policy": "delete",
        "retention.ms": 604800000,
        "retention.bytes": -1,
        "max.message.bytes": 1048588,
        "compression.type": "producer",
        "compression.zstd.level": 1,
        "message.timestamp.type": "CreateTime",
        "delete.retention.ms": 86400000,
        "min.compaction.lag.ms": 0,
        "max.compaction.lag.ms": 9223372036854775807,
        "min.cleanable.dirty.ratio": 0.5,
        "key.index": False,
    }
    assert tuple(DEFAULT_CONFIG.to_dict()) == CONFIG_KEYS
    assert DEFAULT_CONFIG.deletes
    assert not DEFAULT_CONFIG.compacted


def test_config_is_frozen_and_hashable() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        DEFAULT_CONFIG.retention_ms = 5  # type: ignore[misc]
    assert hash(parse_config({"retention.ms": 5})) == hash(parse_config({"retention_ms": "5"}))


# --- accepted values ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["retention.ms", "retention_ms"])
def test_both_spellings(key: str) -> None:
    assert parse_config({key: 1000}).retention_ms == 1000


def test_python_spelling_for_every_key() -> None:
    for kafka in CONFIG_KEYS:
        value = DEFAULT_CONFIG.to_dict()[kafka]
        assert parse_config({kafka.replace(".", "_"): value}) == DEFAULT_CONFIG


class IntLike:
    """An int-like that is not an int (like numpy.int64)."""

    def __index__(self) -> int:
        return 42


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("retention.ms", "604800000", 604800000),
        ("retention.ms", "-1", -1),
        ("retention.ms", " 12 ", 12),
        ("retention.ms", "+12", 12),
        ("retention.ms", IntLike(), 42),
        ("retention.ms", 2**63 - 1, 2**63 - 1),
        ("retention.bytes", "0", 0),
        ("max.message.bytes", "1", 1),
        ("max.message.bytes", 2**31 - 1, 2**31 - 1),
        ("compression.zstd.level", "-131072", -131072),
        ("compression.zstd.level", 22, 22),
        ("compression.zstd.level", 0, 0),
        ("delete.retention.ms", 0, 0),
        ("max.compaction.lag.ms", "1", 1),
        ("min.cleanable.dirty.ratio", 1, 1.0),
        ("min.cleanable.dirty.ratio", 0, 0.0),
        ("min.cleanable.dirty.ratio", "0.25", 0.25),
        ("min.cleanable.dirty.ratio", " 1e-1 ", 0.1),
        ("key.index", True, True),
        ("key.index", "TRUE", True),
        ("key.index", " false ", False),
        ("compression.type", "ZSTD", "zstd"),
        ("compression.type", "uncompressed", "uncompressed"),
        ("compression.type", "producer", "producer"),
        ("message.timestamp.type", "logappendtime", "LogAppendTime"),
        ("message.timestamp.type", "CreateTime", "CreateTime"),
        ("cleanup.policy", "compact", "compact"),
        ("cleanup.policy", "delete", "delete"),
        ("cleanup.policy", "compact,delete", "compact,delete"),
        ("cleanup.policy", "delete,compact", "compact,delete"),
        ("cleanup.policy", " Delete , compact ", "compact,delete"),
        ("cleanup.policy", ["delete", "compact"], "compact,delete"),
        ("cleanup.policy", ("compact",), "compact"),
        ("cleanup.policy", "delete,delete", "delete"),
    ],
)
def test_accepted_values_are_normalised(key: str, value: object, expected: object) -> None:
    config = parse_config({key: value})
    stored = config.to_dict()[key]
    assert stored == expected
    assert type(stored) is type(expected)


def test_policy_properties() -> None:
    assert parse_config({"cleanup.policy": "compact"}).compacted
    assert not parse_config({"cleanup.policy": "compact"}).deletes
    both = parse_config({"cleanup.policy": "delete,compact"})
    assert both.compacted
    assert both.deletes


def test_direct_construction_validates_and_normalises() -> None:
    config = TopicConfig(cleanup_policy="delete,compact", retention_ms="5", key_index="true")
    assert (config.cleanup_policy, config.retention_ms, config.key_index) == (
        "compact,delete",
        5,
        True,
    )
    with pytest.raises(InvalidConfigError) as info:
        TopicConfig(retention_ms="abc")
    assert info.value.key == "retention.ms"
    with pytest.raises(InvalidConfigError, match="must not exceed"):
        TopicConfig(min_compaction_lag_ms=10, max_compaction_lag_ms=5)


# --- rejected values: every key, wrong type and out of range -------------------------

BAD_VALUES: list[tuple[str, object]] = [
    # wrong type
    ("cleanup.policy", 1),
    ("cleanup.policy", None),
    ("cleanup.policy", b"delete"),
    ("cleanup.policy", {"delete"}),
    ("cleanup.policy", ["compact", 1]),
    ("retention.ms", 1.5),
    ("retention.ms", 1.0),
    ("retention.ms", True),
    ("retention.ms", None),
    ("retention.ms", "abc"),
    ("retention.ms", "1.0"),
    ("retention.ms", "1_000"),
    ("retention.ms", ""),
    ("retention.ms", "١٢"),  # non-ASCII digits
    ("retention.bytes", [1]),
    ("retention.bytes", "1e3"),
    ("max.message.bytes", 1.0),
    ("max.message.bytes", False),
    ("compression.type", 1),
    ("compression.type", None),
    ("compression.zstd.level", "high"),
    ("compression.zstd.level", 3.0),
    ("message.timestamp.type", 1),
    ("message.timestamp.type", None),
    ("delete.retention.ms", "x"),
    ("min.compaction.lag.ms", 0.5),
    ("max.compaction.lag.ms", None),
    ("min.cleanable.dirty.ratio", None),
    ("min.cleanable.dirty.ratio", True),
    ("min.cleanable.dirty.ratio", "half"),
    ("min.cleanable.dirty.ratio", [0.5]),
    ("key.index", 1),
    ("key.index", 0),
    ("key.index", "yes"),
    ("key.index", None),
    # out of range / not an allowed word
    ("cleanup.policy", ""),
    ("cleanup.policy", "remove"),
    ("cleanup.policy", "compact,"),
    ("cleanup.policy", "delete;compact"),
    ("cleanup.policy", []),
    ("retention.ms", -2),
    ("retention.ms", "-2"),
    ("retention.ms", 2**63),
    ("retention.ms", "9" * 100),
    ("retention.bytes", -2),
    ("retention.bytes", 2**63),
    ("max.message.bytes", 0),
    ("max.message.bytes", -1),
    ("max.message.bytes", 2**31),
    ("compression.type", "gzip"),
    ("compression.type", "snappy"),
    ("compression.type", "lz4"),
    ("compression.type", "none"),
    ("compression.type", "brotli"),
    ("compression.type", ""),
    ("compression.zstd.level", 23),
    ("compression.zstd.level", -131073),
    ("message.timestamp.type", "Create"),
    ("message.timestamp.type", ""),
    ("delete.retention.ms", -1),
    ("min.compaction.lag.ms", -1),
    ("max.compaction.lag.ms", 0),
    ("max.compaction.lag.ms", -1),
    ("min.cleanable.dirty.ratio", -0.1),
    ("min.cleanable.dirty.ratio", 1.1),
    ("min.cleanable.dirty.ratio", 2),
    ("min.cleanable.dirty.ratio", "nan"),
    ("min.cleanable.dirty.ratio", math.nan),
    ("min.cleanable.dirty.ratio", math.inf),
    ("min.cleanable.dirty.ratio", 10**400),
]


def test_bad_value_matrix_covers_every_key() -> None:
    assert {key for key, _ in BAD_VALUES} == set(CONFIG_KEYS)


@pytest.mark.parametrize("spelling", ["kafka", "python"])
@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_bad_values_are_rejected(key: str, value: object, spelling: str) -> None:
    given_key = key if spelling == "kafka" else key.replace(".", "_")
    with pytest.raises(InvalidConfigError) as info:
        parse_config({given_key: value})
    err = info.value
    assert isinstance(err, ValueError)
    assert err.key == key
    message = str(err)
    assert message.startswith(key)
    shown = repr(value)
    assert shown[:40] in message
    assert len(message) < 400


def test_message_says_what_is_allowed() -> None:
    with pytest.raises(InvalidConfigError) as info:
        parse_config({"retention.ms": "abc"})
    assert str(info.value) == "retention.ms must be -1 (unlimited) or an integer >= 0; got 'abc'"


def test_unsupported_compression_suggests_zstd() -> None:
    with pytest.raises(InvalidConfigError, match="'zstd'") as info:
        parse_config({"compression.type": "gzip"})
    assert "eventlog stores batches" in str(info.value)
    with pytest.raises(InvalidConfigError, match="'uncompressed'"):
        parse_config({"compression.type": "none"})


def test_non_int_value_names_its_type() -> None:
    with pytest.raises(InvalidConfigError, match=r"got <object object at .*> \(object\)"):
        parse_config({"retention.ms": object()})


# --- keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("retention.msec", "retention.ms"),
        ("retention_msec", "retention_ms"),
        ("cleanup.polcy", "cleanup.policy"),
        ("Retention.MS", "retention.ms"),
        ("max.message.byte", "max.message.bytes"),
    ],
)
def test_unknown_key_with_suggestion(key: str, suggestion: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        parse_config({key: 1})
    assert info.value.key == key
    message = str(info.value)
    assert f"did you mean {suggestion!r}" in message.lower()
    assert all(known in message for known in CONFIG_KEYS)


def test_unknown_key_without_suggestion() -> None:
    with pytest.raises(InvalidConfigError) as info:
        parse_config({"colour": "blue"})
    assert "unknown topic config key 'colour'" in str(info.value)
    assert "did you mean" not in str(info.value).lower()


def test_kafka_only_key() -> None:
    with pytest.raises(InvalidConfigError, match="does not support") as info:
        parse_config({"segment.bytes": 1 << 30})
    assert info.value.key == "segment.bytes"


def test_duplicate_spelling_is_an_error() -> None:
    with pytest.raises(InvalidConfigError, match="given twice") as info:
        parse_config({"retention.ms": 1, "retention_ms": 1})
    assert info.value.key == "retention.ms"


@pytest.mark.parametrize("key", [1, None, b"retention.ms"])
def test_non_str_key(key: Any) -> None:
    with pytest.raises(InvalidConfigError, match="keys must be str"):
        parse_config({key: 1})


@pytest.mark.parametrize("updates", [[("retention.ms", 1)], "retention.ms=1", 5])
def test_updates_must_be_a_mapping(updates: Any) -> None:
    with pytest.raises(InvalidConfigError, match="mapping"):
        parse_config(updates)


def test_base_must_be_a_topic_config() -> None:
    with pytest.raises(InvalidArgumentError, match="TopicConfig"):
        parse_config({}, base={"retention.ms": 1})  # type: ignore[arg-type]


# --- cross-field rule, atomicity, base ----------------------------------------------


def test_min_lag_above_max_lag() -> None:
    with pytest.raises(InvalidConfigError, match="must not exceed") as info:
        parse_config({"min.compaction.lag.ms": 10, "max.compaction.lag.ms": 5})
    assert info.value.key == "min.compaction.lag.ms"
    assert parse_config({"min.compaction.lag.ms": 5, "max.compaction.lag.ms": 5})


def test_lag_rule_blames_the_changed_key() -> None:
    base = parse_config({"min.compaction.lag.ms": 1000})
    with pytest.raises(InvalidConfigError) as info:
        parse_config({"max.compaction.lag.ms": 999}, base=base)
    assert info.value.key == "max.compaction.lag.ms"
    with pytest.raises(InvalidConfigError) as info:
        parse_config(
            {"min.compaction.lag.ms": 2**63 - 1}, base=parse_config({"max.compaction.lag.ms": 10})
        )
    assert info.value.key == "min.compaction.lag.ms"


def test_base_plus_update_keeps_other_values() -> None:
    base = parse_config({"cleanup.policy": "compact", "retention.ms": 1000, "key.index": True})
    updated = parse_config({"retention_ms": "2000"}, base=base)
    assert updated.retention_ms == 2000
    assert updated.cleanup_policy == "compact"
    assert updated.key_index is True
    assert base.retention_ms == 1000  # unchanged
    assert parse_config({}, base=base) is base
    assert parse_config(None, base=base) is base


def test_nothing_partial_on_error() -> None:
    base = parse_config({"retention.ms": 1000})
    with pytest.raises(InvalidConfigError):
        parse_config({"retention.ms": 5, "cleanup.policy": "bogus"}, base=base)
    assert base.retention_ms == 1000
    assert base.cleanup_policy == "delete"


# --- to_dict / from_dict --------------------------------------------------------------

configs = st.builds(
    lambda policy, lags, **kw: parse_config({"cleanup.policy": policy, **lags, **kw}),
    st.sampled_from(["delete", "compact", "compact,delete", ["compact", "delete"]]),
    st.tuples(st.integers(0, 2**63 - 1), st.integers(1, 2**63 - 1)).map(
        lambda t: {"min.compaction.lag.ms": min(t), "max.compaction.lag.ms": max(t)}
    ),
    **{
        "retention.ms": st.integers(-1, 2**63 - 1),
        "retention.bytes": st.integers(-1, 2**63 - 1) | st.integers(-1, 10**6).map(str),
        "max.message.bytes": st.integers(1, 2**31 - 1),
        "compression.type": st.sampled_from(["producer", "zstd", "uncompressed", "Zstd"]),
        "compression.zstd.level": st.integers(-131072, 22),
        "message.timestamp.type": st.sampled_from(["CreateTime", "LogAppendTime"]),
        "delete.retention.ms": st.integers(0, 2**63 - 1),
        "min.cleanable.dirty.ratio": st.floats(0.0, 1.0),
        "key.index": st.booleans() | st.sampled_from(["true", "False"]),
    },
)


@given(configs)
def test_to_dict_from_dict_round_trip(config: TopicConfig) -> None:
    as_dict = config.to_dict()
    assert tuple(as_dict) == CONFIG_KEYS
    assert TopicConfig.from_dict(as_dict) == config
    # Through JSON, as storage does.
    assert TopicConfig.from_dict(json.loads(json.dumps(as_dict))) == config
    # And as updates on top of anything.
    assert parse_config(as_dict, base=parse_config({"retention.ms": 1})) == config


def test_from_dict_tolerates_missing_keys() -> None:
    assert TopicConfig.from_dict({}) == DEFAULT_CONFIG
    assert TopicConfig.from_dict({"retention.ms": 5}) == parse_config({"retention.ms": 5})


def test_from_dict_refuses_unknown_keys() -> None:
    stored = {**DEFAULT_CONFIG.to_dict(), "retention.tiers": 3}
    with pytest.raises(InvalidConfigError, match="newer version") as info:
        TopicConfig.from_dict(stored)
    assert info.value.key == "retention.tiers"


def test_from_dict_validates_values() -> None:
    with pytest.raises(InvalidConfigError) as info:
        TopicConfig.from_dict({**DEFAULT_CONFIG.to_dict(), "max.message.bytes": 0})
    assert info.value.key == "max.message.bytes"
