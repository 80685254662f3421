"""UNS publishing: Publisher + durable outbox against a plain paho-mqtt script, same run.

Every side publishes the same N pre-encoded QoS 1 messages (state envelopes of ~330 bytes
on 100 asset topics, retained) to the same local Mosquitto (started here on a free
loopback port), with the same in-flight window (64, the default, and 1000, the most the
settings allow); a round ends when the last PUBACK is in. The figure that matters on a
gateway is messages per CPU-second of the publishing process (``time.process_time``: the
event loop plus the paho network thread or the outbox thread); Mosquitto's own CPU is
not counted on any side.

- ``paho_script`` (the baseline): what a user writes with paho-mqtt 2.x alone:
  ``loop_start()``, ``max_inflight_messages_set(window)``, ``publish`` everything, wait
  for the last ``on_publish``. Nothing durable.
- ``paho_asyncio``: paho driven from asyncio through its socket callbacks
  (``loop_read``/``loop_write`` on ``add_reader``/``add_writer``), a window of futures.
- ``aiomqtt``: aiomqtt 2.x with ``asyncio.gather`` over windows: its ``_pending_calls``
  scan makes the cost per message grow with the window.
- ``mqtt_connection``: isthmus's own batching connection alone
  (:mod:`isthmus.uns.mqtt_client`), nothing durable: the client's share of the cost.
- ``publisher_outbox``: ``Publisher.enqueue`` then ``wait_drained``: every message is
  committed to SQLite (WAL, synchronous=NORMAL), read back, published and deleted after
  its PUBACK. This is the gateway's path.

The ratio table compares wall time (pytest-benchmark medians); the CPU figures and
their ratios against the paho script are printed by ``report``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

paho = pytest.importorskip("paho.mqtt.client")
aiomqtt = pytest.importorskip("aiomqtt")

from isthmus.uns.mqtt_client import (  # noqa: E402
    ConnectOptions,
    MqttConnection,
    OutgoingPublish,
)
from isthmus.uns.publisher import Publisher  # noqa: E402
from isthmus.uns.settings import MqttSettings, OutboxSettings  # noqa: E402

N = int(os.environ.get("ISTHMUS_BENCH_UNS_N", "10000"))
WINDOWS = (64, 1000)
TOPICS = [f"acme/plant1/pumps/line1/p{i:03d}/state" for i in range(100)]
PAYLOAD = (
    b'{"message_id":"01J0000000000000000000000","timestamp":"2026-01-01T00:00:00.000Z",'
    b'"quality":"good","schema":"urn:isthmus:uns:Pump:v1","payload":{"speed_rpm":1480.0,'
    b'"discharge_pressure_bar":6.25,"bearing_temperature_c":61.5,"vibration_velocity_rms'
    b'_mm_s":2.5,"iso20816_zone":"B","bearing_diagnosis":null,"health":0.93,"flow_m3_h":'
    b'12.5,"running":true,"state":"running","motor_current_a":31.7}}'
)
MESSAGES = [(TOPICS[i % len(TOPICS)], PAYLOAD) for i in range(N)]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CPU: dict[str, float] = {}
WALL: dict[str, float] = {}


@pytest.fixture(scope="module")
def broker_port() -> Iterator[int]:
    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip("Mosquitto is not installed (apt-get install mosquitto)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        lines = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_inflight_messages 0",
            "max_queued_messages 0",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("mosquitto did not start") from None
                    time.sleep(0.02)
            yield port
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def _measure(benchmark: Any, name: str, burst: Callable[[], None]) -> None:
    cpu: list[float] = []

    def round_() -> None:
        start = time.process_time()
        burst()
        cpu.append(time.process_time() - start)

    benchmark.pedantic(round_, rounds=3, iterations=1, warmup_rounds=1)
    CPU[name] = sorted(cpu)[len(cpu) // 2]
    WALL[name] = benchmark.stats.stats.median


def _group(window: int) -> str:
    return f"uns publish {N} QoS1 inflight {window}"


# -- baselines ---------------------------------------------------------------------------


@pytest.mark.parametrize("window", WINDOWS)
def test_paho_script(benchmark: Any, broker_port: int, window: int) -> None:
    benchmark.group = _group(window)
    benchmark.extra_info["role"] = "baseline"
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"paho-{window}")
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    done = threading.Event()
    count = [0]

    def on_publish(c: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        count[0] += 1
        if count[0] == N:
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", broker_port)
    client.loop_start()

    def burst() -> None:
        count[0] = 0
        done.clear()
        for topic, payload in MESSAGES:
            client.publish(topic, payload, qos=1, retain=True)
        assert done.wait(120), "paho did not get every PUBACK"

    try:
        _measure(benchmark, f"paho_script/{window}", burst)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("window", WINDOWS)
def test_paho_asyncio(
    benchmark: Any, broker_port: int, loop: asyncio.AbstractEventLoop, window: int
) -> None:
    benchmark.group = _group(window)
    benchmark.extra_info["role"] = "baseline"
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pahoa-{window}")
    client.max_inflight_messages_set(0)
    waiting: dict[int, asyncio.Future[None]] = {}

    def on_publish(c: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        fut = waiting.pop(mid, None)
        if fut is not None:
            fut.set_result(None)

    client.on_publish = on_publish
    client.on_socket_open = lambda c, u, sock: loop.add_reader(sock, c.loop_read)
    client.on_socket_close = lambda c, u, sock: loop.remove_reader(sock)
    client.on_socket_register_write = lambda c, u, sock: loop.add_writer(sock, c.loop_write)
    client.on_socket_unregister_write = lambda c, u, sock: loop.remove_writer(sock)

    async def connect() -> None:
        connected = loop.create_future()
        client.on_connect = lambda *a: connected.done() or connected.set_result(None)
        client.connect("127.0.0.1", broker_port)
        await asyncio.wait_for(connected, 10)

    async def run() -> None:
        for start in range(0, N, window):
            batch = []
            for topic, payload in MESSAGES[start : start + window]:
                info = client.publish(topic, payload, qos=1, retain=True)
                fut = loop.create_future()
                waiting[info.mid] = fut
                batch.append(fut)
            await asyncio.gather(*batch)

    loop.run_until_complete(connect())
    try:
        _measure(benchmark, f"paho_asyncio/{window}", lambda: loop.run_until_complete(run()))
    finally:
        client.disconnect()


@pytest.mark.parametrize("window", WINDOWS)
def test_aiomqtt(
    benchmark: Any, broker_port: int, loop: asyncio.AbstractEventLoop, window: int
) -> None:
    benchmark.group = _group(window)
    benchmark.extra_info["role"] = "baseline"

    async def connect() -> Any:
        client = aiomqtt.Client("127.0.0.1", broker_port, timeout=60, max_inflight_messages=window)
        client.pending_calls_threshold = window + 16
        await client.__aenter__()
        return client

    client = loop.run_until_complete(connect())

    async def run() -> None:
        for start in range(0, N, window):
            await asyncio.gather(
                *(
                    client.publish(topic, payload, qos=1, retain=True)
                    for topic, payload in MESSAGES[start : start + window]
                )
            )

    try:
        _measure(benchmark, f"aiomqtt/{window}", lambda: loop.run_until_complete(run()))
    finally:
        loop.run_until_complete(client.__aexit__(None, None, None))


# -- isthmus -----------------------------------------------------------------------------


@pytest.mark.parametrize("window", WINDOWS)
def test_mqtt_connection(
    benchmark: Any, broker_port: int, loop: asyncio.AbstractEventLoop, window: int
) -> None:
    benchmark.group = _group(window)
    benchmark.extra_info["role"] = "isthmus"
    wake = asyncio.Event()

    async def connect() -> MqttConnection:
        return await MqttConnection.open(
            "127.0.0.1",
            broker_port,
            ConnectOptions(client_id=f"conn-{window}"),
            ssl_context=None,
            timeout_s=10,
            wake=wake,
        )

    conn = loop.run_until_complete(connect())

    async def run() -> None:
        sent = acked = 0
        while acked < N:
            room = min(window - (sent - acked), N - sent)
            if room > 0:  # refill at once, as the publisher does
                conn.publish_many(
                    [
                        OutgoingPublish(sent + i, topic, payload, 1, True)
                        for i, (topic, payload) in enumerate(MESSAGES[sent : sent + room])
                    ]
                )
                sent += room
            wake.clear()
            got = len(conn.take_acks())
            if not got:
                await wake.wait()
                got = len(conn.take_acks())
            acked += got

    try:
        _measure(benchmark, f"mqtt_connection/{window}", lambda: loop.run_until_complete(run()))
    finally:
        conn.disconnect()


@pytest.mark.parametrize("window", WINDOWS)
def test_publisher_outbox(
    benchmark: Any,
    broker_port: int,
    loop: asyncio.AbstractEventLoop,
    report: Callable[[str, str, str], None],
    window: int,
) -> None:
    benchmark.group = _group(window)
    benchmark.extra_info["role"] = "isthmus"
    name = f"publisher_outbox/{window}"
    with tempfile.TemporaryDirectory() as tmp:
        mqtt = MqttSettings(
            url=f"mqtt://127.0.0.1:{broker_port}", client_id=f"pub-{window}", inflight=window
        )
        outbox = OutboxSettings(path=f"{tmp}/outbox.db", queue_size=N)
        # The backlog of a burst is the test; conflation would publish fewer messages.
        pub = Publisher(
            mqtt,
            outbox,
            enterprise="acme",
            site="plant1",
            gateway_id=f"pub{window}",
            conflate_above=10 * N,
        )

        async def start() -> None:
            await pub.__aenter__()
            async with asyncio.timeout(10):
                await pub.connected.wait()

        loop.run_until_complete(start())

        async def burst() -> None:
            for topic, payload in MESSAGES:
                pub.enqueue(topic, payload, droppable=True, retain=True, qos=1)
            async with asyncio.timeout(120):
                await pub.wait_drained()

        published = pub.counters.get("mqtt.published")
        try:
            _measure(benchmark, name, lambda: loop.run_until_complete(burst()))
            assert pub.counters.get("outbox.depth") == 0
            assert pub.counters.get("mqtt.published") - published == 4 * N  # warm-up + 3 rounds
            assert pub.counters.get("outbox.conflated_telemetry") == 0
        finally:
            loop.run_until_complete(pub.close())
    _summary(report, window)


def _summary(report: Callable[[str, str, str], None], window: int) -> None:
    base = CPU.get(f"paho_script/{window}")
    if base is None:
        return
    for side in ("paho_script", "paho_asyncio", "aiomqtt", "mqtt_connection", "publisher_outbox"):
        cpu = CPU.get(f"{side}/{window}")
        if cpu is None:
            continue
        wall = WALL[f"{side}/{window}"]
        report(
            f"uns inflight {window} {side}: messages per CPU-second",
            f"{N / cpu:,.0f}",
            f"{cpu / N * 1e6:.1f} us CPU/msg, {N / wall:,.0f} msg/s wall, "
            f"{base / cpu:.2f}x the paho script's messages per CPU-second",
        )
