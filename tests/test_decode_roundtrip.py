"""Round trips: encode then decode gives the value back, for every dtype and order."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decode_strategies import (
    ALL_DTYPES,
    FLOAT_WIDTHS,
    INT_RANGES,
    ORDERS,
    same,
    tag_and_value,
)
from isthmus import DecodePlan, Tag, decode_array, encode_array


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_plan_round_trip(dtype: str, order: str, data: st.DataObject) -> None:
    kwargs, value = data.draw(tag_and_value(dtype, order))
    address = data.draw(st.integers(0, 1000))
    plan = DecodePlan([Tag("x", address, **kwargs)])
    regs = plan.encode({"x": value})
    assert regs.dtype == np.uint16
    assert len(regs) == plan.count
    decoded = plan.decode(regs)["x"]
    assert same(decoded, value), (decoded, value)
    # The same registers as wire bytes and as a list decode alike.
    assert same(plan.decode(regs.astype(">u2").tobytes())["x"], value)
    assert same(plan.decode([int(r) for r in regs], base=address)["x"], value)


@pytest.mark.parametrize("order", ORDERS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_many_tags_in_one_block_round_trip(order: str, data: st.DataObject) -> None:
    """Tags packed back to back (bits and bytes sharing registers) keep their values."""
    tags: list[Tag] = []
    values: dict[str, Any] = {}
    address = 0
    for i, dtype in enumerate(data.draw(st.lists(st.sampled_from(ALL_DTYPES), min_size=1))):
        kwargs, value = data.draw(tag_and_value(dtype, order))
        tag = Tag(f"t{i}", address, **kwargs)
        tags.append(tag)
        values[tag.name] = value
        address += tag.width
    plan = DecodePlan(tags)
    decoded = plan.decode(plan.encode(values))
    assert list(decoded) == [t.name for t in tags]
    for name, value in values.items():
        assert same(decoded[name], value), (name, decoded[name], value)
    # decode_many over repeated frames gives the same values per column.
    frames = np.tile(plan.encode(values), (3, 1))
    columns = plan.decode_many(frames)
    for name, value in values.items():
        assert len(columns[name]) == 3
        for item in columns[name]:
            got = item.item() if isinstance(item, np.generic) else item
            assert same(type(value)(got), value), (name, got, value)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", ["int16", "uint16", "int32", "uint32", "int64", "bcd16", "bcd32"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_scaled_integer_round_trip(dtype: str, order: str, data: st.DataObject) -> None:
    lo, hi = INT_RANGES[dtype]
    lo, hi = max(lo, -(2**40)), min(hi, 2**40)  # keep raw * scale exact in float64
    raw = data.draw(st.integers(lo, hi))
    scale = data.draw(st.sampled_from([0.1, 0.01, 2.0, -0.5, 1.0]))
    offset = data.draw(st.sampled_from([0.0, -40.0, 273.15]))
    plan = DecodePlan([Tag("x", 0, dtype, order=order, scale=scale, offset=offset)])
    value = raw * scale + offset
    decoded = plan.decode(plan.encode({"x": value}))["x"]
    if scale == 1.0 and offset == 0.0:
        assert decoded == raw and type(decoded) is int
    else:
        assert type(decoded) is float
        assert math.isclose(decoded, value, rel_tol=1e-12, abs_tol=1e-9)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", sorted(set(INT_RANGES) | set(FLOAT_WIDTHS)))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_array_round_trip(dtype: str, order: str, data: st.DataObject) -> None:
    if dtype in FLOAT_WIDTHS:
        values = data.draw(st.lists(st.floats(width=FLOAT_WIDTHS[dtype]), max_size=20))  # type: ignore[arg-type]
        array = np.array(values, dtype=np.float64)
    else:
        lo, hi = INT_RANGES[dtype]
        values = data.draw(st.lists(st.integers(lo, hi), max_size=20))
        if dtype in ("int8", "uint8") and len(values) % 2:
            values.append(lo)
        array = np.array(values, dtype=np.uint64 if dtype == "uint64" else np.int64)
    regs = encode_array(array, dtype, order)
    assert regs.dtype == np.uint16
    back = decode_array(regs, dtype, order)
    native = {"bcd16": "uint16", "bcd32": "uint32"}
    expected_dtype = np.dtype(native.get(dtype, dtype))
    assert back.dtype == expected_dtype
    assert len(back) == len(values)
    for got, want in zip(back.tolist(), values, strict=True):
        assert same(float(got), float(want)) if dtype in FLOAT_WIDTHS else got == want
    # Wire bytes decode exactly as the register values do.
    wire = decode_array(regs.astype(">u2").tobytes(), dtype, order)
    np.testing.assert_array_equal(wire, back)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", ["bit", "int8", "uint8", "int16", "uint32", "int64", "bcd16"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_registers_decode_then_encode_to_themselves(
    dtype: str, order: str, data: st.DataObject
) -> None:
    """Every register pattern is a valid integer value, so decoding loses nothing."""
    kwargs: dict[str, Any] = {"bit": data.draw(st.integers(0, 15))} if dtype == "bit" else {}
    plan = DecodePlan([Tag("x", 0, dtype, order=order, **kwargs)])
    if dtype == "bcd16":
        regs = [int(f"{data.draw(st.integers(0, 9999)):04d}", 16)]
        if order in ("BADC", "DCBA"):
            regs = [((regs[0] & 0xFF) << 8) | (regs[0] >> 8)]
    else:
        regs = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=plan.count, max_size=plan.count))
    back = plan.encode(plan.decode(regs)).tolist()
    if dtype == "bit":  # the other 15 bits are not the tag's
        mask = (
            (1 << kwargs["bit"])
            if order in ("ABCD", "CDAB")
            else ((1 << kwargs["bit"]) >> 8 | (1 << kwargs["bit"]) << 8) & 0xFFFF
        )
        assert back[0] & mask == regs[0] & mask
    elif dtype in ("int8", "uint8"):  # only the high byte (after the swap) is the tag's
        mask = 0xFF00 if order in ("ABCD", "CDAB") else 0x00FF
        assert back[0] & mask == regs[0] & mask
    else:
        assert back == regs
