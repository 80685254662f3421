"""The whole gateway on the demo configuration with four vibration channels at 25.6 kHz.

Four simulated ``bravo`` pumps (raw int16 waveform blocks at 25.6 kHz over Modbus TCP,
~214 block reads per second each) run in one ``isthmus simulate`` process; the gateway
runs as ``isthmus run`` in another, analysing every sample (spectral features, velocity
RMS, ISO zone, envelope analysis, rules) and publishing to the console sink's outbox.
The gateway process's CPU share (of one core) and resident memory are sampled in
windows from /proc: both must stay flat over the run (no growth = no leak, no backlog).

Quick mode (CI) runs ~12 s; ``ISTHMUS_BENCH_GATEWAY_S`` sets a longer run.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PUMPS = 4
RUN_S = float(os.environ.get("ISTHMUS_BENCH_GATEWAY_S", "12"))
WINDOW_S = 2.0
WARMUP_S = 4.0
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _config(first_port: int, outbox: Path) -> str:
    from isthmus.gateway.demo import demo_config

    ports = {f"P-{i + 1:03d}": first_port + i for i in range(PUMPS)}
    pumps = tuple((name, "bravo", 2950.0) for name in ports)
    # Build (and validate) the demo configuration, then write it out as TOML.
    config = demo_config(ports, outbox=str(outbox), pumps=pumps)
    return _to_toml(config)


def _to_toml(config: Any) -> str:
    import msgspec

    return _toml_text(msgspec.to_builtins(config))


def _toml_text(raw: dict[str, Any]) -> str:
    """A configuration as plain data (``msgspec.to_builtins``), written out as TOML."""
    raw = dict(raw)
    raw.pop("mqtt", None)
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            items = [f'"{k}" = {value(x)}' for k, x in v.items() if x is not None]
            return "{ " + ", ".join(items) + " }"
        raise TypeError(type(v))

    for key, section in raw.items():
        if isinstance(section, list):
            for item in section:
                lines.append(f"[[{key}]]")
                lines += [f'"{k}" = {value(v)}' for k, v in item.items() if v is not None]
        else:
            lines.append(f"[{key}]")
            lines += [f'"{k}" = {value(v)}' for k, v in section.items() if v is not None]
    return "\n".join(lines) + "\n"


def _run(tmp_path: Path) -> dict[str, Any]:
    first = _free_port()
    while any(_port_taken(first + i) for i in range(PUMPS)):
        first = _free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(_config(first, tmp_path / "outbox.sqlite3"))
    # One simulator process per pump: a device's Modbus server is the device's business,
    # not a cost the gateway should share a core with.
    sims = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "isthmus.cli",
                "simulate",
                "--modbus-port",
                str(first + i),
                "--opcua-port",
                "0",
                "--pump",
                f"P-{i + 1:03d}:bravo:2950",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        for i in range(PUMPS)
    ]
    gateway: subprocess.Popen[str] | None = None
    try:
        for sim in sims:
            assert sim.stdout is not None
            deadline = time.monotonic() + 30
            for line in sim.stdout:
                if "ready" in line or time.monotonic() > deadline:
                    break
        metrics_port = _free_port()
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "isthmus.cli",
                "run",
                str(config),
                "--log-level",
                "WARNING",
                "--metrics-port",
                str(metrics_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        time.sleep(WARMUP_S)
        flow_start = (time.monotonic(), _flow(metrics_port))
        sims_start = sum(_cpu_seconds(sim.pid) for sim in sims)
        samples: list[tuple[float, float, float]] = []
        end = time.monotonic() + max(RUN_S - WARMUP_S, 2 * WINDOW_S)
        while time.monotonic() < end:
            assert gateway.poll() is None, "the gateway died"
            samples.append((time.monotonic(), _cpu_seconds(gateway.pid), _rss_mib(gateway.pid)))
            time.sleep(WINDOW_S)
        samples.append((time.monotonic(), _cpu_seconds(gateway.pid), _rss_mib(gateway.pid)))
        flow_end = (time.monotonic(), _flow(metrics_port))
        sims_cpu = sum(_cpu_seconds(sim.pid) for sim in sims) - sims_start
    finally:
        for proc in (gateway, *sims):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    shares = [(c1 - c0) / (t1 - t0) for (t0, c0, _), (t1, c1, _) in itertools.pairwise(samples)]
    rss = [r for _, _, r in samples]
    seconds = flow_end[0] - flow_start[0]
    analysed = (flow_end[1]["analysed"] - flow_start[1]["analysed"]) / seconds
    lost = (flow_end[1]["lost"] - flow_start[1]["lost"]) / seconds
    sims_share = sims_cpu / seconds
    return {"shares": shares, "rss": rss, "analysed": analysed, "lost": lost, "sims": sims_share}


def _flow(port: int) -> dict[str, float]:
    """Samples the gateway analysed and lost so far, from its Prometheus endpoint."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    totals = {"analysed": 0.0, "lost": 0.0, "written": 0.0, "lag": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        value = float(line.rsplit(" ", 1)[-1]) if not line.startswith("#") else 0.0
        if name == "isthmus_ring_written_samples":
            totals["written"] += value
        elif name == "isthmus_ring_lag_samples":
            totals["lag"] += value
        elif name == "isthmus_ring_lost_samples":
            totals["lost"] += value
    totals["analysed"] = totals["written"] - totals["lag"] - totals["lost"]
    return totals


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_gateway_four_channels_cpu_and_memory_steady(
    benchmark: Any, report: Any, tmp_path: Path
) -> None:
    benchmark.group = "gateway: demo configuration, 4 x 25.6 kHz"
    benchmark.extra_info["role"] = "isthmus"
    result = benchmark.pedantic(_run, args=(tmp_path,), rounds=1, iterations=1)
    shares, rss = result["shares"], result["rss"]
    half = len(shares) // 2
    first, last = sum(shares[:half]) / half, sum(shares[half:]) / (len(shares) - half)
    report(
        "gateway CPU share of one core, 4 ch x 25.6 kHz (mean)",
        f"{100 * sum(shares) / len(shares):.1f} %",
        f"first half {100 * first:.1f} %, second half {100 * last:.1f} %, "
        f"{len(shares)} windows of {WINDOW_S:g} s",
    )
    report(
        "device side: 4 simulator processes (pymodbus servers), CPU share",
        f"{100 * result['sims']:.1f} %",
        "of one core, summed; the devices, not the gateway",
    )
    offered = PUMPS * 25600.0
    report(
        "gateway samples analysed per second, 4 ch x 25.6 kHz",
        f"{result['analysed']:.0f}",
        f"of {offered:.0f} generated; {result['lost']:.0f}/s lost, every one counted as a gap "
        "(acquisition needs ~856 Modbus round trips per second)",
    )
    report(
        "gateway RSS, 4 ch x 25.6 kHz",
        f"{rss[-1]:.1f} MiB",
        f"start {rss[0]:.1f} MiB, growth {rss[-1] - rss[0]:+.1f} MiB over "
        f"{(len(rss) - 1) * WINDOW_S:g} s",
    )
    # Steady: no creeping backlog (CPU) and no leak (memory) within the run.
    assert last < first * 1.5 + 0.05
    assert rss[-1] - rss[0] < 32.0


