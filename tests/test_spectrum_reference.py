"""SpectrumAnalyzer and velocity_rms against numpy / scipy oracles, with stated tolerances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import signal, stats

import isthmus

FS = 25_600.0
RNG_SEED = 20_816

WINDOWS = ["hann", "hamming", "blackman", "flattop", "rectangular"]
SCIPY_WINDOW = {"rectangular": "boxcar"}


def _test_signal(n: int, dtype: type = np.float64, seed: int = RNG_SEED) -> np.ndarray:
    """Two sines, a DC offset, a slow ramp and broadband noise: every feature has work to do."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    x = (
        0.8 * np.sin(2 * np.pi * 1234.5 * t)
        + 0.3 * np.sin(2 * np.pi * 97.3 * t + 1.0)
        + 0.05 * rng.standard_normal(n)
        + 0.2
        + 0.5 * t
    )
    return x.astype(dtype)


def _detrend(x: np.ndarray, how: str) -> np.ndarray:
    if how == "none":
        return x
    return signal.detrend(x, type="constant" if how == "mean" else "linear")


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("detrend", ["mean", "linear", "none"])
def test_amplitude_spectrum_matches_numpy_rfft(window: str, detrend: str) -> None:
    frame = 1024
    x = _test_signal(frame)
    analyzer = isthmus.SpectrumAnalyzer(FS, frame=frame, hop=frame, window=window, detrend=detrend)
    assert len(analyzer.feed(x)) == 1
    w = signal.get_window(SCIPY_WINDOW.get(window, window), frame)  # periodic, as welch
    magnitude = np.abs(np.fft.rfft(_detrend(x, detrend) * w)) / w.sum()
    magnitude[1:-1] *= 2
    got = analyzer.spectrum()
    assert got.shape == (1, frame // 2 + 1)
    np.testing.assert_allclose(got[0], magnitude, rtol=1e-9, atol=1e-12 * magnitude.max())
    np.testing.assert_allclose(analyzer.frequencies(), np.fft.rfftfreq(frame, 1 / FS))


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("detrend", ["mean", "linear", "none"])
@pytest.mark.parametrize("scaling", ["density", "spectrum"])
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-6), (np.float32, 1e-4)])
def test_psd_matches_scipy_welch(
    window: str, detrend: str, scaling: str, dtype: type, rtol: float
) -> None:
    frame, hop, average = 512, 128, 6
    x = _test_signal(frame + (average - 1) * hop, dtype)
    analyzer = isthmus.SpectrumAnalyzer(
        FS, frame=frame, hop=hop, window=window, detrend=detrend, average=average
    )
    frames = analyzer.feed(x)
    assert len(frames) == average
    freqs, expected = signal.welch(
        x,
        FS,
        window=SCIPY_WINDOW.get(window, window),
        nperseg=frame,
        noverlap=frame - hop,
        detrend=False if detrend == "none" else ("constant" if detrend == "mean" else "linear"),
        scaling=scaling,
    )
    got = analyzer.psd(scaling=scaling)
    assert analyzer.dtype == np.dtype(dtype).name
    np.testing.assert_allclose(analyzer.frequencies(), freqs)
    # Relative error per bin; scipy works in float32 for float32 input, and so do we.
    # A bin that is analytically zero (DC after mean removal, rectangular window) holds only
    # rounding noise, so relative errors are taken against a floor far below any content.
    floor = (1e-13 if dtype is np.float64 else 1e-8) * expected.max()
    rel = np.abs(got[0] - expected) / np.maximum(np.abs(expected), floor)
    assert rel.max() < rtol, f"max relative error {rel.max():.3g}"


def test_psd_averages_only_the_last_frames() -> None:
    frame, hop, average = 256, 256, 3
    x = _test_signal(10 * frame)
    analyzer = isthmus.SpectrumAnalyzer(FS, frame=frame, hop=hop, average=average)
    analyzer.feed(x)
    _, expected = signal.welch(x[-average * frame :], FS, nperseg=frame, noverlap=0)
    np.testing.assert_allclose(analyzer.psd()[0], expected, rtol=1e-9)


