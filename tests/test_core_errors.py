"""One exception tree at the Rust boundary (issue 13, items 3 and 4).

- A value of the documented type that isthmus cannot use raises an ``IsthmusError``
  subclass: negative or huge counts included (PyO3 alone raises OverflowError).
- Running out of memory raises MemoryError, never aborts the interpreter: checked in a
  child process whose address space is capped with ``RLIMIT_AS`` (``ulimit -v``).
- Stateful objects serialise calls from several threads (no "Already borrowed").
- A property test throws arbitrary arguments at every public callable of ``isthmus._core``.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import resource
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import isthmus
from isthmus import DiagnosticsError, IsthmusError, SignalError, _core

# ----- counts, bands and dtypes ----------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205", average=-1),
         DiagnosticsError, "average must be >= 0"),
        (lambda: isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205", frame=-4096),
         DiagnosticsError, "frame must be >= 0"),
        (lambda: isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205", harmonics=2**80),
         DiagnosticsError, "harmonics is too large"),
        (lambda: isthmus.Decimator(-1), SignalError, "factor must be >= 0"),
        (lambda: isthmus.Decimator(2**64), SignalError, "factor is too large"),
        (lambda: isthmus.RuleEngine("a").add_threshold("r", "x", 1.0, raise_frames=-1),
         DiagnosticsError, "raise_frames must be >= 0"),
        (lambda: isthmus.RuleEngine("a").add_baseline("r", "x", learn_frames=-(2**70)),
         DiagnosticsError, "learn_frames must be >= 0"),
        (lambda: isthmus.RuleEngine("a").add_bearing("r", min_harmonics=-2),
         DiagnosticsError, "min_harmonics must be >= 0"),
        (lambda: isthmus.RuleEngine("a").add_zone_change("r", clear_frames=-1),
         DiagnosticsError, "clear_frames must be >= 0"),
        (lambda: isthmus.bearing_frequencies(-9, 0.3126, 1.537), DiagnosticsError, "balls"),
        (lambda: isthmus.bearing_frequencies(2**40, 0.3126, 1.537), DiagnosticsError, "balls"),
        (lambda: isthmus.iso20816_zone(4.0, group=-1), DiagnosticsError, "group"),
        (lambda: isthmus.iso20816_zone(4.0, group=2**70), DiagnosticsError, "group"),
        (lambda: isthmus.SpectrumAnalyzer(1000.0, frame=2**70), SignalError, "frame"),
        (lambda: isthmus.SpectrumAnalyzer(1000.0, hop=-(2**70)), SignalError, "hop"),
        (lambda: isthmus.SampleRing(2**70, 16, 1000.0), SignalError, "channels"),
        (lambda: isthmus.SampleRing(1, -(2**70), 1000.0), SignalError, "capacity"),
        (lambda: isthmus.velocity_rms(np.zeros(64), 1000.0, band=(10.0,)), SignalError, "band"),
        (lambda: isthmus.velocity_rms(np.zeros(64), 1000.0, band="10-100"), SignalError, "band"),
        (lambda: isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205", band=(500.0,)),
         DiagnosticsError, "band"),
        (lambda: isthmus.RuleEngine("a").evaluate(np.arange(2.0), {"x": ["a", "b"]}),
         DiagnosticsError, "feature"),
        (lambda: isthmus.RuleEngine("a").evaluate(np.arange(2.0), {1: np.zeros(2)}),
         DiagnosticsError, "feature names"),
        (lambda: isthmus.Decimator(2).process("abc"), SignalError, "samples_in"),
        (lambda: isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205").feed(np.zeros((2, 2))),
         SignalError, "1-D"),
    ],
)  # fmt: skip
def test_bad_values_raise_the_module_error(call: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()  # type: ignore[operator]


def test_a_wrong_python_type_is_a_type_error_naming_the_argument() -> None:
    """The contract for scalars: a value that is not of the documented Python type (a str for
    a rate) is the caller's TypeError, as for any Python function; mypy sees it in the stubs."""
    with pytest.raises(TypeError, match="argument 'sample_rate'"):
        isthmus.SpectrumAnalyzer("fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="argument 'factor'"):
        isthmus.Decimator(2.5)  # type: ignore[arg-type]


# ----- out of memory ---------------------------------------------------------------------

# The child caps its own address space just above what it uses, then asks for copies that
# cannot fit. Each line it prints is the exception one call raised; an abort kills it.
OOM_CHILD = textwrap.dedent(
    """
    import resource
    import numpy as np
    import isthmus

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmSize")

    N = 30_000_000  # 120 MB of float32 per copy
    ring = isthmus.SampleRing(1, N, 1000.0)
    reader = ring.reader(from_oldest=True)
    block = np.zeros(N, np.float32)
    ring.push(block)
    del block
    analyzer = isthmus.SpectrumAnalyzer(1000.0, frame=8, hop=1, bands=[(0, 100)] * 50, peaks=4)
    samples = np.zeros(1_000_000)  # -> 1e6 frames x 70 features: ~560 MB of output
    registers = np.zeros(8_000_000, np.uint16)  # int8, scaled: 16e6 float64 = 128 MB
    plan = isthmus.DecodePlan([isthmus.Tag(f"t{i}", i, "float64", scale=2.0) for i in range(16)])
    frames = np.zeros((1_000_000, 64), np.uint16)  # 16 columns x 1e6 float64 = 128 MB
    huge = np.broadcast_to(np.float64(1.0), (10**10,))  # 80 GB once copied
    decimator = isthmus.Decimator(2)
    long_block = np.zeros(12_000_000)  # 96 MB: the decimator must not copy it whole
    decimator8 = isthmus.Decimator(8)
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + 64 * 2**20,) * 2)

    calls = {
        "SampleRing.latest": lambda: ring.latest(N),
        "RingReader.read": lambda: reader.read(),
        "SpectrumAnalyzer.feed": lambda: analyzer.feed(samples),
        "decode_array": lambda: isthmus.decode_array(registers, "int8", scale=0.5),
        "DecodePlan.decode_many": lambda: plan.decode_many(frames),
        "SpectrumAnalyzer.feed broadcast": lambda: analyzer.feed(huge),
        "Decimator.process broadcast": lambda: decimator.process(huge),
        "Decimator.process 96 MB": lambda: decimator8.process(long_block),
        "velocity_rms broadcast": lambda: isthmus.velocity_rms(huge, 1000.0),
        # Construction refuses what cannot fit with the module's error, before allocating.
        "SampleRing 1e8": lambda: isthmus.SampleRing(1, 10**8, 1000.0),
        "SpectrumAnalyzer frame 2**24": lambda: isthmus.SpectrumAnalyzer(1e3, frame=1 << 24),
        "EnvelopeAnalyzer frame 2**22": lambda: isthmus.EnvelopeAnalyzer(
            48000.0, 1800.0, "6205", frame=1 << 22
        ),
    }
    for name, call in calls.items():
        try:
            call()
            print(name, "ok", flush=True)
        except BaseException as e:
            print(name, type(e).__name__, flush=True)
    # Still usable afterwards: nothing was consumed by the failed read.
    print("reader position", reader.position, flush=True)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_out_of_memory_is_a_memory_error_not_an_abort() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", OOM_CHILD], capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, f"child died ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    lines = dict(line.rsplit(" ", 1) for line in proc.stdout.splitlines())
    assert lines == {
        "SampleRing.latest": "MemoryError",
        "RingReader.read": "MemoryError",
        "SpectrumAnalyzer.feed": "MemoryError",
        "decode_array": "MemoryError",
        "DecodePlan.decode_many": "MemoryError",
        "SpectrumAnalyzer.feed broadcast": "MemoryError",
        "Decimator.process broadcast": "MemoryError",
        "Decimator.process 96 MB": "ok",
        "velocity_rms broadcast": "MemoryError",
        "SampleRing 1e8": "SignalError",
        "SpectrumAnalyzer frame 2**24": "SignalError",
        "EnvelopeAnalyzer frame 2**22": "DiagnosticsError",
        "reader position": "0",
    }, proc.stderr


# ----- threads ---------------------------------------------------------------------------


def run_threads(work: list[object], count: int = 3) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def body(task: object) -> None:
        start.wait()
        try:
            task()  # type: ignore[operator]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=body, args=(w,)) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a thread hung (deadlock?)"
    return errors


def test_spectrum_analyzer_feed_from_three_threads_is_serialised() -> None:
    """Issue 13: three threads feeding one analyzer got RuntimeError: Already borrowed."""
    analyzer = isthmus.SpectrumAnalyzer(25600.0, frame=4096, hop=2048)
    block = np.random.default_rng(1).normal(size=65536)
    rounds = 6
    frames: list[int] = []

    def feed() -> None:
        for _ in range(rounds):
            frames.append(len(analyzer.feed(block)))

    def poll() -> None:  # getters and spectra meanwhile: no deadlock, no borrow error
        for _ in range(200):
            assert analyzer.frames >= 0
            analyzer.spectrum()

    errors = run_threads([feed, feed, feed, poll], count=4)
    assert errors == []
    total = 3 * rounds * block.size
    assert analyzer.samples == total
    assert sum(frames) == analyzer.frames == (total - 4096) // 2048 + 1


def test_decimator_envelope_and_rules_from_several_threads() -> None:
    decimator = isthmus.Decimator(4)
    envelope = isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205", frame=4096)
    engine = isthmus.RuleEngine("pump")
    x = np.random.default_rng(2).normal(size=48000)
    outputs: list[int] = []

    def decimate() -> None:
        for _ in range(5):
            outputs.append(decimator.process(x).size)

    def envelope_feed() -> None:
        for _ in range(2):
            envelope.feed(x)
            envelope.diagnose()

    def rules() -> None:
        for i in range(50):
            engine.add_threshold(f"r{i}", "x", 1.0)
            engine.evaluate(np.array([float(i)]), {"x": np.array([2.0])})
            engine.active()

    errors = run_threads([decimate, decimate, envelope_feed, envelope_feed, rules], count=5)
    assert errors == []
    assert sum(outputs) == 10 * x.size // 4
    assert envelope.frames_averaged > 0
    assert len(engine.rules) == 50


# ----- arbitrary arguments at every public callable --------------------------------------

# Each public callable with the kind of each parameter. A TypeError is the documented answer
# only to a value of the wrong Python type for a scalar, dict or list parameter (it names the
# argument); arrays, pairs and dtypes accept anything and answer with an IsthmusError.
FLOAT, OFLOAT, INT, OINT, STR, OSTR, BOOL = "float", "ofloat", "int", "oint", "str", "ostr", "bool"
ARRAY, PAIR, ANY, DICT, ODICT, TAGS, STRLIST, MAPPING = (
    "array", "pair", "any", "dict", "odict", "tags", "strlist", "mapping",
)  # fmt: skip
BYTES, S7TAGS, LIMITER, RING = "bytes", "s7tags", "limiter", "ring"


def _tags() -> list[isthmus.Tag]:
    return [isthmus.Tag("a", 0, "int16"), isthmus.Tag("b", 1, "float32", order="CDAB")]


def _envelope() -> isthmus.EnvelopeAnalyzer:
    return isthmus.EnvelopeAnalyzer(12000.0, 1800.0, "6205", frame=1024)


def _rules() -> isthmus.RuleEngine:
    engine = isthmus.RuleEngine("pump")
    engine.add_threshold("hot", "x", 1.0)
    return engine


def _s7plan() -> isthmus._core.S7Plan:
    return isthmus._core.S7Plan(
        [("r", 0, "REAL", 0), ("s", 4, "STRING[4]", 0), ("x", 10, "BOOL", 3)]
    )


def _acquisition() -> isthmus._core.WaveformAcquisition:
    # port 1 on loopback: nothing listens, so a started thread only ever backs off
    limiter = isthmus._core.ModbusRateLimiter(1000.0)
    return isthmus._core.WaveformAcquisition("127.0.0.1", 1, limiter, connect_timeout=0.1)


def _start_and_stop() -> None:
    """`start` with no blocks; the thread is stopped and joined so none outlives the case."""
    acquisition = _acquisition()
    acquisition.start()
    acquisition.stop()
    assert acquisition.join(5.0)


def _ring_with_data() -> isthmus.SampleRing:
    ring = isthmus.SampleRing(1, 8, 1.0)
    ring.push(np.arange(5.0))
    return ring


def _reader() -> isthmus.RingReader:
    ring = isthmus.SampleRing(2, 64, 1000.0)
    ring.push(np.ones((2, 40)))
    return ring.reader(from_oldest=True)


_RING_ARGS = [("channels", INT), ("capacity", INT), ("sample_rate", FLOAT), ("dtype", ANY)]
_COMMON_RULE = [("severity", STR), ("raise_frames", INT), ("raise_seconds", FLOAT),
                ("clear_frames", INT), ("clear_seconds", FLOAT)]  # fmt: skip
CALLABLES: list[tuple[str, object, list[tuple[str, str]], int]] = [
    # (name, factory of the callable, parameters, how many leading parameters are required)
    (
        "Tag",
        lambda: isthmus.Tag,
        [
            ("name", STR),
            ("address", INT),
            ("dtype", STR),
            ("order", STR),
            ("scale", FLOAT),
            ("offset", FLOAT),
            ("bit", OINT),
            ("length", OINT),
            ("unit", OSTR),
            ("byte", OSTR),
        ],
        3,
    ),
    ("DecodePlan", lambda: isthmus.DecodePlan, [("tags", TAGS)], 1),
    (
        "DecodePlan.decode",
        lambda: isthmus.DecodePlan(_tags()).decode,
        [("registers", ARRAY), ("base", OINT)],
        1,
    ),
    (
        "DecodePlan.decode_many",
        lambda: isthmus.DecodePlan(_tags()).decode_many,
        [("frames", ARRAY), ("base", OINT)],
        1,
    ),
    ("DecodePlan.encode", lambda: isthmus.DecodePlan(_tags()).encode, [("values", MAPPING)], 1),
    (
        "decode_array",
        lambda: isthmus.decode_array,
        [("registers", ARRAY), ("dtype", STR), ("order", STR), ("scale", FLOAT), ("offset", FLOAT)],
        2,
    ),
    (
        "encode_array",
        lambda: isthmus.encode_array,
        [("values", ARRAY), ("dtype", STR), ("order", STR)],
        2,
    ),
    ("SampleRing", lambda: isthmus.SampleRing, _RING_ARGS, 3),
    (
        "SampleRing.push",
        lambda: isthmus.SampleRing(2, 64, 1000.0).push,
        [("block", ARRAY), ("t0", OFLOAT), ("gap", OINT)],
        1,
    ),
    ("SampleRing.latest", lambda: _ring_with_data().latest, [("n", INT)], 1),
    ("SampleRing.time_of", lambda: isthmus.SampleRing(1, 8, 1.0).time_of, [("index", INT)], 1),
    ("SampleRing.reader", lambda: isthmus.SampleRing(1, 8, 1.0).reader, [("from_oldest", BOOL)], 0),
    ("RingReader.read", lambda: _reader().read, [("max_n", OINT)], 0),
    (
        "SpectrumAnalyzer",
        lambda: isthmus.SpectrumAnalyzer,
        [
            ("sample_rate", FLOAT),
            ("frame", INT),
            ("hop", OINT),
            ("window", STR),
            ("channels", INT),
            ("bands", PAIR),
            ("peaks", INT),
            ("average", INT),
            ("detrend", ANY),
            ("velocity_band", PAIR),
            ("accel_units", STR),
            ("t0", FLOAT),
            ("dtype", OSTR),
        ],
        1,
    ),
    (
        "SpectrumAnalyzer.feed",
        lambda: isthmus.SpectrumAnalyzer(1000.0, frame=16).feed,
        [("samples", ARRAY)],
        1,
    ),
    (
        "SpectrumAnalyzer.psd",
        lambda: isthmus.SpectrumAnalyzer(1000.0, frame=16).psd,
        [("scaling", STR)],
        0,
    ),
    (
        "velocity_rms",
        lambda: isthmus.velocity_rms,
        [("accel", ARRAY), ("sample_rate", FLOAT), ("band", PAIR), ("units", STR)],
        2,
    ),
    (
        "bearing_frequencies",
        lambda: isthmus.bearing_frequencies,
        [
            ("balls", INT),
            ("ball_diameter", FLOAT),
            ("pitch_diameter", FLOAT),
            ("contact_angle_deg", FLOAT),
        ],
        3,
    ),
    ("bearing", lambda: isthmus.bearing, [("name", STR)], 1),
    (
        "iso20816_zone",
        lambda: isthmus.iso20816_zone,
        [("velocity_rms_mm_s", FLOAT), ("group", INT), ("foundation", STR)],
        1,
    ),
    (
        "iso20816_boundaries",
        lambda: isthmus.iso20816_boundaries,
        [("group", INT), ("foundation", STR)],
        0,
    ),
    ("Decimator", lambda: isthmus.Decimator, [("factor", INT)], 1),
    ("Decimator.process", lambda: isthmus.Decimator(3).process, [("samples_in", ARRAY)], 1),
    (
        "EnvelopeAnalyzer",
        lambda: isthmus.EnvelopeAnalyzer,
        [
            ("sample_rate", FLOAT),
            ("rpm", FLOAT),
            ("bearing", OSTR),
            ("orders", ODICT),
            ("band", PAIR),
            ("frame", INT),
            ("average", INT),
            ("reselect_every", INT),
            ("hysteresis", FLOAT),
            ("harmonics", INT),
            ("tolerance", FLOAT),
            ("slip", FLOAT),
            ("false_alarm", FLOAT),
            ("bands_tried", INT),
            ("min_harmonics", INT),
            ("min_band_kurtosis", FLOAT),
        ],
        2,
    ),
    (
        "EnvelopeAnalyzer.feed",
        lambda: _envelope().feed,
        [("samples_in", ARRAY), ("rpm", OFLOAT)],
        1,
    ),
    ("RuleEngine", lambda: isthmus.RuleEngine, [("asset", STR)], 1),
    (
        "RuleEngine.add_threshold",
        lambda: _rules().add_threshold,
        [
            ("name", STR),
            ("feature", STR),
            ("raise_level", FLOAT),
            ("clear_level", OFLOAT),
            ("above", BOOL),
            *_COMMON_RULE,
        ],
        3,
    ),
    (
        "RuleEngine.add_baseline",
        lambda: _rules().add_baseline,
        [
            ("name", STR),
            ("feature", STR),
            ("learn_frames", INT),
            ("learn_seconds", FLOAT),
            ("z_raise", FLOAT),
            ("z_clear", FLOAT),
            *_COMMON_RULE,
        ],
        2,
    ),
    (
        "RuleEngine.add_zone_change",
        lambda: _rules().add_zone_change,
        [("name", STR), ("feature", STR), ("raise_zone", STR), *_COMMON_RULE],
        1,
    ),
    (
        "RuleEngine.add_bearing",
        lambda: _rules().add_bearing,
        [
            ("name", STR),
            ("k_db", FLOAT),
            ("clear_db", OFLOAT),
            ("min_harmonics", INT),
            ("faults", STRLIST),
            ("gate_feature", OSTR),
            ("gate_min", FLOAT),
            *_COMMON_RULE,
        ],
        1,
    ),
    ("RuleEngine.evaluate", lambda: _rules().evaluate, [("times", ARRAY), ("features", DICT)], 2),
    # Without parameters: called on objects in their initial state.
    ("bearing_catalogue", lambda: isthmus.bearing_catalogue, [], 0),
    ("SpectrumAnalyzer.spectrum", lambda: isthmus.SpectrumAnalyzer(1000.0).spectrum, [], 0),
    ("SpectrumAnalyzer.frequencies", lambda: isthmus.SpectrumAnalyzer(1000.0).frequencies, [], 0),
    ("SpectrumAnalyzer.reset", lambda: isthmus.SpectrumAnalyzer(1000.0).reset, [], 0),
    ("EnvelopeAnalyzer.diagnose", lambda: _envelope().diagnose, [], 0),
    ("s7_type_size", lambda: isthmus._core.s7_type_size, [("type_name", STR)], 1),
    ("S7Plan", lambda: isthmus._core.S7Plan, [("tags", S7TAGS)], 1),
    (
        "S7Plan.decode",
        lambda: _s7plan().decode,
        [("data", BYTES), ("base", INT)],
        1,
    ),
    (
        "S7Plan.decode_values",
        lambda: _s7plan().decode_values,
        [("data", BYTES), ("base", INT)],
        1,
    ),
    (
        "ModbusRateLimiter",
        lambda: isthmus._core.ModbusRateLimiter,
        [("requests_per_second", FLOAT)],
        1,
    ),
    ("ModbusRateLimiter.reserve", lambda: isthmus._core.ModbusRateLimiter(1e6).reserve, [], 0),
    (
        "WaveformAcquisition",
        lambda: isthmus._core.WaveformAcquisition,
        [
            ("host", STR),
            ("port", INT),
            ("limiter", LIMITER),
            ("unit_id", INT),
            ("connect_timeout", FLOAT),
            ("request_timeout", FLOAT),
            ("backoff_initial", FLOAT),
            ("backoff_max", FLOAT),
        ],
        3,
    ),
    (
        "WaveformAcquisition.add_block",
        lambda: _acquisition().add_block,
        [
            ("name", STR),
            ("ring", RING),
            ("register", STR),
            ("address", INT),
            ("sequence_address", INT),
            ("samples", INT),
            ("slots", INT),
            ("stride", INT),
            ("dtype", STR),
            ("order", STR),
            ("scale", FLOAT),
            ("sample_rate", FLOAT),
        ],
        12,
    ),
    ("WaveformAcquisition.start", lambda: _start_and_stop, [], 0),
    ("WaveformAcquisition.stop", lambda: _acquisition().stop, [], 0),
    ("WaveformAcquisition.join", lambda: _acquisition().join, [("timeout", FLOAT)], 1),
    ("WaveformAcquisition.stats", lambda: _acquisition().stats, [], 0),
    ("WaveformAcquisition.drain_events", lambda: _acquisition().drain_events, [], 0),
    ("WaveformAcquisition.drain_latencies", lambda: _acquisition().drain_latencies, [], 0),
    ("EnvelopeAnalyzer.envelope_spectrum", lambda: _envelope().envelope_spectrum, [], 0),
    ("RuleEngine.active", lambda: _rules().active, [], 0),
    ("Alert.to_dict", lambda: _alert().to_dict, [], 0),
]
# Classes Python cannot construct (no constructor): their instances come from other calls.
NOT_CONSTRUCTIBLE = {"Alert", "FeatureFrames", "RingRead", "RingReader"}


def _alert() -> isthmus.Alert:
    (alert,) = _rules().evaluate(np.array([0.0]), {"x": np.array([2.0])})
    return alert


def test_the_table_covers_every_public_callable() -> None:
    """A callable added to the module must be added to CALLABLES (kinds of its parameters)."""
    public: set[str] = set()
    for name in dir(_core):
        obj = getattr(_core, name)
        if name.startswith("_") or not callable(obj):
            continue
        if not inspect.isclass(obj):
            public.add(name)
            continue
        if name in NOT_CONSTRUCTIBLE:
            with pytest.raises(TypeError, match=r"cannot create|No constructor"):
                obj()
        else:
            public.add(name)
        for method in dir(obj):
            static = inspect.getattr_static(obj, method)
            if not method.startswith("_") and callable(static):
                public.add(f"{name}.{method}")
    assert public == {entry[0] for entry in CALLABLES}  # fmt: skip


NAMES = [
    "hann",
    "flattop",
    "float32",
    "float64",
    "int16",
    "uint16",
    "bcd16",
    "string",
    "ABCD",
    "DCBA",
    "6205",
    "density",
    "spectrum",
    "g",
    "m/s2",
    "mean",
    "linear",
    "none",
    "rigid",
    "flexible",
    "C",
    "D",
    "x",
    "outer_race",
    "fault",
    "warning",
    "high",
    "low",
    "",
]
HUGE = [2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64, 2**70, 2**200, 10**400]
ints = st.one_of(
    st.integers(-5, 70),
    st.sampled_from([-1, -(2**63), *HUGE, *(-h for h in HUGE)]),
    st.integers(0, 40).map(lambda k: 2**k),
)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-300, 1e300, 0.5, 25600.0, 1800.0, 1000.0]),
)
strings = st.one_of(st.sampled_from(NAMES), st.text(max_size=6))


def _layouts(a: np.ndarray) -> st.SearchStrategy[np.ndarray]:
    """The array as drawn, byte-swapped, at an odd address, strided and transposed."""
    swapped = a.astype(a.dtype.newbyteorder()) if a.dtype.kind in "iuf" else a
    buf = bytearray(a.nbytes + 1)
    odd = np.frombuffer(buf, a.dtype, count=a.size, offset=1).reshape(a.shape)
    odd[...] = a
    strided = a[..., ::2] if a.ndim else a
    return st.sampled_from([a, swapped, odd, strided, a.T])


arrays = st.one_of(
    hnp.arrays(
        st.sampled_from(
            [
                "float64",
                "float32",
                "int16",
                "uint16",
                "int64",
                "uint8",
                "bool",
                "complex64",
                "float16",
                "<U2",
                "uint64",
                "int8",
            ]
        ),
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
    ).flatmap(_layouts),
    st.lists(st.one_of(ints, floats), max_size=40),
    st.lists(st.lists(floats, max_size=5), max_size=3),
    st.just(np.broadcast_to(np.float64(1.0), (3, 10**6))),
)
pairs = st.one_of(
    st.tuples(floats, floats),
    st.lists(st.one_of(floats, ints), max_size=3),
    st.lists(st.tuples(floats, floats), max_size=3),
    strings,
)
tags = st.lists(
    st.sampled_from(
        [
            isthmus.Tag("a", 0, "int16"),
            isthmus.Tag("b", 3, "float64"),
            isthmus.Tag("s", 65530, "string", length=6),
        ]
    ),
    max_size=3,
)
dicts = st.dictionaries(
    st.one_of(strings, ints), st.one_of(floats, ints, strings, arrays), max_size=3
)
anything = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,
    strings,
    st.binary(max_size=8),
    arrays,
    pairs,
    dicts,
    tags,
)
RIGHT = {
    FLOAT: st.one_of(floats, ints), OFLOAT: st.one_of(st.none(), floats, ints),
    INT: ints, OINT: st.one_of(st.none(), ints), STR: strings,
    OSTR: st.one_of(st.none(), strings), BOOL: st.booleans(), ARRAY: arrays, PAIR: pairs,
    ANY: anything, DICT: dicts, ODICT: st.one_of(st.none(), dicts), TAGS: tags,
    STRLIST: st.lists(strings, max_size=3), MAPPING: dicts,
    BYTES: st.one_of(st.binary(max_size=40), st.binary(max_size=40).map(bytearray)),
    S7TAGS: st.lists(
        st.tuples(strings, ints, st.sampled_from(["REAL", "INT", "BOOL", "STRING[3]", "X"]), ints),
        max_size=3,
    ),
    LIMITER: st.just(None).map(lambda _: isthmus._core.ModbusRateLimiter(100.0)),
    RING: st.just(None).map(lambda _: isthmus.SampleRing(1, 1024, 1000.0)),
}  # fmt: skip


def right_type(kind: str, value: object) -> bool:
    """Is `value` of the Python type the stubs give the parameter (scalar kinds only)?"""
    number = (int, float, np.integer, np.floating)
    optional = kind.startswith("o") and value is None
    match kind.removeprefix("o") if kind not in (ODICT,) else DICT:
        case "float":
            return optional or (isinstance(value, number) and not isinstance(value, bool))
        case "int":
            return optional or (isinstance(value, int | np.integer) and not isinstance(value, bool))
        case "str":
            return optional or isinstance(value, str)
        case "bool":
            return isinstance(value, bool | np.bool_)
        case "dict":
            return optional or isinstance(value, dict)
        case "tags":
            return isinstance(value, list) and all(isinstance(t, isthmus.Tag) for t in value)
        case "strlist":
            return isinstance(value, list) and all(isinstance(t, str) for t in value)
        case "mapping":
            return isinstance(value, dict)
        case "bytes":
            return isinstance(value, bytes | bytearray | memoryview)
        case "s7tags":
            return isinstance(value, list | tuple)
        case "limiter":
            return isinstance(value, isthmus._core.ModbusRateLimiter)
        case "ring":
            return isinstance(value, isthmus.SampleRing)
        case _:  # arrays, pairs and anything: every value is of an accepted type
            return True


@contextlib.contextmanager
def address_space_capped(extra: int) -> Iterator[None]:
    """Cap this process's address space `extra` bytes above its current size, so that no
    argument can make isthmus allocate (and touch) gigabytes; restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
@settings(
    max_examples=int(os.environ.get("ISTHMUS_FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_arbitrary_arguments_raise_only_the_documented_errors(data: st.DataObject) -> None:
    name, factory, params, required = data.draw(st.sampled_from(CALLABLES), label="callable")
    kwargs: dict[str, object] = {}
    for i, (param, kind) in enumerate(params):
        if i >= required and data.draw(st.booleans(), label=f"omit {param}"):
            continue
        strategy = st.one_of(RIGHT[kind], anything)
        kwargs[param] = data.draw(strategy, label=param)
    call = factory()  # type: ignore[operator]
    try:
        with address_space_capped(1 << 30):
            call(**kwargs)
    except (IsthmusError, MemoryError):
        pass
    except TypeError as e:
        wrong = [p for p, kind in params if p in kwargs and not right_type(kind, kwargs[p])]
        assert wrong, f"{name}: TypeError for arguments of the documented types: {e!r}"
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        pytest.fail(f"{name}({kwargs!r}) raised {type(e).__name__}: {e}")
