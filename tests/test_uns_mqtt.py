"""UNS publishing against a real Mosquitto: topics, retained state, will, faults, TLS, auth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import pytest

from isthmus.errors import ConfigError
from isthmus.uns.models import (
    ActiveAlerts,
    Alert,
    Envelope,
    GatewayStatus,
    Pump,
    VibrationFeatures,
    json_schema,
)
from isthmus.uns.publisher import Counters, Publisher, backoff_delay
from isthmus.uns.settings import MqttSettings, OutboxSettings
from isthmus.uns.topics import AssetPath
from mqtt_broker import Broker, Collector, TlsFiles

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

PATH = AssetPath(enterprise="acme", site="plant1", area="pumps", line="line1", asset="p101")
STATUS = "acme/plant1/_gateway/gw1/status"
GATEWAY_PROC = Path(__file__).with_name("uns_gateway_proc.py")


def decode(payload: bytes, model: type[Any]) -> Envelope[Any]:
    return msgspec.json.decode(payload, type=Envelope[model])  # type: ignore[valid-type]


async def bounded(step: Awaitable[None], seconds: float = 10.0) -> None:
    """Every network wait in these tests is bounded."""
    async with asyncio.timeout(seconds):
        await step


def fast_mqtt(url: str, **kwargs: Any) -> MqttSettings:
    defaults: dict[str, Any] = {
        "url": url,
        "client_id": "gw1",
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "timeout_s": 5.0,
    }
    defaults.update(kwargs)
    return MqttSettings(**defaults)


@contextlib.asynccontextmanager
async def publisher(
    mqtt: MqttSettings, outbox_path: Path, **kwargs: Any
) -> AsyncIterator[Publisher]:
    outbox = OutboxSettings(path=str(outbox_path), **kwargs)
    async with Publisher(mqtt, outbox, enterprise="acme", site="plant1", gateway_id="gw1") as p:
        yield p


def alert(i: int, state: str = "raised") -> Alert:
    return Alert(
        alert_id=f"a{i % 3}",
        state=state,  # type: ignore[arg-type]
        severity="alarm",
        message=f"alert {i}",
        value=float(i),
    )


def first_seen(ids: list[str]) -> list[str]:
    """Order of first arrival, duplicates (at-least-once) dropped as a consumer would."""
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def alert_ids(collector: Collector) -> list[str]:
    return [decode(m.payload, Alert).message_id for m in collector.on(PATH.alerts)]


@pytest.mark.parametrize(("protocol", "mosquitto_tag"), [("5", "p5"), ("3.1.1", "p2")])
async def test_topics_and_payloads_read_back(
    mqtt_broker: Broker, tmp_path: Path, protocol: str, mosquitto_tag: str
) -> None:
    async with (
        Collector(mqtt_broker.port, "acme/#") as sub,
        publisher(fast_mqtt(mqtt_broker.url, protocol=protocol), tmp_path / "ob.db") as pub,
    ):
        state_id = pub.publish_state(PATH, Pump(speed_rpm=1480.0, iso20816_zone="B"))
        features = VibrationFeatures(
            channel="de", sample_rate_hz=12000.0, window_s=1.0, velocity_rms_mm_s=2.5
        )
        feat_id = pub.publish_features(PATH, features)
        alert_id = await pub.publish_alert(PATH, alert(1))
        await bounded(pub.wait_drained(), 10)
        await bounded(sub.wait_for(lambda: len(sub.on(PATH.active_alerts)) == 1))

        state = decode(sub.on(PATH.state)[0].payload, Pump)
        assert state.message_id == state_id
        assert state.payload == Pump(speed_rpm=1480.0, iso20816_zone="B")
        assert state.schema == "urn:isthmus:uns:Pump:v2"
        assert state.quality == "good"
        assert decode(sub.on(PATH.vibration)[0].payload, VibrationFeatures).message_id == feat_id
        alert_msg = sub.on(PATH.alerts)[0]
        assert alert_msg.qos == 1
        assert decode(alert_msg.payload, Alert).message_id == alert_id
        active = decode(sub.on(PATH.active_alerts)[0].payload, ActiveAlerts)
        assert [a.alert_id for a in active.payload.alerts] == ["a1"]
        status = decode(sub.on(STATUS)[0].payload, GatewayStatus)
        assert status.payload.state == "online"
        assert pub.counters.get("outbox.acked") == 4
        assert pub.counters.get("mqtt.publish_refused") == 0
        assert pub.counters.get("outbox.depth") == 0
    # Mosquitto logs the protocol each client spoke: p5 = MQTT 5, p2 = MQTT 3.1.1.
    assert f"as gw1 ({mosquitto_tag}," in mqtt_broker.log_text()


async def test_retained_state_and_schema_for_late_subscriber(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with publisher(fast_mqtt(mqtt_broker.url), tmp_path / "ob.db") as pub:
        pub.publish_schema(PATH, Pump)
        pub.publish_state(PATH, Pump(speed_rpm=1000.0))
        last = pub.publish_state(PATH, Pump(speed_rpm=1490.0, bearing_temperature_c=61.5))
        await pub.publish_alert(PATH, alert(0, "raised"))
        await pub.publish_alert(PATH, alert(0, "cleared"))
        await bounded(pub.wait_drained(), 10)

        expected = {PATH.state, PATH.schema, PATH.active_alerts, STATUS}
        async with Collector(mqtt_broker.port, "acme/#") as late:
            await bounded(late.wait_for(lambda: expected <= {m.topic for m in late.messages}))
            by_topic = {m.topic: m for m in late.messages}
    assert all(by_topic[t].retain for t in expected)
    state = decode(by_topic[PATH.state].payload, Pump)
    assert state.message_id == last and state.payload.speed_rpm == 1490.0
    schema = decode(by_topic[PATH.schema].payload, dict)
    assert schema.payload == json_schema(Pump)
    assert schema.schema == "https://json-schema.org/draft/2020-12/schema"
    active = decode(by_topic[PATH.active_alerts].payload, ActiveAlerts)
    assert active.payload.alerts == []  # emptied on clear
    assert PATH.alerts not in by_topic  # alerts are events, not retained


async def test_will_published_when_gateway_is_killed_and_restart_loses_nothing(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    outbox = tmp_path / "gw.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    async def start(count: int, delay: float, tag: str, *extra: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(GATEWAY_PROC),
            "--url",
            mqtt_broker.url,
            "--outbox",
            str(outbox),
            "--count",
            str(count),
            "--delay",
            str(delay),
            "--tag",
            tag,
            *extra,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )

    async with Collector(mqtt_broker.port, "acme/#") as sub:
        proc = await start(2000, 0.001, "first")
        accepted: list[str] = []
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(30):
                while len(accepted) < 150:
                    line = (await proc.stdout.readline()).decode().split()
                    assert line, "gateway process ended early"
                    if line[0] == "ACCEPTED":
                        accepted.append(line[1])
            proc.send_signal(signal.SIGKILL)  # mid-burst, no chance to clean up
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        # The broker publishes the will: the gateway is offline (retained).
        went_offline = sub.wait_for(
            lambda: any(
                decode(m.payload, GatewayStatus).payload.state == "offline" for m in sub.on(STATUS)
            )
        )
        await bounded(went_offline)
        # Restart on the same outbox: it replays what was accepted and not acknowledged.
        proc2 = await start(0, 0.0, "second", "--exit-when-drained")
        try:
            async with asyncio.timeout(60):
                out, _ = await proc2.communicate()
        finally:  # never leave a gateway process behind, even when this step fails
            if proc2.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc2.kill()
                await proc2.wait()
        assert proc2.returncode == 0, out
        assert b"DRAINED" in out
        await bounded(sub.wait_for(lambda: set(accepted) <= set(alert_ids(sub))), 20)
    received = first_seen(alert_ids(sub))
    # Every accepted alert arrived, in the order it was accepted.
    assert [i for i in received if i in set(accepted)] == accepted
    states = [decode(m.payload, GatewayStatus).payload.state for m in sub.on(STATUS)]
    assert states[0] == "online" and "offline" in states
    assert states[-1] == "offline"  # the clean exit also says offline


async def test_broker_killed_mid_burst_every_alert_arrives_in_order(
    mqtt_broker_factory: Callable[..., Broker], tmp_path: Path
) -> None:
    broker = mqtt_broker_factory(persistence=True)
    # The subscriber's persistent session survives the broker's SIGKILL via the saved
    # database, so messages replayed before it reconnects are queued for it.
    async with Collector(broker.port, PATH.alerts, persistent=True) as sub:
        broker.save()
        sent: list[str] = []
        async with publisher(fast_mqtt(broker.url), tmp_path / "ob.db") as pub:
            for i in range(300):
                if i == 100:
                    broker.kill()
                if i == 200:
                    await asyncio.to_thread(broker.start)
                sent.append(await pub.publish_alert(PATH, alert(i)))
                await asyncio.sleep(0.002)
            await bounded(pub.wait_drained(), 30)
            assert pub.counters.get("mqtt.disconnects") >= 1
            assert pub.counters.get("mqtt.connects") >= 2
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))), 30)
    assert first_seen(alert_ids(sub)) == sent
    assert sub.connects >= 2


async def test_tls_with_client_certificate(mqtt_tls_broker: Broker, tmp_path: Path) -> None:
    tls = mqtt_tls_broker.tls
    assert tls is not None
    mqtt = fast_mqtt(
        mqtt_tls_broker.url,
        ca_file=str(tls.ca),
        cert_file=str(tls.client_cert),
        key_file=str(tls.client_key),
    )
    client_tls = {
        "tls_params": aiomqtt.TLSParameters(
            ca_certs=str(tls.ca), certfile=str(tls.client_cert), keyfile=str(tls.client_key)
        )
    }
    async with (
        Collector(mqtt_tls_broker.port, "acme/#", client_kwargs=client_tls) as sub,
        publisher(mqtt, tmp_path / "ob.db") as pub,
    ):
        sent = await pub.publish_alert(PATH, alert(7))
        await bounded(pub.wait_drained(), 10)
        await bounded(sub.wait_for(lambda: sent in alert_ids(sub)))

    # Without a client certificate the broker refuses the TLS handshake.
    no_cert = aiomqtt.TLSParameters(ca_certs=str(tls.ca))
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", mqtt_tls_broker.port, tls_params=no_cert, timeout=5):
            pass


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_wrong_credentials_clear_error_retries_nothing_lost(
    mqtt_password_broker: Broker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("wrong\n")
    mqtt = fast_mqtt(
        mqtt_password_broker.url,
        username="gateway",
        password_file=str(secret),
        protocol=protocol,
    )
    sub_auth = {"username": "gateway", "password": "s3cret"}
    caplog.set_level(logging.ERROR, logger="isthmus.uns")
    async with (
        Collector(mqtt_password_broker.port, PATH.alerts, client_kwargs=sub_auth) as sub,
        publisher(mqtt, tmp_path / "ob.db") as pub,
    ):
        sent = [await pub.publish_alert(PATH, alert(i)) for i in range(20)]
        async with asyncio.timeout(15):
            while pub.counters.get("mqtt.auth_failures") < 3:  # noqa: ASYNC110 (a counter)
                await asyncio.sleep(0.05)
        assert not pub.connected.is_set()
        assert pub.last_error is not None and "refused the credentials" in pub.last_error
        assert "user 'gateway'" in caplog.text and "refused the credentials" in caplog.text
        assert pub.counters.get("outbox.depth") == 40  # 20 alerts + 20 active-alert lists
        assert alert_ids(sub) == []
        secret.write_text("s3cret\n")  # rotated secret, read at the next attempt
        await bounded(pub.wait_drained(), 20)
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
    assert first_seen(alert_ids(sub)) == sent


async def test_status_counters_fed_by_other_areas(mqtt_broker: Broker, tmp_path: Path) -> None:
    counters = Counters()
    counters.incr("modbus.timeouts", 3)
    counters.add_source("ring", lambda: {"overruns": 2})
    outbox = OutboxSettings(path=str(tmp_path / "ob.db"))
    mqtt = fast_mqtt(mqtt_broker.url, status_interval_s=0.2)
    async with (
        Collector(mqtt_broker.port, STATUS) as sub,
        Publisher(
            mqtt, outbox, enterprise="acme", site="plant1", gateway_id="gw1", counters=counters
        ),
    ):
        await bounded(sub.wait_for(lambda: len(sub.on(STATUS)) >= 2))
    status = decode(sub.on(STATUS)[1].payload, GatewayStatus).payload
    assert status.state == "online"
    assert status.counters["modbus.timeouts"] == 3
    assert status.counters["ring.overruns"] == 2
    assert status.counters["mqtt.connects"] == 1
    assert "outbox.dropped_telemetry" in status.counters


def test_backoff_is_exponential_jittered_and_capped() -> None:
    for attempt in range(12):
        ceiling = min(30.0, 0.5 * 2**attempt)
        delays = [backoff_delay(attempt, 0.5, 30.0) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jittered, not in lock-step


async def test_producers_never_block_while_the_broker_is_away(tmp_path: Path) -> None:
    from mqtt_broker import free_port

    mqtt = fast_mqtt(f"mqtt://127.0.0.1:{free_port()}")  # nothing listens there
    other = AssetPath(enterprise="acme", site="plant1", area="pumps", line="line1", asset="p2")
    async with publisher(mqtt, tmp_path / "ob.db", queue_size=5) as pub:
        states = [pub.publish_state(PATH, Pump(speed_rpm=float(i))) for i in range(8)]
        assert pub.backlog() == 5 and pub.waiting() == 0
        # In-memory queue full: the newest state replaces the queued one of its topic.
        assert None not in states
        assert pub.counters.get("queue.conflated_telemetry") == 3
        # A topic with nothing queued has nothing to replace: dropped, counted.
        assert pub.publish_state(other, Pump(speed_rpm=1.0)) is None
        assert pub.counters.get("queue.dropped_telemetry") == 1
        sent = await pub.publish_alert(PATH, alert(1))  # alerts always get in
        assert sent
        await bounded(pub.flush())
        assert pub.counters.get("outbox.depth") == 5 + 2
        assert pub.backlog() == 0 and pub.waiting() == 7
        rows = pub._outbox.peek(0, 10) if pub._outbox else []
        speeds = [decode(r.payload, Pump).payload.speed_rpm for r in rows if r.topic == PATH.state]
        assert speeds == [0.0, 1.0, 2.0, 3.0, 7.0]  # latest wins, in the replaced one's place
        async with asyncio.timeout(10):
            while pub.counters.get("mqtt.connect_failures") < 2:  # noqa: ASYNC110 (a counter)
                await asyncio.sleep(0.05)
        assert not pub.connected.is_set()
        assert pub.last_error is not None and "cannot connect" in pub.last_error


async def test_restarted_gateway_resets_stale_active_alerts(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    mqtt = fast_mqtt(mqtt_broker.url)
    async with publisher(mqtt, tmp_path / "ob.db") as pub:
        await pub.publish_alert(PATH, alert(0, "raised"))
        await bounded(pub.wait_drained())

    async def retained_active() -> list[Alert]:
        async with Collector(mqtt_broker.port, PATH.active_alerts) as late:
            await bounded(late.wait_for(lambda: bool(late.messages)))
            return decode(late.messages[-1].payload, ActiveAlerts).payload.alerts

    assert [a.alert_id for a in await retained_active()] == ["a0"]
    async with publisher(mqtt, tmp_path / "ob.db") as pub:
        await pub.publish_active_alerts(PATH)
        await bounded(pub.wait_drained())
    assert await retained_active() == []


async def test_retained_state_restored_after_broker_restart_without_persistence(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with publisher(fast_mqtt(mqtt_broker.url), tmp_path / "ob.db") as pub:
        pub.publish_schema(PATH, Pump)
        state_id = pub.publish_state(PATH, Pump(speed_rpm=1490.0))
        await bounded(pub.wait_drained())
        mqtt_broker.kill()  # no persistence: every retained message is gone
        await asyncio.to_thread(mqtt_broker.start)
        async with asyncio.timeout(10):
            while pub.counters.get("mqtt.retained_restored") < 2:  # noqa: ASYNC110 (a counter)
                await asyncio.sleep(0.05)
        async with Collector(mqtt_broker.port, "acme/#") as late:
            await bounded(
                late.wait_for(lambda: {PATH.state, PATH.schema} <= {m.topic for m in late.messages})
            )
            state = decode(late.on(PATH.state)[0].payload, Pump)
        assert state.message_id == state_id  # the same message, not a new reading
        assert pub.counters.get("mqtt.connects") == 2


async def test_unpublishable_topic_is_refused_before_the_outbox(tmp_path: Path) -> None:
    """A wildcard topic would fail at every drain and stall the outbox behind it forever."""
    from mqtt_broker import free_port

    mqtt = fast_mqtt(f"mqtt://127.0.0.1:{free_port()}")  # no broker needed
    async with publisher(mqtt, tmp_path / "ob.db") as pub:
        for topic in ("acme/+/state", "acme/#", "", "acme/\x00"):
            with pytest.raises(ConfigError, match="topic"):
                pub.enqueue(topic, b"{}", droppable=True)
            with pytest.raises(ConfigError, match="topic"):
                await pub.publish(topic, b"{}", droppable=False)
        await bounded(pub.flush())
        assert pub.counters.get("outbox.depth") == 0
        assert pub.counters.get("outbox.accepted") == 0


async def test_publish_refused_by_the_broker_is_quarantined_not_blocking(
    mqtt_broker_factory: Callable[..., Broker], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MQTT 5 PUBACK with a failure reason (ACL denies the topic): telemetry is retried a
    few times (the reason may be temporary), then quarantined, logged once."""
    broker = mqtt_broker_factory(
        acl="topic readwrite acme/plant1/pumps/#\ntopic readwrite acme/plant1/_gateway/#\n"
    )
    caplog.set_level(logging.ERROR, logger="isthmus.uns")
    async with (
        Collector(broker.port, "acme/#") as sub,
        publisher(fast_mqtt(broker.url), tmp_path / "ob.db") as pub,
    ):
        sent = []
        for i in range(5):
            await pub.publish("acme/plant1/forbidden/x", b"{}", droppable=True)
            sent.append(await pub.publish_alert(PATH, alert(i)))
        await bounded(pub.wait_drained(), 20)
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
        assert pub.counters.get("mqtt.publish_refused") == 5
        assert pub.counters.get("outbox.quarantined") == 5
        assert pub.counters.get("outbox.depth") == 0
        assert pub.counters.get("mqtt.connects") == 1  # the refusal did not stall the session
        assert pub._outbox is not None
        kept = pub._outbox.quarantined()
        assert {m.topic for m, _ in kept} == {"acme/plant1/forbidden/x"}
        assert all("not authorized (0x87)" in reason for _, reason in kept)
    assert first_seen(alert_ids(sub)) == sent
    logged = [r for r in caplog.records if "forbidden" in r.getMessage()]
    assert len(logged) == 1 and "quarantined" in logged[0].getMessage()
    assert not sub.on("acme/plant1/forbidden/x")


