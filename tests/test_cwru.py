"""The diagnosis on real recordings of the Case Western Reserve University bearing rig.

Same pipeline and same parameters for every record (nothing here is per-file): decimation of
faster records to 12 kHz, spectral-kurtosis band, squared-envelope spectrum, scores within
+/-2 % of the theoretical fault frequencies, the default 10 dB / two-harmonic rule.
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


def run(rec: dict[str, Any], chunk: int = 65536) -> dict[str, Any]:
    return analyze(
        load_recording(CWRU / rec["file"], channel="de"), bearing="SKF 6205-2RS JEM", chunk=chunk
    )


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
    assert report["diagnosis"]["fault"] in ("ball", "none")
    for a in bearing_alerts(report):
        assert a["evidence"]["fault"] == "ball"


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
