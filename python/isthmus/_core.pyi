"""Type stubs for the native core ``isthmus._core`` (hand-written; checked by mypy.stubtest)."""

import numpy as np
import numpy.typing as npt

__version__: str

# ===== decode: Modbus register decoding =====

# ===== end decode =====

# ===== ring: multi-channel sample rings =====

from typing import final

@final
class SampleRing:
    """A preallocated multi-channel sample ring with absolute indices and a time base.

    Holds the newest ``capacity`` samples of ``channels`` channels at ``sample_rate`` Hz,
    stored as ``dtype`` (float32 or float64). Every sample has an absolute index (counting
    from 0, never reused, gap samples included); :attr:`written` is the index of the next one.

    Time: sample ``i`` is at ``t_anchor + (i - i_anchor) / sample_rate`` seconds. Until the
    producer first gives ``t0`` the anchor is index 0 at 0.0 s; the first ``t0`` anchors the
    time base (Unix seconds, say) and later ones re-anchor it (see :meth:`push`).

    Thread-safe: one producer thread and any number of reader threads may use the ring and its
    readers at once; copies run with the GIL released.

    Raises :class:`isthmus.SignalError` if ``channels`` or ``capacity`` < 1, ``sample_rate`` is
    not a finite number > 0, or ``dtype`` is not float32/float64.
    """

    def __new__(
        cls,
        channels: int,
        capacity: int,
        sample_rate: float,
        dtype: npt.DTypeLike = "float32",
    ) -> SampleRing: ...
    def push(self, block: npt.ArrayLike, t0: float | None = None, gap: int = 0) -> int:
        """Append a block of samples; return the index of its first sample.

        ``block``: shape ``(n,)`` (one-channel ring) or ``(channels, n)``, any int or float
        dtype or nested list, converted to the ring dtype (NaN allowed). A block longer than
        the capacity keeps its newest ``capacity`` samples; readers count the rest as overrun.

        ``gap``: samples the producer declares missing before this block: the index advances
        by ``gap`` with no data and readers count them in ``lost_gap``.

        ``t0``: time in seconds of the block's first sample (after ``gap``). A jump beyond the
        expected time of more than half a sample period declares ``round(jump * sample_rate)``
        further gap samples; a time earlier than expected by more than half a period raises
        :class:`isthmus.SignalError`; smaller drift re-anchors the time base.

        Raises :class:`isthmus.SignalError` for a wrong shape or channel count, a non-numeric
        block, a negative ``gap`` or a non-finite or backwards ``t0``; the ring is then unchanged.
        """
    def reader(self, from_oldest: bool = False) -> RingReader:
        """A new reader with its own cursor.

        It starts at the next sample to be written (``from_oldest=False``) or at the oldest
        sample still in the ring.
        """
    def latest(self, n: int) -> npt.NDArray[np.float32 | np.float64]:
        """A copy of the newest ``n`` samples, shape ``(channels, n)``; gap slots hold NaN.

        Raises :class:`isthmus.SignalError` if ``n`` exceeds the capacity or :attr:`written`.
        """
    def time_of(self, index: int) -> float:
        """Time in seconds of sample ``index``.

        Exact for indices still in the ring and for future ones (extrapolated from the newest
        anchor); older indices are extrapolated from the oldest anchor kept.
        """
    @property
    def channels(self) -> int:
        """Number of channels."""
    @property
    def capacity(self) -> int:
        """Samples kept per channel."""
    @property
    def sample_rate(self) -> float:
        """Sample rate in Hz."""
    @property
    def dtype(self) -> np.dtype[np.float32 | np.float64]:
        """Storage dtype: float32 or float64."""
    @property
    def written(self) -> int:
        """Index of the next sample: samples pushed plus gap samples declared, per channel."""
    @property
    def total_gap(self) -> int:
        """Gap samples declared so far (explicit ``gap`` plus ``t0`` jumps), per channel."""

@final
class RingReader:
    """One reader's cursor into a :class:`SampleRing`, with running totals.

    Every sample index from the reader's start on is, exactly once, either returned by
    :meth:`read` (in order) or counted in ``lost_overrun`` or ``lost_gap``. A reader may be
    shared between threads; its reads are then serialised.
    """

    def read(self, max_n: int | None = None) -> RingRead:
        """The samples written since the last read, at most ``max_n`` per channel.

        Samples the reader was owed but that were overwritten (overrun) or fell into declared
        gaps are skipped and counted. A read stops at the start of a gap, so the returned
        samples are consecutive: sample ``k`` has index ``start_index + k``. Call again to
        get what follows the gap. Raises :class:`isthmus.SignalError` if ``max_n`` < 0.
        """
    @property
    def position(self) -> int:
        """Index of the next sample this reader will return or count as lost."""
    @property
    def available(self) -> int:
        """Samples (per channel) still readable now, over as many reads as gaps require."""
    @property
    def total_read(self) -> int:
        """Samples returned so far, per channel."""
    @property
    def total_lost_overrun(self) -> int:
        """Samples overwritten before this reader got them, so far."""
    @property
    def total_lost_gap(self) -> int:
        """Samples of declared gaps this reader skipped, so far."""

@final
class RingRead:
    """The result of one :meth:`RingReader.read`."""

    @property
    def samples(self) -> npt.NDArray[np.float32 | np.float64]:
        """The samples, shape ``(channels, n)``, in the ring's dtype (a fresh copy)."""
    @property
    def start_index(self) -> int:
        """Absolute index of the first returned sample."""
    @property
    def start_time(self) -> float:
        """Time in seconds of the first returned sample; sample ``k`` is at about
        ``start_time + k / sample_rate`` (within half a sample period across re-anchoring)."""
    @property
    def lost_overrun(self) -> int:
        """Samples overwritten before this read could return them."""
    @property
    def lost_gap(self) -> int:
        """Samples of declared gaps skipped by this read."""
    def __len__(self) -> int:
        """Samples per channel returned (``samples.shape[1]``)."""

# ===== end ring =====

# ===== spectrum: streaming spectral features =====

# ===== end spectrum =====

# ===== diagnostics: bearing, envelope, ISO 20816, rules =====

# ===== end diagnostics =====
