"""Routing compiled once: tag -> (asset, field, conversion, bounds); applied per read.

:class:`Router` turns the configuration into plain tuples at start-up. Each
:class:`isthmus.sources.values.ValueBatch` (one read of one source) is applied with a
route list cached per request (by the identity of the batch's tag tuple), so the work
per value is one tuple unpack, an optional affine conversion, a bounds check and a
store; assets that received anything are marked dirty for the product stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from isthmus.gateway import contracts
from isthmus.gateway.config import GatewayConfig
from isthmus.gateway.products import AssetRuntime
from isthmus.sources.values import Quality, TagValue, ValueBatch

# (ge, le) of a numeric field; None: not a bounded number (checked by msgspec instead).
Bounds = tuple[float, float] | None
# index in the batch, asset, field, affine (scale, offset) or None, bounds
Route = tuple[int, AssetRuntime, str, tuple[float, float] | None, Bounds]
#: Why a NaN or infinity from a device is a bad reading (JSON has no such number).
NON_FINITE = "non-finite value from the device"


def _finite(value: float) -> bool:
    """An int is finite (math.isfinite would overflow on a huge one)."""
    return type(value) is int or math.isfinite(value)


def numeric_bounds(model: type[msgspec.Struct]) -> dict[str, tuple[float, float]]:
    """Field -> (ge, le) for the model's float fields (unbounded sides are -inf / inf)."""
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    out: dict[str, tuple[float, float]] = {}
    for field in info.fields:
        t = field.type
        if isinstance(t, msgspec.inspect.UnionType):
            members = [m for m in t.types if not isinstance(m, msgspec.inspect.NoneType)]
            if len(members) != 1:
                continue
            t = members[0]
        low, high = -math.inf, math.inf
        if isinstance(t, msgspec.inspect.FloatType):
            out[field.name] = (low, high)
            continue
        if isinstance(t, msgspec.inspect.Metadata) and isinstance(
            t.type, msgspec.inspect.FloatType
        ):
            inner = t.type
            if inner.ge is not None:
                low = inner.ge
            if inner.le is not None:
                high = inner.le
            if inner.gt is None and inner.lt is None and inner.multiple_of is None:
                out[field.name] = (low, high)
    return out


