"""Type stubs for the native core ``isthmus._core`` (hand-written; checked by mypy.stubtest)."""

import numpy as np
import numpy.typing as npt

__version__: str

# ===== decode: Modbus register decoding =====

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, final

_Registers = Sequence[int] | npt.NDArray[np.integer] | bytes | bytearray
_Value = int | float | str | bool

@final
class Tag:
    """One named value at a Modbus register address; validated on construction.

    ``dtype`` is one of ``bit``, ``int8``, ``uint8``, ``int16``, ``uint16``,
    ``int32``, ``uint32``, ``int64``, ``uint64``, ``float16``, ``float32``,
    ``float64``, ``string``, ``bcd16``, ``bcd32``.

    ``order`` (``ABCD`` default, ``CDAB``, ``BADC``, ``DCBA``) is two independent
    switches applied alike to 32- and 64-bit values and strings: CD-first
    reverses the register order, BA-first swaps the two bytes in every
    register. Single-register types see only the byte swap; ``bit`` and
    ``byte`` refer to the register after it.

    - ``bit``: bit index 0..15 (0 = least significant) of a ``bit`` tag.
    - ``length``: registers of a ``string`` tag (two bytes each, UTF-8; trailing
      NUL and spaces trimmed on decode, invalid UTF-8 replaced by U+FFFD).
    - ``byte``: ``"high"`` (bits 15..8, the default) or ``"low"`` (bits 7..0),
      the byte an ``int8``/``uint8`` tag reads.
    - ``scale``, ``offset``: the value is ``raw * scale + offset``. With
      ``scale == 1`` and ``offset == 0`` integer and BCD tags decode to ``int``;
      any other scaling gives ``float``. ``bit`` and ``string`` cannot be scaled.
    - ``unit``: engineering unit, metadata only.

    Raises :class:`isthmus.TagError` (naming the tag) for an unknown dtype,
    order or byte, a bit index outside 0..15, a string without length, an
    option that does not apply to the dtype, a zero or non-finite scale, or an
    address outside 0..65535 (or a value running past 65535).
    """

    def __new__(
        cls,
        name: str,
        address: int,
        dtype: str,
        order: str = "ABCD",
        scale: float = 1.0,
        offset: float = 0.0,
        bit: int | None = None,
        length: int | None = None,
        unit: str | None = None,
        byte: Literal["high", "low"] | None = None,
    ) -> Tag: ...
    @property
    def name(self) -> str: ...
    @property
    def address(self) -> int:
        """Register address (0..65535) of the first register."""
    @property
    def dtype(self) -> str: ...
    @property
    def order(self) -> str: ...
    @property
    def scale(self) -> float: ...
    @property
    def offset(self) -> float: ...
    @property
    def bit(self) -> int | None:
        """Bit index of a ``bit`` tag, else None."""
    @property
    def length(self) -> int | None:
        """Register count of a ``string`` tag, else None."""
    @property
    def unit(self) -> str | None: ...
    @property
    def byte(self) -> Literal["high", "low"] | None:
        """The byte an ``int8``/``uint8`` tag reads, else None."""
    @property
    def width(self) -> int:
        """Registers the tag occupies."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class DecodePlan:
    """A validated list of tags over one register block, decoded in one call.

    Construction checks the tags as a set: duplicate names raise
    :class:`isthmus.TagError` naming the tag. An empty plan spans no registers.
    """

    def __new__(cls, tags: Iterable[Tag]) -> DecodePlan: ...
    @property
    def start(self) -> int:
        """Address of the first register any tag reads."""
    @property
    def count(self) -> int:
        """Registers from ``start`` to the end of the last tag (the read to issue)."""
    @property
    def tags(self) -> list[Tag]: ...
    def __len__(self) -> int: ...
    def decode(self, registers: _Registers, base: int | None = None) -> dict[str, _Value]:
        """Decodes one register block into ``{tag name: value}`` in plan order.

        ``registers`` is a list/tuple of ints, an ``array.array``, a 1-D numpy
        integer array (uint16 is used without copying) or ``bytes`` in wire
        order (big-endian per register, even length). ``base`` is the address of
        ``registers[0]`` (default ``start``).

        Raises :class:`isthmus.DecodeError` when the block is too short (naming
        the first tag that does not fit and the registers it needs), a register
        is outside 0..65535 or not an int, or a BCD nibble is not a digit. NaN
        and infinity decode as such.
        """
    def decode_many(
        self, frames: npt.ArrayLike, base: int | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """Decodes a 2-D block, one poll per row (frames x registers), into columns.

        Each column has one entry per frame and the dtype's native numpy type
        (``bit`` -> bool, ``bcd16`` -> uint16, ``bcd32`` -> uint32, ``float16`` ->
        float16); scaled tags give float64; ``string`` tags give an object array
        of ``str``. The GIL is released while decoding.
        """
    def encode(self, values: Mapping[str, _Value]) -> npt.NDArray[np.uint16]:
        """The inverse of :meth:`decode`: ``count`` registers from ``start``.

        Scaled tags store ``round((value - offset) / scale)``. Bits and bytes
        sharing a register are merged; registers no tag covers are 0. A missing
        value, an unknown name, or a value the dtype cannot hold raises
        :class:`isthmus.DecodeError` naming the tag.
        """

def decode_array(
    registers: _Registers,
    dtype: str,
    order: str = "ABCD",
    scale: float = 1.0,
    offset: float = 0.0,
) -> npt.NDArray[Any]:
    """Decodes a block of consecutive same-typed values (e.g. a waveform block).

    Unscaled (``scale == 1`` and ``offset == 0``) the result has the dtype's
    native numpy type (``bcd16`` -> uint16, ``bcd32`` -> uint32); scaled it is
    float64 ``raw * scale + offset``. ``int8``/``uint8`` yield two values per
    register in wire order. ``bit`` and ``string`` have no array form. Input as
    for :meth:`DecodePlan.decode`; the GIL is released while decoding.

    Raises :class:`isthmus.TagError` for an unknown dtype or order and
    :class:`isthmus.DecodeError` for a block that is not a whole number of
    values, bad registers or bad BCD.
    """

def encode_array(values: npt.ArrayLike, dtype: str, order: str = "ABCD") -> npt.NDArray[np.uint16]:
    """Encodes a 1-D array of numbers as consecutive registers (inverse of :func:`decode_array`).

    Integer dtypes need whole numbers in range; finite values that overflow
    float16/float32 are errors, NaN and infinity pass through. Raises
    :class:`isthmus.DecodeError` naming the index of a value that cannot be encoded.
    """

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
