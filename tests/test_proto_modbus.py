"""Modbus TCP sessions against the simulator's real pymodbus servers on loopback."""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from isthmus.simulator import PumpConfig, Simulator
from isthmus.simulator.vendors import Point
from isthmus.sources.config import ModbusDevice, PollGroup, TagSpec
from isthmus.sources.modbus import ModbusSession, ModbusSources, plan_device
from isthmus.sources.values import Quality, TagValue
from proto_support import drain_and_check_ramp, free_port, ramp_index, wait_for

pytestmark = pytest.mark.network


@pytest.fixture
async def plant() -> AsyncIterator[Simulator]:
    """An acme and a bravo pump, process values frozen (the test ticks them)."""
    sim = Simulator(
        [
            PumpConfig("P-101", "acme", 1797.0, free_port()),
            PumpConfig("P-102", "bravo", 2950.0, free_port()),
        ],
        tick_interval=0,
        waveform_test_pattern=True,
    )
    async with sim:
        yield sim


def device(sim: Simulator, pump: str, **kw: object) -> ModbusDevice:
    server = sim.modbus[pump]
    args: dict[str, object] = {"name": pump, "host": "127.0.0.1", "port": server.port}
    args.update(kw)
    return ModbusDevice(**args)  # type: ignore[arg-type]


class Collector:
    """Latest value per tag, and every value seen."""

    def __init__(self) -> None:
        self.latest: dict[str, TagValue] = {}
        self.history: dict[str, list[TagValue]] = defaultdict(list)

    def __call__(self, values: list[TagValue]) -> None:
        for v in values:
            self.latest[v.tag] = v
            self.history[v.tag].append(v)

    def good(self, names: list[str]) -> bool:
        return all(n in self.latest and self.latest[n].good for n in names)


def assert_matches_truth(point: Point, got: TagValue, truth: object) -> None:
    expected = point.value(truth)  # type: ignore[arg-type]
    assert got.quality is Quality.GOOD, (point.name, got.reason)
    if isinstance(expected, bool) or point.dtype == "bit":
        assert got.value == expected, point.name
    elif point.dtype.startswith("float"):
        assert got.value == pytest.approx(expected, rel=1e-6), point.name
    else:  # fixed point: within half a count
        assert abs(got.value - expected) <= point.scale / 2 + 1e-9, (
            point.name,
            got.value,
            expected,
        )  # type: ignore[operator]
    assert got.unit == point.unit


@pytest.mark.parametrize("pump", ["P-101", "P-102"])
async def test_decoded_values_equal_simulator_truth(plant: Simulator, pump: str) -> None:
    vmap = plant.maps[pump]
    names = [p.name for p in vmap.points]
    for step in range(2):  # two different process states
        if step:
            plant.pumps[pump].tick(time.time() + 137.0)
        values = Collector()
        async with ModbusSession(device(plant, pump, poll_groups=[vmap.poll_group(0.1)]), values):
            version = plant.truth(pump).version
            assert await wait_for(lambda v=values: v.good(names), 10)
        truth = plant.truth(pump)
        assert truth.version == version
        for point in vmap.points:
            assert_matches_truth(point, values.latest[point.name], truth)


async def test_coalescing_issues_the_planned_requests_counted_at_the_server(
    plant: Simulator,
) -> None:
    vmap = plant.maps["P-101"]
    dev = device(plant, "P-101", poll_groups=[vmap.poll_group(interval=3600)], max_gap=8)
    plan = plan_device(dev)
    reads = [(r.register, r.start, r.count) for r in plan.groups[0].requests]
    # 10 holding tags in 0..21 coalesce into one read; firmware at 40 is too far
    assert reads == [("coil", 0, 1), ("discrete", 0, 2), ("holding", 0, 22), ("holding", 40, 1)]
    server = plant.modbus["P-101"]
    values = Collector()
    async with ModbusSession(dev, values) as values_session:
        assert await wait_for(lambda: values.good([p.name for p in vmap.points]), 10)
        await asyncio.sleep(0.2)  # nothing else may arrive: the next round is an hour away
    assert sum(server.requests.values()) == len(reads) == 4
    assert sorted(server.log) == sorted(reads)
    stats = values_session.stats.snapshot()
    assert stats["requests"] == 4 and stats["errors"] == 0 and stats["timeouts"] == 0
    assert (
        stats["latency_p50_ms"] is not None and stats["latency_p99_ms"] >= stats["latency_p50_ms"]
    )
    assert stats["last_good_read"] is not None and stats["last_good_read"] <= time.time()
    assert len(vmap.points) == 14  # one read per tag would have been 14 requests


