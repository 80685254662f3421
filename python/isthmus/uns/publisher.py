"""The UNS publisher: outbox in front, a batching MQTT connection behind, reconnecting forever.

::

    async with Publisher(mqtt, outbox, enterprise="acme", site="plant1",
                         gateway_id="gw1") as pub:
        pub.publish_schema(path, Pump)
        pub.publish_state(path, Pump(speed_rpm=1480.0))
        pub.publish_states([(path, state), ...])      # many products, one call
        await pub.publish_alert(path, alert)         # returns once durably accepted

Producers never wait for the network: messages go into an in-memory queue that a writer
task commits to the SQLite outbox in batches (one transaction per batch, on a dedicated
thread). A drain task publishes the outbox in ``seq`` order with up to ``inflight``
messages awaiting their PUBACK (fewer if the broker's MQTT 5 receive maximum says so),
and deletes rows once acknowledged. Each round trip to the outbox thread acknowledges
every PUBACK received since the last one and fetches the next batch, which the
connection (:mod:`isthmus.uns.mqtt_client`) writes in one call: the cost per message
does not grow with the window. On any error the connection is dropped and re-established
with jittered exponential backoff; unacknowledged rows are published again (at-least-once;
consumers dedupe by ``message_id``). A reconnect is logged with the outage's length.

Alerts are never dropped: they always enter the in-memory queue, and the outbox keeps
them even beyond its bound. When the in-memory queue is full, new telemetry replaces the
queued telemetry of the same topic (latest wins, ``queue.conflated_telemetry``) or, when
there is none, is dropped (``queue.dropped_telemetry``). When the broker cannot keep up
(more than ``conflate_above`` messages waiting), the outbox conflates telemetry per topic.

A refusal that may pass (MQTT 5 reason 0x80, 0x83, 0x87 not authorised, 0x97 quota
exceeded: anything that does not blame the packet) keeps the message in the outbox and
sends it again with backoff (``mqtt.refused_temporary``); an alert is retried until
accepted, telemetry is quarantined after a few refusals. A message the broker refuses
for good is quarantined in the outbox (``outbox.quarantined``,
``mqtt.publish_refused``), logged once per topic and reason, and never blocks the rest:
an MQTT 5 PUBACK with a reason blaming the packet (topic name or payload format invalid,
packet too large); a topic
the broker would call malformed (control characters) or a packet larger than its
maximum packet size, caught before sending; and a message after which the broker closes
the connection each time it is sent alone (MQTT 3.1.1 has no other way to say it). After
a connection the broker closed with messages in flight, those messages are sent again one
at a time, so the one at fault is found.

After every (re)connect the last acknowledged retained message of each topic is published
again, so a broker restarted without persistence still serves the current state, schema
and active alerts to late subscribers.

The gateway status (``{enterprise}/{site}/_gateway/{id}/status``, retained) is published
``online`` with :class:`Counters` on connect and every ``status_interval_s``; the MQTT will
publishes ``offline`` when the connection dies without a DISCONNECT (e.g. SIGKILL), and a
graceful close publishes ``offline`` itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import random
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import msgspec

from isthmus.errors import ConfigError, SessionError
from isthmus.uns.models import (
    JSON_SCHEMA_DIALECT,
    ActiveAlerts,
    Alert,
    Envelope,
    GatewayStatus,
    Quality,
    VibrationFeatures,
    json_schema,
    new_message_id,
    wrap,
)
from isthmus.uns.mqtt_client import (
    BrokerLimits,
    ConnectOptions,
    ConnectRefused,
    MqttConnection,
    MqttError,
    OutgoingPublish,
    reason_name,
)
from isthmus.uns.outbox import OutboundMessage, Outbox, StoredMessage
from isthmus.uns.settings import MqttSettings, OutboxSettings
from isthmus.uns.topics import LEAF_POLICY, AssetPath, Leaf, gateway_status_topic

__all__ = ["Counters", "Publisher", "backoff_delay", "topic_problem"]

logger = logging.getLogger("isthmus.uns")

R = TypeVar("R")

# CONNACK codes meaning "your credentials are not accepted" (MQTT 3.1.1 and MQTT 5).
_AUTH_CODES = {4, 5, 134, 135}
# MQTT 5 reasons (PUBACK or DISCONNECT) that blame the message itself: sending it again
# cannot succeed, so it is quarantined. Every other failure reason (0x80 unspecified, 0x83
# implementation specific, 0x87 not authorised, 0x97 quota exceeded, ...) may pass: an
# ACL gets fixed, a quota refills. Those messages are retried with backoff.
_PACKET_FAULTS = {0x81, 0x82, 0x90, 0x95, 0x99, 0x9A, 0x9B}
# Times telemetry refused for a temporary reason is retried before it is quarantined (so a
# topic the ACL never allows does not pile up); alerts and metadata are retried forever.
_TELEMETRY_RETRIES = 3
# Messages per outbox transaction written by the writer task.
_WRITE_BATCH = 4096


class Counters:
    """Named integer counters published in the gateway status.

    Any part of the gateway may feed it (``counters.incr("modbus.timeouts")``,
    ``counters.set("ring.overruns", n)``); names are dotted ``area.what``. The publisher
    keeps its own under ``mqtt.*``, ``queue.*`` and ``outbox.*``.
    """

    def __init__(self) -> None:
        self._values: dict[str, int] = {}
        self._sources: dict[str, Callable[[], dict[str, int]]] = {}

    def incr(self, name: str, n: int = 1) -> None:
        self._values[name] = self._values.get(name, 0) + n

    def set(self, name: str, value: int) -> None:
        self._values[name] = int(value)

    def get(self, name: str) -> int:
        return self.snapshot().get(name, 0)

    def add_source(self, prefix: str, source: Callable[[], dict[str, int]]) -> None:
        """Read ``source()`` at each snapshot, its names prefixed by ``prefix.``."""
        self._sources[prefix] = source

    def snapshot(self) -> dict[str, int]:
        out = dict(self._values)
        for prefix, source in self._sources.items():
            for name, value in source().items():
                out[f"{prefix}.{name}"] = int(value)
        return dict(sorted(out.items()))


def backoff_delay(attempt: int, low: float, high: float) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based), seconds.

    Exponential (``low * 2**attempt`` capped at ``high``) with "equal jitter": a uniform
    draw in the upper half, so many gateways restarted together do not reconnect in step.
    """
    ceiling = min(high, low * (2.0 ** min(attempt, 30)))
    return ceiling / 2.0 + random.uniform(0.0, ceiling / 2.0)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


