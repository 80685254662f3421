"""Values and quality end to end: a real pymodbus server -> the gateway -> a real Mosquitto.

The registers are encoded here with :mod:`struct` (the oracle), and the published JSON
text is read back from the broker, so a value rounded anywhere on the way shows up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway_helpers import free_port, running
from isthmus.gateway.config import build_config
from mqtt_broker import Broker, collect

pytestmark = [pytest.mark.network]

BASE = "e/s/a/l"

# Holding-register layout of the test device (address -> words, big-endian "ABCD").
FLOAT64 = 123456.789
UINT32 = 66192371
INT64 = 284857027299509239
FLOAT32 = 1.88  # the register holds float32(1.88) = 1.8799999952316284
SCALED = 188  # int16 x 0.01 -> 1.88 degC
TEMP_F32 = 100.1  # float32 degF -> 37.8333...: degC by the conversion only
VELOCITY = 5.2  # float32 mm/s: ISO 20816 zone D for group 2 rigid (> 4.5)


def _words(fmt: str, value: Any) -> list[int]:
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def registers(velocity: float = VELOCITY) -> dict[int, list[int]]:
    return {
        0: _words("d", FLOAT64),
        4: _words("I", UINT32),
        6: _words("q", INT64),
        10: _words("f", FLOAT32),
        12: _words("h", SCALED),
        13: _words("f", TEMP_F32),
        15: _words("f", velocity),
    }


class Device:
    """A pymodbus TCP server with 32 holding registers and 16 coils, set from Python."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: Any = None
        self._regs: list[int] = []
        self._coils: list[int] = []

    async def start(self, velocity: float = VELOCITY, running: bool = True) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        device = SimDevice(
            1,
            simdata=(
                [SimData(0, values=[False] * 16, datatype=DataType.BITS, readonly=True)],
                [SimData(0, values=[False] * 16, datatype=DataType.BITS, readonly=True)],
                [SimData(0, values=[0] * 32, datatype=DataType.REGISTERS, readonly=True)],
                [SimData(0, values=[0] * 32, datatype=DataType.REGISTERS, readonly=True)],
            ),
        )
        self._server = ModbusTcpServer([device], address=("127.0.0.1", self.port))
        runtime = self._server.context.devices[1]
        self._coils = runtime.block["c"][2]
        self._regs = runtime.block["h"][2]
        for address, words in registers(velocity).items():
            self._regs[address : address + len(words)] = words
        # coil 0: running, coil 1: fault (16 bits per word, LSB first)
        self._coils[0] = 1 if running else 0
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None


@contextlib.asynccontextmanager
async def device(**kw: Any) -> AsyncIterator[Device]:
    dev = Device(free_port())
    await dev.start(**kw)
    try:
        yield dev
    finally:
        await dev.stop()


def config(port: int, broker: Broker, tmp_path: Path, rules: list[Any] | None = None) -> Any:
    tag = {"register": "holding"}
    raw: dict[str, Any] = {
        "gateway": {"name": "gw"},
        "mqtt": {"url": broker.url},
        "outbox": {"path": str(tmp_path / "outbox.sqlite3")},
        "sources": {
            "modbus": [
                {
                    "name": "plc",
                    "host": "127.0.0.1",
                    "port": port,
                    "request_timeout": 0.5,
                    "backoff_initial": 0.2,
                    "backoff_max": 0.5,
                    "poll_groups": [
                        {
                            "name": "fast",
                            "interval": 0.1,
                            "tags": [
                                {**tag, "name": "f64", "address": 0, "dtype": "float64"},
                                {**tag, "name": "u32", "address": 4, "dtype": "uint32"},
                                {**tag, "name": "i64", "address": 6, "dtype": "int64"},
                                {**tag, "name": "f32", "address": 10, "dtype": "float32"},
                                {
                                    **tag,
                                    "name": "scaled",
                                    "address": 12,
                                    "dtype": "int16",
                                    "scale": 0.01,
                                },
                                {**tag, "name": "temp_f", "address": 13, "dtype": "float32"},
                                {**tag, "name": "vib", "address": 15, "dtype": "float32"},
                                {"name": "run", "register": "coil", "address": 0, "dtype": "bit"},
                                {"name": "trip", "register": "coil", "address": 1, "dtype": "bit"},
                            ],
                        }
                    ],
                }
            ]
        },
        "assets": [
            {
                "name": "M-1",
                "model": "Motor",
                "isa95": {"enterprise": "e", "site": "s", "area": "a", "line": "l"},
                "fields": {
                    "power_kw": {"tag": "plc.f64"},
                    "speed_rpm": {"tag": "plc.u32"},
                    "current_a": {"tag": "plc.i64"},
                    "bearing_temperature_c": {"tag": "plc.f32"},
                    "winding_temperature_c": {"tag": "plc.scaled"},
                    "running": {"tag": "plc.run"},
                    "fault": {"tag": "plc.trip"},
                },
            },
            {
                "name": "P-1",
                "model": "Pump",
                "isa95": {"enterprise": "e", "site": "s", "area": "a", "line": "l"},
                "fields": {
                    "bearing_temperature_c": {"tag": "plc.temp_f", "unit": "degF"},
                    "vibration_velocity_rms_mm_s": {"tag": "plc.vib"},
                },
                "rules": rules or [],
            },
        ],
    }
    return build_config(raw)


def gateway_for(cfg: Any) -> Any:
    from isthmus.gateway.metrics import Metrics
    from isthmus.gateway.pipeline import Gateway
    from isthmus.gateway.sinks import UnsSink

    return Gateway(cfg, UnsSink(cfg.mqtt, cfg.outbox), Metrics())


