"""Decoding checked against independent oracles: pymodbus and Python's struct.

pymodbus ``convert_from_registers`` knows big and little word order only, so it
checks ABCD (``word_order="big"``) and CDAB (``word_order="little"``) for the
types it has; :mod:`struct` with the register arrangement spelled out in
``decode_strategies.arrange`` checks every order, float16, 8-bit halves, bits
and BCD.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin

from decode_strategies import (
    FLOAT_WIDTHS,
    INT_RANGES,
    ORDERS,
    STRUCT_FORMATS,
    arrange,
    bcd_registers,
    same,
    struct_registers,
)
from isthmus import DecodePlan, Tag, decode_array

DT = ModbusClientMixin.DATATYPE
PYMODBUS_TYPES = {
    "int16": DT.INT16,
    "uint16": DT.UINT16,
    "int32": DT.INT32,
    "uint32": DT.UINT32,
    "int64": DT.INT64,
    "uint64": DT.UINT64,
    "float32": DT.FLOAT32,
    "float64": DT.FLOAT64,
}
PYMODBUS_WORD_ORDER = {"ABCD": "big", "CDAB": "little"}


def decode_one(registers: list[int], dtype: str, order: str, **kwargs: Any) -> Any:
    return DecodePlan([Tag("x", 0, dtype, order=order, **kwargs)]).decode(registers)["x"]


@pytest.mark.parametrize("order", sorted(PYMODBUS_WORD_ORDER))
@pytest.mark.parametrize("dtype", sorted(PYMODBUS_TYPES))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_matches_pymodbus(dtype: str, order: str, data: st.DataObject) -> None:
    width = STRUCT_FORMATS[dtype][1]
    regs = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=width, max_size=width))
    expected = ModbusClientMixin.convert_from_registers(
        regs, PYMODBUS_TYPES[dtype], word_order=PYMODBUS_WORD_ORDER[order]
    )
    assert same(decode_one(regs, dtype, order), expected)


@pytest.mark.parametrize("order", sorted(PYMODBUS_WORD_ORDER))
@settings(max_examples=50, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00"), max_size=12))
def test_strings_match_pymodbus(order: str, text: str) -> None:
    wire = text.encode().ljust(12, b"\x00")
    regs = arrange(wire, "ABCD")
    # pymodbus reverses the registers for little word order, as CDAB does.
    if order == "CDAB":
        regs = regs[::-1]
    expected = ModbusClientMixin.convert_from_registers(
        regs, DT.STRING, word_order=PYMODBUS_WORD_ORDER[order]
    )
    assert isinstance(expected, str)
    # isthmus also trims trailing spaces, which pymodbus keeps.
    assert decode_one(regs, "string", order, length=6) == expected.rstrip(" ")


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", sorted(STRUCT_FORMATS))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_matches_struct_in_every_order(dtype: str, order: str, data: st.DataObject) -> None:
    if dtype in FLOAT_WIDTHS:
        value: Any = data.draw(st.floats(width=FLOAT_WIDTHS[dtype]))  # type: ignore[arg-type]
    else:
        value = data.draw(st.integers(*INT_RANGES[dtype]))
    regs = struct_registers(dtype, value, order)
    assert same(decode_one(regs, dtype, order), value)
    # decode_array agrees for a block of repeated values.
    block = decode_array(regs * 3, dtype, order)
    assert block.dtype == np.dtype(dtype)
    for item in block.tolist():
        assert same(item, value)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", ["bcd16", "bcd32"])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_bcd_matches_decimal_digits(dtype: str, order: str, data: st.DataObject) -> None:
    value = data.draw(st.integers(*INT_RANGES[dtype]))
    regs = bcd_registers(dtype, value, order)
    assert decode_one(regs, dtype, order) == value
    assert decode_array(regs, dtype, order).tolist() == [value]


@pytest.mark.parametrize("order", ORDERS)
@given(reg=st.integers(0, 0xFFFF))
def test_bits_and_bytes_follow_the_byte_switch(order: str, reg: int) -> None:
    wire = reg.to_bytes(2, "big")
    if order in ("BADC", "DCBA"):
        wire = wire[::-1]
    value = int.from_bytes(wire, "big")  # the register as the value sees it
    high, low = wire[0], wire[1]
    tags = [Tag(f"b{n}", 0, "bit", bit=n, order=order) for n in range(16)]
    tags += [
        Tag("u_hi", 0, "uint8", order=order),
        Tag("u_lo", 0, "uint8", byte="low", order=order),
        Tag("s_hi", 0, "int8", byte="high", order=order),
        Tag("s_lo", 0, "int8", byte="low", order=order),
    ]
    got = DecodePlan(tags).decode([reg])
    assert [got[f"b{n}"] for n in range(16)] == [bool(value >> n & 1) for n in range(16)]
    assert (got["u_hi"], got["u_lo"]) == (high, low)
    assert (got["s_hi"], got["s_lo"]) == (
        int.from_bytes([high], "big", signed=True),
        int.from_bytes([low], "big", signed=True),
    )


def test_known_vendor_layouts() -> None:
    """Hand-written vectors: 123.456 as float32 in the four layouts vendors use."""
    layouts = {
        "ABCD": [0x42F6, 0xE979],
        "CDAB": [0xE979, 0x42F6],
        "BADC": [0xF642, 0x79E9],
        "DCBA": [0x79E9, 0xF642],
    }
    for order, regs in layouts.items():
        assert decode_one(regs, "float32", order) == pytest.approx(123.456, rel=1e-7)
    # A meter's 32-bit energy counter, low word first, scaled to kWh.
    assert decode_one([0x86A0, 0x0001], "uint32", "CDAB", scale=0.01) == pytest.approx(1000.0)
    # "ABB-01" as a byte-swapped string.
    assert decode_one([0x4241, 0x2D42, 0x3130], "string", "BADC", length=3) == "ABB-01"
