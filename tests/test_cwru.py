"""The diagnosis on real recordings of the Case Western Reserve University bearing rig.

Same pipeline and same parameters for every record (nothing here is per-file): decimation of
faster records to 12 kHz, the band (spectral kurtosis or fixed) whose envelope spectrum shows
a bearing series best, the significance test at 1 % false alarms per diagnosis.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from isthmus.analyze import analyze, load_recording

REPO = Path(__file__).resolve().parents[1]
CWRU = Path(os.environ.get("ISTHMUS_CWRU_DIR") or REPO.parent / "shared" / "data" / "cwru")

pytestmark = pytest.mark.skipif(
    not (CWRU / "manifest.json").is_file(),
    reason=f"CWRU recordings not found at {CWRU} (set ISTHMUS_CWRU_DIR)",
)


def records() -> list[dict[str, Any]]:
    if not (CWRU / "manifest.json").is_file():
        return []
    recs: list[dict[str, Any]] = json.loads((CWRU / "manifest.json").read_text())["records"]
    return recs


def run(rec: dict[str, Any], chunk: int = 65536, rpm_error: float = 1.0) -> dict[str, Any]:
    loaded = load_recording(CWRU / rec["file"], channel="de")
    rpm = loaded.rpm * rpm_error if loaded.rpm else None
    loaded = load_recording(CWRU / rec["file"], channel="de", rpm=rpm)
    return analyze(loaded, bearing="SKF 6205-2RS JEM", chunk=chunk)


def bearing_alerts(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in report["alerts"] if a["rule"] == "bearing_fault"]


@pytest.mark.parametrize(
    "rec",
    [r for r in records() if r["fault_type"] in ("inner_race", "outer_race")],
    ids=lambda r: r["file"],
)
def test_race_faults_are_diagnosed_with_the_right_type(rec: dict[str, Any]) -> None:
    report = run(rec)
    d = report["diagnosis"]
    assert d["fault"] == rec["fault_type"], d
    order = {"inner_race": "bpfi", "outer_race": "bpfo"}[rec["fault_type"]]
    expected = report["bearing"]["fault_frequencies_hz"][order]
    assert d["frequency_hz"] == pytest.approx(expected, rel=0.02)
    alerts = bearing_alerts(report)
    assert [a["state"] for a in alerts] == ["raised"], "one alert, raised once, still active"
    assert alerts[0]["evidence"]["fault"] == rec["fault_type"]


def test_normal_baseline_raises_no_bearing_alert() -> None:
    (rec,) = [r for r in records() if r["fault_type"] == "normal"]
    report = run(rec)
    assert report["sample_rate_hz"] == 48000.0
    assert report["analysis_rate_hz"] == 12000.0 and report["decimation"] == 4
    assert report["diagnosis"]["fault"] == "none"
    assert bearing_alerts(report) == []


@pytest.mark.parametrize(
    "rec", [r for r in records() if r["fault_type"] == "ball"], ids=lambda r: r["file"]
)
def test_ball_records_are_never_called_race_faults(rec: dict[str, Any]) -> None:
    report = run(rec)
    d = report["diagnosis"]
    assert d["fault"] in ("ball", "none", "uncertain"), d
    if rec["cwru_file_number"] == 118:  # graded N1: not diagnosable, modulation lines only
        assert d["fault"] == "none" and "not impulsive" in d["note"]
    if d["fault"] == "uncertain":
        assert d["note"]
    for a in bearing_alerts(report):
        assert a["evidence"]["fault"] == "ball"


@pytest.mark.parametrize("rpm_error", [0.98, 1.02])
@pytest.mark.parametrize("rec", records(), ids=lambda r: r["file"])
def test_a_wrong_rpm_never_names_a_different_fault(rec: dict[str, Any], rpm_error: float) -> None:
    """An rpm entered 2 % off: the right fault, or uncertain/none with a reason."""
    d = run(rec, rpm_error=rpm_error)["diagnosis"]
    truth = rec["fault_type"]
    allowed = {"normal": {"none"}, "ball": {"ball", "none", "uncertain"}}.get(
        truth, {truth, "none", "uncertain"}
    )
    assert d["fault"] in allowed, d
    if d["fault"] == "uncertain":
        assert d["note"], d


@pytest.mark.parametrize("chunk", [1000, 4096, 30011])
def test_chunk_size_does_not_change_the_diagnosis(chunk: int) -> None:
    by_file = {r["file"]: r for r in records()}
    for name in ("130_outer_race_007_0hp.npz", "097_normal_0hp.npz"):
        whole, chunked = run(by_file[name]), run(by_file[name], chunk=chunk)
        assert chunked["diagnosis"] == whole["diagnosis"]
        assert chunked["alerts"] == whole["alerts"]


def test_kurtosis_matches_the_literature() -> None:
    """Smith & Randall quote a Pearson kurtosis of about 5.4 for record 105."""
    (rec,) = [r for r in records() if r["cwru_file_number"] == 105]
    assert run(rec)["features"]["kurtosis"] == pytest.approx(5.4, abs=0.1)