async def test_alert_refused_for_a_temporary_reason_is_retried_until_accepted(
    mqtt_broker_factory: Callable[..., Broker], tmp_path: Path
) -> None:
    """An alert the broker refuses with "not authorized" (0x87, an ACL being fixed) is
    never quarantined: it is retried with backoff (counted) while the alerts behind it
    flow, and arrives once the ACL allows it (mosquitto reloads its acl_file on SIGHUP)."""
    allowed = "topic readwrite acme/plant1/pumps/#\ntopic readwrite acme/plant1/_gateway/#\n"
    broker = mqtt_broker_factory(acl=allowed)
    async with (
        Collector(broker.port, "acme/#") as sub,
        publisher(fast_mqtt(broker.url), tmp_path / "ob.db") as pub,
    ):
        held = await pub.publish("acme/plant1/forbidden/x", b'{"alert": 1}', droppable=False)
        sent = [await pub.publish_alert(PATH, alert(i)) for i in range(3)]
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
        await bounded(_until(lambda: pub.counters.get("mqtt.refused_temporary") >= 3))
        assert pub.counters.get("outbox.quarantined") == 0
        assert pub.counters.get("outbox.depth") == 1  # the refused alert is still held
        assert not sub.on("acme/plant1/forbidden/x")
        (broker.workdir / "acl").write_text(allowed + "topic readwrite acme/plant1/forbidden/#\n")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        await bounded(pub.wait_drained(), 20)
        await bounded(sub.wait_for(lambda: bool(sub.on("acme/plant1/forbidden/x"))))
        assert pub.counters.get("outbox.quarantined") == 0
        assert held is not None


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):  # the caller's bounded() limits the time
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.fixture
def configured_broker(tmp_path: Path) -> Iterator[Callable[[list[str]], Broker]]:
    """Brokers with extra mosquitto.conf lines (limits the shared factory has no knob for)."""
    made: list[Broker] = []

    def make(lines: list[str]) -> Broker:
        broker = Broker(tmp_path / f"custom{len(made)}")
        broker.config.write_text(broker.config.read_text() + "\n".join(lines) + "\n")
        made.append(broker)
        broker.start()
        return broker

    yield make
    for broker in made:
        broker.kill()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_message_too_large_for_the_broker_is_quarantined(
    configured_broker: Callable[[list[str]], Broker],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    """MQTT 5: the CONNACK's maximum packet size is checked before sending. MQTT 3.1.1:
    the broker just closes the connection; the message is found by sending the ones in
    flight one at a time, and quarantined. Either way everything else arrives in order."""
    broker = configured_broker(["max_packet_size 2000"])
    caplog.set_level(logging.ERROR, logger="isthmus.uns")
    mqtt = fast_mqtt(broker.url, protocol=protocol)
    async with (
        Collector(broker.port, PATH.alerts) as sub,
        publisher(mqtt, tmp_path / "ob.db") as pub,
    ):
        await bounded(pub.connected.wait())
        sent = []
        for i in range(30):
            if i == 10:
                await pub.publish(PATH.alerts, b"x" * 5000, droppable=False)
            sent.append(await pub.publish_alert(PATH, alert(i)))
        await bounded(pub.wait_drained(), 30)
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
        assert pub.counters.get("outbox.quarantined") == 1
        assert pub._outbox is not None
        ((big, reason),) = pub._outbox.quarantined()
        assert len(big.payload) == 5000
        if protocol == "5":
            assert "maximum packet size 2000" in reason
            assert pub.counters.get("mqtt.disconnects") == 0
        else:
            assert "closes the connection" in reason
            assert pub.counters.get("mqtt.disconnects") >= 2
    assert [i for i in first_seen(alert_ids(sub)) if i] == sent
    assert sum("quarantined" in r.getMessage() for r in caplog.records) == 1


async def test_broker_maximum_qos_below_the_alerts_is_logged_once_and_counted(
    configured_broker: Callable[[list[str]], Broker],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broker announcing maximum QoS 1 while alerts are configured for QoS 2: alerts
    still arrive, and the downgrade is logged once (warning) and counted. (Mosquitto
    refuses the connection outright when its max_qos is below the QoS 1 will, or when
    retain is unavailable and the will is retained, so QoS 0 and lost retain flags
    cannot be shown with it; the same code path counts them.)"""
    broker = configured_broker(["max_qos 1"])
    caplog.set_level(logging.WARNING, logger="isthmus.uns")
    async with (
        Collector(broker.port, PATH.alerts) as sub,
        publisher(fast_mqtt(broker.url, alert_qos=2), tmp_path / "ob.db") as pub,
    ):
        await bounded(pub.connected.wait())
        sent = [await pub.publish_alert(PATH, alert(i)) for i in range(4)]
        await bounded(pub.wait_drained())
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
        assert pub.counters.get("mqtt.alerts_qos_downgraded") >= 4
        assert pub.counters.get("mqtt.qos_downgraded") >= 4
        assert pub.counters.get("mqtt.retain_dropped") == 0
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("at most QoS 1" in m for m in messages) == 1, messages


async def test_topic_the_broker_would_call_malformed_is_quarantined(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A control character in a topic level makes Mosquitto drop the connection on every
    publish; it is caught before sending, logged once, and the rest flows."""
    caplog.set_level(logging.ERROR, logger="isthmus.uns")
    bad = "acme/plant1/pumps/line1/p\x07101/state"
    async with (
        Collector(mqtt_broker.port, "acme/#") as sub,
        publisher(fast_mqtt(mqtt_broker.url), tmp_path / "ob.db") as pub,
    ):
        sent = []
        for i in range(3):
            assert pub.enqueue(bad, b"{}", droppable=True)
            sent.append(await pub.publish_alert(PATH, alert(i)))
        await bounded(pub.wait_drained())
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
        assert pub.counters.get("outbox.quarantined") == 3
        assert pub.counters.get("mqtt.connects") == 1
        assert pub.counters.get("mqtt.disconnects") == 0
    logged = [r.getMessage() for r in caplog.records if "U+0007" in r.getMessage()]
    assert len(logged) == 1, logged


async def test_telemetry_conflates_per_topic_while_the_broker_is_away(
    mqtt_broker_factory: Callable[..., Broker], tmp_path: Path
) -> None:
    """Latest wins per topic, counted; alerts all kept; after the outage the subscriber
    gets every alert and the newest state of every asset."""
    assets = [
        AssetPath(enterprise="acme", site="plant1", area="pumps", line="line1", asset=f"p{i}")
        for i in range(5)
    ]
    broker = mqtt_broker_factory(persistence=True)
    mqtt = fast_mqtt(broker.url)
    outbox = OutboxSettings(path=str(tmp_path / "ob.db"))
    # A persistent subscriber session, saved: the restarted broker queues for it.
    async with Collector(broker.port, "acme/#", persistent=True) as sub:
        broker.save()
        broker.kill()
        async with Publisher(
            mqtt, outbox, enterprise="acme", site="plant1", gateway_id="gw1", conflate_above=20
        ) as pub:
            sent = []
            for n in range(40):
                for path in assets:
                    pub.publish_state(path, Pump(speed_rpm=float(n)))
                if n % 10 == 0:
                    sent.append(await pub.publish_alert(PATH, alert(n)))
                await pub.flush()  # one outbox batch per round, as a polling gateway does
            # 200 states offered: about one waiting per asset once backlogged.
            conflated = pub.counters.get("outbox.conflated_telemetry")
            assert conflated >= 200 - 20 - len(assets)
            assert pub.counters.get("outbox.depth") <= 20 + len(assets) + 2 * len(sent)
            assert pub.counters.get("outbox.dropped_telemetry") == 0
            await asyncio.to_thread(broker.start)
            await bounded(pub.wait_drained(), 20)

            def newest() -> dict[str, float]:
                return {
                    p.state: decode(sub.on(p.state)[-1].payload, Pump).payload.speed_rpm
                    for p in assets
                    if sub.on(p.state)
                }

            await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))), 20)
            await bounded(sub.wait_for(lambda: newest() == {p.state: 39.0 for p in assets}))
    assert first_seen(alert_ids(sub)) == sent
    # Nothing older than what was waiting when the backlog began was sent after it.
    speeds = [decode(m.payload, Pump).payload.speed_rpm for m in sub.on(assets[0].state)]
    assert speeds == sorted(speeds) and len(speeds) <= 5


