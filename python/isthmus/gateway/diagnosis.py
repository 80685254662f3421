"""Diagnostics glue: bearing monitor, ISO zones and alert rules for one asset.

The physics and the alert logic live in the Rust core (``isthmus`` diagnostics:
bearing catalogue, streaming envelope analysis, ISO 20816-3 zones, the rule
engine with hysteresis and persistence); this module configures them from the
gateway configuration, feeds them per asset, and turns their findings into the
UNS messages (:class:`isthmus.uns.models.Alert`,
:class:`~isthmus.uns.models.VibrationFeatures`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

import isthmus
from isthmus.gateway.config import Asset, Rule, VibrationSection

if TYPE_CHECKING:
    from isthmus.gateway.vibration import VibrationResult

ZONES = "ABCD"
FAULTS = ("outer_race", "inner_race", "ball")
# Envelope figures the core's bearing rule reads, per frame (``fault``: its gate, the
# analyzer's per-frame verdict; NaN until the first envelope frame).
ENVELOPE_COLUMNS = (
    "fault",
    "band_kurtosis",
    *(f"{f}_{k}" for f in FAULTS for k in ("score_db", "harmonics", "hz")),
)
# What the data product calls each fault type of the envelope analysis.
_PRODUCT_LABELS = {"none": "normal", "ball": "rolling_element"}
# Names of the fault frequencies, for people reading an alert.
_FAULT_LINES = {"outer_race": "BPFO", "inner_race": "BPFI", "ball": "BSF"}
_UNITS = {"velocity_rms": "mm/s", "acceleration_rms": "g", "acceleration_peak": "g"}

log = logging.getLogger("isthmus.gateway")


def core(name: str) -> Any:
    """A DSP or diagnostics function or class of the Rust core (``isthmus.<name>``)."""
    return getattr(isthmus, name, None) or getattr(isthmus._core, name)


def iso_zone(velocity_mm_s: float, group: int, foundation: str) -> str:
    """ISO 20816-3 zone (A-D) of a velocity RMS in mm/s."""
    return str(core("iso20816_zone")(velocity_mm_s, group=group, foundation=foundation))


def product_label(fault: str) -> str:
    """The data product's spelling of a diagnosis (``normal``, ``outer_race``, ...)."""
    return _PRODUCT_LABELS.get(fault, fault)


@dataclass
class Verdict:
    """The bearing diagnosis now: fault type, its score (dB) and matched frequency (Hz).

    ``columns`` are the envelope analyzer's figures of the newest frame, named as the
    rule engine expects them (``outer_race_score_db``, ``band_kurtosis``, ...).
    """

    fault: str
    score_db: float
    frequency_hz: float
    harmonics: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    columns: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def none(cls) -> Verdict:
        return cls("none", 0.0, 0.0)


class BearingMonitor:
    """Streaming envelope analysis of one channel against one catalogue bearing.

    The analyzer needs the shaft speed, so it starts with the first speed reading
    and follows later ones (the fault frequencies scale with it).
    """

    def __init__(self, bearing: str, sample_rate: float, frame: int, average: int) -> None:
        self.bearing = bearing
        self.sample_rate = sample_rate
        self.frame = frame
        self.average = average
        self.analyzer: Any = None
        self.latest: dict[str, float] = {}

    def feed(self, samples: Any, shaft_hz: float | None) -> int:
        """Add samples (g or m/s^2; the envelope is scale-free); returns frames completed."""
        if shaft_hz is None or not shaft_hz > 0:
            return 0
        rpm = shaft_hz * 60.0
        if self.analyzer is None:
            self.analyzer = core("EnvelopeAnalyzer")(
                self.sample_rate,
                rpm,
                bearing=self.bearing,
                frame=self.frame,
                average=self.average,
            )
        columns = self.analyzer.feed(np.ascontiguousarray(samples, dtype=np.float64), rpm=rpm)
        frames = len(columns["score_db"])
        if frames:
            self.latest = {k: float(np.asarray(v)[-1]) for k, v in columns.items()}
        return frames

    def verdict(self) -> Verdict:
        if self.analyzer is None or not self.latest:
            return Verdict.none()
        found = self.analyzer.diagnose()
        fault = str(found["fault"])
        series = found["series"]
        return Verdict(
            fault=fault,
            score_db=float(found["score_db"]),
            frequency_hz=float(found["frequency_hz"]),
            harmonics=int(found["harmonics"]),
            scores={k: float(v["score_db"]) for k, v in series.items()},
            columns=dict(self.latest),
            evidence={
                "band_hz": list(found["band_hz"]),
                "band_kurtosis": float(found["band_kurtosis"]),
                "shaft_hz": float(found["shaft_hz"]),
                "expected_hz": {k: float(v["expected_hz"]) for k, v in series.items()},
                "peaks": [list(p) for p in found["peaks"]],
            },
        )


