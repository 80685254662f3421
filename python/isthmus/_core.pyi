"""Type stubs for the native core ``isthmus._core`` (hand-written; checked by mypy.stubtest)."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, final

import numpy as np
import numpy.typing as npt

__version__: str

# ===== decode: Modbus register decoding =====

_Registers = Sequence[int] | npt.NDArray[np.integer] | bytes | bytearray | memoryview
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
    def __hash__(self) -> int: ...

@final
class DecodePlan:
    """A validated list of tags over one register block, decoded in one call.

    Construction checks the tags as a set: duplicate names raise
    :class:`isthmus.TagError` naming the tag. An empty plan spans no registers.

    Threads: immutable, so any number of threads may decode with one plan at once.
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
        integer array (any integer dtype; uint16 is used without copying) or a
        bytes-like object (``bytes``, ``bytearray``, ``memoryview``) in wire
        order (big-endian per register, even length). ``base`` is the address of
        ``registers[0]`` (0..65535, default ``start``).

        Raises :class:`isthmus.DecodeError` when the block is too short (naming
        the first tag that does not fit and the registers it needs), ``base`` is
        outside 0..65535 or above ``start``, a register is outside 0..65535 or
        not an int, or a BCD nibble is not a digit. NaN
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
    not a finite number > 0, ``dtype`` is not float32/float64, or the ring does not fit in
    memory.
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

        Raises :class:`isthmus.SignalError` if ``n`` exceeds the capacity or :attr:`written`,
        MemoryError if the copy does not fit in memory.
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
        get what follows the gap. Raises :class:`isthmus.SignalError` if ``max_n`` < 0,
        MemoryError (the cursor unmoved) if the copy does not fit in memory.
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

# (`final` is imported in the ring section above.)

