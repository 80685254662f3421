"""``isthmus analyze`` end to end: npz, CSV and WAV input, JSON output, plot."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from diag_signals import ORDERS, impacts
from isthmus import cli
from isthmus.analyze import load_recording

FS = 12000.0
RPM = 1800.0


@pytest.fixture(scope="module")
def outer() -> np.ndarray:
    return impacts(ORDERS["bpfo"] * RPM / 60, fs=FS, seconds=6.0, seed=11)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert cli.main(["analyze", *argv, "--json"]) == 0
    out: dict = json.loads(capsys.readouterr().out)
    return out


def test_npz_json_report(
    tmp_path: Path, outer: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rec.npz"
    np.savez(path, de=outer, sample_rate=np.array([FS]), rpm=np.array([RPM]))
    doc = run_json(capsys, str(path), "--bearing", "6205")
    assert doc["diagnosis"]["fault"] == "outer_race"
    assert doc["diagnosis"]["frequency_hz"] == pytest.approx(ORDERS["bpfo"] * 30, rel=0.02)
    assert doc["diagnosis"]["score_db"] > 10
    assert doc["iso20816"]["zone"] in "ABCD"
    assert doc["iso20816"]["velocity_rms_mm_s"] > 0
    (alert,) = [a for a in doc["alerts"] if a["rule"] == "bearing_fault"]
    assert alert["state"] == "raised" and alert["evidence"]["fault"] == "outer_race"
    assert {
        "id",
        "asset",
        "rule",
        "severity",
        "first_time",
        "last_time",
        "value",
        "threshold",
    } <= set(alert)


def test_csv_with_time_column_and_wav(
    tmp_path: Path, outer: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "rec.csv"
    t = np.arange(outer.size) / FS
    np.savetxt(csv, np.column_stack([t, outer]), delimiter=",", header="time,accel", comments="")
    doc = run_json(capsys, str(csv), "--rpm", str(RPM), "--bearing", "6205")
    assert doc["analysis_rate_hz"] == pytest.approx(FS, rel=1e-6)
    assert doc["diagnosis"]["fault"] == "outer_race"

    wav = tmp_path / "rec.wav"
    scale = 1.1 * np.max(np.abs(outer))
    pcm = np.round(outer / scale * 32767).astype("<i2")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(FS))
        w.writeframes(pcm.tobytes())
    rec = load_recording(wav, scale=scale)
    np.testing.assert_allclose(rec.samples, outer, atol=2 * scale / 32767)
    doc = run_json(capsys, str(wav), "--rpm", str(RPM), "--scale", str(scale), "--bearing", "6205")
    assert doc["diagnosis"]["fault"] == "outer_race"


def test_geometry_flags_and_human_output(
    tmp_path: Path, outer: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rec.npz"
    np.savez(path, de=outer, sample_rate=FS, rpm=RPM)
    argv = ["analyze", str(path), "--balls", "9", "--ball-diameter", "0.3126"]
    argv += ["--pitch-diameter", "1.537"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "outer race fault" in text and "ISO 20816-3" in text and "raised" in text


def test_missing_rpm_still_reports_severity(
    tmp_path: Path, outer: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rec.npz"
    np.savez(path, de=outer, sample_rate=FS)
    doc = run_json(capsys, str(path), "--bearing", "6205")
    assert doc["diagnosis"]["fault"] == "none" and "rpm" in doc["diagnosis"]["reason"]
    assert doc["iso20816"]["zone"] in "ABCD"


def test_short_record_says_why_there_is_no_diagnosis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "short.npz"
    np.savez(path, de=np.random.default_rng(0).normal(size=3000), sample_rate=FS, rpm=RPM)
    doc = run_json(capsys, str(path), "--bearing", "6205")
    assert doc["diagnosis"]["fault"] == "none"
    assert "shorter than one analysis frame" in doc["diagnosis"]["reason"]


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rec.npz"
    np.savez(path, de=np.zeros(100))
    assert cli.main(["analyze", str(path)]) == 2
    assert "--sample-rate" in capsys.readouterr().err
    assert cli.main(["analyze", str(path), "--channel", "fe", "--sample-rate", "1000"]) == 2
    assert "'fe'" in capsys.readouterr().err
    assert cli.main(["analyze", str(tmp_path / "x.mat")]) == 2


def test_plot(tmp_path: Path, outer: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "rec.npz"
    np.savez(path, de=outer, sample_rate=FS, rpm=RPM)
    png = tmp_path / "out.png"
    assert cli.main(["analyze", str(path), "--bearing", "6205", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_module_does_not_import_scipy() -> None:
    import subprocess
    import sys

    code = "import sys, isthmus.analyze; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
