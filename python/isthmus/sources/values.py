"""The one value stream every source (Modbus, OPC UA) produces."""

from __future__ import annotations

import enum
import time

import msgspec


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


def bad(source: str, tag: str, reason: str, unit: str | None = None) -> TagValue:
    """A BAD value without a reading, saying why."""
    return TagValue(
        source=source, tag=tag, value=None, unit=unit, quality=Quality.BAD, reason=reason
    )


__all__ = ["Quality", "TagValue", "bad"]