@final
class FeatureFrames:
    """Features of the frames completed by one :meth:`SpectrumAnalyzer.feed` call.

    Columnar numpy arrays, one row per frame (``n_frames = len(frames)``, possibly 0).
    Per-channel features are ``(n_frames, channels)`` float64 arrays; a frame with a NaN or
    infinite sample in a channel has ``valid`` False there and NaN features. Statistics
    other than ``mean`` are of the detrended frame. Amplitudes are in the signal's units
    (e.g. g), frequencies in Hz.
    """

    def __len__(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def start_index(self) -> npt.NDArray[np.int64]:
        """Stream index of each frame's first sample, (n_frames,)."""
    @property
    def start_time(self) -> npt.NDArray[np.float64]:
        """Time of each frame's first sample, ``t0 + start_index / sample_rate`` (s),
        (n_frames,)."""
    @property
    def valid(self) -> npt.NDArray[np.bool_]:
        """False where the channel's frame held a NaN or infinity, (n_frames, channels)."""
    @property
    def mean(self) -> npt.NDArray[np.float64]:
        """Mean of the raw samples, (n_frames, channels)."""
    @property
    def rms(self) -> npt.NDArray[np.float64]:
        """RMS after detrending (includes DC when ``detrend="none"``), (n_frames, channels)."""
    @property
    def peak(self) -> npt.NDArray[np.float64]:
        """Largest absolute detrended sample, (n_frames, channels)."""
    @property
    def peak_to_peak(self) -> npt.NDArray[np.float64]:
        """Max minus min of the detrended frame, (n_frames, channels)."""
    @property
    def crest_factor(self) -> npt.NDArray[np.float64]:
        """``peak / rms`` (NaN for a silent frame), (n_frames, channels)."""
    @property
    def std(self) -> npt.NDArray[np.float64]:
        """Population standard deviation (ddof=0), (n_frames, channels)."""
    @property
    def skewness(self) -> npt.NDArray[np.float64]:
        """Skewness as ``scipy.stats.skew`` (biased), (n_frames, channels)."""
    @property
    def kurtosis(self) -> npt.NDArray[np.float64]:
        """Pearson kurtosis (3 for a normal signal), (n_frames, channels)."""
    @property
    def band_rms(self) -> npt.NDArray[np.float64]:
        """RMS in each configured band from the windowed spectrum, energy-corrected
        (Parseval), (n_frames, channels, n_bands)."""
    @property
    def peak_freqs(self) -> npt.NDArray[np.float64]:
        """Top spectral peaks (Hz), largest first, interpolated between bins with the
        window's exact response; NaN when fewer local maxima exist, (n_frames, channels, peaks)."""
    @property
    def peak_amps(self) -> npt.NDArray[np.float64]:
        """Amplitude (0-peak) of the sine each peak stands for, (n_frames, channels, peaks)."""
    @property
    def dominant_freq(self) -> npt.NDArray[np.float64]:
        """Frequency of the largest peak (Hz), (n_frames, channels)."""
    @property
    def centroid(self) -> npt.NDArray[np.float64]:
        """Power-weighted mean frequency of the one-sided spectrum (Hz), (n_frames, channels)."""
    @property
    def velocity_rms_mm_s(self) -> npt.NDArray[np.float64] | None:
        """Velocity RMS (mm/s) over ``velocity_band``, the input taken as acceleration in
        ``accel_units``; None unless the analyzer has a velocity band, (n_frames, channels)."""

@final
class SpectrumAnalyzer:
    """Streaming spectral features of a multi-channel signal sampled at ``sample_rate`` Hz.

    Samples are framed (``frame`` samples, a new frame every ``hop``), detrended
    (``"mean"``/``"constant"``, the default also spelled None, ``"linear"`` or
    ``"none"``/False, as scipy), windowed
    (periodic ``"hann"``, ``"hamming"``, ``"blackman"``, ``"flattop"`` or ``"rectangular"``)
    and transformed once per frame. Results do not depend on how the stream is chunked.
    ``bands`` are ``(lo_hz, hi_hz)`` pairs within 0..Nyquist; bin k belongs to a band when
    ``lo <= f_k < hi`` (the Nyquist bin when ``hi`` is Nyquist). ``hop`` defaults to
    ``frame // 2``. ``velocity_band`` adds a per-frame velocity RMS column (mm/s) for
    acceleration input in ``accel_units`` (``"g"`` or ``"m/s2"``). ``t0`` is the Unix time of
    sample 0. Bad parameters raise :class:`isthmus.SignalError`.

    ``dtype`` is the precision frames are analysed in. ``None`` (the default) follows the
    first block fed, as numpy and scipy do: float32 samples are analysed in float32 (about
    twice as fast; relative precision ~1e-6, what float32 data carries), any other dtype in
    float64. Later blocks are converted to that precision; after :meth:`reset` the next
    block decides again. ``"float32"`` or ``"float64"`` fixes it. Features, spectra and the
    PSD are float64 arrays either way.

    Threads: any thread may call any method; calls on one analyzer are serialised by a lock
    taken with the GIL released (frames are analysed without the GIL, so other Python threads
    run meanwhile). Blocks fed from several threads form one stream, in the order the lock
    was taken.
    """

    def __new__(
        cls,
        sample_rate: float,
        frame: int = 4096,
        hop: int | None = None,
        window: str = "hann",
        channels: int = 1,
        bands: list[tuple[float, float]] | tuple[tuple[float, float], ...] | None = None,
        peaks: int = 5,
        average: int = 1,
        detrend: str | bool | None = None,
        velocity_band: tuple[float, float] | None = None,
        accel_units: str = "g",
        t0: float = 0.0,
        dtype: Literal["float32", "float64"] | None = None,
    ) -> SpectrumAnalyzer: ...
    def feed(self, samples: npt.ArrayLike) -> FeatureFrames:
        """Feed ``(n,)`` (one channel) or ``(channels, n)`` samples of any int or float dtype
        (any layout or byte order, or a sequence); return the features of the frames this block
        completes (possibly none). The GIL is released while frames are analysed. A wrong shape
        or dtype raises :class:`isthmus.SignalError`; features that do not fit in memory (a
        long block with a small hop), MemoryError."""
    def spectrum(self) -> npt.NDArray[np.float64]:
        """Latest valid one-sided amplitude spectrum, (channels, bins): a sine of amplitude A
        on a bin reads A. NaN rows for channels without a valid frame yet."""
    def psd(self, scaling: str = "density") -> npt.NDArray[np.float64]:
        """Welch average of the last ``average`` valid frames, (channels, bins), as
        ``scipy.signal.welch``: ``"density"`` in units^2/Hz or ``"spectrum"`` in units^2.
        Raises :class:`isthmus.SignalError` before the first frame."""
    def frequencies(self) -> npt.NDArray[np.float64]:
        """Frequency of each bin (Hz), (bins,)."""
    def reset(self) -> None:
        """Forget buffered samples, spectra and counters (the configuration stays)."""
    @property
    def sample_rate(self) -> float: ...
    @property
    def frame(self) -> int: ...
    @property
    def hop(self) -> int: ...
    @property
    def window(self) -> str: ...
    @property
    def channels(self) -> int: ...
    @property
    def bands(self) -> list[tuple[float, float]]: ...
    @property
    def peaks(self) -> int: ...
    @property
    def average(self) -> int: ...
    @property
    def dtype(self) -> str:
        """``"float32"`` or ``"float64"``: the precision frames are analysed in (with
        ``dtype=None``, ``"float64"`` until the first block decides)."""
    @property
    def detrend(self) -> str: ...
    @property
    def velocity_band(self) -> tuple[float, float] | None: ...
    @property
    def accel_units(self) -> str: ...
    @property
    def bins(self) -> int:
        """One-sided bins per spectrum, ``frame // 2 + 1``."""
    @property
    def frames(self) -> int:
        """Frames completed so far (each covers every channel)."""
    @property
    def invalid_frames(self) -> int:
        """Channel frames marked invalid (NaN or infinity) so far, summed over channels."""
    @property
    def invalid_frames_by_channel(self) -> list[int]:
        """Invalid frames per channel."""
    @property
    def samples(self) -> int:
        """Samples fed so far per channel."""
    @property
    def coherent_gain(self) -> float:
        """Window coherent gain ``sum(w) / frame`` (0.5 for hann)."""
    @property
    def enbw_hz(self) -> float:
        """Equivalent noise bandwidth of one bin (Hz)."""

def velocity_rms(
    accel: npt.ArrayLike,
    sample_rate: float,
    band: tuple[float, float] = ...,
    units: str = "g",
) -> float:
    """Velocity RMS (mm/s) of a 1-D acceleration record (``units`` ``"g"`` or ``"m/s2"``) over
    ``band`` (Hz, default ``(10.0, 1000.0)``), by integration in the frequency domain (each
    component divided by 2*pi*f): the broadband severity measure of ISO 20816. Raises
    :class:`isthmus.SignalError` for NaN/inf samples, a band outside (0, Nyquist] or one
    without a bin."""

# ===== end spectrum =====

# ===== diagnostics: bearing, envelope, ISO 20816, rules =====

from typing import Self  # noqa: E402 (this area's section keeps its imports)

def bearing_frequencies(
    balls: int, ball_diameter: float, pitch_diameter: float, contact_angle_deg: float = 0.0
) -> dict[str, float]:
    """Bearing fault frequencies as multiples of shaft speed (orders).

    Diameters in any one unit. Returns ``{"bpfo", "bpfi", "bsf", "ftf"}``: ball pass
    frequency outer / inner race, ball spin frequency, fundamental train (cage) frequency.
    Raises DiagnosticsError on impossible geometry.
    """

def bearing(name: str) -> dict[str, object]:
    """A catalogue bearing by name or alias (case and punctuation ignored), e.g. ``"6205"``.

    Keys: name, aliases, balls, ball_diameter_mm, pitch_diameter_mm, contact_angle_deg,
    source (where the geometry comes from), orders (as :func:`bearing_frequencies`).
    """

def bearing_catalogue() -> dict[str, dict[str, object]]:
    """Every catalogue bearing, keyed by name (entries as :func:`bearing`)."""

def iso20816_zone(velocity_rms_mm_s: float, group: int = 2, foundation: str = "rigid") -> str:
    """ISO 20816-3 evaluation zone ``"A"``..``"D"`` of a velocity RMS (mm/s, 10-1000 Hz).

    ``group`` 1 (large machines) or 2 (medium); ``foundation`` ``"rigid"`` or ``"flexible"``.
    A value on a boundary belongs to the worse zone.
    """

def iso20816_boundaries(group: int = 2, foundation: str = "rigid") -> tuple[float, float, float]:
    """Zone boundaries A/B, B/C, C/D in mm/s RMS."""

@final
class Decimator:
    """Streaming anti-aliased decimator: Kaiser-window FIR low-pass (80 dB stop band from the
    output Nyquist frequency, pass band to 80 % of it), then every ``factor``-th sample.

    Output does not depend on how the input is chunked. ``factor`` is 1..64
    (:class:`isthmus.SignalError` otherwise).

    Threads: calls from several threads are serialised by a lock (taken with the GIL
    released); their blocks form one stream.
    """

    def __new__(cls, factor: int) -> Self: ...
    def process(self, samples_in: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Feed samples, shape (n,), any int or float dtype or a sequence; returns the output
        samples they complete. Other input raises :class:`isthmus.SignalError`."""
    @property
    def factor(self) -> int: ...
    @property
    def delay(self) -> int:
        """Group delay of the filter in input samples."""
    @property
    def taps(self) -> npt.NDArray[np.float64]: ...

@final
class EnvelopeAnalyzer:
    """Streaming squared-envelope spectrum with bearing fault scores, one channel in g.

    Frames of ``frame`` samples (0 = automatic: the +/-``tolerance`` search window at the lowest
    fault frequency spans three bins), hop ``frame // 2``. The demodulation band is ``band``
    (Hz) or, when None, the band of highest spectral kurtosis among those wide enough for three
    harmonics of the highest fault frequency, re-chosen every ``reselect_every`` frames when a
    band beats the current one by ``hysteresis`` (relative SK). Band-pass and Hilbert transform
    are done in the frequency domain; the squared-envelope spectrum is averaged over frames
    (mean of the first ``average``, exponential after).

    The decision is a significance test with a stated false-alarm rate ``false_alarm`` per
    diagnosis (shared by the three series and ``bands_tried`` bands). An averaged envelope bin
    of healthy noise is chi-square with 2K dof (K frames, corrected for overlap, unequal frame
    levels and the exponential average); against the median of its neighbours it is
    F(2K, 2K N_eq). Each
    series (outer race: BPFO; inner race: BPFI, shaft sidebands counted; ball: 2 x BSF, FTF
    sidebands counted) is a comb ``h * f0 * r`` with one speed ratio ``r`` searched from
    ``1 - tolerance - slip`` to ``1 + tolerance``; harmonics on shaft-speed multiples are left
    out; the comb's p-values combine by Fisher's method, Bonferroni over the combs tried. A
    fault needs a significant series whose fundamental and ``min_harmonics`` harmonics stand
    out (single-bin p <= 1 %, within 10 dB of its strongest line), in an impulsive band
    (squared-envelope kurtosis excess >= ``min_band_kurtosis`` and >= 3 standard errors). The
    verdict is "uncertain" when the best comb sits at the edge of the searched speed range, when
    inner-race or ball lines come without a single shaft-speed or FTF sideband, or when a
    second series is at least half as significant (``note`` says which).

    ``bearing`` is a catalogue name; or give ``orders={"bpfo", "bpfi", "bsf", "ftf"}``.
    ``rpm`` is the nominal shaft speed; ``feed(..., rpm=)`` updates it. Bad parameters
    (negative counts included) raise :class:`isthmus.DiagnosticsError`.

    Threads: calls from several threads are serialised by a lock (taken with the GIL
    released); their blocks form one stream.
    """

    def __new__(
        cls,
        sample_rate: float,
        rpm: float,
        bearing: str | None = None,
        *,
        orders: dict[str, float] | None = None,
        band: tuple[float, float] | None = None,
        frame: int = 0,
        average: int = 32,
        reselect_every: int = 4,
        hysteresis: float = 0.25,
        harmonics: int = 5,
        tolerance: float = 0.02,
        slip: float = 0.02,
        false_alarm: float = 0.01,
        bands_tried: int = 1,
        min_harmonics: int = 2,
        min_band_kurtosis: float = 0.5,
    ) -> Self: ...
    def feed(
        self, samples_in: npt.ArrayLike, rpm: float | None = None
    ) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.int64] | npt.NDArray[np.int8]]:
        """Feed samples (g), shape (n), any chunk size, any int or float dtype or a sequence
        (other input: :class:`isthmus.SignalError`). Returns one array per feature with one
        entry per frame completed by this chunk: ``start_index`` (int64), ``fault`` (int8:
        0 none, 1 outer race, 2 inner race, 3 ball, -1 uncertain), ``score_db``,
        ``frequency_hz``, ``band_lo_hz``, ``band_hi_hz``, ``band_kurtosis``, ``shaft_hz``,
        ``<series>_score_db|_harmonics|_hz|_margin_db|_sidebands`` for series outer_race,
        inner_race,
        ball, and ``peak<k>_hz|_db`` (k = 1..5) of the envelope spectrum."""
    def diagnose(self) -> dict[str, object]:
        """The diagnosis from the current average: fault ("outer_race", "inner_race", "ball",
        "uncertain" or "none"), score_db, frequency_hz, harmonics, margin_db, note, band_hz,
        band_kurtosis, band_kurtosis_se, impulsive, frames, effective_frames, shaft_hz,
        series (per fault: expected_hz, frequency_hz, ratio, score_db, log10_p, log10_alpha,
        margin_db (10 log10(alpha / p)), significant, at_edge, harmonics, tested, sidebands,
        harmonic_db) and peaks [(Hz, dB over median)]."""
    def envelope_spectrum(
        self,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(frequency in Hz, squared-envelope amplitude in g^2) of the current average."""
    @property
    def sample_rate(self) -> float: ...
    @property
    def frame(self) -> int: ...
    @property
    def hop(self) -> int: ...
    @property
    def band(self) -> tuple[float, float] | None:
        """The current demodulation band (Hz)."""
    @property
    def band_changes(self) -> int: ...
    @property
    def frames_averaged(self) -> int: ...
    @property
    def orders(self) -> dict[str, float]: ...

@final
class Alert:
    """One alert event. ``state`` is ``"raised"`` or ``"cleared"``; ``id`` is stable for an
    alert from raise to clear (hash of asset, rule and onset time); times in seconds."""

    @property
    def id(self) -> str: ...
    @property
    def asset(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def first_time(self) -> float: ...
    @property
    def last_time(self) -> float: ...
    @property
    def value(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def evidence(self) -> dict[str, object]:
        """feature, and per rule kind: fault, frequency_hz, score_db, harmonics, peaks
        (bearing); z_score, baseline_mean, baseline_std (baseline); zone (ISO zone)."""
    def to_dict(self) -> dict[str, object]: ...

@final
class RuleEngine:
    """Rules over per-frame feature columns; ``evaluate`` returns alert events.

    Persistence: a transition needs ``*_frames`` consecutive frames and ``*_seconds`` since the
    first of them. Hysteresis: separate raise and clear levels. A steady condition raises once
    and clears once. Bad rules and inputs (negative counts included) raise
    :class:`isthmus.DiagnosticsError`.

    Threads: calls from several threads are serialised by a lock (taken with the GIL
    released); ``evaluate`` calls form one stream whose times must increase.
    """

    def __new__(cls, asset: str) -> Self: ...
    @property
    def asset(self) -> str: ...
    @property
    def rules(self) -> list[str]: ...
    def add_threshold(
        self,
        name: str,
        feature: str,
        raise_level: float,
        clear_level: float | None = None,
        *,
        above: bool = True,
        severity: str = "warning",
        raise_frames: int = 1,
        raise_seconds: float = 0.0,
        clear_frames: int = 1,
        clear_seconds: float = 0.0,
    ) -> None:
        """Raise when ``feature`` >= raise_level (<= when not ``above``), clear when it is back
        beyond ``clear_level`` (default: raise_level)."""
    def add_baseline(
        self,
        name: str,
        feature: str,
        *,
        learn_frames: int = 30,
        learn_seconds: float = 0.0,
        z_raise: float = 4.0,
        z_clear: float = 2.0,
        severity: str = "warning",
        raise_frames: int = 3,
        raise_seconds: float = 0.0,
        clear_frames: int = 3,
        clear_seconds: float = 0.0,
    ) -> None:
        """Learn mean and spread over the learning period, then raise on |z| >= z_raise and
        clear on |z| < z_clear."""
    def add_zone_change(
        self,
        name: str,
        feature: str = "iso_zone",
        *,
        raise_zone: str = "C",
        severity: str = "warning",
        raise_frames: int = 1,
        raise_seconds: float = 0.0,
        clear_frames: int = 1,
        clear_seconds: float = 0.0,
    ) -> None:
        """``feature`` holds the zone as 0..3 (A..D). Raise at ``raise_zone`` or worse; a move to
        a worse zone re-raises the same alert (severity "critical" in zone D)."""
    def add_bearing(
        self,
        name: str,
        *,
        k_db: float = 10.0,
        clear_db: float | None = None,
        min_harmonics: int = 2,
        faults: list[str] = ...,
        gate_feature: str | None = ...,
        gate_min: float = 1.0,
        severity: str = "warning",
        raise_frames: int = 2,
        raise_seconds: float = 0.0,
        clear_frames: int = 2,
        clear_seconds: float = 0.0,
    ) -> None:
        """Raise when a fault series (columns ``<fault>_score_db``, ``<fault>_harmonics``,
        ``<fault>_hz`` as :meth:`EnvelopeAnalyzer.feed` gives) scores >= k_db with at least
        ``min_harmonics``; clear below ``clear_db`` (default k_db - 3). The alert is raised only
        on frames whose ``gate_feature`` reaches ``gate_min`` (default: the analyzer's own
        ``fault`` verdict); clearing follows the scores."""
    def evaluate(self, times: npt.ArrayLike, features: dict[str, Any]) -> list[Alert]:
        """Evaluate frames at ``times`` (s, increasing across calls) with numeric feature
        columns of the same length (e.g. the dict :meth:`EnvelopeAnalyzer.feed` returns);
        returns the raised/cleared events in order."""
    def active(self) -> list[Alert]:
        """The alerts currently raised."""

# ===== end diagnostics =====

# ===== s7 (rust/py/src/s7.rs) =====

_S7Block = bytes | bytearray | memoryview

def s7_type_size(type_name: str) -> int:
    """Bytes a value of S7 type ``type_name`` occupies in PLC memory (``STRING[20]`` -> 22).

    Unknown types and string lengths outside 1..254 (WSTRING: 1..16382) raise
    :class:`isthmus.TagError`.
    """

@final
class S7Plan:
    """S7 tags at byte offsets of one memory area, decoded from one block read (big-endian).

    ``tags`` are ``(name, byte offset, type, bit)`` tuples; ``bit`` (0..7) is used by
    ``BOOL`` only and must be 0 for other types. Values: BOOL -> bool; BYTE, WORD,
    DWORD, SINT, INT, DINT, USINT, UINT, UDINT -> int; REAL, LREAL -> float; CHAR,
    STRING[n] (Latin-1), WSTRING[n] (UTF-16) -> str; S5TIME, TIME, TIME_OF_DAY ->
    float seconds; DATE -> ``"YYYY-MM-DD"``; DATE_AND_TIME -> ISO text with
    microseconds (the PLC's milliseconds); DTL -> ISO text with nanoseconds. Dates
    carry no zone (the PLC's local clock). Invalid tags raise :class:`isthmus.TagError`.
    """

    def __new__(cls, tags: Iterable[tuple[str, int, str, int]]) -> S7Plan: ...
    def __len__(self) -> int: ...
    @property
    def names(self) -> list[str]:
        """Tag names in plan order."""
    def decode(self, data: _S7Block, base: int = 0) -> dict[str, _Value]:
        """``{name: value}`` from ``data``, whose first byte is at offset ``base``.

        The first tag outside the block or with malformed bytes (a string longer
        than its maximum, a non-BCD DATE_AND_TIME, ...) raises :class:`isthmus.DecodeError`.
        """
    def decode_values(
        self, data: _S7Block, base: int = 0
    ) -> tuple[list[_Value | None], list[str | None]]:
        """``(values, reasons)`` in plan order: a tag that cannot be decoded gets
        ``None`` and the reason; the other tags decode regardless."""

# ===== end s7 =====

# ===== waveform: Modbus TCP block streams read by a Rust thread =====

@final
class ModbusRateLimiter:
    """Spaces requests to one device at least ``1 / requests_per_second`` s apart.

    Shared by the device's Python polling and its :class:`WaveformAcquisition` thread, so
    both stay within one per-device budget. Raises :class:`isthmus.ConfigError` unless
    ``requests_per_second`` is a finite number > 0.
    """

    def __new__(cls, requests_per_second: float) -> ModbusRateLimiter: ...
    def reserve(self) -> float:
        """Book the next request slot; return the seconds to wait before sending (>= 0)."""

@final
class WaveformAcquisition:
    """The waveform blocks of one Modbus TCP device, followed by a Rust thread.

    The thread opens its own connection (``connect_timeout``, ``request_timeout`` in s),
    issues only function codes 3 and 4, follows each block's sequence counter exactly as
    the pymodbus session does, and pushes samples and gaps straight into the
    :class:`SampleRing` given to :meth:`add_block`. Two timeouts in a row or a socket error
    drop the connection; reconnects back off from ``backoff_initial`` to ``backoff_max`` s
    with full jitter. Raises :class:`isthmus.ConfigError` for a timeout <= 0.
    """

    def __new__(
        cls,
        host: str,
        port: int,
        limiter: ModbusRateLimiter,
        *,
        unit_id: int = 1,
        connect_timeout: float = 3.0,
        request_timeout: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> WaveformAcquisition: ...
    def add_block(
        self,
        name: str,
        ring: SampleRing,
        *,
        register: str,
        address: int,
        sequence_address: int,
        samples: int,
        slots: int,
        stride: int,
        dtype: str,
        order: str,
        scale: float,
        sample_rate: float,
    ) -> None:
        """Add one block stream before the first :meth:`start`; its samples (``dtype`` int16
        or float32 in byte ``order``, times ``scale``) go into the one-channel ``ring``.
        ``register``: ``"holding"`` or ``"input"``. Raises :class:`isthmus.ConfigError`
        naming the waveform for anything else, or after the first start."""
    def start(self) -> None:
        """Start the thread (no-op while it runs); a stopped one resumes its streams where
        they were, so an outage becomes a gap. The blocks are checked on the first start
        (:class:`isthmus.ConfigError` naming the waveform: more than 125 registers in one
        read, slots not a power of two, registers beyond 65535, ...)."""
    def stop(self) -> None:
        """Ask the thread to stop and unblock its socket; returns at once."""
    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s (GIL released) for a stopped thread; True if it ended."""
    @property
    def running(self) -> bool:
        """True while the thread runs."""
    @property
    def last_error(self) -> str | None:
        """The last error: a lost connection, or ``"waveform <name>: <exception>"``."""
    def stats(self) -> dict[str, int | float | bool | None]:
        """Counters since construction: ``requests``, ``errors``, ``timeouts``,
        ``reconnects``, ``blocks``, ``samples``, ``gap_samples`` (int), ``connected`` (bool),
        ``last_good_read`` (Unix s, or None)."""
    def drain_events(self) -> list[tuple[str, str]]:
        """Status changes and errors since the last call, oldest first, as
        ``(level, message)`` with level ``"info"``, ``"warning"`` or ``"error"``."""
    def drain_latencies(self) -> list[float]:
        """Request latencies (s) since the last call (at most 4096 kept between calls)."""

# ===== end waveform =====
