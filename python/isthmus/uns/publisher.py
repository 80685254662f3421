"""The UNS publisher: outbox in front, aiomqtt 2.x behind, reconnecting forever.

::

    async with Publisher(mqtt, outbox, enterprise="acme", site="plant1",
                         gateway_id="gw1") as pub:
        pub.publish_schema(path, Pump)
        pub.publish_state(path, Pump(speed_rpm=1480.0))
        await pub.publish_alert(path, alert)         # returns once durably accepted

Producers never wait for the network: messages go into a bounded in-memory queue that a
writer task commits to the SQLite outbox in batches (one transaction per batch, on a
dedicated thread). A drain task publishes the outbox in ``seq`` order with up to
``inflight`` publishes awaiting their PUBACK, and deletes rows once acknowledged:
``aiomqtt.Client.publish(qos=1)`` returns only when paho's ``on_publish`` fires, which
paho does on receipt of the PUBACK (``_handle_pubackcomp``). On any error the connection
is dropped and re-established with jittered exponential backoff; unacknowledged rows are
published again (at-least-once; consumers dedupe by ``message_id``).

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
import random
import ssl
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import aiomqtt
import msgspec
from aiomqtt.exceptions import MqttConnectError

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
from isthmus.uns.outbox import OutboundMessage, Outbox
from isthmus.uns.settings import MqttSettings, OutboxSettings
from isthmus.uns.topics import LEAF_POLICY, AssetPath, Leaf, gateway_status_topic

__all__ = ["Counters", "Publisher", "backoff_delay"]

logger = logging.getLogger("isthmus.uns")

R = TypeVar("R")

# CONNACK codes meaning "your credentials are not accepted" (MQTT 3.1.1 and MQTT 5).
_AUTH_CODES = {4, 5, 134, 135}


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


# MQTT limits (paho raises ValueError past them, at publish time).
_MAX_TOPIC_BYTES = 65535
_MAX_PAYLOAD_BYTES = 268435455


def _check_publishable(topic: str, payload: bytes) -> None:
    """Refuse at the door what the broker could never take.

    Such a message, once in the outbox, would fail at every drain attempt and stall
    everything queued behind it forever.
    """
    if not topic or any(c in topic for c in "+#\x00"):
        raise ConfigError(f"topic {topic!r}: empty, or holds a wildcard (+, #) or NUL")
    if len(topic.encode("utf-8")) > _MAX_TOPIC_BYTES:
        raise ConfigError(f"topic {topic[:80]!r}...: longer than {_MAX_TOPIC_BYTES} bytes")
    if len(payload) > _MAX_PAYLOAD_BYTES:
        raise ConfigError(f"topic {topic!r}: payload of {len(payload)} bytes exceeds MQTT's limit")


class Publisher:
    """Async context manager publishing UNS messages through the durable outbox."""

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
    ) -> None:
        self.mqtt = mqtt
        self.outbox_settings = outbox
        self.gateway_id = gateway_id
        self.status_topic = gateway_status_topic(enterprise, site, gateway_id)
        self.counters = counters if counters is not None else Counters()
        self.version = version
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self._encoder = msgspec.json.Encoder()
        self._db_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._outbox: Outbox | None = None
        self._pending: deque[tuple[OutboundMessage, asyncio.Future[int | None] | None]] = deque()
        self._pending_event = asyncio.Event()
        self._new_data = asyncio.Event()
        self._written = asyncio.Condition()
        self._enqueued_total = 0
        self._written_total = 0
        self._acked_event = asyncio.Event()
        self._active_alerts: dict[str, dict[str, Alert]] = {}
        # Last acknowledged retained payload and QoS per topic, restored on reconnect.
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aiomqtt.Client | None = None
        self._closing = False
        self._since = datetime.now(UTC)
        for name in (
            "mqtt.connects",
            "mqtt.connect_failures",
            "mqtt.auth_failures",
            "mqtt.disconnects",
            "mqtt.published",
            "mqtt.session_errors",
            "mqtt.retained_restored",
            "mqtt.publish_refused",
            "queue.dropped_telemetry",
        ):
            self.counters.set(name, 0)

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Publisher:
        try:
            outbox = await self._db(Outbox, self.outbox_settings)
        except BaseException:
            self._db_thread.shutdown(wait=False)
            raise
        self._outbox = outbox
        self.counters.add_source("outbox", outbox.snapshot)
        if outbox.depth:
            logger.info(
                "outbox %s holds %d messages to replay", self.outbox_settings.path, outbox.depth
            )
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
        client = self._client
        if client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(
                    self.status_topic,
                    self._status_payload("offline"),
                    qos=1,
                    retain=True,
                    timeout=self.mqtt.timeout_s,
                )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_pending(SessionError("publisher closed before the message was written"))
        if self._outbox is not None:
            await self._db(self._outbox.close)
        self._db_thread.shutdown(wait=True)

    async def _db(self, fn: Callable[..., R], *args: Any) -> R:
        """Run an outbox call on the outbox's own thread (SQLite work off the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)

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

        When the in-memory queue holds ``queue_size`` messages, new telemetry is dropped and
        counted (``queue.dropped_telemetry``); alerts are always queued.
        """
        msg = self._message(topic, payload, droppable, retain, qos, message_id)
        if droppable and len(self._pending) >= self.outbox_settings.queue_size:
            self.counters.incr("queue.dropped_telemetry")
            return False
        self._push(msg, None)
        return True

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
        """Wait until the outbox is empty (everything acknowledged).

        Unbounded while the broker is away: wrap it in ``asyncio.timeout``.
        """
        await self.flush()
        while True:
            self._acked_event.clear()  # before the check, so no ack slips between
            if self._outbox is None or self._outbox.depth == 0:
                return
            await self._acked_event.wait()

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

    def _push(self, msg: OutboundMessage, future: asyncio.Future[int | None] | None) -> None:
        self._pending.append((msg, future))
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
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(len(self._pending), 1024))]
                await self._write_batch(batch)

    async def _write_batch(
        self, batch: list[tuple[OutboundMessage, asyncio.Future[int | None] | None]]
    ) -> None:
        assert self._outbox is not None
        write = asyncio.get_running_loop().run_in_executor(
            self._db_thread, self._outbox.put_many, [m for m, _ in batch]
        )
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
            self._new_data.set()
        finally:
            async with self._written:
                self._written_total += len(batch)
                self._written.notify_all()

    @staticmethod
    def _settle(
        batch: list[tuple[OutboundMessage, asyncio.Future[int | None] | None]],
        seqs: list[int | None] | None,
        error: Exception | None,
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

    def _client_kwargs(self) -> dict[str, Any]:
        m = self.mqtt
        kwargs: dict[str, Any] = {
            "hostname": m.host,
            "port": m.port,
            "identifier": m.identifier,
            "protocol": aiomqtt.ProtocolVersion.V5
            if m.protocol == "5"
            else aiomqtt.ProtocolVersion.V311,
            "keepalive": m.keepalive_s,
            "timeout": m.timeout_s,
            "will": aiomqtt.Will(
                self.status_topic, self._status_payload("offline"), qos=1, retain=True
            ),
        }
        if m.username:
            kwargs["username"] = m.username
            kwargs["password"] = m.password()  # read now: a rotated secret is picked up
        if m.tls:
            kwargs["tls_params"] = aiomqtt.TLSParameters(
                ca_certs=m.ca_file,
                certfile=m.cert_file,
                keyfile=m.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        return kwargs

    async def _connection_loop(self) -> None:
        attempt = 0
        where = self.mqtt.url
        while not self._closing:
            try:
                client = aiomqtt.Client(**self._client_kwargs())
                client.pending_calls_threshold = self.mqtt.inflight + 16
                self._count_refused_publishes(client)
                async with client:
                    attempt = 0
                    self._client = client
                    self.last_error = None
                    self.counters.incr("mqtt.connects")
                    logger.info("connected to MQTT broker %s as %s", where, self.mqtt.identifier)
                    await self._session(client)
            except MqttConnectError as exc:
                code = getattr(exc.rc, "value", exc.rc)
                if code in _AUTH_CODES:
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
            except aiomqtt.MqttError as exc:
                if self._client is not None:
                    self.counters.incr("mqtt.disconnects")
                    self.last_error = f"MQTT connection to {where} lost: {exc}"
                else:
                    self.counters.incr("mqtt.connect_failures")
                    self.last_error = f"cannot connect to MQTT broker {where}: {exc}"
                logger.warning("%s; retrying", self.last_error)
            except ConfigError as exc:
                self.counters.incr("mqtt.connect_failures")
                self.last_error = f"MQTT settings: {exc}"
                logger.error("%s; retrying", self.last_error)
            except Exception as exc:
                # Whatever else breaks a session (a bug, an odd library error) must not stop
                # the gateway from reconnecting: the outbox still holds the messages.
                self.counters.incr("mqtt.session_errors")
                self.last_error = f"MQTT session to {where} failed: {exc!r}"
                logger.exception("%s; retrying", self.last_error)
            finally:
                self.connected.clear()
                self._client = None
            if self._closing:
                break
            delay = backoff_delay(attempt, self.mqtt.reconnect_min_s, self.mqtt.reconnect_max_s)
            attempt += 1
            await asyncio.sleep(delay)

    def _count_refused_publishes(self, client: aiomqtt.Client) -> None:
        """Count and log PUBACKs carrying an MQTT 5 failure reason (e.g. not authorized).

        aiomqtt completes ``publish()`` on any PUBACK, so such a message leaves the outbox
        as acknowledged; retrying it would fail the same way and stall everything behind
        it. It is dropped, but never silently: ``mqtt.publish_refused`` and an error log.
        """
        paho = getattr(client, "_client", None)
        inner = getattr(paho, "on_publish", None)
        if paho is None or inner is None:
            return

        def on_publish(c: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            if getattr(reason, "is_failure", False):
                self.counters.incr("mqtt.publish_refused")
                logger.error(
                    "MQTT broker %s refused publish mid %d: %s; message dropped",
                    self.mqtt.url,
                    mid,
                    reason,
                )
            inner(c, userdata, mid, reason, properties)

        paho.on_publish = on_publish

    async def _session(self, client: aiomqtt.Client) -> None:
        """One connection: status online, then drain, watch and refresh status until error."""
        await client.publish(self.status_topic, self._status_payload("online"), qos=1, retain=True)
        await self._restore_retained(client)
        self.connected.set()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._watch(client), name="uns-mqtt-watch")
                tasks.create_task(self._drain(client), name="uns-outbox-drain")
                tasks.create_task(self._status_loop(client), name="uns-status")
        except BaseExceptionGroup as group:
            raise _first_error(group) from None

    async def _restore_retained(self, client: aiomqtt.Client) -> None:
        """Publish again the last acknowledged retained message of every topic.

        A broker restarted without persistence has lost its retained messages (state,
        schema, active alerts); a late subscriber must still find them. The outbox then
        sends whatever is newer, so the last retained value per topic stays the newest.
        Duplicates carry the same ``message_id``.
        """
        if not self._retained:
            return
        items = list(self._retained.items())
        await asyncio.gather(
            *(
                client.publish(topic, payload, qos=qos, retain=True, timeout=self.mqtt.timeout_s)
                for topic, (payload, qos) in items
            )
        )
        self.counters.incr("mqtt.retained_restored", len(items))

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        # aiomqtt wakes message iteration (not pending publishes) on disconnection; this
        # task turns a dead connection into an MqttError that tears the session down.
        async for _ in client.messages:
            pass

    async def _status_loop(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(self.mqtt.status_interval_s)
            await client.publish(
                self.status_topic, self._status_payload("online"), qos=1, retain=True
            )

    async def _drain(self, client: aiomqtt.Client) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        last_seq = 0  # a new connection replays everything not yet acknowledged
        acked: list[int] = []
        while True:
            self._new_data.clear()
            rows = await self._db(outbox.ack_and_peek, acked, last_seq, self.mqtt.inflight)
            if acked:
                self.counters.incr("mqtt.published", len(acked))
                self._acked_event.set()
                acked = []
            if not rows:
                await self._new_data.wait()
                continue
            # Tasks start in creation order, and aiomqtt hands each message to paho before
            # its first await, so the messages leave in seq order on the one connection.
            results = await asyncio.gather(
                *(
                    client.publish(
                        row.topic,
                        row.payload,
                        qos=row.qos,
                        retain=row.retain,
                        timeout=self.mqtt.timeout_s,
                    )
                    for row in rows
                ),
                return_exceptions=True,
            )
            for row, result in zip(rows, results, strict=True):
                if isinstance(result, BaseException):
                    # Delete the acknowledged prefix, then reconnect and replay the rest.
                    if acked:
                        await self._db(outbox.ack, acked)
                        self.counters.incr("mqtt.published", len(acked))
                        self._acked_event.set()
                    if isinstance(result, aiomqtt.MqttError):
                        raise result
                    raise aiomqtt.MqttError(f"publish failed: {result!r}")
                acked.append(row.seq)
                if row.retain:
                    self._retained[row.topic] = (row.payload, row.qos)
            last_seq = rows[-1].seq
