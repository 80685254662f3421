"""The one place where the gateway meets the other areas' APIs.

Configuration sections owned by other areas (sources, MQTT, outbox), the units
table, the data-product models and the bearing catalogue are reached only
through this module, so the gateway's own code reads the same whichever way
those areas spell things.
"""

from __future__ import annotations

import difflib
from typing import Any

import msgspec


class _Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


# --- sources (protocols area: isthmus.sources.config) ----------------------------------------


class SourcesSection(_Config):
    """``[sources]``: Modbus devices and OPC UA endpoints.

    Provisional loose typing until ``isthmus.sources.config`` lands; each entry must
    have a ``name``.
    """

    modbus: list[dict[str, Any]] = msgspec.field(default_factory=list)
    opcua: list[dict[str, Any]] = msgspec.field(default_factory=list)


class SourceCatalog:
    """Every tag and waveform the sources provide, by ``"<source>.<name>"``."""

    def __init__(self) -> None:
        self.tags: dict[str, str | None] = {}  # reference -> unit declared at the source
        self.waveforms: dict[str, float | None] = {}  # reference -> sample rate (Hz) if known

    def has_tag(self, ref: str) -> bool:
        return ref in self.tags

    def tag_unit(self, ref: str) -> str | None:
        return self.tags.get(ref)

    def has_waveform(self, ref: str) -> bool:
        return ref in self.waveforms

    def waveform_rate(self, ref: str) -> float | None:
        return self.waveforms.get(ref)

    def hint(self, ref: str) -> str:
        """`` (did you mean 'a.b'?)`` when a close reference exists."""
        close = difflib.get_close_matches(ref, [*self.tags, *self.waveforms], n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""


def source_catalog(sources: SourcesSection, errors: list[str]) -> SourceCatalog:
    """Index the sources' tags and waveforms; structural problems are appended to ``errors``."""
    catalog = SourceCatalog()
    seen: dict[str, str] = {}
    for kind in ("modbus", "opcua"):
        for index, entry in enumerate(getattr(sources, kind)):
            path = f"sources.{kind}[{index}]"
            name = entry.get("name")
            if not isinstance(name, str) or not name:
                errors.append(f"{path}.name: missing required field")
                continue
            if name in seen:
                errors.append(
                    f"{path}.name: duplicate source name {name!r} (first at {seen[name]})"
                )
                continue
            seen[name] = path
            tags: list[dict[str, Any]] = list(entry.get("tags", []))
            for group in entry.get("poll_groups", []):
                tags.extend(group.get("tags", []))
            tags.extend(entry.get("nodes", []))
            for tag in tags:
                if tag.get("array") or tag.get("waveform"):
                    catalog.waveforms[f"{name}.{tag['name']}"] = tag.get("sample_rate")
                else:
                    catalog.tags[f"{name}.{tag['name']}"] = tag.get("unit")
            for block in entry.get("waveforms", []):
                catalog.waveforms[f"{name}.{block['name']}"] = block.get("sample_rate")
    return catalog


def describe_sources(sources: SourcesSection) -> list[str]:
    """Lines for ``isthmus check``: each source and, for Modbus, its coalesced request plan."""
    lines: list[str] = []
    for device in sources.modbus:
        lines.append(f"modbus {device.get('name')}: {device.get('host')}:{device.get('port')}")
        lines.append("  request plan: unavailable (isthmus.sources.modbus not installed)")
    for endpoint in sources.opcua:
        lines.append(f"opcua {endpoint.get('name')}: {endpoint.get('url')}")
    return lines


# --- MQTT and outbox (UNS area: isthmus.uns.settings) ----------------------------------------


class MqttSettings(_Config):
    """Provisional until ``isthmus.uns.settings.MqttSettings`` lands."""

    url: str = "mqtt://127.0.0.1:1883"


class OutboxSettings(_Config):
    """Provisional until ``isthmus.uns.settings.OutboxSettings`` lands."""

    path: str = "isthmus-outbox.sqlite"


def describe_mqtt(settings: MqttSettings) -> str:
    return settings.url


def describe_outbox(settings: OutboxSettings) -> str:
    return settings.path


# --- models and units (UNS area: isthmus.uns.models, isthmus.uns.units) ------------------------


def model_field_units(model: str) -> dict[str, str | None] | None:
    """Field name -> unit of the data-product model; None while the models are unavailable."""
    return None


def unit_problem(unit: str | None, target: str | None) -> str | None:
    """Why a value in ``unit`` cannot feed a field in ``target``, or None when it can."""
    return None


# --- bearing catalogue (diagnostics area) ------------------------------------------------------


def bearing_names() -> frozenset[str] | None:
    """Names in the bearing catalogue; None while it is unavailable."""
    return None
