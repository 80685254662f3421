"""SampleRing behaviour: shapes, dtypes, wrap-around, overrun, gaps, time base, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isthmus import RingRead, RingReader, SampleRing, SignalError


def ramp(start: int, n: int, channels: int = 1) -> np.ndarray:
    """Samples that encode their own index: value = 4 * index + channel."""
    idx = np.arange(start, start + n, dtype=np.float64)
    return np.stack([4 * idx + c for c in range(channels)])


def test_properties_and_repr() -> None:
    ring = SampleRing(3, 100, 25_600.0)
    assert (ring.channels, ring.capacity, ring.sample_rate) == (3, 100, 25_600.0)
    assert ring.dtype == np.float32
    assert ring.written == 0
    assert ring.total_gap == 0
    assert "channels=3" in repr(ring)
    assert SampleRing(1, 4, 1.0, dtype="float64").dtype == np.float64
    assert SampleRing(1, 4, 1.0, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_push_and_read_roundtrip_in_ring_dtype(dtype: str) -> None:
    ring = SampleRing(2, 16, 100.0, dtype=dtype)
    reader = ring.reader()
    assert isinstance(reader, RingReader)
    block = ramp(0, 5, channels=2)
    assert ring.push(block) == 0
    got = reader.read()
    assert isinstance(got, RingRead)
    assert len(got) == 5
    assert got.samples.shape == (2, 5)
    assert got.samples.dtype == np.dtype(dtype)
    assert got.samples.flags.c_contiguous
    np.testing.assert_array_equal(got.samples, block)
    assert (got.start_index, got.start_time, got.lost_overrun, got.lost_gap) == (0, 0.0, 0, 0)
    assert reader.position == 5
    assert reader.total_read == 5
    empty = reader.read()
    assert len(empty) == 0
    assert empty.samples.shape == (2, 0)
    assert empty.start_index == 5


def test_one_channel_ring_takes_flat_and_2d_blocks_and_lists() -> None:
    ring = SampleRing(1, 16, 10.0)
    reader = ring.reader()
    ring.push(np.array([1, 2, 3], dtype=np.int16))
    ring.push(np.array([[4.0, 5.0]]))
    ring.push([6, 7])
    ring.push(np.array([8, 9], dtype=np.uint64))
    got = reader.read()
    np.testing.assert_array_equal(got.samples, [np.arange(1, 10)])


def test_non_contiguous_and_byte_swapped_blocks_are_converted() -> None:
    ring = SampleRing(2, 32, 10.0)
    reader = ring.reader()
    wide = ramp(0, 10, channels=2)
    ring.push(wide[:, ::2])  # strided view
    ring.push(np.asfortranarray(wide))
    ring.push(wide.astype(">f8"))
    got = reader.read()
    np.testing.assert_array_equal(got.samples, np.hstack([wide[:, ::2], wide, wide]))


def test_nan_and_inf_are_stored_as_given() -> None:
    ring = SampleRing(1, 8, 10.0)
    reader = ring.reader()
    ring.push([1.0, math.nan, math.inf, -math.inf])
    got = reader.read().samples[0]
    assert got[0] == 1.0
    assert math.isnan(got[1])
    assert got[2] == math.inf
    assert got[3] == -math.inf


def test_wrap_around_many_times_keeps_order() -> None:
    ring = SampleRing(3, 7, 10.0)
    reader = ring.reader()
    start = 0
    for n in [1, 6, 7, 3, 5, 2, 7, 4]:
        assert ring.push(ramp(start, n, 3)) == start
        got = reader.read()
        assert got.start_index == start
        np.testing.assert_array_equal(got.samples, ramp(start, n, 3))
        start += n
    assert ring.written == start
    np.testing.assert_array_equal(ring.latest(7), ramp(start - 7, 7, 3))


def test_overrun_is_counted_and_newest_kept() -> None:
    ring = SampleRing(1, 8, 10.0)
    reader = ring.reader()
    ring.push(ramp(0, 5))
    ring.push(ramp(5, 20))  # longer than the ring: keeps the newest 8
    got = reader.read()
    assert got.lost_overrun == 17
    assert got.lost_gap == 0
    assert got.start_index == 17
    np.testing.assert_array_equal(got.samples, ramp(17, 8))
    assert reader.total_lost_overrun == 17
    assert reader.total_read + reader.total_lost_overrun == ring.written


def test_max_n_limits_reads_and_available_counts_the_rest() -> None:
    ring = SampleRing(1, 64, 10.0)
    reader = ring.reader()
    ring.push(ramp(0, 30))
    assert reader.available == 30
    first = reader.read(max_n=12)
    assert (first.start_index, len(first)) == (0, 12)
    assert reader.available == 18
    assert len(reader.read(max_n=0)) == 0
    rest = reader.read()
    assert (rest.start_index, len(rest)) == (12, 18)


def test_declared_gap_reads_stop_at_the_gap_and_count_it() -> None:
    ring = SampleRing(1, 64, 100.0)
    reader = ring.reader()
    ring.push(ramp(0, 4))
    assert ring.push(ramp(10, 3), gap=6) == 10
    assert ring.written == 13
    assert ring.total_gap == 6
    assert reader.available == 7
    before = reader.read()
    assert (before.start_index, len(before), before.lost_gap) == (0, 4, 0)
    after = reader.read()
    assert (after.start_index, len(after), after.lost_gap) == (10, 3, 6)
    np.testing.assert_array_equal(after.samples, ramp(10, 3))
    assert after.start_time == pytest.approx(0.10)
    assert reader.total_lost_gap == 6
    latest = ring.latest(10)[0]  # indices 3..13: one sample, the gap as NaN, three samples
    assert latest[0] == ramp(3, 1)[0, 0]
    assert np.isnan(latest[1:7]).all()
    np.testing.assert_array_equal(latest[7:], ramp(10, 3)[0])


def test_gap_only_push_and_gap_larger_than_ring() -> None:
    ring = SampleRing(2, 8, 10.0)
    reader = ring.reader()
    ring.push(ramp(0, 3, 2))
    ring.push(np.empty((2, 0)), gap=1_000_000)
    assert ring.written == 1_000_003
    assert np.isnan(ring.latest(8)).all()
    got = reader.read()
    assert (got.lost_overrun, got.lost_gap, len(got)) == (3, 1_000_000, 0)
    assert reader.position == ring.written


def test_time_base_follows_t0_and_sample_rate() -> None:
    t0 = 1_700_000_000.0
    ring = SampleRing(1, 1024, 1000.0)
    reader = ring.reader()
    ring.push(ramp(0, 100), t0=t0)
    ring.push(ramp(100, 100))  # time follows from the rate
    ring.push(ramp(200, 100), t0=t0 + 0.2)  # on time
    assert ring.time_of(250) == pytest.approx(t0 + 0.25)
    got = reader.read()
    assert (got.start_index, len(got), got.lost_gap) == (0, 300, 0)
    assert got.start_time == t0


def test_forward_t0_jump_is_a_gap_and_backwards_t0_is_an_error() -> None:
    t0 = 1_700_000_000.0
    ring = SampleRing(1, 1024, 1000.0)
    reader = ring.reader()
    ring.push(ramp(0, 10), t0=t0)
    # 0.4 of a period late: drift, re-anchored, no gap.
    assert ring.push(ramp(10, 10), t0=t0 + 0.0104) == 10
    assert ring.time_of(10) == pytest.approx(t0 + 0.0104, abs=1e-6)
    # 25 samples (25 ms) late: a gap of 25.
    start = ring.push(ramp(45, 5), t0=ring.time_of(20) + 0.025)
    assert start == 45
    assert ring.total_gap == 25
    with pytest.raises(SignalError, match="backwards"):
        ring.push(ramp(0, 1), t0=ring.time_of(50) - 0.002)
    assert ring.written == 50  # unchanged by the failed push
    reads = [reader.read(), reader.read()]
    assert [(r.start_index, len(r), r.lost_gap) for r in reads] == [(0, 20, 0), (45, 5, 25)]
    assert reads[1].start_time == pytest.approx(t0 + 0.0104 + 0.035, abs=1e-6)


def test_first_t0_anchors_without_a_gap() -> None:
    ring = SampleRing(1, 64, 10.0)
    ring.push(ramp(0, 20))  # times relative to index 0 so far
    ring.push(ramp(20, 5), t0=1_000.0)
    assert ring.total_gap == 0
    assert ring.time_of(20) == 1_000.0
    assert ring.time_of(10) == pytest.approx(999.0)


def test_reader_from_oldest_and_independent_cursors() -> None:
    ring = SampleRing(1, 10, 10.0)
    ring.push(ramp(0, 15))
    late = ring.reader()
    oldest = ring.reader(from_oldest=True)
    assert late.position == 15
    assert oldest.position == 5
    ring.push(ramp(15, 2))
    np.testing.assert_array_equal(late.read().samples, ramp(15, 2))
    got = oldest.read()
    assert (got.start_index, got.lost_overrun) == (7, 2)  # 5 and 6 were overwritten meanwhile
    np.testing.assert_array_equal(got.samples, ramp(7, 10))


def test_read_result_owns_its_samples() -> None:
    ring = SampleRing(1, 4, 10.0)
    reader = ring.reader()
    ring.push(ramp(0, 4))
    got = reader.read()
    ring.push(ramp(4, 4))  # overwrites every slot
    np.testing.assert_array_equal(got.samples, ramp(0, 4))


@pytest.mark.parametrize(
    ("channels", "capacity", "rate", "message"),
    [
        (0, 8, 1.0, "channels"),
        (-1, 8, 1.0, "channels"),
        (1, 0, 1.0, "capacity"),
        (1, 8, 0.0, "sample_rate"),
        (1, 8, -5.0, "sample_rate"),
        (1, 8, math.nan, "sample_rate"),
        (1, 8, math.inf, "sample_rate"),
    ],
)
def test_bad_construction_raises_signal_error(
    channels: int, capacity: int, rate: float, message: str
) -> None:
    with pytest.raises(SignalError, match=message):
        SampleRing(channels, capacity, rate)


@pytest.mark.parametrize("dtype", ["int16", "float16", "complex64", "no-such-type"])
def test_bad_ring_dtype_raises_signal_error(dtype: str) -> None:
    with pytest.raises(SignalError, match="dtype"):
        SampleRing(1, 8, 1.0, dtype=dtype)


def test_bad_blocks_raise_clear_signal_errors() -> None:
    ring = SampleRing(4, 16, 1.0)
    with pytest.raises(SignalError, match=r"shape \(8,\).*4-channel.*\(4, n\)"):
        ring.push(np.zeros(8))
    with pytest.raises(SignalError, match=r"shape \(3, 8\)"):
        ring.push(np.zeros((3, 8)))
    with pytest.raises(SignalError, match="shape"):
        ring.push(np.zeros((4, 2, 2)))
    with pytest.raises(SignalError, match="int or float"):
        ring.push(np.zeros((4, 2), dtype=np.complex64))
    with pytest.raises(SignalError, match="int or float"):
        ring.push(np.array([["a"] * 2] * 4))
    with pytest.raises(SignalError):
        ring.push([[1, 2], [3]])  # ragged
    with pytest.raises(SignalError, match="gap"):
        ring.push(np.zeros((4, 2)), gap=-1)
    with pytest.raises(SignalError, match="t0"):
        ring.push(np.zeros((4, 2)), t0=math.nan)
    assert ring.written == 0


def test_latest_errors() -> None:
    ring = SampleRing(1, 8, 1.0)
    ring.push(ramp(0, 5))
    with pytest.raises(SignalError, match="capacity"):
        ring.latest(9)
    with pytest.raises(SignalError, match="written"):
        ring.latest(6)
    with pytest.raises(SignalError):
        ring.latest(-1)
    assert ring.latest(0).shape == (1, 0)


def test_bad_read_arguments() -> None:
    ring = SampleRing(1, 8, 1.0)
    with pytest.raises(SignalError, match="max_n"):
        ring.reader().read(max_n=-1)
    with pytest.raises(SignalError, match="index"):
        ring.time_of(-1)
