"""ISA-95 topics of the Unified Namespace.

Every asset lives at ``{enterprise}/{site}/{area}/{line}/{asset}``; under it:

=========================  ========  =====  =============================================
leaf                       retained  QoS    content
=========================  ========  =====  =============================================
``.../{asset}/state``      yes       tel.   the asset's data product (current state),
                                            reported by exception: a field moved past its
                                            deadband, or nothing was sent for
                                            ``max_silence`` seconds
``.../{asset}/vibration``  no        tel.   vibration features, periodic
``.../{asset}/alerts``     no        >= 1   every alert raise and clear, as events
``.../{asset}/alerts/      yes       >= 1   the list of alerts active now; an empty list
active``                                    once the last one clears
``.../{asset}/_schema``    yes       1      JSON Schema of the ``state`` payload (in
                                            an envelope like every message)
=========================  ========  =====  =============================================

The gateway's own status is ``{enterprise}/{site}/_gateway/{gateway_id}/status``
(retained): ``online`` with counters on connect and every ``status_interval_s``, and
``offline`` as the MQTT will when the connection dies without a DISCONNECT.

"tel." is ``MqttSettings.telemetry_qos`` (1 by default). Leaves starting with ``_`` are
metadata, not plant data.

Levels follow MQTT's rules for topic names (MQTT 5.0, 1.5.4 and 4.7): UTF-8 without
U+0000, and, because brokers refuse or mangle them, no control characters (U+0001 to
U+001F, U+007F to U+009F); no ``/`` (the separator), no wildcards ``+`` and ``#``; not
empty; no leading or trailing spaces (a level that differs only by a space is a
different topic that nobody will ever subscribe to); no leading ``$`` (reserved for
broker topics such as ``$SYS``); at most 1024 bytes per level, and a whole topic at most
65535 bytes (the MQTT string limit).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import msgspec

from isthmus.errors import ConfigError

__all__ = [
    "LEAF_POLICY",
    "MAX_LEVEL_BYTES",
    "MAX_TOPIC_BYTES",
    "AssetPath",
    "Leaf",
    "LeafPolicy",
    "gateway_status_topic",
    "segment_problem",
    "topic_problem",
    "validate_segment",
]

_FORBIDDEN = ("/", "+", "#")
MAX_LEVEL_BYTES = 1024
MAX_TOPIC_BYTES = 65535  # an MQTT UTF-8 string carries a 16-bit length


class Leaf(enum.StrEnum):
    """Documented leaves under an asset's topic."""

    STATE = "state"
    VIBRATION = "vibration"
    ALERTS = "alerts"
    ACTIVE_ALERTS = "alerts/active"
    SCHEMA = "_schema"


class LeafPolicy(NamedTuple):
    """How messages on a leaf are published."""

    retain: bool
    #: True for telemetry, which the outbox may drop oldest-first when full; False for
    #: alerts and metadata, which it keeps up to its bound.
    droppable: bool


LEAF_POLICY: dict[Leaf, LeafPolicy] = {
    Leaf.STATE: LeafPolicy(retain=True, droppable=True),
    Leaf.VIBRATION: LeafPolicy(retain=False, droppable=True),
    Leaf.ALERTS: LeafPolicy(retain=False, droppable=False),
    Leaf.ACTIVE_ALERTS: LeafPolicy(retain=True, droppable=False),
    Leaf.SCHEMA: LeafPolicy(retain=True, droppable=False),
}


def _is_control(char: str) -> bool:
    return ord(char) <= 0x1F or 0x7F <= ord(char) <= 0x9F


def segment_problem(value: object) -> str | None:
    """Why ``value`` cannot be a level of our topics, or None when it can."""
    if not isinstance(value, str) or not value:
        return "empty topic level"
    controls = sorted({f"U+{ord(c):04X}" for c in value if _is_control(c)})
    if controls:
        return f"topic level {value!r} contains control characters {', '.join(controls)}"
    bad = [c for c in _FORBIDDEN if c in value]
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"topic level {value!r} contains {shown}"
    if value != value.strip():
        return f"topic level {value!r} has leading or trailing spaces"
    if value.startswith("$"):
        return f"topic level {value!r} may not start with '$' (reserved for broker topics)"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate is not UTF-8
        return f"topic level {value!r} is not valid UTF-8"
    if size > MAX_LEVEL_BYTES:
        return f"topic level of {size} bytes is longer than {MAX_LEVEL_BYTES}"
    return None


def topic_problem(topic: str) -> str | None:
    """Why a whole topic name is unusable (each level, and the total length), or None."""
    for level in topic.split("/"):
        problem = segment_problem(level)
        if problem:
            return problem
    size = len(topic.encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        return f"topic of {size} bytes is longer than MQTT's {MAX_TOPIC_BYTES}"
    return None


def validate_segment(value: str, where: str, *, first: bool = False) -> str:
    """Check one topic level; raise :class:`ConfigError` naming ``where`` if unusable.

    ``first`` is kept for callers; a leading ``$`` is refused at every level.
    """
    problem = segment_problem(value)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    return value


class AssetPath(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An asset's place in the ISA-95 hierarchy: enterprise/site/area/line/asset."""

    enterprise: str
    site: str
    area: str
    line: str
    asset: str

    def __post_init__(self) -> None:
        validate_segment(self.enterprise, "enterprise", first=True)
        for name in ("site", "area", "line", "asset"):
            validate_segment(getattr(self, name), name)

    @classmethod
    def parse(cls, text: str, where: str = "path") -> AssetPath:
        """Build from ``"enterprise/site/area/line/asset"``; errors name ``where``."""
        parts = text.split("/")
        if len(parts) != 5:
            raise ConfigError(
                f"{where}: {text!r} needs 5 levels enterprise/site/area/line/asset, "
                f"got {len(parts)}"
            )
        names = ("enterprise", "site", "area", "line", "asset")
        for i, (name, part) in enumerate(zip(names, parts, strict=True)):
            validate_segment(part, f"{where}.{name}", first=i == 0)
        return cls(**dict(zip(names, parts, strict=True)))

    @property
    def base(self) -> str:
        """``enterprise/site/area/line/asset``."""
        return f"{self.enterprise}/{self.site}/{self.area}/{self.line}/{self.asset}"

    def topic(self, leaf: Leaf) -> str:
        """The full topic of one documented leaf."""
        return f"{self.base}/{leaf.value}"

    @property
    def state(self) -> str:
        return self.topic(Leaf.STATE)

    @property
    def vibration(self) -> str:
        return self.topic(Leaf.VIBRATION)

    @property
    def alerts(self) -> str:
        return self.topic(Leaf.ALERTS)

    @property
    def active_alerts(self) -> str:
        return self.topic(Leaf.ACTIVE_ALERTS)

    @property
    def schema(self) -> str:
        return self.topic(Leaf.SCHEMA)


def gateway_status_topic(enterprise: str, site: str, gateway_id: str) -> str:
    """``{enterprise}/{site}/_gateway/{gateway_id}/status`` (retained online/offline)."""
    validate_segment(enterprise, "enterprise", first=True)
    validate_segment(site, "site")
    validate_segment(gateway_id, "gateway_id")
    return f"{enterprise}/{site}/_gateway/{gateway_id}/status"
