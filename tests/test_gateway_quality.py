"""Quality rules of the data products, each on its own: staleness, inheritance, cadence."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import numpy as np
import pytest

from isthmus.gateway.config import build_config
from isthmus.gateway.diagnosis import RuleSet
from isthmus.gateway.pipeline import Gateway
from isthmus.gateway.sinks import ConsoleSink
from isthmus.gateway.vibration import VibrationResult
from isthmus.sources.values import Quality, ValueBatch
from proto_support import wait_for

ISA = {"enterprise": "e", "site": "s", "area": "a", "line": "l"}


def _modbus_config(**gateway: Any) -> Any:
    tag = {"register": "holding", "dtype": "float32"}
    return build_config(
        {
            "gateway": {"name": "gw", **gateway},
            "sources": {
                "modbus": [
                    {
                        "name": "plc",
                        "host": "127.0.0.1",
                        "port": 5020,
                        "poll_groups": [
                            {
                                "name": "g",
                                "interval": 0.5,
                                "tags": [
                                    {**tag, "name": "temp", "address": 0},
                                    {**tag, "name": "vib", "address": 2},
                                ],
                            }
                        ],
                    }
                ]
            },
            "assets": [
                {
                    "name": "P-1",
                    "model": "Pump",
                    "isa95": ISA,
                    "fields": {
                        "bearing_temperature_c": {"tag": "plc.temp", "deadband": 0.5},
                        "vibration_velocity_rms_mm_s": {"tag": "plc.vib"},
                    },
                }
            ],
        }
    )


def _waveform_config() -> Any:
    return build_config(
        {
            "gateway": {"name": "gw"},
            "sources": {
                "opcua": [
                    {
                        "name": "ua",
                        "url": "opc.tcp://127.0.0.1:4840",
                        "nodes": [
                            {
                                "node_id": "ns=2;s=wave",
                                "name": "wave",
                                "waveform": True,
                                "sample_rate": 12800.0,
                            }
                        ],
                    }
                ]
            },
            "assets": [
                {
                    "name": "F-1",
                    "model": "RotatingAsset",
                    "isa95": ISA,
                    "vibration": {
                        "sample_rate": 12800.0,
                        "channels": [{"name": "de", "waveform": "ua.wave"}],
                    },
                }
            ],
        }
    )


TAGS = ("temp", "vib")


def _read(gateway: Gateway, temp: float, vib: float, when: float) -> None:
    gateway.on_batch(ValueBatch(source="plc", tags=TAGS, values=[temp, vib], gateway_time=when))


def test_a_field_older_than_n_polls_is_stale_and_the_product_bad() -> None:
    gateway = Gateway(_modbus_config(stale_after_polls=3), ConsoleSink(stream=None))
    runtime = gateway.assets["P-1"]
    t0 = time.time()
    _read(gateway, 50.0, 2.0, t0)
    _product, quality, _ = runtime.snapshot(t0 + 1.0)
    assert quality == "uncertain"  # the zone is required and not computed yet
    gateway._product(runtime, t0 + 1.0)
    assert runtime.values["iso20816_zone"] == "B"
    product, quality, _ = runtime.snapshot(t0 + 1.0)
    assert quality == "good" and product.bearing_temperature_c == 50.0
    # 3 x 0.5 s later without a reading: stale, left out, listed; the zone inherits it
    product, quality, _ = runtime.snapshot(t0 + 1.6)
    assert quality == "bad"
    assert product.bearing_temperature_c is None and product.iso20816_zone is None
    assert product.field_quality == {
        "bearing_temperature_c": "stale",
        "vibration_velocity_rms_mm_s": "stale",
        "iso20816_zone": "stale",
    }


def test_the_zone_inherits_a_bad_velocity() -> None:
    gateway = Gateway(_modbus_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["P-1"]
    now = time.time()
    _read(gateway, 50.0, 5.0, now)
    gateway._product(runtime, now)
    assert runtime.field_state("iso20816_zone", now) == "good"
    gateway.on_batch(
        ValueBatch(
            source="plc",
            tags=TAGS,
            values=[None, None],
            quality=Quality.BAD,
            reason="timeout",
            gateway_time=now,
        )
    )
    assert runtime.field_state("iso20816_zone", now) == "bad"
    product, quality, _ = runtime.snapshot(now)
    assert quality == "bad" and product.iso20816_zone is None


def test_a_waveform_only_asset_goes_bad_when_its_waveform_stops() -> None:
    gateway = Gateway(_waveform_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["F-1"]
    frame_time = time.time()
    result = VibrationResult(
        time=frame_time,
        channel="de",
        velocity_rms=1.0,
        zone="A",
        diagnosis="none",
        score_db=0.0,
        frequency_hz=0.0,
        features={
            "velocity_rms": 1.0,
            "acceleration_rms": 0.1,
            "acceleration_peak": 0.3,
            "crest_factor": 3.0,
            "kurtosis": 3.0,
        },
    )
    gateway._vibration_result(runtime, result)
    gateway._product(runtime, frame_time)
    message = gateway.telemetry.get_nowait()
    while message is not None and message.kind != "product":
        message = gateway.telemetry.get_nowait()
    assert message is not None and message.quality == "good"
    # the OPC UA server goes away: no frame for minutes. The product is bad, its
    # fields are left out, and its timestamp stays the last frame's (never "fresh").
    later = frame_time + 120.0
    product, quality, _ = runtime.snapshot(later)
    assert quality == "bad"
    assert product.vibration_velocity_rms_mm_s is None and product.iso20816_zone is None
    assert product.field_quality["vibration_velocity_rms_mm_s"] == "stale"
    gateway._product(runtime, later)
    message = gateway.telemetry.get_nowait()
    assert message is not None and message.quality == "bad"
    assert message.time == pytest.approx(frame_time)


def test_bearing_rule_before_the_first_envelope_frame_is_not_an_error() -> None:
    config = build_config(
        {
            "gateway": {"name": "gw"},
            "sources": {
                "opcua": [
                    {
                        "name": "ua",
                        "url": "opc.tcp://127.0.0.1:4840",
                        "nodes": [
                            {
                                "node_id": "ns=2;s=wave",
                                "name": "wave",
                                "waveform": True,
                                "sample_rate": 12800.0,
                            },
                            {"node_id": "ns=2;s=speed", "name": "speed", "unit": "rpm"},
                        ],
                    }
                ]
            },
            "assets": [
                {
                    "name": "F-1",
                    "model": "RotatingAsset",
                    "isa95": ISA,
                    "vibration": {
                        "sample_rate": 12800.0,
                        "bearing": "6205",
                        "speed_tag": "ua.speed",
                        "channels": [{"name": "de", "waveform": "ua.wave"}],
                    },
                    "rules": [{"name": "bearing", "kind": "bearing", "raise_at": 10.0}],
                }
            ],
        }
    )
    rules = RuleSet(config.assets[0])
    result = VibrationResult(
        time=1.0,
        channel="de",
        velocity_rms=1.0,
        zone="A",
        diagnosis="none",
        score_db=0.0,
        frequency_hz=0.0,
        features={"velocity_rms": 1.0},
        columns={},  # no envelope frame yet
    )
    # on main: DiagnosticsError 'feature "fault" missing from the frame columns'
    assert rules.update({"velocity_rms": 1.0}, "A", result, 1.0) == []


async def test_products_follow_changes_with_deadband_and_minimum_interval() -> None:
    gateway = Gateway(_modbus_config(publish_min_interval_s=0.2), ConsoleSink(stream=None))
    runtime = gateway.assets["P-1"]
    task = asyncio.create_task(gateway._products())
    try:
        published: list[Any] = []

        def drain() -> None:
            while (m := gateway.telemetry.get_nowait()) is not None:
                if m.kind == "product":
                    published.append(m.payload)

        t = time.time()
        _read(gateway, 50.0, 2.0, t)
        await asyncio.sleep(0.05)
        drain()
        assert [p.bearing_temperature_c for p in published] == [50.0]
        # within the deadband (0.5): no product; no change at all: no work either
        _read(gateway, 50.3, 2.0, t + 0.05)
        await asyncio.sleep(0.3)
        drain()
        assert len(published) == 1
        # ten changes within one minimum interval: one product, the newest value
        for i in range(10):
            _read(gateway, 60.0 + i, 2.0, time.time())
        await asyncio.sleep(0.45)
        drain()
        assert [p.bearing_temperature_c for p in published][1:] in ([69.0], [60.0, 69.0])
        assert not gateway._dirty and runtime.report.suppressed >= 1
    finally:
        task.cancel()


async def test_an_unchanged_product_is_repeated_after_max_silence_with_its_reading_time() -> None:
    gateway = Gateway(_modbus_config(max_silence_s=1.0), ConsoleSink(stream=None))
    tasks = [asyncio.create_task(gateway._products()), asyncio.create_task(gateway._staleness())]
    try:
        read_at = time.time()
        # an OPC UA-like stream: no staleness bound, so only the heartbeat wakes the asset
        gateway.assets["P-1"].stale_after.clear()
        _read(gateway, 50.0, 2.0, read_at)
        await asyncio.sleep(2.2)
        products = []
        while (m := gateway.telemetry.get_nowait()) is not None:
            products.append(m)
        # conflated per asset: the newest waiting product; the heartbeat did come
        assert gateway.assets["P-1"].report.suppressed == 0
        assert products and products[-1].time == pytest.approx(read_at)
        assert gateway.telemetry.conflated >= 1  # first product replaced by the heartbeat
    finally:
        for task in tasks:
            task.cancel()


async def test_an_alert_the_sink_refuses_is_retried_never_dropped() -> None:
    from isthmus.gateway.pipeline import Message
    from isthmus.uns.models import Alert

    class FlakySink(ConsoleSink):
        """A console sink whose outbox refuses the first two alerts (e.g. full of alerts)."""

        refusals = 2

        async def send(self, message: Any) -> None:
            if message.kind == "alert" and self.refusals:
                self.refusals -= 1
                raise RuntimeError("outbox full of alerts")
            await super().send(message)

    sink = FlakySink(stream=None)
    gateway = Gateway(_modbus_config(), sink)
    runtime = gateway.assets["P-1"]
    await sink.start(gateway)
    alert = Alert(alert_id="P-1.x", state="raised", severity="alarm", message="m")
    gateway.alerts.put(Message("alert", runtime, alert))
    for i in range(50):  # telemetry meanwhile does not push the alert out
        gateway.telemetry.put(Message("product", runtime, i))
    task = asyncio.create_task(gateway._sink_loop())
    try:
        assert await wait_for(lambda: ("P-1", "alert") in sink.last, 10)
    finally:
        task.cancel()
    assert sink.refusals == 0
    assert gateway.metrics.total("isthmus_sink_retries_total", kind="alert") == 2
    assert gateway.metrics.total("isthmus_dropped_total") == 0


def _products_of(gateway: Gateway) -> list[Any]:
    out = []
    while (m := gateway.telemetry.get_nowait()) is not None:
        if m.kind == "product":
            out.append(m)
    return out


@pytest.mark.parametrize("reading", [math.nan, math.inf, -math.inf])
def test_a_non_finite_reading_is_bad_and_the_product_still_goes_out(reading: float) -> None:
    # A float32 register holding NaN after a sensor fault: on main it was stored as good
    # and the zone computed from it raised, so no product at all left for this asset.
    gateway = Gateway(_modbus_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["P-1"]
    now = time.time()
    _read(gateway, 41.0, 2.0, now)
    gateway._product(runtime, now)
    _products_of(gateway)
    _read(gateway, 41.0, reading, now + 0.1)
    assert runtime.field_state("vibration_velocity_rms_mm_s", now + 0.1) == "bad"
    assert runtime.reasons["vibration_velocity_rms_mm_s"] == "non-finite value from the device"
    gateway._product(runtime, now + 0.1)
    [message] = _products_of(gateway)
    assert message.quality == "bad"
    assert message.payload.vibration_velocity_rms_mm_s is None
    assert message.payload.bearing_temperature_c == 41.0
    assert message.payload.field_quality == {
        "vibration_velocity_rms_mm_s": "bad",
        "iso20816_zone": "bad",
    }


def test_a_non_finite_value_from_elsewhere_is_bad_not_good() -> None:
    gateway = Gateway(_modbus_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["P-1"]
    runtime.set_value("bearing_temperature_c", math.nan, "good", time.time())
    assert runtime.quality["bearing_temperature_c"] == "bad"
    assert runtime.values["bearing_temperature_c"] is None


async def test_an_asset_whose_product_cannot_be_built_is_published_bad() -> None:
    gateway = Gateway(_modbus_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["P-1"]

    def broken(now: float | None = None) -> Any:
        raise RuntimeError("simulated failure while building the product")

    runtime.snapshot = broken  # type: ignore[method-assign]
    task = asyncio.create_task(gateway._products())
    try:
        _read(gateway, 41.0, 2.0, time.time())
        assert await wait_for(lambda: bool(gateway.telemetry), 5.0)
        [message] = _products_of(gateway)
        assert message.quality == "bad"
        assert message.payload.bearing_temperature_c is None
        assert message.payload.field_quality["bearing_temperature_c"] == "bad"
    finally:
        task.cancel()


def test_s7_and_enip_fields_go_stale_like_modbus_ones() -> None:
    config = build_config(
        {
            "gateway": {"name": "gw", "stale_after_polls": 3},
            "sources": {
                "s7": [
                    {
                        "name": "plc",
                        "host": "127.0.0.1",
                        "poll_groups": [
                            {
                                "name": "g",
                                "interval": 0.5,
                                "tags": [{"name": "temp", "address": "DB1.DBD0:REAL"}],
                            }
                        ],
                    }
                ],
                "enip": [
                    {
                        "name": "clx",
                        "host": "127.0.0.1",
                        "poll_groups": [
                            {
                                "name": "g",
                                "interval": 1.0,
                                "tags": [
                                    {
                                        "name": "pressures",
                                        "tag": "P[0]",
                                        "type": "REAL",
                                        "elements": 2,
                                    },
                                ],
                                "attributes": [
                                    {
                                        "name": "flow",
                                        "class_id": 4,
                                        "instance": 1,
                                        "attribute": 3,
                                        "type": "REAL",
                                    },
                                ],
                            }
                        ],
                    }
                ],
            },
            "assets": [
                {
                    "name": "P-1",
                    "model": "Pump",
                    "isa95": ISA,
                    "fields": {
                        "bearing_temperature_c": {"tag": "plc.temp"},
                        "discharge_pressure_bar": {"tag": "clx.pressures[1]"},
                        "speed_rpm": {"tag": "clx.flow"},
                    },
                }
            ],
        }
    )
    gateway = Gateway(config, ConsoleSink(stream=None))
    runtime = gateway.assets["P-1"]
    t0 = time.time()
    gateway.on_batch(ValueBatch(source="plc", tags=("temp",), values=[50.0], gateway_time=t0))
    gateway.on_batch(
        ValueBatch(
            source="clx",
            tags=("pressures[0]", "pressures[1]", "flow"),
            values=[1.0, 2.5, 10.0],
            gateway_time=t0,
        )
    )
    product, quality, _ = runtime.snapshot(t0 + 1.0)
    assert quality == "good" and product.discharge_pressure_bar == 2.5
    # 3 x 0.5 s: the S7 field is stale, the EtherNet/IP ones (3 x 1 s) not yet
    product, quality, _ = runtime.snapshot(t0 + 2.0)
    assert quality == "bad" and product.field_quality == {"bearing_temperature_c": "stale"}
    product, quality, _ = runtime.snapshot(t0 + 3.5)
    assert product.field_quality == {
        "bearing_temperature_c": "stale",
        "discharge_pressure_bar": "stale",
        "speed_rpm": "stale",
    }


def _bearing_config(bearing: str | None = "6205") -> Any:
    vibration: dict[str, Any] = {
        "sample_rate": 12800.0,
        "speed_tag": "ua.speed",
        "channels": [{"name": "de", "waveform": "ua.wave"}],
    }
    if bearing is not None:
        vibration["bearing"] = bearing
    return build_config(
        {
            "gateway": {"name": "gw"},
            "sources": {
                "opcua": [
                    {
                        "name": "ua",
                        "url": "opc.tcp://127.0.0.1:4840",
                        "nodes": [
                            {
                                "node_id": "ns=2;s=wave",
                                "name": "wave",
                                "waveform": True,
                                "sample_rate": 12800.0,
                            },
                            {"node_id": "ns=2;s=speed", "name": "speed", "unit": "rpm"},
                        ],
                    }
                ]
            },
            "assets": [
                {"name": "F-1", "model": "RotatingAsset", "isa95": ISA, "vibration": vibration}
            ],
        }
    )


def _frame(missing: str | None) -> VibrationResult:
    return VibrationResult(
        time=time.time(),
        channel="de",
        velocity_rms=1.0,
        zone="A",
        diagnosis="none",
        score_db=0.0,
        frequency_hz=0.0,
        features={
            "velocity_rms": 1.0,
            "acceleration_rms": 0.1,
            "acceleration_peak": 0.3,
            "crest_factor": 3.0,
            "kurtosis": 3.0,
        },
        diagnosis_missing=missing,
    )


@pytest.mark.parametrize("missing", ["no shaft speed", "no envelope frame yet"])
def test_a_bearing_diagnosis_nobody_analysed_is_not_published_as_normal(missing: str) -> None:
    gateway = Gateway(_bearing_config(), ConsoleSink(stream=None))
    runtime = gateway.assets["F-1"]
    frame = _frame(missing)
    gateway._vibration_result(runtime, frame)
    product, quality, _ = runtime.snapshot(frame.time)
    assert product.bearing_diagnosis is None
    assert product.field_quality == {"bearing_diagnosis": "uncertain"}
    assert quality == "uncertain" and runtime.reasons["bearing_diagnosis"] == missing
    # once the envelope analyzer has spoken, its verdict is good
    frame = _frame(None)
    gateway._vibration_result(runtime, frame)
    product, quality, _ = runtime.snapshot(frame.time)
    assert product.bearing_diagnosis == "normal" and quality == "good"


def test_without_a_bearing_there_is_no_diagnosis_field() -> None:
    gateway = Gateway(_bearing_config(bearing=None), ConsoleSink(stream=None))
    runtime = gateway.assets["F-1"]
    frame = _frame("no bearing configured")
    gateway._vibration_result(runtime, frame)
    product, quality, _ = runtime.snapshot(frame.time)
    assert product.bearing_diagnosis is None and "bearing_diagnosis" not in product.field_quality
    assert quality == "good" and product.vibration_velocity_rms_mm_s == 1.0


@pytest.mark.parametrize("loss", ["bad read", "bad tag", "nan"])
def test_a_lost_speed_clears_the_shaft_speed_the_envelope_uses(loss: str) -> None:
    gateway = Gateway(_bearing_config(), ConsoleSink(stream=None))
    monitor = gateway.assets["F-1"].vibration
    assert monitor is not None
    now = time.time()
    gateway.on_batch(ValueBatch(source="ua", tags=("speed",), values=[1500.0], gateway_time=now))
    assert monitor.shaft_hz == pytest.approx(25.0)
    if loss == "bad read":
        batch = ValueBatch(
            source="ua",
            tags=("speed",),
            values=[None],
            quality=Quality.BAD,
            reason="connection lost",
            gateway_time=now,
        )
    elif loss == "bad tag":
        batch = ValueBatch(
            source="ua", tags=("speed",), values=[0], bad_tags={0: "decode"}, gateway_time=now
        )
    else:
        batch = ValueBatch(source="ua", tags=("speed",), values=[math.nan], gateway_time=now)
    gateway.on_batch(batch)
    assert monitor.shaft_hz is None


def test_the_monitor_says_why_no_diagnosis_was_analysed() -> None:
    import isthmus
    from isthmus.gateway.vibration import VibrationMonitor

    asset = _bearing_config().assets[0]
    ring = isthmus.SampleRing(1, 1 << 16, 12800.0)
    monitor = VibrationMonitor(asset, {"ua.wave": ring})
    noise = np.random.default_rng(7).normal(0.0, 0.1, 8192).astype(np.float32)
    ring.push(noise)  # one spectrum frame (8192 samples), no speed yet
    result = monitor.process()
    assert result is not None and result.diagnosis_missing == "no shaft speed"
    monitor.shaft_hz = 25.0
    ring.push(noise[:4096])  # the next spectrum frame (hop 4096): half an envelope frame
    result = monitor.process()
    assert result is not None and result.diagnosis_missing == "no envelope frame yet"


async def test_telemetry_goes_to_the_sink_in_batches_alerts_first_and_within_its_room() -> None:
    from types import SimpleNamespace

    from isthmus.gateway.pipeline import SINK_BATCH, Message
    from isthmus.uns.models import Alert

    class BatchSink(ConsoleSink):
        """Records what arrives one by one and in batches; room for 300 messages."""

        def __init__(self) -> None:
            super().__init__(stream=None)
            self.order: list[str] = []
            self.batches: list[int] = []
            self.space = 300

        async def send(self, message: Any) -> None:
            self.order.append(message.kind)

        def room(self) -> int:
            return self.space

        async def send_many(self, messages: list[Any]) -> None:
            self.batches.append(len(messages))
            self.order += [m.kind for m in messages]
            self.space -= len(messages)

    sink = BatchSink()
    gateway = Gateway(_modbus_config(), sink)
    runtime = gateway.assets["P-1"]
    for i in range(400):  # 400 assets' products waiting (one entry per asset)
        gateway.telemetry.put(Message("product", SimpleNamespace(name=f"A{i}"), i))  # type: ignore[arg-type]
    gateway.alerts.put(
        Message(
            "alert", runtime, Alert(alert_id="P-1.x", state="raised", severity="alarm", message="m")
        )
    )
    task = asyncio.create_task(gateway._sink_loop())
    try:
        assert await wait_for(lambda: sum(sink.batches) == 300, 10)
        await asyncio.sleep(0.05)  # the sink has no room left: nothing more is handed over
        assert sum(sink.batches) == 300 and len(gateway.telemetry) == 100
        sink.space = 1000
        assert await wait_for(lambda: sum(sink.batches) == 400, 10)
    finally:
        task.cancel()
    assert sink.order[0] == "alert" and sink.order.count("product") == 400
    assert max(sink.batches) <= SINK_BATCH and len(sink.batches) < 10
    assert gateway.metrics.total("isthmus_messages_total", kind="product") == 400
    assert gateway.metrics.total("isthmus_dropped_total") == 0
