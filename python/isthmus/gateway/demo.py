"""``isthmus demo``: the whole gateway on a simulated plant, with nothing to set up.

Starts the simulator in-process with two pumps of different vendors on free
loopback ports (P-101 ``acme``: fixed-point registers, vibration features
computed in the device; P-102 ``bravo``: IEEE floats in CDAB order, imperial
units, raw 25.6 kHz waveform blocks), runs the gateway on a built-in
configuration (:func:`demo_config`), injects an outer-race bearing fault into
P-102 after ``--fault-after`` seconds and shows a live view: per asset speed,
temperature, velocity RMS, ISO 20816 zone, bearing diagnosis, active alerts
and the data product exactly as it is published.

With ``--mqtt URL`` the gateway publishes to that broker (through the outbox)
under its own namespace ``isthmus-demo/simulated-plant/...`` (never the one of
``examples/``), clears the retained topics it left there when it stops, and
reports how many messages the broker acknowledged: a broker that was never
reached is a failure (exit 1), not a success with counts. Without ``--mqtt`` it
publishes to the console view and the local outbox. ``--duration`` makes a
scripted run that exits by itself with a summary. The live view fits 80x24.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

DEMO_PUMPS = (("P-101", "acme", 1797.0), ("P-102", "bravo", 2950.0))
# The demo's own corner of a broker: never the namespace of examples/ or of a plant.
DEMO_ENTERPRISE = "isthmus-demo"
DEMO_SITE = "simulated-plant"
# Simulated accelerometer rates the demo supports: the ISO band (10-1000 Hz) needs a
# Nyquist frequency above 1 kHz with margin; above 51.2 kHz the simulator cannot keep up.
SAMPLE_RATES = (4096.0, 51200.0)
VIEW_WIDTH, VIEW_HEIGHT = 80, 24
PRODUCT_LINES = 3  # of each data product's JSON in the view (the rest is cut)
FAULTY_PUMP = "P-102"
BEARING = "SKF 6205"  # the simulator's bearing, by its catalogue alias


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds (negative: never, where allowed)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    return value


def _duration(text: str) -> float:
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} s: must be >= 0 (0: until Ctrl-C)")
    return value


def _sample_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate in Hz") from None
    low, high = SAMPLE_RATES
    if not low <= value <= high:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text} Hz is not in {low:g}..{high:g} Hz")
    return value


def _mqtt_url(text: str) -> str:
    from isthmus.errors import ConfigError
    from isthmus.uns.settings import MqttSettings

    try:
        MqttSettings(url=text)
    except (ConfigError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("url: ")) from None
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration", type=_duration, default=0.0, help="stop after this many seconds (0: Ctrl-C)"
    )
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        type=_mqtt_url,
        default=None,
        help=f"publish to this broker (mqtt://host:port) under {DEMO_ENTERPRISE}/{DEMO_SITE}/",
    )
    parser.add_argument(
        "--fault-after",
        type=_seconds,
        default=20.0,
        metavar="S",
        help="inject an outer-race fault into P-102 after S seconds (default 20; <0: never)",
    )
    parser.add_argument(
        "--clear-after",
        type=_seconds,
        default=-1.0,
        metavar="S",
        help="remove the fault again after S seconds (default: never)",
    )
    parser.add_argument(
        "--outbox", type=Path, default=None, help="outbox file (default: a temporary directory)"
    )
    parser.add_argument(
        "--sample-rate",
        type=_sample_rate,
        default=25600.0,
        metavar="HZ",
        help="vibration sample rate of the simulated accelerometer (default 25600, "
        f"{SAMPLE_RATES[0]:g}..{SAMPLE_RATES[1]:g})",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="print a status block every few seconds instead of redrawing the screen",
    )


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(demo(args))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(
    ports: dict[str, int],
    *,
    outbox: str,
    mqtt: str | None = None,
    pumps: tuple[tuple[str, str, float], ...] = DEMO_PUMPS,
    gateway_name: str = "demo-gateway",
    sample_rate: float = 25600.0,
    enterprise: str = "acme",
    site: str = "plant1",
) -> Any:
    """The built-in configuration for simulated pumps (validated like any file).

    ``ports``: pump name -> its Modbus port. The register maps come from the
    simulator's vendor definitions, so the configuration matches them exactly.
    ``isthmus demo`` itself publishes under ``DEMO_ENTERPRISE``/``DEMO_SITE``.
    """
    import msgspec

    from isthmus.gateway.config import build_config
    from isthmus.simulator.vendors import MODBUS_VENDORS

    sources: list[dict[str, Any]] = []
    assets: list[dict[str, Any]] = []
    for name, vendor, _rpm in pumps:
        vmap = MODBUS_VENDORS[vendor](sample_rate)
        source = name.lower().replace("-", "")
        group = msgspec.to_builtins(vmap.poll_group(interval=0.5))
        device: dict[str, Any] = {
            "name": source,
            "host": "127.0.0.1",
            "port": ports[name],
            "poll_groups": [group],
            "waveforms": msgspec.to_builtins(vmap.waveforms),
            # 120-sample waveform blocks at 25.6 kHz need ~214 reads/s; leave headroom
            "max_requests_per_second": 2 * sample_rate / 120 if vmap.waveforms else 50.0,
        }
        sources.append(device)
        asset: dict[str, Any] = {
            "name": name,
            "model": "Pump",
            "isa95": {
                "enterprise": enterprise,
                "site": site,
                "area": "utilities",
                "line": "cooling",
            },
            "machine_group": 2,
            "foundation": "rigid",
            "fields": {
                "speed_rpm": {"tag": f"{source}.speed", "deadband": 5.0},
                "bearing_temperature_c": {"tag": f"{source}.temperature", "deadband": 0.2},
                "discharge_pressure_bar": {"tag": f"{source}.pressure", "deadband": 0.05},
            },
            "rules": [
                {
                    "name": "vibration-zone",
                    "kind": "iso_zone",
                    "zone": "C",
                    "persist": 3,
                    "severity": "warning",
                }
            ],
        }
        if vmap.waveforms:
            asset["vibration"] = {
                "sample_rate": vmap.waveforms[0].sample_rate,
                "bearing": BEARING,
                "channels": [
                    {"name": w.channel, "waveform": f"{source}.{w.name}", "unit": "g"}
                    for w in vmap.waveforms
                ],
            }
            asset["rules"].append(
                {
                    "name": "bearing",
                    "kind": "bearing",
                    "raise_at": BEARING_ALERT_DB,
                    "clear_at": BEARING_CLEAR_DB,
                    "persist": 3,
                    "severity": "critical",
                }
            )
        else:
            asset["fields"]["vibration_velocity_rms_mm_s"] = {
                "tag": f"{source}.velocity_rms",
                "deadband": 0.05,
            }
        assets.append(asset)
    raw: dict[str, Any] = {
        "gateway": {
            "name": gateway_name,
            "status_interval_s": 5.0,
            "features_interval_s": 2.0,
        },
        "sources": {"modbus": sources},
        "outbox": {"path": outbox},
        "assets": assets,
    }
    if mqtt is not None:
        raw["mqtt"] = {"url": mqtt, "client_id": gateway_name}
    return build_config(raw, source="<built-in demo configuration>")


# Bearing alert: the envelope fault score must exceed this (dB over the local noise
# floor of the squared-envelope spectrum, with >= 2 harmonics) to raise, and fall
# below the clear level to clear. 10 dB is a tenfold power ratio: well above the
# few-dB fluctuations of a noise floor, well below what a developed spall gives.
BEARING_ALERT_DB = 10.0
BEARING_CLEAR_DB = 6.0


# --- the simulator in its own process --------------------------------------------------------


def _simulator_main(
    pumps: list[tuple[str, str, float, int]], sample_rate: float, conn: Any, log_path: str
) -> None:
    """Child process: serve the pumps until told to stop; obey inject/clear commands."""
    import signal as signals

    from isthmus.gateway import logs
    from isthmus.simulator import PumpConfig, Simulator

    signals.signal(signals.SIGINT, signals.SIG_IGN)  # the parent decides when we stop
    # The servers' complaints (a client hanging up mid-request) go to the log, not the view.
    logs.setup("WARNING", "kv", open(log_path, "a"))  # noqa: SIM115 (lives as long as we do)

    async def serve() -> None:
        sim = Simulator(
            [PumpConfig(name, vendor, rpm, port) for name, vendor, rpm, port in pumps],
            opcua_port=None,
            sample_rate=sample_rate,
        )
        loop = asyncio.get_running_loop()
        async with sim:
            conn.send(("ready", None))
            while True:
                if not await loop.run_in_executor(None, conn.poll, 0.2):
                    continue
                command, pump, *rest = conn.recv()
                if command == "stop":
                    break
                if command == "inject":
                    sim.inject(pump, rest[0], rest[1])
                    conn.send(("ok", sim.truth(pump).fault_frequencies_hz))
                elif command == "clear":
                    sim.pumps[pump].clear_faults()
                    conn.send(("ok", None))

    asyncio.run(serve())


class SimulatorProcess:
    """The plant simulator in a child process, so it does not share a core with the gateway.

    Pumps are ``(name, vendor, rpm, modbus_port)``; :meth:`inject` and :meth:`clear`
    switch faults at run time and return the ground-truth fault frequencies (Hz).
    """

    def __init__(
        self, pumps: list[tuple[str, str, float, int]], sample_rate: float, log_path: Path
    ) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=_simulator_main,
            args=(pumps, sample_rate, child, str(log_path)),
            name="isthmus-simulator",
        )

    async def _call(self, *command: Any) -> Any:
        self._conn.send(command)
        return await self._reply(30.0)

    async def _reply(self, limit_s: float) -> Any:
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self._conn.poll, limit_s):
            raise TimeoutError("the simulator process did not answer")
        _status, value = self._conn.recv()
        return value

    async def __aenter__(self) -> SimulatorProcess:
        self.process.start()
        await self._reply(60.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(("stop", None))
        await asyncio.get_running_loop().run_in_executor(None, self.process.join, 10.0)
        if self.process.is_alive():
            self.process.kill()

    async def inject(self, pump: str, fault: str, severity: float = 1.0) -> dict[str, float]:
        result: dict[str, float] = await self._call("inject", pump, fault, severity)
        return result

    async def clear(self, pump: str) -> None:
        await self._call("clear", pump)


# --- the live view -----------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".1f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def render(
    gateway: Any,
    sink: Any,
    elapsed: float,
    events: list[str],
    width: int = VIEW_WIDTH,
    height: int = VIEW_HEIGHT,
) -> str:
    """The view as text, at most ``width`` x ``height``: one line per asset, its published
    data product (cut to a line), the counters, and as many recent events as fit."""
    from isthmus.gateway.sinks import ConsoleSink

    lines = [
        f"isthmus demo t={elapsed:5.1f}s gateway {gateway.config.gateway.name} (Ctrl-C stops)",
        f"{'asset':<6}{'vendor':<6}{'rpm':>6}{'°C':>6}{'bar':>6}{'mm/s':>6}{'ISO':>4} "
        f"{'diagnosis':<22}alerts",
    ]
    for runtime in gateway.assets.values():
        v = runtime.values
        vib = runtime.last_vibration
        if runtime.vibration is None:
            diagnosis = "(in device)"
        elif vib is None:
            diagnosis = "waiting for samples"
        else:
            diagnosis = f"{vib.diagnosis} {vib.score_db:.1f}dB"
            if vib.diagnosis != "none":
                diagnosis += f" {vib.frequency_hz:.0f}Hz"
        alerts = ",".join(a.alert_id.rsplit(".", 1)[-1] for a in runtime.active_alerts.values())
        speed = _fmt(v.get("speed_rpm"), ".0f")
        temperature = _fmt(v.get("bearing_temperature_c"))
        pressure = _fmt(v.get("discharge_pressure_bar"), ".2f")
        velocity = _fmt(v.get("vibration_velocity_rms_mm_s"), ".2f")
        zone = _fmt(v.get("iso20816_zone"))
        lines.append(
            f"{runtime.name:<6}{_vendor_of(runtime):<6}{speed:>6}{temperature:>6}{pressure:>6}"
            f"{velocity:>6}{zone:>4} {diagnosis:<22}{alerts or '-'}"
        )
    lines.append("data products as published (retained on <asset path>/state):")
    for runtime in gateway.assets.values():
        body = sink.last.get((runtime.name, "product")) if isinstance(sink, ConsoleSink) else None
        if body is None and runtime.product is not None:
            import msgspec

            body = msgspec.json.encode(runtime.product)
        lines.append(f" {runtime.path.state}")
        text = body.decode() if body else "(nothing yet)"
        step = width - 2
        chunks = [text[i : i + step] for i in range(0, len(text), step)]
        if len(chunks) > PRODUCT_LINES:
            chunks = chunks[:PRODUCT_LINES]
            chunks[-1] = chunks[-1][: step - 4] + " ..."
        lines.extend("  " + chunk for chunk in chunks)
    m = gateway.metrics
    lines.append(
        f"msgs {int(m.total('isthmus_messages_total'))} dropped "
        f"{int(m.total('isthmus_dropped_total'))} ring lost "
        f"{int(m.total('isthmus_ring_lost_samples'))} DSP {_mean_ms(m):.2f}ms/frame outbox "
        f"{int(m.total('isthmus_outbox_depth'))}"
    )
    lines.append("events:")
    room = max(height - len(lines), 0)
    lines.extend(f" {e}" for e in (events[-room:] if room else []))
    return "\n".join(_clip(line, width) for line in lines[:height])


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def _vendor_of(runtime: Any) -> str:
    for name, vendor, _ in DEMO_PUMPS:
        if name == runtime.name:
            return vendor
    return "-"


def _mean_ms(metrics: Any) -> float:
    count = metrics.total("isthmus_dsp_seconds_count")
    return 1e3 * metrics.total("isthmus_dsp_seconds_sum") / count if count else 0.0


class View:
    """Redraws the view in place on a terminal, or prints it every few seconds."""

    def __init__(self, out: TextIO, plain: bool) -> None:
        self.out = out
        self.redraw = out.isatty() and not plain
        self.period = 1.0 if self.redraw else 5.0

    def show(self, text: str) -> None:
        if self.redraw:
            self.out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            self.out.write(text + "\n" + "-" * 72 + "\n")
        self.out.flush()


log = logging.getLogger("isthmus.demo")


async def demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run the demo; returns the exit code (0 when the scenario ran and, with ``--mqtt``,
    the broker acknowledged what was published; 1 when it did not)."""

    from isthmus.gateway import logs
    from isthmus.gateway.metrics import Metrics
    from isthmus.gateway.pipeline import Gateway
    from isthmus.gateway.sinks import ConsoleSink, UnsSink

    class CountingUnsSink(UnsSink):
        """Keeps the publisher's last counters: what the broker really acknowledged."""

        final: dict[str, int] = {}  # noqa: RUF012 (replaced, never mutated)

        async def close(self) -> None:
            publisher = self.publisher
            await super().close()
            if publisher is not None:
                with contextlib.suppress(Exception):
                    self.final = publisher.counters.snapshot()

    workdir = Path(tempfile.mkdtemp(prefix="isthmus-demo-"))
    outbox_path = args.outbox or workdir / "outbox.sqlite3"
    log_path = workdir / "gateway.log"
    with contextlib.ExitStack() as stack:
        log_file = stack.enter_context(log_path.open("w"))
        logs.setup("INFO", "kv", log_file)
        ports = {name: free_port() for name, _, _ in DEMO_PUMPS}
        config = demo_config(
            ports,
            outbox=str(outbox_path),
            mqtt=args.mqtt,
            sample_rate=args.sample_rate,
            enterprise=DEMO_ENTERPRISE,
            site=DEMO_SITE,
        )
        sim = SimulatorProcess(
            [(name, vendor, rpm, ports[name]) for name, vendor, rpm in DEMO_PUMPS],
            args.sample_rate,
            workdir / "simulator.log",
        )
        sink: ConsoleSink | CountingUnsSink
        if config.mqtt is not None:
            sink = CountingUnsSink(config.mqtt, config.outbox)
        else:
            sink = ConsoleSink(stream=None, outbox=config.outbox)
        events: list[str] = []
        started = time.monotonic()

        def note(text: str) -> None:
            events.append(f"{time.monotonic() - started:6.1f} s  {text}")

        def on_update(runtime: Any) -> None:
            for alert in runtime.alert_log[len(seen.get(runtime.name, [])) :]:
                note(f"ALERT {alert.state.upper()} {alert.alert_id}: {alert.message}")
            seen[runtime.name] = list(runtime.alert_log)

        seen: dict[str, list[Any]] = {}
        metrics = Metrics()
        gateway = Gateway(config, sink, metrics, on_update=on_update)
        view = View(out, args.plain)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        note(
            f"simulator: P-101 acme on :{ports['P-101']}, P-102 bravo on :{ports['P-102']}"
            f"; publishing to {args.mqtt or 'the console and ' + str(outbox_path)}"
        )
        lost_reported = 0

        def report_ring_losses() -> None:
            # shown in the view, and logged: a loss must leave a trace after the screen is gone
            nonlocal lost_reported
            lost = int(metrics.total("isthmus_ring_lost_samples"))
            if lost > lost_reported:
                log.warning(
                    "vibration ring lost %d samples (%d since the start): the DSP fell behind",
                    lost - lost_reported,
                    lost,
                )
                note(f"RING LOST {lost - lost_reported} samples ({lost} in all)")
                lost_reported = lost

        async def scenario() -> None:
            injected = cleared = False
            while not stop.is_set():
                elapsed = time.monotonic() - started
                if not injected and 0 <= args.fault_after <= elapsed:
                    truth = await sim.inject(FAULTY_PUMP, "outer_race", 1.0)
                    bpfo = truth.get("bpfo")
                    note(
                        f"INJECTED outer-race fault into {FAULTY_PUMP}"
                        + (f" (BPFO {bpfo:.1f} Hz)" if bpfo else "")
                    )
                    injected = True
                if injected and not cleared and 0 <= args.clear_after <= elapsed:
                    await sim.clear(FAULTY_PUMP)
                    note(f"REMOVED the fault from {FAULTY_PUMP}")
                    cleared = True
                report_ring_losses()
                if args.duration > 0 and elapsed >= args.duration:
                    stop.set()
                    break
                view.show(render(gateway, sink, elapsed, events))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(view.period):
                        await stop.wait()

        async with sim, asyncio.TaskGroup() as group:
            group.create_task(gateway.run(stop), name="gateway")
            group.create_task(scenario(), name="demo-scenario")
        report_ring_losses()
        text = summary(gateway, sink, time.monotonic() - started, outbox_path, log_path)
        code = 0
        if isinstance(sink, CountingUnsSink):
            assert config.mqtt is not None
            delivery, code = await _delivery(config.mqtt, sink.final)
            text += delivery
        out.write(text)
        out.flush()
    return code


