"""Where the gateway's messages go: the UNS (outbox + MQTT) or the console.

A sink has ``start(gateway)``, ``send(message)``, ``close()`` and ``figures()``
(live metrics). ``send`` returns quickly: the UNS sink hands the message to the
publisher's in-memory queue, which a writer task commits to the durable SQLite
outbox and a drain task publishes to the broker; a slow or absent broker never
holds up the pipeline. Alerts wait until they are durably in the outbox.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
from typing import Any, TextIO

import msgspec

from isthmus.gateway.products import Message

Figures = list[tuple[str, str, dict[str, str], float]]


def status_topic(gateway: Any) -> str:
    """``{enterprise}/{site}/_gateway/{name}/status`` (default: the first asset's site)."""
    from isthmus.uns.topics import gateway_status_topic

    g = gateway.config.gateway
    first = gateway.config.assets[0].isa95
    return gateway_status_topic(g.enterprise or first.enterprise, g.site or first.site, g.name)


def topic_of(message: Message, gateway: Any) -> str:
    """The UNS topic a message belongs on."""
    from isthmus.uns.topics import Leaf

    if message.asset is None:
        return status_topic(gateway)
    leaf = {"product": Leaf.STATE, "features": Leaf.VIBRATION, "alert": Leaf.ALERTS}[message.kind]
    return str(message.asset.path.topic(leaf))


class ConsoleSink:
    """Prints ``topic payload`` lines (JSON envelopes) and keeps a local outbox.

    Used when no broker is configured (and by ``isthmus demo`` without ``--mqtt``):
    every message is enveloped exactly as it would be published and committed to the
    outbox, where it waits for a broker; ``stream=None`` prints nothing.
    """

    def __init__(
        self,
        stream: TextIO | None = sys.stdout,
        outbox: Any | None = None,
        kinds: frozenset[str] = frozenset({"product", "alert"}),
    ) -> None:
        self.stream = stream
        self.kinds = kinds
        self.outbox_settings = outbox
        self.outbox: Any | None = None
        self.last: dict[tuple[str, str], bytes] = {}
        self.count = 0
        self._gateway: Any = None
        self._encoder = msgspec.json.Encoder()
        self._db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")

    async def start(self, gateway: Any) -> None:
        from isthmus.uns.outbox import Outbox

        self._gateway = gateway
        if self.outbox_settings is not None:
            loop = asyncio.get_running_loop()
            self.outbox = await loop.run_in_executor(self._db, Outbox, self.outbox_settings)

    def encode(self, message: Message) -> bytes:
        """The envelope JSON, as the UNS publisher would send it."""
        from isthmus.uns.models import wrap

        if message.kind == "status":
            return self._encoder.encode(message.payload)
        envelope = wrap(message.payload, quality=message.quality, timestamp=message.timestamp)  # type: ignore[arg-type]
        return self._encoder.encode(envelope)

    async def send(self, message: Message) -> None:
        from isthmus.uns.outbox import OutboundMessage

        topic = topic_of(message, self._gateway)
        body = self.encode(message)
        self.last[(message.asset.name if message.asset else "", message.kind)] = body
        self.count += 1
        if self.outbox is not None:
            outbound = OutboundMessage(
                topic,
                body,
                qos=1,
                retain=message.kind in ("product", "status"),
                droppable=message.kind in ("product", "features", "status"),
                message_id=json.loads(body).get("message_id", ""),
            )
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._db, self.outbox.put, outbound)
        if self.stream is not None and message.kind in self.kinds:
            self.stream.write(f"{topic} {body.decode()}\n")
            self.stream.flush()

    async def close(self) -> None:
        if self.outbox is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._db, self.outbox.close)
            self.outbox = None
        self._db.shutdown(wait=True)

    def figures(self) -> Figures:
        if self.outbox is None:
            return []
        return [
            ("isthmus_outbox_depth", "Messages in the outbox", {}, float(self.outbox.depth)),
            *(
                ("isthmus_outbox_" + name, f"Outbox counter {name}", {}, float(value))
                for name, value in self.outbox.counters.items()
            ),
        ]


