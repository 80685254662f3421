"""A pump's Modbus TCP face: a pymodbus server whose registers follow the pump's truth.

Registers are refreshed lazily inside pymodbus' per-request ``action`` hook:
process values are re-encoded when the pump's truth changed, and waveform
slots are filled up to the last complete block of wall-clock time. Every
request that reaches the server is counted (``requests``, ``log``) so tests
can check the client's coalescing at the server side. The device is
read-only: all registers are marked readonly, a write is answered with an
exception.

Fault switches for tests: ``hang = True`` makes the device stop answering
(requests are swallowed), ``delay`` adds latency to every answer.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import math
from typing import Any

import numpy as np

from isthmus.simulator.plant import Pump
from isthmus.simulator.vendors import Point, VendorMap
from isthmus.sources.config import WaveformBlock

_FUNCTION_REGISTER = {1: "coil", 2: "discrete", 3: "holding", 4: "input"}
_BLOCK_ID = {"coil": "c", "discrete": "d", "holding": "h", "input": "i"}


@functools.cache
def _plan(point: Point) -> Any:
    import isthmus

    return isthmus.DecodePlan([point.tag().to_tag()])


def encode_point(point: Point, value: float | bool) -> list[int]:
    """Registers holding ``value`` as ``point`` says (:meth:`isthmus.DecodePlan.encode`)."""
    if not point.dtype.startswith("float") and point.scale == 1 and point.offset == 0:
        value = round(value)  # an unscaled integer register holds whole units
    words = _plan(point).encode({point.name: value})
    return [int(w) for w in words]


def encode_samples(samples_g: np.ndarray[Any, Any], block: WaveformBlock) -> np.ndarray[Any, Any]:
    """Waveform samples in engineering units -> uint16 registers of one slot."""
    import isthmus

    counts = samples_g / block.scale
    if block.dtype == "int16":
        counts = np.clip(np.rint(counts), -32768, 32767)  # a real ADC saturates
    words: np.ndarray[Any, Any] = isthmus.encode_array(counts, block.dtype, order=block.order)
    return words


class ModbusPumpServer:
    """Serves one pump's vendor map over Modbus TCP on ``host:port``."""

    def __init__(
        self,
        pump: Pump,
        vmap: VendorMap,
        host: str = "127.0.0.1",
        port: int = 5020,
        unit_id: int = 1,
    ) -> None:
        self.pump = pump
        self.vmap = vmap
        self.host = host
        self.port = port
        self.unit_id = unit_id
        self.requests: collections.Counter[str] = collections.Counter()
        self.log: collections.deque[tuple[str, int, int]] = collections.deque(maxlen=10_000)
        self.hang = False
        self.delay = 0.0
        self._encoded_version = -1
        self._next_block = {w.name: -1 for w in vmap.waveforms}
        self._server: Any = None
        self._task: asyncio.Task[Any] | None = None
        self._blocks: dict[str, tuple[int, list[int]]] = {}

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Listen (returns once the socket is bound)."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        def sim_list(kind: str) -> list[Any]:
            bits = kind in ("coil", "discrete")
            out = []
            for lo, hi in self.vmap.ranges.get(kind, []):
                values: Any = [False] * (hi - lo) if bits else [0] * (hi - lo)
                out.append(
                    SimData(
                        lo,
                        values=values,
                        datatype=DataType.BITS if bits else DataType.REGISTERS,
                        readonly=True,
                    )
                )
            if not out and bits:
                # pymodbus needs a bit block per type and cannot mark bits invalid:
                # park 16 readable zero bits at the top of the address space
                out.append(
                    SimData(65520, values=[False] * 16, datatype=DataType.BITS, readonly=True)
                )
            elif not out:
                out.append(SimData(65535, count=1, datatype=DataType.INVALID))
            return out

        device = SimDevice(
            self.unit_id,
            simdata=(
                sim_list("coil"),
                sim_list("discrete"),
                sim_list("holding"),
                sim_list("input"),
            ),
            action=self._action,
        )
        self._server = ModbusTcpServer(
            [device], address=(self.host, self.port), trace_pdu=self._trace_pdu
        )
        runtime = self._server.context.devices[self.unit_id]
        for kind, block_id in _BLOCK_ID.items():
            start, _count, registers, _flags = runtime.block[block_id]
            self._blocks[kind] = (start, registers)
        self._refresh_points()
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Close the listener and every client connection."""
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    # -- pymodbus hooks -------------------------------------------------------

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            kind = _FUNCTION_REGISTER.get(pdu.function_code, f"fc{pdu.function_code}")
            self.requests[kind] += 1
            self.log.append((kind, int(pdu.address), int(getattr(pdu, "count", 1))))
        return pdu

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: Any,
    ) -> Any:
        if self.hang:
            await asyncio.sleep(3600)  # a device that stopped answering
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.pump.truth().version != self._encoded_version:
            self._refresh_points()
        if function_code in (3, 4):
            kind = _FUNCTION_REGISTER[function_code]
            for block in self.vmap.waveforms:
                if block.register == kind:
                    self.fill_waveform(block)
        return None

    # -- register contents ----------------------------------------------------

    def _refresh_points(self) -> None:
        truth = self.pump.truth()
        for point in self.vmap.points:
            start, registers = self._blocks[point.register]
            value = point.value(truth)
            if point.register in ("coil", "discrete"):
                # bit blocks: 16 bits per register, LSB first
                word, bit = divmod(point.address, 16)
                self._set_bit(registers, word - start, bit, bool(value))
            elif point.dtype == "bit":
                assert point.bit is not None
                self._set_bit(registers, point.address - start, point.bit, bool(value))
            else:
                words = encode_point(point, value)
                offset = point.address - start
                registers[offset : offset + len(words)] = words
        self._encoded_version = truth.version

    @staticmethod
    def _set_bit(registers: list[int], index: int, bit: int, on: bool) -> None:
        registers[index] = (
            (registers[index] | (1 << bit)) if on else (registers[index] & ~(1 << bit))
        )

    def fill_waveform(self, block: WaveformBlock, now: float | None = None) -> int:
        """Write each block completed by wall-clock ``now`` into its slot; returns the last index.

        Block ``k`` holds global samples ``k*n .. (k+1)*n`` and lives in slot
        ``k % slots`` with sequence number ``k % 65536``.
        """
        import time

        now = time.time() if now is None else now
        n = block.samples
        last = math.floor(now * block.sample_rate / n) - 1
        first = max(self._next_block[block.name], last - block.slots + 1)
        start, registers = self._blocks[block.register]
        channel = int(block.channel.rsplit("_", 1)[-1]) if block.channel[-1].isdigit() else 0
        for k in range(first, last + 1):
            # one block at a time: samples depend only on the global index
            words = encode_samples(self.pump.waveform(channel, k * n, n), block)
            base = (k % block.slots) * block.slot_stride
            offset = block.address + base - start
            registers[offset : offset + block.block_registers] = words.tolist()
            registers[block.sequence_address + base - start] = k & 0xFFFF
        self._next_block[block.name] = max(self._next_block[block.name], last + 1)
        return last


__all__ = ["ModbusPumpServer", "encode_point", "encode_samples"]
