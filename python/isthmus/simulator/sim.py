"""One process serving a small plant of pumps over Modbus TCP, OPC UA and S7."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from isthmus.simulator.modbus_server import ModbusPumpServer
from isthmus.simulator.opcua_server import OpcUaPumpServer
from isthmus.simulator.physics import Fault
from isthmus.simulator.plant import Pump, Truth
from isthmus.simulator.s7_server import S7PumpServer
from isthmus.simulator.vendors import MODBUS_VENDORS, VENDORS, VendorMap


@dataclass
class PumpConfig:
    """A pump to simulate: ``vendor`` picks its protocol and register map."""

    name: str
    vendor: str
    speed_rpm: float = 1797.0
    port: int | None = None  # Modbus port (vendors acme, bravo) or S7 port (delta)


class Simulator:
    """Pumps, their Modbus servers (one port each) and one OPC UA server.

    ``truth(name)`` is the ground truth of a pump (what its registers and
    variables encode right now); ``modbus[name]`` is its Modbus server (with
    request counters and the ``hang``/``delay`` fault switches);
    ``pumps[name].inject(Fault...)`` switches a fault on.
    """

    def __init__(
        self,
        pumps: list[PumpConfig],
        host: str = "127.0.0.1",
        opcua_port: int | None = None,
        sample_rate: float = 25600.0,
        bearing: str = "SKF 6205",
        tick_interval: float = 1.0,
        waveform_test_pattern: bool = False,
        opcua_certificate: str | Path | None = None,
        opcua_private_key: str | Path | None = None,
        opcua_users: dict[str, str] | None = None,
        opcua_waveform_interval: float = 1.0,
    ) -> None:
        self.host = host
        self.tick_interval = tick_interval
        self.pumps: dict[str, Pump] = {}
        self.maps: dict[str, VendorMap] = {}
        self.modbus: dict[str, ModbusPumpServer] = {}
        self.s7: dict[str, S7PumpServer] = {}
        charlie: list[Pump] = []
        for seed, cfg in enumerate(pumps):
            if cfg.vendor not in VENDORS:
                raise ValueError(
                    f"pump {cfg.name!r}: unknown vendor {cfg.vendor!r} (know {VENDORS})"
                )
            pump = Pump(
                cfg.name,
                cfg.vendor,
                speed_rpm=cfg.speed_rpm,
                sample_rate=sample_rate,
                bearing=bearing,
                seed=seed,
                waveform_test_pattern=waveform_test_pattern,
            )
            self.pumps[cfg.name] = pump
            if cfg.vendor in MODBUS_VENDORS:
                if cfg.port is None:
                    raise ValueError(f"pump {cfg.name!r}: a Modbus vendor needs a port")
                vmap = MODBUS_VENDORS[cfg.vendor](sample_rate)
                self.maps[cfg.name] = vmap
                self.modbus[cfg.name] = ModbusPumpServer(pump, vmap, host, cfg.port)
            elif cfg.vendor == "delta":
                if cfg.port is None:
                    raise ValueError(f"pump {cfg.name!r}: an S7 vendor needs a port")
                self.s7[cfg.name] = S7PumpServer(pump, host, cfg.port)
            else:
                charlie.append(pump)
        self.opcua: OpcUaPumpServer | None = None
        if charlie:
            if opcua_port is None:
                raise ValueError("OPC UA pumps need opcua_port")
            self.opcua = OpcUaPumpServer(
                charlie,
                host,
                opcua_port,
                certificate=opcua_certificate,
                private_key=opcua_private_key,
                users=opcua_users,
                waveform_interval=opcua_waveform_interval,
            )
        self._tick_task: asyncio.Task[None] | None = None

    def truth(self, pump: str) -> Truth:
        """Ground truth of ``pump`` now."""
        return self.pumps[pump].truth()

    def inject(self, pump: str, fault: Fault | str, severity: float = 1.0) -> None:
        """Switch ``fault`` on in ``pump`` now."""
        self.pumps[pump].inject(Fault(fault), severity)
        self.pumps[pump].tick()

    def tick(self) -> None:
        """Advance every pump's process values now."""
        for pump in self.pumps.values():
            pump.tick()

    async def start(self) -> None:
        """Start every server and the process-value ticker."""
        for server in self.modbus.values():
            await server.start()
        for s7 in self.s7.values():
            await s7.start()
        if self.opcua is not None:
            await self.opcua.start()
        if self.tick_interval > 0:
            self._tick_task = asyncio.create_task(self._ticker(), name="simulator-tick")

    async def stop(self) -> None:
        """Stop the ticker and all servers."""
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        for server in self.modbus.values():
            await server.stop()
        for s7 in self.s7.values():
            await s7.stop()
        if self.opcua is not None:
            await self.opcua.stop()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            # feature computation is a 1 s FFT per pump: keep it off the event loop
            await asyncio.to_thread(self.tick)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def default_plant(modbus_port: int = 5020) -> list[PumpConfig]:
    """Three pumps of three vendors: P-101 acme, P-102 bravo (Modbus), P-103 charlie (OPC UA)."""
    return [
        PumpConfig("P-101", "acme", 1797.0, modbus_port),
        PumpConfig("P-102", "bravo", 2950.0, modbus_port + 1),
        PumpConfig("P-103", "charlie", 1480.0),
    ]


__all__ = ["PumpConfig", "Simulator", "default_plant"]
