"""Where the gateway's messages go: the UNS (outbox + MQTT) or the console.

A sink has ``start(gateway)``, ``send(message)``, ``close()`` and optional
``figures()`` for metrics. ``send`` must return quickly: the MQTT sink only
appends to the durable outbox (local SQLite); the UNS publisher drains the
outbox to the broker in its own task, so a slow or absent broker never holds
up the pipeline.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from isthmus.gateway import contracts
from isthmus.gateway.pipeline import Message


class ConsoleSink:
    """Prints ``topic payload`` lines (JSON) and remembers the last message of each kind.

    With ``outbox`` settings, every message is also stored in the local outbox, so a
    gateway without a broker still keeps what it would have published.
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
        self.last: dict[tuple[str, str], dict[str, Any]] = {}
        self.sent: list[Message] = []
        self.count = 0
        self._gateway_name = "isthmus"

    async def start(self, gateway: Any) -> None:
        self._gateway_name = gateway.config.gateway.name
        if self.outbox_settings is not None:
            self.outbox = await contracts.open_outbox(self.outbox_settings)

    async def send(self, message: Message) -> None:
        topic = contracts.topic_for(message, self._gateway_name)
        key = (message.asset.name if message.asset else "", message.kind)
        self.last[key] = message.payload
        self.count += 1
        if message.kind == "alert":
            self.sent.append(message)
        if self.outbox is not None:
            await contracts.outbox_put(self.outbox, topic, message)
        if self.stream is not None and message.kind in self.kinds:
            self.stream.write(f"{topic} {json.dumps(message.payload, default=str)}\n")
            self.stream.flush()

    async def close(self) -> None:
        if self.outbox is not None:
            await contracts.close_outbox(self.outbox)
            self.outbox = None

    def figures(self) -> list[tuple[str, str, dict[str, str], float]]:
        if self.outbox is None:
            return []
        return contracts.outbox_figures(self.outbox)


class UnsSink:
    """Data products, features, alerts and status into the Unified Namespace over MQTT."""

    def __init__(self, mqtt: Any, outbox: Any) -> None:
        self.mqtt_settings = mqtt
        self.outbox_settings = outbox
        self.publisher: Any | None = None

    async def start(self, gateway: Any) -> None:
        self.publisher = await contracts.open_publisher(
            self.mqtt_settings, self.outbox_settings, gateway
        )

    async def send(self, message: Message) -> None:
        assert self.publisher is not None
        await contracts.publish(self.publisher, message)

    async def close(self) -> None:
        if self.publisher is not None:
            await contracts.close_publisher(self.publisher)
            self.publisher = None

    def figures(self) -> list[tuple[str, str, dict[str, str], float]]:
        if self.publisher is None:
            return []
        return contracts.publisher_figures(self.publisher)
