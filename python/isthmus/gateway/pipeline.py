"""The gateway pipeline: sources -> decoding -> rings -> DSP and rules -> data products -> sinks.

::

  Modbus / OPC UA sessions --TagValue--> route + unit conversion --> asset state --+
        | waveform blocks (decoded in Rust)                                          | products,
        v                                                                            | by exception
  SampleRing per channel --reader--> DSP task per asset (to_thread, Rust, no GIL) ---+ features
                                     velocity RMS, ISO zone, envelope, rules --------+ alerts
                                                                                     v
                          bounded queues: telemetry drops its oldest (counted); alerts apart
                                                                                     v
                                        sink task --> outbox (SQLite) --> MQTT  (or console)

Every loop is a named task in one :class:`asyncio.TaskGroup`. Routing a value is a
few dict lookups done inline in the session's callback, so polling never waits
for anything downstream; between stages there are only bounded queues that drop
(and count) rather than block. A slow broker is absorbed by the outbox, whose
bound and drop policy belong to the UNS layer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from isthmus.gateway import contracts, diagnosis
from isthmus.gateway.config import Asset, GatewayConfig
from isthmus.gateway.metrics import Metrics
from isthmus.gateway.vibration import VibrationMonitor, VibrationResult

log = logging.getLogger("isthmus.gateway")

MessageKind = Literal["product", "features", "alert", "status"]

# A product is published at least this often even when nothing changed (s).
MAX_SILENCE_S = 60.0
# How often the product task looks for changes (s).
PRODUCT_PERIOD_S = 0.25
# Bounds of the shutdown steps (s): hand queued messages to the sink, stop the
# sessions, flush the outbox to the broker and close it.
DRAIN_S = 5.0
SOURCES_STOP_S = 10.0
SINK_CLOSE_S = 20.0
# Model field -> rule feature, for assets whose vibration comes from a tag.
TAG_FEATURES = {"vibration_velocity_rms_mm_s": "velocity_rms"}


@dataclass
class Message:
    """One thing to publish; ``asset`` is None for gateway-level messages (status).

    ``payload`` is a msgspec Struct of the UNS models (``Pump``, ``VibrationFeatures``,
    ``Alert``) or, for status, a dict.
    """

    kind: MessageKind
    asset: AssetRuntime | None
    payload: Any
    quality: str = "good"
    time: float = field(default_factory=time.time)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)


class DropQueue:
    """A bounded FIFO that never blocks its producer: when full, the oldest item goes.

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
        while not self._items:
            self._ready.clear()
            await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class FieldRoute:
    """A tag feeding one model field, with its unit conversion."""

    runtime: AssetRuntime
    field: str
    convert: Callable[[float], float]


