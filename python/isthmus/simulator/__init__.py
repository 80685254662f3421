"""A plant simulator: pumps of different vendors over Modbus TCP and OPC UA, with ground truth.

Run it with ``isthmus simulate`` or in-process::

    async with Simulator(default_plant(5020), opcua_port=4840) as sim:
        sim.inject("P-102", "outer_race")
        print(sim.truth("P-102"))

Importing this package loads numpy only; pymodbus and asyncua are imported
when the servers start.
"""

from __future__ import annotations

from isthmus.simulator.physics import BEARINGS, Bearing, Fault, FaultEvent, VibrationModel
from isthmus.simulator.plant import Pump, Truth
from isthmus.simulator.sim import PumpConfig, Simulator, default_plant

__all__ = [
    "BEARINGS",
    "Bearing",
    "Fault",
    "FaultEvent",
    "Pump",
    "PumpConfig",
    "Simulator",
    "Truth",
    "VibrationModel",
    "default_plant",
]
