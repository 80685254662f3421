"""Vibration and process physics of a simulated centrifugal pump.

The vibration model is a sum of what an accelerometer on a bearing housing
sees, in g:

* shaft harmonics: 1x and 2x running speed (always present, small);
* imbalance: a rotating force, so a strong 1x;
* misalignment: strong 2x with some 3x (the coupling's bending once per turn twice);
* bearing defects: each time a rolling element hits a spall it rings the
  housing's structural resonance (a decaying sine at ``resonance_hz``). An
  outer-race spall is fixed in the load zone, so impacts come at BPFO with
  constant strength; an inner-race spall turns with the shaft, so impacts come
  at BPFI and are amplitude-modulated once per revolution as the spall passes
  through the load zone (sidebands at BPFI +- 1x in the envelope spectrum);
* broadband sensor and process noise.

Samples are a pure function of the global sample index (time since the Unix
epoch times the sample rate), so blocks generated independently line up
sample for sample and a restarted simulator continues the same signal.
Everything is numpy-vectorised per block: one block of n samples costs a few
array operations of length n.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Bearing:
    """Rolling bearing geometry and its defect frequencies per shaft revolution.

    ``bpfo``/``bpfi``/``bsf``/``ftf`` are multiples of shaft speed (orders).
    """

    name: str
    balls: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0

    def _ratio(self) -> float:
        return (
            self.ball_diameter_mm
            / self.pitch_diameter_mm
            * math.cos(math.radians(self.contact_angle_deg))
        )

    @property
    def bpfo(self) -> float:
        """Ball pass frequency, outer race (orders): n/2 (1 - d/D cos a)."""
        return self.balls / 2.0 * (1.0 - self._ratio())

    @property
    def bpfi(self) -> float:
        """Ball pass frequency, inner race (orders): n/2 (1 + d/D cos a)."""
        return self.balls / 2.0 * (1.0 + self._ratio())

    @property
    def bsf(self) -> float:
        """Ball spin frequency (orders): D/2d (1 - (d/D cos a)^2)."""
        r = self._ratio()
        return self.pitch_diameter_mm / (2.0 * self.ball_diameter_mm) * (1.0 - r * r)

    @property
    def ftf(self) -> float:
        """Fundamental train (cage) frequency (orders): 1/2 (1 - d/D cos a)."""
        return 0.5 * (1.0 - self._ratio())


# SKF 6205 (the CWRU drive-end bearing): 9 balls, 7.94 mm balls on a 39.04 mm
# pitch circle -> BPFO 3.5848x, BPFI 5.4152x.
BEARINGS: dict[str, Bearing] = {
    "SKF 6205": Bearing("SKF 6205", balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04),
    "SKF 6203": Bearing("SKF 6203", balls=8, ball_diameter_mm=6.75, pitch_diameter_mm=28.50),
    "SKF 6312": Bearing("SKF 6312", balls=8, ball_diameter_mm=22.23, pitch_diameter_mm=95.00),
}


class Fault(enum.Enum):
    """Injectable machine faults."""

    IMBALANCE = "imbalance"
    MISALIGNMENT = "misalignment"
    OUTER_RACE = "outer_race"
    INNER_RACE = "inner_race"


@dataclass
class FaultEvent:
    """``fault`` at ``severity`` (0..1) from ``start`` seconds after simulator start."""

    fault: Fault
    start: float = 0.0
    severity: float = 1.0


@dataclass
class VibrationModel:
    """One accelerometer channel on one bearing housing (output in g).

    ``shaft_hz`` is running speed; ``faults`` maps each active fault to its
    severity (0..1). Amplitudes at severity 1 are typical of a clearly faulty
    machine: 0.5 g at 1x for imbalance, 0.4 g at 2x for misalignment, 2 g
    impacts for a bearing spall.
    """

    sample_rate: float
    shaft_hz: float
    bearing: Bearing = BEARINGS["SKF 6205"]
    resonance_hz: float = 3200.0
    damping: float = 0.05
    noise_g: float = 0.02
    seed: int = 0
    faults: dict[Fault, float] = field(default_factory=dict)

    # healthy baseline: small residual imbalance and alignment
    base_1x_g: float = 0.05
    base_2x_g: float = 0.02

    def harmonics(self) -> dict[int, float]:
        """Shaft-harmonic amplitudes (g, peak) by order, faults included."""
        amps = {1: self.base_1x_g, 2: self.base_2x_g, 3: 0.0}
        amps[1] += 0.5 * self.faults.get(Fault.IMBALANCE, 0.0)
        mis = self.faults.get(Fault.MISALIGNMENT, 0.0)
        amps[2] += 0.4 * mis
        amps[3] += 0.15 * mis
        return amps

    def fault_frequencies(self) -> dict[str, float]:
        """Defect frequencies of the configured bearing at the current speed (Hz)."""
        f = self.shaft_hz
        b = self.bearing
        return {"bpfo": b.bpfo * f, "bpfi": b.bpfi * f, "bsf": b.bsf * f, "ftf": b.ftf * f}

    def block(self, start: int, n: int) -> NDArray[np.float64]:
        """Samples ``start .. start + n`` of the global sample index, in g (shape ``(n,)``)."""
        idx = np.arange(start, start + n, dtype=np.int64)
        # Time within a one-hour period keeps float64 phase exact to < 1e-9 rev.
        period = round(3600 * self.sample_rate)
        t = (idx % period) / self.sample_rate
        x = np.zeros(n)
        w = 2 * math.pi * self.shaft_hz
        for order, amp in self.harmonics().items():
            if amp:
                x += amp * np.sin(order * w * t + 0.3 * order)
        freqs = self.fault_frequencies()
        outer = self.faults.get(Fault.OUTER_RACE, 0.0)
        if outer:
            x += 2.0 * outer * self._impacts(t, freqs["bpfo"])
        inner = self.faults.get(Fault.INNER_RACE, 0.0)
        if inner:
            load_zone = 0.5 * (1.0 + np.cos(w * t))
            x += 2.0 * inner * load_zone * self._impacts(t, freqs["bpfi"])
        rng = np.random.default_rng((self.seed, start))
        x += rng.normal(0.0, self.noise_g, n)
        return x

    def _impacts(self, t: NDArray[np.float64], rate_hz: float) -> NDArray[np.float64]:
        """Unit impacts at ``rate_hz`` each ringing the resonance (decaying sine)."""
        tau = np.mod(t, 1.0 / rate_hz)  # time since the last impact
        wn = 2 * math.pi * self.resonance_hz
        wd = wn * math.sqrt(1.0 - self.damping**2)
        return np.exp(-self.damping * wn * tau) * np.sin(wd * tau)


def velocity_rms_mm_s(
    accel_g: NDArray[np.float64], sample_rate: float, band: tuple[float, float] = (10.0, 1000.0)
) -> float:
    """Velocity RMS (mm/s) in ``band`` Hz from acceleration in g, by integration in frequency."""
    n = accel_g.size
    spec = np.fft.rfft(accel_g - accel_g.mean())
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    keep = (freqs >= band[0]) & (freqs <= band[1])
    vel = spec[keep] * 9806.65 / (2j * math.pi * freqs[keep])  # mm/s
    # Parseval over the one-sided spectrum (no DC/Nyquist bins inside the band).
    return float(math.sqrt(2.0 * np.sum(np.abs(vel) ** 2)) / n)


__all__ = ["BEARINGS", "Bearing", "Fault", "FaultEvent", "VibrationModel", "velocity_rms_mm_s"]