async def test_alerts_never_dropped_when_the_outbox_is_full(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    mqtt_broker.kill()
    async with publisher(fast_mqtt(mqtt_broker.url), tmp_path / "ob.db", max_messages=10) as pub:
        for i in range(10):
            pub.publish_state(PATH, Pump(speed_rpm=float(i)))
        sent = [await pub.publish_alert(PATH, alert(i)) for i in range(20)]  # never raises
        await bounded(pub.flush())
        assert pub.counters.get("outbox.alerts_over_bound") > 0
        assert pub.counters.get("outbox.dropped_telemetry") == 10  # the states made room
        assert pub.publish_state(PATH, Pump(speed_rpm=99.0)) is not None  # queued ...
        await bounded(pub.flush())
        assert pub.counters.get("outbox.rejected_telemetry") == 1  # ... but no room for it
        await asyncio.to_thread(mqtt_broker.start)
        async with Collector(mqtt_broker.port, PATH.alerts) as sub:
            await bounded(pub.wait_drained(), 20)
            await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
    assert first_seen(alert_ids(sub)) == sent


async def test_reconnect_logged_with_the_outage_length(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="isthmus.uns")
    async with publisher(fast_mqtt(mqtt_broker.url), tmp_path / "ob.db") as pub:
        await bounded(pub.connected.wait())
        mqtt_broker.kill()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(mqtt_broker.start)
        async with asyncio.timeout(10):
            while pub.counters.get("mqtt.reconnects") < 1:  # noqa: ASYNC110 (a counter)
                await asyncio.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if "reconnected" in r.getMessage()]
    assert len(lines) == 1
    outage = float(lines[0].split("outage of ")[1].split(" s")[0])
    assert 1.0 <= outage < 10.0


