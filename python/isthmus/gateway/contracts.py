"""The one place where the gateway meets the other areas' APIs.

Sources (``isthmus.sources``), the UNS layer (``isthmus.uns``) and the Rust core
(rings, spectra, diagnostics) are reached only through this module, so the
gateway's own code reads the same whichever way those areas spell things.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from isthmus.gateway.config import bearing_problem, model_field_units, unit_problem
from isthmus.sources.catalog import (
    SourceCatalog,
    loose_catalog,
    request_rate_problems,
    source_catalog,
)
from isthmus.sources.config import SourcesConfig
from isthmus.uns.settings import MqttSettings, OutboxSettings

__all__ = [
    "MqttSettings",
    "OutboxSettings",
    "SourceCatalog",
    "SourcesSection",
    "bearing_problem",
    "converter",
    "loose_catalog",
    "model_field_units",
    "request_rate_problems",
    "source_catalog",
    "unit_problem",
]

SourcesSection = SourcesConfig


# --- sources ---------------------------------------------------------------------------------


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


def converter(unit: str | None, target: str | None) -> Callable[[float], float]:
    """A function turning a value in ``unit`` into ``target`` (identity when either is None)."""
    from isthmus.uns.units import conversion

    if unit is None or target is None or unit == target:
        return float
    return conversion(unit, target).__call__


# --- bearing catalogue (diagnostics area) ------------------------------------------------------


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
