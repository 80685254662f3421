"""Vendor "delta" pumps over S7 (ISO-on-TCP): a python-snap7 server, one port per pump.

Each pump's values sit in data block 1 at the addresses of
:data:`~isthmus.simulator.vendors.DELTA_S7_TAGS` (big-endian, as an S7 CPU keeps
them) and are rewritten from the pump's truth every ``update_interval`` seconds,
under the server's area lock so a read never sees half an update.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from isthmus.simulator.plant import Pump
from isthmus.simulator.vendors import DELTA_DB, DELTA_DB_SIZE, DELTA_S7_TAGS


def encode_truth(pump: Pump, block: bytearray) -> None:
    """Write ``pump``'s current truth into ``block`` (data block DELTA_DB)."""
    from snap7 import util

    from isthmus.sources.s7address import parse_s7_address

    truth = pump.truth()
    for _name, address, _unit, value in DELTA_S7_TAGS:
        where = parse_s7_address(address)
        v = value(truth)
        if where.type == "BOOL":
            util.set_bool(block, where.byte, where.bit, bool(v))
        elif where.type == "REAL":
            util.set_real(block, where.byte, float(v))
        elif where.type == "INT":
            util.set_int(block, where.byte, max(-32768, min(32767, round(v))))
        elif where.type == "DINT":
            util.set_dint(block, where.byte, round(v))
        else:  # pragma: no cover - the table holds only the types above
            raise ValueError(f"delta map: unsupported type {where.type}")


class S7PumpServer:
    """Serves one delta pump's data block on ``host:port``."""

    def __init__(
        self, pump: Pump, host: str = "127.0.0.1", port: int = 1102, update_interval: float = 0.2
    ) -> None:
        self.pump = pump
        self.host = host
        self.port = port
        self.update_interval = update_interval
        self.block = bytearray(DELTA_DB_SIZE)
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from snap7.server import Server
        from snap7.type import SrvArea

        encode_truth(self.pump, self.block)
        server = Server(log=False)
        server.register_area(SrvArea.DB, DELTA_DB, self.block)
        server.start_to(self.host, self.port)
        self._server = server
        self._task = asyncio.create_task(self._update_loop(), name=f"s7-sim:{self.pump.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await asyncio.to_thread(self._server.stop)
            self._server = None

    def update(self) -> None:
        """Rewrite the data block from the truth now (atomically for readers)."""
        if self._server is None:
            encode_truth(self.pump, self.block)
            return
        fresh = bytearray(self.block)
        encode_truth(self.pump, fresh)
        from snap7.type import SrvArea

        self._server.lock_area(SrvArea.DB, DELTA_DB)
        try:
            self.block[:] = fresh
        finally:
            self._server.unlock_area(SrvArea.DB, DELTA_DB)

    async def _update_loop(self) -> None:
        while True:
            self.update()
            await asyncio.sleep(self.update_interval)


__all__ = ["S7PumpServer", "encode_truth"]
