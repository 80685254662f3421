"""A cheap Modbus TCP waveform device for the benches: bravo's block buffer, served by the clock.

``python benches/waveform_device.py FIRST_PORT COUNT`` serves COUNT devices on
consecutive loopback ports from one asyncio process, each with the ``bravo`` layout
(64 slots of a sequence register and 120 int16 samples from holding register 1000,
25.6 kHz). Block ``k`` is what the clock says was written last into slot ``k % 64``;
sample ``j`` of the stream holds ``j % 16384`` (the simulator's test pattern), so a
reader's ring can be checked sample by sample. Any other read (function 1-4) answers
zeros; anything else gets exception 1. No state is kept per request, so the server
costs a few tens of microseconds per request: the gateway, not the device, is measured.
Prints ``ready`` when listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys
import time

import numpy as np

RATE = 25600.0
SAMPLES = 120
SLOTS = 64
BASE = 1000  # sequence register of slot 0; samples follow it
STRIDE = SAMPLES + 1
AREA_END = BASE + STRIDE * SLOTS
RAMP = 16384

# the ramp as big-endian registers, long enough to slice any block without wrapping
_RAMP_BYTES = (np.arange(RAMP + SAMPLES, dtype=np.int64) % RAMP).astype(">u2").tobytes()


def _block_bytes(k: int) -> bytes:
    start = (k * SAMPLES) % RAMP
    return _RAMP_BYTES[2 * start : 2 * (start + SAMPLES)]


def _registers(start: int, count: int, newest: int) -> bytes:
    """Register bytes for ``start .. start + count`` with block ``newest`` the last written."""
    rel = start - BASE
    if rel >= 0 and rel % STRIDE == 0 and count in (1, STRIDE) and start + count <= AREA_END:
        slot = rel // STRIDE
        k = newest - ((newest - slot) % SLOTS)  # the newest block in this slot
        seq = struct.pack(">H", k & 0xFFFF)
        return seq if count == 1 else seq + _block_bytes(k)
    out = bytearray(2 * count)  # anything else: zeros, waveform registers filled one by one
    for i in range(count):
        r = start + i - BASE
        if 0 <= r < STRIDE * SLOTS:
            slot, within = divmod(r, STRIDE)
            k = newest - ((newest - slot) % SLOTS)
            value = k & 0xFFFF if within == 0 else (k * SAMPLES + within - 1) % RAMP
            out[2 * i : 2 * i + 2] = struct.pack(">H", value)
    return bytes(out)


class Device(asyncio.Protocol):
    def __init__(self, epoch: float) -> None:
        self.epoch = epoch
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 12:
            tid, _proto, length, unit, fc = struct.unpack(">HHHBB", self.buffer[:8])
            end = 6 + length
            if len(self.buffer) < end:
                return
            pdu, self.buffer = self.buffer[7:end], self.buffer[end:]
            newest = int((time.time() - self.epoch) * RATE / SAMPLES) + 1_000_000
            if fc in (3, 4) and len(pdu) == 5:
                start, count = struct.unpack(">HH", pdu[1:5])
                body = bytes([fc, 2 * count]) + _registers(start, count, newest)
            elif fc in (1, 2) and len(pdu) == 5:
                count = struct.unpack(">H", pdu[3:5])[0]
                nbytes = (count + 7) // 8
                body = bytes([fc, nbytes]) + bytes(nbytes)
            else:
                body = bytes([fc | 0x80, 1])
            assert self.transport is not None
            self.transport.write(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)


async def main(first_port: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    epoch = time.time()
    servers = [
        await loop.create_server(lambda: Device(epoch), "127.0.0.1", first_port + i)
        for i in range(count)
    ]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