def _pipeline_run(seconds: float) -> dict[str, float]:
    """The gateway's own work at full rate: rings fed in real time, in this process."""
    import asyncio

    import numpy as np

    from isthmus.gateway.demo import demo_config
    from isthmus.gateway.pipeline import Gateway
    from isthmus.gateway.sinks import ConsoleSink
    from isthmus.simulator.physics import BEARINGS, Fault, VibrationModel
    from isthmus.sources.values import TagValue

    rate = 25600.0
    names = [f"P-{i + 1:03d}" for i in range(PUMPS)]
    config = demo_config(
        {n: 1 for n in names},  # no device is contacted: acquire=False
        outbox="unused.sqlite3",  # the console sink below keeps no outbox
        pumps=tuple((n, "bravo", 2950.0) for n in names),
    )
    gateway = Gateway(config, ConsoleSink(stream=None))
    # Two seconds of each pump's accelerometer (one with an outer-race fault), replayed.
    waves = []
    for i, _name in enumerate(names):
        model = VibrationModel(rate, 2950.0 / 60.0, BEARINGS["SKF 6205"], seed=i)
        if i == 0:
            model.faults = {Fault.OUTER_RACE: 1.0}
        waves.append(model.block(0, int(2 * rate)).astype(np.float32))
    rings = [ring for source in gateway.sources for ring in source.rings.values()]
    block = 1200  # 120-sample Modbus blocks, pushed ten at a time

    async def feed(stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        pushed = 0
        while not stop.is_set():
            due = int((loop.time() - start) * rate)
            while pushed + block <= due:
                offset = pushed % (len(waves[0]) - block)
                for ring, wave in zip(rings, waves, strict=True):
                    ring.push(wave[offset : offset + block])
                pushed += block
            for source in gateway.sources:
                gateway.on_values(
                    [TagValue(source=source.name, tag="speed", value=2950.0 / 60.0, unit="Hz")]
                )
            await asyncio.sleep(0.05)

    async def main() -> dict[str, float]:
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.run(stop, acquire=False))
        feeder = asyncio.create_task(feed(stop))
        await asyncio.sleep(WARMUP_S)
        t0, c0 = time.monotonic(), time.process_time()
        await asyncio.sleep(seconds)
        t1, c1 = time.monotonic(), time.process_time()
        stop.set()
        await asyncio.gather(task, feeder)
        frames = gateway.metrics.total("isthmus_frames_analysed")
        return {"share": (c1 - c0) / (t1 - t0), "frames": frames}

    return asyncio.run(main())


def test_gateway_pipeline_four_channels_at_full_rate(benchmark: Any, report: Any) -> None:
    benchmark.group = "gateway pipeline: 4 x 25.6 kHz fed in-process"
    benchmark.extra_info["role"] = "isthmus"
    seconds = max(RUN_S - WARMUP_S, 4.0)
    result = benchmark.pedantic(_pipeline_run, args=(seconds,), rounds=1, iterations=1)
    report(
        "gateway pipeline CPU share of one core, 4 ch x 25.6 kHz",
        f"{100 * result['share']:.1f} %",
        "rings fed in real time in-process (no Modbus): spectra, velocity, ISO zone, "
        "envelope analysis, rules, products",
    )
    assert result["frames"] > 0