async def test_wider_gap_setting_merges_more(plant: Simulator) -> None:
    tags = [
        p.tag() for p in plant.maps["P-101"].points if p.register == "holding" and p.address < 25
    ]
    tight = plan_device(
        device(plant, "P-101", poll_groups=[PollGroup(name="g", interval=1, tags=tags)], max_gap=0)
    )
    loose = plan_device(
        device(plant, "P-101", poll_groups=[PollGroup(name="g", interval=1, tags=tags)], max_gap=8)
    )
    assert [(r.start, r.count) for r in tight.groups[0].requests] == [(0, 5), (10, 3), (20, 2)]
    assert [(r.start, r.count) for r in loose.groups[0].requests] == [(0, 22)]


async def test_rejected_tag_is_isolated_and_the_others_keep_flowing(plant: Simulator) -> None:
    acme = {p.name: p for p in plant.maps["P-101"].points}
    tags = [
        acme["speed"].tag(),
        acme["temperature"].tag(),
        acme["run_hours"].tag(),
        acme["firmware"].tag(),
    ]
    tags.append(TagSpec(name="bogus", address=30, dtype="uint16"))  # unmapped: illegal data address
    dev = device(
        plant, "P-101", poll_groups=[PollGroup(name="g", interval=0.2, tags=tags)], max_gap=20
    )
    session = ModbusSession(dev, values := Collector())
    assert [(r.start, r.count) for r in session.plan.groups[0].requests] == [(0, 41)]
    server = plant.modbus["P-101"]
    async with session:
        good = ["speed", "temperature", "run_hours", "firmware"]
        assert await wait_for(lambda: values.good(good) and "bogus" in values.latest, 10)
        bogus = values.latest["bogus"]
        assert bogus.quality is Quality.BAD and bogus.value is None
        assert "illegal data address" in (bogus.reason or "")
        truth = plant.truth("P-101")
        for name in good:
            assert_matches_truth(acme[name], values.latest[name], truth)
        # the plan now holds the bogus tag alone, marked rejected
        requests = session.plan.groups[0].requests
        alone = [r for r in requests if [t.name for t in r.tags] == ["bogus"]]
        assert len(alone) == 1 and alone[0].rejected
        before = len(server.log)
        rounds = len(values.history["speed"])
        assert await wait_for(lambda: len(values.history["speed"]) >= rounds + 3, 10)
        new = list(server.log)[before:]
        assert new, "the healthy tags must have been read again"
        # later rounds read only the healthy blocks: no more failing requests
        assert all(not (start <= 30 < start + count) for _, start, count in new)
        assert session.stats.errors >= 1


async def test_dead_device_does_not_slow_the_others(plant: Simulator) -> None:
    plant.modbus["P-101"].hang = True  # stops answering (TCP still accepts)
    interval = 0.1
    dead = device(
        plant,
        "P-101",
        request_timeout=0.3,
        backoff_initial=0.2,
        backoff_max=0.5,
        poll_groups=[plant.maps["P-101"].poll_group(interval)],
    )
    alive = device(plant, "P-102", poll_groups=[plant.maps["P-102"].poll_group(interval)])
    dead_values, alive_values = Collector(), Collector()
    by_source = {"P-101": dead_values, "P-102": alive_values}

    def route(values: list[TagValue]) -> None:  # one callback for all devices
        for v in values:
            by_source[v.source]([v])

    async with ModbusSources([dead, alive], route) as sources:
        s_dead, s_alive = sources.sessions["P-101"], sources.sessions["P-102"]
        await asyncio.sleep(0.3)
        start_rounds = len(alive_values.history["speed"])
        t0 = time.monotonic()
        await asyncio.sleep(2.0)
        elapsed = time.monotonic() - t0
        rounds = len(alive_values.history["speed"]) - start_rounds
    assert s_dead.stats.timeouts >= 2
    assert dead_values.latest["speed"].quality is Quality.BAD
    reason = dead_values.latest["speed"].reason or ""
    assert reason == "timeout" or reason.startswith("not connected")
    # the healthy device kept its pace (generous margin for a loaded CI machine)
    assert rounds >= 0.5 * elapsed / interval
    assert all(v.good for v in alive_values.history["speed"])
    assert s_alive.stats.timeouts == 0


