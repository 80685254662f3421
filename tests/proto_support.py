"""Helpers for the protocol tests: free loopback ports, a simulator subprocess, waiting."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for(predicate: Callable[[], bool], within: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``within`` s passed; returns its last value."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


class SimulatorProcess:
    """``isthmus simulate`` in a subprocess (so a test can SIGKILL it)."""

    def __init__(self, *args: str) -> None:
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "isthmus.cli", "simulate", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=Path(__file__).parent,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "isthmus simulate: ready" in line:
                # keep draining so a chatty server never blocks on a full pipe
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.kill()
        raise RuntimeError("simulator did not start:\n" + "".join(lines))

    def _drain(self) -> None:
        proc = self.proc
        if proc is not None and proc.stdout is not None:
            for _ in proc.stdout:
                pass

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


def ramp_index(samples: np.ndarray) -> np.ndarray:
    """Sample index (mod 16384) of the simulator's test-pattern ramp."""
    return np.rint(np.asarray(samples, dtype=np.float64).reshape(-1) / 0.001).astype(np.int64)


def drain_and_check_ramp(reader: object) -> tuple[int, int]:
    """Read a ring fed with the simulator's ramp; check every sample sits at its index.

    Returns (samples read, gap samples skipped). The ramp value of a sample is
    its global index mod 16384, so once the first one is known each later
    sample's value follows from its ring index: a duplicated, reordered or
    silently dropped sample would break that.
    """
    first_index = first_value = None
    total = gaps = 0
    while True:
        chunk = reader.read()  # type: ignore[attr-defined]
        gaps += chunk.lost_gap
        assert chunk.lost_overrun == 0
        if len(chunk) == 0:
            if reader.available == 0:  # type: ignore[attr-defined]
                return total, gaps
            continue
        idx = ramp_index(chunk.samples)
        if first_index is None:
            first_index, first_value = chunk.start_index, int(idx[0])
        expected = (first_value + np.arange(len(chunk)) + chunk.start_index - first_index) % 16384
        assert np.array_equal(idx, expected)
        total += len(chunk)
