"""Property: whatever the producer and readers do, no sample is lost without being counted.

A pure-Python model of the ring (a dict of index -> value, a set of gap indices, a list of
time anchors) is driven with the same random sequence of pushes, gaps, ``t0`` jumps and reads
as the real ring. Every read must match the model exactly, and for each reader every index
from its start on must be returned exactly once, in order, or counted as overrun or gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus import SampleRing, SignalError

RATE = 8.0  # Hz: a power of two, so times are exact in binary floating point


def encode(index: int, channel: int) -> float:
    """Sample value that names its own index and channel (exact in float32 below 2**22)."""
    return 4.0 * index + channel


@dataclass
class ModelReader:
    position: int
    start: int
    returned: list[int] = field(default_factory=list)
    overrun: set[int] = field(default_factory=set)
    gap: set[int] = field(default_factory=set)


@dataclass
class ModelRing:
    capacity: int
    written: int = 0
    gaps: set[int] = field(default_factory=set)
    anchors: list[tuple[int, float]] = field(default_factory=lambda: [(0, 0.0)])
    anchored: bool = False

    def time_of(self, index: int) -> float:
        before = [a for a in self.anchors if a[0] <= index]
        idx, t = before[-1] if before else self.anchors[0]
        return t + (index - idx) / RATE

    def push(self, n: int, gap: int, t0: float | None) -> int:
        """Mirror of the documented push rules; returns the block's first index."""
        start = self.written + gap
        anchor = None
        if t0 is not None:
            if self.anchored:
                jump = (t0 - self.time_of(start)) * RATE
                if jump < -0.5:
                    raise SignalError("backwards")
                if jump > 0.5:
                    start += math.floor(jump + 0.5)
                    anchor = (start, t0)
                elif abs(jump) > 0.01:
                    anchor = (start, t0)
            else:
                anchor = (start, t0)
        if anchor is not None:
            if not self.anchored:
                self.anchors = []
                self.anchored = True
            self.anchors.append(anchor)
        self.gaps.update(range(self.written, start))
        self.written = start + n
        return start

    def read(self, reader: ModelReader, max_n: int | None) -> tuple[int, int, int, int]:
        """(start_index, n, lost_overrun, lost_gap) of the documented read rule."""
        oldest = max(0, self.written - self.capacity)
        lost_overrun = lost_gap = 0
        pos = reader.position
        while pos < oldest or (pos < self.written and pos in self.gaps):
            if pos in self.gaps:
                lost_gap += 1
                reader.gap.add(pos)
            else:
                lost_overrun += 1
                reader.overrun.add(pos)
            pos += 1
        n = 0
        while pos + n < self.written and pos + n not in self.gaps and (max_n is None or n < max_n):
            n += 1
        reader.returned.extend(range(pos, pos + n))
        reader.position = pos + n
        return pos, n, lost_overrun, lost_gap


push_op = st.tuples(
    st.just("push"),
    st.integers(0, 40),  # samples in the block
    st.integers(0, 30) | st.just(0),  # declared gap
    st.none() | st.sampled_from([-0.45, -0.2, 0.0, 0.3, 0.6, 1.0, 2.49, 7.0, 33.0]),
)
read_op = st.tuples(st.just("read"), st.integers(0, 3), st.none() | st.integers(0, 20))
new_reader_op = st.tuples(st.just("reader"), st.booleans())
backwards_op = st.tuples(st.just("backwards"), st.floats(0.6, 50.0))


@settings(max_examples=300, deadline=None)
@given(
    channels=st.integers(1, 3),
    capacity=st.integers(1, 24),
    dtype=st.sampled_from(["float32", "float64"]),
    ops=st.lists(st.one_of(push_op, push_op, read_op, read_op, new_reader_op, backwards_op)),
)
def test_every_sample_is_read_once_in_order_or_counted(
    channels: int,
    capacity: int,
    dtype: str,
    ops: list[tuple[object, ...]],
) -> None:
    ring = SampleRing(channels, capacity, RATE, dtype=dtype)
    model = ModelRing(capacity)
    readers = [(ring.reader(), ModelReader(0, 0))]
    for op in ops:
        if op[0] == "push":
            _, n, gap, jump = op
            assert isinstance(n, int) and isinstance(gap, int)
            t0 = None
            if jump is not None:
                assert isinstance(jump, float)
                # A t0 `jump` sample periods away from where the block would start.
                t0 = (model.time_of(model.written + gap) if model.anchored else 1e6) + jump / RATE
            start = model.push(n, gap, t0)
            block = np.array(
                [[encode(i, c) for i in range(start, start + n)] for c in range(channels)]
            )
            assert ring.push(block if channels > 1 else block[0], t0=t0, gap=gap) == start
        elif op[0] == "backwards":
            if model.anchored:
                late_by = op[1]
                assert isinstance(late_by, float)
                t0 = model.time_of(model.written) - late_by / RATE
                try:
                    ring.push(np.zeros((channels, 1)), t0=t0)
                except SignalError:
                    pass
                else:
                    raise AssertionError("a backwards t0 was accepted")
        elif op[0] == "reader":
            from_oldest = bool(op[1])
            real = ring.reader(from_oldest=from_oldest)
            pos = max(0, model.written - capacity) if from_oldest else model.written
            assert real.position == pos
            readers.append((real, ModelReader(pos, pos)))
        else:
            _, which, max_n = op
            assert isinstance(which, int)
            real, mine = readers[which % len(readers)]
            expected = model.read(mine, max_n if isinstance(max_n, int) else None)
            got = real.read(max_n=max_n if isinstance(max_n, int) else None)
            assert (got.start_index, len(got), got.lost_overrun, got.lost_gap) == expected
            start, n = expected[0], expected[1]
            want = [[encode(i, c) for i in range(start, start + n)] for c in range(channels)]
            np.testing.assert_array_equal(got.samples, np.array(want).reshape(channels, n))
            if n:
                assert got.start_time == model.time_of(start)
        assert ring.written == model.written
        assert ring.total_gap == len(model.gaps)

    for real, mine in readers:
        # Drain, then check the accounting covers every index exactly once.
        while real.position < ring.written:
            expected = model.read(mine, None)
            got = real.read()
            assert (got.start_index, len(got), got.lost_overrun, got.lost_gap) == expected
        returned = mine.returned
        assert returned == sorted(set(returned)), "duplicated or reordered samples"
        covered = set(returned) | mine.overrun | mine.gap
        assert len(returned) + len(mine.overrun) + len(mine.gap) == len(covered)
        assert covered == set(range(mine.start, model.written))
        assert mine.gap <= model.gaps
        assert real.total_read == len(returned)
        assert real.total_lost_overrun == len(mine.overrun)
        assert real.total_lost_gap == len(mine.gap)
        assert real.available == 0
