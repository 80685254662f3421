"""Every tag and waveform the sources provide, by reference ``"<source>.<name>"``.

Plain data over :mod:`isthmus.sources.config`: the gateway's configuration checks
use it to resolve references without starting anything.
"""

from __future__ import annotations

import difflib
from typing import Any

from isthmus.sources.config import SourcesConfig

__all__ = [
    "SourceCatalog",
    "loose_catalog",
    "request_rate_problems",
    "source_catalog",
    "source_entries",
]


def source_entries(sources: SourcesConfig) -> list[tuple[str, Any]]:
    """``(config path, device or endpoint)`` of every source, Modbus first."""
    return [
        *((f"sources.modbus[{i}]", d) for i, d in enumerate(sources.modbus)),
        *((f"sources.opcua[{i}]", e) for i, e in enumerate(sources.opcua)),
        *((f"sources.s7[{i}]", d) for i, d in enumerate(sources.s7)),
        *((f"sources.enip[{i}]", d) for i, d in enumerate(sources.enip)),
    ]


class SourceCatalog:
    """Every tag and waveform the sources provide, by ``"<source>.<name>"``."""

    def __init__(self) -> None:
        self.tags: dict[str, str | None] = {}  # reference -> unit declared at the source
        self.waveforms: dict[str, float | None] = {}  # reference -> sample rate (Hz)
        self.waveform_units: dict[str, str | None] = {}

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


def source_catalog(sources: SourcesConfig, errors: list[str]) -> SourceCatalog:
    """Index the sources' tags and waveforms; duplicate source names go to ``errors``."""
    catalog = SourceCatalog()
    seen: dict[str, str] = {}
    for path, entry in source_entries(sources):
        if entry.name in seen:
            errors.append(
                f"{path}.name: duplicate source name {entry.name!r} (first at {seen[entry.name]})"
            )
            continue
        seen[entry.name] = path
        for group in getattr(entry, "poll_groups", []):
            for tag in [*group.tags, *getattr(group, "attributes", [])]:
                # an EtherNet/IP array slice publishes one value per element
                for name in getattr(tag, "value_names", [tag.name]):
                    catalog.tags[f"{entry.name}.{name}"] = tag.unit
        for block in getattr(entry, "waveforms", []):
            ref = f"{entry.name}.{block.name}"
            catalog.waveforms[ref] = block.sample_rate
            catalog.waveform_units[ref] = block.unit
        for node in getattr(entry, "nodes", []):
            ref = f"{entry.name}.{node.name}"
            if node.waveform:
                catalog.waveforms[ref] = node.sample_rate
                catalog.waveform_units[ref] = node.unit
            else:
                catalog.tags[ref] = node.unit
    return catalog


def loose_catalog(raw: Any) -> SourceCatalog:
    """Tag and waveform names of a structurally broken ``[sources]`` table, as far as readable."""
    catalog = SourceCatalog()

    def items(value: Any) -> list[dict[str, Any]]:
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    if not isinstance(raw, dict):
        return catalog
    entries = [e for kind in ("modbus", "opcua", "s7", "enip") for e in items(raw.get(kind))]
    for entry in entries:
        source = entry.get("name")
        for group in items(entry.get("poll_groups")):
            for tag in items(group.get("tags")) + items(group.get("attributes")):
                catalog.tags[f"{source}.{tag.get('name')}"] = tag.get("unit")
        for block in items(entry.get("waveforms")):
            catalog.waveforms[f"{source}.{block.get('name')}"] = None
        for node in items(entry.get("nodes")):
            ref = f"{source}.{node.get('name')}"
            if node.get("waveform"):
                catalog.waveforms[ref] = None
            else:
                catalog.tags[ref] = node.get("unit")
    return catalog


def request_rate_problems(sources: SourcesConfig) -> list[str]:
    """Modbus devices whose request-rate limit cannot carry their poll groups and waveforms."""
    from isthmus.sources.modbus import plan_device

    problems: list[str] = []
    for index, device in enumerate(sources.modbus):
        plan = plan_device(device)
        polls = sum(len(g.requests) / g.group.interval for g in plan.groups)
        waves = sum(b.sample_rate / b.samples for b in device.waveforms)
        needed = polls + waves
        if needed > device.max_requests_per_second:
            problems.append(
                f"sources.modbus[{index}].max_requests_per_second: {device.name!r} needs "
                f"{needed:.0f} reads/s ({polls:.1f} polls + {waves:.0f} waveform blocks) "
                f"but is limited to {device.max_requests_per_second:g}/s: samples would be lost"
            )
    return problems
