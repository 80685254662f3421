"""The server is SIGKILLed mid-run and restarted on the same port: the sessions recover."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

from isthmus.simulator.vendors import CHARLIE_VARIABLES, bravo_map
from isthmus.sources.config import ModbusDevice, OpcUaEndpoint, OpcUaNode
from isthmus.sources.modbus import ModbusSession
from isthmus.sources.opcua import OpcUaSession
from isthmus.sources.values import Quality, TagValue
from proto_support import (
    SimulatorProcess,
    drain_and_check_ramp,
    free_port,
    ramp_index,
    wait_for,
)

pytestmark = [pytest.mark.network, pytest.mark.slow]


async def test_modbus_server_restart_resumes_with_the_gap_reported() -> None:
    port = free_port()
    args = [
        "--pump",
        "B:bravo",
        "--modbus-port",
        str(port),
        "--opcua-port",
        "0",
        "--test-pattern",
        "--tick",
        "0.5",
    ]
    sim = SimulatorProcess(*args)
    sim.start()
    vmap = bravo_map()
    dev = ModbusDevice(
        name="B",
        host="127.0.0.1",
        port=port,
        request_timeout=0.5,
        backoff_initial=0.2,
        backoff_max=1.0,
        max_requests_per_second=5000,
        poll_groups=[vmap.poll_group(0.2)],
        waveforms=vmap.waveforms,
        waveform_reader="pymodbus",
    )
    blocks: list[tuple[np.ndarray, int]] = []
    values: list[TagValue] = []
    try:
        session = ModbusSession(
            dev, values.extend, on_block=lambda c, s, g: blocks.append((s.copy(), g))
        )
        reader = session.rings["de_accel"].reader()
        async with session:
            assert await wait_for(lambda: len(blocks) > 50, 15)
            sim.kill()
            killed_at = time.monotonic()
            assert await wait_for(
                lambda: any((v.reason or "").startswith("not connected") for v in values), 10
            )
            await asyncio.sleep(0.5)
            n_before = len(blocks)
            await asyncio.to_thread(sim.start)  # the session keeps running meanwhile
            outage = time.monotonic() - killed_at
            assert await wait_for(lambda: len(blocks) > n_before + 50, 20)
            assert await wait_for(lambda: values[-1].good, 5)
            stats = session.stats.snapshot()
    finally:
        sim.kill()
    assert stats["reconnects"] >= 1
    # every sample follows the previous one, or the reported gap exactly: no
    # duplicates, no reordering, nothing lost silently
    expected_next = None
    gaps = []
    for samples, gap in blocks:
        idx = ramp_index(samples)
        assert np.all(np.diff(idx) % 16384 == 1)
        if expected_next is not None:
            assert idx[0] == (expected_next + gap) % 16384
        if gap:
            gaps.append(gap)
        expected_next = (idx[-1] + 1) % 16384
    assert gaps, "the outage must be reported as a gap"
    lost_seconds = sum(gaps) / vmap.waveforms[0].sample_rate
    assert 0.3 * outage < lost_seconds < outage + 5.0
    # the ring holds the same story: each sample at its index, the outage as a gap
    read, lost = drain_and_check_ramp(reader)
    assert (read, lost) == (sum(s.shape[1] for s, _ in blocks), sum(gaps))
    bad = [v for v in values if v.quality is Quality.BAD]
    assert bad and all(v.value is None for v in bad)


async def test_rust_waveform_reader_survives_a_killed_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGKILL the device mid-stream: the Rust reader reconnects, the outage is an exact gap."""
    port = free_port()
    sim = SimulatorProcess(
        "--pump", "B:bravo", "--modbus-port", str(port), "--opcua-port", "0", "--test-pattern"
    )
    sim.start()
    vmap = bravo_map()
    dev = ModbusDevice(
        name="B",
        host="127.0.0.1",
        port=port,
        request_timeout=0.5,
        backoff_initial=0.2,
        backoff_max=1.0,
        max_requests_per_second=5000,
        waveforms=vmap.waveforms,  # waveform_reader = "rust", the default
    )
    try:
        session = ModbusSession(dev)
        ring = session.rings["de_accel"]
        reader = ring.reader()
        async with session:
            assert await wait_for(lambda: ring.written > 50 * 120, 15)
            sim.kill()
            killed_at = time.monotonic()
            assert await wait_for(lambda: session.stats.waveform_connected is False, 10)
            assert not session.stats.connected  # no poll groups: the reader's connection
            await asyncio.sleep(0.5)
            written = ring.written
            await asyncio.to_thread(sim.start)  # the session keeps running meanwhile
            outage = time.monotonic() - killed_at
            assert await wait_for(lambda: ring.written > written + 100 * 120, 20)
            assert await wait_for(lambda: session.stats.waveform_connected is True, 5)
        stats = session.stats.snapshot()  # closed: the final counts
        last_error = session.last_error
    finally:
        sim.kill()
    assert stats["reconnects"] >= 1
    assert last_error  # the lost connection, as the supervisor saw it
    assert "waveform reader: connection lost" in caplog.text
    lost_seconds = stats["gap_samples"] / vmap.waveforms[0].sample_rate
    assert 0.3 * outage < lost_seconds < outage + 5.0
    # the ring holds the story: each sample at its index, the outage as the counted gap
    read, lost = drain_and_check_ramp(reader)
    assert (read, lost) == (stats["samples"], stats["gap_samples"])


async def test_opcua_server_restart_recreates_session_and_subscriptions(tmp_path: Path) -> None:
    port = free_port()
    truth_file = tmp_path / "truth.json"
    sim = SimulatorProcess(
        "--pump",
        "C:charlie:1480",
        "--opcua-port",
        str(port),
        "--tick",
        "0.3",
        "--truth-file",
        str(truth_file),
    )
    sim.start()
    nodes = [
        OpcUaNode(node_id=f"ns=2;s=C.{name}", name=name, sampling_interval=0.1, unit=unit)
        for name, (unit, _) in CHARLIE_VARIABLES.items()
    ]
    endpoint = OpcUaEndpoint(
        name="C",
        url=f"opc.tcp://127.0.0.1:{port}/isthmus/",
        nodes=nodes,
        keepalive_interval=0.5,
        backoff_initial=0.2,
        backoff_max=1.0,
        timeout=2.0,
    )
    values: list[TagValue] = []
    try:
        async with OpcUaSession(endpoint, values.extend) as session:
            assert await wait_for(
                lambda: any(v.tag == "BearingTemperature" and v.good for v in values), 15
            )
            sim.kill()
            assert await wait_for(
                lambda: any((v.reason or "").startswith("not connected") for v in values), 15
            )
            restarted = time.time()
            await asyncio.to_thread(sim.start)
            fresh = lambda: [  # noqa: E731
                v
                for v in values
                if v.tag == "BearingTemperature" and v.good and v.gateway_time > restarted
            ]
            assert await wait_for(lambda: len(fresh()) >= 2, 30)  # value changes flow again
            assert session.stats.sessions >= 2
    finally:
        sim.kill()
    # the subprocess publishes its ground truth for tests like this one
    truth = json.loads(truth_file.read_text())["C"]
    speeds = {v.value for v in values if v.tag == "ShaftSpeed" and v.good}
    assert speeds == {truth["speed_rpm"]} == {1480.0}