async def test_request_rate_limit_is_honoured_at_the_server(plant: Simulator) -> None:
    tags = [p.tag() for p in plant.maps["P-101"].points]
    dev = device(
        plant,
        "P-101",
        max_requests_per_second=20.0,
        max_gap=0,
        poll_groups=[PollGroup(name="fast", interval=0.01, tags=tags)],
    )
    server = plant.modbus["P-101"]
    async with ModbusSession(dev, Collector()) as session:
        assert session.plan.request_count >= 6  # would be > 600 requests/s unthrottled
        await asyncio.sleep(0.5)
        before, t0 = sum(server.requests.values()), time.monotonic()
        await asyncio.sleep(1.5)
        sent, elapsed = sum(server.requests.values()) - before, time.monotonic() - t0
    assert sent <= 20.0 * elapsed + 2
    assert sent >= 10  # and it did not stop either


async def test_waveform_stream_is_continuous_and_gaps_are_exact(plant: Simulator) -> None:
    """The pymodbus reader: every block handed to on_block follows the last, or the gap."""
    vmap = plant.maps["P-102"]
    blocks: list[tuple[np.ndarray, int]] = []
    dev = device(
        plant,
        "P-102",
        max_requests_per_second=5000,
        waveforms=vmap.waveforms,
        waveform_reader="pymodbus",
    )
    session = ModbusSession(dev, on_block=lambda ch, s, gap: blocks.append((s.copy(), gap)))
    reader = session.rings["de_accel"].reader()
    async with session:
        assert await wait_for(lambda: len(blocks) > 50, 10)
        # stall the device for longer than its 64-slot buffer (0.3 s) holds
        plant.modbus["P-102"].delay = 0.5
        await asyncio.sleep(0.6)
        plant.modbus["P-102"].delay = 0.0
        n = len(blocks)
        assert await wait_for(lambda: len(blocks) > n + 50, 10)
    expected_next = None
    total_gap = 0
    for samples, gap in blocks:
        idx = ramp_index(samples)
        assert np.all(np.diff(idx) % 16384 == 1)  # in order, nothing repeated inside a block
        if expected_next is not None:
            assert idx[0] == (expected_next + gap) % 16384  # the gap is exactly what is missing
        expected_next = (idx[-1] + 1) % 16384
        total_gap += gap
    assert total_gap > 0  # the stall lost blocks, and they were reported
    assert session.stats.gap_samples == total_gap
    assert session.stats.samples == sum(s.shape[1] for s, _ in blocks)
    # the ring agrees: every sample at its index, the same gaps
    read, lost = drain_and_check_ramp(reader)
    assert (read, lost) == (session.stats.samples, total_gap)


async def test_rust_reader_stream_is_continuous_and_gaps_are_exact(plant: Simulator) -> None:
    """The Rust reader, same stall: the ring holds every sample at its index, gaps exact."""
    vmap = plant.maps["P-102"]
    dev = device(plant, "P-102", max_requests_per_second=5000, waveforms=vmap.waveforms)
    session = ModbusSession(dev)
    ring = session.rings["de_accel"]
    reader = ring.reader()
    server = plant.modbus["P-102"]
    async with session:
        assert await wait_for(lambda: ring.written > 50 * 120, 10)
        await asyncio.sleep(0.3)  # the supervisor has carried the counters over
        assert session.stats.waveform_connected is True and session.stats.connected is True
        before = session.stats.gap_samples
        # stall the device for longer than its 64-slot buffer (0.3 s) holds
        server.delay = 0.5
        await asyncio.sleep(0.6)
        server.delay = 0.0
        n = ring.written
        assert await wait_for(lambda: ring.written > n + 50 * 120, 10)
    stats = session.stats
    assert stats.gap_samples > before  # the stall lost blocks, and they were reported
    assert stats.gap_samples % 120 == 0 and stats.samples % 120 == 0
    assert stats.blocks * 120 == stats.samples
    assert stats.samples + stats.gap_samples == ring.written
    assert ring.total_gap == stats.gap_samples
    assert stats.requests >= stats.blocks and stats.latency_ms(50) is not None
    # only reads of holding registers reached the device
    assert set(server.requests) == {"holding"}, server.requests
    # every sample at its index, the same gaps
    read, lost = drain_and_check_ramp(reader)
    assert (read, lost) == (stats.samples, stats.gap_samples)
    assert not session._waves.running  # closing stopped the thread