async def _delivery(mqtt: Any, counters: dict[str, int]) -> tuple[str, int]:
    """What the broker acknowledged, the retained topics cleared; exit code 1 on no delivery."""
    connects = counters.get("mqtt.connects", 0)
    acked = counters.get("mqtt.published", 0)
    waiting = counters.get("outbox.depth", 0)
    prefix = f"{DEMO_ENTERPRISE}/{DEMO_SITE}"
    if connects == 0:
        return (
            f"  FAILED: the broker at {mqtt.url} was never reached; nothing was delivered, "
            f"{waiting} messages wait in the outbox\n",
            1,
        )
    try:
        cleared = await clear_retained(mqtt, f"{prefix}/#")
    except Exception as exc:
        cleared_text = f"could not clear the retained topics under {prefix}/: {exc}"
    else:
        cleared_text = f"cleared {cleared} retained topics under {prefix}/"
    line = (
        f"  broker {mqtt.url}: {acked} messages acknowledged, {waiting} still in the outbox; "
        f"{cleared_text}\n"
    )
    if acked == 0:
        return "  FAILED: the broker acknowledged nothing\n" + line, 1
    return line, 0


async def clear_retained(mqtt: Any, pattern: str, quiet_s: float = 1.0) -> int:
    """Delete every retained message under ``pattern`` (an empty retained payload each)."""
    import aiomqtt

    topics: set[str] = set()
    async with aiomqtt.Client(
        hostname=mqtt.host,
        port=mqtt.port,
        identifier=f"{mqtt.identifier}-cleanup",
        timeout=mqtt.timeout_s,
    ) as client:
        await client.subscribe(pattern, qos=1)
        with contextlib.suppress(TimeoutError):
            while True:  # retained messages arrive right after SUBSCRIBE; stop when quiet
                async with asyncio.timeout(quiet_s):
                    message = await anext(client.messages)
                if message.retain and message.payload:
                    topics.add(str(message.topic))
        await client.unsubscribe(pattern)
        for topic in sorted(topics):
            await client.publish(topic, b"", qos=1, retain=True)
    return len(topics)


