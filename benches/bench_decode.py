"""Register decoding against the baselines a user would otherwise write.

Groups (both sides of every ratio from the same run, same input, same work):

- ``decode: plan of 100 tags``: one 125-register poll with 100 mixed tags
  (int16/uint16/int32/uint32/float32/int64/float64, both word orders, half of
  them scaled) vs pymodbus ``convert_from_registers`` tag by tag. Target >=30x.
- ``decode: 100k int16 -> scaled float``: ``decode_array`` on 200 kB of wire
  bytes vs numpy ``frombuffer(">i2").astype(float64) * scale`` (target: at most
  1.5x numpy's time) and vs ``struct.unpack`` of the block plus a Python
  scaling loop (target >=50x).
- ``decode: many frames``: ``decode_many`` of 2,000 frames x 125 registers vs a
  per-frame pymodbus loop building the same columns. The issue names 10,000
  frames; 2,000 keep the baseline under a second per round so the quick CI
  mode stays quick. Both sides decode the same 2,000 frames.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np
import pytest
from pymodbus.client.mixin import ModbusClientMixin

from isthmus import DecodePlan, Tag, decode_array

DT = ModbusClientMixin.DATATYPE
convert = ModbusClientMixin.convert_from_registers

# (dtype, pymodbus type, registers): 82 one-register, 16 two-register and
# 2 four-register tags = 100 tags over 122 of the 125 registers.
_KINDS = (
    [("int16", DT.INT16, 1), ("uint16", DT.UINT16, 1)] * 41
    + [("int32", DT.INT32, 2), ("uint32", DT.UINT32, 2), ("float32", DT.FLOAT32, 2)] * 5
    + [("float32", DT.FLOAT32, 2)]
    + [("int64", DT.INT64, 4), ("float64", DT.FLOAT64, 4)]
)
N_REGISTERS = 125


def _specs() -> list[tuple[str, int, str, Any, int, str, float, float]]:
    specs = []
    address = 0
    for i, (dtype, pm_type, width) in enumerate(_KINDS):
        order = "CDAB" if width > 1 and i % 3 == 0 else "ABCD"
        scale, offset = (0.1, -40.0) if i % 2 else (1.0, 0.0)
        specs.append((f"tag{i:03d}", address, dtype, pm_type, width, order, scale, offset))
        address += width
    assert len(specs) == 100 and address <= N_REGISTERS
    return specs


SPECS = _specs()
PLAN = DecodePlan(
    [
        Tag(name, addr, dtype, order=order, scale=s, offset=o)
        for name, addr, dtype, _, _, order, s, o in SPECS
    ]
)


def pymodbus_decode(registers: list[int]) -> dict[str, Any]:
    """What a pymodbus user writes: one convert_from_registers call per tag."""
    out: dict[str, Any] = {}
    for name, address, _, pm_type, width, order, scale, offset in SPECS:
        word_order = "little" if order == "CDAB" else "big"
        value = convert(registers[address : address + width], pm_type, word_order=word_order)
        if scale != 1.0 or offset != 0.0:
            value = value * scale + offset  # type: ignore[operator]
        out[name] = value
    return out


def _poll(seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(r) for r in rng.integers(0, 0x10000, N_REGISTERS)]


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)
    for name in a:
        x, y = a[name], b[name]
        assert x == y or (x != x and y != y) or abs(x - y) <= 1e-9 * abs(y), (name, x, y)


# ---- 1. one poll, 100 tags -------------------------------------------------

PLAN_GROUP = "decode: plan of 100 tags"


def test_plan_decode_isthmus(benchmark: Any) -> None:
    registers = _poll(1)
    benchmark.group = PLAN_GROUP
    benchmark.extra_info["role"] = "isthmus"
    benchmark.extra_info["target"] = ">=30"
    out = benchmark(PLAN.decode, registers)
    _same(out, pymodbus_decode(registers))


def test_plan_decode_pymodbus(benchmark: Any) -> None:
    registers = _poll(1)
    benchmark.group = PLAN_GROUP
    benchmark.extra_info["role"] = "baseline"
    benchmark(pymodbus_decode, registers)


# ---- 2. a waveform block: 100,000 int16 to scaled float --------------------

ARRAY_GROUP = "decode: 100k int16 -> scaled float"
SCALE = 9.80665 / 16384.0  # counts to m/s^2 for a +-2 g accelerometer
WIRE = np.random.default_rng(2).integers(-32768, 32768, 100_000).astype(">i2").tobytes()


def numpy_scaled(wire: bytes) -> np.ndarray:
    return np.frombuffer(wire, dtype=">i2").astype(np.float64) * SCALE


def struct_scaled(wire: bytes) -> list[float]:
    return [v * SCALE for v in struct.unpack(f">{len(wire) // 2}h", wire)]


def test_decode_array_isthmus(benchmark: Any) -> None:
    benchmark.group = ARRAY_GROUP
    benchmark.extra_info["role"] = "isthmus"
    benchmark.extra_info["target"] = {
        "test_decode_array_numpy": "<=1.5",
        "test_decode_array_struct": ">=50",
    }
    out = benchmark(decode_array, WIRE, "int16", scale=SCALE)
    np.testing.assert_array_equal(out, numpy_scaled(WIRE))


def test_decode_array_numpy(benchmark: Any) -> None:
    benchmark.group = ARRAY_GROUP
    benchmark.extra_info["role"] = "baseline"
    benchmark(numpy_scaled, WIRE)


def test_decode_array_struct(benchmark: Any) -> None:
    benchmark.group = ARRAY_GROUP
    benchmark.extra_info["role"] = "baseline"
    benchmark(struct_scaled, WIRE)


# ---- 3. many polls at once, columnar ---------------------------------------

MANY_GROUP = "decode: many frames"
N_FRAMES = 2_000
FRAMES = np.random.default_rng(3).integers(0, 0x10000, (N_FRAMES, N_REGISTERS)).astype(np.uint16)


def pymodbus_columns(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame pymodbus decoding, gathered into the same columns."""
    columns: dict[str, list[Any]] = {name: [] for name, *_ in SPECS}
    for row in frames.tolist():
        for name, value in pymodbus_decode(row).items():
            columns[name].append(value)
    return {name: np.asarray(values) for name, values in columns.items()}


