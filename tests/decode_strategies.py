"""Hypothesis strategies and a ``struct`` oracle shared by the decode tests.

The oracle spells the order rules out independently of the Rust code: pack
the value big-endian with :mod:`struct` (bytes A B C D ...), cut it into
16-bit registers, reverse the registers for a word swap (``CD..``) and swap
the bytes inside each register for a byte swap (``BA..``/``DC..``).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from hypothesis import strategies as st

ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")

# struct format and register width of every fixed-width numeric dtype.
STRUCT_FORMATS: dict[str, tuple[str, int]] = {
    "int16": ("h", 1),
    "uint16": ("H", 1),
    "int32": ("i", 2),
    "uint32": ("I", 2),
    "int64": ("q", 4),
    "uint64": ("Q", 4),
    "float16": ("e", 1),
    "float32": ("f", 2),
    "float64": ("d", 4),
}

INT_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "bcd16": (0, 9_999),
    "bcd32": (0, 99_999_999),
}

FLOAT_WIDTHS = {"float16": 16, "float32": 32, "float64": 64}

ALL_DTYPES = (
    "bit",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    "string",
    "bcd16",
    "bcd32",
)


def arrange(wire: bytes, order: str) -> list[int]:
    """Big-endian bytes of one value -> registers as a device with ``order`` sends them."""
    words = [wire[i : i + 2] for i in range(0, len(wire), 2)]
    if order[0] == "C" or order[0] == "D":  # CDAB, DCBA: registers reversed
        words.reverse()
    if order in ("BADC", "DCBA"):  # bytes swapped inside each register
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def struct_registers(dtype: str, value: int | float, order: str) -> list[int]:
    fmt, _ = STRUCT_FORMATS[dtype]
    return arrange(struct.pack(">" + fmt, value), order)


def bcd_registers(dtype: str, value: int, order: str) -> list[int]:
    digits = 4 if dtype == "bcd16" else 8
    return arrange(bytes.fromhex(f"{value:0{digits}d}"), order)


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN and keeps the sign of zero."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return type(a) is type(b) and a == b


@st.composite
def tag_and_value(draw: st.DrawFn, dtype: str, order: str) -> tuple[dict[str, Any], Any]:
    """Keyword arguments of an unscaled tag of ``dtype`` at address 0, and a value for it."""
    kwargs: dict[str, Any] = {"dtype": dtype, "order": order}
    if dtype == "bit":
        kwargs["bit"] = draw(st.integers(0, 15))
        return kwargs, draw(st.booleans())
    if dtype in ("int8", "uint8"):
        kwargs["byte"] = draw(st.sampled_from(["high", "low"]))
    if dtype in INT_RANGES:
        lo, hi = INT_RANGES[dtype]
        return kwargs, draw(st.integers(lo, hi))
    if dtype in FLOAT_WIDTHS:
        return kwargs, draw(st.floats(width=FLOAT_WIDTHS[dtype]))  # type: ignore[arg-type]
    assert dtype == "string"
    length = draw(st.integers(1, 8))
    kwargs["length"] = length
    text = draw(
        st.text(max_size=2 * length)
        .filter(lambda s: len(s.encode()) <= 2 * length)
        .map(lambda s: s.rstrip("\x00 "))
    )
    return kwargs, text


registers = st.lists(st.integers(0, 0xFFFF), max_size=40)
