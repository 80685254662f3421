"""Synthetic bearing signals with known faults, shared by the diagnostics tests and benches."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

import isthmus

ORDERS = isthmus.bearing("SKF 6205-2RS JEM")["orders"]


def impacts(
    fault_hz: float,
    *,
    fs: float = 12000.0,
    seconds: float = 10.0,
    amplitude: float = 2.0,
    resonance_hz: float = 3300.0,
    damping: float = 0.05,
    modulation_hz: float = 0.0,
    modulation_depth: float = 0.0,
    slip_jitter: float = 0.01,
    noise_rms: float = 0.5,
    shaft_hz: float = 30.0,
    seed: int = 0,
) -> npt.NDArray[np.float64]:
    """Impacts of peak ``amplitude`` (g) at ``fault_hz`` (random +/- jitter: rolling elements
    slip) each ringing a
    structural resonance, amplitude-modulated at ``modulation_hz`` (load zone passing), plus
    Gaussian noise and shaft-speed harmonics like any rotating machine shows."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = np.zeros(n)
    ring_len = int(fs * 8.0 / (damping * 2 * np.pi * resonance_hz))
    tr = np.arange(ring_len) / fs
    ring = np.exp(-damping * 2 * np.pi * resonance_hz * tr) * np.sin(2 * np.pi * resonance_hz * tr)
    period = 1.0 / fault_hz
    when = period * np.arange(int(seconds * fault_hz))
    when = when + rng.normal(0.0, slip_jitter * period, when.size)
    for tk in when:
        k = round(float(tk) * fs)
        if k < 0 or k >= n:
            continue
        amp = amplitude * (1.0 + modulation_depth * np.cos(2 * np.pi * modulation_hz * tk))
        m = min(ring_len, n - k)
        x[k : k + m] += amp * ring[:m]
    x += noise_rms * rng.standard_normal(n)
    for h, a in ((1, 0.03), (2, 0.01), (3, 0.005)):
        x += a * np.sin(2 * np.pi * h * shaft_hz * t + h)
    return x


def healthy(
    *, fs: float = 12000.0, seconds: float = 10.0, shaft_hz: float = 30.0, seed: int = 1
) -> npt.NDArray[np.float64]:
    """Gaussian noise plus shaft harmonics: a machine without bearing damage."""
    rng = np.random.default_rng(seed)
    n = int(fs * seconds)
    t = np.arange(n) / fs
    x = 0.5 * rng.standard_normal(n)
    for h, a in ((1, 0.03), (2, 0.01), (3, 0.005)):
        x += a * np.sin(2 * np.pi * h * shaft_hz * t + h)
    return x
