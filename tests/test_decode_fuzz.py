"""Fuzzing: random plans and random registers never crash the process.

Any outcome is allowed except a crash or an exception outside the isthmus
tree: a Rust panic would surface as ``pyo3_runtime.PanicException`` (a
``BaseException``) and fail these tests.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from decode_strategies import ALL_DTYPES, ORDERS
from isthmus import DecodePlan, IsthmusError, Tag, decode_array, encode_array

anything_int = st.one_of(st.integers(-5, 70_000), st.integers(-(2**70), 2**70))
maybe_int = st.none() | st.integers(-3, 20) | anything_int


@st.composite
def tag_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid, sometimes invalid, tag definitions."""
    return {
        "name": draw(st.sampled_from(["a", "b", "c", "d", "e", ""])),
        "address": draw(st.integers(0, 40) | anything_int),
        "dtype": draw(st.sampled_from([*ALL_DTYPES, "float128", "INT16"])),
        "order": draw(st.sampled_from([*ORDERS, "ABDC", ""])),
        "scale": draw(st.sampled_from([1.0, 0.5, -2.0, 0.0, float("nan")])),
        "offset": draw(st.sampled_from([0.0, 10.0, float("inf")])),
        "bit": draw(maybe_int),
        "length": draw(maybe_int),
        "byte": draw(st.sampled_from([None, "high", "low", "mid"])),
    }


registers = st.lists(st.integers(0, 0xFFFF) | anything_int, max_size=60)


def containers(regs: list[int]) -> list[Any]:
    """The same registers in each accepted container (when they fit one)."""
    out: list[Any] = [regs, tuple(regs)]
    if all(0 <= r <= 0xFFFF for r in regs):
        out += [
            np.array(regs, dtype=np.uint16),
            array.array("H", regs),
            b"".join(r.to_bytes(2, "big") for r in regs),
        ]
    if all(-(2**63) <= r < 2**63 for r in regs):
        out.append(np.array(regs, dtype=np.int64))
    return out


@settings(max_examples=300, deadline=None)
@given(
    specs=st.lists(tag_kwargs(), max_size=6),
    regs=registers,
    base=st.none() | st.integers(-3, 50) | anything_int,
)
def test_random_plans_and_registers_never_crash(
    specs: list[dict[str, Any]], regs: list[int], base: int | None
) -> None:
    try:
        plan = DecodePlan([Tag(**kw) for kw in specs])
    except IsthmusError:
        return
    for container in containers(regs):
        try:
            out = plan.decode(container, base=base)
        except IsthmusError:
            continue
        assert list(out) == [t.name for t in plan.tags]
    frames = np.array([r & 0xFFFF for r in regs] * 2, dtype=np.uint16).reshape(2, -1)
    try:
        columns = plan.decode_many(frames, base=base)
    except IsthmusError:
        return
    assert all(len(c) == 2 for c in columns.values())


@settings(max_examples=300, deadline=None)
@given(
    regs=registers,
    dtype=st.sampled_from([*ALL_DTYPES, "nope"]),
    order=st.sampled_from([*ORDERS, "x"]),
    scale=st.sampled_from([1.0, 0.25, 0.0, float("nan")]),
)
def test_random_arrays_never_crash(regs: list[int], dtype: str, order: str, scale: float) -> None:
    for container in containers(regs):
        try:
            out = decode_array(container, dtype, order=order, scale=scale)
        except IsthmusError:
            continue
        assert out.ndim == 1
    try:
        encoded = encode_array(regs, dtype, order=order)
    except IsthmusError:
        return
    assert encoded.dtype == np.uint16


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(tag_kwargs(), min_size=1, max_size=5),
    values=st.lists(
        st.none()
        | st.booleans()
        | anything_int
        | st.floats()
        | st.text(max_size=6)
        | st.just([1, 2]),
        min_size=5,
        max_size=5,
    ),
)
def test_random_encode_never_crashes(specs: list[dict[str, Any]], values: list[Any]) -> None:
    try:
        plan = DecodePlan([Tag(**kw) for kw in specs])
    except IsthmusError:
        return
    given_values = {t.name: v for t, v in zip(plan.tags, values, strict=False) if v is not None}
    try:
        regs = plan.encode(given_values)
    except IsthmusError:
        return
    assert len(regs) == plan.count


@st.composite
def valid_plan(draw: st.DrawFn) -> DecodePlan:
    tags = []
    for i in range(draw(st.integers(1, 8))):
        dtype = draw(st.sampled_from(ALL_DTYPES))
        kwargs: dict[str, Any] = {"order": draw(st.sampled_from(ORDERS))}
        if dtype == "bit":
            kwargs["bit"] = draw(st.integers(0, 15))
        elif dtype == "string":
            kwargs["length"] = draw(st.integers(1, 4))
        else:
            if dtype in ("int8", "uint8"):
                kwargs["byte"] = draw(st.sampled_from(["high", "low"]))
            kwargs["scale"] = draw(st.sampled_from([1.0, 0.1, -2.0]))
            kwargs["offset"] = draw(st.sampled_from([0.0, 5.0]))
        tags.append(Tag(f"t{i}", draw(st.integers(0, 12)), dtype, **kwargs))
    return DecodePlan(tags)


@settings(max_examples=150, deadline=None)
@given(plan=valid_plan(), data=st.data())
def test_decode_many_agrees_with_decode_row_by_row(plan: DecodePlan, data: st.DataObject) -> None:
    n_rows = data.draw(st.integers(0, 4))
    frames = np.array(
        data.draw(
            st.lists(
                st.lists(st.integers(0, 0xFFFF), min_size=plan.count, max_size=plan.count),
                min_size=n_rows,
                max_size=n_rows,
            )
        ),
        dtype=np.uint16,
    ).reshape(n_rows, plan.count)
    try:
        columns = plan.decode_many(frames)
    except IsthmusError:  # bad BCD somewhere: some row must fail alone too
        failures = 0
        for row in frames:
            try:
                plan.decode(row)
            except IsthmusError:
                failures += 1
        assert failures > 0
        return
    for r, row in enumerate(frames):
        single = plan.decode(row)
        for name, value in single.items():
            got = columns[name][r]
            got = got.item() if isinstance(got, np.generic) else got
            if isinstance(value, float) and value != value:
                assert got != got
            else:
                assert got == value, (name, r, got, value)
