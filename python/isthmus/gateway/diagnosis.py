"""Diagnostics glue: bearing monitor, ISO zones and alert rules for one asset.

The physics lives in the Rust core (``isthmus`` diagnostics: bearing geometry,
envelope analysis, ISO 20816-3 zones); this module feeds it per asset and turns
its findings into the UNS messages (:class:`isthmus.uns.models.Alert`,
:class:`~isthmus.uns.models.VibrationFeatures`).

Alert rules follow the configuration (:class:`isthmus.gateway.config.Rule`):
each rule is a small state machine with hysteresis and persistence, so a steady
condition raises once and clears once (no alert storms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import isthmus
from isthmus.gateway.config import Asset, Rule

if TYPE_CHECKING:
    from isthmus.gateway.pipeline import AssetRuntime
    from isthmus.gateway.vibration import VibrationResult

ZONES = "ABCD"
# What the data product calls each fault type of the envelope analysis.
_PRODUCT_LABELS = {"none": "normal", "ball": "rolling_element"}
_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}


def iso_zone(velocity_mm_s: float, group: int, foundation: str) -> str:
    """ISO 20816-3 zone (A-D) of a velocity RMS in mm/s."""
    return str(isthmus.iso20816_zone(velocity_mm_s, group=group, foundation=foundation))


def product_label(fault: str) -> str:
    """The data product's spelling of a diagnosis (``normal``, ``outer_race``, ...)."""
    return _PRODUCT_LABELS.get(fault, fault)


@dataclass
class Verdict:
    """The bearing diagnosis now: fault type, its score (dB) and matched frequency (Hz)."""

    fault: str
    score_db: float
    frequency_hz: float
    harmonics: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def none(cls) -> Verdict:
        return cls("none", 0.0, 0.0)


class BearingMonitor:
    """Streaming envelope analysis of one channel against one catalogue bearing."""

    def __init__(self, bearing: str, sample_rate: float, frame: int) -> None:
        self.bearing = bearing
        self.analyzer = isthmus.EnvelopeAnalyzer(sample_rate, bearing=bearing)

    def feed(self, samples: Any, shaft_hz: float | None) -> None:
        """Add samples (g or m/s^2; the envelope is scale-free); shaft speed in Hz."""
        self.analyzer.feed(samples, shaft_hz=shaft_hz)

    def verdict(self) -> Verdict:
        result = self.analyzer.diagnosis()
        scores = {k: float(v) for k, v in dict(result.scores).items()}
        return Verdict(
            fault=str(result.fault),
            score_db=float(result.score_db),
            frequency_hz=float(result.frequency_hz),
            harmonics=int(result.harmonics),
            scores=scores,
            evidence=dict(result.evidence),
        )


@dataclass
class _RuleState:
    rule: Rule
    raised: bool = False
    streak: int = 0
    raised_at: float | None = None
    learned: list[float] = field(default_factory=list)
    learn_started: float | None = None
    mean: float = 0.0
    spread: float = 0.0


