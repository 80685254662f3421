"""Edge vibration analysis of one asset: rings in, features, severity and diagnosis out.

Each channel has its own :class:`isthmus.SampleRing` (the source writes into it)
and a reader the monitor owns. :meth:`VibrationMonitor.process` drains the
readers, feeds the Rust analyzers and returns one :class:`VibrationResult` per
analysed hop. It runs in a worker thread (``asyncio.to_thread``): the Rust side
releases the GIL, so the event loop keeps polling while the DSP runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isthmus.gateway import contracts
from isthmus.gateway.config import Asset, VibrationSection

# Rings hold this many seconds of samples: enough for the DSP task to fall behind
# by several hops (a slow event loop, a GC pause) without overrun.
RING_SECONDS = 4.0
G = 9.80665  # m/s^2 per g


@dataclass
class ChannelState:
    """One accelerometer: its ring, our reader and its running loss totals."""

    name: str
    unit: str
    ring: Any
    reader: Any
    spectrum: Any
    envelope: Any | None
    lost_overrun: int = 0
    lost_gap: int = 0
    frames: int = 0
    invalid_frames: int = 0


@dataclass
class VibrationResult:
    """What one analysed hop of an asset says (the worst channel wins).

    ``velocity_rms`` mm/s RMS over the configured band; ``zone`` ISO 20816-3 A-D;
    ``diagnosis`` the bearing fault type or ``"none"``, with ``score_db`` and the
    matched ``frequency_hz``; ``features`` the per-frame figures rules may watch.
    """

    time: float
    velocity_rms: float
    zone: str
    diagnosis: str
    score_db: float
    frequency_hz: float
    features: dict[str, float]
    scores: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    frames: int = 0
    dsp_seconds: float = 0.0


class VibrationMonitor:
    """Rings, readers and analyzers of one asset's vibration channels."""

    def __init__(self, asset: Asset) -> None:
        vib = asset.vibration
        assert vib is not None
        self.asset = asset.name
        self.config: VibrationSection = vib
        self.machine_group = asset.machine_group
        self.foundation = asset.foundation
        capacity = 1 << math.ceil(math.log2(max(vib.frame * 2, vib.sample_rate * RING_SECONDS)))
        self.channels: list[ChannelState] = []
        for channel in vib.channels:
            ring = contracts.sample_ring(1, capacity, vib.sample_rate)
            self.channels.append(
                ChannelState(
                    name=channel.name,
                    unit=channel.unit,
                    ring=ring,
                    reader=ring.reader(),
                    spectrum=contracts.spectrum_analyzer(vib),
                    envelope=contracts.envelope_analyzer(vib) if vib.bearing else None,
                )
            )
        self.shaft_hz: float | None = None

    def ring_for(self, waveform: str) -> Any:
        """The ring fed by ``waveform`` (``"<source>.<name>"``); KeyError if none."""
        for channel, cfg in zip(self.channels, self.config.channels, strict=True):
            if cfg.waveform == waveform:
                return channel.ring
        raise KeyError(waveform)

    def lag(self) -> dict[str, int]:
        """Samples written but not yet read, per channel."""
        return {c.name: int(c.ring.written) - int(c.reader.position) for c in self.channels}

    def process(self) -> VibrationResult | None:
        """Drain the rings and analyse; None until a whole frame has arrived."""
        started = time.perf_counter()
        vib = self.config
        worst: VibrationResult | None = None
        for channel in self.channels:
            read = channel.reader.read()
            channel.lost_overrun += int(read.lost_overrun)
            channel.lost_gap += int(read.lost_gap)
            samples = np.asarray(read.samples)
            if samples.shape[-1] == 0:
                continue
            frames = channel.spectrum.feed(samples)
            n_frames = contracts.frame_count(frames)
            if channel.envelope is not None:
                contracts.envelope_feed(channel.envelope, samples, self.shaft_hz)
            if n_frames == 0:
                continue
            channel.frames += n_frames
            channel.invalid_frames += contracts.invalid_frames(frames)
            if int(channel.ring.written) < vib.frame:
                continue
            latest = np.asarray(channel.ring.latest(vib.frame))[0]
            if not np.all(np.isfinite(latest)):
                continue
            velocity = contracts.velocity_rms(latest, vib.sample_rate, vib.band, channel.unit)
            zone = contracts.iso_zone(velocity, self.machine_group, self.foundation)
            features = contracts.frame_features(frames)
            features["velocity_rms"] = velocity
            if channel.unit == "m/s2":  # rules speak of g whatever the sensor's unit
                for key in ("acceleration_rms", "acceleration_peak"):
                    if key in features:
                        features[key] /= G
            diagnosis: dict[str, Any] = {"fault": "none", "score_db": 0.0, "frequency_hz": 0.0}
            scores: dict[str, float] = {}
            evidence: dict[str, Any] = {}
            if channel.envelope is not None:
                diagnosis, scores, evidence = contracts.envelope_diagnosis(channel.envelope)
                features.update({f"{k}_score": v for k, v in scores.items()})
            result = VibrationResult(
                time=float(read.start_time) + samples.shape[-1] / vib.sample_rate,
                velocity_rms=velocity,
                zone=zone,
                diagnosis=str(diagnosis["fault"]),
                score_db=float(diagnosis["score_db"]),
                frequency_hz=float(diagnosis["frequency_hz"]),
                features=features,
                scores=scores,
                evidence=evidence,
                frames=n_frames,
            )
            if worst is None or _severity(result) > _severity(worst):
                worst = result
        if worst is not None:
            worst.dsp_seconds = time.perf_counter() - started
        return worst


def _severity(result: VibrationResult) -> tuple[int, float, float]:
    return (result.diagnosis != "none", result.velocity_rms, result.score_db)