async def test_mtls_refusal_reports_the_tls_alert(mqtt_tls_broker: Broker, tmp_path: Path) -> None:
    """Without a client certificate the broker sends a TLS alert: said at once, no timeout."""
    tls = mqtt_tls_broker.tls
    assert tls is not None
    mqtt = fast_mqtt(mqtt_tls_broker.url, ca_file=str(tls.ca), timeout_s=8.0)
    async with publisher(mqtt, tmp_path / "ob.db") as pub:
        async with asyncio.timeout(5):  # well before timeout_s: the alert is not a timeout
            while pub.counters.get("mqtt.connect_failures") < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert pub.last_error is not None
        assert "alert" in pub.last_error and "certificate" in pub.last_error, pub.last_error
        assert "timed out" not in pub.last_error


async def test_wrong_ca_is_refused_with_the_verify_error(
    mqtt_tls_broker: Broker, tmp_path: Path
) -> None:
    from mqtt_broker import make_pki

    other = make_pki(tmp_path / "other")
    tls = mqtt_tls_broker.tls
    assert tls is not None
    mqtt = fast_mqtt(
        mqtt_tls_broker.url,
        ca_file=str(other.ca),
        cert_file=str(tls.client_cert),
        key_file=str(tls.client_key),
    )
    async with publisher(mqtt, tmp_path / "ob.db") as pub:
        async with asyncio.timeout(5):
            while pub.counters.get("mqtt.connect_failures") < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert pub.last_error is not None and "certificate verify failed" in pub.last_error


