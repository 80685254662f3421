"""Waveform acquisition over Modbus TCP: the Rust reader against a bare pymodbus loop.

Every figure is the CPU of one process (utime + stime of all its threads, from /proc),
measured in the same run as its baseline:

* **acquisition alone** (``waveform_acquire.py``): COUNT devices with the ``bravo``
  block buffer (120 int16 samples per block, 64 slots, 25.6 kHz; ~213 blocks/s each),
  followed by the bare pymodbus asyncio loop (baseline: same block sequence, no ring,
  no rate limit, no statistics), by ``ModbusSession`` with ``waveform_reader = "rust"``
  and with ``"pymodbus"``;
* **the whole gateway** (``isthmus run`` on the demo configuration, one pump per
  device: scalar polls plus every sample analysed, spectra, velocity RMS, ISO zone,
  envelope analysis, rules, products into the outbox) with either reader.

The devices are ``waveform_device.py``: one asyncio process answering from the clock
(no pymodbus), so it keeps up with 16 channels; its own CPU is reported beside each run.
Quick mode (CI): 6 s windows after 4 s of warm-up; ``ISTHMUS_BENCH_WAVE_S`` sets the window.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from bench_gateway import _cpu_seconds, _flow, _free_port, _port_taken, _toml_text

HERE = Path(__file__).resolve().parent
WINDOW_S = float(os.environ.get("ISTHMUS_BENCH_WAVE_S", "6"))
WARMUP_S = 4.0
RATE = 25600.0
BLOCKS_PER_S = RATE / 120

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _ports(count: int) -> int:
    first = _free_port()
    while any(_port_taken(first + i) for i in range(count)):
        first = _free_port()
    return first


class Devices:
    """``waveform_device.py`` serving ``count`` devices; its CPU is measured between marks."""

    def __init__(self, count: int) -> None:
        # a free port range can be taken between the check and the bind (other processes
        # on the machine): try a fresh range a few times before giving up
        for _attempt in range(5):
            self.first = _ports(count)
            errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives as long as the device)
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "waveform_device.py"), str(self.first), str(count)],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                start_new_session=True,
            )
            assert self.proc.stdout is not None
            if "ready" in self.proc.stdout.readline():
                break
            _stop(self.proc)
            errors.seek(0)
            failure = errors.read()[-500:]
        else:
            raise AssertionError(f"waveform_device.py did not start: {failure}")
        self._mark = (time.monotonic(), _cpu_seconds(self.proc.pid))

    def mark(self) -> None:
        self._mark = (time.monotonic(), _cpu_seconds(self.proc.pid))

    def share(self) -> float:
        t0, c0 = self._mark
        return (_cpu_seconds(self.proc.pid) - c0) / (time.monotonic() - t0)

    def close(self) -> None:
        _stop(self.proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _acquire(devices: Devices, mode: str, count: int) -> dict[str, float]:
    """Acquisition alone in its own process: CPU share, blocks, gaps, requests."""
    devices.mark()
    out = subprocess.run(
        [
            sys.executable,
            str(HERE / "waveform_acquire.py"),
            mode,
            str(devices.first),
            str(count),
            str(WARMUP_S),
            str(WINDOW_S),
        ],
        capture_output=True,
        text=True,
        timeout=WARMUP_S + WINDOW_S + 60,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    result["share"] = result["cpu_s"] / result["wall_s"]
    result["device_share"] = devices.share()
    return result


def _gateway(devices: Devices, count: int, reader: str, tmp_path: Path) -> dict[str, float]:
    """``isthmus run`` on the demo configuration, one pump per device: CPU and samples lost."""
    import msgspec

    from isthmus.gateway.demo import demo_config

    names = [f"P-{i + 1:03d}" for i in range(count)]
    config = demo_config(
        {n: devices.first + i for i, n in enumerate(names)},
        outbox=str(tmp_path / f"outbox-{reader}-{count}.sqlite3"),
        pumps=tuple((n, "bravo", 2950.0) for n in names),
    )
    raw = msgspec.to_builtins(config)
    for device in raw["sources"]["modbus"]:
        device["waveform_reader"] = reader
    path = tmp_path / f"gateway-{reader}-{count}.toml"
    path.write_text(_toml_text(raw))
    metrics_port = _free_port()
    gateway = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "isthmus.cli",
            "run",
            str(path),
            "--log-level",
            "ERROR",
            "--metrics-port",
            str(metrics_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(WARMUP_S + count / 4)  # start-up grows with the pumps
        assert gateway.poll() is None, "the gateway died"
        devices.mark()
        t0, c0, flow0 = time.monotonic(), _cpu_seconds(gateway.pid), _flow(metrics_port)
        time.sleep(WINDOW_S)
        t1, c1, flow1 = time.monotonic(), _cpu_seconds(gateway.pid), _flow(metrics_port)
        device_share = devices.share()
        assert gateway.poll() is None, "the gateway died"
    finally:
        _stop(gateway)  # type: ignore[arg-type]
    seconds = t1 - t0
    return {
        "share": (c1 - c0) / seconds,
        "written": (flow1["written"] - flow0["written"]) / seconds,
        "lost": flow1["lost"] - flow0["lost"],
        "analysed": (flow1["analysed"] - flow0["analysed"]) / seconds,
        "device_share": device_share,
    }


def _per_block_us(r: dict[str, float]) -> float:
    return 1e6 * r["cpu_s"] / max(r["blocks"], 1)


def _report_acquire(report: Any, label: str, r: dict[str, float], offered: float) -> None:
    report(
        f"waveform {label}: CPU share of one core",
        f"{100 * r['share']:.1f} %",
        f"{_per_block_us(r):.0f} us CPU per block, "
        f"{r['requests'] / max(r['blocks'], 1):.2f} requests per block, "
        f"{r['samples'] / r['wall_s']:.0f} of {offered:.0f} samples/s, "
        f"{r['gap_samples']:.0f} gap samples; device process {100 * r['device_share']:.1f} %",
    )


@pytest.mark.parametrize("channels", [4, 16])
def test_acquisition_rust_reader_against_bare_pymodbus(
    benchmark: Any, report: Any, channels: int
) -> None:
    benchmark.group = f"waveform acquisition: {channels} x 25.6 kHz over Modbus TCP"
    benchmark.extra_info["role"] = "isthmus"
    devices = Devices(channels)
    results: dict[str, dict[str, float]] = {}
    modes = ["bare", "rust", "pymodbus"]

    def run() -> None:
        for mode in modes:
            results[mode] = _acquire(devices, mode, channels)

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        devices.close()
    offered = channels * RATE
    labels = {
        "bare": "baseline, bare pymodbus loop",
        "rust": "isthmus, Rust reader",
        "pymodbus": "isthmus, pymodbus reader",
    }
    for mode in modes:
        _report_acquire(report, f"{channels} ch, {labels[mode]}", results[mode], offered)
    rust, bare = results["rust"], results["bare"]
    report(
        f"waveform {channels} ch: CPU per block, bare pymodbus / Rust reader",
        f"{_per_block_us(bare) / _per_block_us(rust):.1f}x",
        "same run, same devices",
    )
    # The Rust reader keeps up: every block of the window arrived, none lost.
    assert rust["gap_samples"] == 0
    assert rust["samples"] >= 0.9 * offered * rust["wall_s"]


@pytest.mark.parametrize("channels", [4, 16])
def test_gateway_acquisition_plus_analysis(
    benchmark: Any, report: Any, tmp_path: Path, channels: int
) -> None:
    benchmark.group = f"waveform gateway: {channels} x 25.6 kHz, acquisition + analysis"
    benchmark.extra_info["role"] = "isthmus"
    devices = Devices(channels)
    results: dict[str, dict[str, float]] = {}
    readers = ["rust", "pymodbus"]

    def run() -> None:
        for reader in readers:
            results[reader] = _gateway(devices, channels, reader, tmp_path)

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        devices.close()
    offered = channels * RATE
    for reader in readers:
        r = results[reader]
        report(
            f"waveform gateway {channels} ch, {reader} reader: CPU share of one core",
            f"{100 * r['share']:.1f} %",
            f"`isthmus run`, demo configuration; {r['written']:.0f} of {offered:.0f} samples/s "
            f"written, {r['analysed']:.0f}/s analysed, {r['lost']:.0f} lost in "
            f"{WINDOW_S:g} s; device process {100 * r['device_share']:.1f} %",
        )
    report(
        f"waveform gateway {channels} ch: CPU share, pymodbus reader / Rust reader",
        f"{results['pymodbus']['share'] / results['rust']['share']:.1f}x",
        "same run, same devices",
    )
    assert results["rust"]["lost"] == 0
    assert results["rust"]["written"] >= 0.9 * offered
