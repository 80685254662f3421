"""The register containers plan.decode and decode_array accept, and their outputs."""

from __future__ import annotations

import array
from typing import Any

import numpy as np
import pytest

from isthmus import DecodeError, DecodePlan, Tag, decode_array, encode_array

REGS = [0x0102, 0xFFFE, 0x4142, 0x4300]
PLAN = DecodePlan(
    [
        Tag("word", 0, "uint16"),
        Tag("neg", 1, "int16"),
        Tag("name", 2, "string", length=2, unit=None),
        Tag("both", 0, "int32", scale=0.5, unit="bar"),
    ]
)
EXPECTED = {"word": 0x0102, "neg": -2, "name": "ABC", "both": (0x0102FFFE) * 0.5}


@pytest.mark.parametrize(
    "registers",
    [
        REGS,
        tuple(REGS),
        array.array("H", REGS),
        array.array("i", REGS),
        np.array(REGS, dtype=np.uint16),
        np.array(REGS, dtype=np.int64),
        np.array(REGS, dtype=">u2"),
        np.array([r for r in REGS for _ in (0, 1)], dtype=np.uint16)[::2],  # strided view
        b"".join(r.to_bytes(2, "big") for r in REGS),
        bytearray(b"".join(r.to_bytes(2, "big") for r in REGS)),
        memoryview(b"".join(r.to_bytes(2, "big") for r in REGS)),
        iter(REGS),
    ],
    ids=lambda r: type(r).__name__,
)
def test_every_register_container_decodes_alike(registers: Any) -> None:
    out = PLAN.decode(registers)
    assert out == EXPECTED
    assert [type(v) for v in out.values()] == [int, int, str, float]


def test_plan_exposes_its_span_and_tags() -> None:
    plan = DecodePlan([Tag("b", 103, "float32"), Tag("a", 100, "bit", bit=2)])
    assert (plan.start, plan.count, len(plan)) == (100, 5, 2)
    assert [t.name for t in plan.tags] == ["b", "a"]
    assert plan.decode([0, 0, 0, 0, 0x3F80, 0], base=99) == {"b": 1.0, "a": False}
    with pytest.raises(DecodeError, match=r'"b".*needs 6 registers from base 99, got 5'):
        plan.decode([0, 0, 0, 0x3F80, 0], base=99)


def test_tag_attributes_and_repr() -> None:
    tag = Tag("temp", 7, "int8", order="BADC", scale=0.5, offset=-10.0, unit="degC", byte="low")
    assert (tag.name, tag.address, tag.dtype, tag.order) == ("temp", 7, "int8", "BADC")
    assert (tag.scale, tag.offset, tag.unit, tag.byte, tag.width) == (0.5, -10.0, "degC", "low", 1)
    assert (tag.bit, tag.length) == (None, None)
    assert repr(tag) == (
        "Tag('temp', 7, 'int8', order='BADC', scale=0.5, offset=-10.0, unit='degC', byte='low')"
    )
    assert Tag("x", 0, "uint8").byte == "high"
    assert Tag("x", 0, "string", length=3).width == 3
    assert Tag("x", 0, "float64").width == 4
    same = Tag("temp", 7, "int8", order="BADC", scale=0.5, offset=-10.0, unit="degC", byte="low")
    assert tag == same
    assert tag != Tag("temp", 7, "int8")
    assert hash(tag) == hash(same)
    assert len({tag, same, Tag("temp", 7, "int8")}) == 2


def test_decode_many_columns_have_native_dtypes() -> None:
    tags = [
        Tag("on", 0, "bit", bit=0),
        Tag("i8", 0, "int8"),
        Tag("u8", 0, "uint8", byte="low"),
        Tag("i16", 1, "int16"),
        Tag("u16", 1, "uint16"),
        Tag("i32", 2, "int32"),
        Tag("u32", 2, "uint32"),
        Tag("i64", 4, "int64"),
        Tag("u64", 4, "uint64"),
        Tag("f16", 1, "float16"),
        Tag("f32", 2, "float32"),
        Tag("f64", 4, "float64"),
        Tag("b16", 8, "bcd16"),
        Tag("b32", 8, "bcd32"),
        Tag("scaled", 1, "int16", scale=0.1),
        Tag("s", 10, "string", length=1),
    ]
    plan = DecodePlan(tags)
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 0x9999, size=(50, plan.count), dtype=np.uint16)
    frames[:, 8:10] = 0x1234  # valid BCD
    columns = plan.decode_many(frames)
    expected = {
        "on": np.bool_,
        "i8": np.int8,
        "u8": np.uint8,
        "i16": np.int16,
        "u16": np.uint16,
        "i32": np.int32,
        "u32": np.uint32,
        "i64": np.int64,
        "u64": np.uint64,
        "f16": np.float16,
        "f32": np.float32,
        "f64": np.float64,
        "b16": np.uint16,
        "b32": np.uint32,
        "scaled": np.float64,
        "s": np.object_,
    }
    assert list(columns) == [t.name for t in tags]
    for name, dtype in expected.items():
        assert columns[name].dtype == dtype, name
        assert columns[name].shape == (50,)
    # Every row agrees with decoding that frame alone.
    for row in (0, 17, 49):
        single = plan.decode(frames[row])
        for name, value in single.items():
            got = columns[name][row]
            if isinstance(value, float) and np.isnan(value):
                assert np.isnan(got)
            else:
                assert got == value, name