async def test_rust_reader_and_polls_share_the_device_rate_limit(plant: Simulator) -> None:
    """Polls (pymodbus) and the Rust waveform thread book one per-device request budget."""
    vmap = plant.maps["P-102"]
    dev = device(
        plant,
        "P-102",
        max_requests_per_second=150.0,
        poll_groups=[vmap.poll_group(0.01)],
        waveforms=vmap.waveforms,
    )
    server = plant.modbus["P-102"]
    values = Collector()
    async with ModbusSession(dev, values) as session:
        assert await wait_for(lambda: session.rings["de_accel"].written > 0, 10)
        await asyncio.sleep(0.3)
        before, t0 = sum(server.requests.values()), time.monotonic()
        await asyncio.sleep(1.5)
        sent, elapsed = sum(server.requests.values()) - before, time.monotonic() - t0
        assert await wait_for(lambda: session.stats.gap_samples > 0, 5)
    assert sent <= 150.0 * elapsed + 3  # both wanted > 300 requests/s
    assert sent >= 60 * elapsed
    assert values.good([p.name for p in vmap.points][:1])
    assert session.stats.blocks > 0


def test_rust_waveform_client_has_no_write_function_code() -> None:
    """Read-only by construction: the Rust client can name function codes 3 and 4 only."""
    root = Path(__file__).resolve().parent.parent / "rust"
    client = (root / "core" / "src" / "modbus_tcp.rs").read_text()
    # the one enum of request functions has two members, mapped to 3 and 4
    enum = re.search(r"pub enum ReadFunction \{(.*?)\}", client, re.S)
    assert enum is not None
    members = re.findall(r"^\s*(\w+),\s*$", enum.group(1), re.M)
    assert members == ["HoldingRegisters", "InputRegisters"]
    codes = re.findall(r"ReadFunction::(\w+) => (\d+),", client)
    assert codes == [("HoldingRegisters", "3"), ("InputRegisters", "4")]
    # one request frame is ever sent, and its function byte comes from that enum
    code = client.split("#[cfg(test)]")[0]
    assert code.count("write_all(") == 1 and "write_all(&request)" in code
    frames = re.findall(r"let request = \[(.*?)\];", code, re.S)
    assert len(frames) == 1
    assert [f.strip() for f in frames[0].split(",")][7] == "function.code()"
    # no write function code (5, 6, 15, 16, 22, 23) or write-named API in any Rust reader file
    writes = re.compile(
        r"\bwrite_(coil|register|multiple|single)|\b(0x0[56]|0x0[fF]|0x10|0x1[67])\b"
    )
    for path in [
        root / "core" / "src" / "modbus_tcp.rs",
        root / "core" / "src" / "waveform.rs",
        root / "py" / "src" / "waveform.rs",
    ]:
        assert not writes.findall(path.read_text()), path
    # and the scan does find such a thing where it exists
    assert writes.findall("const WRITE: u8 = 0x10; fn write_register()")


def test_no_code_path_writes_to_a_device() -> None:
    """Read-only toward OT: the sources never call a Modbus write or an OPC UA write/method."""
    package = Path(__import__("isthmus.sources", fromlist=["x"]).__file__).parent
    modbus_writes = re.compile(
        r"\b(write_coils?|write_registers?|readwrite_registers|mask_write_register|"
        r"write_file_record|WriteSingle\w*|WriteMultiple\w*)\b"
    )
    opcua_writes = re.compile(
        r"\b(write_value|write_attribute|write_params|set_value|call_method)\b|\.call\("
    )
    sources = sorted(package.glob("*.py"))
    assert {p.name for p in sources} >= {"modbus.py", "opcua.py"}
    for path in sources:
        text = path.read_text()
        assert not modbus_writes.findall(text), path
        assert not opcua_writes.findall(text), path
    # the checks do find such calls where they exist (the simulator writes its own values)
    sim_text = (package.parent / "simulator" / "opcua_server.py").read_text()
    assert opcua_writes.findall(sim_text)