class RuleSet:
    """The configured rules of one asset in the core's rule engine (hysteresis, persistence).

    :meth:`update` evaluates one row of features per analysed frame; a steady
    condition raises once and clears once.
    """

    def __init__(self, asset: Asset) -> None:
        self.asset = asset
        self.rules = {rule.name: rule for rule in asset.rules}
        self.engine = core("RuleEngine")(asset.name)
        for rule in asset.rules:
            frames = {
                "severity": rule.severity,
                "raise_frames": rule.persist,
                "clear_frames": rule.persist,
            }
            if rule.kind == "threshold":
                assert rule.feature is not None and rule.raise_at is not None
                self.engine.add_threshold(
                    rule.name, rule.feature, rule.raise_at, rule.clear_at, **frames
                )
            elif rule.kind == "baseline":
                assert rule.feature is not None and rule.raise_at is not None
                z_clear = rule.clear_at if rule.clear_at is not None else rule.raise_at / 2
                self.engine.add_baseline(
                    rule.name,
                    rule.feature,
                    learn_frames=1,
                    learn_seconds=rule.learn_s,
                    z_raise=rule.raise_at,
                    z_clear=z_clear,
                    **frames,
                )
            elif rule.kind == "iso_zone":
                assert rule.zone is not None
                self.engine.add_zone_change(rule.name, "iso_zone", raise_zone=rule.zone, **frames)
            else:
                assert rule.raise_at is not None
                self.engine.add_bearing(
                    rule.name, k_db=rule.raise_at, clear_db=rule.clear_at, min_harmonics=2, **frames
                )

    def update(
        self,
        features: dict[str, float],
        zone: str | None,
        result: VibrationResult | None,
        when: float,
    ) -> list[Any]:
        """UNS alerts raised or cleared by this frame (usually none)."""
        if not self.rules:
            return []
        row = {k: float(v) for k, v in features.items()}
        if zone is not None:
            row["iso_zone"] = float(ZONES.index(zone))
        if result is not None:
            # Until the envelope has a frame its figures are unknown (NaN), not zero.
            row.update(dict.fromkeys(ENVELOPE_COLUMNS, float("nan")))
            row.update(result.columns)
        columns = {k: np.array([v], dtype=np.float64) for k, v in row.items()}
        events = self.engine.evaluate(np.array([when], dtype=np.float64), columns)
        return [self._alert(event) for event in events]

    def _alert(self, event: Any) -> Any:
        from isthmus.uns.models import Alert

        rule = self.rules[event.rule]
        evidence = dict(event.evidence)
        fields: dict[str, Any] = {
            "alert_id": f"{self.asset.asset_id}.{rule.name}",
            "state": str(event.state),
            "severity": rule.severity,
            "message": _describe(self.asset, rule, event, evidence),
            "value": _finite(event.value),
            "threshold": _finite(event.threshold) if rule.kind != "iso_zone" else None,
            "unit": _unit(rule, evidence),
            "raised_at": datetime.fromtimestamp(float(event.first_time), UTC),
        }
        fields["evidence"] = alert_evidence(evidence, fields["alert_id"])
        return Alert(**fields)