@pytest.mark.parametrize("detrend", ["mean", "linear", "none"])
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-9), (np.float32, 2e-5)])
def test_time_statistics_match_numpy_and_scipy_stats(
    detrend: str, dtype: type, rtol: float
) -> None:
    """Float64 frames agree to ~1e-12; float32 frames (analysed in float32) to float32
    precision: the oracle sees the same float32 samples, computed in float64."""
    frame, hop = 2048, 512
    rng = np.random.default_rng(3)
    # Skewed, heavy-tailed, offset: a test that cannot pass with the wrong moments.
    x = (rng.gamma(2.0, 1.0, size=frame * 4) + 3.0 + 0.001 * np.arange(frame * 4)).astype(dtype)
    analyzer = isthmus.SpectrumAnalyzer(FS, frame=frame, hop=hop, detrend=detrend)
    frames = analyzer.feed(x)
    assert analyzer.dtype == np.dtype(dtype).name
    assert len(frames) == 1 + (len(x) - frame) // hop
    tight = min(1e-12, rtol)  # sums of positive terms: mean, RMS, extremes
    for i, start in enumerate(frames.start_index):
        raw = x[start : start + frame].astype(np.float64)
        y = _detrend(raw, detrend)
        np.testing.assert_allclose(frames.mean[i, 0], raw.mean(), rtol=1e-12)
        np.testing.assert_allclose(frames.rms[i, 0], np.sqrt(np.mean(y**2)), rtol=max(tight, rtol))
        np.testing.assert_allclose(frames.std[i, 0], np.std(y), rtol=max(1e-10, rtol))
        np.testing.assert_allclose(frames.skewness[i, 0], stats.skew(y), rtol=rtol)
        np.testing.assert_allclose(
            frames.kurtosis[i, 0], stats.kurtosis(y, fisher=False), rtol=rtol
        )
        np.testing.assert_allclose(frames.peak[i, 0], np.abs(y).max(), rtol=max(tight, rtol))
        np.testing.assert_allclose(frames.peak_to_peak[i, 0], np.ptp(y), rtol=max(tight, rtol))
        np.testing.assert_allclose(
            frames.crest_factor[i, 0],
            np.abs(y).max() / np.sqrt(np.mean(y**2)),
            rtol=max(tight, 2 * rtol),
        )
    np.testing.assert_allclose(frames.start_time, frames.start_index / FS)


def test_gaussian_noise_has_pearson_kurtosis_three() -> None:
    x = np.random.default_rng(7).standard_normal(65_536)
    frames = isthmus.SpectrumAnalyzer(FS, frame=65_536, hop=65_536, peaks=0).feed(x)
    assert abs(frames.kurtosis[0, 0] - 3.0) < 0.1
    assert abs(frames.skewness[0, 0]) < 0.05


@pytest.mark.parametrize("window", WINDOWS)
def test_band_rms_obeys_parseval(window: str) -> None:
    """Full-band RMS equals the window-energy-normalised time-domain energy exactly, and
    adjacent bands add up in power."""
    frame = 4096
    x = _test_signal(frame)
    edges = [0.0, 500.0, 1000.0, 2000.0, FS / 2]
    bands = [*itertools.pairwise(edges), (0.0, FS / 2)]
    frames = isthmus.SpectrumAnalyzer(FS, frame=frame, hop=frame, window=window, bands=bands).feed(
        x
    )
    w = signal.get_window(SCIPY_WINDOW.get(window, window), frame)
    y = x - x.mean()
    energy = np.sum((y * w) ** 2) / np.sum(w**2)
    band_rms = frames.band_rms[0, 0]
    np.testing.assert_allclose(band_rms[-1], np.sqrt(energy), rtol=1e-12)
    np.testing.assert_allclose(np.sum(band_rms[:-1] ** 2), band_rms[-1] ** 2, rtol=1e-12)
    if window == "rectangular":
        np.testing.assert_allclose(band_rms[-1], frames.rms[0, 0], rtol=1e-12)


@pytest.mark.parametrize("window", ["hann", "hamming", "blackman", "flattop"])
def test_band_rms_of_a_sine_is_amplitude_over_root_two(window: str) -> None:
    frame = 4096
    t = np.arange(frame) / FS
    x = 2.0 * np.sin(2 * np.pi * 1503.7 * t) + 0.5 * np.sin(2 * np.pi * 6000.0 * t)
    frames = isthmus.SpectrumAnalyzer(
        FS, frame=frame, hop=frame, window=window, bands=[(1000, 2000), (5000, 7000)]
    ).feed(x)
    np.testing.assert_allclose(
        frames.band_rms[0, 0], [2.0 / np.sqrt(2), 0.5 / np.sqrt(2)], rtol=2e-3
    )