def test_decode_many_accepts_other_layouts_and_base() -> None:
    plan = DecodePlan([Tag("x", 10, "int16")])
    frames = np.arange(12, dtype=np.int64).reshape(4, 3)
    np.testing.assert_array_equal(plan.decode_many(frames)["x"], [0, 3, 6, 9])
    np.testing.assert_array_equal(plan.decode_many(frames, base=8)["x"], [2, 5, 8, 11])
    fortran = np.asfortranarray(frames.astype(np.uint16))
    np.testing.assert_array_equal(plan.decode_many(fortran, base=9)["x"], [1, 4, 7, 10])
    assert plan.decode_many(np.zeros((0, 3), dtype=np.uint16))["x"].shape == (0,)


def test_decode_array_dtypes_and_scaling() -> None:
    regs = np.array([0x0001, 0x8000, 0xFFFF, 0x7FFF], dtype=np.uint16)
    np.testing.assert_array_equal(decode_array(regs, "int16"), [1, -32768, -1, 32767])
    assert decode_array(regs, "int16").dtype == np.int16
    scaled = decode_array(regs, "int16", scale=0.001, offset=1.0)
    assert scaled.dtype == np.float64
    np.testing.assert_allclose(scaled, np.array([1, -32768, -1, 32767]) * 0.001 + 1.0)
    np.testing.assert_array_equal(decode_array(regs, "uint8"), [0, 1, 128, 0, 255, 255, 127, 255])
    np.testing.assert_array_equal(decode_array(regs, "uint8", order="BADC")[:2], [1, 0])
    assert decode_array(regs, "uint32", order="CDAB").tolist() == [0x80000001, 0x7FFFFFFF]
    assert decode_array([], "float64").shape == (0,)
    # numpy's own big-endian reading agrees on a wire-bytes block.
    wire = np.arange(-500, 500, dtype=">i2").tobytes()
    np.testing.assert_array_equal(decode_array(wire, "int16"), np.frombuffer(wire, ">i2"))
    np.testing.assert_array_equal(
        decode_array(wire, "float32", order="ABCD"), np.frombuffer(wire, ">f4")
    )
    np.testing.assert_array_equal(
        decode_array(wire, "int32", order="DCBA"), np.frombuffer(wire, "<i4")
    )


def test_encode_array_accepts_lists_and_arrays() -> None:
    assert encode_array([1, -1], "int16").tolist() == [1, 0xFFFF]
    assert encode_array(np.array([1.0, 2.0], dtype=np.float32), "float32").tolist() == [
        0x3F80,
        0,
        0x4000,
        0,
    ]
    assert encode_array([True, False], "uint16").tolist() == [1, 0]
    assert encode_array([2**64 - 1], "uint64").tolist() == [0xFFFF] * 4
    assert encode_array([0x12, 0x34], "uint8", order="BADC").tolist() == [0x3412]
    assert encode_array([1234], "bcd16").tolist() == [0x1234]


def test_encode_merges_bits_and_bytes_sharing_a_register() -> None:
    plan = DecodePlan(
        [
            Tag("run", 0, "bit", bit=0),
            Tag("fault", 0, "bit", bit=15),
            Tag("mode", 1, "uint8", byte="high"),
            Tag("step", 1, "int8", byte="low"),
        ]
    )
    values: dict[str, bool | int] = {"run": True, "fault": True, "mode": 3, "step": -1}
    regs = plan.encode(values)
    assert regs.tolist() == [0x8001, 0x03FF]
    assert plan.decode(regs) == values
    assert plan.encode(
        {"run": np.bool_(True), "fault": 0, "mode": np.int64(3), "step": 0}
    ).tolist() == [
        1,
        0x0300,
    ]
