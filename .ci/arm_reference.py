"""One reference computation, run natively and under aarch64 emulation, then compared.

    python .ci/arm_reference.py --out ref-x86_64.json        # compute, print a JSON summary
    python .ci/arm_reference.py --compare A.json B.json      # agree within rtol 1e-5?

The computation decodes a fixed block of Modbus registers (every dtype and word order), analyses
a known vibration signal (two tones plus seeded noise), pushes it through a sample ring and runs
the envelope analysis on a synthetic outer-race bearing fault. It feature-detects
the isthmus API, so it runs on whatever areas have landed, but the comparison fails when
neither file holds any number, when the two hold different quantities, or when any quantity
differs by more than the tolerance. Integer results must agree exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import isthmus

RTOL = 1e-5

# ---------------------------------------------------------------------------------------------
# The fixed inputs


def register_block() -> np.ndarray:
    """64 registers: big-endian (ABCD) images of known values, then a counting pattern."""
    payload = struct.pack(
        ">4f2d2i2h",
        1.5,
        -273.15,
        3.14159265,
        65504.0,
        2.0**-10,
        -123456.789012,
        -2_000_000_001,
        305_419_896,
        -12345,
        31000,
    )
    words = list(struct.unpack(f">{len(payload) // 2}H", payload))
    words += [(0x1234 + 0x0F0F * i) & 0xFFFF for i in range(64 - len(words))]
    return np.array(words, dtype=np.uint16)


def vibration_signal(sample_rate: float, n: int) -> np.ndarray:
    """Acceleration in g: 0.8 g at 120 Hz, 0.15 g at 1234.5 Hz, 0.02 g seeded noise."""
    t = np.arange(n, dtype=np.float64) / sample_rate
    rng = np.random.default_rng(20_816)
    x = (
        0.8 * np.sin(2 * np.pi * 120.0 * t)
        + 0.15 * np.sin(2 * np.pi * 1234.5 * t + 0.3)
        + 0.02 * rng.standard_normal(n)
    )
    return x.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Probes: each returns {name: numbers} for the API that exists, or None when it does not.

Numbers = dict[str, Any]


def harvest(prefix: str, value: Any, out: Numbers, depth: int = 0) -> None:
    """Collect every number in a result: scalars, arrays, sequences, dicts, public attributes."""
    if value is None or isinstance(value, str | bytes) or callable(value) or depth > 3:
        return
    if isinstance(value, bool | int | float | np.number | np.bool_):
        out[prefix] = value.item() if isinstance(value, np.generic) else value
        return
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            out[prefix] = value
        elif value.dtype.kind == "c":
            out[prefix + ".real"] = value.real
            out[prefix + ".imag"] = value.imag
        return
    if isinstance(value, dict):
        for key, item in value.items():
            harvest(f"{prefix}.{key}", item, out, depth + 1)
        return
    if isinstance(value, list | tuple):
        array = np.asarray(value) if value else None
        if array is not None and array.dtype.kind in "biufc":
            harvest(prefix, array, out, depth)
        else:
            for i, item in enumerate(value):
                harvest(f"{prefix}[{i}]", item, out, depth + 1)
        return
    for name in dir(value):
        if not name.startswith("_"):
            harvest(f"{prefix}.{name}", getattr(value, name), out, depth + 1)


def probe_decode() -> Numbers | None:
    decode_array = getattr(isthmus, "decode_array", None)
    if decode_array is None:
        return None
    registers = register_block()
    out: Numbers = {}
    # Word orders matter for multi-register types; a single register only has its byte order.
    for dtype, orders in [
        ("int16", ("ABCD", "BADC")),
        ("uint16", ("ABCD", "BADC")),
        ("float16", ("ABCD", "BADC")),
        ("int32", ("ABCD", "CDAB", "BADC", "DCBA")),
        ("uint32", ("ABCD", "CDAB", "BADC", "DCBA")),
        ("float32", ("ABCD", "CDAB", "BADC", "DCBA")),
        ("int64", ("ABCD", "CDAB", "BADC", "DCBA")),
        ("uint64", ("ABCD", "CDAB", "BADC", "DCBA")),
        ("float64", ("ABCD", "CDAB", "BADC", "DCBA")),
    ]:
        for order in orders:
            out[f"decode.{dtype}.{order}"] = np.asarray(decode_array(registers, dtype, order=order))
    out["decode.float32.scaled"] = np.asarray(
        decode_array(registers[:8], "float32", scale=0.1, offset=-40.0)
    )
    return out


def probe_spectrum() -> Numbers | None:
    out: Numbers = {}
    sample_rate = 25_600.0
    signal = vibration_signal(sample_rate, 4 * 4096)
    analyzer_cls = getattr(isthmus, "SpectrumAnalyzer", None)
    if analyzer_cls is not None:
        analyzer = analyzer_cls(
            sample_rate,
            frame=4096,
            hop=2048,
            window="hann",
            bands=[(10.0, 1000.0), (1000.0, 5000.0)],
        )
        harvest("spectrum.features", analyzer.feed(signal), out)
        harvest("spectrum.amplitude", analyzer.spectrum(), out)
        harvest("spectrum.psd", analyzer.psd(), out)
    velocity_rms = getattr(isthmus, "velocity_rms", None)
    if velocity_rms is not None:
        out["spectrum.velocity_rms_mm_s"] = float(
            velocity_rms(signal, sample_rate, band=(10.0, 1000.0), units="g")
        )
    return out or None


def probe_ring() -> Numbers | None:
    ring_cls = getattr(isthmus, "SampleRing", None)
    if ring_cls is None:
        return None
    ring = ring_cls(2, 1024, 1000.0)
    reader = ring.reader()
    block = np.stack([vibration_signal(1000.0, 300), -vibration_signal(1000.0, 300)])
    for i in range(6):  # 1800 samples into 1024: the reader must report an overrun
        ring.push(block, t0=1_700_000_000.0 + 0.3 * i)
    out: Numbers = {}
    harvest("ring.read", reader.read(), out)
    harvest("ring.latest", ring.latest(100), out)
    out["ring.written"] = ring.written
    return out


def bearing_fault_signal(sample_rate: float, n: int, fault_hz: float) -> np.ndarray:
    """Acceleration in g of an outer-race fault: a 3 kHz resonance rung at ``fault_hz``."""
    t = np.arange(n, dtype=np.float64) / sample_rate
    since_impact = np.mod(t, 1.0 / fault_hz)
    ringing = np.exp(-since_impact * 900.0) * np.sin(2 * np.pi * 3000.0 * since_impact)
    shaft = 0.3 * np.sin(2 * np.pi * 29.95 * t)
    noise = 0.05 * np.random.default_rng(6205).standard_normal(n)
    return ringing + shaft + noise


def probe_diagnostics() -> Numbers | None:
    out: Numbers = {}
    bearing_frequencies = getattr(isthmus, "bearing_frequencies", None)
    if bearing_frequencies is not None:
        harvest("diag.orders", bearing_frequencies(9, 7.94, 39.04, 0.0), out)
    analyzer_cls = getattr(isthmus, "EnvelopeAnalyzer", None)
    if analyzer_cls is not None and bearing_frequencies is not None:
        sample_rate, rpm = 12_000.0, 1797.0
        bpfo_hz = bearing_frequencies(9, 7.94, 39.04, 0.0)["bpfo"] * rpm / 60.0
        signal = bearing_fault_signal(sample_rate, 48_000, bpfo_hz)
        analyzer = analyzer_cls(sample_rate, rpm, orders=bearing_frequencies(9, 7.94, 39.04))
        harvest("diag.envelope.features", analyzer.feed(signal), out)
        harvest("diag.envelope.spectrum", analyzer.envelope_spectrum(), out)
        harvest("diag.envelope.diagnosis", analyzer.diagnose(), out)
    return out or None


PROBES: dict[str, Callable[[], Numbers | None]] = {
    "decode": probe_decode,
    "spectrum": probe_spectrum,
    "ring": probe_ring,
    "diagnostics": probe_diagnostics,
}


# ---------------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu":  # Python ints: exact, uint64 included
            return {"kind": "int", "shape": list(value.shape), "values": value.ravel().tolist()}
        with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are kept, as text
            flat: list[Any] = value.astype(np.float64).ravel().tolist()
        flat = [v if math.isfinite(v) else repr(v) for v in flat]
        return {"kind": "float", "shape": list(value.shape), "values": flat}
    kind = "int" if isinstance(value, bool | int) else "float"
    v: Any = float(value) if kind == "float" else int(value)
    if kind == "float" and not math.isfinite(v):
        v = repr(v)
    return {"kind": kind, "shape": [], "values": [v]}


def compute(out_path: Path) -> int:
    numbers: Numbers = {}
    missing = []
    for area, probe in PROBES.items():
        result = probe()
        if result is None:
            missing.append(area)
        else:
            numbers.update(result)
    encoded = {key: to_json(value) for key, value in sorted(numbers.items())}
    document = {
        "arch": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "isthmus": isthmus.__version__,
        "extension": isthmus._core.__file__,
        "not_available": missing,
        "numbers": encoded,
    }
    out_path.write_text(json.dumps(document))
    summary = {
        "arch": document["arch"],
        "not_available": missing,
        "quantities": len(numbers),
        "preview": {
            key: entry["values"][:3] + (["..."] if len(entry["values"]) > 3 else [])
            for key, entry in encoded.items()
        },
    }
    print(json.dumps(summary, indent=1))
    return 0


def values_of(entry: dict[str, Any]) -> np.ndarray:
    if entry["kind"] == "int":
        return np.asarray(entry["values"], dtype=object)
    return np.asarray([float(v) for v in entry["values"]], dtype=np.float64)


def compare(path_a: Path, path_b: Path) -> int:
    a = json.loads(path_a.read_text())
    b = json.loads(path_b.read_text())
    label = f"{a['arch']} vs {b['arch']}"
    if not a["numbers"] and not b["numbers"]:
        print(f"reference {label}: neither architecture produced any number", file=sys.stderr)
        return 1
    if a["isthmus"] != b["isthmus"]:
        print(f"reference {label}: isthmus {a['isthmus']} vs {b['isthmus']}", file=sys.stderr)
        return 1
    failures = []
    only = sorted(set(a["numbers"]) ^ set(b["numbers"]))
    if only:
        failures.append(f"computed on one architecture only: {', '.join(only)}")
    worst = 0.0
    for key in sorted(set(a["numbers"]) & set(b["numbers"])):
        ea, eb = a["numbers"][key], b["numbers"][key]
        if ea["shape"] != eb["shape"] or ea["kind"] != eb["kind"]:
            failures.append(f"{key}: {ea['kind']}{ea['shape']} vs {eb['kind']}{eb['shape']}")
            continue
        va, vb = values_of(ea), values_of(eb)
        if ea["kind"] == "int":
            if not np.array_equal(va, vb):
                failures.append(f"{key}: integers differ at {np.flatnonzero(va != vb)[:5]}")
            continue
        # rtol relative to each value, with a floor at rtol times the array's largest magnitude
        # so that bins near zero (spectral leakage, a detrended DC bin) compare sensibly.
        finite = np.isfinite(va) & np.isfinite(vb)
        scale = float(np.max(np.abs(va[finite]), initial=0.0))
        atol = RTOL * scale
        if not np.allclose(va, vb, rtol=RTOL, atol=atol, equal_nan=True):
            bad = ~np.isclose(va, vb, rtol=RTOL, atol=atol, equal_nan=True)
            i = int(np.flatnonzero(bad)[0])
            failures.append(f"{key}[{i}]: {va[i]!r} vs {vb[i]!r} ({int(bad.sum())} differ)")
            continue
        # How much of its allowance (the same one allclose applies) each value used.
        allowance = atol + RTOL * np.abs(vb[finite])
        with np.errstate(invalid="ignore", divide="ignore"):
            used = np.abs(va - vb)[finite] / np.maximum(allowance, 1e-300)
        worst = max(worst, float(np.max(used, initial=0.0)))
    print(
        f"reference {label}: {len(a['numbers'])} quantities, "
        f"{sum(len(e['values']) for e in a['numbers'].values())} numbers, "
        f"largest deviation {worst:.2f} of its allowance (rtol {RTOL:g} per value plus "
        f"{RTOL:g} x the array's largest magnitude); "
        f"not available yet: {', '.join(a['not_available']) or 'none'}"
    )
    for failure in failures:
        print(f"  MISMATCH {failure}", file=sys.stderr)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="compute and write the full result here")
    group.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    return compute(args.out)


if __name__ == "__main__":
    sys.exit(main())
