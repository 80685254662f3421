"""The gateway pipeline: sources -> decoding -> rings -> DSP and rules -> data products -> sinks.

::

    Modbus / OPC UA sessions ──TagValue──> route (unit conversion) ──> asset state ─┐
            │ waveform blocks                                                       │ products
            v                                                                       │ (by exception)
        SampleRing per channel ──reader──> DSP task per asset (to_thread, Rust) ────┤ features
                                           velocity RMS, ISO zone, envelope, rules ─┤ alerts
                                                                                    v
                                   bounded queues (telemetry: drop oldest, counted; alerts apart)
                                                                                    v
                                                     sink task -> outbox -> MQTT  (or console)

Every loop is a named task in one :class:`asyncio.TaskGroup`. Routing a value is
a few dict lookups, done inline in the session's callback, so polling never
waits for anything downstream; the only waits between stages are bounded
queues that drop (and count) rather than block. A slow broker is absorbed by the
outbox, whose own bound and drop policy belong to the UNS layer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from isthmus.gateway import contracts
from isthmus.gateway.config import Asset, GatewayConfig
from isthmus.gateway.metrics import Metrics
from isthmus.gateway.vibration import VibrationMonitor, VibrationResult

log = logging.getLogger("isthmus.gateway")

MessageKind = Literal["product", "features", "alert", "status"]

# Publish a product at least this often even when nothing changed (s).
MAX_SILENCE_S = 60.0
# How often the product task looks for changes (s).
PRODUCT_PERIOD_S = 0.25


@dataclass
class Message:
    """One thing to publish; ``asset`` is None for gateway-level messages (status)."""

    kind: MessageKind
    asset: Asset | None
    payload: dict[str, Any]
    time: float = field(default_factory=time.time)


class DropQueue:
    """A bounded queue that never blocks its producer: when full, the oldest item goes.

    Every dropped item is counted in ``isthmus_dropped_total{queue=...}``.
    """

    def __init__(self, name: str, maxsize: int, metrics: Metrics) -> None:
        self.name = name
        self._items: collections.deque[Message] = collections.deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._dropped = metrics.dropped.labels(name)
        self.dropped = 0

    def put(self, item: Message) -> None:
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self._dropped.inc()
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    def get_nowait(self) -> Message | None:
        if not self._items:
            self._ready.clear()
            return None
        return self._items.popleft()

    async def wait(self) -> None:
        if not self._items:
            self._ready.clear()
            await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class FieldRoute:
    """A tag feeding one model field, with its unit conversion and deadband."""

    runtime: AssetRuntime
    field: str
    convert: Callable[[float], float]
    deadband: float | None


class AssetRuntime:
    """The live state of one asset: field values, vibration results, alerts."""

    def __init__(self, asset: Asset) -> None:
        self.asset = asset
        self.values: dict[str, Any] = {}
        self.quality: dict[str, str] = {}
        self.value_time: dict[str, float] = {}
        self.deadbands: dict[str, float | None] = {}
        self.published: dict[str, Any] = {}
        self.published_quality: dict[str, str] = {}
        self.published_at = 0.0
        self.product: dict[str, Any] | None = None
        self.vibration = VibrationMonitor(asset) if asset.vibration is not None else None
        self.last_vibration: VibrationResult | None = None
        self.rules = contracts.rule_engine(asset)
        self.active_alerts: dict[str, dict[str, Any]] = {}
        self.features_published_at = 0.0

    def set_value(self, name: str, value: Any, quality: str, when: float) -> None:
        self.values[name] = value
        self.quality[name] = quality
        self.value_time[name] = when

    def changed(self, now: float) -> bool:
        """True when a field moved past its deadband, a quality changed, or silence ran out."""
        if now - self.published_at >= MAX_SILENCE_S:
            return True
        for name, value in self.values.items():
            if name not in self.published or self.quality[name] != self.published_quality[name]:
                return True
            old = self.published[name]
            band = self.deadbands.get(name)
            numeric = isinstance(value, float) and isinstance(old, float)
            if numeric and band is not None:
                if abs(value - old) > band:
                    return True
            elif value != old:
                return True
        return False

    def mark_published(self, now: float) -> None:
        self.published = dict(self.values)
        self.published_quality = dict(self.quality)
        self.published_at = now


class Gateway:
    """All of a configuration's sources, assets and sinks, run by :meth:`run`.

    ``sink`` receives :class:`Message` objects (see :mod:`isthmus.gateway.sinks`).
    ``on_update`` (optional) is called after each product or alert, for live views.
    """

    def __init__(
        self,
        config: GatewayConfig,
        sink: Any,
        metrics: Metrics | None = None,
        on_update: Callable[[AssetRuntime], None] | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.on_update = on_update
        size = config.gateway.queue_size
        self.telemetry = DropQueue("telemetry", size, self.metrics)
        self.alerts = DropQueue("alerts", size, self.metrics)
        self.assets = {a.name: AssetRuntime(a) for a in config.assets}
        catalog = contracts.source_catalog(config.sources, [])
        self._routes: dict[str, list[FieldRoute]] = collections.defaultdict(list)
        self._speed_routes: dict[str, list[tuple[AssetRuntime, Callable[[float], float]]]] = (
            collections.defaultdict(list)
        )
        self._rings: dict[str, Any] = {}
        for runtime in self.assets.values():
            asset = runtime.asset
            units = contracts.model_field_units(asset.model) or {}
            for name, mapping in asset.fields.items():
                unit = mapping.unit or catalog.tag_unit(mapping.tag)
                convert = contracts.converter(unit, units.get(name))
                runtime.deadbands[name] = mapping.deadband
                self._routes[mapping.tag].append(
                    FieldRoute(runtime, name, convert, mapping.deadband)
                )
            vib = asset.vibration
            if vib is not None and runtime.vibration is not None:
                speed_ref = vib.speed_tag or (
                    asset.fields["speed"].tag if "speed" in asset.fields else None
                )
                if speed_ref is not None:
                    unit = (asset.fields["speed"].unit if vib.speed_tag is None else None) or (
                        catalog.tag_unit(speed_ref)
                    )
                    self._speed_routes[speed_ref].append(
                        (runtime, contracts.converter(unit or "rpm", "Hz"))
                    )
                for channel in vib.channels:
                    self._rings[channel.waveform] = runtime.vibration.ring_for(channel.waveform)
        self.sessions: list[Any] = []
        self.metrics.add_source(self._live_figures)
        self._stopping = False

    # --- the value stream -------------------------------------------------------------------

    def on_value(self, value: Any) -> None:
        """Route one ``TagValue`` to the fields it feeds (called inline by the sessions)."""
        ref = f"{value.source}.{value.tag}"
        good = contracts.is_good(value)
        self.metrics.values.labels(value.source).inc()
        if not good:
            self.metrics.poll_errors.labels(value.source).inc()
        when = value.source_time or value.gateway_time
        for route in self._routes.get(ref, ()):
            number = value.value
            if good and isinstance(number, (int, float)) and not isinstance(number, bool):
                number = route.convert(float(number))
            route.runtime.set_value(route.field, number, contracts.quality_name(value), when)
        if good and isinstance(value.value, (int, float)):
            for runtime, to_hz in self._speed_routes.get(ref, ()):
                if runtime.vibration is not None:
                    runtime.vibration.shaft_hz = to_hz(float(value.value))

    def ring_for(self, waveform: str) -> Any:
        """The SampleRing a session writes ``"<source>.<waveform>"`` into (None if unused)."""
        return self._rings.get(waveform)

    # --- tasks -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then drain the queues into the sink and close it."""
        loop_started = time.time()
        log.info(
            "gateway starting",
            extra={"gateway": self.config.gateway.name, "assets": len(self.assets)},
        )
        await self.sink.start(self)
        try:
            async with asyncio.TaskGroup() as group:
                for session in contracts.open_sessions(self):
                    self.sessions.append(session)
                    group.create_task(session.run(), name=f"source:{session.name}")
                for runtime in self.assets.values():
                    if runtime.vibration is not None:
                        group.create_task(self._dsp(runtime), name=f"dsp:{runtime.asset.name}")
                group.create_task(self._products(), name="products")
                group.create_task(self._sink_loop(), name="sink")
                group.create_task(self._status(), name="status")
                group.create_task(self._stop_on(stop), name="stop")
        except* _Stop:
            pass
        finally:
            self._stopping = True
            await self._drain()
            await self.sink.close()
            log.info(
                "gateway stopped",
                extra={
                    "uptime_s": round(time.time() - loop_started, 1),
                    "dropped": self.telemetry.dropped + self.alerts.dropped,
                },
            )

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        log.info("gateway stopping")
        raise _Stop

    async def _dsp(self, runtime: AssetRuntime) -> None:
        monitor = runtime.vibration
        assert monitor is not None
        vib = monitor.config
        period = vib.hop / vib.sample_rate
        asset = runtime.asset.name
        while True:
            await asyncio.sleep(period)
            try:
                result = await asyncio.to_thread(monitor.process)
            except Exception:
                log.exception("vibration analysis failed", extra={"asset": asset})
                continue
            if result is None:
                continue
            self.metrics.dsp_seconds.labels(asset).observe(
                result.dsp_seconds / max(result.frames, 1)
            )
            runtime.last_vibration = result
            runtime.set_value("velocity_rms", round(result.velocity_rms, 4), "good", result.time)
            runtime.set_value("iso_zone", result.zone, "good", result.time)
            runtime.set_value(
                "diagnosis",
                {
                    "fault": result.diagnosis,
                    "score_db": round(result.score_db, 2),
                    "frequency_hz": round(result.frequency_hz, 2),
                },
                "good",
                result.time,
            )
            self._evaluate(runtime, result.features, result.zone, result, result.time)
            now = time.time()
            if now - runtime.features_published_at >= self.config.gateway.features_interval_s:
                runtime.features_published_at = now
                self.telemetry.put(
                    Message("features", runtime.asset, contracts.features_payload(runtime, result))
                )

    def _evaluate(
        self,
        runtime: AssetRuntime,
        features: dict[str, float],
        zone: str | None,
        result: VibrationResult | None,
        when: float,
    ) -> None:
        for alert in contracts.rules_update(runtime.rules, features, zone, result, when):
            rule = str(alert["rule"])
            state = str(alert["state"])
            self.metrics.alerts.labels(runtime.asset.name, rule, state).inc()
            if state == "raised":
                runtime.active_alerts[rule] = alert
            else:
                runtime.active_alerts.pop(rule, None)
            self.metrics.active_alerts.labels(runtime.asset.name).set(len(runtime.active_alerts))
            log.warning(
                "alert " + state,
                extra={
                    "asset": runtime.asset.name,
                    "rule": rule,
                    "severity": alert.get("severity"),
                },
            )
            self.alerts.put(Message("alert", runtime.asset, alert))
            if self.on_update is not None:
                self.on_update(runtime)

    async def _products(self) -> None:
        while True:
            await asyncio.sleep(PRODUCT_PERIOD_S)
            now = time.time()
            for runtime in self.assets.values():
                if runtime.vibration is None:
                    self._tag_fed_severity(runtime, now)
                if not runtime.values or not runtime.changed(now):
                    continue
                runtime.product = contracts.product_payload(runtime, now)
                runtime.mark_published(now)
                self.telemetry.put(Message("product", runtime.asset, runtime.product))
                if self.on_update is not None:
                    self.on_update(runtime)

    def _tag_fed_severity(self, runtime: AssetRuntime, now: float) -> None:
        """ISO zone and rules of an asset whose vibration comes as features from a tag."""
        features = {
            k: float(v)
            for k, v in runtime.values.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and runtime.quality[k] == "good"
        }
        zone = None
        if "velocity_rms" in features:
            asset = runtime.asset
            zone = contracts.iso_zone(
                features["velocity_rms"], asset.machine_group, asset.foundation
            )
            runtime.set_value("iso_zone", zone, "good", runtime.value_time["velocity_rms"])
        if features and runtime.rules is not None:
            self._evaluate(runtime, features, zone, None, now)

    async def _sink_loop(self) -> None:
        while True:
            message = self.alerts.get_nowait() or self.telemetry.get_nowait()
            if message is None:
                waiters = [
                    asyncio.ensure_future(self.alerts.wait()),
                    asyncio.ensure_future(self.telemetry.wait()),
                ]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                continue
            await self._send(message)

    async def _send(self, message: Message) -> None:
        try:
            await self.sink.send(message)
            self.metrics.messages.labels(message.kind).inc()
        except Exception:
            self.metrics.dropped.labels(f"sink-{message.kind}").inc()
            log.exception("sink refused a message", extra={"kind": message.kind})

    async def _status(self) -> None:
        while True:
            self.telemetry.put(Message("status", None, self.status_payload()))
            await asyncio.sleep(self.config.gateway.status_interval_s)

    async def _drain(self, timeout: float = 5.0) -> None:
        """Hand what is still queued to the sink (alerts first), within ``timeout`` s."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (
                    message := self.alerts.get_nowait() or self.telemetry.get_nowait()
                ) is not None:
                    await self._send(message)

    # --- figures ---------------------------------------------------------------------------

    def status_payload(self) -> dict[str, Any]:
        """The gateway status message: state and every counter."""
        return {
            "gateway": self.config.gateway.name,
            "state": "stopping" if self._stopping else "online",
            "counters": self.metrics.snapshot(),
        }

    def _live_figures(self) -> list[tuple[str, str, dict[str, str], float]]:
        figures: list[tuple[str, str, dict[str, str], float]] = []
        for runtime in self.assets.values():
            monitor = runtime.vibration
            if monitor is None:
                continue
            for channel, lag in zip(monitor.channels, monitor.lag().values(), strict=True):
                labels = {"asset": runtime.asset.name, "channel": channel.name}
                figures.append(
                    ("isthmus_ring_lag_samples", "Samples written, not yet analysed", labels, lag)
                )
                figures.append(
                    (
                        "isthmus_ring_written_samples",
                        "Samples pushed into the ring",
                        labels,
                        float(channel.ring.written),
                    )
                )
                for reason, count in (("overrun", channel.lost_overrun), ("gap", channel.lost_gap)):
                    figures.append(
                        (
                            "isthmus_ring_lost_samples",
                            "Samples the analysis never saw (overrun or source gap)",
                            {**labels, "reason": reason},
                            float(count),
                        )
                    )
                figures.append(
                    ("isthmus_frames_analysed", "Frames analysed", labels, float(channel.frames))
                )
        figures.append(
            (
                "isthmus_queue_depth",
                "Messages waiting for the sink",
                {"queue": "telemetry"},
                float(len(self.telemetry)),
            )
        )
        figures.append(
            (
                "isthmus_queue_depth",
                "Messages waiting for the sink",
                {"queue": "alerts"},
                float(len(self.alerts)),
            )
        )
        figures.extend(contracts.sink_figures(self.sink))
        for session in self.sessions:
            figures.extend(contracts.session_figures(session))
        return figures


class _Stop(Exception):
    """Raised inside the task group to stop every task."""


def now_iso(t: float | None = None) -> str:
    """UTC ISO 8601 with milliseconds."""
    t = time.time() if t is None else t
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(math.modf(t)[0] * 1000):03d}Z"
    )
