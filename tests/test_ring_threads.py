"""One producer and several reader threads at once: no torn, duplicated or reordered data.

Every sample encodes its own index and channel (``8 * index + channel``, exact in float64),
so a read that mixed two pushes, returned a sample twice or out of order, or shifted a
channel is caught. The producer declares gaps now and then and one reader is deliberately
slow, so overrun and gap accounting are exercised under contention too. Blocks and reads
come in sizes below and above the threshold at which the copy releases the GIL, so both
the GIL-held and the truly parallel copy paths run against each other.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from gil_probe import python_ran_during
from isthmus import RingRead, RingReader, SampleRing

CHANNELS = 4
CAPACITY = 4096
RUN_SECONDS = 2.5
# The run also goes on until it has pushed enough to exercise wrap-around and overruns,
# however slow the CPU (qemu), but never longer than this.
MIN_GREEDY_READ = 10 * CAPACITY
MAX_RUN_SECONDS = 40.0


@dataclass
class ReaderLog:
    name: str
    start: int
    reads: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    """(position before, start_index, n, lost_overrun, lost_gap) per read."""
    errors: list[str] = field(default_factory=list)


def encoded(start: int, n: int) -> np.ndarray:
    idx = np.arange(start, start + n, dtype=np.float64)
    return 8.0 * idx[None, :] + np.arange(CHANNELS, dtype=np.float64)[:, None]


def check_read(log: ReaderLog, position: int, reader: RingReader, max_n: int | None) -> None:
    got = reader.read(max_n=max_n)
    n = len(got)
    log.reads.append((position, got.start_index, n, got.lost_overrun, got.lost_gap))
    if got.start_index - position != got.lost_overrun + got.lost_gap:
        log.errors.append(f"{log.name}: skipped indices not accounted at {position}")
    if max_n is not None and n > max_n:
        log.errors.append(f"{log.name}: read {n} > max_n {max_n}")
    if got.samples.shape != (CHANNELS, n):
        log.errors.append(f"{log.name}: shape {got.samples.shape}")
    elif not np.array_equal(got.samples, encoded(got.start_index, n)):
        log.errors.append(f"{log.name}: torn or misplaced data at {got.start_index}")
    if reader.position != got.start_index + n:
        log.errors.append(f"{log.name}: cursor {reader.position} after read ending at {n}")


def test_one_producer_many_readers_lose_nothing_uncounted() -> None:
    ring = SampleRing(CHANNELS, CAPACITY, 25_600.0, dtype="float64")
    gaps: list[tuple[int, int]] = []
    stop = threading.Event()
    rng = random.Random(1234)

    # Readers of different habits: greedy, small max_n, sleepy (overruns), shared by two threads.
    readers = {
        "greedy": ring.reader(),
        "small": ring.reader(),
        "sleepy": ring.reader(),
        "shared": ring.reader(),
    }
    logs = {name: ReaderLog(name, r.position) for name, r in readers.items()}
    shared_lock = threading.Lock()  # serialises the *log* of the shared reader, not the reader

    producer_errors: list[str] = []

    def produce() -> None:
        index = 0
        started = time.monotonic()
        deadline, hard_deadline = started + RUN_SECONDS, started + MAX_RUN_SECONDS
        pushes = 0
        try:
            while time.monotonic() < deadline or (
                readers["greedy"].total_read <= MIN_GREEDY_READ and time.monotonic() < hard_deadline
            ):
                gap = rng.choice([0] * 15 + [rng.randint(1, 3000)])
                # Mostly small blocks (copied holding the GIL), now and then big ones
                # (copied with the GIL released, in parallel with the readers' copies).
                n = rng.randint(1, 700) if rng.random() < 0.8 else rng.randint(1024, 3000)
                start = ring.push(encoded(index + gap, n), gap=gap)
                if start != index + gap:
                    producer_errors.append(f"push at {index} + gap {gap} started at {start}")
                if gap:
                    gaps.append((index, index + gap))
                index = start + n
                pushes += 1
                if pushes % 8 == 0:
                    time.sleep(0.0005)  # let readers catch up at times
        finally:
            stop.set()

    def consume(name: str, max_n: int | None, nap: float) -> None:
        reader, log = readers[name], logs[name]
        local = random.Random(name)
        while True:
            done = stop.is_set()  # read once more after the producer stopped
            pos = reader.position
            check_read(log, pos, reader, max_n)
            if done and reader.position == ring.written:
                break
            if nap:
                time.sleep(nap * local.random())
                if not log.reads[1:]:
                    # Fall a full ring behind once, whatever the relative thread speeds
                    # (slow emulated CPUs too), so an overrun is certain to be exercised.
                    while not stop.is_set() and ring.written - reader.position <= CAPACITY:
                        time.sleep(0.001)

    def consume_shared() -> None:
        reader, log = readers["shared"], logs["shared"]
        while True:
            done = stop.is_set()
            with shared_lock:
                check_read(log, reader.position, reader, 300)
            if done and reader.position == ring.written:
                break

    threads = [
        threading.Thread(target=produce, name="producer"),
        threading.Thread(target=consume, args=("greedy", None, 0.0)),
        threading.Thread(target=consume, args=("small", 97, 0.0)),
        threading.Thread(target=consume, args=("sleepy", None, 0.01)),
        threading.Thread(target=consume_shared),
        threading.Thread(target=consume_shared),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=MAX_RUN_SECONDS + 20)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not producer_errors, producer_errors[:5]

    written = ring.written
    gap_set = np.zeros(written, dtype=bool)
    for a, b in gaps:
        gap_set[a:b] = True
    assert ring.total_gap == int(gap_set.sum())

    for name, reader in readers.items():
        log = logs[name]
        assert not log.errors, log.errors[:5]
        assert log.reads, f"{name} never read"
        # Each read starts where the previous one ended: no index returned twice or skipped.
        seen = np.zeros(written, dtype=np.int8)
        position = log.start
        for before, start, n, lost_overrun, lost_gap in log.reads:
            assert before == position
            skipped = slice(before, start)
            assert lost_gap == int(gap_set[skipped].sum()), f"{name}: gap count at {before}"
            assert lost_overrun == (start - before) - lost_gap
            assert not gap_set[start : start + n].any(), f"{name}: returned gap samples"
            seen[before:start] += 1
            seen[start : start + n] += 1
            position = start + n
        assert position == written
        assert (seen[log.start :] == 1).all()
        total_read = sum(r[2] for r in log.reads)
        assert reader.total_read == total_read
        assert reader.total_lost_overrun == sum(r[3] for r in log.reads)
        assert reader.total_lost_gap == sum(r[4] for r in log.reads)
        assert total_read + reader.total_lost_overrun + reader.total_lost_gap == written - log.start

    # The run must actually have exercised what it claims to test.
    assert readers["sleepy"].total_lost_overrun > 0
    assert readers["greedy"].total_read > MIN_GREEDY_READ
    assert all(r.total_lost_gap > 0 for r in readers.values())


def test_large_copies_release_the_gil() -> None:
    """Pushes, reads and latest() of many samples let other Python threads run (see
    gil_probe: a call holding the GIL throughout gives exactly 0) and still copy exactly."""
    n = 1 << 20
    ring = SampleRing(CHANNELS, n, 25_600.0, dtype="float64")
    reader = ring.reader()
    block = encoded(0, n)
    assert python_ran_during(lambda: ring.push(block)) > 0
    reads: list[RingRead] = []
    assert python_ran_during(lambda: reads.append(reader.read())) > 0
    np.testing.assert_array_equal(reads[0].samples, block)
    latest: list[np.ndarray] = []
    assert python_ran_during(lambda: latest.append(ring.latest(n))) > 0
    np.testing.assert_array_equal(latest[0], block)
