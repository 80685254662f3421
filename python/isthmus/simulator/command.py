"""``isthmus simulate``: pumps of several vendors over Modbus TCP, OPC UA and S7 on one host.

Examples::

    isthmus simulate          # P-101 acme :5020, P-102 bravo :5021, P-103 charlie OPC UA :4840
    isthmus simulate --pump A:acme --pump B:bravo:2950 --modbus-port 1502 --opcua-port 0
    isthmus simulate --fault P-102:outer_race:0.8:30  # outer-race spall on P-102 after 30 s
    isthmus simulate --maps                           # print the register maps and exit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from isthmus.errors import ConfigError


def configure(parser: argparse.ArgumentParser) -> None:
    """Command-line options of ``isthmus simulate``."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--modbus-port",
        type=int,
        default=5020,
        help="port of the first Modbus pump; the next pumps count up (default 5020)",
    )
    parser.add_argument(
        "--opcua-port",
        type=int,
        default=4840,
        help="OPC UA port for the charlie pumps, 0 = none (default 4840)",
    )
    parser.add_argument(
        "--pump",
        action="append",
        default=[],
        metavar="NAME:VENDOR[:RPM]",
        help="a pump (vendors: acme, bravo (Modbus), charlie (OPC UA), delta (S7)); repeat; "
        "default: acme, bravo, charlie",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="PUMP:FAULT[:SEVERITY[:AFTER_S]]",
        help="inject imbalance|misalignment|outer_race|inner_race (severity 0..1, "
        "default 1, from AFTER_S seconds after start, default 0)",
    )
    parser.add_argument(
        "--sample-rate",
        type=float,
        default=25600.0,
        help="vibration sample rate in Hz (default 25600)",
    )
    parser.add_argument("--bearing", default="SKF 6205", help="bearing of every pump")
    parser.add_argument(
        "--tick", type=float, default=1.0, help="process-value update interval in s (default 1)"
    )
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many s (0 = run)"
    )
    parser.add_argument(
        "--truth-file", type=Path, help="write every pump's ground truth as JSON here at each tick"
    )
    parser.add_argument(
        "--test-pattern",
        action="store_true",
        help="waveforms are a ramp of the sample index (for gap tests)",
    )
    parser.add_argument(
        "--opcua-cert", type=Path, help="server certificate (enables Basic256Sha256)"
    )
    parser.add_argument("--opcua-key", type=Path, help="server private key")
    parser.add_argument(
        "--opcua-user",
        metavar="NAME",
        help="require this user; password from $ISTHMUS_SIM_PASSWORD",
    )
    parser.add_argument("--maps", action="store_true", help="print the register maps and exit")


def _pumps(args: argparse.Namespace) -> list[Any]:
    from isthmus.simulator.sim import PumpConfig, default_plant
    from isthmus.simulator.vendors import MODBUS_VENDORS, VENDORS

    if not args.pump:
        plant = default_plant(args.modbus_port)
        return [p for p in plant if p.vendor in MODBUS_VENDORS or args.opcua_port]
    pumps = []
    port = args.modbus_port
    for spec in args.pump:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or parts[1] not in VENDORS:
            raise ConfigError(
                f"--pump {spec!r}: expected NAME:VENDOR[:RPM], vendor one of {VENDORS}"
            )
        rpm = float(parts[2]) if len(parts) == 3 else 1797.0
        # Modbus and S7 (delta) pumps each take the next port
        own_port = parts[1] in MODBUS_VENDORS or parts[1] == "delta"
        pumps.append(PumpConfig(parts[0], parts[1], rpm, port if own_port else None))
        port += own_port
    return pumps


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (or ``--duration`` s)."""
    from isthmus.simulator.physics import Fault
    from isthmus.simulator.sim import Simulator
    from isthmus.simulator.vendors import CHARLIE_VARIABLES, DELTA_S7_TAGS, describe

    pumps = _pumps(args)
    users = None
    if args.opcua_user:
        password = os.environ.get("ISTHMUS_SIM_PASSWORD")
        if password is None:
            raise ConfigError("--opcua-user needs the password in $ISTHMUS_SIM_PASSWORD")
        users = {args.opcua_user: password}
    sim = Simulator(
        pumps,
        host=args.host,
        opcua_port=args.opcua_port or None,
        sample_rate=args.sample_rate,
        bearing=args.bearing,
        tick_interval=args.tick,
        waveform_test_pattern=args.test_pattern,
        opcua_certificate=args.opcua_cert,
        opcua_private_key=args.opcua_key,
        opcua_users=users,
    )
    for spec in args.fault:
        parts = spec.split(":")
        if len(parts) < 2 or parts[0] not in sim.pumps:
            raise ConfigError(f"--fault {spec!r}: expected PUMP:FAULT[:SEVERITY[:AFTER_S]]")
        try:
            fault = Fault(parts[1])
        except ValueError:
            raise ConfigError(f"--fault {spec!r}: faults are {[f.value for f in Fault]}") from None
        severity = float(parts[2]) if len(parts) > 2 else 1.0
        after = float(parts[3]) if len(parts) > 3 else 0.0
        sim.pumps[parts[0]].inject(fault, severity, start=after)
    for name, cfg in zip(sim.pumps, pumps, strict=True):
        if name in sim.maps:
            print(f"{name} Modbus TCP {args.host}:{cfg.port} unit 1")
            print(describe(sim.maps[name]))
        elif name in sim.s7:
            print(f"{name} S7 {args.host}:{cfg.port} rack 0 slot 1 vendor delta")
            for tag, address, unit, _ in DELTA_S7_TAGS:
                print(f"  {tag:<14} {address:<16} {unit or ''}")
        else:
            print(f"{name} OPC UA {sim.opcua.url if sim.opcua else '-'} vendor charlie")
            for var, (unit, _) in CHARLIE_VARIABLES.items():
                print(f"  ns=2;s={name}.{var:<20} {unit or ''}")
            print(f"  ns=2;s={name}.Waveform            Float[] g at {args.sample_rate:g} Hz")
    if args.maps:
        return 0
    sys.stdout.flush()
    asyncio.run(_serve(sim, args))
    return 0


async def _serve(sim: Any, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with sim:
        print("isthmus simulate: ready", flush=True)
        deadline = loop.time() + args.duration if args.duration > 0 else None
        while not stop.is_set():
            if args.truth_file is not None:
                truth = {name: sim.truth(name).as_dict() for name in sim.pumps}
                tmp = args.truth_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(truth))
                tmp.replace(args.truth_file)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(args.tick, 0.1))
            if deadline is not None and loop.time() >= deadline:
                break
