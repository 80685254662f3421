"""SampleRing against a numpy ring buffer written well in Python, and its memory over 10**8 samples.

The baseline is what a user would write without isthmus: a preallocated ``channels x
capacity`` array, index arithmetic, slice copies (two at the wrap), and the same accounting
as ``SampleRing`` (absolute indices, declared gaps, per-reader overrun and gap counts), so both
sides do the same job. One benchmark round is 100 pushes of a 256-sample float32 chunk, each
followed by one read.
"""

from __future__ import annotations

import bisect
import resource
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from isthmus import SampleRing

RATE = 25_600.0
CAPACITY = 65_536
CHUNK = 256
PUSHES_PER_ROUND = 100


class NumpyRead(NamedTuple):
    samples: np.ndarray
    start_index: int
    start_time: float
    lost_overrun: int
    lost_gap: int


class NumpyRing:
    """A ring on a preallocated numpy array, with absolute indices and declared gaps."""

    def __init__(self, channels: int, capacity: int, sample_rate: float) -> None:
        self.buf = np.full((channels, capacity), np.nan, dtype=np.float32)
        self.capacity = capacity
        self.sample_rate = sample_rate
        self.written = 0
        # Declared gaps [start, end) that still reach into the ring, with gap samples before.
        self.gap_starts: deque[int] = deque()
        self.gap_ends: deque[int] = deque()
        self.gaps_before: deque[int] = deque()
        self.total_gap = 0

    def push(self, block: np.ndarray, gap: int = 0) -> int:
        block = np.asarray(block, dtype=self.buf.dtype)
        if block.ndim == 1:
            block = block[None, :]
        if gap:
            self.gap_starts.append(self.written)
            self.gap_ends.append(self.written + gap)
            self.gaps_before.append(self.total_gap)
            self.total_gap += gap
            self._write(np.full((self.buf.shape[0], min(gap, self.capacity)), np.nan), self.written)
            self.written += gap
        start = self.written
        n = block.shape[1]
        self._write(block, start)
        self.written = start + n
        oldest = self.written - self.capacity
        while self.gap_ends and self.gap_ends[0] <= oldest:
            self.gap_starts.popleft()
            self.gap_ends.popleft()
            self.gaps_before.popleft()
        return start

    def _write(self, block: np.ndarray, start: int) -> None:
        cap = self.capacity
        n = block.shape[1]
        if n > cap:
            block = block[:, n - cap :]
            start += n - cap
            n = cap
        pos = start % cap
        head = min(n, cap - pos)
        self.buf[:, pos : pos + head] = block[:, :head]
        if head < n:
            self.buf[:, : n - head] = block[:, head:]

    def gaps_below(self, index: int) -> int:
        if not self.gap_ends:
            return self.total_gap
        k = bisect.bisect_right(self.gap_ends, index)
        if k == len(self.gap_ends):
            return self.total_gap
        start = self.gap_starts[k]
        return self.gaps_before[k] + max(0, index - start)

    def reader(self) -> NumpyReader:
        return NumpyReader(self)


class NumpyReader:
    def __init__(self, ring: NumpyRing) -> None:
        self.ring = ring
        self.position = ring.written
        self.gaps_at_position = ring.total_gap
        self.total_read = self.total_lost_overrun = self.total_lost_gap = 0

    def read(self, max_n: int | None = None) -> NumpyRead:
        ring = self.ring
        cap = ring.capacity
        written = ring.written
        start = max(self.position, written - cap)
        gaps_at_start = self.gaps_at_position if start == self.position else ring.gaps_below(start)
        lost_gap = gaps_at_start - self.gaps_at_position
        lost_overrun = start - self.position - lost_gap
        end = written
        if ring.gap_ends:
            k = bisect.bisect_right(ring.gap_ends, start)
            if k < len(ring.gap_ends):
                if ring.gap_starts[k] <= start:  # the read begins in a gap: skip it
                    skipped = ring.gap_ends[k] - start
                    lost_gap += skipped
                    gaps_at_start += skipped
                    start = ring.gap_ends[k]
                    k += 1
                if k < len(ring.gap_starts):
                    end = ring.gap_starts[k]
        n = end - start if max_n is None else min(end - start, max_n)
        pos = start % cap
        head = min(n, cap - pos)
        if head == n:
            samples = ring.buf[:, pos : pos + n].copy()
        else:
            samples = np.concatenate((ring.buf[:, pos:], ring.buf[:, : n - head]), axis=1)
        self.position = start + n
        self.gaps_at_position = gaps_at_start
        self.total_read += n
        self.total_lost_overrun += lost_overrun
        self.total_lost_gap += lost_gap
        return NumpyRead(samples, start, start / ring.sample_rate, lost_overrun, lost_gap)


