"""The one place where the gateway meets the other areas' APIs.

Sources (``isthmus.sources``), the UNS layer (``isthmus.uns``) and the Rust core
(rings, spectra, diagnostics) are reached only through this module, so the
gateway's own code reads the same whichever way those areas spell things.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

from isthmus.errors import ConfigError
from isthmus.sources.config import SourcesConfig
from isthmus.uns.settings import MqttSettings, OutboxSettings

__all__ = [
    "MqttSettings",
    "OutboxSettings",
    "SourceCatalog",
    "SourcesSection",
    "bearing_names",
    "converter",
    "model_field_units",
    "source_catalog",
    "unit_problem",
]

SourcesSection = SourcesConfig


# --- sources ---------------------------------------------------------------------------------


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
    entries: list[tuple[str, Any]] = [
        *((f"sources.modbus[{i}]", d) for i, d in enumerate(sources.modbus)),
        *((f"sources.opcua[{i}]", e) for i, e in enumerate(sources.opcua)),
        *((f"sources.s7[{i}]", d) for i, d in enumerate(sources.s7)),
        *((f"sources.enip[{i}]", d) for i, d in enumerate(sources.enip)),
    ]
    for path, entry in entries:
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


def request_plan_lines(device: Any) -> list[str]:
    """The coalesced Modbus reads of one device (``isthmus.sources.modbus`` planner)."""
    from isthmus.sources.modbus import plan_device

    plan = plan_device(device)
    lines: list[str] = []
    for group in plan.groups:
        lines.append(f"poll group {group.group.name!r} every {group.group.interval:g} s:")
        for req in group.requests:
            unit = "bits" if req.register in ("coil", "discrete") else "registers"
            lines.append(
                f"  read {req.register} {req.start}..{req.start + req.count - 1} "
                f"({req.count} {unit}): {', '.join(t.name for t in req.tags)}"
            )
    for block in device.waveforms:
        lines.append(
            f"waveform {block.name!r} ({block.channel}): {block.slots} slots x "
            f"{block.samples} {block.dtype} samples from {block.register} {block.address}, "
            f"{block.sample_rate / block.samples:.0f} reads/s at {block.sample_rate:g} Hz"
        )
    return lines


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


def describe_sources(sources: SourcesConfig) -> list[str]:
    """Lines for ``isthmus check``: each source and, for Modbus, its coalesced request plan."""
    lines: list[str] = []
    for device in sources.modbus:
        tags = sum(len(g.tags) for g in device.poll_groups)
        lines.append(
            f"modbus {device.name}: {device.host}:{device.port} unit {device.unit_id}, "
            f"{tags} tags in {len(device.poll_groups)} poll groups, "
            f"{len(device.waveforms)} waveform blocks, <= {device.max_requests_per_second:g} req/s"
        )
        from isthmus.sources.modbus import plan_device

        count = plan_device(device).request_count
        lines.append(f"  request plan: {count} reads per round of the poll groups")
        lines.extend(f"    {line}" for line in request_plan_lines(device))
    for s7 in sources.s7:
        from isthmus.sources.s7 import describe_s7_plan

        tags = sum(len(g.tags) for g in s7.poll_groups)
        lines.append(
            f"s7 {s7.name}: {s7.host}:{s7.port} rack {s7.rack} slot {s7.slot}, {tags} tags in "
            f"{len(s7.poll_groups)} poll groups, <= {s7.max_requests_per_second:g} req/s"
        )
        lines.extend(f"    {line}" for line in describe_s7_plan(s7))
    for enip in sources.enip:
        tags = sum(len(g.tags) for g in enip.poll_groups)
        lines.append(
            f"enip {enip.name}: {enip.host}:{enip.port} route {enip.route_path or 'none'}, "
            f"{tags} tags in {len(enip.poll_groups)} poll groups, "
            f"<= {enip.max_requests_per_second:g} req/s"
        )
    for endpoint in sources.opcua:
        waveforms = sum(1 for n in endpoint.nodes if n.waveform)
        lines.append(
            f"opcua {endpoint.name}: {endpoint.url} security {endpoint.security}/{endpoint.mode}, "
            f"{len(endpoint.nodes) - waveforms} variables, {waveforms} waveforms"
        )
    return lines


# --- models and units (UNS area) ---------------------------------------------------------------


def model_class(model: str) -> Any:
    """The data-product Struct of a model name (``"Pump"``)."""
    from isthmus.uns.models import MODELS

    return MODELS[model]


def model_field_units(model: str) -> dict[str, str | None]:
    """Field name -> declared unit of a data-product model (None: unitless)."""
    from isthmus.uns.models import field_units

    return field_units(model_class(model))


def unit_problem(unit: str | None, target: str | None) -> str | None:
    """Why a value in ``unit`` cannot feed a field in ``target``, or None when it can."""
    from isthmus.uns.units import UNITS, conversion

    if unit is None or target is None:
        if unit is not None and unit not in UNITS:
            return f"unknown unit {unit!r} (known: {', '.join(UNITS)})"
        if unit is not None and target is None:
            return f"the field has no unit, but the tag is in {unit!r}"
        return None
    try:
        conversion(unit, target, "unit")
    except ConfigError as exc:
        return str(exc).removeprefix("unit: ")
    return None


def converter(unit: str | None, target: str | None) -> Callable[[float], float]:
    """A function turning a value in ``unit`` into ``target`` (identity when either is None)."""
    from isthmus.uns.units import conversion

    if unit is None or target is None or unit == target:
        return float
    return conversion(unit, target).__call__


# --- bearing catalogue (diagnostics area) ------------------------------------------------------


def bearing_names() -> frozenset[str]:
    """Names and aliases in the diagnostics' bearing catalogue."""
    from isthmus.gateway.diagnosis import core

    names: set[str] = set()
    for name, entry in core("bearing_catalogue")().items():
        names.add(name)
        names.update(entry.get("aliases", []))
    return frozenset(names)


