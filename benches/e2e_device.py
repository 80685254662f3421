"""The device of the end-to-end bench: a pymodbus TCP server whose float32 values change.

``python benches/e2e_device.py PORT REGISTERS POLL_HZ``: holding registers 0..REGISTERS-1
hold float32 values (big-endian, two registers each) that all change POLL_HZ times a
second, so every poll reads new values. Runs in its own process: its CPU is not the
gateway's. Prints ``ready`` when listening.
"""

from __future__ import annotations

import asyncio
import sys

import numpy as np


async def main(port: int, registers: int, poll_hz: float) -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    blocks = []
    for start in range(0, registers, 10_000):
        count = min(10_000, registers - start)
        blocks.append(
            SimData(start, values=[0] * count, datatype=DataType.REGISTERS, readonly=True)
        )
    device = SimDevice(
        1,
        simdata=(
            [SimData(65520, values=[False] * 16, datatype=DataType.BITS, readonly=True)],
            [SimData(65520, values=[False] * 16, datatype=DataType.BITS, readonly=True)],
            blocks,
            [SimData(65535, count=1, datatype=DataType.INVALID)],
        ),
    )
    server = ModbusTcpServer([device], address=("127.0.0.1", port))
    regs = server.context.devices[1].block["h"][2]
    base = 10.0 + np.arange(registers // 2, dtype=np.float64) % 1000.0
    await server.serve_forever(background=True)
    print("ready", flush=True)
    tick = 0
    while True:
        values = (base + tick * 0.25).astype(">f4")
        regs[: registers - registers % 2] = values.view(">u2").astype(np.int64).tolist()
        tick = (tick + 1) % 4000
        await asyncio.sleep(1.0 / poll_hz)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
