"""Waveform acquisition over Modbus TCP from the simulator on loopback.

The simulator runs in its own process (``isthmus simulate``), so the CPU time
measured here is the gateway side alone: the pymodbus client, the block
sequence logic, decoding and the SampleRing push. Figures reported:

* the highest one-channel sample rate (of a short ladder, from 25.6 kHz up)
  acquired without a single gap sample, with 120-sample int16 blocks in a
  64-slot device buffer (one 121-register read per block);
* the client's CPU share (of one core) while acquiring 25.6 kHz.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from isthmus.simulator.vendors import bravo_map
from isthmus.sources.config import ModbusDevice
from isthmus.sources.modbus import ModbusSession
from proto_support import SimulatorProcess, free_port

WARMUP_S = 0.5
MEASURE_S = 1.5
LADDER_HZ = [25600.0, 38400.0, 51200.0, 76800.0, 102400.0]


def acquire(sample_rate: float, seconds: float = MEASURE_S) -> dict[str, float]:
    """Stream one channel at ``sample_rate`` Hz; samples/s received, gap samples, client CPU."""
    port = free_port()
    sim = SimulatorProcess(
        "--pump",
        "B:bravo",
        "--modbus-port",
        str(port),
        "--opcua-port",
        "0",
        "--sample-rate",
        str(sample_rate),
        "--tick",
        "5",
    )
    sim.start()
    try:
        return asyncio.run(_acquire(port, sample_rate, seconds))
    finally:
        sim.kill()


async def _acquire(port: int, sample_rate: float, seconds: float) -> dict[str, float]:
    vmap = bravo_map(sample_rate)
    device = ModbusDevice(
        name="B",
        host="127.0.0.1",
        port=port,
        max_requests_per_second=10_000,
        waveforms=vmap.waveforms,
    )
    async with ModbusSession(device) as session:
        await asyncio.sleep(WARMUP_S)
        stats = session.stats
        samples0, gaps0 = stats.samples, stats.gap_samples
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        return {
            "rate": (stats.samples - samples0) / wall,
            "gap": float(stats.gap_samples - gaps0),
            "cpu_share": cpu / wall,
            "requests_per_block": stats.requests / max(stats.blocks, 1),
        }


def test_modbus_waveform_acquisition(benchmark: pytest.FixtureRequest, report) -> None:  # type: ignore[no-untyped-def]
    results: dict[float, dict[str, float]] = {}

    def ladder() -> None:
        for rate in LADDER_HZ:
            results[rate] = acquire(rate)
            if results[rate]["gap"] > 0:
                break

    benchmark.group = "proto: Modbus waveform acquisition"  # type: ignore[attr-defined]
    benchmark.extra_info["role"] = "isthmus"  # type: ignore[attr-defined]
    benchmark.pedantic(ladder, rounds=1, iterations=1)  # type: ignore[attr-defined]
    gap_free = [rate for rate, r in results.items() if r["gap"] == 0]
    best = max(gap_free, default=0.0)
    report(
        "proto: highest gap-free rate, 1 channel (of ladder)",
        f"{best / 1000:.1f} kHz",
        f"ladder {[f'{r / 1000:g}k' for r in LADDER_HZ]}, target >= 25.6 kHz",
    )
    base = results[LADDER_HZ[0]]
    report(
        "proto: client CPU share at 25.6 kHz",
        f"{100 * base['cpu_share']:.0f} % of a core",
        f"received {base['rate'] / 1000:.1f} kS/s, {base['requests_per_block']:.2f} reads/block",
    )
    for rate, r in results.items():
        report(
            f"proto: at {rate / 1000:g} kHz",
            f"{r['rate'] / 1000:.1f} kS/s",
            f"gap samples {r['gap']:.0f}, CPU {100 * r['cpu_share']:.0f} %",
        )
    assert best >= 25600.0
