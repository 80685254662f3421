"""The analysis precision: float32 input is analysed in float32 unless told otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isthmus

FS = 25_600.0
BANDS = [(0.0, 1000.0), (1000.0, 4000.0), (4000.0, 12_800.0)]


def _analyzer(**overrides: object) -> isthmus.SpectrumAnalyzer:
    options: dict[str, object] = {"frame": 1024, "hop": 384, "bands": BANDS, "peaks": 4}
    options.update(overrides)
    return isthmus.SpectrumAnalyzer(FS, **options)  # type: ignore[arg-type]


def _signal(n: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    x = 0.7 * np.sin(2 * np.pi * 1234.5 * t) + 0.2 * np.sin(2 * np.pi * 5100.0 * t)
    return (x + 0.05 * rng.standard_normal(n) + 0.3).astype(np.float32)


X32 = _signal(20_000)


def test_the_first_block_decides_and_reset_decides_again() -> None:
    analyzer = _analyzer()
    assert analyzer.dtype == "float64"  # until a block says otherwise
    analyzer.feed(X32[:10])
    assert analyzer.dtype == "float32"
    analyzer.feed(X32[10:2000].astype(np.float64))  # later blocks are converted
    assert analyzer.dtype == "float32"
    analyzer.reset()
    analyzer.feed(np.zeros(10, dtype=np.int16))
    assert analyzer.dtype == "float64"
    assert "dtype='float64'" in repr(analyzer) or 'dtype="float64"' in repr(analyzer)


def test_a_pinned_dtype_is_kept() -> None:
    pinned = _analyzer(dtype="float32")
    pinned.feed(X32.astype(np.float64))
    assert pinned.dtype == "float32"
    with pytest.raises(isthmus.SignalError, match="dtype"):
        _analyzer(dtype="float16")  # type: ignore[arg-type]


def test_float32_features_agree_with_float64_analysis() -> None:
    """The same samples analysed both ways: float32 precision, no systematic difference."""
    f32 = _analyzer().feed(X32)
    f64 = _analyzer(dtype="float64").feed(X32)
    assert len(f32) == len(f64) > 10
    for column, rtol in [
        ("mean", 1e-12),  # accumulated in f64 either way
        ("rms", 1e-5),
        ("std", 1e-5),
        ("kurtosis", 1e-5),
        ("crest_factor", 1e-5),
        ("band_rms", 1e-5),
        ("peak_amps", 1e-4),
        ("centroid", 1e-5),
    ]:
        np.testing.assert_allclose(
            getattr(f32, column), getattr(f64, column), rtol=rtol, err_msg=column
        )
    # Skewness is near zero here: an absolute bound (third moment over sigma^3).
    np.testing.assert_allclose(f32.skewness, f64.skewness, rtol=0, atol=1e-5)
    np.testing.assert_allclose(f32.peak_freqs, f64.peak_freqs, atol=1e-3)
    np.testing.assert_array_equal(f32.start_index, f64.start_index)


def test_float32_spectrum_matches_numpy_rfft() -> None:
    frame = 1024
    x = X32[:frame]
    analyzer = _analyzer(hop=frame)
    analyzer.feed(x)
    w = np.hanning(frame + 1)[:-1]  # periodic hann
    y = x.astype(np.float64) - x.astype(np.float64).mean()
    magnitude = np.abs(np.fft.rfft(y * w)) / w.sum()
    magnitude[1:-1] *= 2
    np.testing.assert_allclose(
        analyzer.spectrum()[0], magnitude, rtol=1e-4, atol=1e-6 * magnitude.max()
    )


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=12))
def test_float32_results_do_not_depend_on_chunking(sizes: list[int]) -> None:
    whole = _analyzer().feed(X32)
    parts = []
    analyzer = _analyzer()
    pos, i = 0, 0
    while pos < len(X32):
        size = sizes[i % len(sizes)]
        parts.append(analyzer.feed(X32[pos : pos + size]))
        pos, i = pos + size, i + 1
    for column in ["rms", "kurtosis", "band_rms", "peak_freqs", "peak_amps", "centroid"]:
        got = np.concatenate([getattr(p, column) for p in parts])
        np.testing.assert_array_equal(got, getattr(whole, column), err_msg=column)


def test_non_finite_float32_samples_mark_the_frame_invalid() -> None:
    x = X32[:4096].copy()
    x[1500] = np.inf
    analyzer = _analyzer(hop=1024, average=4)
    frames = analyzer.feed(x)
    assert analyzer.dtype == "float32"
    assert frames.valid[:, 0].tolist() == [True, False, True, True]
    assert analyzer.invalid_frames == 1
    assert np.isfinite(analyzer.psd()).all()


def test_float32_band_rms_obeys_parseval() -> None:
    frame = 4096
    x = X32[:frame]
    frames = _analyzer(frame=frame, hop=frame, window="rectangular", bands=[(0.0, FS / 2)]).feed(x)
    y = x.astype(np.float64) - x.astype(np.float64).mean()
    np.testing.assert_allclose(frames.band_rms[0, 0, 0], np.sqrt(np.mean(y**2)), rtol=1e-5)
    np.testing.assert_allclose(frames.band_rms[0, 0, 0], frames.rms[0, 0], rtol=1e-5)