class Router:
    """Tag references (``"source.tag"``) -> the fields they feed, and shaft speeds."""

    def __init__(self, config: GatewayConfig, assets: dict[str, AssetRuntime]) -> None:
        from isthmus.uns.units import conversion

        catalog = contracts.source_catalog(config.sources, [])
        self.intervals = poll_intervals(config)
        self.stale_polls = config.gateway.stale_after_polls
        self._targets: dict[str, list[tuple[AssetRuntime, str, Any, Bounds]]] = {}
        self._speed: dict[str, list[tuple[Any, Callable[[float], float]]]] = {}
        bounds_of: dict[str, dict[str, tuple[float, float]]] = {}
        units_of: dict[str, dict[str, str | None]] = {}
        for runtime in assets.values():
            asset = runtime.asset
            if asset.model not in units_of:
                units_of[asset.model] = contracts.model_field_units(asset.model)
                bounds_of[asset.model] = numeric_bounds(runtime.model)
            units = units_of[asset.model]
            bounds = bounds_of[asset.model]
            for name, mapping in asset.fields.items():
                unit = mapping.unit or catalog.tag_unit(mapping.tag)
                target = units.get(name)
                affine = None
                if unit is not None and target is not None and unit != target:
                    a = conversion(unit, target)
                    affine = (a.scale, a.offset)
                self._targets.setdefault(mapping.tag, []).append(
                    (runtime, name, affine, bounds.get(name))
                )
                interval = self.intervals.get(mapping.tag)
                if interval is not None:
                    runtime.stale_after[name] = self.stale_polls * interval
            monitor = runtime.vibration
            vib = asset.vibration
            if vib is None or monitor is None:
                continue
            hop_s = vib.hop / vib.sample_rate
            for name in ("vibration_velocity_rms_mm_s", "bearing_diagnosis"):
                # the analysis reports once per hop; a frame overdue means no waveform
                runtime.stale_after[name] = self.stale_polls * max(hop_s, 1.0)
            speed = asset.fields.get("speed_rpm")
            speed_ref = vib.speed_tag or (speed.tag if speed is not None else None)
            if speed_ref is not None:
                declared = speed.unit if speed is not None and vib.speed_tag is None else None
                unit = declared or catalog.tag_unit(speed_ref) or "rpm"
                self._speed.setdefault(speed_ref, []).append(
                    (monitor, contracts.converter(unit, "Hz"))
                )
        # id(tags tuple) -> (the tuple, kept alive so its id stays unique; routes; speeds)
        self._compiled: dict[int, tuple[tuple[str, ...], list[Route], list[Any]]] = {}
        self._singles: dict[tuple[str, str], tuple[str]] = {}

    def _compile(self, batch: ValueBatch) -> tuple[list[Route], list[Any]]:
        routes: list[Route] = []
        speeds: list[tuple[int, Any, Callable[[float], float]]] = []
        for index, tag in enumerate(batch.tags):
            ref = f"{batch.source}.{tag}"
            for runtime, name, affine, bounds in self._targets.get(ref, ()):
                routes.append((index, runtime, name, affine, bounds))
            for monitor, to_hz in self._speed.get(ref, ()):
                speeds.append((index, monitor, to_hz))
        if len(self._compiled) > 100_000:  # sources that build a new tuple per read
            self._compiled.clear()
        self._compiled[id(batch.tags)] = (batch.tags, routes, speeds)
        return routes, speeds

    def apply(self, batch: ValueBatch) -> set[AssetRuntime]:
        """Store one read's values into their fields; returns the assets it touched."""
        entry = self._compiled.get(id(batch.tags))
        if entry is not None and entry[0] is batch.tags:
            routes, speeds = entry[1], entry[2]
        else:
            routes, speeds = self._compile(batch)
        touched: set[AssetRuntime] = set()
        if not routes and not speeds:
            return touched
        values = batch.values
        seen = batch.gateway_time
        when = batch.source_time or seen
        bad_tags = batch.bad_tags
        if batch.quality is not Quality.GOOD:
            quality = batch.quality.value
            reason = batch.reason or quality
            for index, runtime, name, _affine, _bounds in routes:
                value = values[index] if quality == "uncertain" else None
                runtime.set_value(
                    name, value, quality, when, seen=seen, reason=reason, checked=True
                )
                touched.add(runtime)
            for _index, monitor, _to_hz in speeds:
                monitor.shaft_hz = None  # the envelope must not run on a speed it lost
            return touched
        for index, runtime, name, affine, bounds in routes:
            value = values[index]
            touched.add(runtime)
            if bad_tags and index in bad_tags:
                runtime.set_value(
                    name, None, "bad", when, seen=seen, reason=bad_tags[index], checked=True
                )
                continue
            if value is None:
                runtime.set_value(name, None, "bad", when, seen=seen, reason="no value")
                continue
            if type(value) in (int, float):
                if affine is not None:
                    value = affine[0] * value + affine[1]
                if type(value) is float and not math.isfinite(value):
                    runtime.set_value(
                        name, None, "bad", when, seen=seen, reason=NON_FINITE, checked=True
                    )
                    continue
                if bounds is not None and bounds[0] <= value <= bounds[1]:
                    runtime.set_value(name, value, "good", when, seen=seen, checked=True)
                    continue
            runtime.set_value(name, value, "good", when, seen=seen)
        for index, monitor, to_hz in speeds:
            value = values[index]
            if type(value) in (int, float) and index not in bad_tags and _finite(value):
                monitor.shaft_hz = to_hz(float(value))
            else:
                monitor.shaft_hz = None
        return touched

    def apply_values(self, values: Iterable[TagValue]) -> set[AssetRuntime]:
        """The per-value stream (OPC UA, replays): each value as a batch of one."""
        touched: set[AssetRuntime] = set()
        for value in values:
            key = (value.source, value.tag)
            tags = self._singles.get(key)
            if tags is None:
                tags = self._singles[key] = (value.tag,)
            batch = ValueBatch(
                source=value.source,
                tags=tags,
                values=(value.value,),
                quality=value.quality,
                reason=value.reason,
                source_time=value.source_time,
                gateway_time=value.gateway_time,
            )
            touched |= self.apply(batch)
        return touched


def poll_intervals(config: GatewayConfig) -> dict[str, float]:
    """``"source.value"`` -> its poll interval (s), for every polled source.

    Modbus, S7 and EtherNet/IP (an array tag's elements and CIP attributes included);
    OPC UA reports by exception and is absent (it never ages).
    """
    out: dict[str, float] = {}
    sources = config.sources
    for device in sources.modbus:
        for group in device.poll_groups:
            for tag in group.tags:
                out[f"{device.name}.{tag.name}"] = group.interval
    for s7 in sources.s7:
        for s7_group in s7.poll_groups:
            for s7_tag in s7_group.tags:
                out[f"{s7.name}.{s7_tag.name}"] = s7_group.interval
    for enip in sources.enip:
        for enip_group in enip.poll_groups:
            names = [n for t in enip_group.tags for n in t.value_names]
            names += [a.name for a in enip_group.attributes]
            for name in names:
                out[f"{enip.name}.{name}"] = enip_group.interval
    return out


__all__ = ["Router", "numeric_bounds", "poll_intervals"]