@pytest.mark.parametrize("reader", ["rust", "pymodbus"])
async def test_waveform_samples_equal_the_simulated_vibration(reader: str) -> None:
    """Real vibration (outer-race fault), not the ramp: each block is the truth within a count."""
    sim = Simulator([PumpConfig("P-102", "bravo", 2950.0, free_port())], tick_interval=0)
    sim.inject("P-102", "outer_race", 0.7)
    block_cfg = sim.maps["P-102"].waveforms[0]
    n = block_cfg.samples
    blocks: list[np.ndarray] = []
    async with sim:
        dev = device(
            sim,
            "P-102",
            max_requests_per_second=5000,
            waveforms=[block_cfg],
            waveform_reader=reader,
        )
        if reader == "pymodbus":
            async with ModbusSession(dev, on_block=lambda ch, s, gap: blocks.append(s.copy())):
                assert await wait_for(lambda: len(blocks) >= 20, 10)
        else:
            session = ModbusSession(dev)
            ring = session.rings["de_accel"]
            async with session:
                assert await wait_for(lambda: ring.written >= 40 * n, 10)
                # the newest 20 blocks, oldest first (gaps are whole blocks: aligned)
                blocks = list(ring.latest(20 * n).reshape(20, 1, n))
    pump = sim.pumps["P-102"]
    # find the block index of the last block received (it is recent), then walk back
    newest = int(time.time() * block_cfg.sample_rate / n)
    last = blocks[-1][0]
    k = next(
        k
        for k in range(newest, newest - 2000, -1)
        if np.max(np.abs(pump.waveform(0, k * n, n) - last)) <= block_cfg.scale
    )
    consecutive = 0
    for i, got in enumerate(reversed(blocks)):
        expected = pump.waveform(0, (k - i) * n, n)
        if np.max(np.abs(expected - got[0])) > block_cfg.scale / 2 + 1e-6:
            break  # an earlier gap: the walk back ends here
        consecutive += 1
    assert consecutive >= 10
    assert np.max(np.abs(np.concatenate([b[0] for b in blocks]))) > 0.5  # the impacts are there


async def test_reconnects_back_off_exponentially() -> None:
    port = free_port()  # nobody listens here
    dev = ModbusDevice(
        name="gone",
        host="127.0.0.1",
        port=port,
        backoff_initial=0.1,
        backoff_max=0.8,
        connect_timeout=0.5,
        poll_groups=[PollGroup(name="g", interval=0.1, tags=[TagSpec(name="x", address=0)])],
    )
    values = Collector()
    async with ModbusSession(dev, values) as session:
        await asyncio.sleep(2.5)
    # waits of 0.05-0.1, 0.1-0.2, 0.2-0.4, then 0.4-0.8 s: between 4 and 10 attempts in 2.5 s
    # (without backoff it would be hundreds)
    assert 4 <= session.stats.reconnects <= 10
    assert values.latest["x"].quality is Quality.BAD
    assert "not connected" in (values.latest["x"].reason or "")
    assert session.stats.requests == 0  # nothing was ever sent


