"""S7Plan (Rust) against python-snap7's own snap7.util getters and setters (the oracle).

Round trips: a value written by ``snap7.util.set_*`` decodes to the value
``snap7.util.get_*`` reads back (exactly; floats bit for bit, NaN as NaN).
Random bytes: wherever snap7's getter yields a valid value, S7Plan gives the
same; where S7Plan reports a malformed value, snap7 raises or gives something
that is not a valid value of the type (checked per type).
"""

from __future__ import annotations

import math
import struct
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snap7 import util

from isthmus._core import S7Plan, s7_type_size
from isthmus.errors import DecodeError, TagError
from s7_types import REFERENCE, bool_getter


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def decode_one(ty: str, buf: bytes, at: int, bit: int = 0) -> tuple[Any, str | None]:
    values, reasons = S7Plan([("t", at, ty, bit)]).decode_values(buf)
    return values[0], reasons[0]


@pytest.mark.parametrize("ty", sorted(REFERENCE))
def test_sizes_agree_with_the_reference(ty: str) -> None:
    assert s7_type_size(ty) == REFERENCE[ty][0]


_SETTERS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "BYTE": (st.integers(0, 255), util.set_byte),
    "WORD": (st.integers(0, 65535), util.set_word),
    "DWORD": (st.integers(0, 2**32 - 1), util.set_dword),
    "SINT": (st.integers(-128, 127), util.set_sint),
    "INT": (st.integers(-32768, 32767), util.set_int),
    "DINT": (st.integers(-(2**31), 2**31 - 1), util.set_dint),
    "USINT": (st.integers(0, 255), util.set_usint),
    "UINT": (st.integers(0, 65535), util.set_uint),
    "UDINT": (st.integers(0, 2**32 - 1), util.set_udint),
    "REAL": (st.floats(width=32), util.set_real),
    "LREAL": (st.floats(), util.set_lreal),
    "CHAR": (st.characters(max_codepoint=127), util.set_char),
    "STRING[20]": (
        st.text(st.characters(max_codepoint=255), max_size=20),
        lambda b, at, v: util.set_string(b, at, v, 20),
    ),
    "WSTRING[10]": (
        st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=10),
        lambda b, at, v: util.set_wstring(b, at, v, 10),
    ),
    "TIME_OF_DAY": (
        st.integers(0, 86_399_999).map(lambda ms: timedelta(milliseconds=ms)),
        util.set_tod,
    ),
    "DATE": (st.dates(date(1990, 1, 1), date(2168, 12, 31)), util.set_date),
    "DATE_AND_TIME": (
        st.datetimes(datetime(1990, 1, 1), datetime(2089, 12, 31, 23, 59, 59)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
        ),
        util.set_dt,
    ),
    "DTL": (
        st.datetimes(datetime(1970, 1, 1), datetime(2554, 12, 31, 23, 59, 59)),
        util.set_dtl,
    ),
}


@pytest.mark.parametrize("ty", sorted(_SETTERS))
@settings(max_examples=150, deadline=None)
@given(data=st.data(), at=st.integers(0, 30))
def test_round_trip_through_snap7_setters(ty: str, data: st.DataObject, at: int) -> None:
    strategy, setter = _SETTERS[ty]
    value = data.draw(strategy)
    size, getter = REFERENCE[ty]
    buf = bytearray(at + size + 3)
    setter(buf, at, value)
    got, reason = decode_one(ty, bytes(buf), at)
    assert reason is None
    assert same(got, getter(buf, at)), (ty, value, got)


@settings(max_examples=200, deadline=None)
@given(byte=st.integers(0, 255), bit=st.integers(0, 7))
def test_bool_agrees_with_snap7(byte: int, bit: int) -> None:
    got, _ = decode_one("BOOL", bytes([byte]), 0, bit)
    assert got is bool_getter(bit)(bytearray([byte]), 0)


@pytest.mark.parametrize("ty", sorted(REFERENCE))
@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=24, max_size=24))
def test_random_bytes_agree_or_are_reported(ty: str, raw: bytes) -> None:
    _, getter = REFERENCE[ty]
    got, reason = decode_one(ty, raw, 0)
    try:
        expected = getter(bytearray(raw), 0)
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError):
        expected = None  # snap7 refuses these bytes too
    if reason is None:
        assert expected is not None and same(got, expected), (ty, raw.hex(), got, expected)
        return
    # isthmus reports a malformed value: snap7 refused it, or read something invalid
    assert got is None
    if expected is not None:
        assert ty in _SNAP7_LENIENT, (ty, raw.hex(), reason, expected)
        assert _SNAP7_LENIENT[ty](raw), (ty, raw.hex(), reason, expected)


def _not_bcd(raw: bytes, upto: int) -> bool:
    return any(b >> 4 > 9 or b & 15 > 9 for b in raw[:upto])


# Bytes snap7 decodes without complaint although they are no valid value of the type.
_SNAP7_LENIENT = {
    # digits > 9 in the BCD count or clock fields, or the wchar UTF-16 decoding of a
    # header-valid but surrogate-broken text
    "S5TIME": lambda raw: _not_bcd(raw[:2], 2) or raw[0] >> 4 > 3,
    "DATE_AND_TIME": lambda raw: _not_bcd(raw, 7) or raw[7] >> 4 > 9,
    "STRING[20]": lambda raw: raw[1] > 20,  # longer than the declared STRING[20]
    "WSTRING[10]": lambda raw: struct.unpack_from(">H", raw, 2)[0] > 10,
}


def test_errors_name_the_tag_and_never_panic() -> None:
    plan = S7Plan([("ok", 0, "INT", 0), ("far", 100, "REAL", 0), ("bad", 2, "DATE_AND_TIME", 0)])
    values, reasons = plan.decode_values(b"\x00\x07" + b"\xff" * 8)
    assert values == [7, None, None]
    assert reasons[1] is not None and '"far"' in reasons[1] and "100..104" in reasons[1]
    assert reasons[2] is not None and "not BCD" in reasons[2]
    with pytest.raises(DecodeError, match='"far"'):
        plan.decode(b"\x00\x07" + b"\xff" * 8)
    with pytest.raises(DecodeError):
        plan.decode(b"", base=-1)
    with pytest.raises(DecodeError, match="bytes-like"):
        plan.decode([1, 2, 3])  # type: ignore[arg-type]
    for bad in [("x", 0, "FLOAT", 0), ("x", -1, "INT", 0), ("x", 0, "BOOL", 8), ("x", 0, "INT", 1)]:
        with pytest.raises(TagError, match='"x"'):
            S7Plan([bad])
    assert plan.names == ["ok", "far", "bad"] and len(plan) == 3
    # bytearray and memoryview decode like bytes
    block = bytearray(struct.pack(">h", -5))
    assert S7Plan([("v", 0, "INT", 0)]).decode(memoryview(block)) == {"v": -5}
