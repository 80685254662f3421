"""The device of the end-to-end bench: a minimal Modbus TCP server whose values change.

``python benches/e2e_device.py PORT REGISTERS POLL_HZ``: holding (and input) registers
0..REGISTERS-1 hold float32 values (big-endian, two registers each) that all change
POLL_HZ times a second, so every poll reads new values. Answers function codes 3 and 4
straight from a byte buffer (a few microseconds per request), in its own process, so
neither the device nor its CPU limits the gateway or the script being measured (a
pymodbus server could not serve 10k tags x 4 Hz on this machine). Prints ``ready``.
"""

from __future__ import annotations

import asyncio
import struct
import sys

import numpy as np

_HEADER = struct.Struct(">HHHBBHH")  # MBAP (tid, proto, length, unit) + fc, start, count


class _Server(asyncio.Protocol):
    def __init__(self, registers: list[bytes]) -> None:
        self.registers = registers  # [0]: the current big-endian register bytes
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        out = []
        while len(self.buffer) >= 12:
            tid, _proto, length, unit, fc, start, count = _HEADER.unpack_from(self.buffer)
            frame = 6 + length
            if len(self.buffer) < frame:
                break
            self.buffer = self.buffer[frame:]
            regs = self.registers[0]
            if fc in (3, 4) and 1 <= count <= 125 and 2 * (start + count) <= len(regs):
                body = regs[2 * start : 2 * (start + count)]
                out.append(struct.pack(">HHHBBB", tid, 0, 3 + len(body), unit, fc, len(body)))
                out.append(body)
            else:  # illegal data address
                out.append(struct.pack(">HHHBBB", tid, 0, 3, unit, fc | 0x80, 2))
        if out:
            self.transport.write(b"".join(out))


async def main(port: int, registers: int, poll_hz: float) -> None:
    state = [bytes(2 * registers)]
    base = 10.0 + np.arange(registers // 2, dtype=np.float64) % 1000.0
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Server(state), "127.0.0.1", port)
    print("ready", flush=True)
    tick = 0
    async with server:
        while True:
            state[0] = (base + tick * 0.25).astype(">f4").tobytes().ljust(2 * registers, b"\0")
            tick = (tick + 1) % 4000
            await asyncio.sleep(1.0 / poll_hz)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
