"""Every array entry point of ``isthmus._core`` against every memory layout numpy can hand it.

A numpy array is not always an aligned, C-ordered, native-endian block: ``np.frombuffer``
at an odd offset is misaligned, a slice is strided, a 2-D array may be Fortran-ordered, an
array may be read-only, and data read from a file or a network is often big-endian
(``>f4``, ``>u2``). Reading a misaligned buffer as a Rust slice is undefined behaviour (a
debug build of the extension aborts the interpreter on it; ``.ci/debug-bindings.sh`` runs
this module against such a build). Each entry point must give, for each of those layouts
and for zero-length input, exactly what it gives for the same values in a plain array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import isthmus
from isthmus import _core

RNG = np.random.default_rng(20261204)


# ----- the layouts ---------------------------------------------------------------------


def unaligned(a: np.ndarray) -> np.ndarray:
    """The same values at an address one byte past an aligned one."""
    buf = bytearray(a.nbytes + 1)
    out = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    return out


def strided(a: np.ndarray) -> np.ndarray:
    """A view taking every other element of a twice-as-long last axis."""
    big = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def fortran(a: np.ndarray) -> np.ndarray:
    return np.asfortranarray(a)


def read_only(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.flags.writeable = False
    return out


def swapped(a: np.ndarray) -> np.ndarray:
    """The same values stored in the other byte order (``>f4`` on x86)."""
    return a.astype(a.dtype.newbyteorder())


def unaligned_swapped_strided(a: np.ndarray) -> np.ndarray:
    """Everything at once: misaligned, byte-swapped, strided and read-only."""
    view = unaligned(np.repeat(swapped(a), 2, axis=-1))[..., ::2]
    view.flags.writeable = False
    return view


LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "unaligned": unaligned,
    "strided": strided,
    "fortran": fortran,
    "read-only": read_only,
    "byte-swapped": swapped,
    "all at once": unaligned_swapped_strided,
}


def test_the_layouts_are_what_they_claim() -> None:
    a = np.arange(12.0).reshape(2, 6)
    assert not unaligned(a).flags.aligned
    assert not strided(a).flags.c_contiguous
    assert fortran(a).flags.f_contiguous and not fortran(a).flags.c_contiguous
    assert not read_only(a).flags.writeable
    assert not swapped(a).dtype.isnative
    mixed = unaligned_swapped_strided(a)
    assert not (mixed.flags.aligned or mixed.flags.c_contiguous or mixed.flags.writeable)
    assert not mixed.dtype.isnative
    for make in LAYOUTS.values():
        np.testing.assert_array_equal(make(a), a)


# ----- the entry points ----------------------------------------------------------------


def frames_dict(frames: _core.FeatureFrames) -> dict[str, Any]:
    names = [
        "start_index", "start_time", "valid", "mean", "rms", "peak", "peak_to_peak",
        "crest_factor", "std", "skewness", "kurtosis", "dominant_freq", "centroid",
        "band_rms", "peak_freqs", "peak_amps", "velocity_rms_mm_s",
    ]  # fmt: skip
    return {n: getattr(frames, n) for n in names}


def spectrum_feed(x: np.ndarray) -> Any:
    channels = 1 if x.ndim == 1 else x.shape[0]
    analyzer = isthmus.SpectrumAnalyzer(
        1000.0, frame=64, hop=32, channels=channels, bands=[(50, 200)], peaks=2,
        velocity_band=(20, 400),
    )  # fmt: skip
    # Twice: the first block decides the precision, the second is converted to it.
    return [frames_dict(analyzer.feed(x)), frames_dict(analyzer.feed(x)), analyzer.dtype]


def velocity(x: np.ndarray) -> Any:
    return isthmus.velocity_rms(x, 1000.0, band=(20.0, 400.0))


def ring_push(dtype: str) -> Callable[[np.ndarray], Any]:
    def run(x: np.ndarray) -> Any:
        channels = 1 if x.ndim == 1 else x.shape[0]
        ring = isthmus.SampleRing(channels, 1024, 1000.0, dtype=dtype)
        start = ring.push(x)
        n = x.shape[-1]
        return [start, ring.written, ring.latest(n)]

    return run


PLAN = isthmus.DecodePlan(
    [
        isthmus.Tag("a", 0, "int16"),
        isthmus.Tag("b", 1, "float32", order="CDAB"),
        isthmus.Tag("c", 3, "uint16", scale=0.5),
        isthmus.Tag("d", 4, "bit", bit=3),
    ]
)


def plan_decode(x: np.ndarray) -> Any:
    plan = PLAN if x.size else isthmus.DecodePlan([])
    return plan.decode(x)


def plan_decode_many(x: np.ndarray) -> Any:
    plan = PLAN if x.size else isthmus.DecodePlan([])
    return plan.decode_many(x)


def decode_array(x: np.ndarray) -> Any:
    return [
        isthmus.decode_array(x, "int16", scale=0.25),
        isthmus.decode_array(x, "uint16"),
        isthmus.decode_array(x, "float32", order="BADC") if x.size % 2 == 0 else None,
        isthmus.decode_array(x, "int8"),
    ]


def encode_array(x: np.ndarray) -> Any:
    return [isthmus.encode_array(x, "float64"), isthmus.encode_array(x, "int32", "DCBA")]


def decimate(x: np.ndarray) -> Any:
    d = isthmus.Decimator(4)
    return [d.process(x), d.process(x)]


def envelope_feed(x: np.ndarray) -> Any:
    env = isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205", frame=1024)
    return [env.feed(x), env.envelope_spectrum()]


def rules_evaluate_times(x: np.ndarray) -> Any:
    engine = isthmus.RuleEngine("pump")
    engine.add_threshold("hot", "x", 0.5, 0.2)
    column = np.linspace(0.0, 1.0, len(x))
    return [a.to_dict() for a in engine.evaluate(x, {"x": column})]


def rules_evaluate_column(x: np.ndarray) -> Any:
    engine = isthmus.RuleEngine("pump")
    engine.add_threshold("hot", "x", 0.5, 0.2)
    times = np.arange(len(x), dtype=np.float64)
    return [a.to_dict() for a in engine.evaluate(times, {"x": x})]


@dataclass(frozen=True)
class Entry:
    name: str
    run: Callable[[np.ndarray], Any]
    make: Callable[[], np.ndarray]
    """A typical input (the normal layout)."""


def signal(n: int, dtype: str = "float64", channels: int = 0, scale: float = 1.0) -> np.ndarray:
    shape = (n,) if channels == 0 else (channels, n)
    x = RNG.normal(0.0, scale, shape)
    if np.dtype(dtype).kind in "iu":
        x = np.clip(np.round(x), np.iinfo(dtype).min, np.iinfo(dtype).max)
    return x.astype(dtype)


def registers(n: int, rows: int = 0) -> np.ndarray:
    shape = (n,) if rows == 0 else (rows, n)
    return RNG.integers(0, 65536, shape).astype(np.uint16)


ENTRIES = [
    Entry("SpectrumAnalyzer.feed float64", spectrum_feed, lambda: signal(300)),
    Entry("SpectrumAnalyzer.feed float32", spectrum_feed, lambda: signal(300, "float32")),
    Entry("SpectrumAnalyzer.feed int16", spectrum_feed, lambda: signal(300, "int16", scale=900)),
    Entry("SpectrumAnalyzer.feed uint16", spectrum_feed, lambda: signal(300, "uint16", 0, 900)),
    Entry("SpectrumAnalyzer.feed int32", spectrum_feed, lambda: signal(300, "int32", 0, 900)),
    Entry("SpectrumAnalyzer.feed 2 ch float64", spectrum_feed, lambda: signal(300, channels=2)),
    Entry("SpectrumAnalyzer.feed 2 ch float32", spectrum_feed, lambda: signal(300, "float32", 2)),
    Entry("velocity_rms float64", velocity, lambda: signal(1000)),
    Entry("velocity_rms float32", velocity, lambda: signal(1000, "float32")),
    Entry("SampleRing.push f32 ring", ring_push("float32"), lambda: signal(200, "float32", 3)),
    Entry("SampleRing.push f64 ring", ring_push("float64"), lambda: signal(200, channels=2)),
    Entry("SampleRing.push f32 ring, float64", ring_push("float32"), lambda: signal(200)),
    Entry("SampleRing.push f64 ring, int16", ring_push("float64"), lambda: signal(90, "int16")),
    Entry("DecodePlan.decode uint16", plan_decode, lambda: registers(5)),
    Entry("DecodePlan.decode int32", plan_decode, lambda: registers(5).astype(np.int32)),
    Entry("DecodePlan.decode_many uint16", plan_decode_many, lambda: registers(5, rows=40)),
    Entry("decode_array uint16", decode_array, lambda: registers(64)),
    Entry("decode_array int64", decode_array, lambda: registers(64).astype(np.int64)),
    Entry("encode_array float64", encode_array, lambda: signal(50, scale=1e4).round()),
    Entry("encode_array int32", encode_array, lambda: signal(50, "int32", scale=1e4)),
    Entry("Decimator.process float64", decimate, lambda: signal(500)),
    Entry("Decimator.process float32", decimate, lambda: signal(500, "float32")),
    Entry("EnvelopeAnalyzer.feed float64", envelope_feed, lambda: signal(3000)),
    Entry("EnvelopeAnalyzer.feed float32", envelope_feed, lambda: signal(3000, "float32")),
    Entry("RuleEngine.evaluate times", rules_evaluate_times, lambda: np.arange(20.0)),
    Entry("RuleEngine.evaluate column", rules_evaluate_column, lambda: np.linspace(0, 1, 20)),
    Entry("RuleEngine.evaluate int8 column", rules_evaluate_column, lambda: signal(20, "int8")),
]


# ----- comparing outcomes --------------------------------------------------------------


def outcome(run: Callable[[np.ndarray], Any], x: np.ndarray) -> Any:
    """The result, or the exception's class and message (a zero-length input may be an error
    for an entry point, but the same error as for a plain zero-length array)."""
    try:
        return ("ok", run(x))
    except isthmus.IsthmusError as e:
        return ("error", type(e).__name__, str(e))


def assert_same(got: Any, want: Any, where: str = "") -> None:
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray), where
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{where}: shape {got.shape} != {want.shape}"
        np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list | tuple):
        assert type(got) is type(want) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and np.isnan(want):
        assert isinstance(got, float) and np.isnan(got), where
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


CASES = [
    pytest.param(entry, layout, id=f"{entry.name} / {layout}")
    for entry in ENTRIES
    for layout in LAYOUTS
]


@pytest.mark.parametrize(("entry", "layout"), CASES)
def test_every_layout_gives_the_plain_result(entry: Entry, layout: str) -> None:
    x = entry.make()
    if layout == "fortran" and x.ndim == 1:
        pytest.skip("a 1-D array is C- and Fortran-ordered at once")
    if layout == "byte-swapped" and x.dtype.itemsize == 1:
        pytest.skip("a one-byte dtype has no byte order")
    want = outcome(entry.run, x)
    assert want[0] == "ok", want
    odd = LAYOUTS[layout](x)
    np.testing.assert_array_equal(odd, x)
    assert_same(outcome(entry.run, odd), want, entry.name)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_zero_length_input_in_every_layout(entry: Entry) -> None:
    x = entry.make()
    empty = x[..., :0]
    want = outcome(entry.run, np.ascontiguousarray(empty))
    for name, make in LAYOUTS.items():
        if name == "byte-swapped" and x.dtype.itemsize == 1:
            continue
        assert_same(outcome(entry.run, make(empty)), want, f"{entry.name} / {name}")
    # Empty views at an odd address past the end of a buffer, and of a read-only bytes.
    odd = np.frombuffer(bytes(x.dtype.itemsize + 1), x.dtype, count=0, offset=1)
    assert_same(outcome(entry.run, odd.reshape(empty.shape)), want, f"{entry.name} / odd")


def test_sequences_and_float32_are_accepted_where_arrays_are() -> None:
    """Issue 13: float32 arrays and lists gave "'ndarray' object cannot be cast as 'ndarray'"
    at EnvelopeAnalyzer.feed, Decimator.process and RuleEngine.evaluate."""
    cases = [
        (decimate, signal(500)),
        (envelope_feed, signal(3000)),
        (rules_evaluate_times, np.arange(20.0) / 3),
        (rules_evaluate_column, np.linspace(0.0, 1.0, 20)),
    ]
    for run, x in cases:
        want = outcome(run, x)
        assert want[0] == "ok", want
        assert_same(outcome(run, list(x)), want, f"{run.__name__} list")
        # float32 values, given as float32 or as their float64 image, agree exactly
        x32 = x.astype(np.float32)
        assert_same(outcome(run, x32), outcome(run, x32.astype(np.float64)), run.__name__)
