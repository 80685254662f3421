"""Request coalescing: invariants and optimality against a dynamic-programming oracle."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.sources.config import TagSpec
from isthmus.sources.modbus import plan_reads

DTYPES = {1: "uint16", 2: "float32", 4: "float64"}


@st.composite
def tag_sets(draw: st.DrawFn) -> tuple[list[TagSpec], int, int]:
    n = draw(st.integers(1, 25))
    max_registers = draw(st.integers(4, 125))
    max_gap = draw(st.integers(0, 12))
    tags = []
    for i in range(n):
        width = draw(st.sampled_from([1, 2, 4]))
        address = draw(st.integers(0, 400))
        tags.append(TagSpec(name=f"t{i}", address=address, dtype=DTYPES[width]))
    return tags, max_gap, max_registers


def feasible(group: list[TagSpec], max_gap: int, limit: int) -> bool:
    """Can one read serve ``group`` (sorted by address)?"""
    start = group[0].address
    end = start
    for tag in group:
        if tag.address - end > max_gap and tag is not group[0]:
            return False
        end = max(end, tag.address + tag.width)
    return end - start <= limit


def optimal_reads(tags: list[TagSpec], max_gap: int, limit: int) -> int:
    """Fewest reads when reads take contiguous runs of the address-sorted tags (exhaustive DP)."""
    ordered = sorted(tags, key=lambda t: (t.address, t.width))

    @functools.cache
    def best(i: int) -> int:
        if i == len(ordered):
            return 0
        return min(
            1 + best(j)
            for j in range(i + 1, len(ordered) + 1)
            if feasible(ordered[i:j], max_gap, limit)
        )

    return best(0)


@settings(max_examples=300, deadline=None)
@given(tag_sets())
def test_plan_covers_every_tag_once_within_limits_and_is_minimal(
    case: tuple[list[TagSpec], int, int],
) -> None:
    tags, max_gap, limit = case
    reads = plan_reads(tags, max_gap=max_gap, max_registers=limit)
    served = [t.name for r in reads for t in r.tags]
    assert sorted(served) == sorted(t.name for t in tags)
    for r in reads:
        assert 1 <= r.count <= limit
        for t in r.tags:
            assert r.start <= t.address and t.address + t.width <= r.start + r.count
        assert feasible(sorted(r.tags, key=lambda t: t.address), max_gap, limit)
    assert len(reads) == optimal_reads(tags, max_gap, limit)


def test_protocol_limits_split_long_runs() -> None:
    regs = [TagSpec(name=f"r{i}", address=i, dtype="uint16") for i in range(300)]
    reads = plan_reads(regs)
    assert [(r.start, r.count) for r in reads] == [(0, 125), (125, 125), (250, 50)]
    bits = [TagSpec(name=f"c{i}", address=i, dtype="bit", register="coil") for i in range(4500)]
    reads = plan_reads(bits)
    assert [(r.start, r.count) for r in reads] == [(0, 2000), (2000, 2000), (4000, 500)]


def test_gap_filling_is_bounded() -> None:
    tags = [
        TagSpec(name="a", address=0),
        TagSpec(name="b", address=9),
        TagSpec(name="c", address=30),
    ]
    assert [(r.start, r.count) for r in plan_reads(tags, max_gap=8)] == [(0, 10), (30, 1)]
    assert [(r.start, r.count) for r in plan_reads(tags, max_gap=7)] == [(0, 1), (9, 1), (30, 1)]
    assert [(r.start, r.count) for r in plan_reads(tags, max_gap=20)] == [(0, 31)]


def test_bit_tags_of_one_register_share_a_read() -> None:
    tags = [TagSpec(name=f"b{i}", address=7, dtype="bit", bit=i) for i in range(16)]
    reads = plan_reads(tags)
    assert len(reads) == 1 and (reads[0].start, reads[0].count) == (7, 1)


def test_register_types_are_never_mixed() -> None:
    tags = [TagSpec(name="h", address=0), TagSpec(name="i", address=1, register="input")]
    with pytest.raises(ValueError, match="one register type"):
        plan_reads(tags)
