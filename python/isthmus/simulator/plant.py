"""Simulated pumps: process values, fault schedule and vibration, with ground truth.

A :class:`Pump` owns its truth. Process values (speed, temperature, pressure,
flow) change only when :meth:`Pump.tick` is called (the simulator ticks every
``tick_interval`` seconds), so a test can read the registers and compare with
:meth:`Pump.truth` without racing an update. Vibration is generated on demand
from the global sample index (see :mod:`isthmus.simulator.physics`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from isthmus.simulator.physics import (
    BEARINGS,
    Fault,
    FaultEvent,
    VibrationModel,
    velocity_rms_mm_s,
)


@dataclass
class Truth:
    """What the pump is really doing, in SI-ish base units (rpm, degC, bar, m3/h, g, mm/s)."""

    time: float
    speed_rpm: float
    temperature_c: float
    pressure_bar: float
    flow_m3h: float
    running: bool
    alarm: bool
    run_hours: float
    accel_rms_g: float
    accel_peak_g: float
    velocity_rms_mm_s: float
    faults: dict[str, float]
    fault_frequencies_hz: dict[str, float]
    version: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly) of the truth."""
        return dict(self.__dict__)


@dataclass
class Pump:
    """One pump of a given vendor. ``speed_rpm`` is its nominal running speed."""

    name: str
    vendor: str
    speed_rpm: float = 1797.0
    sample_rate: float = 25600.0
    bearing: str = "SKF 6205"
    schedule: list[FaultEvent] = field(default_factory=list)
    seed: int = 0
    channels: int = 1
    started: float = field(default_factory=time.time)
    waveform_test_pattern: bool = False

    def __post_init__(self) -> None:
        if self.bearing not in BEARINGS:
            raise ValueError(f"pump {self.name!r}: unknown bearing {self.bearing!r}")
        self.vibration = [
            VibrationModel(
                sample_rate=self.sample_rate,
                shaft_hz=self.speed_rpm / 60.0,
                bearing=BEARINGS[self.bearing],
                seed=self.seed * 16 + ch,
            )
            for ch in range(self.channels)
        ]
        self._truth: Truth | None = None
        self._version = 0
        self.tick(self.started)

    # -- faults ---------------------------------------------------------------

    def inject(self, fault: Fault, severity: float = 1.0, start: float | None = None) -> None:
        """Switch ``fault`` on at ``severity`` (0..1), now or ``start`` s after simulator start."""
        when = time.time() - self.started if start is None else start
        self.schedule.append(FaultEvent(fault, when, severity))
        self._apply_faults(time.time())

    def clear_faults(self) -> None:
        """A healthy pump again."""
        self.schedule.clear()
        self._apply_faults(time.time())

    def _apply_faults(self, now: float) -> None:
        elapsed = now - self.started
        active: dict[Fault, float] = {}
        for event in self.schedule:
            if event.start <= elapsed:
                active[event.fault] = max(active.get(event.fault, 0.0), event.severity)
        for model in self.vibration:
            model.faults = active

    # -- process values -------------------------------------------------------

    def tick(self, now: float | None = None) -> Truth:
        """Advance process values and features to ``now`` (Unix s); returns the new truth."""
        now = time.time() if now is None else now
        self._apply_faults(now)
        t = now - self.started
        phase = self.seed * 0.7
        model = self.vibration[0]
        # Features from the last second of the first channel (as a smart sensor would).
        n = int(self.sample_rate)
        start = int(now * self.sample_rate) - n
        accel = model.block(start, n)
        faults = {f.value: s for f, s in model.faults.items()}
        heat = 8.0 * max([0.0, *model.faults.values()])
        self._version += 1
        self._truth = Truth(
            time=now,
            speed_rpm=self.speed_rpm,
            temperature_c=48.0 + heat + 3.0 * math.sin(2 * math.pi * t / 300.0 + phase),
            pressure_bar=4.2 + 0.15 * math.sin(2 * math.pi * t / 47.0 + phase),
            flow_m3h=118.0 + 4.0 * math.sin(2 * math.pi * t / 63.0 + phase),
            running=True,
            alarm=bool(model.faults),
            run_hours=12_000.0 + t / 3600.0,
            accel_rms_g=float(np.sqrt(np.mean(accel**2))),
            accel_peak_g=float(np.max(np.abs(accel))),
            velocity_rms_mm_s=velocity_rms_mm_s(accel, self.sample_rate),
            faults=faults,
            fault_frequencies_hz=model.fault_frequencies(),
            version=self._version,
        )
        return self._truth

    def truth(self) -> Truth:
        """The current ground truth (the values the registers encode right now)."""
        assert self._truth is not None
        return self._truth

    def waveform(self, channel: int, start: int, n: int) -> NDArray[np.float64]:
        """Samples ``start .. start+n`` (global index) of ``channel``, in g.

        With ``waveform_test_pattern`` the samples are a ramp ``(index % 16384)
        * 0.001`` instead, so a test can check that no sample is duplicated,
        dropped without a reported gap, or reordered.
        """
        if self.waveform_test_pattern:
            ramp = np.arange(start, start + n, dtype=np.int64) % 16384
            return ramp.astype(np.float64) * 0.001
        return self.vibration[channel].block(start, n)


__all__ = ["Pump", "Truth"]