class UnsSink:
    """Data products, features, alerts and the JSON Schemas into the Unified Namespace.

    The gateway status (retained, ``online`` with counters / ``offline`` as the will)
    is published by the UNS publisher itself; the gateway's metrics join its counters.
    """

    def __init__(self, mqtt: Any, outbox: Any, drain_timeout: float = 5.0) -> None:
        self.mqtt_settings = mqtt
        self.outbox_settings = outbox
        self.drain_timeout = drain_timeout
        self.publisher: Any | None = None
        self._collecting = False

    async def start(self, gateway: Any) -> None:
        from isthmus import __version__
        from isthmus.uns.publisher import Publisher

        g = gateway.config.gateway
        first = gateway.config.assets[0].isa95
        publisher = Publisher(
            self.mqtt_settings,
            self.outbox_settings,
            enterprise=g.enterprise or first.enterprise,
            site=g.site or first.site,
            gateway_id=g.name,
            version=__version__,
        )
        publisher.counters.add_source("gateway", gateway.counters)
        self.publisher = await publisher.__aenter__()
        for runtime in gateway.assets.values():
            publisher.publish_schema(runtime.path, runtime.model)
        # The retained active-alert lists of a previous run describe alerts this run has
        # not raised: replace them with what is true now (empty until a rule raises).
        # Queued like the schemas (never dropped), not awaited one by one.
        from isthmus.uns.models import ActiveAlerts, wrap

        encode = msgspec.json.Encoder().encode
        for runtime in gateway.assets.values():
            listing = wrap(ActiveAlerts(alerts=[]))
            publisher.enqueue(
                runtime.path.active_alerts,
                encode(listing),
                droppable=False,
                retain=True,
                qos=self.mqtt_settings.alert_qos,
                message_id=listing.message_id,
            )

    def ready(self) -> bool:
        """False while the publisher's queue is half full: telemetry waits and conflates."""
        return self.room() > 0

    def room(self) -> int:
        """Messages the publisher's queue takes before it is half full (telemetry waits)."""
        publisher = self.publisher
        if publisher is None:
            return max(1, int(self.outbox_settings.queue_size) // 2)
        backlog = getattr(publisher, "backlog", None)
        depth = backlog() if callable(backlog) else len(getattr(publisher, "_pending", ()))
        return max(0, max(1, int(self.outbox_settings.queue_size) // 2) - int(depth))

    async def send_many(self, messages: list[Message]) -> None:
        """Telemetry in one go: the data products through one ``publish_states`` call."""
        publisher = self.publisher
        assert publisher is not None
        states = []
        for message in messages:
            if message.kind == "product" and message.asset is not None:
                states.append(
                    (message.asset.path, message.payload, message.quality, message.timestamp)
                )
            else:
                await self.send(message)  # features, status (and an alert, if one came)
        if states:
            publisher.publish_states(states)

    async def send(self, message: Message) -> None:
        publisher = self.publisher
        assert publisher is not None
        if message.kind == "status" or message.asset is None:
            return  # the publisher keeps the retained status with our counters
        path = message.asset.path
        if message.kind == "product":
            publisher.publish_state(
                path, message.payload, quality=message.quality, timestamp=message.timestamp
            )
        elif message.kind == "features":
            publisher.publish_features(path, message.payload, timestamp=message.timestamp)
        else:
            await publisher.publish_alert(path, message.payload, timestamp=message.timestamp)

    async def close(self) -> None:
        if self.publisher is not None:
            await self.publisher.close(drain_timeout=self.drain_timeout)
            self.publisher = None

    def figures(self) -> Figures:
        # The publisher's counters include the gateway's own (its status message carries
        # them), which include these figures: the guard breaks that loop.
        if self.publisher is None or self._collecting:
            return []
        self._collecting = True
        try:
            counters = self.publisher.counters.snapshot()
        finally:
            self._collecting = False
        # outbox figures carry the same names as with the console sink (isthmus_outbox_*)
        return [
            (
                ("isthmus_" if name.startswith("outbox.") else "isthmus_uns_")
                + name.replace(".", "_"),
                f"UNS publisher counter {name}",
                {},
                float(value),
            )
            for name, value in counters.items()
            if not name.startswith("gateway.")
        ]