def _chunk(channels: int) -> np.ndarray:
    block = np.random.default_rng(7).standard_normal((channels, CHUNK)).astype(np.float32)
    return block[0] if channels == 1 else block


def _push_read_loop(ring: Any, reader: Any, block: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        for _ in range(PUSHES_PER_ROUND):
            ring.push(block)
            reader.read()

    return run


def check_baseline_matches_sample_ring() -> None:
    """The baseline does the same job: same samples and the same accounting."""
    rng = np.random.default_rng(3)
    ours, theirs = SampleRing(2, 1000, RATE), NumpyRing(2, 1000, RATE)
    our_reader, their_reader = ours.reader(), theirs.reader()
    for _ in range(200):
        block = rng.standard_normal((2, int(rng.integers(0, 900)))).astype(np.float32)
        gap = int(rng.choice([0, 0, 0, int(rng.integers(1, 1500))]))
        assert ours.push(block, gap=gap) == theirs.push(block, gap=gap)
        for _ in range(int(rng.integers(0, 3))):
            max_n = int(rng.integers(0, 800)) if rng.random() < 0.5 else None
            a, b = our_reader.read(max_n), their_reader.read(max_n)
            assert (a.start_index, a.lost_overrun, a.lost_gap) == (
                b.start_index,
                b.lost_overrun,
                b.lost_gap,
            )
            np.testing.assert_array_equal(a.samples, b.samples)


@pytest.mark.parametrize("channels", [1, 4])
def test_push_read_isthmus(benchmark: Any, channels: int) -> None:
    ring = SampleRing(channels, CAPACITY, RATE)
    reader = ring.reader()
    benchmark.group = f"ring push+read f32 {channels}ch x{CHUNK}"
    benchmark.extra_info["role"] = "isthmus"
    benchmark.extra_info["target"] = ">=3"
    benchmark(_push_read_loop(ring, reader, _chunk(channels)))
    assert reader.total_read == ring.written and reader.total_lost_overrun == 0


@pytest.mark.parametrize("channels", [1, 4])
def test_push_read_numpy_ring(benchmark: Any, channels: int) -> None:
    check_baseline_matches_sample_ring()
    ring = NumpyRing(channels, CAPACITY, RATE)
    reader = ring.reader()
    benchmark.group = f"ring push+read f32 {channels}ch x{CHUNK}"
    benchmark.extra_info["role"] = "baseline"
    benchmark(_push_read_loop(ring, reader, _chunk(channels)))
    assert reader.total_read == ring.written and reader.total_lost_overrun == 0


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_memory_flat_over_1e8_samples(benchmark: Any, report: Callable[..., None]) -> None:
    """10**8 samples per channel (2 channels) through a ring with a reader: RSS stays flat."""
    channels, chunk, total = 2, 1 << 16, 10**8
    ring = SampleRing(channels, 1 << 18, RATE)
    reader = ring.reader()
    block = np.random.default_rng(1).standard_normal((channels, chunk)).astype(np.float32)
    period = 1.0 / RATE

    def stream() -> tuple[int, int]:
        ring.push(block, t0=1.7e9)
        for _ in range(3):  # settle the allocator before measuring
            ring.push(block)
            reader.read()
        before = _rss_bytes()
        for k in range(total // chunk + 1):
            # Clock drift of a tenth of a period on every push (re-anchors the time base) and
            # a 1000-sample t0 jump (a gap) now and then keep the bookkeeping busy.
            gap = 1000 if k % 50 == 49 else 0
            ring.push(block, t0=ring.time_of(ring.written) + (gap + 0.1) * period)
            reader.read()
        return before, _rss_bytes()

    before, after = benchmark.pedantic(stream, rounds=1, iterations=1)
    benchmark.group = "ring memory over 1e8 samples"
    benchmark.extra_info["role"] = "isthmus"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    growth = after - before
    report("ring RSS before 1e8 samples x2 ch (MiB)", f"{before / 2**20:.1f}")
    report("ring RSS after 1e8 samples x2 ch (MiB)", f"{after / 2**20:.1f}")
    report("ring RSS growth over 1e8 samples (MiB)", f"{growth / 2**20:.2f}", "bound < 16")
    report("process peak RSS (MiB)", f"{peak / 2**20:.1f}")
    assert ring.total_gap == 1000 * ((total // chunk + 1) // 50)
    assert reader.total_lost_gap == ring.total_gap
    assert reader.total_read + reader.total_lost_overrun + reader.total_lost_gap == ring.written
    assert growth < 16 * 2**20
