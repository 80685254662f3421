"""Rule engine: hysteresis, persistence, baselines, ISO zones, bearing scores; no storms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isthmus


def times(n: int, dt: float = 1.0, t0: float = 1000.0) -> np.ndarray:
    return t0 + dt * np.arange(n, dtype=np.float64)


def test_threshold_hysteresis_and_persistence() -> None:
    e = isthmus.RuleEngine("pump-1")
    e.add_threshold("vib-high", "rms", 10.0, 8.0, raise_frames=3, clear_frames=2)
    v = np.array([1, 11, 12, 9, 11, 12, 13, 9, 11, 9.5, 7, 7, 7], dtype=np.float64)
    ev = e.evaluate(times(v.size), {"rms": v})
    assert [a.state for a in ev] == ["raised", "cleared"]
    raised, cleared = ev
    assert raised.id == cleared.id
    assert raised.first_time == 1004.0 and raised.last_time == 1006.0
    assert cleared.last_time == 1011.0
    assert raised.value == 13.0 and raised.threshold == 10.0
    assert raised.asset == "pump-1" and raised.rule == "vib-high"
    assert raised.evidence["feature"] == "rms"


def test_persistence_in_seconds() -> None:
    e = isthmus.RuleEngine("a")
    e.add_threshold("hot", "temp", 80.0, 75.0, raise_seconds=5.0, clear_seconds=5.0)
    v = np.array([70, 85, 85, 85, 85, 85, 85, 85, 70, 70, 70, 70, 70, 70, 70], dtype=np.float64)
    ev = e.evaluate(times(v.size, dt=2.0, t0=0.0), {"temp": v})
    assert [(a.state, a.last_time) for a in ev] == [("raised", 8.0), ("cleared", 22.0)]


def test_below_threshold_rule() -> None:
    e = isthmus.RuleEngine("a")
    e.add_threshold("low-flow", "flow", 5.0, 6.0, above=False, raise_frames=2)
    v = np.array([10, 4, 4, 5.5, 7], dtype=np.float64)
    ev = e.evaluate(times(v.size), {"flow": v})
    assert [a.state for a in ev] == ["raised", "cleared"]


@settings(max_examples=30, deadline=None)
@given(
    level=st.floats(min_value=20, max_value=50),
    noise=st.floats(min_value=0.0, max_value=1.9),
    seed=st.integers(0, 2**16),
)
def test_steady_fault_raises_once_and_clears_once(level: float, noise: float, seed: int) -> None:
    """A noisy but steady excursion (noise within the hysteresis gap) never storms."""
    rng = np.random.default_rng(seed)
    v = np.concatenate([np.full(50, 5.0), np.full(200, level), np.full(50, 5.0)])
    v = v + rng.uniform(-noise, noise, v.size)
    e = isthmus.RuleEngine("a")
    e.add_threshold("r", "x", 12.0, 8.0, raise_frames=2, clear_frames=2)
    ev = e.evaluate(times(v.size), {"x": v})
    assert [a.state for a in ev] == ["raised", "cleared"]


def test_streaming_in_pieces_equals_one_call() -> None:
    rng = np.random.default_rng(7)
    v = np.abs(np.cumsum(rng.normal(0, 1, 500)))
    t = times(v.size)

    def run(pieces: int) -> list[dict[str, object]]:
        e = isthmus.RuleEngine("a")
        e.add_threshold("r", "x", 10.0, 7.0, raise_frames=3, clear_frames=3)
        e.add_baseline("b", "x", learn_frames=50, z_raise=3.0, z_clear=1.0)
        out = []
        for idx in np.array_split(np.arange(v.size), pieces):
            out += [a.to_dict() for a in e.evaluate(t[idx], {"x": v[idx]})]
        return out

    assert run(1) == run(7) == run(50)


def test_baseline_learns_then_scores() -> None:
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(2.0, 0.1, 100), rng.normal(3.0, 0.1, 20)])
    e = isthmus.RuleEngine("motor-7")
    e.add_baseline("rms-drift", "rms", learn_frames=100, z_raise=5.0, z_clear=2.0)
    ev = e.evaluate(times(v.size), {"rms": v})
    assert len(ev) == 1 and ev[0].state == "raised"
    assert ev[0].first_time == 1100.0
    assert ev[0].evidence["z_score"] > 5.0
    assert ev[0].evidence["baseline_mean"] == pytest.approx(2.0, abs=0.05)
    assert [a.rule for a in e.active()] == ["rms-drift"]


def test_iso_zone_change_escalates_the_same_alert() -> None:
    zones = np.array([0, 1, 2, 2, 3, 3, 2, 1, 1], dtype=np.float64)
    e = isthmus.RuleEngine("fan")
    e.add_zone_change("iso", raise_zone="C")
    ev = e.evaluate(times(zones.size), {"iso_zone": zones})
    assert [(a.state, a.severity, a.evidence["zone"]) for a in ev] == [
        ("raised", "warning", "C"),
        ("raised", "critical", "D"),
        ("cleared", "critical", "D"),
    ]
    assert len({a.id for a in ev}) == 1


def bearing_columns(score: list[float], harmonics: list[float], kurt: float = 3.0) -> dict:
    n = len(score)
    nan = np.full(n, np.nan)
    return {
        "outer_race_score_db": np.array(score, dtype=np.float64),
        "outer_race_harmonics": np.array(harmonics, dtype=np.float64),
        "outer_race_hz": np.full(n, 107.4),
        "inner_race_score_db": np.full(n, 3.0),
        "inner_race_harmonics": np.zeros(n),
        "ball_score_db": nan,
        "ball_harmonics": nan,
        "fault": np.full(n, 1.0 if kurt >= 0.5 else 0.0),
        "peak1_hz": np.full(n, 107.4),
        "peak1_db": np.full(n, 25.0),
    }


def test_bearing_rule_needs_score_and_two_harmonics() -> None:
    e = isthmus.RuleEngine("pump")
    e.add_bearing("bearing", k_db=10.0, raise_frames=2, clear_frames=2)
    cols = bearing_columns([15, 15, 15, 15, 15, 15, 4, 4], [1, 1, 3, 3, 3, 3, 0, 0])
    ev = e.evaluate(times(8), cols)
    assert [a.state for a in ev] == ["raised", "cleared"]
    ev0 = ev[0].evidence
    assert ev0["fault"] == "outer_race" and ev0["frequency_hz"] == 107.4
    assert ev0["score_db"] == 15.0 and ev0["harmonics"] == 3.0
    assert ev0["peaks"] == [{"frequency_hz": 107.4, "level_db": 25.0}]
    assert ev[0].first_time == 1002.0


def test_bearing_rule_raises_only_on_the_analyzers_verdict() -> None:
    e = isthmus.RuleEngine("pump")
    e.add_bearing("bearing", k_db=10.0)
    ev = e.evaluate(times(6), bearing_columns([15] * 6, [3] * 6, kurt=0.1))
    assert ev == []


def test_errors_name_the_rule_or_feature() -> None:
    e = isthmus.RuleEngine("a")
    e.add_threshold("r", "x", 1.0)
    with pytest.raises(isthmus.DiagnosticsError, match="duplicate"):
        e.add_threshold("r", "x", 1.0)
    with pytest.raises(isthmus.DiagnosticsError, match="safe side"):
        e.add_threshold("bad", "x", 1.0, 2.0)
    with pytest.raises(isthmus.DiagnosticsError, match="zone"):
        e.add_zone_change("z", raise_zone="E")
    with pytest.raises(isthmus.DiagnosticsError, match='"x" missing'):
        e.evaluate(times(2), {"y": np.zeros(2)})
    with pytest.raises(isthmus.DiagnosticsError, match="expected 2"):
        e.evaluate(times(2), {"x": np.zeros(3)})
    with pytest.raises(isthmus.DiagnosticsError, match="increasing"):
        e.evaluate(np.array([2.0, 1.0]), {"x": np.zeros(2)})
    with pytest.raises(isthmus.DiagnosticsError, match="1-D numeric"):
        e.evaluate(times(2), {"x": np.zeros((2, 2))})
    # integer columns are fine
    assert e.evaluate(times(2, t0=5000.0), {"x": np.zeros(2, dtype=np.int8)}) == []


def test_nan_frames_neither_raise_nor_reset() -> None:
    e = isthmus.RuleEngine("a")
    e.add_threshold("r", "x", 10.0, raise_frames=3)
    v = np.array([11, np.nan, 11, 11], dtype=np.float64)
    ev = e.evaluate(times(4), {"x": v})
    assert len(ev) == 1 and ev[0].last_time == 1003.0
