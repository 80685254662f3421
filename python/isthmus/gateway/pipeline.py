"""The gateway pipeline: sources -> routes -> asset state -> products and alerts -> sinks.

::

  Modbus / OPC UA sessions --ValueBatch (one per read)--> routes.Router --> asset state
        | waveform blocks (decoded in Rust)                  (compiled routes, conversion,
        v                                                     bounds; marks assets dirty)
  SampleRing per channel --reader--> DSP task per asset (to_thread, Rust, no GIL)
                                     velocity RMS, ISO zone, envelope, rules --> alerts
  product task: dirty assets only, at most once per publish_min_interval_s; deadband,
  quality and staleness decide (products.AssetRuntime)                     --> telemetry
                                                                                     v
     alerts: a FIFO that never drops; telemetry: conflated per asset (latest wins, counted)
                                                                                     v
                                        sink task --> outbox (SQLite) --> MQTT  (or console)

Every loop is a named task in one :class:`asyncio.TaskGroup`. Routing a read is done
inline in the session's callback with routes compiled at start, so polling never waits
for anything downstream. The sink takes alerts first and awaits each until it is
durable; telemetry waits in a conflating queue holding one entry per asset and kind, so
a slow broker costs intermediate values (counted), never memory or alerts.

This module sits on top: it imports products, routes, diagnosis and vibration; none of
them imports it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from isthmus.gateway import diagnosis
from isthmus.gateway.config import GatewayConfig
from isthmus.gateway.metrics import Metrics
from isthmus.gateway.products import AssetRuntime, Message
from isthmus.gateway.routes import Router
from isthmus.gateway.vibration import VibrationResult
from isthmus.sources.values import ValueBatch

log = logging.getLogger("isthmus.gateway")

# Bounds of the shutdown steps (s): hand queued messages to the sink, stop the
# sessions, flush the outbox to the broker and close it.
DRAIN_S = 5.0
SOURCES_STOP_S = 10.0
SINK_CLOSE_S = 20.0
# Most telemetry messages handed to a sink's ``send_many`` at once (alerts go between).
SINK_BATCH = 256
# How often the staleness task looks for fields that have just turned stale (s).
STALE_CHECK_S = 0.5
# Model field -> rule feature, for assets whose vibration comes from a tag.
TAG_FEATURES = {"vibration_velocity_rms_mm_s": "velocity_rms"}
# Why a restarted gateway clears an alert it raised before.
__all__ = ["AlertQueue", "AssetRuntime", "ConflatingQueue", "Gateway", "Message"]

RESTART_CLEAR_REASON = (
    "cleared at gateway start: raised before a restart, the gateway can no longer vouch "
    "for it; it is raised again if the condition still holds"
)


class AlertQueue:
    """A FIFO that never drops: alerts wait here until the sink has made them durable."""

    def __init__(self, name: str = "alerts") -> None:
        self.name = name
        self._items: collections.deque[Message] = collections.deque()
        self._ready = asyncio.Event()
        self.dropped = 0  # stays 0; kept so both queues report the same figures

    def put(self, item: Message) -> None:
        self._items.append(item)
        self._ready.set()

    def put_back(self, item: Message) -> None:
        """Return an alert taken but not delivered to the head of the queue."""
        self._items.appendleft(item)
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


class ConflatingQueue:
    """Telemetry waiting for the sink, at most one message per (asset, kind).

    A newer message of an asset whose previous one still waits replaces it in place
    (latest wins, counted in ``isthmus_conflated_total``), so the queue holds at most
    one entry per asset and kind and a slow broker costs intermediate values, never
    memory. ``maxsize`` (sized from the configuration, never below the number of keys
    it can hold) bounds the keys; past it the oldest entry goes, counted in
    ``isthmus_dropped_total``.
    """

    def __init__(self, name: str, maxsize: int, metrics: Metrics) -> None:
        self.name = name
        self._items: collections.OrderedDict[tuple[str, str], Message] = collections.OrderedDict()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self._dropped = metrics.dropped.labels(name)
        self._conflated = metrics.conflated.labels(name)
        self.dropped = 0
        self.conflated = 0

    def put(self, item: Message) -> None:
        key = (item.asset.name if item.asset is not None else "", item.kind)
        if key in self._items:
            self._items[key] = item
            self._conflated.inc()
            self.conflated += 1
        else:
            if len(self._items) >= self._maxsize:
                self._items.popitem(last=False)
                self._dropped.inc()
                self.dropped += 1
            self._items[key] = item
        self._ready.set()

    def get_nowait(self) -> Message | None:
        if not self._items:
            self._ready.clear()
            return None
        return self._items.popitem(last=False)[1]

    async def wait(self) -> None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()

    def __len__(self) -> int:
        return len(self._items)


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
        from isthmus.gateway import contracts

        self.config = config
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.on_update = on_update
        g = config.gateway
        # products, features and status: one key each per asset, plus the gateway's own
        size = max(g.queue_size, 2 * len(config.assets) + 1)
        self.telemetry = ConflatingQueue("telemetry", size, self.metrics)
        self.alerts = AlertQueue("alerts")
        self.sources = contracts.open_sources(config.sources, self.on_values)
        for source in self.sources:
            if hasattr(source.session, "on_batch"):
                source.session.on_batch = self.on_batch
        rings = {ref: ring for source in self.sources for ref, ring in source.rings.items()}
        self.assets = {
            a.name: AssetRuntime(a, rings, self.metrics, max_silence_s=g.max_silence_s)
            for a in config.assets
        }
        self.router = Router(config, self.assets)
        self._dirty: set[AssetRuntime] = set()
        self._dirty_event = asyncio.Event()
        # (gateway time a field may turn stale, tie-breaker, asset): checked lazily
        self._expiry: list[tuple[float, int, AssetRuntime]] = []
        self._expiry_queued: set[str] = set()
        self._counter = 0
        self._value_counters: dict[str, Any] = {}
        self._conflated_readings = self.metrics.conflated.labels("products")
        self._bad_counters: dict[str, Any] = {}
        self.metrics.add_source(self._live_figures)
        self.started = time.time()
        self.stopping = False
        self._source_tasks: list[asyncio.Task[None]] = []
        # Kept beside the outbox, and only by sinks that have one (a console sink without
        # an outbox, as in tests and benches, leaves no file behind).
        self.alert_state_path: Path | None = None
        if getattr(sink, "outbox_settings", None) is not None:
            self.alert_state_path = Path(config.outbox.path + ".active-alerts.json")
        # Alert ids (by asset) whose "cleared" event the sink has not taken yet: they stay
        # in the state file, so a restart clears them again if this run could not.
        self._clearing: dict[str, set[str]] = {}

    # --- the value stream -------------------------------------------------------------------

    def on_batch(self, batch: ValueBatch) -> None:
        """Route one read (a :class:`ValueBatch`) to its fields; called inline by sessions."""
        n = len(batch.values)
        counter = self._value_counters.get(batch.source)
        if counter is None:
            counter = self._value_counters[batch.source] = self.metrics.values.labels(batch.source)
            self._bad_counters[batch.source] = self.metrics.poll_errors.labels(batch.source)
        counter.inc(n)
        if batch.quality.value != "good":
            self._bad_counters[batch.source].inc(n)
        elif batch.bad_tags:
            self._bad_counters[batch.source].inc(len(batch.bad_tags))
        self._touched(self.router.apply(batch))

    def on_values(self, values: list[Any]) -> None:
        """Route :class:`isthmus.sources.values.TagValue` items (OPC UA, replays)."""
        for value in values:
            self.metrics.values.labels(value.source).inc()
            if not value.good:
                self.metrics.poll_errors.labels(value.source).inc()
        self._touched(self.router.apply_values(values))

    def on_value(self, value: Any) -> None:
        """Route one value (see :meth:`on_values`)."""
        self.on_values([value])

    def _touched(self, assets: set[AssetRuntime]) -> None:
        if assets:
            if self._dirty:
                # readings of assets whose product is not built yet: the newest wins
                replaced = len(assets & self._dirty)
                if replaced:
                    self._conflated_readings.inc(replaced)
            self._dirty |= assets
            self._dirty_event.set()

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
        self._restore_alert_state()
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
                group.create_task(self._staleness(), name="staleness")
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
                    "dropped": self.telemetry.dropped,
                    "conflated": self.telemetry.conflated,
                },
            )

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        log.info("gateway stopping")
        # Sessions stop reading first (no request left in flight), then drop their
        # connections; then every other task ends.
        from isthmus.gateway import contracts

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
        now = time.time()
        runtime.set_value(
            "vibration_velocity_rms_mm_s",
            round(result.velocity_rms, 4),
            "good",
            result.time,
            seen=now,
        )
        runtime.set_value("iso20816_zone", result.zone, "good", result.time, seen=now)
        if result.diagnosis_missing is None:
            label = diagnosis.product_label(result.diagnosis)
            runtime.set_value("bearing_diagnosis", label, "good", result.time, seen=now)
        elif "bearing_diagnosis" in runtime.required:
            # nothing analysed: "normal" would be a wrong value, not a missing one
            runtime.set_value(
                "bearing_diagnosis",
                None,
                "uncertain",
                result.time,
                seen=now,
                reason=result.diagnosis_missing,
            )
        self._touched({runtime})
        self._evaluate(runtime, result.features, result.zone, result, result.time)
        if now - runtime.features_published_at >= self.config.gateway.features_interval_s:
            runtime.features_published_at = now
            vib = runtime.asset.vibration
            assert vib is not None
            features = diagnosis.features_message(vib, result)
            self.telemetry.put(Message("features", runtime, features, time=result.time))

    def _evaluate(
        self,
        runtime: AssetRuntime,
        features: dict[str, float],
        zone: str | None,
        result: VibrationResult | None,
        when: float,
    ) -> None:
        changed = False
        for alert in runtime.rules.update(features, zone, result, when):
            rule = alert.alert_id.rsplit(".", 1)[-1]
            self.metrics.alerts.labels(runtime.name, rule, alert.state).inc()
            if alert.state == "raised":
                runtime.active_alerts[alert.alert_id] = alert
            else:
                runtime.active_alerts.pop(alert.alert_id, None)
                self._clearing.setdefault(runtime.name, set()).add(alert.alert_id)
            runtime.alert_log.append(alert)
            self.metrics.active_alerts.labels(runtime.name).set(len(runtime.active_alerts))
            log.warning(
                f"alert {alert.state}",
                extra={"asset": runtime.name, "alert": alert.alert_id, "detail": alert.message},
            )
            self.alerts.put(Message("alert", runtime, alert, time=when))
            changed = True
            if self.on_update is not None:
                self.on_update(runtime)
        if changed:
            self._save_alert_state()

    # --- products -------------------------------------------------------------------------

    async def _products(self) -> None:
        """Build products of the assets that changed, at most once per minimum interval.

        While the sink is behind (its ``ready()`` is false and telemetry waits), no
        product is built: the assets stay dirty and their newest readings win, so the
        work done is proportional to what is delivered, not to what is polled.
        """
        interval = self.config.gateway.publish_min_interval_s
        ready = getattr(self.sink, "ready", None)
        while True:
            await self._dirty_event.wait()
            # the publisher's queue drains on its own: no event to wait for, so poll
            while ready is not None and self.telemetry and not ready():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            self._dirty_event.clear()
            dirty, self._dirty = self._dirty, set()
            now = time.time()
            mono = time.monotonic()
            for runtime in dirty:
                try:
                    self._product(runtime, now, mono)
                except Exception:  # one asset's bad value must not stop the others
                    log.exception("data product failed", extra={"asset": runtime.name})
                    self._failed_product(runtime, now)
            if interval > 0:
                await asyncio.sleep(interval)
            else:
                await asyncio.sleep(0)

    async def _staleness(self) -> None:
        """Re-evaluate the assets whose fields just turned stale or whose heartbeat is due.

        Only those: a heap of per-asset deadlines, checked lazily (a deadline that moved
        on because fresh readings came is pushed again, not evaluated).
        """
        while True:
            await asyncio.sleep(STALE_CHECK_S)
            now = time.time()
            due: set[AssetRuntime] = set()
            while self._expiry and self._expiry[0][0] <= now:
                _t, _n, runtime = heapq.heappop(self._expiry)
                self._expiry_queued.discard(runtime.name)
                deadline = self._deadline(runtime)
                if deadline is not None and deadline > now:
                    self._push_deadline(runtime, deadline)
                else:
                    due.add(runtime)
            self._touched(due)

    def _deadline(self, runtime: AssetRuntime) -> float | None:
        """When the asset must be looked at again without news: staleness or heartbeat."""
        heartbeat = runtime.published_wall + self.config.gateway.max_silence_s
        expiry = runtime.next_expiry()
        return heartbeat if expiry is None else min(expiry, heartbeat)

    def _push_deadline(self, runtime: AssetRuntime, deadline: float) -> None:
        self._counter += 1
        heapq.heappush(self._expiry, (deadline + 1e-3, self._counter, runtime))
        self._expiry_queued.add(runtime.name)

    def _watch_expiry(self, runtime: AssetRuntime) -> None:
        if runtime.name in self._expiry_queued:
            return
        deadline = self._deadline(runtime)
        if deadline is not None:
            self._push_deadline(runtime, deadline)

    def _product(self, runtime: AssetRuntime, now: float, mono: float | None = None) -> None:
        mono = time.monotonic() if mono is None else mono
        if runtime.tag_fed_severity:
            self._tag_fed_severity(runtime, now)
        if not runtime.values:
            return
        product, quality, shown = runtime.snapshot(now)
        if not runtime.report.offer(shown, quality, mono):
            self._watch_expiry(runtime)
            return
        runtime.product = product
        runtime.product_quality = quality
        runtime.published_at = mono
        runtime.published_wall = now
        when = runtime.reading_time() or now
        runtime.product_time = when
        self.telemetry.put(Message("product", runtime, product, quality=quality, time=when))
        self._watch_expiry(runtime)
        if self.on_update is not None:
            self.on_update(runtime)

    def _failed_product(self, runtime: AssetRuntime, now: float) -> None:
        """A product that could not be built goes out bad, every field listed: never silence.

        Otherwise the broker would keep serving the last good retained product.
        """
        try:
            product = runtime.model(field_quality=dict.fromkeys(sorted(runtime.required), "bad"))
        except Exception:
            log.exception("bad data product failed too", extra={"asset": runtime.name})
            return
        runtime.product = product
        runtime.product_quality = "bad"
        runtime.published_wall = now
        when = runtime.reading_time() or now
        self.telemetry.put(Message("product", runtime, product, quality="bad", time=when))
        self._watch_expiry(runtime)

    def _tag_fed_severity(self, runtime: AssetRuntime, now: float) -> None:
        """ISO zone and rules of an asset whose vibration arrives as features from a tag.

        The zone inherits the velocity's quality and time (see products.DERIVED_FROM).
        """
        features = {
            TAG_FEATURES.get(k, k): float(v)
            for k, v in runtime.values.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (isinstance(v, int) or math.isfinite(v))
            and runtime.field_state(k, now) == "good"
        }
        zone = None
        if "velocity_rms" in features:
            asset = runtime.asset
            zone = diagnosis.iso_zone(
                features["velocity_rms"], asset.machine_group, asset.foundation
            )
            source = "vibration_velocity_rms_mm_s"
            runtime.set_value(
                "iso20816_zone",
                zone,
                "good",
                runtime.value_time[source],
                seen=runtime.seen[source],
            )
        if features:
            when = max(runtime.value_time.values())
            if when > runtime.rules_time:
                runtime.rules_time = when
                self._evaluate(runtime, features, zone, None, when)

    # --- alert state across restarts -----------------------------------------------------

    def _save_alert_state(self) -> None:
        """Persist the alerts a consumer may believe raised (asset -> alert ids), atomically,
        beside the outbox: the raised ones, and the cleared ones whose event the sink has
        not taken yet."""
        if self.alert_state_path is None:
            return
        state = {}
        for name, r in self.assets.items():
            ids = set(r.active_alerts) | self._clearing.get(name, set())
            if ids:
                state[name] = sorted(ids)
        try:
            tmp = self.alert_state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.alert_state_path)
        except OSError as exc:
            log.error("cannot save the active alerts to %s: %s", self.alert_state_path, exc)

    def _restore_alert_state(self) -> None:
        """Clear, with a reason, every alert a previous run left raised.

        The rule engine starts empty, so the gateway cannot vouch for an alert raised
        before the restart: it publishes a ``cleared`` event for each (the retained
        ``alerts/active`` list follows), and raises it again if the condition holds.
        """
        from isthmus.uns.models import Alert

        if self.alert_state_path is None:
            return
        try:
            raw = json.loads(self.alert_state_path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("cannot read the active alerts of the last run: %s", exc)
            return
        now = time.time()
        for name, alert_ids in raw.items() if isinstance(raw, dict) else ():
            runtime = self.assets.get(name)
            if runtime is None:
                continue
            for alert_id in alert_ids:
                alert = Alert(
                    alert_id=str(alert_id),
                    state="cleared",
                    severity="info",
                    message=f"{name}: {RESTART_CLEAR_REASON}",
                )
                log.warning(
                    "alert cleared at start",
                    extra={"asset": name, "alert": alert_id, "detail": RESTART_CLEAR_REASON},
                )
                self.alerts.put(Message("alert", runtime, alert, time=now))
                self._clearing.setdefault(name, set()).add(str(alert_id))
        self._save_alert_state()

    # --- the sink -------------------------------------------------------------------------

    async def _sink_loop(self) -> None:
        ready = getattr(self.sink, "ready", None)
        send_many = getattr(self.sink, "send_many", None)
        room = getattr(self.sink, "room", None)
        if ready is None and room is not None:
            ready = lambda: room() > 0  # noqa: E731
        while True:
            message = self.alerts.get_nowait()
            if message is None and (ready is None or ready()):
                message = self.telemetry.get_nowait()
            if message is None:
                if self.alerts or (self.telemetry and ready is not None):
                    # the sink is behind: let telemetry conflate while it catches up
                    await asyncio.sleep(0.01)
                    continue
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
            if message.kind == "alert" or send_many is None:
                try:
                    await self._send(message)
                except asyncio.CancelledError:
                    if message.kind == "alert":
                        self.alerts.put_back(message)  # the shutdown drain hands it over
                    raise
                continue
            # Telemetry goes over in batches (one publisher call, one writer wake-up);
            # alerts are looked at again before the next batch.
            batch = [message]
            limit = min(SINK_BATCH, room()) if room is not None else SINK_BATCH
            while len(batch) < limit:
                more = self.telemetry.get_nowait()
                if more is None:
                    break
                batch.append(more)
            await self._send_batch(batch, send_many)

    async def _send_batch(
        self, batch: list[Message], send_many: Callable[[list[Message]], Any]
    ) -> None:
        try:
            await send_many(batch)
        except Exception:
            # the batch call refused: each message gets the one-by-one rules (counted drop)
            log.exception("sink refused a batch; sending one by one", extra={"kind": "batch"})
            for message in batch:
                await self._send(message)
            return
        counts = collections.Counter(message.kind for message in batch)
        for kind, n in counts.items():
            self.metrics.messages.labels(kind).inc(n)

    async def _send(self, message: Message) -> None:
        attempt = 0
        while True:
            try:
                await self.sink.send(message)
                self.metrics.messages.labels(message.kind).inc()
                if message.kind == "alert":
                    self._alert_delivered(message)
                return
            except Exception:
                if message.kind == "alert":
                    # never dropped: retry with backoff until the outbox takes it (at
                    # shutdown until the drain's time is up; what is left is counted)
                    attempt += 1
                    self.metrics.sink_retries.labels(message.kind).inc()
                    log.exception("sink refused an alert; retrying", extra={"kind": "alert"})
                    await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
                    continue
                self.metrics.dropped.labels(f"sink-{message.kind}").inc()
                log.exception("sink refused a message", extra={"kind": message.kind})
                return

    async def _status(self) -> None:
        while True:
            await asyncio.sleep(self.config.gateway.status_interval_s)
            self.telemetry.put(Message("status", None, self.status_payload()))

    def _alert_delivered(self, message: Message) -> None:
        """The sink took an alert: a delivered "cleared" leaves the state file."""
        alert = message.payload
        if alert.state == "raised" or message.asset is None:
            return
        clearing = self._clearing.get(message.asset.name)
        if clearing is not None and alert.alert_id in clearing:
            clearing.discard(alert.alert_id)
            self._save_alert_state()

    async def _drain(self) -> None:
        """Hand what is still queued to the sink (alerts first), within DRAIN_S seconds.

        Alerts left over are counted and logged; the state file still lists them (see
        :meth:`_save_alert_state`), so the next start clears them with a reason.
        """
        message: Message | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                while (
                    message := self.alerts.get_nowait() or self.telemetry.get_nowait()
                ) is not None:
                    await self._send(message)
        left = len(self.alerts) + (message is not None and message.kind == "alert")
        if left:
            self.metrics.alerts_undelivered.inc(left)
            log.error(
                "%d alert events not handed to the outbox at shutdown; the alert state file "
                "keeps them, the next start clears them with a reason",
                left,
            )

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