async def test_hung_broker_detected_nothing_acked_without_puback_no_stray_errors(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP: the broker's socket stays open but nothing answers."""
    import gc

    caplog.set_level(logging.DEBUG, logger="asyncio")
    mqtt = fast_mqtt(mqtt_broker.url, timeout_s=1.0, keepalive_s=2)
    assert mqtt_broker.proc is not None
    async with (
        Collector(mqtt_broker.port, PATH.alerts, persistent=True) as sub,
        publisher(mqtt, tmp_path / "ob.db") as pub,
    ):
        await bounded(pub.connected.wait())
        os.kill(mqtt_broker.proc.pid, signal.SIGSTOP)
        try:
            sent = [await pub.publish_alert(PATH, alert(i)) for i in range(50)]
            async with asyncio.timeout(15):
                while pub.counters.get("mqtt.connect_failures") < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert pub.counters.get("mqtt.disconnects") >= 1
            # Written to the socket, never acknowledged: still in the outbox.
            assert pub.counters.get("outbox.depth") == 100
            assert pub.counters.get("outbox.acked") == 0
            assert "CONNACK" in (pub.last_error or "")
        finally:
            os.kill(mqtt_broker.proc.pid, signal.SIGCONT)
        await bounded(pub.wait_drained(), 30)
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))), 20)
    gc.collect()
    await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
    assert first_seen(alert_ids(sub)) == sent


