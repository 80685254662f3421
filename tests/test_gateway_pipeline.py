"""Pipeline pieces: bounded queues, rules without storms, routing with units, sinks, logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_helpers import outbox_rows, plant, running, wait_until
from isthmus.gateway.config import build_config
from isthmus.gateway.diagnosis import RuleSet
from isthmus.gateway.metrics import Metrics
from isthmus.gateway.pipeline import AlertQueue, ConflatingQueue, Gateway, Message
from isthmus.sources.values import Quality, TagValue


def _config(
    port: int = 5020,
    rules: list[dict[str, Any]] | None = None,
    velocity: bool = False,
    outbox: Path | None = None,
) -> Any:
    """One bravo-style pump with imperial units, no vibration section.

    ``velocity``: also a velocity RMS tag in in/s (a smart sensor's feature).
    """
    raw: dict[str, Any] = {
        "gateway": {"name": "gw"},
        "sources": {
            "modbus": [
                {
                    "name": "p102",
                    "host": "127.0.0.1",
                    "port": port,
                    "poll_groups": [
                        {
                            "name": "process",
                            "interval": 0.2,
                            "tags": [
                                {
                                    "name": "speed",
                                    "register": "input",
                                    "address": 0,
                                    "dtype": "float32",
                                    "order": "CDAB",
                                    "unit": "Hz",
                                },
                                {
                                    "name": "temperature",
                                    "register": "input",
                                    "address": 2,
                                    "dtype": "float32",
                                    "order": "CDAB",
                                    "unit": "degF",
                                },
                                {
                                    "name": "pressure",
                                    "register": "input",
                                    "address": 4,
                                    "dtype": "float32",
                                    "order": "CDAB",
                                    "unit": "psi",
                                },
                            ],
                        }
                    ],
                }
            ]
        },
        "assets": [
            {
                "name": "P-102",
                "model": "Pump",
                "isa95": {"enterprise": "e", "site": "s", "area": "a", "line": "l"},
                "fields": {
                    "speed_rpm": {"tag": "p102.speed"},
                    "bearing_temperature_c": {"tag": "p102.temperature"},
                    "discharge_pressure_bar": {"tag": "p102.pressure"},
                },
                "rules": rules or [],
            }
        ],
    }
    if outbox is not None:
        raw["outbox"] = {"path": str(outbox)}
    if velocity:
        raw["sources"]["modbus"][0]["poll_groups"][0]["tags"].append(
            {
                "name": "velocity",
                "register": "input",
                "address": 12,
                "dtype": "float32",
                "order": "CDAB",
                "unit": "in/s",
            }
        )
        raw["assets"][0]["fields"]["vibration_velocity_rms_mm_s"] = {"tag": "p102.velocity"}
    return build_config(raw)


def test_telemetry_conflates_per_asset_and_alerts_are_never_dropped() -> None:
    from isthmus.gateway.sinks import ConsoleSink

    metrics = Metrics()
    gateway = Gateway(_config(), ConsoleSink(stream=None), metrics)
    runtime = gateway.assets["P-102"]
    queue = ConflatingQueue("telemetry", 3, metrics)
    for i in range(5):
        queue.put(Message("product", runtime, i))
    queue.put(Message("status", None, "s"))
    # one entry per (asset, kind): the newest product replaced the waiting ones, in place
    assert [m.payload for m in (queue.get_nowait(), queue.get_nowait())] == [4, "s"]  # type: ignore[union-attr]
    assert queue.get_nowait() is None
    assert queue.conflated == 4 and queue.dropped == 0
    assert metrics.total("isthmus_conflated_total", queue="telemetry") == 4
    # The gateway never sizes the telemetry queue below its assets.
    assert gateway.telemetry._maxsize >= 2 * len(gateway.assets)
    alerts = AlertQueue()
    for i in range(10_000):
        alerts.put(Message("alert", runtime, i))
    assert [alerts.get_nowait().payload for _ in range(10_000)] == list(range(10_000))  # type: ignore[union-attr]


def _rule_config(**rule: Any) -> Any:
    base = {
        "name": "vib",
        "kind": "threshold",
        "feature": "velocity_rms",
        "raise_at": 4.5,
        "clear_at": 3.5,
        "persist": 3,
    }
    return _config(rules=[{**base, **rule}]).assets[0]


def test_threshold_rule_raises_once_and_clears_once_with_hysteresis() -> None:
    rules = RuleSet(_rule_config())
    # Hovering between clear and raise levels after raising must not clear; a single
    # spike must not raise (persistence 3).
    levels = [1.0, 5.0, 1.0, 5.0, 5.0, 5.0, 4.0, 3.9, 5.0, 4.0, 3.0, 3.0, 3.0, 3.0, 4.0]
    events = []
    for t, level in enumerate(levels):
        for alert in rules.update({"velocity_rms": level}, None, None, float(t)):
            events.append((t, alert.state))
    assert events == [(5, "raised"), (12, "cleared")]


def test_alert_carries_id_value_threshold_and_first_time() -> None:
    rules = RuleSet(_rule_config(persist=1))
    (alert,) = rules.update({"velocity_rms": 6.0}, None, None, 1000.0)
    assert alert.alert_id == "P-102.vib"
    assert (alert.state, alert.value, alert.threshold, alert.unit) == ("raised", 6.0, 4.5, "mm/s")
    assert alert.raised_at.timestamp() == 1000.0
    (cleared,) = rules.update({"velocity_rms": 1.0}, None, None, 1010.0)
    assert cleared.state == "cleared" and cleared.raised_at.timestamp() == 1000.0


def test_bearing_alert_payload_carries_typed_evidence() -> None:
    import msgspec

    from isthmus.gateway.demo import BEARING_ALERT_DB, demo_config
    from isthmus.uns.models import Alert, Envelope, wrap

    config = demo_config({"P-101": 5020, "P-102": 5021}, outbox=":memory:")
    (asset,) = [a for a in config.assets if any(r.kind == "bearing" for r in a.rules)]
    rules = RuleSet(asset)
    nan = float("nan")
    columns = {
        "band_kurtosis": 2.0,
        "fault": 1.0,
        "outer_race_score_db": BEARING_ALERT_DB + 5.0,
        "outer_race_harmonics": 3.0,
        "outer_race_hz": 107.4,
        "inner_race_score_db": 3.0,
        "inner_race_harmonics": 0.0,
        "inner_race_hz": 162.2,
        "ball_score_db": nan,
        "ball_harmonics": nan,
        "ball_hz": nan,
        "peak1_hz": 107.4,
        "peak1_db": 25.0,
        "peak2_hz": 214.8,
        "peak2_db": 18.5,
    }
    result = type("Frame", (), {"columns": columns})()
    alerts = [a for t in range(6) for a in rules.update({}, "A", result, 1000.0 + t)]
    assert [a.state for a in alerts] == ["raised"]
    # What a subscriber decodes from the published bytes, against the Alert schema type.
    raw = msgspec.json.encode(wrap(alerts[0]))
    evidence = msgspec.json.decode(raw, type=Envelope[Alert]).payload.evidence
    assert evidence is not None
    assert (evidence.fault, evidence.frequency_hz, evidence.score_db, evidence.harmonics) == (
        "outer_race",
        107.4,
        BEARING_ALERT_DB + 5.0,
        3,
    )
    assert [(p.frequency_hz, p.level_db) for p in evidence.peaks] == [
        (107.4, 25.0),
        (214.8, 18.5),
    ]
    doc = json.loads(raw)["payload"]["evidence"]
    assert doc["feature"] == "outer_race_score_db" and "zone" not in doc


def test_iso_zone_rule_follows_the_zone() -> None:
    asset = _config(
        rules=[{"name": "zone", "kind": "iso_zone", "zone": "C", "persist": 2}], velocity=True
    ).assets[0]
    rules = RuleSet(asset)
    features = {"velocity_rms": 1.0}
    events = []
    for t, zone in enumerate("ABCCCBCBBAA"):
        events += [(t, a.state) for a in rules.update(features, zone, None, float(t))]
    # persistence 2: C at t=2,3 raises; a one-frame dip to B does not clear; B at t=7,8 does.
    assert events == [(3, "raised"), (8, "cleared")]
    # A worse zone while raised re-raises the same alert (the core engine's documented
    # escalation), so the active-alert list shows the current zone.
    rules = RuleSet(asset)
    escalation = []
    for t, zone in enumerate("CCDDD"):
        escalation += [(a.state, a.message) for a in rules.update(features, zone, None, float(t))]
    assert [s for s, _ in escalation] == ["raised", "raised"]
    assert "zone D" in escalation[-1][1]


def test_values_are_routed_with_declared_unit_conversion() -> None:
    from isthmus.gateway.sinks import ConsoleSink

    gateway = Gateway(_config(), ConsoleSink(stream=None))
    now = time.time()
    gateway.on_values(
        [
            TagValue(source="p102", tag="speed", value=49.15, unit="Hz", gateway_time=now),
            TagValue(source="p102", tag="temperature", value=122.0, unit="degF"),
            TagValue(source="p102", tag="pressure", value=60.9158, unit="psi"),
            TagValue(source="p102", tag="unmapped", value=1.0),
        ]
    )
    values = gateway.assets["P-102"].values
    assert values["speed_rpm"] == pytest.approx(2949.0)
    assert values["bearing_temperature_c"] == pytest.approx(50.0)
    assert values["discharge_pressure_bar"] == pytest.approx(4.2, rel=1e-5)
    assert gateway.metrics.total("isthmus_values_total") == 4
    # A bad value is kept as bad, counted, and left out of the product.
    gateway.on_values(
        [TagValue(source="p102", tag="pressure", value=None, quality=Quality.BAD, reason="timeout")]
    )
    runtime = gateway.assets["P-102"]
    # a required field read as bad makes the product bad (it was "uncertain" before)
    assert runtime.overall_quality() == "bad"
    product = runtime.build_product()
    assert product.discharge_pressure_bar is None
    assert product.field_quality["discharge_pressure_bar"] == "bad"
    assert gateway.metrics.total("isthmus_bad_values_total") == 1


def test_a_value_breaking_the_schema_is_left_out_counted_and_uncertain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import msgspec

    from isthmus.gateway.sinks import ConsoleSink
    from isthmus.uns.models import Envelope, Pump, wrap

    gateway = Gateway(_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["P-102"]

    def published() -> Envelope[Pump]:
        gateway._product(runtime, time.time())
        message = gateway.telemetry.get_nowait()
        assert message is not None
        raw = msgspec.json.encode(wrap(message.payload, quality=message.quality))
        return msgspec.json.decode(raw, type=Envelope[Pump])  # its own schema accepts it

    # A stopped pump: the speed sensor reads -0.02 Hz, i.e. -1.2 rpm, below the schema's 0.
    with caplog.at_level(logging.WARNING, logger="isthmus.gateway"):
        for _ in range(3):
            gateway.on_values(
                [
                    TagValue(source="p102", tag="speed", value=-0.02, unit="Hz"),
                    TagValue(source="p102", tag="temperature", value=122.0, unit="degF"),
                    TagValue(source="p102", tag="pressure", value=60.9158, unit="psi"),
                ]
            )
    state = published()
    assert state.quality == "uncertain"
    assert state.payload.speed_rpm is None  # left out, not clamped to 0
    assert state.payload.bearing_temperature_c == pytest.approx(50.0)
    assert "'p102.speed' -> speed_rpm = -1.2" in runtime.rejected["speed_rpm"]
    assert gateway.metrics.total("isthmus_rejected_values_total", field="speed_rpm") == 3
    assert any("speed_rpm" in r.getMessage() for r in caplog.records)
    assert len([r for r in caplog.records if "left out" in r.getMessage()]) == 1  # no log storm
    # The pump starts: the field comes back and the product is good again.
    gateway.on_values([TagValue(source="p102", tag="speed", value=24.5, unit="Hz")])
    state = published()
    assert state.payload.field_quality == {}, state.payload.field_quality
    assert state.quality == "good" and state.payload.speed_rpm == pytest.approx(1470.0)
    assert runtime.rejected == {}


def test_an_edge_zone_outside_the_standard_is_left_out() -> None:
    from isthmus.gateway.sinks import ConsoleSink

    gateway = Gateway(_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["P-102"]
    now = time.time()  # a reading from 1970 would be stale, and the product bad
    runtime.set_value("bearing_temperature_c", 50.0, "good", now)
    runtime.set_value("iso20816_zone", "E", "good", now)
    assert runtime.overall_quality() == "uncertain"
    assert runtime.build_product().iso20816_zone is None
    assert runtime.rejected["iso20816_zone"].startswith("the edge analysis -> iso20816_zone")


async def test_console_sink_envelopes_and_keeps_an_outbox(tmp_path: Path) -> None:
    from isthmus.gateway.sinks import ConsoleSink
    from isthmus.uns.settings import OutboxSettings

    out = io.StringIO()
    sink = ConsoleSink(stream=out, outbox=OutboxSettings(path=str(tmp_path / "ob.sqlite3")))
    async with plant(tick_interval=0.0) as (sim, ports):
        gateway = Gateway(_config(ports["P-102"]), sink)
        async with running(gateway):
            await wait_until(lambda: "P-102/state" in out.getvalue(), 15, "a printed product")
    topic, body = out.getvalue().splitlines()[0].split(" ", 1)
    assert topic == "e/s/a/l/P-102/state"
    doc = json.loads(body)
    assert doc["schema"] == "urn:isthmus:uns:Pump:v2" and len(doc["message_id"]) == 26
    truth = sim.truth("P-102")
    assert doc["payload"]["speed_rpm"] == pytest.approx(truth.speed_rpm, rel=1e-6)
    rows = outbox_rows(tmp_path / "ob.sqlite3")
    assert doc["message_id"] in {mid for _, _, mid in rows}


async def test_alert_events_the_sink_cannot_take_at_shutdown_are_counted_and_resent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "cleared" event the outbox refuses until shutdown (a full disk) is not lost: it
    is counted, the alert state file keeps the alert, and the next start clears it."""
    from isthmus.gateway import pipeline
    from isthmus.gateway.sinks import ConsoleSink
    from isthmus.uns.settings import OutboxSettings

    class DiskFullForAlerts(ConsoleSink):
        refuse = False

        async def send(self, message: Message) -> None:
            if self.refuse and message.kind == "alert":
                raise OSError(28, "No space left on device")
            await super().send(message)

    monkeypatch.setattr(pipeline, "DRAIN_S", 0.5)
    rule = {
        "name": "vib",
        "kind": "threshold",
        "feature": "velocity_rms",
        "raise_at": 4.5,
        "clear_at": 3.5,
        "persist": 1,
    }
    box = tmp_path / "ob.sqlite3"
    cfg = _config(rules=[rule], outbox=box)
    state_file = Path(str(box) + ".active-alerts.json")
    out = io.StringIO()
    sink = DiskFullForAlerts(stream=out, outbox=OutboxSettings(path=str(box)))
    gateway = Gateway(cfg, sink)
    runtime = gateway.assets["P-102"]
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop, acquire=False))
    await wait_until(lambda: sink.outbox is not None, 10, "the sink started")
    gateway._evaluate(runtime, {"velocity_rms": 9.0}, None, None, time.time())
    await wait_until(lambda: '"raised"' in out.getvalue(), 10, "the raised alert")
    sink.refuse = True
    gateway._evaluate(runtime, {"velocity_rms": 1.0}, None, None, time.time())
    await wait_until(
        lambda: gateway.metrics.total("isthmus_sink_retries_total", kind="alert") >= 1,
        10,
        "a refused cleared event",
    )
    stop.set()
    await asyncio.wait_for(task, 30)
    assert '"cleared"' not in out.getvalue()
    assert gateway.metrics.total("isthmus_alerts_undelivered_total") == 1
    assert json.loads(await asyncio.to_thread(state_file.read_text)) == {"P-102": ["P-102.vib"]}
    # The next start clears it, with a reason; once the sink took it, the file is empty.
    out = io.StringIO()
    gateway = Gateway(cfg, ConsoleSink(stream=out, outbox=OutboxSettings(path=str(box))))
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop, acquire=False))
    await wait_until(lambda: '"cleared"' in out.getvalue(), 10, "the cleared alert")
    stop.set()
    await asyncio.wait_for(task, 30)
    assert "can no longer vouch" in out.getvalue()
    assert json.loads(await asyncio.to_thread(state_file.read_text)) == {}