def alert_evidence(evidence: Mapping[str, Any], alert_id: str = "alert") -> Any:
    """The rule engine's evidence (``isthmus.Alert.evidence``) as a UNS ``AlertEvidence``.

    Non-finite figures become absent (JSON has no NaN); ``harmonics`` (a float in the
    core) becomes a count. An entry the model rejects is left out and logged, so the
    alert itself is never lost to its evidence.
    """
    import msgspec

    from isthmus.uns.models import AlertEvidence

    def finite(value: Any) -> bool:
        return not (isinstance(value, float) and not math.isfinite(value))

    data: dict[str, Any] = {k: v for k, v in evidence.items() if finite(v)}
    if "harmonics" in data:
        data["harmonics"] = int(data["harmonics"])
    if "peaks" in data:
        data["peaks"] = [p for p in data["peaks"] if all(finite(v) for v in p.values())]
    try:
        return msgspec.convert(data, type=AlertEvidence)
    except msgspec.ValidationError:
        kept = {}
        for key, value in data.items():
            try:
                msgspec.convert({key: value}, type=AlertEvidence)
            except msgspec.ValidationError as exc:
                log.warning("%s: evidence %s=%r left out: %s", alert_id, key, value, exc)
            else:
                kept[key] = value
        return msgspec.convert(kept, type=AlertEvidence)


def _finite(value: Any) -> float | None:
    number = float(value)
    return round(number, 4) if np.isfinite(number) else None


def _unit(rule: Rule, evidence: dict[str, Any]) -> str | None:
    if rule.kind == "bearing":
        return "dB"
    if rule.kind == "iso_zone":
        return "mm/s"
    if rule.kind == "baseline":
        return "z"
    return _UNITS.get(rule.feature or "", "dB" if (rule.feature or "").endswith("_score") else None)


def _describe(asset: Asset, rule: Rule, event: Any, evidence: dict[str, Any]) -> str:
    verb = str(event.state)
    if rule.kind == "bearing":
        fault = str(evidence.get("fault", "bearing"))
        line = _FAULT_LINES.get(fault, fault)
        bearing = asset.vibration.bearing if asset.vibration else ""
        return (
            f"{asset.name} bearing {bearing}: {fault.replace('_', ' ')} fault {verb}; {line} "
            f"{float(evidence.get('frequency_hz', float('nan'))):.1f} Hz at "
            f"{float(evidence.get('score_db', float('nan'))):.1f} dB over the envelope floor, "
            f"{int(evidence.get('harmonics', 0))} harmonics"
        )
    if rule.kind == "iso_zone":
        return f"{asset.name} ISO 20816-3 zone {evidence.get('zone')}: {rule.name} {verb}"
    value = float(event.value)
    return f"{asset.name} {rule.feature} {value:.3g}: {rule.name} {verb}"


def features_message(vib: VibrationSection, result: VibrationResult) -> Any:
    """The periodic ``.../vibration`` message of the newest analysed frame."""
    from isthmus.uns.models import SpectralPeak, VibrationFeatures

    features = result.features
    return VibrationFeatures(
        channel=result.channel,
        sample_rate_hz=vib.sample_rate,
        window_s=vib.frame / vib.sample_rate,
        velocity_rms_mm_s=round(result.velocity_rms, 4),
        acceleration_rms_m_s2=round(features["acceleration_rms"] * 9.80665, 5),
        crest_factor=round(features["crest_factor"], 3),
        kurtosis=round(features["kurtosis"], 3),
        bands={k: round(v, 6) for k, v in result.bands.items()},
        peaks=[SpectralPeak(frequency_hz=round(f, 2), amplitude=a) for f, a in result.peaks],
        fault_scores={k: round(v, 2) for k, v in result.scores.items()},
    )
