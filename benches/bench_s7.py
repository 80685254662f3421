"""S7 decoding against the loop a python-snap7 user writes: one ``snap7.util.get_*`` per tag.

Group ``s7: plan of 100 mixed tags``: one 377-byte data-block read holding 100
tags of every S7 type (integers of all widths, REAL/LREAL, BOOLs, STRING[20],
WSTRING[10], CHAR, S5TIME, TIME, TIME_OF_DAY, DATE, DATE_AND_TIME, DTL), decoded
by :class:`isthmus._core.S7Plan` vs the per-tag getter loop building the same
dict (values converted to isthmus's conventions by tests/s7_types.py, so both
sides produce equal results; checked). The issue's target is >= 30x; measured
about 8-9x. The floor is Python itself: filling a dict with 100 ready-made
values costs about a ninth of the getter loop on this machine, so no decoder
that hands out one Python object per tag can reach 30x against getters this
thin (``snap7.util.get_int`` is one ``struct.unpack``). ``decode_values`` (the
session's call: two lists, no dict) is the second row.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from snap7 import util

from isthmus._core import S7Plan
from s7_types import REFERENCE, bool_getter

GROUP = "s7: plan of 100 mixed tags"

# 60 numbers, 20 BOOLs, 20 text/time values: a typical DB of a machine
_KINDS = (
    ["INT", "DINT", "REAL", "WORD", "UINT", "UDINT", "DWORD", "LREAL", "BYTE", "SINT"] * 6
    + ["BOOL"] * 20
    + ["STRING[20]", "WSTRING[10]", "CHAR", "S5TIME", "TIME", "TIME_OF_DAY", "DATE"] * 2
    + ["DATE_AND_TIME", "DTL"] * 3
)


def _layout() -> tuple[list[tuple[str, int, str, int]], bytearray]:
    rng = random.Random(7)
    tags: list[tuple[str, int, str, int]] = []
    at = 0
    for i, ty in enumerate(_KINDS):
        if ty == "BOOL":
            tags.append((f"tag{i:03d}", at, ty, i % 8))
            if i % 8 == 7:
                at += 1
            continue
        size = REFERENCE[ty][0]
        at += at & 1 and size > 1  # S7 aligns multi-byte values on even bytes
        tags.append((f"tag{i:03d}", at, ty, 0))
        at += size
    block = bytearray(at + 1)
    for _name, offset, ty, bit in tags:
        _fill(block, offset, ty, bit, rng)
    return tags, block


def _fill(block: bytearray, at: int, ty: str, bit: int, rng: random.Random) -> None:
    from datetime import date, datetime, timedelta

    if ty == "BOOL":
        util.set_bool(block, at, bit, rng.random() < 0.5)
    elif ty in ("STRING[20]", "WSTRING[10]"):
        text = "".join(rng.choice("ABCDEFGH-0123456789") for _ in range(rng.randint(0, 10)))
        if ty == "STRING[20]":
            util.set_string(block, at, text, 20)
        else:
            util.set_wstring(block, at, text, 10)
    elif ty == "CHAR":
        util.set_char(block, at, rng.choice("AZaz09"))
    elif ty == "S5TIME":
        block[at : at + 2] = bytes([0x20 | rng.randint(0, 9), rng.randint(0, 9) * 16 + 5])
    elif ty == "TIME":
        util.set_dint(block, at, rng.randint(-(10**8), 10**8))
    elif ty == "TIME_OF_DAY":
        util.set_tod(block, at, timedelta(milliseconds=rng.randint(0, 86_399_999)))
    elif ty == "DATE":
        util.set_date(block, at, date(2024, 1, 1) + timedelta(days=rng.randint(0, 3000)))
    elif ty == "DATE_AND_TIME":
        util.set_dt(block, at, datetime(2024, 5, 17, 8, 30, 12, 345000))
    elif ty == "DTL":
        util.set_dtl(block, at, datetime(2024, 5, 17, 8, 30, 12, 345678))
    else:
        size = REFERENCE[ty][0]
        block[at : at + size] = rng.randbytes(size)
        if ty == "REAL":
            block[at] &= 0x7F if rng.random() < 0.5 else 0xFF


TAGS, BLOCK = _layout()
DATA = bytes(BLOCK)
PLAN = S7Plan(TAGS)
GETTERS = [
    (name, offset, bool_getter(bit) if ty == "BOOL" else REFERENCE[ty][1])
    for name, offset, ty, bit in TAGS
]


def snap7_loop(block: bytearray) -> dict[str, Any]:
    """What a python-snap7 user writes: one snap7.util getter per tag."""
    return {name: get(block, offset) for name, offset, get in GETTERS}


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)
    for name in a:
        x, y = a[name], b[name]
        ok = x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
        assert ok and type(x) is type(y), (name, x, y)


def test_s7_plan_isthmus(benchmark: Any) -> None:
    assert len(TAGS) == 100
    benchmark.group = GROUP
    benchmark.extra_info["role"] = "isthmus"
    benchmark.extra_info["target"] = ">=30"
    out = benchmark(PLAN.decode, DATA)
    _same(out, snap7_loop(BLOCK))


def test_s7_plan_values_isthmus(benchmark: Any) -> None:
    benchmark.group = GROUP
    benchmark.extra_info["role"] = "isthmus"
    benchmark.extra_info["target"] = ">=30"
    values, reasons = benchmark(PLAN.decode_values, DATA)
    assert reasons == [None] * 100
    _same(dict(zip(PLAN.names, values, strict=True)), snap7_loop(BLOCK))


def test_s7_plan_snap7_getters(benchmark: Any) -> None:
    benchmark.group = GROUP
    benchmark.extra_info["role"] = "baseline"
    benchmark(snap7_loop, BLOCK)
