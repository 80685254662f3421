"""Memory stays flat over 10**8 samples: a long stream must not grow the process.

This is a memory bound (resident set size from /proc/self/status), not a timing assert.
The stream re-anchors the time base on every push and declares a gap now and then, so the
ring's bookkeeping (time anchors, gap spans) is exercised over the whole run too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from isthmus import SampleRing

RATE = 25_600.0


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc")
def test_rss_flat_over_1e8_samples() -> None:
    channels, chunk, total = 2, 1 << 16, 10**8
    ring = SampleRing(channels, 1 << 18, RATE)
    reader = ring.reader()
    block = np.random.default_rng(1).standard_normal((channels, chunk)).astype(np.float32)
    period = 1.0 / RATE
    ring.push(block, t0=1.7e9)
    for _ in range(3):  # settle the allocator before measuring
        ring.push(block)
        reader.read()
    before = rss_bytes()
    pushes = total // chunk + 1
    for k in range(pushes):
        gap = 1000 if k % 50 == 49 else 0
        ring.push(block, t0=ring.time_of(ring.written) + (gap + 0.1) * period)
        got = reader.read()
        assert len(got) == chunk
    growth = rss_bytes() - before
    assert ring.written >= total
    assert ring.total_gap == 1000 * (pushes // 50)
    assert reader.total_lost_gap == ring.total_gap
    assert reader.total_read + reader.total_lost_overrun + reader.total_lost_gap == ring.written
    assert growth < 16 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 1e8 samples"
