"""Bad input: every error is an IsthmusError subclass and names the tag at fault."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from isthmus import (
    DecodeError,
    DecodePlan,
    IsthmusError,
    Tag,
    TagError,
    decode_array,
    encode_array,
)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"dtype": "float128"}, "unknown dtype"),
        ({"dtype": "int32", "order": "ABDC"}, "unknown order"),
        ({"dtype": "int32", "order": "abcd"}, "unknown order"),
        ({"dtype": "bit"}, "needs a bit index"),
        ({"dtype": "bit", "bit": 16}, "outside 0..=15"),
        ({"dtype": "bit", "bit": -1}, "outside 0..=15"),
        ({"dtype": "int16", "bit": 3}, "`bit` applies only"),
        ({"dtype": "string"}, "needs length"),
        ({"dtype": "string", "length": 0}, "length 0"),
        ({"dtype": "int16", "length": 2}, "`length` applies only"),
        ({"dtype": "int8", "byte": "middle"}, "unknown byte"),
        ({"dtype": "int16", "byte": "low"}, "`byte` applies only"),
        ({"dtype": "int16", "scale": 0.0}, "scale must be finite and non-zero"),
        ({"dtype": "int16", "scale": math.inf}, "scale must be finite"),
        ({"dtype": "int16", "offset": math.nan}, "offset must be finite"),
        ({"dtype": "bit", "bit": 0, "scale": 2.0}, "cannot be scaled"),
        ({"dtype": "string", "length": 2, "offset": 1.0}, "cannot be scaled"),
        ({"dtype": "int16", "address": -1}, "outside 0..=65535"),
        ({"dtype": "int16", "address": 65536}, "outside 0..=65535"),
        ({"dtype": "int16", "address": 2**80}, "outside 0..=65535"),
        ({"dtype": "float64", "address": 65533}, "runs past address 65535"),
    ],
)
def test_invalid_tags_raise_tag_error_naming_the_tag(kwargs: dict[str, Any], fragment: str) -> None:
    kwargs.setdefault("address", 10)
    with pytest.raises(TagError, match=fragment) as err:
        DecodePlan([Tag("pump_speed", **kwargs)])
    assert "pump_speed" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_duplicate_names_raise_tag_error() -> None:
    with pytest.raises(TagError, match=r"duplicate tag name .*flow.* 3 and 7"):
        DecodePlan([Tag("flow", 3, "int16"), Tag("temp", 5, "int16"), Tag("flow", 7, "float32")])


def test_plan_takes_only_tags() -> None:
    with pytest.raises(TypeError, match="Tag objects"):
        DecodePlan([Tag("a", 0, "int16"), ("b", 1, "int16")])  # type: ignore[list-item]


def test_too_short_names_first_tag_that_does_not_fit_and_registers_needed() -> None:
    plan = DecodePlan(
        [Tag("total", 10, "float64"), Tag("status", 0, "uint16"), Tag("speed", 4, "float32")]
    )
    assert (plan.start, plan.count) == (0, 14)
    with pytest.raises(DecodeError, match=r'"speed".*needs 6 registers from base 0, got 5'):
        plan.decode([0] * 5)
    with pytest.raises(DecodeError, match=r'"total".*needs 14 registers'):
        plan.decode([0] * 13)
    with pytest.raises(DecodeError, match=r'"status".*before the block'):
        plan.decode([0] * 20, base=1)
    with pytest.raises(DecodeError, match=r'"speed"'):
        plan.decode_many(np.zeros((4, 5), dtype=np.uint16))


@pytest.mark.parametrize(
    "registers",
    [[0, 1, 65536, 3], [0, -1, 2, 3], [2**70, 0, 0, 0], np.array([0, 1, 2, 70000]), (1, 2, 3, -5)],
)
def test_registers_out_of_range_raise(registers: Any) -> None:
    plan = DecodePlan([Tag("level", 0, "uint16")])
    with pytest.raises(DecodeError, match=r"outside 0\.\.=65535"):
        plan.decode(registers)
    with pytest.raises(DecodeError, match=r"outside 0\.\.=65535"):
        decode_array(registers, "uint16")


@pytest.mark.parametrize(
    "registers",
    [[0, 1.5], ["a", 1], np.array([0.0, 1.0]), b"\x00\x01\x02", object()],
)
def test_registers_that_are_not_ints_raise(registers: Any) -> None:
    plan = DecodePlan([Tag("level", 0, "uint16")])
    with pytest.raises(DecodeError):
        plan.decode(registers)


def test_frames_must_be_two_dimensional_integers() -> None:
    plan = DecodePlan([Tag("a", 0, "int16")])
    with pytest.raises(DecodeError, match="2-D"):
        plan.decode_many(np.zeros(5, dtype=np.uint16))
    with pytest.raises(DecodeError, match="integers"):
        plan.decode_many(np.zeros((2, 5)))
    with pytest.raises(DecodeError, match="outside"):
        plan.decode_many([[1, 2], [3, -4]])
    with pytest.raises(DecodeError):
        plan.decode_many([[1, 2], [3]])


def test_bad_bcd_names_the_tag_and_frame() -> None:
    plan = DecodePlan([Tag("ok", 0, "uint16"), Tag("kwh_meter", 1, "bcd16")])
    with pytest.raises(DecodeError, match=r'"kwh_meter".*0x12a4'):
        plan.decode([0, 0x12A4])
    frames = np.array([[0, 0x1234], [0, 0x00F0]], dtype=np.uint16)
    with pytest.raises(DecodeError, match=r'"kwh_meter".*frame 1'):
        plan.decode_many(frames)
    with pytest.raises(DecodeError, match="index 1"):
        decode_array([0x0001, 0xABCD], "bcd16")


def test_nan_and_infinity_decode_without_error() -> None:
    plan = DecodePlan([Tag("a", 0, "float32"), Tag("b", 2, "float16"), Tag("c", 3, "float64")])
    out = plan.decode([0x7FC0, 0, 0x7C00, 0xFFF0, 0, 0, 0])
    assert math.isnan(out["a"])
    assert out["b"] == math.inf
    assert out["c"] == -math.inf
    arr = decode_array([0x7FC0, 0, 0xFF80, 0], "float32", scale=2.0)
    assert math.isnan(arr[0]) and arr[1] == -math.inf


@pytest.mark.parametrize(
    ("tag", "value", "fragment"),
    [
        (Tag("small", 0, "int16"), 40_000, "outside"),
        (Tag("small", 0, "uint16"), -1, "outside"),
        (Tag("small", 0, "int8"), 128, "outside"),
        (Tag("small", 0, "uint64"), 2**64, "outside"),
        (Tag("small", 0, "uint64"), 2**200, "outside"),
        (Tag("small", 0, "int16"), 1.5, "not an integer"),
        (Tag("small", 0, "int16"), "7", "not an integer"),
        (Tag("small", 0, "bcd16"), 10_000, "outside"),
        (Tag("small", 0, "float16"), 1e6, "overflows float16"),
        (Tag("small", 0, "float32"), 1e300, "overflows float32"),
        (Tag("small", 0, "float32"), "x", "not a number"),
        (Tag("small", 0, "string", length=1), "abc", "do not fit"),
        (Tag("small", 0, "string", length=1), 5, "not a string"),
        (Tag("small", 0, "bit", bit=1), 2, "not a bool"),
        (Tag("small", 0, "int16", scale=0.1), 4000.0, "outside"),
        (Tag("small", 0, "int16"), [1], "not a bool, int, float or str"),
    ],
)
def test_unencodable_values_name_the_tag(tag: Tag, value: Any, fragment: str) -> None:
    plan = DecodePlan([tag])
    with pytest.raises(DecodeError, match=fragment) as err:
        plan.encode({"small": value})
    assert '"small"' in str(err.value)


def test_encode_needs_every_tag_and_no_unknown_names() -> None:
    plan = DecodePlan([Tag("a", 0, "int16"), Tag("b", 1, "int16")])
    with pytest.raises(DecodeError, match=r'"b".*no value'):
        plan.encode({"a": 1})
    with pytest.raises(DecodeError, match="no tag 'c'"):
        plan.encode({"a": 1, "b": 2, "c": 3})


def test_array_argument_errors() -> None:
    with pytest.raises(TagError, match="unknown dtype"):
        decode_array([0], "int12")
    with pytest.raises(TagError, match="unknown order"):
        decode_array([0], "int16", order="XYZW")
    with pytest.raises(DecodeError, match="no array form"):
        decode_array([0], "string")
    with pytest.raises(DecodeError, match="3 registers do not make whole float32"):
        decode_array([0, 0, 0], "float32")
    with pytest.raises(DecodeError, match="pairs"):
        decode_array(b"\x00\x01\x02", "int16")
    with pytest.raises(DecodeError, match="scale"):
        decode_array([0], "int16", scale=0.0)
    with pytest.raises(DecodeError, match="index 1"):
        encode_array([1, 70_000], "uint16")
    with pytest.raises(DecodeError, match="whole number"):
        encode_array([0.5], "int32")
    with pytest.raises(DecodeError, match="1-D"):
        encode_array([[1, 2]], "int16")
    with pytest.raises(DecodeError, match="numbers"):
        encode_array(["a"], "int16")
    with pytest.raises(DecodeError, match="two per register"):
        encode_array([1, 2, 3], "uint8")


def test_every_error_is_an_isthmus_error() -> None:
    for cls in (TagError, DecodeError):
        assert issubclass(cls, IsthmusError)