@pytest.mark.parametrize("window", WINDOWS)
def test_peaks_recover_frequency_and_amplitude_between_bins(window: str) -> None:
    frame = 4096
    resolution = FS / frame
    t = np.arange(frame) / FS
    tones = [(3001.3, 1.5), (812.7, 0.7), (9000.0 + resolution / 2, 0.25)]
    x = sum(a * np.sin(2 * np.pi * f * t + 0.4) for f, a in tones)
    frames = isthmus.SpectrumAnalyzer(FS, frame=frame, hop=frame, window=window, peaks=3).feed(x)
    freqs, amps = frames.peak_freqs[0, 0], frames.peak_amps[0, 0]
    # Largest first; frequency within 1 % of a bin, amplitude within 0.5 %.
    for (f, a), got_f, got_a in zip(tones, freqs, amps, strict=True):
        assert abs(got_f - f) < 0.01 * resolution, (window, f, got_f)
        assert abs(got_a / a - 1) < 5e-3, (window, a, got_a)
    assert frames.dominant_freq[0, 0] == freqs[0]


def test_centroid_is_the_power_weighted_mean_frequency() -> None:
    frame = 2048
    x = _test_signal(frame)
    frames = isthmus.SpectrumAnalyzer(FS, frame=frame, hop=frame).feed(x)
    w = signal.get_window("hann", frame)
    power = np.abs(np.fft.rfft((x - x.mean()) * w)) ** 2
    power[1:-1] *= 2
    f = np.fft.rfftfreq(frame, 1 / FS)
    np.testing.assert_allclose(frames.centroid[0, 0], np.sum(f * power) / np.sum(power), rtol=1e-9)


@pytest.mark.parametrize("freq", [40.0, 159.2, 700.0])
@pytest.mark.parametrize("units", ["g", "m/s2"])
def test_velocity_rms_of_a_sine_within_one_percent(freq: float, units: str) -> None:
    fs = 10_000.0
    amplitude = 0.5  # 0-peak acceleration in `units`
    t = np.arange(int(4 * fs)) / fs
    accel = amplitude * np.sin(2 * np.pi * freq * t + 0.3)
    to_si = 9.80665 if units == "g" else 1.0
    expected = amplitude * to_si / (2 * np.pi * freq) / np.sqrt(2) * 1000.0  # mm/s RMS
    got = isthmus.velocity_rms(accel, fs, band=(10.0, 1000.0), units=units)
    assert abs(got / expected - 1) < 0.01, (got, expected)


def test_velocity_rms_ignores_components_outside_the_band() -> None:
    fs = 10_000.0
    t = np.arange(int(2 * fs)) / fs
    in_band = np.sin(2 * np.pi * 100.0 * t)
    out_of_band = 5.0 * np.sin(2 * np.pi * 3.0 * t) + 5.0 * np.sin(2 * np.pi * 2500.0 * t)
    alone = isthmus.velocity_rms(in_band, fs)
    mixed = isthmus.velocity_rms(in_band + out_of_band, fs)
    assert abs(mixed / alone - 1) < 0.01


def test_velocity_column_agrees_with_velocity_rms() -> None:
    frame = 8192
    t = np.arange(frame) / FS
    accel = 0.3 * np.sin(2 * np.pi * 123.0 * t) + 0.1 * np.sin(2 * np.pi * 480.0 * t)
    analyzer = isthmus.SpectrumAnalyzer(
        FS, frame=frame, hop=frame, velocity_band=(10, 1000), accel_units="g"
    )
    frames = analyzer.feed(accel)
    column = frames.velocity_rms_mm_s
    assert column is not None
    expected = (
        np.hypot(0.3 * 9.80665 / (2 * np.pi * 123.0), 0.1 * 9.80665 / (2 * np.pi * 480.0))
        / np.sqrt(2)
        * 1000
    )
    assert abs(column[0, 0] / expected - 1) < 0.01
    np.testing.assert_allclose(column[0, 0], isthmus.velocity_rms(accel, FS), rtol=1e-9)
    assert isthmus.SpectrumAnalyzer(FS).feed(accel).velocity_rms_mm_s is None
