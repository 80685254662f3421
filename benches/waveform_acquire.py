"""Waveform acquisition alone, in its own process, for bench_waveform.py.

``python benches/waveform_acquire.py MODE FIRST_PORT COUNT WARMUP_S WINDOW_S`` follows
the ``bravo`` block buffer of COUNT devices on consecutive ports and prints one JSON
line: this process's CPU seconds over the window (all threads), wall seconds, and the
blocks, samples, gap samples and requests of the window.

MODE:
* ``bare``: the baseline, a bare pymodbus asyncio loop per device following the same
  block sequence (newest block by binary search, then slot by slot; half a block
  period's sleep when not written yet), samples decoded with numpy into a buffer;
  no rate limit, no timeouts, no ring, no statistics;
* ``rust`` / ``pymodbus``: :class:`isthmus.sources.modbus.ModbusSession` per device with
  that ``waveform_reader`` (rings, gaps, rate limit, timeouts, statistics).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import numpy as np

SAMPLES = 120
SLOTS = 64
BASE = 1000
STRIDE = SAMPLES + 1
RATE = 25600.0
PERIOD = SAMPLES / RATE


class Counts:
    def __init__(self) -> None:
        self.blocks = self.samples = self.gap_samples = self.requests = 0


async def bare_follow(port: int, counts: Counts) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    buffer = np.zeros(int(RATE * 10), dtype=np.float32)
    at = 0

    async def seq_of(slot: int) -> int:
        counts.requests += 1
        r = await client.read_holding_registers(BASE + slot * STRIDE, count=1)
        return int(r.registers[0])

    async def newest() -> int:
        k0 = await seq_of(0)
        lo, hi = 0, SLOTS - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if (await seq_of(mid) - k0) & 0xFFFF == mid:
                lo = mid
            else:
                hi = mid - 1
        return (k0 + lo) & 0xFFFF

    expected = await newest()
    while True:
        counts.requests += 1
        r = await client.read_holding_registers(BASE + (expected % SLOTS) * STRIDE, count=STRIDE)
        regs = r.registers
        d = (regs[0] - expected) & 0xFFFF
        if d == 0:
            block = np.asarray(regs[1:], dtype=np.uint16).view(np.int16) * np.float32(0.0005)
            end = at + SAMPLES
            if end > len(buffer):
                at, end = 0, SAMPLES
            buffer[at:end] = block
            at = end
            counts.blocks += 1
            counts.samples += SAMPLES
            expected += 1
        elif d < 0x8000:
            target = (await newest() - expected) & 0xFFFF
            counts.gap_samples += target * SAMPLES
            expected += target
        else:
            await asyncio.sleep(PERIOD / 2)


def session_counts(sessions: list[Any]) -> Counts:
    c = Counts()
    for s in sessions:
        c.blocks += s.stats.blocks
        c.samples += s.stats.samples
        c.gap_samples += s.stats.gap_samples
        c.requests += s.stats.requests
    return c


async def main(mode: str, first_port: int, count: int, warmup: float, window: float) -> None:
    ports = [first_port + i for i in range(count)]
    if mode == "bare":
        counts = Counts()
        tasks = [asyncio.create_task(bare_follow(p, counts)) for p in ports]

        def snapshot() -> Counts:
            c = Counts()
            c.__dict__.update(counts.__dict__)
            return c
    else:
        from isthmus.simulator.vendors import bravo_map
        from isthmus.sources.config import ModbusDevice
        from isthmus.sources.modbus import ModbusSession

        vmap = bravo_map(RATE)
        sessions = [
            ModbusSession(
                ModbusDevice(
                    name=f"d{p}",
                    host="127.0.0.1",
                    port=p,
                    max_requests_per_second=2 * RATE / SAMPLES,
                    waveforms=vmap.waveforms,
                    waveform_reader=mode,  # type: ignore[arg-type]
                )
            )
            for p in ports
        ]
        tasks = [asyncio.create_task(s.run()) for s in sessions]

        def snapshot() -> Counts:
            for s in sessions:
                if s._waves is not None:
                    s._supervise_once()
            return session_counts(sessions)

    await asyncio.sleep(warmup)
    before, c0, t0 = snapshot(), time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    after, c1, t1 = snapshot(), time.process_time(), time.monotonic()
    if mode != "bare":
        for s in sessions:
            await s.close()
    for t in tasks:
        t.cancel()
    out = {
        "cpu_s": c1 - c0,
        "wall_s": t1 - t0,
        **{k: getattr(after, k) - getattr(before, k) for k in vars(after)},
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    mode, port, n, warm, win = sys.argv[1:6]
    asyncio.run(main(mode, int(port), int(n), float(warm), float(win)))