def summary(gateway: Any, sink: Any, elapsed: float, outbox: Path, log: Path) -> str:
    """What happened, for the end of a scripted run."""
    m = gateway.metrics
    lines = ["", f"isthmus demo: ran {elapsed:.1f} s"]
    for runtime in gateway.assets.values():
        v = runtime.values
        raised = sum(1 for a in runtime.alert_log if a.state == "raised")
        cleared = sum(1 for a in runtime.alert_log if a.state == "cleared")
        lines.append(
            f"  {runtime.name}: speed {_fmt(v.get('speed_rpm'), '.0f')} rpm, "
            f"temperature {_fmt(v.get('bearing_temperature_c'))} °C, velocity "
            f"{_fmt(v.get('vibration_velocity_rms_mm_s'), '.2f')} mm/s, zone "
            f"{_fmt(v.get('iso20816_zone'))}, diagnosis {_fmt(v.get('bearing_diagnosis'))}; "
            f"alerts raised {raised}, cleared {cleared}"
        )
        for alert in runtime.alert_log:
            lines.append(f"    {alert.state:<8} {alert.alert_id}: {alert.message}")
    published = {
        kind: int(m.total("isthmus_messages_total", kind=kind))
        for kind in ("product", "features", "alert", "status")
    }
    lines.append(f"  messages produced: {json.dumps(published)}")
    lines.append(
        f"  dropped {int(m.total('isthmus_dropped_total'))}, ring losses "
        f"{int(m.total('isthmus_ring_lost_samples'))} samples, DSP {_mean_ms(m):.2f} ms per frame"
    )
    lines.append(f"  outbox: {outbox}   log: {log}")
    return "\n".join(lines) + "\n"
