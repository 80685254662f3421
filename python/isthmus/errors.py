"""The one exception tree of isthmus.

Catch :class:`IsthmusError` to catch everything isthmus raises on purpose.
The native core (``isthmus._core``) raises these same classes, so a caller
never sees a Rust panic or a bare ``RuntimeError`` from bad input.
"""

from __future__ import annotations


class IsthmusError(Exception):
    """Root of every error isthmus raises on purpose."""


class TagError(IsthmusError, ValueError):
    """A tag definition is invalid (unknown dtype or order, bad bit index, ...).

    The message names the tag at fault.
    """


class DecodeError(IsthmusError, ValueError):
    """Registers cannot be decoded as the plan says (block too short, value out of range)."""


class SignalError(IsthmusError, ValueError):
    """A sample block or DSP parameter is unusable (wrong shape, channel count, rate)."""


class DiagnosticsError(IsthmusError, ValueError):
    """A diagnostic input is unusable (bad bearing geometry, unknown rule or zone)."""


class ConfigError(IsthmusError, ValueError):
    """The gateway configuration is invalid; the message names the config path at fault."""


class SessionError(IsthmusError):
    """A protocol session (Modbus, OPC UA, MQTT) failed in a way the caller must know of."""


__all__ = [
    "ConfigError",
    "DecodeError",
    "DiagnosticsError",
    "IsthmusError",
    "SessionError",
    "SignalError",
    "TagError",
]