async def test_a_stalled_broker_never_blocks_polling(mqtt_broker: Any, tmp_path: Path) -> None:
    from isthmus.gateway.sinks import UnsSink
    from isthmus.uns.settings import MqttSettings, OutboxSettings

    async with plant(tick_interval=0.1) as (sim, ports):
        config = _config(ports["P-102"])
        sink = UnsSink(
            MqttSettings(url=mqtt_broker.url, timeout_s=1.0),
            OutboxSettings(path=str(tmp_path / "ob.sqlite3")),
            drain_timeout=0.5,
        )
        gateway = Gateway(config, sink)
        async with running(gateway):
            await wait_until(
                lambda: gateway.metrics.total("isthmus_messages_total", kind="product") > 0,
                15,
                "the first product",
            )
            os.kill(mqtt_broker.proc.pid, signal.SIGSTOP)  # alive but answering nothing
            try:
                server = sim.modbus["P-102"]
                before = sum(server.requests.values())
                products = gateway.metrics.total("isthmus_messages_total", kind="product")
                await asyncio.sleep(3.0)
                polls = sum(server.requests.values()) - before
                # 0.2 s poll interval: ~15 polls in 3 s; allow for scheduling noise.
                assert polls >= 10, polls
                assert gateway.metrics.total("isthmus_messages_total", kind="product") > products
            finally:
                os.kill(mqtt_broker.proc.pid, signal.SIGCONT)


@pytest.fixture
def restored_loggers() -> Iterator[None]:
    """logs.setup() takes the isthmus and library loggers off the root (propagate=False):
    put them back, or every later test's caplog sees nothing."""
    names = ("isthmus", "pymodbus", "asyncua", "aiomqtt")
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in map(logging.getLogger, names)]
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.mark.usefixtures("restored_loggers")
def test_key_value_and_json_logs() -> None:
    from isthmus.gateway import logs

    stream = io.StringIO()
    logs.setup("INFO", "kv", stream)
    logging.getLogger("isthmus.gateway").info("poll failed", extra={"source": "p1", "n": 2})
    line = stream.getvalue().strip()
    assert 'event="poll failed"' in line and "source=p1" in line and "n=2" in line
    assert line.startswith("ts=") and "level=info" in line
    stream = io.StringIO()
    logs.setup("INFO", "json", stream)
    logging.getLogger("isthmus.gateway").warning("alert raised", extra={"asset": "P-1"})
    doc = json.loads(stream.getvalue())
    assert doc["event"] == "alert raised" and doc["asset"] == "P-1" and doc["level"] == "warning"