async def test_batch_of_states_in_one_call(mqtt_broker: Broker, tmp_path: Path) -> None:
    assets = [
        AssetPath(enterprise="acme", site="plant1", area="pumps", line="line1", asset=f"b{i}")
        for i in range(50)
    ]
    async with (
        Collector(mqtt_broker.port, "acme/#") as sub,
        publisher(fast_mqtt(mqtt_broker.url, inflight=1000), tmp_path / "ob.db") as pub,
    ):
        ids = pub.publish_states(
            [(p, Pump(speed_rpm=float(i)), "good", None) for i, p in enumerate(assets)]
        )
        assert None not in ids
        await bounded(pub.wait_drained())
        await bounded(sub.wait_for(lambda: all(sub.on(p.state) for p in assets)))
        async with Collector(mqtt_broker.port, "acme/plant1/pumps/line1/+/state") as late:
            await bounded(late.wait_for(lambda: len(late.messages) == len(assets)))
    assert all(m.retain for m in late.messages)
    for i, path in enumerate(assets):
        env = decode(sub.on(path.state)[0].payload, Pump)
        assert env.payload.speed_rpm == float(i) and env.message_id == ids[i]


def _pki_for_other_host(directory: Path) -> TlsFiles:
    """A CA, a broker certificate for ``wrong.example`` only, and a client certificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other CA")])

    def cert(
        subject: str, key: ec.EllipticCurvePrivateKey, ca: bool, san: str | None
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            )
        return builder.sign(ca_key, hashes.SHA256())

    def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    files = TlsFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    pem = serialization.Encoding.PEM
    files.ca.write_bytes(cert("other CA", ca_key, True, None).public_bytes(pem))
    files.server_cert.write_bytes(
        cert("wrong", server_key, False, "wrong.example").public_bytes(pem)
    )
    files.client_cert.write_bytes(cert("gateway", client_key, False, None).public_bytes(pem))
    files.server_key.write_bytes(pem_key(server_key))
    files.client_key.write_bytes(pem_key(client_key))
    return files


async def test_broker_certificate_for_another_host_is_refused(
    mqtt_broker_factory: Callable[..., Broker], tmp_path: Path
) -> None:
    """The chain is trusted but the name is not 127.0.0.1: the host name check refuses."""
    tls = _pki_for_other_host(tmp_path / "pki")
    broker = mqtt_broker_factory(tls=tls)
    mqtt = fast_mqtt(
        broker.url,
        ca_file=str(tls.ca),
        cert_file=str(tls.client_cert),
        key_file=str(tls.client_key),
    )
    async with publisher(mqtt, tmp_path / "ob.db") as pub:
        await pub.publish_alert(PATH, alert(1))
        async with asyncio.timeout(5):
            while pub.counters.get("mqtt.connect_failures") < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert pub.last_error is not None
        assert "certificate verify failed" in pub.last_error
        assert "127.0.0.1" in pub.last_error  # "IP address mismatch, ... is not '127.0.0.1'"
        assert pub.counters.get("mqtt.connects") == 0
        assert pub.counters.get("outbox.depth") == 2  # nothing left for an impostor


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_payload_sizes_and_unicode_topics_arrive_byte_exact(
    mqtt_broker: Broker, tmp_path: Path, protocol: str
) -> None:
    """Remaining lengths across the variable-byte-integer boundaries (127/128, 16383/16384,
    2097151/2097152 bytes), an empty payload and non-ASCII topic levels."""
    sizes = [0, 1, 100, 127, 128, 16_380, 16_384, 200_000, 2_097_152]
    base = "acme/plant1/pompes/ligne-é/p-ü"
    sent = {f"{base}/{i}": bytes((i * 7 + j) % 256 for j in range(n)) for i, n in enumerate(sizes)}
    async with (
        Collector(mqtt_broker.port, "acme/plant1/pompes/#") as sub,
        publisher(fast_mqtt(mqtt_broker.url, protocol=protocol), tmp_path / "ob.db") as pub,
    ):
        for topic, payload in sent.items():
            assert pub.enqueue(topic, payload, droppable=False)
        await bounded(pub.wait_drained(), 20)
        await bounded(sub.wait_for(lambda: len(sub.messages) >= len(sent)), 20)
    assert {m.topic: m.payload for m in sub.messages} == sent


@pytest.mark.parametrize(("telemetry_qos", "alert_qos"), [(0, 2), (1, 2)])
async def test_qos0_telemetry_and_qos2_alerts(
    mqtt_broker: Broker, tmp_path: Path, telemetry_qos: int, alert_qos: int
) -> None:
    mqtt = fast_mqtt(mqtt_broker.url, telemetry_qos=telemetry_qos, alert_qos=alert_qos)
    async with (
        Collector(mqtt_broker.port, "acme/#") as sub,
        publisher(mqtt, tmp_path / "ob.db") as pub,
    ):
        states = [pub.publish_state(PATH, Pump(speed_rpm=float(i))) for i in range(20)]
        sent = [await pub.publish_alert(PATH, alert(i)) for i in range(20)]
        await bounded(pub.wait_drained())
        await bounded(sub.wait_for(lambda: set(sent) <= set(alert_ids(sub))))
        await bounded(sub.wait_for(lambda: len(sub.on(PATH.state)) >= 20))
        assert pub.counters.get("outbox.acked") == 60
        assert pub.counters.get("mqtt.publish_refused") == 0
    assert first_seen(alert_ids(sub)) == sent
    got = [decode(m.payload, Pump).message_id for m in sub.on(PATH.state)]
    assert got == states
    # The subscriber asked for QoS 1: alerts arrive at min(2, 1); telemetry as published.
    assert {m.qos for m in sub.on(PATH.alerts)} == {1}
    assert {m.qos for m in sub.on(PATH.state)} == {telemetry_qos}