@pytest.fixture(scope="module")
def baseline_columns() -> dict[str, np.ndarray]:
    return pymodbus_columns(FRAMES[:50])


def test_decode_many_isthmus(
    benchmark: Any, baseline_columns: dict[str, np.ndarray], report: Any
) -> None:
    benchmark.group = MANY_GROUP
    benchmark.extra_info["role"] = "isthmus"
    benchmark.extra_info["target"] = ">=100"
    benchmark.extra_info["frames"] = N_FRAMES
    out = benchmark(PLAN.decode_many, FRAMES)
    for name, expected in baseline_columns.items():
        np.testing.assert_allclose(out[name][:50], expected, rtol=1e-12, equal_nan=True)
    # The full size, isthmus only (the per-frame baseline would take seconds).
    big = np.tile(FRAMES, (5, 1))
    start = time.perf_counter()
    PLAN.decode_many(big)
    elapsed = time.perf_counter() - start
    report(
        "decode_many: 10,000 frames x 125 registers, 100 tags",
        f"{elapsed * 1e3:.2f} ms",
        f"{len(big) / elapsed:,.0f} frames/s (one timing, incl. page faults of the output)",
    )


def test_decode_many_pymodbus(benchmark: Any) -> None:
    benchmark.group = MANY_GROUP
    benchmark.extra_info["role"] = "baseline"
    benchmark.extra_info["frames"] = N_FRAMES
    benchmark(pymodbus_columns, FRAMES)
