"""The snap7.util reference for each S7 type, in isthmus's value conventions.

Shared by the oracle tests and the decode bench: ``(type, size, getter)`` where
``getter(buffer, offset)`` calls python-snap7's own ``snap7.util.get_*`` and
converts its result to what :class:`isthmus._core.S7Plan` publishes (durations
in seconds, dates as ISO text).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from snap7 import util


def _s5time(buf: bytearray, at: int) -> float:
    # snap7 gives str(timedelta); parse it back (H:MM:SS[.ffffff])
    hours, minutes, seconds = util.get_s5time(buf, at).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


Getter = Callable[[bytearray, int], Any]

# type -> (size in bytes, getter)
REFERENCE: dict[str, tuple[int, Getter]] = {
    "BYTE": (1, util.get_byte),
    "WORD": (2, util.get_word),
    "DWORD": (4, util.get_dword),
    "SINT": (1, util.get_sint),
    "INT": (2, util.get_int),
    "DINT": (4, util.get_dint),
    "USINT": (1, util.get_usint),
    "UINT": (2, util.get_uint),
    "UDINT": (4, util.get_udint),
    "REAL": (4, util.get_real),
    "LREAL": (8, util.get_lreal),
    "CHAR": (1, util.get_char),
    "STRING[20]": (22, util.get_string),
    "WSTRING[10]": (24, util.get_wstring),
    "S5TIME": (2, _s5time),
    # snap7's get_time formats text; the value itself is signed milliseconds
    "TIME": (4, lambda b, at: struct.unpack_from(">i", b, at)[0] / 1000),
    "TIME_OF_DAY": (4, lambda b, at: util.get_tod(b, at).total_seconds()),
    "DATE": (2, lambda b, at: util.get_date(b, at).isoformat()),
    "DATE_AND_TIME": (8, util.get_dt),
    "DTL": (
        12,
        lambda b, at: (
            util.get_dtl(b, at).isoformat(timespec="microseconds")
            + f"{struct.unpack_from('>I', b, at + 8)[0] % 1000:03d}"
        ),
    ),
}


def bool_getter(bit: int) -> Getter:
    return lambda b, at: util.get_bool(b, at, bit)


__all__ = ["REFERENCE", "bool_getter"]
