"""S7 and EtherNet/IP sources in the gateway: `isthmus check` offline, sessions opened by config."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from isthmus.gateway.contracts import open_sources, source_catalog
from isthmus.sources.config import SourcesConfig, parse
from isthmus.sources.values import TagValue
from proto_support import wait_for
from test_proto_enip import EnipPeer
from test_proto_s7 import S7Peer

CONFIG = """
[[sources.s7]]
name = "line_plc"
host = "127.0.0.1"
port = {s7_port}
backoff_initial = 0.1

[[sources.s7.poll_groups]]
name = "process"
interval = 0.2
tags = [
    {{ name = "temperature", address = "DB1.DBD0:REAL", unit = "degC" }},
    {{ name = "speed", address = "MW10", unit = "rpm" }},
    {{ name = "running", address = "DB1.DBX4.3" }},
]

[[sources.enip]]
name = "clx"
host = "127.0.0.1"
port = {enip_port}
route_path = ""
backoff_initial = 0.1

[[sources.enip.poll_groups]]
name = "process"
interval = 0.2
tags = [
    {{ name = "pressure", tag = "Speed", type = "REAL", unit = "bar" }},
    {{ name = "temps", tag = "Temps[0]", elements = 3 }},
]
attributes = [
    {{ name = "vendor", class_id = 1, instance = 1, attribute = 1, type = "UINT" }},
]

[[assets]]
name = "P-201"
model = "Pump"
isa95 = {{ enterprise = "acme", site = "plant1", area = "utilities", line = "water" }}
fields.speed_rpm = {{ tag = "line_plc.speed" }}
fields.bearing_temperature_c = {{ tag = "line_plc.temperature" }}
fields.discharge_pressure_bar = {{ tag = "clx.pressure" }}
"""


def _isthmus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isthmus.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_check_validates_and_plans_s7_and_enip_offline(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(CONFIG.format(s7_port=1102, enip_port=44818))
    result = _isthmus("check", str(good))
    assert result.returncode == 0, result.stderr
    assert "s7 line_plc: 127.0.0.1:1102 rack 0 slot 1, 3 tags" in result.stdout
    # two areas (DB1, flags): two blocks, one multi-variable read
    assert "poll group 'process' every 0.2 s: 2 blocks in 1 reads (PDU 480)" in result.stdout
    assert "DB1 bytes 0..4: temperature, running" in result.stdout
    assert "enip clx: 127.0.0.1:44818 route none, 2 tags" in result.stdout
    import tomllib

    raw = tomllib.loads(CONFIG.format(s7_port=1102, enip_port=44818))
    errors: list[str] = []
    catalog = source_catalog(parse(SourcesConfig, raw["sources"], "sources"), errors)
    assert not errors
    for ref in ("clx.temps[0]", "clx.temps[2]", "clx.vendor", "line_plc.running"):
        assert catalog.has_tag(ref), ref
    assert catalog.tag_unit("clx.pressure") == "bar"
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.format(s7_port=1102, enip_port=44818).replace("MW10", "MW10:LREAL"))
    result = _isthmus("check", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert (
        "sources.s7[0].poll_groups[0].tags[1]: tag 'speed': address 'MW10:LREAL': "
        "LREAL is 8 bytes, the address 2" in result.stderr
    ), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.network
async def test_sessions_opened_from_config_feed_the_value_callback(tmp_path: Path) -> None:
    s7, enip = S7Peer(tmp_path), EnipPeer(tmp_path)
    s7.start()
    enip.start()
    try:
        import tomllib

        raw = tomllib.loads(CONFIG.format(s7_port=s7.port, enip_port=enip.port))
        sources = parse(SourcesConfig, raw["sources"], "sources")
        seen: dict[str, TagValue] = {}

        def on_values(values: list[TagValue]) -> None:
            seen.update({f"{v.source}.{v.tag}": v for v in values})

        opened = open_sources(sources, on_values)
        assert [(s.name, s.kind) for s in opened] == [("line_plc", "s7"), ("clx", "enip")]
        tasks = [asyncio.create_task(s.run()) for s in opened]
        try:
            want = {
                "line_plc.temperature", "line_plc.speed", "clx.pressure", "clx.temps[2]",
                "clx.vendor",
            }  # fmt: skip
            assert await wait_for(lambda: all(seen.get(k) and seen[k].good for k in want), 15)
        finally:
            for source in opened:
                await source.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert seen["line_plc.temperature"].value == 61.5
        assert seen["line_plc.speed"].value == 1480
        assert seen["line_plc.running"].value is True
        assert seen["clx.pressure"].value == 0.0
        assert seen["clx.vendor"].value == 1
        figures = {name for source in opened for name, *_ in source.figures()}
        assert "isthmus_source_requests" in figures
    finally:
        s7.kill()
        enip.kill()


def test_probe_does_not_call_unprobed_s7_and_enip_sources_ok(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(s7_port=1102, enip_port=44818))
    result = _isthmus("check", "--probe", str(config))
    assert result.returncode != 0, result.stdout
    assert "s7 line_plc 127.0.0.1:1102: NOT PROBED" in result.stdout
    assert "enip clx 127.0.0.1:44818: NOT PROBED" in result.stdout
    assert "probe OK" not in result.stdout
