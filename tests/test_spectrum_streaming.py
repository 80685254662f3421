"""SpectrumAnalyzer as a stream: chunking invariance, channels, dtypes, NaN, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isthmus
from gil_probe import python_ran_during

FS = 25_600.0
COLUMNS = [
    "start_index",
    "start_time",
    "valid",
    "mean",
    "rms",
    "peak",
    "peak_to_peak",
    "crest_factor",
    "std",
    "skewness",
    "kurtosis",
    "band_rms",
    "peak_freqs",
    "peak_amps",
    "dominant_freq",
    "centroid",
    "velocity_rms_mm_s",
]


def _analyzer(**overrides: object) -> isthmus.SpectrumAnalyzer:
    options: dict[str, object] = {
        "frame": 256,
        "hop": 96,
        "channels": 2,
        "bands": [(0, 1000), (1000, 5000), (5000, 12_800)],
        "peaks": 3,
        "average": 3,
        "velocity_band": (10, 1000),
    }
    options.update(overrides)
    return isthmus.SpectrumAnalyzer(FS, **options)  # type: ignore[arg-type]


def _signal(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    return np.stack(
        [
            np.sin(2 * np.pi * 800.0 * t) + 0.1 * rng.standard_normal(n),
            0.5 * np.cos(2 * np.pi * 3000.0 * t) + 0.2 * rng.standard_normal(n),
        ]
    )


def _feed_in_chunks(
    analyzer: isthmus.SpectrumAnalyzer, x: np.ndarray, sizes: list[int]
) -> dict[str, np.ndarray]:
    """Feed x split at the given chunk sizes (cycled); concatenate every column."""
    parts: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
    pos, i = 0, 0
    while pos < x.shape[1]:
        size = sizes[i % len(sizes)]
        frames = analyzer.feed(x[:, pos : pos + size])
        for c in COLUMNS:
            parts[c].append(getattr(frames, c))
        pos += size
        i += 1
    return {c: np.concatenate(v) for c, v in parts.items()}


def _assert_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    for c in COLUMNS:
        # Bit-identical, NaN where NaN: the same operations whatever the chunking.
        np.testing.assert_array_equal(a[c], b[c], err_msg=c, strict=True)


X = _signal(3000)
WHOLE = _feed_in_chunks(_analyzer(), X, [X.shape[1]])


def test_reference_split_produces_the_expected_frames() -> None:
    assert len(WHOLE["start_index"]) == 1 + (3000 - 256) // 96
    np.testing.assert_array_equal(WHOLE["start_index"], 96 * np.arange(len(WHOLE["start_index"])))
    assert WHOLE["band_rms"].shape == (len(WHOLE["start_index"]), 2, 3)
    assert WHOLE["peak_freqs"].shape == (len(WHOLE["start_index"]), 2, 3)
    assert WHOLE["valid"].all()


@pytest.mark.parametrize("size", [1, 37, 256, 96, 10_000])
def test_fixed_chunk_sizes_give_identical_frames(size: int) -> None:
    _assert_identical(_feed_in_chunks(_analyzer(), X, [size]), WHOLE)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=20))
def test_any_chunking_gives_identical_frames(sizes: list[int]) -> None:
    sizes = [s for s in sizes if s > 0] or [1]
    _assert_identical(_feed_in_chunks(_analyzer(), X, sizes), WHOLE)


def test_spectrum_and_psd_do_not_depend_on_chunking() -> None:
    a, b = _analyzer(), _analyzer()
    a.feed(X)
    for start in range(0, X.shape[1], 37):
        b.feed(X[:, start : start + 37])
    np.testing.assert_array_equal(a.spectrum(), b.spectrum())
    np.testing.assert_array_equal(a.psd(), b.psd())
    assert a.frames == b.frames == len(WHOLE["start_index"])
    assert a.samples == b.samples == X.shape[1]


def test_channels_are_analysed_independently() -> None:
    both = _analyzer().feed(X)
    for ch in range(2):
        single = _analyzer(channels=1).feed(X[ch])
        np.testing.assert_array_equal(both.rms[:, ch], single.rms[:, 0])
        np.testing.assert_array_equal(both.band_rms[:, ch], single.band_rms[:, 0])
    assert abs(np.median(both.dominant_freq[:, 0]) - 800) < 5
    assert abs(np.median(both.dominant_freq[:, 1]) - 3000) < 5


@pytest.mark.parametrize(
    "dtype", [np.float64, np.float32, np.int16, np.int32, np.int64, np.uint16, np.int8, np.uint8]
)
def test_any_numeric_dtype_is_converted(dtype: type) -> None:
    raw = np.round(X * 100).astype(dtype)
    # Pinned to float64, every dtype gives exactly what its float64 conversion gives.
    ours = _analyzer(dtype="float64").feed(raw)
    reference = _analyzer().feed(raw.astype(np.float64))
    np.testing.assert_array_equal(ours.rms, reference.rms)
    np.testing.assert_array_equal(ours.peak_freqs, reference.peak_freqs)
    # Left to follow the input, only float32 is analysed in float32 (to float32 precision).
    auto = _analyzer()
    frames = auto.feed(raw)
    assert auto.dtype == ("float32" if dtype is np.float32 else "float64")
    np.testing.assert_allclose(
        frames.rms, reference.rms, rtol=0 if dtype is not np.float32 else 1e-5
    )


def test_non_contiguous_and_list_input() -> None:
    wide = np.zeros((2, 2 * X.shape[1]))
    wide[:, ::2] = X
    strided = _analyzer().feed(wide[:, ::2])
    transposed = _analyzer().feed(np.ascontiguousarray(X.T).T)
    listed = _analyzer(channels=1).feed(X[0].tolist())
    _assert_identical({c: getattr(strided, c) for c in COLUMNS}, WHOLE)
    _assert_identical({c: getattr(transposed, c) for c in COLUMNS}, WHOLE)
    np.testing.assert_array_equal(listed.rms[:, 0], WHOLE["rms"][:, 0])


def test_nan_and_inf_mark_frames_invalid_and_stay_out_of_the_psd() -> None:
    frame = 256
    x = _signal(frame * 6)
    x[0, frame * 2 + 10] = np.nan
    x[1, frame * 4 + 3] = np.inf
    analyzer = _analyzer(hop=frame, average=6)
    frames = analyzer.feed(x)
    expected_valid = np.ones((6, 2), dtype=bool)
    expected_valid[2, 0] = False
    expected_valid[4, 1] = False
    np.testing.assert_array_equal(frames.valid, expected_valid)
    assert np.isnan(frames.rms[2, 0]) and np.isnan(frames.band_rms[4, 1]).all()
    assert np.isfinite(frames.rms[expected_valid]).all()
    assert analyzer.invalid_frames == 2
    assert analyzer.invalid_frames_by_channel == [1, 1]
    # The PSD averages only the five valid frames of each channel.
    clean = _analyzer(hop=frame, average=5)
    clean.feed(np.stack([np.delete(x[0], np.s_[2 * frame : 3 * frame]), x[1, : 5 * frame]]))
    np.testing.assert_allclose(analyzer.psd()[0], clean.psd()[0], rtol=1e-12)
    assert np.isfinite(analyzer.psd()).all()


def test_an_invalid_first_frame_leaves_no_spectrum() -> None:
    analyzer = _analyzer(channels=1, hop=256)
    x = np.full(256, np.nan)
    frames = analyzer.feed(x)
    assert not frames.valid.any()
    assert np.isnan(analyzer.spectrum()).all() and np.isnan(analyzer.psd()).all()


def test_frames_carry_time_from_t0() -> None:
    analyzer = _analyzer(t0=1_700_000_000.0)
    frames = analyzer.feed(X)
    np.testing.assert_allclose(frames.start_time, 1_700_000_000.0 + frames.start_index / FS)


def test_empty_feed_and_reset() -> None:
    analyzer = _analyzer()
    empty = analyzer.feed(np.zeros((2, 0)))
    assert len(empty) == 0 and empty.rms.shape == (0, 2) and empty.band_rms.shape == (0, 2, 3)
    analyzer.feed(X)
    analyzer.reset()
    assert analyzer.frames == 0 and analyzer.samples == 0
    _assert_identical(_feed_in_chunks(analyzer, X, [500]), WHOLE)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hop": 0}, "hop"),
        ({"hop": 300}, "hop"),
        ({"hop": -5}, "hop"),
        ({"frame": 2}, "frame"),
        ({"channels": 0}, "channels"),
        ({"average": 0}, "average"),
        ({"window": "kaiser"}, "kaiser"),
        ({"detrend": "quadratic"}, "detrend"),
        ({"bands": [(0, 20_000)]}, "bands[0]"),
        ({"bands": [(100, 50)]}, "bands[0]"),
        ({"bands": [(0, 100), (3, 4)]}, "bands[1]"),
        ({"bands": [(1, 2, 3)]}, "bands[0]"),
        ({"velocity_band": (0, 1000)}, "velocity band"),
        ({"velocity_band": (0, 1000)}, "must satisfy 0 < lo < hi"),
        # Sizes no memory holds are errors, not a panic (overflow) or an aborted process.
        ({"frame": 2**62, "hop": 1}, "too large"),
        ({"frame": 2**44, "hop": 1}, "too large"),
        ({"average": 2**40}, "too large"),
        ({"channels": 2**40}, "too large"),
        ({"accel_units": "furlongs"}, "furlongs"),
    ],
)
def test_bad_configuration_raises_signal_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(isthmus.SignalError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _analyzer(**options)
    with pytest.raises(isthmus.SignalError):
        isthmus.SpectrumAnalyzer(-1.0)


def test_bad_blocks_raise_signal_error() -> None:
    analyzer = _analyzer()
    with pytest.raises(isthmus.SignalError, match="3 channel"):
        analyzer.feed(np.zeros((3, 10)))
    with pytest.raises(isthmus.SignalError, match="one channel"):
        analyzer.feed(np.zeros(10))
    with pytest.raises(isthmus.SignalError, match="dimensions"):
        analyzer.feed(np.zeros((2, 2, 2)))
    with pytest.raises(isthmus.SignalError, match="complex"):
        analyzer.feed(np.zeros((2, 4), dtype=complex))
    with pytest.raises(isthmus.SignalError):
        analyzer.feed("not samples")
    with pytest.raises(isthmus.SignalError, match="scaling"):
        analyzer.feed(X)
        analyzer.psd(scaling="power")
    # Nothing was consumed by the failed calls.
    assert analyzer.samples == X.shape[1]


def test_psd_before_any_frame_is_an_error() -> None:
    with pytest.raises(isthmus.SignalError, match="no frame"):
        _analyzer().psd()


def test_velocity_rms_rejects_bad_input() -> None:
    x = np.sin(np.arange(10_000) * 0.1)
    with pytest.raises(isthmus.SignalError, match="NaN"):
        isthmus.velocity_rms(np.where(np.arange(10_000) == 5, np.nan, x), 10_000.0)
    with pytest.raises(isthmus.SignalError, match="1-D"):
        isthmus.velocity_rms(np.zeros((2, 100)), 10_000.0)
    with pytest.raises(isthmus.SignalError, match="Nyquist"):
        isthmus.velocity_rms(x, 1000.0, band=(10, 1000))
    with pytest.raises(isthmus.SignalError, match="units"):
        isthmus.velocity_rms(x, 10_000.0, units="mm")


def test_feed_and_velocity_rms_release_the_gil() -> None:
    """Python runs in another thread while a large block is analysed (see gil_probe: a call
    holding the GIL throughout gives exactly 0), and the frames are the same as without."""
    big = _signal(400_000, seed=5)
    expected = _analyzer().feed(big).rms
    results: list[np.ndarray] = []
    assert python_ran_during(lambda: results.append(_analyzer().feed(big).rms)) > 0
    np.testing.assert_array_equal(results[0], expected)
    assert python_ran_during(lambda: isthmus.velocity_rms(big[0], FS)) > 0


def test_detrend_spellings_follow_scipy() -> None:
    assert _analyzer().detrend == "mean"
    assert _analyzer(detrend=None).detrend == "mean"
    assert _analyzer(detrend="constant").detrend == "mean"
    assert _analyzer(detrend=False).detrend == "none"
    assert _analyzer(detrend="linear").detrend == "linear"
    analyzer = _analyzer()
    assert (analyzer.hop, analyzer.bins, analyzer.window) == (96, 129, "hann")
    assert analyzer.coherent_gain == pytest.approx(0.5)
    assert analyzer.enbw_hz == pytest.approx(1.5 * FS / 256)