def states(collector: Any, asset: str) -> list[tuple[bytes, dict[str, Any]]]:
    return [(m.payload, json.loads(m.payload)) for m in collector.on(f"{BASE}/{asset}/state")]


async def test_values_are_published_exactly_as_the_device_gave_them(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with (
        device() as dev,
        collect(mqtt_broker.port, f"{BASE}/#") as collector,
        running(gateway_for(config(dev.port, mqtt_broker, tmp_path))),
    ):
        async with asyncio.timeout(20):
            await collector.wait_for(
                lambda: (
                    any(d["quality"] == "good" for _, d in states(collector, "M-1"))
                    and any(
                        d["payload"]["bearing_temperature_c"] is not None
                        for _, d in states(collector, "P-1")
                    )
                )
            )
    raw, motor = next((r, d) for r, d in states(collector, "M-1") if d["quality"] == "good")
    p = motor["payload"]
    # ints stay ints, float64 round-trips, float32 is its shortest float32 repr
    assert p["power_kw"] == FLOAT64 and b'"power_kw":123456.789' in raw
    assert p["speed_rpm"] == UINT32 and b'"speed_rpm":66192371,' in raw
    assert p["current_a"] == INT64 and b'"current_a":284857027299509239' in raw
    assert b'"bearing_temperature_c":1.88,' in raw
    assert b'"winding_temperature_c":1.88,' in raw  # 188 x 0.01, not 1.8800000000000001
    # bits are bools and do not make the product bad
    assert p["running"] is True and p["fault"] is False
    assert motor["quality"] == "good" and p["field_quality"] == {}
    # a conversion changes the value by the conversion only
    pump = next(d for _, d in states(collector, "P-1") if d["payload"]["bearing_temperature_c"])
    assert pump["payload"]["bearing_temperature_c"] == pytest.approx(
        (TEMP_F32 - 32.0) * 5.0 / 9.0, rel=1e-15, abs=0
    )


async def test_a_device_that_goes_down_makes_its_products_bad_and_the_zone_too(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with (
        collect(mqtt_broker.port, f"{BASE}/#") as collector,
        device() as dev,
        running(gateway_for(config(dev.port, mqtt_broker, tmp_path))),
    ):
        async with asyncio.timeout(20):
            await collector.wait_for(
                lambda: any(
                    d["payload"]["iso20816_zone"] == "D" and d["quality"] != "bad"
                    for _, d in states(collector, "P-1")
                )
            )
        await dev.stop()  # the device dies
        killed = time.time()
        async with asyncio.timeout(20):
            await collector.wait_for(
                lambda: (
                    any(d["quality"] == "bad" for _, d in states(collector, "P-1"))
                    and any(d["quality"] == "bad" for _, d in states(collector, "M-1"))
                )
            )
        await asyncio.sleep(1.0)
    after = [
        d
        for _, d in states(collector, "P-1")
        if _epoch(d["timestamp"]) >= killed or d["quality"] == "bad"
    ]
    bad = [d for d in after if d["quality"] == "bad"]
    assert bad, "no bad product after the device died"
    first_bad = states(collector, "P-1").index(
        next((r, d) for r, d in states(collector, "P-1") if d["quality"] == "bad")
    )
    for _, d in states(collector, "P-1")[first_bad:]:
        # never again a zone published as good from a dead device
        assert d["quality"] == "bad"
        assert d["payload"]["iso20816_zone"] is None
        assert d["payload"]["field_quality"]["iso20816_zone"] == "bad"
        assert d["payload"]["field_quality"]["vibration_velocity_rms_mm_s"] == "bad"
    motor = [d for _, d in states(collector, "M-1") if d["quality"] == "bad"][-1]
    assert motor["payload"]["running"] is None
    assert motor["payload"]["field_quality"]["running"] == "bad"


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def test_alerts_raised_before_a_restart_are_cleared_with_a_reason(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    rule = {
        "name": "vib_high",
        "kind": "threshold",
        "feature": "velocity_rms",
        "raise_at": 4.5,
        "clear_at": 3.5,
        "persist": 1,
    }
    alerts = f"{BASE}/P-1/alerts"
    async with collect(mqtt_broker.port, f"{BASE}/#") as collector:
        async with device() as dev:
            cfg = config(dev.port, mqtt_broker, tmp_path, rules=[rule])
            async with running(gateway_for(cfg)):
                async with asyncio.timeout(20):
                    await collector.wait_for(
                        lambda: any(
                            json.loads(m.payload)["payload"]["state"] == "raised"
                            for m in collector.on(alerts)
                        )
                    )
        # the condition ends while the gateway is down; it starts again
        async with device(velocity=1.0) as dev:
            cfg = config(dev.port, mqtt_broker, tmp_path, rules=[rule])
            async with running(gateway_for(cfg)):
                async with asyncio.timeout(20):
                    await collector.wait_for(
                        lambda: any(
                            json.loads(m.payload)["payload"]["state"] == "cleared"
                            for m in collector.on(alerts)
                        )
                    )
                await asyncio.sleep(0.5)
    cleared = [
        json.loads(m.payload)["payload"]
        for m in collector.on(alerts)
        if json.loads(m.payload)["payload"]["state"] == "cleared"
    ]
    assert [c["alert_id"] for c in cleared] == ["P-1.vib_high"]
    assert "can no longer vouch" in cleared[0]["message"]
    # the retained active list a late subscriber finds is the true (empty) set
    async with collect(mqtt_broker.port, f"{BASE}/P-1/alerts/active") as late:
        async with asyncio.timeout(10):
            await late.wait_for(lambda: bool(late.messages))
    assert late.messages[-1].retain
    assert json.loads(late.messages[-1].payload)["payload"]["alerts"] == []
