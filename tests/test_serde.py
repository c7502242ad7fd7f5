"""Tests for eventlog.serde: the built-in serializers and the argument helpers."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eventlog
import eventlog.serde as serde
from eventlog import InvalidArgumentError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


# -- the built-ins ---------------------------------------------------------------------


def test_builtins_are_serde_instances_with_names() -> None:
    for name in ("json", "str", "bytes"):
        obj = getattr(serde, name)
        assert isinstance(obj, serde.Serde)
        assert obj.name == name
        assert repr(obj) == f"eventlog.serde.{name}"
    assert set(serde.__all__) == {
        "Serde",
        "as_deserializer",
        "as_serializer",
        "bytes",
        "json",
        "str",
    }


def test_builtins_pickle_as_the_same_object() -> None:
    for obj in (serde.json, serde.str, serde.bytes):
        assert pickle.loads(pickle.dumps(obj)) is obj


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    data = serde.json.serialize(value)
    assert type(data) is bytes
    assert serde.json.deserialize(data) == value
    # The bytes are ordinary JSON that any parser reads.
    assert json.loads(data.decode("utf-8")) == value


def test_json_is_compact_utf8_and_keeps_non_ascii() -> None:
    data = serde.json.serialize({"name": "Zoë", "tags": ["a", "€"], "n": 1})
    assert data == '{"name":"Zoë","tags":["a","€"],"n":1}'.encode()


def test_json_refuses_nan_and_infinity() -> None:
    for bad in (math.nan, math.inf, -math.inf, {"x": math.nan}):
        with pytest.raises(ValueError, match="JSON"):
            serde.json.serialize(bad)


def test_json_refuses_unserializable_objects() -> None:
    with pytest.raises(TypeError):
        serde.json.serialize({1, 2})
    with pytest.raises(TypeError):
        serde.json.serialize(b"raw bytes")


def test_json_deserialize_accepts_bytes_like_and_rejects_garbage() -> None:
    assert serde.json.deserialize(memoryview(b'{"a":[1]}')) == {"a": [1]}  # type: ignore[arg-type]
    assert serde.json.deserialize(bytearray(b"[]")) == []  # type: ignore[arg-type]
    with pytest.raises(json.JSONDecodeError):
        serde.json.deserialize(b"{not json")
    with pytest.raises(UnicodeDecodeError):
        serde.json.deserialize(b"\xff\xfe\xfa")


def test_json_deserialize_never_evaluates() -> None:
    # A Python expression is not JSON: it is refused, not evaluated.
    with pytest.raises(json.JSONDecodeError):
        serde.json.deserialize(b"__import__('os').getcwd()")


@given(st.text())
def test_str_round_trip(text: str) -> None:
    data = serde.str.serialize(text)
    assert data == text.encode("utf-8")
    assert serde.str.deserialize(data) == text


def test_str_refuses_non_text_and_invalid_utf8() -> None:
    for bad in (1, b"bytes", None, ["x"]):
        with pytest.raises(TypeError, match=r"eventlog\.serde\.str serializes str"):
            serde.str.serialize(bad)
    with pytest.raises(UnicodeDecodeError):
        serde.str.deserialize(b"\xff")
    # Lone surrogates cannot be encoded as UTF-8.
    with pytest.raises(UnicodeEncodeError):
        serde.str.serialize("\ud800")


def test_str_subclass_is_text() -> None:
    class Name(str):
        pass

    assert serde.str.serialize(Name("ab")) == b"ab"


@given(st.binary())
def test_bytes_is_identity(data: bytes) -> None:
    assert serde.bytes.serialize(data) is data
    assert serde.bytes.deserialize(data) is data


def test_bytes_copies_mutable_buffers() -> None:
    buf = bytearray(b"abc")
    out = serde.bytes.serialize(buf)
    buf[0] = ord("z")
    assert out == b"abc"
    assert type(out) is bytes
    assert serde.bytes.serialize(memoryview(b"xyz")) == b"xyz"
    assert serde.bytes.deserialize(bytearray(b"q")) == b"q"  # type: ignore[arg-type]


def test_bytes_refuses_other_types_with_a_hint() -> None:
    for bad in ("text", 1, None, [1]):
        with pytest.raises(TypeError, match="bytes, bytearray or memoryview"):
            serde.bytes.serialize(bad)


# -- the Serde base class --------------------------------------------------------------


class Upper(serde.Serde):
    """A custom serde: text stored upper-case."""

    __slots__ = ()

    def serialize(self, obj: Any) -> bytes:
        return str(obj).upper().encode()

    def deserialize(self, data: bytes) -> Any:
        return data.decode().lower()


def test_custom_serde_subclass() -> None:
    upper = Upper("upper")
    assert repr(upper) == "<Upper 'upper'>"
    ser = serde.as_serializer(upper)
    de = serde.as_deserializer(upper)
    assert ser is not None
    assert de is not None
    assert ser("abc") == b"ABC"
    assert de(b"ABC") == "abc"


def test_base_serde_methods_are_abstract() -> None:
    base = serde.Serde("nothing")
    with pytest.raises(NotImplementedError):
        base.serialize(1)
    with pytest.raises(NotImplementedError):
        base.deserialize(b"")


def test_serde_is_slotted() -> None:
    with pytest.raises(AttributeError):
        serde.json.extra = 1  # type: ignore[attr-defined]


# -- as_serializer / as_deserializer -------------------------------------------------------


def test_none_means_no_conversion() -> None:
    assert serde.as_serializer(None) is None
    assert serde.as_deserializer(None) is None


def test_a_serde_gives_its_bound_methods() -> None:
    ser = serde.as_serializer(serde.json)
    de = serde.as_deserializer(serde.json)
    assert ser is not None
    assert de is not None
    assert ser({"a": 1}) == b'{"a":1}'
    assert de(b'{"a":1}') == {"a": 1}


def test_a_callable_is_used_as_is() -> None:
    def to_bytes(obj: object) -> bytes:
        return repr(obj).encode()

    assert serde.as_serializer(to_bytes) is to_bytes
    assert serde.as_deserializer(bytes.decode) is bytes.decode


@pytest.mark.parametrize("helper", [serde.as_serializer, serde.as_deserializer])
@pytest.mark.parametrize(
    ("bad", "hint"),
    [
        ("json", r"did you mean eventlog\.serde\.json\?"),
        ("str", r"did you mean eventlog\.serde\.str\?"),
        ("pickle", "got str 'pickle'"),
        (42, "got int 42"),
        (Upper, r"pass an instance, Upper\(\.\.\.\), not the class"),
    ],
)
def test_bad_arguments_say_what_is_allowed(helper: Any, bad: object, hint: str) -> None:
    with pytest.raises(InvalidArgumentError, match=hint) as info:
        helper(bad, "value_serializer")
    message = str(info.value)
    assert message.startswith("value_serializer must be None")
    assert "eventlog.serde.json" in message
    assert "a callable" in message


def test_public_module_is_reachable_from_the_package() -> None:
    assert eventlog.serde is serde
