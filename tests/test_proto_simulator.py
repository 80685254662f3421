"""Simulator physics against numpy/scipy: fault frequencies, amplitudes, block consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal

from isthmus.cli import main as cli_main
from isthmus.simulator import BEARINGS, Fault, Pump, VibrationModel
from isthmus.simulator.physics import velocity_rms_mm_s

FS = 25600.0
SHAFT_HZ = 1797.0 / 60.0


def amplitude_at(x: np.ndarray, fs: float, f: float) -> float:
    """Peak amplitude of the sinusoid at ``f`` Hz (1 s of data: 1 Hz bins)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) / (np.hanning(x.size).sum() / 2)
    freqs = np.fft.rfftfreq(x.size, 1 / fs)
    band = (freqs > f - 2) & (freqs < f + 2)
    return float(spec[band].max())


def envelope_spectrum(
    x: np.ndarray, fs: float, band: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    sos = signal.butter(4, band, btype="bandpass", fs=fs, output="sos")
    env = np.abs(signal.hilbert(signal.sosfiltfilt(sos, x))) ** 2
    spec = np.abs(np.fft.rfft(env - env.mean()))
    return np.fft.rfftfreq(x.size, 1 / fs), spec


def test_skf_6205_defect_orders() -> None:
    b = BEARINGS["SKF 6205"]
    assert b.bpfo == pytest.approx(3.5848, abs=5e-4)
    assert b.bpfi == pytest.approx(5.4152, abs=5e-4)
    assert b.bsf == pytest.approx(2.357, abs=5e-3)
    assert b.ftf == pytest.approx(0.3983, abs=5e-4)


@pytest.mark.parametrize(
    ("fault", "order_name"), [(Fault.OUTER_RACE, "bpfo"), (Fault.INNER_RACE, "bpfi")]
)
def test_bearing_fault_shows_at_its_defect_frequency_in_the_envelope(
    fault: Fault, order_name: str
) -> None:
    model = VibrationModel(sample_rate=FS, shaft_hz=SHAFT_HZ, seed=3)
    healthy = model.block(0, int(FS))
    model.faults = {fault: 0.5}
    faulty = model.block(0, int(FS))
    target = model.fault_frequencies()[order_name]
    freqs, spec = envelope_spectrum(faulty, FS, (2000.0, 5000.0))
    search = (freqs > 20) & (freqs < 400)
    peak = freqs[search][np.argmax(spec[search])]
    assert peak == pytest.approx(target, abs=1.0)  # 1 Hz bins
    # a healthy machine has no such line
    h_freqs, h_spec = envelope_spectrum(healthy, FS, (2000.0, 5000.0))
    at = np.argmin(np.abs(h_freqs - target))
    assert h_spec[at] < 0.05 * spec[np.argmin(np.abs(freqs - target))]
    if fault is Fault.INNER_RACE:
        # the spall turns with the shaft: sidebands at BPFI +- 1x
        for f in (target - SHAFT_HZ, target + SHAFT_HZ):
            i = np.argmin(np.abs(freqs - f))
            assert spec[i - 1 : i + 2].max() > 10 * np.median(spec[search])


def test_imbalance_and_misalignment_amplitudes() -> None:
    model = VibrationModel(sample_rate=FS, shaft_hz=SHAFT_HZ, noise_g=0.0)
    assert amplitude_at(model.block(0, int(FS)), FS, SHAFT_HZ) == pytest.approx(0.05, rel=0.02)
    model.faults = {Fault.IMBALANCE: 1.0}
    assert amplitude_at(model.block(0, int(FS)), FS, SHAFT_HZ) == pytest.approx(0.55, rel=0.02)
    model.faults = {Fault.MISALIGNMENT: 1.0}
    x = model.block(0, int(FS))
    assert amplitude_at(x, FS, 2 * SHAFT_HZ) == pytest.approx(0.42, rel=0.02)
    assert amplitude_at(x, FS, 3 * SHAFT_HZ) == pytest.approx(0.15, rel=0.02)


def test_blocks_line_up_sample_for_sample() -> None:
    model = VibrationModel(
        sample_rate=FS, shaft_hz=SHAFT_HZ, noise_g=0.0, faults={Fault.OUTER_RACE: 1.0}
    )
    start = 1_795_000_000 * 25600
    whole = model.block(start, 4096)
    parts = np.concatenate([model.block(start + i, 512) for i in range(0, 4096, 512)])
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-9)


def test_velocity_rms_of_a_pure_tone() -> None:
    t = np.arange(int(FS)) / FS
    accel_g = 0.3 * np.sin(2 * math.pi * 100.0 * t)
    expected = 0.3 * 9806.65 / (2 * math.pi * 100.0) / math.sqrt(2)
    assert velocity_rms_mm_s(accel_g, FS) == pytest.approx(expected, rel=0.01)


def test_truth_follows_injected_faults() -> None:
    pump = Pump("P", "bravo", speed_rpm=2950.0)
    before = pump.truth()
    assert not before.alarm and before.faults == {}
    pump.inject(Fault.OUTER_RACE, 0.8)
    truth = pump.tick()
    assert truth.faults == {"outer_race": 0.8}
    assert truth.alarm
    assert truth.fault_frequencies_hz["bpfo"] == pytest.approx(3.5848 * 2950 / 60, rel=1e-3)
    assert truth.accel_peak_g > 3 * before.accel_peak_g  # the impacts are in the features too


def test_scheduled_fault_switches_on_later() -> None:
    pump = Pump("P", "acme")
    pump.inject(Fault.IMBALANCE, 1.0, start=100.0)
    assert pump.tick(pump.started + 50).faults == {}
    assert pump.tick(pump.started + 150).faults == {"imbalance": 1.0}


def test_cli_prints_every_register_map(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli_main(
            ["simulate", "--maps", "--modbus-port", "1502", "--fault", "P-102:inner_race:0.5:10"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "P-101 Modbus TCP 127.0.0.1:1502" in out and "P-102 Modbus TCP 127.0.0.1:1503" in out
    assert "float32  CDAB" in out and "degF" in out  # vendor B
    assert "0.1 degC" in out  # vendor A
    assert "ns=2;s=P-103.ShaftSpeed" in out
    assert "waveform 'vibration'" in out


def test_cli_rejects_unknown_fault(capsys: pytest.CaptureFixture[str]) -> None:
    # the CLI turns the ConfigError into one line on stderr and exit code 2
    assert cli_main(["simulate", "--maps", "--fault", "P-101:gearbox"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "faults are" in err and "Traceback" not in err


def test_vendor_registers_match_pymodbus_encoding() -> None:
    """The simulator's register images equal pymodbus' own encoder (an independent oracle)."""
    from pymodbus.client import AsyncModbusTcpClient as Client

    from isthmus.simulator.modbus_server import encode_point
    from isthmus.simulator.vendors import acme_map, bravo_map

    truth = Pump("P", "bravo").truth()
    kinds = {
        "uint16": Client.DATATYPE.UINT16,
        "int16": Client.DATATYPE.INT16,
        "uint32": Client.DATATYPE.UINT32,
        "float32": Client.DATATYPE.FLOAT32,
    }
    checked = 0
    for point in [*acme_map().points, *bravo_map().points]:
        if point.dtype not in kinds:
            continue
        value = point.value(truth)
        raw = value if point.dtype == "float32" else round((value - point.offset) / point.scale)
        order = "little" if point.order == "CDAB" else "big"  # CDAB = words swapped
        assert encode_point(point, value) == Client.convert_to_registers(
            raw, kinds[point.dtype], word_order=order
        ), point.name
        checked += 1
    assert checked >= 12
