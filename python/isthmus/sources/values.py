"""The one value stream every source (Modbus, OPC UA) produces."""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np


class Quality(enum.Enum):
    """How far a value can be trusted (the OPC UA severity classes, also used for Modbus)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class TagValue(msgspec.Struct, frozen=True, kw_only=True):
    """One sample of one tag, as it left the source.

    ``value`` is None when the quality is BAD and no value could be read.
    ``reason`` says why a value is not GOOD (e.g. ``"illegal data address"``,
    ``"timeout"``, ``"BadNodeIdUnknown"``). Times are Unix seconds: the
    source's own timestamp when it gives one (OPC UA), and the moment the
    gateway received the value.
    """

    source: str
    tag: str
    value: float | int | bool | str | None
    unit: str | None = None
    quality: Quality = Quality.GOOD
    reason: str | None = None
    source_time: float | None = None
    gateway_time: float = msgspec.field(default_factory=time.time)

    @property
    def good(self) -> bool:
        """True when the value can be used as is."""
        return self.quality is Quality.GOOD


class ValueBatch(msgspec.Struct, kw_only=True):
    """Every value of one read of one source: parallel columns, no object per value.

    ``tags`` is the read's tag names in a fixed order; a source reuses the same tuple
    object for every read of the same request, so consumers can cache their routing
    by ``id(tags)``. ``values`` holds the decoded values as the device gave them (ints,
    floats, bools, strings; None where nothing could be read). ``quality`` and
    ``reason`` apply to the whole read (one request succeeds or fails as a unit);
    ``bad_tags`` lists per-tag failures inside an otherwise good read (index -> reason).
    """

    source: str
    tags: tuple[str, ...]
    values: Sequence[Any]
    quality: Quality = Quality.GOOD
    reason: str | None = None
    source_time: float | None = None
    gateway_time: float = msgspec.field(default_factory=time.time)
    bad_tags: dict[int, str] = msgspec.field(default_factory=dict)
    #: The tags' declared units, parallel to ``tags`` (empty: not given).
    units: tuple[str | None, ...] = ()


def float32_value(value: float) -> float:
    """A float32 reading as the float64 nearest its shortest float32 repr (1.88, not 1.879999)."""
    if not math.isfinite(value):
        return value
    return float(str(np.float32(value)))


def decimals_of(number: float) -> int | None:
    """Decimal places of ``number``'s shortest repr (0.01 -> 2), None if it has an exponent."""
    text = repr(float(number))
    if "e" in text or "n" in text:
        return None
    _whole, _, frac = text.partition(".")
    return 0 if frac == "0" else len(frac)


def scaled_digits(scale: float, offset: float) -> int | None:
    """Decimals an integer register scaled by ``raw * scale + offset`` can carry.

    ``188 * 0.01`` is 1.8800000000000001 in binary; the device meant 188 hundredths,
    so the value is rounded to two decimals (the nearest double of 1.88). None: no
    rounding applies (an unscaled tag, or a scale in exponent notation).
    """
    if scale == 1.0 and offset == 0.0:
        return None
    digits = [decimals_of(scale), decimals_of(offset)]
    if None in digits:
        return None
    return max(d for d in digits if d is not None)


def exact_value(value: Any, kind: str, scale: float, offset: float) -> Any:
    """A decoded number as the device meant it, for PLC type names (REAL, INT, DINT, ...).

    An unscaled REAL (float32) is its shortest float32 repr; a scaled integer is rounded
    to the decimals of its scale and offset (188 x 0.01 -> 1.88). Anything else as is.
    """
    if type(value) not in (int, float):
        return value
    if kind == "REAL":
        return float32_value(value) if scale == 1.0 and offset == 0.0 else value
    if kind == "LREAL":
        return value
    digits = scaled_digits(scale, offset)
    if digits is None or not math.isfinite(value):
        return value
    return round(value, digits)


def bad(source: str, tag: str, reason: str, unit: str | None = None) -> TagValue:
    """A BAD value without a reading, saying why."""
    return TagValue(
        source=source, tag=tag, value=None, unit=unit, quality=Quality.BAD, reason=reason
    )


__all__ = [
    "Quality",
    "TagValue",
    "ValueBatch",
    "bad",
    "decimals_of",
    "float32_value",
    "scaled_digits",
]