def bearing_problem(name: str) -> str | None:
    """Why ``name`` is not a catalogue bearing, or None when it is."""
    from isthmus.errors import DiagnosticsError
    from isthmus.gateway.diagnosis import core

    try:
        core("bearing")(name)
    except DiagnosticsError:
        catalogue = sorted(core("bearing_catalogue")())
        return f"unknown bearing {name!r} (catalogue: {', '.join(catalogue)})"
    return None


# --- sessions (protocols area: isthmus.sources.modbus / opcua) -----------------------------------


class Source:
    """One running acquisition session (Modbus device or OPC UA endpoint)."""

    def __init__(self, name: str, kind: str, session: Any, rings: dict[str, Any]) -> None:
        self.name = name
        self.kind = kind
        self.session = session
        #: ``"<source>.<waveform>"`` -> the SampleRing the session writes into.
        self.rings = rings

    async def run(self) -> None:
        await self.session.run()

    async def close(self) -> None:
        await self.session.close()

    def figures(self) -> list[tuple[str, str, dict[str, str], float]]:
        """Session statistics as metrics (requests, errors, latency percentiles, ...)."""
        raw = self.session.stats
        stats = raw.snapshot() if hasattr(raw, "snapshot") else dataclasses.asdict(raw)
        labels = {"source": self.name, "kind": self.kind}
        out: list[tuple[str, str, dict[str, str], float]] = []
        for key, value in stats.items():
            if not isinstance(value, (int, float)):
                continue
            if key.startswith("latency_p"):
                quantile = key.removeprefix("latency_p").removesuffix("_ms")
                out.append(
                    (
                        "isthmus_poll_latency_seconds",
                        "Request latency percentile over the last requests (s)",
                        {**labels, "quantile": f"0.{quantile}"},
                        float(value) / 1e3,
                    )
                )
            elif key == "last_good_read":
                out.append(
                    (
                        "isthmus_source_last_good_read_timestamp",
                        "Unix time of the last good read",
                        labels,
                        float(value),
                    )
                )
            else:
                out.append(
                    (f"isthmus_source_{key}", f"Session statistic {key}", labels, float(value))
                )
        return out


async def cancel_and_wait(task: Any) -> None:
    """Cancel a session task and wait until it really ended (pymodbus can swallow a cancel)."""
    from isthmus.sources.modbus import cancel_and_wait as sessions_cancel_and_wait

    await sessions_cancel_and_wait(task)


def open_sources(sources: SourcesConfig, on_values: Callable[[list[Any]], None]) -> list[Source]:
    """One session per Modbus device, OPC UA endpoint, S7 PLC and EtherNet/IP controller."""
    out: list[Source] = []
    if sources.modbus:
        from isthmus.sources.modbus import ModbusSession

        for device in sources.modbus:
            session = ModbusSession(device, on_values=on_values)
            rings = {
                f"{device.name}.{block.name}": session.rings[block.channel]
                for block in device.waveforms
            }
            out.append(Source(device.name, "modbus", session, rings))
    if sources.opcua:
        from isthmus.sources.opcua import OpcUaSession

        for endpoint in sources.opcua:
            ua_session = OpcUaSession(endpoint, on_values=on_values)
            rings = {
                f"{endpoint.name}.{node.name}": ua_session.rings[node.name]
                for node in endpoint.nodes
                if node.waveform
            }
            out.append(Source(endpoint.name, "opcua", ua_session, rings))
    if sources.s7:
        from isthmus.sources.s7 import S7Session

        for plc in sources.s7:
            out.append(Source(plc.name, "s7", S7Session(plc, on_values=on_values), {}))
    if sources.enip:
        from isthmus.sources.enip import EnipSession

        for controller in sources.enip:
            enip_session = EnipSession(controller, on_values=on_values)
            out.append(Source(controller.name, "enip", enip_session, {}))
    return out