class AssetRuntime:
    """The live state of one asset: field values, vibration results, alerts."""

    def __init__(self, asset: Asset, rings: dict[str, Any], metrics: Metrics | None = None) -> None:
        from isthmus.uns.topics import AssetPath
        from isthmus.uns.units import ReportByException

        self.asset = asset
        self.name = asset.name
        self.model = contracts.model_class(asset.model)
        self.path = AssetPath(
            enterprise=asset.isa95.enterprise,
            site=asset.isa95.site,
            area=asset.isa95.area,
            line=asset.isa95.line,
            asset=asset.asset_id,
        )
        deadbands = {k: m.deadband for k, m in asset.fields.items() if m.deadband is not None}
        self.report = ReportByException(
            self.model, deadbands, MAX_SILENCE_S, f"assets.{asset.name}"
        )
        self.values: dict[str, Any] = {}
        self.quality: dict[str, str] = {}
        self.value_time: dict[str, float] = {}
        self.product: Any | None = None
        self.product_quality = "good"
        self.vibration = VibrationMonitor(asset, rings) if asset.vibration is not None else None
        self.last_vibration: VibrationResult | None = None
        self.rules = diagnosis.RuleSet(asset)
        self.active_alerts: dict[str, Any] = {}
        self.alert_log: list[Any] = []
        self.features_published_at = 0.0
        self.metrics = metrics or Metrics()
        #: Field -> why its current value is left out of the product (schema violation).
        self.rejected: dict[str, str] = {}

    def set_value(self, name: str, value: Any, quality: str, when: float) -> None:
        """Record a field's value; one the model's schema rejects is kept out of the product.

        A value out of the field's bounds or choices (a stopped pump's -0.02 Hz as
        -1.2 rpm, a zone "E") would make the published payload fail its own schema: it
        is marked ``uncertain`` (so :meth:`build_product` leaves the field None and the
        product is ``uncertain``), counted, and logged when the field starts failing.
        Never clamped.
        """
        from isthmus.uns.models import check_field

        if quality == "good":
            violation = check_field(self.model, name, value)
            if violation is not None:
                quality = "uncertain"
                mapping = self.asset.fields.get(name)
                source = f"tag {mapping.tag!r}" if mapping is not None else "the edge analysis"
                reason = f"{source} -> {name} = {value!r}: {violation.error}"
                self.metrics.rejected.labels(self.name, name).inc()
                if name not in self.rejected:
                    log.warning(
                        "value left out of the data product: %s",
                        reason,
                        extra={"asset": self.name},
                    )
                self.rejected[name] = reason
            else:
                self.rejected.pop(name, None)
        self.values[name] = value
        self.quality[name] = quality
        self.value_time[name] = when

    def overall_quality(self) -> str:
        """good when every field is good, bad when none is, uncertain in between."""
        qualities = set(self.quality.values())
        if qualities <= {"good"}:
            return "good"
        return "bad" if "good" not in qualities else "uncertain"

    def build_product(self) -> Any:
        """The data product now; fields with a bad value are left out (None)."""
        fields = {
            k: v for k, v in self.values.items() if self.quality.get(k) == "good" and v is not None
        }
        return self.model(**fields)


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
        self.sources = contracts.open_sources(config.sources, self.on_values)
        rings = {ref: ring for source in self.sources for ref, ring in source.rings.items()}
        self.assets = {a.name: AssetRuntime(a, rings, self.metrics) for a in config.assets}
        catalog = contracts.source_catalog(config.sources, [])
        self._routes: dict[str, list[FieldRoute]] = collections.defaultdict(list)
        self._speed_routes: dict[str, list[tuple[VibrationMonitor, Callable[[float], float]]]] = (
            collections.defaultdict(list)
        )
        for runtime in self.assets.values():
            asset = runtime.asset
            units = contracts.model_field_units(asset.model)
            for name, mapping in asset.fields.items():
                unit = mapping.unit or catalog.tag_unit(mapping.tag)
                convert = contracts.converter(unit, units.get(name))
                self._routes[mapping.tag].append(FieldRoute(runtime, name, convert))
            monitor = runtime.vibration
            vib = asset.vibration
            if vib is None or monitor is None:
                continue
            speed = asset.fields.get("speed_rpm")
            speed_ref = vib.speed_tag or (speed.tag if speed is not None else None)
            if speed_ref is not None:
                declared = speed.unit if speed is not None and vib.speed_tag is None else None
                unit = declared or catalog.tag_unit(speed_ref) or "rpm"
                self._speed_routes[speed_ref].append((monitor, contracts.converter(unit, "Hz")))
        self.metrics.add_source(self._live_figures)
        self.started = time.time()
        self.stopping = False
        self._source_tasks: list[asyncio.Task[None]] = []

    # --- the value stream -------------------------------------------------------------------

    def on_values(self, values: list[Any]) -> None:
        """Route the :class:`isthmus.sources.values.TagValue` of one read to their fields.

        Called inline by the sessions; a few dict lookups per value, never blocks.
        """
        for value in values:
            self.on_value(value)

    def on_value(self, value: Any) -> None:
        """Route one value (see :meth:`on_values`)."""
        ref = f"{value.source}.{value.tag}"
        good = bool(value.good)
        quality = str(getattr(value.quality, "value", value.quality))
        self.metrics.values.labels(value.source).inc()
        if not good:
            self.metrics.poll_errors.labels(value.source).inc()
        when = value.source_time or value.gateway_time
        number = value.value
        numeric = isinstance(number, (int, float)) and not isinstance(number, bool)
        for route in self._routes.get(ref, ()):
            converted = number
            if good and numeric:
                # 7 significant digits: what a float32 register holds; hides the binary
                # noise of scaling (188 * 0.01 = 1.8800000000000001) in the product.
                converted = float(f"{route.convert(float(number)):.7g}")
            route.runtime.set_value(route.field, converted, quality, when)
        if good and numeric:
            for monitor, to_hz in self._speed_routes.get(ref, ()):
                monitor.shaft_hz = to_hz(float(number))

    # --- tasks -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, acquire: bool = True) -> None:
        """Run until ``stop`` is set, then drain the queues into the sink and close it.

        ``acquire=False`` leaves the protocol sessions idle: the caller feeds
        :meth:`on_values` and the sources' rings itself (replays, benchmarks).
        """
        log.info(
            "gateway starting",
            extra={"gateway": self.config.gateway.name, "assets": len(self.assets)},
        )
        await self.sink.start(self)
        try:
            async with asyncio.TaskGroup() as group:
                for source in self.sources if acquire else ():
                    self._source_tasks.append(
                        group.create_task(source.run(), name=f"source:{source.name}")
                    )
                for runtime in self.assets.values():
                    if runtime.vibration is not None:
                        group.create_task(self._dsp(runtime), name=f"dsp:{runtime.name}")
                group.create_task(self._products(), name="products")
                group.create_task(self._sink_loop(), name="sink")
                group.create_task(self._status(), name="status")
                group.create_task(self._stop_on(stop), name="stop")
        except* _Stop:
            pass
        finally:
            self.stopping = True
            await self._drain()
            await _bounded("closing the sink (outbox flush)", self.sink.close(), SINK_CLOSE_S)
            log.info(
                "gateway stopped",
                extra={
                    "uptime_s": round(time.time() - self.started, 1),
                    "dropped": self.telemetry.dropped + self.alerts.dropped,
                },
            )

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        log.info("gateway stopping")
        # Sessions stop reading first (no request left in flight), then drop their
        # connections; then every other task ends.
        await _bounded(
            "stopping the sources",
            asyncio.gather(*(contracts.cancel_and_wait(t) for t in self._source_tasks)),
            SOURCES_STOP_S,
        )
        await _bounded(
            "closing the source connections",
            asyncio.gather(*(source.close() for source in self.sources), return_exceptions=True),
            SOURCES_STOP_S,
        )
        log.info("sources stopped")
        raise _Stop

    async def _dsp(self, runtime: AssetRuntime) -> None:
        monitor = runtime.vibration
        assert monitor is not None
        vib = monitor.config
        period = vib.hop / vib.sample_rate
        while True:
            await asyncio.sleep(period)
            try:
                result = await asyncio.to_thread(monitor.process)
                if result is not None:
                    self._vibration_result(runtime, result)
            except Exception:  # log, back off, keep analysing: one bad frame is not fatal
                log.exception("vibration analysis failed", extra={"asset": runtime.name})
                await asyncio.sleep(1.0)

    def _vibration_result(self, runtime: AssetRuntime, result: VibrationResult) -> None:
        self.metrics.dsp_seconds.labels(runtime.name).observe(
            result.dsp_seconds / max(result.frames, 1)
        )
        runtime.last_vibration = result
        runtime.set_value(
            "vibration_velocity_rms_mm_s", round(result.velocity_rms, 4), "good", result.time
        )
        runtime.set_value("iso20816_zone", result.zone, "good", result.time)
        runtime.set_value(
            "bearing_diagnosis", diagnosis.product_label(result.diagnosis), "good", result.time
        )
        self._evaluate(runtime, result.features, result.zone, result, result.time)
        now = time.time()
        if now - runtime.features_published_at >= self.config.gateway.features_interval_s:
            runtime.features_published_at = now
            features = diagnosis.features_message(runtime, result)
            self.telemetry.put(Message("features", runtime, features, time=result.time))

    def _evaluate(
        self,
        runtime: AssetRuntime,
        features: dict[str, float],
        zone: str | None,
        result: VibrationResult | None,
        when: float,
    ) -> None:
        for alert in runtime.rules.update(features, zone, result, when):
            rule = alert.alert_id.rsplit(".", 1)[-1]
            self.metrics.alerts.labels(runtime.name, rule, alert.state).inc()
            if alert.state == "raised":
                runtime.active_alerts[alert.alert_id] = alert
            else:
                runtime.active_alerts.pop(alert.alert_id, None)
            runtime.alert_log.append(alert)
            self.metrics.active_alerts.labels(runtime.name).set(len(runtime.active_alerts))
            log.warning(
                f"alert {alert.state}",
                extra={"asset": runtime.name, "alert": alert.alert_id, "detail": alert.message},
            )
            self.alerts.put(Message("alert", runtime, alert, time=when))
            if self.on_update is not None:
                self.on_update(runtime)

    async def _products(self) -> None:
        while True:
            await asyncio.sleep(PRODUCT_PERIOD_S)
            now = time.time()
            for runtime in self.assets.values():
                try:
                    self._product(runtime, now)
                except Exception:  # one asset's bad value must not stop the others
                    log.exception("data product failed", extra={"asset": runtime.name})

    def _product(self, runtime: AssetRuntime, now: float) -> None:
        if runtime.vibration is None:
            self._tag_fed_severity(runtime, now)
        if not runtime.values:
            return
        quality = runtime.overall_quality()
        product = runtime.build_product()
        shown = {k: v for k, v in runtime.values.items() if runtime.quality[k] == "good"}
        if not runtime.report.offer(shown, quality, time.monotonic()):
            return
        runtime.product = product
        runtime.product_quality = quality
        self.telemetry.put(Message("product", runtime, product, quality=quality, time=now))
        if self.on_update is not None:
            self.on_update(runtime)

    def _tag_fed_severity(self, runtime: AssetRuntime, now: float) -> None:
        """ISO zone and rules of an asset whose vibration arrives as features from a tag."""
        features = {
            TAG_FEATURES.get(k, k): float(v)
            for k, v in runtime.values.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and runtime.quality.get(k) == "good"
        }
        zone = None
        if "velocity_rms" in features:
            asset = runtime.asset
            zone = diagnosis.iso_zone(
                features["velocity_rms"], asset.machine_group, asset.foundation
            )
            when = runtime.value_time["vibration_velocity_rms_mm_s"]
            runtime.set_value("iso20816_zone", zone, "good", when)
        if features:
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
            await asyncio.sleep(self.config.gateway.status_interval_s)
            self.telemetry.put(Message("status", None, self.status_payload()))

    async def _drain(self) -> None:
        """Hand what is still queued to the sink (alerts first), within DRAIN_S seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                while (
                    message := self.alerts.get_nowait() or self.telemetry.get_nowait()
                ) is not None:
                    await self._send(message)

    # --- figures ---------------------------------------------------------------------------

    def status_payload(self) -> dict[str, Any]:
        """The gateway's own status: state and every counter."""
        return {
            "gateway": self.config.gateway.name,
            "state": "stopping" if self.stopping else "online",
            "counters": self.metrics.snapshot(),
        }

    def counters(self) -> dict[str, int]:
        """The metrics as integers for the UNS status message (durations in microseconds)."""
        out: dict[str, int] = {}
        for key, value in self.metrics.snapshot().items():
            if key.endswith("_sum") or "_seconds" in key.split("{")[0]:
                out[key.replace("_seconds", "_us")] = int(value * 1e6)
            else:
                out[key] = int(value)
        return out

    def _live_figures(self) -> list[tuple[str, str, dict[str, str], float]]:
        figures: list[tuple[str, str, dict[str, str], float]] = []
        for runtime in self.assets.values():
            monitor = runtime.vibration
            if monitor is None:
                continue
            for channel, lag in zip(monitor.channels, monitor.lag(), strict=True):
                labels = {"asset": runtime.name, "channel": channel.name}
                figures += [
                    ("isthmus_ring_lag_samples", "Samples written, not yet analysed", labels, lag),
                    (
                        "isthmus_ring_written_samples",
                        "Samples pushed into the ring (gaps included)",
                        labels,
                        float(channel.ring.written),
                    ),
                    (
                        "isthmus_frames_analysed",
                        "Vibration frames analysed",
                        labels,
                        float(channel.frames),
                    ),
                    (
                        "isthmus_frames_invalid",
                        "Frames with NaN or infinite samples",
                        labels,
                        float(channel.invalid_frames),
                    ),
                ]
                for reason, count in (("overrun", channel.lost_overrun), ("gap", channel.lost_gap)):
                    figures.append(
                        (
                            "isthmus_ring_lost_samples",
                            "Samples the analysis never saw (overrun: overwritten; gap: "
                            "missed at the source)",
                            {**labels, "reason": reason},
                            float(count),
                        )
                    )
        for queue in (self.telemetry, self.alerts):
            figures.append(
                (
                    "isthmus_queue_depth",
                    "Messages waiting for the sink",
                    {"queue": queue.name},
                    float(len(queue)),
                )
            )
        figures_of = getattr(self.sink, "figures", None)
        if figures_of is not None:
            figures.extend(figures_of())
        for source in self.sources:
            figures.extend(source.figures())
        return figures


async def _bounded(what: str, step: Awaitable[Any], seconds: float) -> None:
    """Await a shutdown step for at most ``seconds``; a step that hangs is logged and left.

    ``asyncio.wait`` rather than ``asyncio.timeout``: a timeout cancels the waiter and
    then waits for the step to honour the cancellation, which a library stuck in a
    cancellation-swallowing call never does; shutdown must finish regardless.
    """
    task = asyncio.ensure_future(step)
    done, _pending = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.error(f"{what} did not finish within {seconds:g} s; shutting down anyway")
    elif not task.cancelled() and task.exception() is not None:
        log.error(f"{what} failed", exc_info=task.exception())


class _Stop(Exception):
    """Raised inside the task group to stop every task."""
