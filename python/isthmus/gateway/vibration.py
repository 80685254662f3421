"""Edge vibration analysis of one asset: rings in, features, severity and diagnosis out.

Each channel reads the :class:`isthmus.SampleRing` its source session writes
into, through a reader the monitor owns. :meth:`VibrationMonitor.process` drains
the readers, feeds the Rust analyzers (spectral features and velocity RMS per
frame, envelope analysis for the bearing) and returns one
:class:`VibrationResult` per call that completed at least one frame. It runs in
a worker thread (``asyncio.to_thread``): the Rust side releases the GIL, so the
event loop keeps polling while the DSP runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isthmus.gateway import diagnosis
from isthmus.gateway.config import Asset, VibrationSection

G = 9.80665  # m/s^2 per g
# Octave-wide bands (Hz) whose RMS goes into the features message.
BANDS = ((10.0, 1000.0), (1000.0, 2000.0), (2000.0, 4000.0), (4000.0, 8000.0))


@dataclass
class ChannelState:
    """One accelerometer: its ring, our reader, its analyzers and loss totals."""

    name: str
    unit: str
    ring: Any
    reader: Any
    spectrum: Any
    envelope: diagnosis.BearingMonitor | None
    lost_overrun: int = 0
    lost_gap: int = 0
    frames: int = 0
    invalid_frames: int = 0


@dataclass
class VibrationResult:
    """What the newest analysed frame of an asset says (the worst channel wins).

    ``velocity_rms`` mm/s RMS over the configured band (ISO 20816-3); ``zone`` A-D;
    ``diagnosis`` the bearing fault (``"none"``, ``"outer_race"``, ...) with its
    ``score_db`` and matched ``frequency_hz``; ``features`` the figures rules may watch.
    """

    time: float
    channel: str
    velocity_rms: float
    zone: str
    diagnosis: str
    score_db: float
    frequency_hz: float
    features: dict[str, float]
    bands: dict[str, float] = field(default_factory=dict)
    peaks: list[tuple[float, float]] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    columns: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    frames: int = 0
    dsp_seconds: float = 0.0
    #: Why ``diagnosis`` is no analysis result (no shaft speed, no envelope frame yet,
    #: no bearing configured); None: the envelope analyzer said so.
    diagnosis_missing: str | None = None


class VibrationMonitor:
    """Rings, readers and analyzers of one asset's vibration channels."""

    def __init__(self, asset: Asset, rings: dict[str, Any]) -> None:
        """``rings``: waveform reference (``"<source>.<name>"``) -> the ring its session fills."""
        vib = asset.vibration
        assert vib is not None
        self.asset = asset.name
        self.config: VibrationSection = vib
        self.machine_group = asset.machine_group
        self.foundation = asset.foundation
        self.channels: list[ChannelState] = []
        for channel in vib.channels:
            ring = rings[channel.waveform]
            self.channels.append(
                ChannelState(
                    name=channel.name,
                    unit=channel.unit,
                    ring=ring,
                    reader=ring.reader(),
                    spectrum=diagnosis.core("SpectrumAnalyzer")(
                        vib.sample_rate,
                        frame=vib.frame,
                        hop=vib.hop,
                        window="hann",
                        channels=1,
                        bands=bands_for(vib.sample_rate),
                        peaks=5,
                        velocity_band=vib.band,
                        accel_units=channel.unit,
                    ),
                    envelope=(
                        diagnosis.BearingMonitor(
                            vib.bearing, vib.sample_rate, envelope_frame(vib), vib.envelope_average
                        )
                        if vib.bearing
                        else None
                    ),
                )
            )
        # Shaft speed (Hz) from the speed tag; the fault frequencies scale with it.
        self.shaft_hz: float | None = None

    def lag(self) -> list[int]:
        """Samples written but not yet read, per channel."""
        return [int(c.ring.written) - int(c.reader.position) for c in self.channels]

    def process(self) -> VibrationResult | None:
        """Drain the rings and analyse; None until a new whole frame has arrived."""
        started = time.perf_counter()
        worst: VibrationResult | None = None
        for channel in self.channels:
            result = self._process_channel(channel)
            if result is not None and (worst is None or _severity(result) > _severity(worst)):
                worst = result
        if worst is not None:
            worst.dsp_seconds = time.perf_counter() - started
        return worst

    def _process_channel(self, channel: ChannelState) -> VibrationResult | None:
        vib = self.config
        newest: Any = None
        frames_done = 0
        last_time = 0.0
        while True:  # a read stops at a declared gap: read on until the ring is drained
            read = channel.reader.read()
            channel.lost_overrun += int(read.lost_overrun)
            channel.lost_gap += int(read.lost_gap)
            n = len(read)
            if n == 0:
                break
            samples = np.asarray(read.samples)[0]
            last_time = float(read.start_time) + n / vib.sample_rate
            batch = channel.spectrum.feed(samples)
            if channel.envelope is not None:
                channel.envelope.feed(samples, self.shaft_hz)
            if len(batch) > 0:
                newest = batch
                frames_done += len(batch)
                channel.invalid_frames += int(np.count_nonzero(~np.asarray(batch.valid)))
        channel.frames += frames_done
        if newest is None:
            return None
        last = len(newest) - 1
        if not bool(np.asarray(newest.valid)[last]):
            return None
        scale = G if channel.unit == "m/s^2" else 1.0  # rules speak of g

        def col(name: str) -> float:
            return float(np.asarray(getattr(newest, name)).reshape(len(newest), -1)[last, 0])

        velocity = col("velocity_rms_mm_s")  # the analyzer integrates each frame (ISO band)
        zone = diagnosis.iso_zone(velocity, self.machine_group, self.foundation)
        features = {
            "velocity_rms": velocity,
            "acceleration_rms": col("rms") / scale,
            "acceleration_peak": col("peak") / scale,
            "crest_factor": col("crest_factor"),
            "kurtosis": col("kurtosis"),
        }
        band_rms = np.asarray(newest.band_rms).reshape(len(newest), -1)[last]
        bands = {
            f"{lo:g}-{hi:g}Hz": float(v)
            for (lo, hi), v in zip(bands_for(vib.sample_rate), band_rms, strict=False)
        }
        freqs = np.asarray(newest.peak_freqs).reshape(len(newest), -1)[last]
        amps = np.asarray(newest.peak_amps).reshape(len(newest), -1)[last]
        peaks = [(float(f), float(a)) for f, a in zip(freqs, amps, strict=True) if a > 0]
        verdict = diagnosis.Verdict.none()
        missing: str | None = "no bearing configured"
        if channel.envelope is not None:
            if self.shaft_hz is None:
                missing = "no shaft speed"
            elif not channel.envelope.latest:
                missing = "no envelope frame yet"
            else:
                missing = None
            verdict = channel.envelope.verdict()
            features.update({f"{k}_score": v for k, v in verdict.scores.items()})
        return VibrationResult(
            time=last_time,
            channel=channel.name,
            velocity_rms=velocity,
            zone=zone,
            diagnosis=verdict.fault,
            score_db=verdict.score_db,
            frequency_hz=verdict.frequency_hz,
            features=features,
            bands=bands,
            peaks=peaks,
            scores=verdict.scores,
            columns=verdict.columns,
            evidence=verdict.evidence,
            frames=frames_done,
            diagnosis_missing=missing,
        )


def bands_for(sample_rate: float) -> list[tuple[float, float]]:
    """The feature bands below Nyquist."""
    return [(lo, hi) for lo, hi in BANDS if hi < sample_rate / 2]


def envelope_frame(vib: VibrationSection) -> int:
    """Envelope frame length: configured, or the power of two nearest 0.64 s of samples."""
    if vib.envelope_frame is not None:
        return vib.envelope_frame
    return int(2 ** round(math.log2(vib.sample_rate * 0.64)))


def _severity(result: VibrationResult) -> tuple[bool, float, float]:
    return (result.diagnosis != "none", result.velocity_rms, result.score_db)