async def test_rejected_waveform_does_not_stop_the_polls(
    plant: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    from isthmus.sources.config import WaveformBlock

    wrong = WaveformBlock(
        name="vib", channel="x", sample_rate=25600.0, address=101, sequence_address=100, samples=120
    )  # acme has no waveform buffer
    vmap = plant.maps["P-101"]
    dev = device(plant, "P-101", poll_groups=[vmap.poll_group(0.1)], waveforms=[wrong])
    values = Collector()
    session = ModbusSession(dev, values)
    # the default 50 requests/s cannot carry 25.6 kHz in 120-sample blocks: said up front
    assert "needs 213 requests/s" in caplog.text
    async with session:
        assert await wait_for(lambda: "waveform vib" in (session.last_error or ""), 10)
        rounds = len(values.history["speed"])
        assert await wait_for(lambda: len(values.history["speed"]) >= rounds + 3, 10)
    assert "illegal data address" in (session.last_error or "")
    assert session.stats.reconnects == 0 and session.stats.blocks == 0
    assert all(v.good for v in values.history["speed"])


async def test_a_failing_consumer_does_not_end_the_session(
    plant: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception out of on_values is logged and the device reconnects; reading goes on."""
    vmap = plant.maps["P-101"]
    batches: list[list[TagValue]] = []

    def flaky(values: list[TagValue]) -> None:
        batches.append(values)
        if len(batches) == 1:
            raise RuntimeError("consumer bug")

    dev = device(
        plant,
        "P-101",
        poll_groups=[vmap.poll_group(0.1)],
        backoff_initial=0.1,
        backoff_max=0.2,
    )
    async with ModbusSession(dev, flaky) as session:
        assert await wait_for(lambda: sum(v.good for b in batches[1:] for v in b) >= 20, 10)
    assert session.stats.reconnects >= 1
    assert "consumer bug" in caplog.text and "session failed" in caplog.text


def test_rust_reader_refuses_a_per_block_callback_and_bad_blocks() -> None:
    """on_block is a Python call per block: only the pymodbus reader makes it; the Rust
    binding names the waveform at fault in its own checks too."""
    import isthmus
    from isthmus import _core
    from isthmus.errors import ConfigError, SessionError
    from isthmus.simulator.vendors import bravo_map

    dev = ModbusDevice(name="d", host="127.0.0.1", waveforms=bravo_map().waveforms)
    with pytest.raises(SessionError, match="on_block needs waveform_reader = 'pymodbus'"):
        ModbusSession(dev, on_block=lambda ch, s, gap: None)
    waves = _core.WaveformAcquisition("127.0.0.1", 502, _core.ModbusRateLimiter(10.0))
    block = {
        "register": "holding",
        "address": 1001,
        "sequence_address": 1000,
        "samples": 120,
        "slots": 64,
        "stride": 121,
        "dtype": "int16",
        "order": "ABCD",
        "scale": 1.0,
        "sample_rate": 25600.0,
    }
    ring = isthmus.SampleRing(1, 1024, 25600.0)
    with pytest.raises(ConfigError, match=r"^waveform \"vib\": 126 registers in one read"):
        waves.add_block("vib", ring, **{**block, "samples": 125, "stride": 126})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^waveform \"vib\": register \"coil\""):
        waves.add_block("vib", ring, **{**block, "register": "coil"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^waveform \"vib\": the ring has 2 channels"):
        waves.add_block("vib", isthmus.SampleRing(2, 1024, 25600.0), **block)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="request_timeout must be > 0"):
        _core.WaveformAcquisition(
            "127.0.0.1", 502, _core.ModbusRateLimiter(10.0), request_timeout=0.0
        )
    with pytest.raises(ConfigError, match="max_requests_per_second must be at least one a day"):
        _core.ModbusRateLimiter(0.0)


@pytest.mark.parametrize("reader", ["rust", "pymodbus"])
async def test_float32_input_register_block_with_a_separate_counter_equals_struct(
    reader: str,
) -> None:
    """A plain pymodbus server holding one float32 CDAB block in input registers, its counter
    apart (read around the samples): both readers push exactly what struct decodes, scaled."""
    import struct

    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    from isthmus.sources.config import WaveformBlock

    rng = np.random.default_rng(7)
    truth = rng.normal(0.0, 3.0, 8).astype(np.float32)
    words: list[int] = []
    for value in truth:  # CDAB: the low word first
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        words += [low, high]
    registers = [0] * 64
    registers[10], registers[26] = 6, 7  # slot 0 holds block 6, slot 1 block 7 (the newest)
    registers[36:52] = words  # block 7's samples; block 6's stay zero
    port = free_port()
    device = SimDevice(
        1,
        simdata=(
            [SimData(65520, values=[False] * 16, datatype=DataType.BITS, readonly=True)],
            [SimData(65520, values=[False] * 16, datatype=DataType.BITS, readonly=True)],
            [SimData(65535, count=1, datatype=DataType.INVALID)],
            [SimData(0, values=registers, datatype=DataType.REGISTERS, readonly=True)],
        ),
    )
    functions: list[int] = []

    def trace(sending: bool, pdu: object) -> object:
        if not sending:
            functions.append(int(pdu.function_code))  # type: ignore[attr-defined]
        return pdu

    server = ModbusTcpServer([device], address=("127.0.0.1", port), trace_pdu=trace)
    await server.serve_forever(background=True)
    block = WaveformBlock(
        name="vib",
        channel="x",
        sample_rate=100.0,
        address=20,
        sequence_address=10,
        samples=8,
        slots=2,
        stride=16,
        dtype="float32",
        register="input",
        order="CDAB",
        scale=2.0,
    )
    dev = ModbusDevice(
        name="f",
        host="127.0.0.1",
        port=port,
        waveforms=[block],
        waveform_reader=reader,  # type: ignore[arg-type]
    )
    try:
        session = ModbusSession(dev)
        ring = session.rings["x"]
        async with session:
            assert await wait_for(lambda: ring.written >= 8, 10)
    finally:
        await server.shutdown()
    got = ring.latest(8)[0]
    assert np.array_equal(got, truth * np.float32(2.0))  # exact: float32 times 2
    assert ring.written == 8 and session.stats.gap_samples == 0
    assert functions and set(functions) == {4}  # input registers only, nothing else