# MQTT limits.
_MAX_TOPIC_BYTES = 65535
_MAX_PAYLOAD_BYTES = 268435455


def _check_publishable(topic: str, payload: bytes) -> None:
    """Refuse at the door what no broker could ever take (a wildcard is not a topic name)."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise ConfigError(f"topic {topic!r}: empty, or holds a wildcard (+, #) or NUL")
    # A character takes at most 4 bytes in UTF-8: only long topics need encoding.
    if len(topic) > _MAX_TOPIC_BYTES // 4 and (
        len(topic.encode("utf-8", "surrogatepass")) > _MAX_TOPIC_BYTES
    ):
        raise ConfigError(f"topic {topic[:80]!r}...: longer than {_MAX_TOPIC_BYTES} bytes")
    if len(payload) > _MAX_PAYLOAD_BYTES:
        raise ConfigError(f"topic {topic!r}: payload of {len(payload)} bytes exceeds MQTT's limit")


def _bad_char(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF)


def topic_problem(topic: str) -> str | None:
    """Why a broker would refuse ``topic`` as a PUBLISH topic name, or None if it would not.

    MQTT's rules as Mosquitto applies them: well-formed UTF-8 (no lone surrogates), no
    U+0000-U+001F or U+007F-U+009F control characters, no U+FFFE/U+FFFF, no wildcards,
    1..65535 bytes.
    """
    if not topic:
        return "empty topic"
    if "+" in topic or "#" in topic:
        return "topic holds a wildcard (+, #)"
    if not topic.isprintable():  # fast path: printable text has none of the bad characters
        bad = next((c for c in topic if _bad_char(c)), None)
        if bad is not None:
            return f"topic holds the character U+{ord(bad):04X}, which MQTT does not allow"
    if len(topic.encode("utf-8")) > _MAX_TOPIC_BYTES:
        return f"topic longer than {_MAX_TOPIC_BYTES} bytes"
    return None


class Publisher:
    """Async context manager publishing UNS messages through the durable outbox.

    ``conflate_above``: messages waiting in the outbox above which telemetry conflates per
    topic (latest wins); None picks ``max(10 * inflight, queue_size)``.
    """

    def __init__(
        self,
        mqtt: MqttSettings,
        outbox: OutboxSettings,
        *,
        enterprise: str,
        site: str,
        gateway_id: str,
        counters: Counters | None = None,
        version: str = "",
        conflate_above: int | None = None,
    ) -> None:
        self.mqtt = mqtt
        self.outbox_settings = outbox
        self.gateway_id = gateway_id
        self.status_topic = gateway_status_topic(enterprise, site, gateway_id)
        self.counters = counters if counters is not None else Counters()
        self.version = version
        self.conflate_above = (
            conflate_above
            if conflate_above is not None
            else max(10 * mqtt.inflight, outbox.queue_size)
        )
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self._encoder = msgspec.json.Encoder()
        self._db_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._outbox: Outbox | None = None
        # Queued for the outbox: [message, future]; telemetry also indexed by topic, so a
        # full queue conflates instead of dropping.
        self._pending: deque[list[Any]] = deque()
        self._pending_topic: dict[str, list[Any]] = {}
        self._pending_event = asyncio.Event()
        self._written = asyncio.Condition()
        self._enqueued_total = 0
        self._written_total = 0
        self._acked_event = asyncio.Event()
        # Wakes the drain: PUBACKs arrived, the connection ended, or new rows committed.
        self._wake = asyncio.Event()
        self._new_rows = False
        self._active_alerts: dict[str, dict[str, Alert]] = {}
        # Last acknowledged retained payload and QoS per topic, restored on reconnect.
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: MqttConnection | None = None
        self._closing = False
        self._since = datetime.now(UTC)
        # Acks of messages outside the outbox (status, restored retained), by negative key.
        self._direct_key = 0
        self._direct_waiters: dict[int, asyncio.Event] = {}
        # Finding a message the broker answers by closing the connection.
        self._inflight_rows: dict[int, StoredMessage] = {}
        self._probe_until = 0
        self._suspect: int | None = None
        self._to_quarantine: list[tuple[int, str]] = []
        # Messages refused for a temporary reason: times refused, by seq.
        self._refusals: dict[int, int] = {}
        self._limit_warned: set[str] = set()  # broker limits already logged
        self._logged_refusals: set[tuple[str, str]] = set()
        self._good_topics: set[str] = set()  # topics that passed topic_problem()
        for name in (
            "mqtt.connects",
            "mqtt.reconnects",
            "mqtt.connect_failures",
            "mqtt.auth_failures",
            "mqtt.disconnects",
            "mqtt.published",
            "mqtt.session_errors",
            "mqtt.retained_restored",
            "mqtt.publish_refused",
            "mqtt.refused_temporary",
            "mqtt.qos_downgraded",
            "mqtt.alerts_qos_downgraded",
            "mqtt.retain_dropped",
            "queue.dropped_telemetry",
            "queue.conflated_telemetry",
        ):
            self.counters.set(name, 0)

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Publisher:
        try:
            outbox = await self._db(
                Outbox, self.outbox_settings, conflate_above=self.conflate_above
            )
        except BaseException:
            self._db_thread.shutdown(wait=False)
            raise
        self._outbox = outbox
        self.counters.add_source("outbox", outbox.snapshot)
        if outbox.depth:
            logger.info(
                "outbox %s holds %d messages to replay", self.outbox_settings.path, outbox.depth
            )
        self._new_rows = True
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._writer_loop(), name="uns-outbox-writer"),
            loop.create_task(self._connection_loop(), name="uns-mqtt-connection"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self, drain_timeout: float = 2.0) -> None:
        """Commit what is queued, give the drain ``drain_timeout`` s, go offline, stop.

        Whatever is not acknowledged by then stays in the outbox for the next start.
        """
        if self._closing:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(drain_timeout, 0.1) + 5.0):
                await self.flush()
        if self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    await self.wait_drained()
        self._closing = True
        conn = self._conn
        if conn is not None and self.connected.is_set() and not conn.closed:
            with contextlib.suppress(MqttError, TimeoutError):
                async with asyncio.timeout(min(self.mqtt.timeout_s, max(drain_timeout, 1.0))):
                    await self._publish_direct(
                        conn, self.status_topic, self._status_payload("offline"), 1, True
                    )
            conn.disconnect()  # a DISCONNECT: the broker discards the will
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if conn is not None:
            conn.abort()
        self._fail_pending(SessionError("publisher closed before the message was written"))
        if self._outbox is not None:
            await self._db(self._outbox.close)
        self._db_thread.shutdown(wait=True)

    async def _db(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run an outbox call on the outbox's own thread (SQLite work off the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_thread, lambda: fn(*args, **kwargs))

    # -- producer API -------------------------------------------------------------------

    def enqueue(
        self,
        topic: str,
        payload: bytes,
        *,
        droppable: bool,
        retain: bool = False,
        qos: int | None = None,
        message_id: str = "",
    ) -> bool:
        """Queue a message for the outbox without waiting; False if dropped.

        When the in-memory queue holds ``queue_size`` messages, new telemetry replaces the
        queued telemetry of the same topic (latest wins, ``queue.conflated_telemetry``) or,
        if there is none, is dropped (``queue.dropped_telemetry``); alerts are always
        queued.
        """
        return self._offer(self._message(topic, payload, droppable, retain, qos, message_id))

    def enqueue_many(self, messages: Iterable[OutboundMessage]) -> int:
        """Queue pre-encoded messages (one wake-up of the writer); how many were queued.

        Same rules as :meth:`enqueue`; ``qos`` of each message is used as given. Raises
        :class:`ConfigError` (nothing queued) if a topic is unpublishable.
        """
        if self._closing:
            raise SessionError("publisher is closed")
        batch = list(messages)
        for msg in batch:
            _check_publishable(msg.topic, msg.payload)
        return sum(self._offer(msg) for msg in batch)

    async def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        droppable: bool,
        retain: bool = False,
        qos: int | None = None,
        message_id: str = "",
    ) -> int | None:
        """Put a message into the outbox and return once it is durably committed.

        Returns its outbox ``seq``, or None if the outbox bound rejected it. Does not wait
        for the broker.
        """
        msg = self._message(topic, payload, droppable, retain, qos, message_id)
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._push(msg, future)
        return await future

    def publish_state(
        self,
        path: AssetPath,
        state: msgspec.Struct,
        *,
        quality: Quality = "good",
        timestamp: datetime | None = None,
    ) -> str | None:
        """Queue the asset's data product (retained); its message id, None if dropped."""
        return self._enqueue_leaf(path, Leaf.STATE, state, quality, timestamp)

    def publish_states(
        self,
        items: Iterable[tuple[AssetPath, msgspec.Struct, Quality, datetime | None]],
    ) -> list[str | None]:
        """Queue many data products (``(path, state, quality, timestamp)``) in one call.

        Each is enveloped and encoded once; returns their message ids (None if dropped).
        """
        if self._closing:
            raise SessionError("publisher is closed")
        encode = self._encoder.encode
        out: list[str | None] = []
        qos = self.mqtt.telemetry_qos
        for path, state, quality, timestamp in items:
            envelope = wrap(state, quality=quality, timestamp=timestamp)
            msg = OutboundMessage(
                path.state, encode(envelope), qos, True, True, envelope.message_id
            )
            out.append(envelope.message_id if self._offer(msg) else None)
        return out

    def publish_features(
        self,
        path: AssetPath,
        features: VibrationFeatures,
        *,
        quality: Quality = "good",
        timestamp: datetime | None = None,
    ) -> str | None:
        """Queue vibration features; their message id, None if dropped (queue full)."""
        return self._enqueue_leaf(path, Leaf.VIBRATION, features, quality, timestamp)

    def publish_schema(self, path: AssetPath, model: type[msgspec.Struct]) -> str:
        """Queue the data product's JSON Schema on ``.../_schema`` (retained).

        Like every UNS payload it travels in an envelope (id, time, quality); the
        envelope's ``schema`` names the JSON Schema dialect and ``payload`` is the schema.
        """
        envelope: Envelope[dict[str, Any]] = Envelope(
            message_id=new_message_id(),
            timestamp=datetime.now(UTC),
            quality="good",
            schema=JSON_SCHEMA_DIALECT,
            payload=json_schema(model),
        )
        self.enqueue(
            path.schema,
            self._encoder.encode(envelope),
            droppable=False,
            retain=True,
            qos=1,
            message_id=envelope.message_id,
        )
        return envelope.message_id

    async def publish_alert(
        self,
        path: AssetPath,
        alert: Alert,
        *,
        quality: Quality = "good",
        timestamp: datetime | None = None,
    ) -> str:
        """Publish an alert raise or clear, and the asset's retained active-alert list.

        Returns once both are durably in the outbox. Raises :class:`SessionError` if the
        outbox bound rejected the alert.
        """
        envelope = wrap(alert, quality=quality, timestamp=timestamp)
        seq = await self.publish(
            path.alerts,
            self._encoder.encode(envelope),
            droppable=False,
            qos=self.mqtt.alert_qos,
            message_id=envelope.message_id,
        )
        if seq is None:
            raise SessionError(
                f"outbox full of alerts: alert {alert.alert_id!r} of {path.base} rejected"
            )
        active = self._active_alerts.setdefault(path.base, {})
        if alert.state == "raised":
            active[alert.alert_id] = alert
        else:
            active.pop(alert.alert_id, None)
        await self.publish_active_alerts(path, timestamp=envelope.timestamp)
        return envelope.message_id

    async def publish_active_alerts(
        self, path: AssetPath, *, timestamp: datetime | None = None
    ) -> str:
        """Publish the asset's active-alert list (retained) as this publisher knows it.

        The list lives in memory, like the rule engine's state: a restarted gateway
        calls this once per asset at start to replace a stale retained list with an empty
        one, and the engine raises again whatever still holds.
        """
        active = self._active_alerts.get(path.base, {})
        listing = wrap(ActiveAlerts(alerts=list(active.values())), timestamp=timestamp)
        seq = await self.publish(
            path.active_alerts,
            self._encoder.encode(listing),
            droppable=False,
            retain=True,
            qos=self.mqtt.alert_qos,
            message_id=listing.message_id,
        )
        if seq is None:
            raise SessionError(f"outbox full of alerts: active alerts of {path.base} rejected")
        return listing.message_id

    async def flush(self) -> None:
        """Wait until everything queued so far is committed to the outbox."""
        target = self._enqueued_total
        async with self._written:
            await self._written.wait_for(lambda: self._written_total >= target)

    async def wait_drained(self) -> None:
        """Wait until the outbox is empty (everything acknowledged or quarantined).

        Unbounded while the broker is away: wrap it in ``asyncio.timeout``.
        """
        await self.flush()
        while True:
            self._acked_event.clear()  # before the check, so no ack slips between
            if self._outbox is None or self._outbox.depth == 0:
                return
            await self._acked_event.wait()

    def backlog(self) -> int:
        """Messages queued in memory, not yet committed to the outbox.

        A producer that wants to conflate on its own side (per asset) before this queue
        fills can hold telemetry back while this is above, say, half of ``queue_size``.
        """
        return len(self._pending)

    def waiting(self) -> int:
        """Messages committed to the outbox and not yet acknowledged by the broker."""
        return self._outbox.depth if self._outbox is not None else 0

    def quarantined(self) -> int:
        """Messages quarantined so far (broker refusals), over the outbox's lifetime."""
        return self._outbox.counters["quarantined"] if self._outbox is not None else 0

    # -- internals: queue and writer ----------------------------------------------------------

    def _message(
        self,
        topic: str,
        payload: bytes,
        droppable: bool,
        retain: bool,
        qos: int | None,
        message_id: str,
    ) -> OutboundMessage:
        if self._closing:
            raise SessionError("publisher is closed")
        _check_publishable(topic, payload)
        if qos is None:
            qos = self.mqtt.telemetry_qos if droppable else self.mqtt.alert_qos
        return OutboundMessage(topic, payload, qos, retain, droppable, message_id)

    def _offer(self, msg: OutboundMessage) -> bool:
        """Queue ``msg`` unless it is telemetry and the queue is full (then conflate/drop)."""
        if msg.droppable:
            if len(self._pending) >= self.outbox_settings.queue_size:
                entry = self._pending_topic.get(msg.topic)
                if entry is None:
                    self.counters.incr("queue.dropped_telemetry")
                    return False
                entry[0] = msg  # latest wins, in the place of the one it replaces
                self.counters.incr("queue.conflated_telemetry")
                return True
            entry = [msg, None]
            self._pending_topic[msg.topic] = entry
        else:
            entry = [msg, None]
        self._pending.append(entry)
        self._enqueued_total += 1
        self._pending_event.set()
        return True

    def _push(self, msg: OutboundMessage, future: asyncio.Future[int | None]) -> None:
        self._pending.append([msg, future])
        self._enqueued_total += 1
        self._pending_event.set()

    def _enqueue_leaf(
        self,
        path: AssetPath,
        leaf: Leaf,
        payload: msgspec.Struct,
        quality: Quality,
        timestamp: datetime | None,
    ) -> str | None:
        envelope = wrap(payload, quality=quality, timestamp=timestamp)
        policy = LEAF_POLICY[leaf]
        queued = self.enqueue(
            path.topic(leaf),
            self._encoder.encode(envelope),
            droppable=policy.droppable,
            retain=policy.retain,
            message_id=envelope.message_id,
        )
        return envelope.message_id if queued else None

    async def _writer_loop(self) -> None:
        pending = self._pending
        by_topic = self._pending_topic
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            while pending:
                batch = [pending.popleft() for _ in range(min(len(pending), _WRITE_BATCH))]
                for entry in batch:
                    msg = entry[0]
                    if msg.droppable and by_topic.get(msg.topic) is entry:
                        del by_topic[msg.topic]
                await self._write_batch(batch)

    async def _write_batch(self, batch: list[list[Any]]) -> None:
        assert self._outbox is not None
        loop = asyncio.get_running_loop()
        write = loop.run_in_executor(self._db_thread, self._outbox.put_many, [m for m, _ in batch])
        try:
            try:
                seqs = await asyncio.shield(write)
            except asyncio.CancelledError:
                # Closing: the commit is already running on the outbox thread; let it end
                # so the producers awaiting these messages learn their true fate.
                seqs = await write
                self._settle(batch, seqs, None)
                raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Disk full, I/O error: the producers awaiting these learn of it.
            logger.exception("outbox write failed")
            self.counters.incr("outbox.write_errors")
            self._settle(batch, None, SessionError(f"outbox write failed: {exc}"))
        else:
            self._settle(batch, seqs, None)
            self._new_rows = True
            self._wake.set()
        finally:
            async with self._written:
                self._written_total += len(batch)
                self._written.notify_all()

    @staticmethod
    def _settle(
        batch: list[list[Any]], seqs: list[int | None] | None, error: Exception | None
    ) -> None:
        for i, (_, fut) in enumerate(batch):
            if fut is None or fut.done():
                continue
            if seqs is not None:
                fut.set_result(seqs[i])
            else:
                fut.set_exception(error or SessionError("outbox write failed"))

    def _fail_pending(self, exc: Exception) -> None:
        while self._pending:
            _, fut = self._pending.popleft()
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        self._pending_topic.clear()

    # -- internals: connection ----------------------------------------------------------

    def _status_payload(self, state: str) -> bytes:
        status = GatewayStatus(
            state="online" if state == "online" else "offline",
            gateway_id=self.gateway_id,
            version=self.version,
            since=self._since,
            counters=self.counters.snapshot() if state == "online" else {},
        )
        return self._encoder.encode(wrap(status))

    def _ssl_context(self) -> ssl.SSLContext | None:
        m = self.mqtt
        if not m.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=m.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ca_file: cannot load {m.ca_file}: {_why(exc)}") from None
        if m.cert_file and m.key_file:
            try:
                context.load_cert_chain(m.cert_file, m.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cert_file: cannot load {m.cert_file} with key {m.key_file}: {_why(exc)}"
                ) from None
        return context  # verifies the chain and the host name (check_hostname)

    def _connect_options(self) -> ConnectOptions:
        m = self.mqtt
        return ConnectOptions(
            client_id=m.identifier,
            protocol=m.protocol,
            keepalive_s=m.keepalive_s,
            username=m.username,
            password=m.password() if m.username else None,  # read now: rotation picked up
            will_topic=self.status_topic,
            will_payload=self._status_payload("offline"),
            will_qos=1,
            will_retain=True,
        )

    async def _connection_loop(self) -> None:
        attempt = 0
        where = self.mqtt.url
        down_since: float | None = None  # monotonic time the last connection ended
        failures = 0
        while not self._closing:
            try:
                conn = await MqttConnection.open(
                    self.mqtt.host,
                    self.mqtt.port,
                    self._connect_options(),
                    ssl_context=self._ssl_context(),
                    timeout_s=self.mqtt.timeout_s,
                    wake=self._wake,
                )
            except ConnectRefused as exc:
                failures += 1
                if exc.code in _AUTH_CODES:
                    self.counters.incr("mqtt.auth_failures")
                    self.last_error = (
                        f"MQTT broker {where} refused the credentials of user "
                        f"{self.mqtt.username!r}: {exc}"
                    )
                    logger.error("%s; retrying, messages stay in the outbox", self.last_error)
                else:
                    self.counters.incr("mqtt.connect_failures")
                    self.last_error = f"MQTT broker {where} refused the connection: {exc}"
                    logger.warning("%s; retrying", self.last_error)
            except MqttError as exc:
                failures += 1
                self.counters.incr("mqtt.connect_failures")
                self.last_error = f"cannot connect to MQTT broker {where}: {exc}"
                logger.warning("%s; retrying", self.last_error)
            except ConfigError as exc:
                failures += 1
                self.counters.incr("mqtt.connect_failures")
                self.last_error = f"MQTT settings: {exc}"
                logger.error("%s; retrying", self.last_error)
            else:
                attempt = 0
                self.counters.incr("mqtt.connects")
                if down_since is not None:
                    self.counters.incr("mqtt.reconnects")
                    logger.warning(
                        "reconnected to MQTT broker %s as %s after an outage of %.1f s "
                        "(%d failed attempts)",
                        where,
                        self.mqtt.identifier,
                        time.monotonic() - down_since,
                        failures,
                    )
                else:
                    logger.info("connected to MQTT broker %s as %s", where, self.mqtt.identifier)
                failures = 0
                self.last_error = None
                self._conn = conn
                try:
                    await self._session(conn)
                except MqttError as exc:
                    self.counters.incr("mqtt.disconnects")
                    self.last_error = f"MQTT connection to {where} lost: {exc}"
                    if not self._closing:
                        logger.warning("%s; reconnecting", self.last_error)
                except Exception as exc:
                    # Whatever else breaks a session (a bug, an odd library error) must not
                    # stop the gateway from reconnecting: the outbox still holds the messages.
                    self.counters.incr("mqtt.session_errors")
                    self.last_error = f"MQTT session to {where} failed: {exc!r}"
                    logger.exception("%s; reconnecting", self.last_error)
                finally:
                    self.connected.clear()
                    self._conn = None
                    conn.abort()
                    self._note_lost_connection(conn)
                    down_since = time.monotonic()
            if down_since is None:
                down_since = time.monotonic()
            if self._closing:
                break
            delay = backoff_delay(attempt, self.mqtt.reconnect_min_s, self.mqtt.reconnect_max_s)
            attempt += 1
            await asyncio.sleep(delay)

    async def _session(self, conn: MqttConnection) -> None:
        """One connection: status online, retained restored, then drain, ping, status."""
        status = self._send_direct(conn, self.status_topic, self._status_payload("online"), 1, True)
        self._restore_retained(conn)
        self.connected.set()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._drain(conn), name="uns-outbox-drain")
                tasks.create_task(self._keepalive(conn), name="uns-mqtt-keepalive")
                tasks.create_task(self._status_loop(conn), name="uns-status")
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        finally:
            self._direct_waiters.pop(status, None)

    def _send_direct(
        self, conn: MqttConnection, topic: str, payload: bytes, qos: int, retain: bool
    ) -> int:
        """Publish a message that is not in the outbox; its (negative) ack key."""
        self._direct_key -= 1
        key = self._direct_key
        self._direct_waiters[key] = asyncio.Event()
        conn.publish_many([OutgoingPublish(key, topic, payload, qos, retain)])
        return key

    async def _publish_direct(
        self, conn: MqttConnection, topic: str, payload: bytes, qos: int, retain: bool
    ) -> None:
        key = self._send_direct(conn, topic, payload, qos, retain)
        try:
            await self._direct_waiters[key].wait()
        finally:
            self._direct_waiters.pop(key, None)

    def _restore_retained(self, conn: MqttConnection) -> None:
        """Publish again the last acknowledged retained message of every topic.

        A broker restarted without persistence has lost its retained messages (state,
        schema, active alerts); a late subscriber must still find them. The outbox then
        sends whatever is newer, so the last retained value per topic stays the newest.
        Duplicates carry the same ``message_id``.
        """
        if not self._retained:
            return
        messages = []
        for topic, (payload, qos) in self._retained.items():
            self._direct_key -= 1
            messages.append(OutgoingPublish(self._direct_key, topic, payload, qos, True))
        conn.publish_many(messages)
        self.counters.incr("mqtt.retained_restored", len(messages))

    async def _keepalive(self, conn: MqttConnection) -> None:
        """PINGREQ when nothing was sent for half the keepalive; a silent broker is lost."""
        # An MQTT 5 broker may impose its own keepalive in the CONNACK.
        half = (conn.limits.server_keep_alive or self.mqtt.keepalive_s) / 2.0
        while True:
            idle = time.monotonic() - conn.last_write
            if idle < half:
                await asyncio.sleep(half - idle)
                continue
            await conn.ping(self.mqtt.timeout_s)

    async def _status_loop(self, conn: MqttConnection) -> None:
        while True:
            await asyncio.sleep(self.mqtt.status_interval_s)
            key = self._send_direct(
                conn, self.status_topic, self._status_payload("online"), 1, True
            )
            self._direct_waiters.pop(key, None)  # nobody waits for it

    def _refusal(self, row: StoredMessage, conn: MqttConnection) -> str | None:
        """Why the broker would refuse ``row`` (checked before sending), or None."""
        if row.topic not in self._good_topics:
            problem = topic_problem(row.topic)
            if problem is not None:
                return problem
            if len(self._good_topics) >= 65536:
                self._good_topics.clear()
            self._good_topics.add(row.topic)
        limit = conn.limits.maximum_packet_size
        if len(row.payload) + 64 > limit:
            size = conn.packet_size(row.topic, row.payload, row.qos)
            if size > limit:
                return f"packet of {size} bytes exceeds the broker's maximum packet size {limit}"
        return None

    def _refused(self, row: StoredMessage, reason: str) -> tuple[int, str]:
        """Count a refused message and log it once per topic and reason."""
        self.counters.incr("mqtt.publish_refused")
        if (row.topic, reason) not in self._logged_refusals:
            self._logged_refusals.add((row.topic, reason))
            logger.error(
                "MQTT broker %s refuses messages on %r: %s; quarantined in the outbox "
                "(logged once per topic and reason)",
                self.mqtt.url,
                row.topic,
                reason,
            )
        return (row.seq, reason)

    async def _drain(self, conn: MqttConnection) -> None:
        """Publish the outbox in ``seq`` order with up to ``window`` awaiting their PUBACK.

        Rows are read ahead (up to two windows), so a PUBACK frees room that is refilled
        at once, in the same write that acknowledges the broker's segment: a broker
        that delays its small writes (Nagle) is not left waiting for our TCP ACK.
        Acknowledged rows are deleted in batches: at half a window, when nothing is in
        flight, or with the next read-ahead, in the same outbox thread hop.
        """
        assert self._outbox is not None
        outbox = self._outbox
        limits: BrokerLimits = conn.limits
        window = max(1, min(self.mqtt.inflight, limits.receive_maximum))
        max_qos, retain_ok = limits.maximum_qos, limits.retain_available
        timeout = self.mqtt.timeout_s
        cursor = 0  # a new connection replays everything not yet acknowledged
        ahead: deque[StoredMessage] = deque()
        sent: dict[int, StoredMessage] = {}
        self._inflight_rows = sent
        acked: list[int] = []
        refused, self._to_quarantine = self._to_quarantine, []
        # Refused for a temporary reason: (monotonic time to send again, row), by seq.
        retry: dict[int, tuple[float, StoredMessage]] = {}
        more = True
        waiters = self._direct_waiters
        retained = self._retained
        try:
            while True:
                self._wake.clear()  # before looking, so nothing set from now on is missed
                for key, reason in conn.take_acks():
                    if key < 0:
                        waiter = waiters.get(key)
                        if waiter is not None:
                            waiter.set()
                        continue
                    row = sent.pop(key, None)
                    if row is None:
                        continue
                    if reason >= 0x80:
                        why = "broker refused it: " + reason_name(reason)
                        if self._retry_later(row, reason, why):
                            retry[key] = (time.monotonic() + self._retry_delay(key), row)
                        else:
                            refused.append(self._refused(row, why))
                        continue
                    acked.append(key)
                    if self._refusals:
                        self._refusals.pop(key, None)
                    if row.retain:
                        retained[row.topic] = (row.payload, row.qos)
                    if key == self._suspect:
                        self._suspect = None
                if conn.closed:
                    raise conn.error or MqttError("connection closed")
                next_retry = math.inf
                if retry:
                    now = time.monotonic()
                    due = sorted(seq for seq, (at, _) in retry.items() if at <= now)
                    for seq in reversed(due):
                        ahead.appendleft(retry.pop(seq)[1])
                    next_retry = min((at for at, _ in retry.values()), default=math.inf)
                probing = bool(ahead) and ahead[0].seq <= self._probe_until
                room = (1 if probing else window) - len(sent)
                if room > 0 and ahead:
                    batch = []
                    while room > 0 and ahead:
                        row = ahead.popleft()
                        problem = self._refusal(row, conn)
                        if problem is not None:
                            refused.append(self._refused(row, problem))
                            continue
                        sent[row.seq] = row
                        qos, retain = row.qos, row.retain
                        if qos > max_qos or (retain and not retain_ok):
                            qos, retain = self._within_limits(row, max_qos, retain_ok)
                        batch.append((row.seq, row.topic, row.payload, qos, retain))
                        room -= 1
                        if ahead and ahead[0].seq <= self._probe_until:
                            break  # the next one goes alone
                    if batch:
                        conn.publish_many(batch)
                want = 0
                if len(ahead) < window and (more or self._new_rows):
                    want = 2 * window - len(ahead)
                    self._new_rows = False
                flush = bool(acked or refused) and (
                    want > 0 or not sent or len(acked) + len(refused) >= max(1, window // 2)
                )
                if want or flush:
                    rows = await self._db(outbox.settle, acked, refused, cursor, want)
                    self._count_acked(len(acked), refused)
                    acked, refused = [], []
                    if want:
                        more = len(rows) == want
                    if rows:
                        cursor = rows[-1].seq
                        ahead.extend(rows)
                    continue
                wait = next_retry - time.monotonic() + 0.001
                if sent:
                    age = conn.oldest_inflight_age()
                    if age > timeout:
                        raise MqttError(f"no PUBACK within {timeout:g} s")
                    wait = min(wait, timeout - age + 0.01)
                if wait < math.inf:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(0.0, wait)):
                            await self._wake.wait()
                else:
                    await self._wake.wait()
        finally:
            if acked or refused:
                # What the broker acknowledged is deleted even as the session ends.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._db(outbox.settle, acked, refused, 0, 0))
                    self._count_acked(len(acked), refused)

    def _within_limits(self, row: StoredMessage, max_qos: int, retain_ok: bool) -> tuple[int, bool]:
        """QoS and retain flag the broker's CONNACK allows for ``row``: counted, logged once.

        A broker whose maximum QoS is below the message's must not be sent more (MQTT 5
        protocol error), so the message goes at that QoS, and with QoS 0 it leaves the
        outbox once written, without a PUBACK; that is why it is logged and counted.
        """
        qos, retain = row.qos, row.retain
        if qos > max_qos:
            qos = max_qos
            self.counters.incr("mqtt.qos_downgraded")
            if not row.droppable:
                self.counters.incr("mqtt.alerts_qos_downgraded")
            if "qos" not in self._limit_warned:
                self._limit_warned.add("qos")
                logger.warning(
                    "MQTT broker %s accepts at most QoS %d: messages above it (alerts too) "
                    "are sent at that QoS; at QoS 0 nothing acknowledges delivery (logged "
                    "once, counted in mqtt.qos_downgraded)",
                    self.mqtt.url,
                    max_qos,
                )
        if retain and not retain_ok:
            retain = False
            self.counters.incr("mqtt.retain_dropped")
            if "retain" not in self._limit_warned:
                self._limit_warned.add("retain")
                logger.warning(
                    "MQTT broker %s does not support retained messages: state, schema and "
                    "active alerts are sent unretained, late subscribers miss them (logged "
                    "once, counted in mqtt.retain_dropped)",
                    self.mqtt.url,
                )
        return qos, retain

    def _retry_later(self, row: StoredMessage, reason: int, why: str) -> bool:
        """Whether a message refused with ``reason`` is sent again later (else quarantined).

        Only a reason that blames the message quarantines an alert; telemetry refused for
        another reason is also quarantined after ``_TELEMETRY_RETRIES`` attempts.
        """
        if reason in _PACKET_FAULTS:
            self._refusals.pop(row.seq, None)
            return False
        times = self._refusals.get(row.seq, 0) + 1
        if row.droppable and times > _TELEMETRY_RETRIES:
            self._refusals.pop(row.seq, None)
            return False
        self._refusals[row.seq] = times
        self.counters.incr("mqtt.refused_temporary")
        key = (row.topic, "for now: " + why)
        if key not in self._logged_refusals:
            self._logged_refusals.add(key)
            logger.warning(
                "MQTT broker %s refuses messages on %r for now: %s; retrying with backoff "
                "(logged once per topic and reason)",
                self.mqtt.url,
                row.topic,
                why,
            )
        return True

    def _retry_delay(self, seq: int) -> float:
        attempt = self._refusals.get(seq, 1) - 1
        return backoff_delay(attempt, self.mqtt.reconnect_min_s, self.mqtt.reconnect_max_s)

    def _count_acked(self, n: int, refused: Sequence[tuple[int, str]]) -> None:
        if n:
            self.counters.incr("mqtt.published", n)
        if n or refused:
            self._acked_event.set()

    def _note_lost_connection(self, conn: MqttConnection) -> None:
        """After a connection the broker closed with messages in flight: find the culprit.

        Those messages are sent again one at a time; a message that was alone in flight
        when the broker closed the connection twice (once if the broker's MQTT 5
        DISCONNECT blames the packet) is quarantined at the next connection; a DISCONNECT
        reason that does not blame the packet (quota, not authorised) never quarantines.
        """
        sent = sorted(self._inflight_rows)
        self._inflight_rows = {}
        if not conn.lost_by_peer or not sent or self._closing:
            return
        self._probe_until = max(self._probe_until, sent[-1])
        if len(sent) != 1:
            return
        seq = sent[0]
        said = conn.broker_disconnect_reason
        if said is not None and said >= 0x80 and said not in _PACKET_FAULTS:
            # The broker said why, and it is not the message (quota, not authorised, ...):
            # it is sent again after the reconnect's backoff, never quarantined for that.
            self.counters.incr("mqtt.refused_temporary")
            return
        blamed = said in _PACKET_FAULTS
        if blamed or self._suspect == seq:
            self._suspect = None
            self.counters.incr("mqtt.publish_refused")
            reason = f"the broker closes the connection when it is sent ({conn.error})"
            logger.error(
                "MQTT broker %s: %s; message seq %d quarantined in the outbox",
                self.mqtt.url,
                reason,
                seq,
            )
            self._to_quarantine.append((seq, reason))
        else:
            self._suspect = seq


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