class RuleSet:
    """The configured rules of one asset, evaluated once per analysed frame."""

    def __init__(self, asset: Asset) -> None:
        self.asset = asset
        self.states = [_RuleState(rule) for rule in asset.rules]

    def update(
        self,
        features: dict[str, float],
        zone: str | None,
        result: VibrationResult | None,
        when: float,
    ) -> list[Any]:
        """Alerts raised or cleared by this frame (usually none)."""
        alerts: list[Any] = []
        for state in self.states:
            condition = self._condition(state, features, zone, result, when)
            if condition is None:
                continue
            active, value, threshold, unit, detail = condition
            state.streak = state.streak + 1 if active != state.raised else 0
            if state.streak < state.rule.persist:
                continue
            state.streak = 0
            state.raised = active
            if active:
                state.raised_at = when
            alerts.append(self._alert(state, value, threshold, unit, detail, when))
        return alerts

    def _condition(
        self,
        state: _RuleState,
        features: dict[str, float],
        zone: str | None,
        result: VibrationResult | None,
        when: float,
    ) -> tuple[bool, float | None, float | None, str | None, dict[str, Any]] | None:
        rule = state.rule
        if rule.kind == "threshold":
            value = features.get(rule.feature or "")
            if value is None or math.isnan(value):
                return None
            assert rule.raise_at is not None
            clear_at = rule.clear_at if rule.clear_at is not None else rule.raise_at
            active = value >= rule.raise_at if not state.raised else value >= clear_at
            return active, value, rule.raise_at, _unit(rule.feature), {}
        if rule.kind == "baseline":
            value = features.get(rule.feature or "")
            if value is None or math.isnan(value):
                return None
            if state.learn_started is None:
                state.learn_started = when
            if when - state.learn_started < rule.learn_s:
                state.learned.append(value)
                return None
            if state.learned:
                n = len(state.learned)
                state.mean = sum(state.learned) / n
                var = sum((x - state.mean) ** 2 for x in state.learned) / max(n - 1, 1)
                state.spread = max(math.sqrt(var), 1e-9 * max(abs(state.mean), 1.0))
                state.learned = []
            assert rule.raise_at is not None
            z = (value - state.mean) / state.spread
            clear_at = rule.clear_at if rule.clear_at is not None else rule.raise_at
            active = z >= rule.raise_at if not state.raised else z >= clear_at
            return active, z, rule.raise_at, "z", {"baseline_mean": state.mean}
        if rule.kind == "iso_zone":
            if zone is None:
                return None
            assert rule.zone is not None
            active = ZONES.index(zone) >= ZONES.index(rule.zone)
            velocity = features.get("velocity_rms")
            return active, velocity, None, "mm/s", {"zone": zone}
        # bearing: the diagnosis must name a fault scoring above raise_at dB with at least
        # two harmonics; it clears when the score falls below clear_at (default raise_at).
        if result is None:
            return None
        assert rule.raise_at is not None
        clear_at = rule.clear_at if rule.clear_at is not None else rule.raise_at
        limit = rule.raise_at if not state.raised else clear_at
        active = result.diagnosis != "none" and result.score_db >= limit
        detail = {
            "fault": result.diagnosis,
            "frequency_hz": result.frequency_hz,
            "score_db": result.score_db,
            "scores": result.scores,
            "peaks": result.peaks,
            **result.evidence,
        }
        return active, result.score_db, rule.raise_at, "dB", detail

    def _alert(
        self,
        state: _RuleState,
        value: float | None,
        threshold: float | None,
        unit: str | None,
        detail: dict[str, Any],
        when: float,
    ) -> Any:
        from isthmus.uns.models import Alert

        rule = state.rule
        verb = "raised" if state.raised else "cleared"
        text = _describe(self.asset, rule, value, unit, detail, verb)
        fields: dict[str, Any] = {
            "alert_id": f"{self.asset.asset_id}.{rule.name}",
            "state": verb,
            "severity": _SEVERITY[rule.severity],
            "message": text,
            "value": None if value is None else round(float(value), 4),
            "threshold": threshold,
            "unit": unit,
            "raised_at": (
                datetime.fromtimestamp(state.raised_at, UTC) if state.raised_at else None
            ),
        }
        if "evidence" in Alert.__struct_fields__:
            fields["evidence"] = detail
        return Alert(**fields)


def _unit(feature: str | None) -> str | None:
    return {"velocity_rms": "mm/s", "acceleration_rms": "g", "acceleration_peak": "g"}.get(
        feature or "", "dB" if (feature or "").endswith("_score") else None
    )


def _describe(
    asset: Asset,
    rule: Rule,
    value: float | None,
    unit: str | None,
    detail: dict[str, Any],
    verb: str,
) -> str:
    shown = "-" if value is None else f"{value:.3g}{' ' + unit if unit else ''}"
    if rule.kind == "bearing":
        fault = str(detail.get("fault", "none"))
        name = {"outer_race": "BPFO", "inner_race": "BPFI", "ball": "BSF"}.get(fault, fault)
        return (
            f"{asset.name} bearing {asset.vibration.bearing if asset.vibration else ''}: "
            f"{fault.replace('_', ' ')} fault {verb}; {name} "
            f"{float(detail.get('frequency_hz', 0.0)):.1f} Hz at "
            f"{float(detail.get('score_db', 0.0)):.1f} dB over the envelope floor"
        )
    if rule.kind == "iso_zone":
        return f"{asset.name} ISO 20816-3 zone {detail.get('zone')} ({shown}): {rule.name} {verb}"
    return f"{asset.name} {rule.feature} {shown}: {rule.name} {verb}"


def features_message(runtime: AssetRuntime, result: VibrationResult) -> Any:
    """The periodic ``.../vibration`` message of the newest analysed frame."""
    from isthmus.uns.models import SpectralPeak, VibrationFeatures

    vib = runtime.asset.vibration
    assert vib is not None
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
