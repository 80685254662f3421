"""Shared pieces of the gateway tests: a simulated plant and a gateway run with a bound."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import isthmus

# ISO 20816-3 zone boundaries for machine group 2 on a rigid foundation (mm/s), as the
# standard's table gives them: an oracle independent of the code under test.
GROUP2_RIGID = (1.4, 2.8, 4.5)
# Simulator and gateway share one process (and its event loop) in these tests, on a
# machine shared with other jobs: 12.8 kHz (107 block reads/s) keeps the waveform stream
# gap-free there, with the same bearing physics (resonance 3.2 kHz, BPFO ~176 Hz).
SAMPLE_RATE = 12800.0
HAS_DSP = all(hasattr(isthmus._core, n) for n in ("SpectrumAnalyzer", "EnvelopeAnalyzer"))
NEEDS_DSP_REASON = "the spectrum/diagnostics bindings are not built into this checkout yet"


def zone_of(velocity: float, bounds: tuple[float, float, float] = GROUP2_RIGID) -> str:
    for letter, bound in zip("ABC", bounds, strict=True):
        if velocity < bound:
            return letter
    return "D"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def plant(
    tick_interval: float = 0.0, sample_rate: float = SAMPLE_RATE
) -> AsyncIterator[tuple[Any, dict[str, int]]]:
    """P-101 (acme, features) and P-102 (bravo, raw waveform) on free loopback ports.

    ``tick_interval=0`` freezes the process values (call ``sim.tick()`` to move them),
    so decoded values can be compared with the truth exactly.
    """
    from isthmus.gateway.demo import DEMO_PUMPS
    from isthmus.simulator import PumpConfig, Simulator

    ports = {name: free_port() for name, _, _ in DEMO_PUMPS}
    sim = Simulator(
        [PumpConfig(name, vendor, rpm, ports[name]) for name, vendor, rpm in DEMO_PUMPS],
        opcua_port=None,
        tick_interval=tick_interval,
        sample_rate=sample_rate,
    )
    async with sim:
        yield sim, ports


@contextlib.asynccontextmanager
async def running(gateway: Any, stop_timeout: float = 20.0) -> AsyncIterator[Any]:
    """Run ``gateway`` in this loop; stop it (bounded) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop), name="gateway-under-test")
    try:
        yield gateway
    finally:
        stop.set()
        # asyncio.wait, not asyncio.timeout: a gateway that ignored cancellation would
        # hold a timeout forever; this bound holds whatever the gateway does.
        done, _ = await asyncio.wait({task}, timeout=stop_timeout)
        assert done, f"the gateway did not stop within {stop_timeout} s"
        task.result()


async def wait_until(predicate: Callable[[], bool], limit_s: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s; AssertionError naming ``what`` after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.1)


def envelope(payload: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(payload)
    return data


def isthmus_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    """``isthmus ARGS`` as a child process (its own process group), output captured."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "isthmus.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def terminate(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str, str]:
    """SIGTERM and wait (bounded); returns exit code, stdout, stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"gateway ignored SIGTERM for {timeout} s:\n{err[-3000:]}") from None
    return proc.returncode, out, err


def outbox_rows(path: Path) -> list[tuple[int, str, str]]:
    """(seq, topic, message_id) of what an outbox file holds (read by a second connection)."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT seq, topic, message_id FROM outbox ORDER BY seq").fetchall()
    finally:
        db.close()
    return [(int(s), str(t), str(m)) for s, t, m in rows]
