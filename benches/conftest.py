"""Shared benchmark conventions: every hot path sits beside its baseline.

Each benchmark sets ``benchmark.group`` (one group per comparison) and
``benchmark.extra_info["role"]`` to ``"isthmus"`` or ``"baseline"``; an
optional ``extra_info["target"]`` states the ratio the issue asks for, e.g.
``">=30"`` (isthmus at least 30x faster) or ``"<=1.5"`` (isthmus at most 1.5x
the baseline's time). At the end of the run a table of measured ratios is
printed and written to ``out/bench-ratios.json``; both sides of every ratio
come from this same run, so a noisy machine slows both.

Extra figures that are not time ratios (CPU share, samples per second, RSS)
are recorded with the ``report`` fixture and printed in the same table.
"""

from __future__ import annotations

import json
import operator
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

_REPORTS: list[tuple[str, str, str]] = []


@pytest.fixture
def report(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``report(name, value, note="")`` records a figure for the summary table."""

    def _report(name: str, value: str, note: str = "") -> None:
        _REPORTS.append((name, value, note))

    return _report


def _check(target: str, ratio: float) -> str:
    ops = {">=": operator.ge, "<=": operator.le}
    for sym, op in ops.items():
        if target.startswith(sym):
            return "ok" if op(ratio, float(target[len(sym) :])) else "MISS"
    return "?"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    session = getattr(config, "_benchmarksession", None)
    benches = getattr(session, "benchmarks", None) or []
    groups: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for bench in benches:
        role = bench.extra_info.get("role", "isthmus")
        groups[bench.group or bench.name][role].append(bench)
    rows: list[dict[str, Any]] = []
    for group, roles in sorted(groups.items()):
        for ours in roles.get("isthmus", []):
            for base in roles.get("baseline", []):
                ours_t = ours.stats.median
                base_t = base.stats.median
                speedup = base_t / ours_t if ours_t > 0 else float("inf")
                target = ours.extra_info.get("target", {})
                goal = target.get(base.name) if isinstance(target, dict) else target
                # "<=" targets speak of isthmus time / baseline time, ">=" of speed-up.
                value = (1.0 / speedup) if goal and goal.startswith("<=") else speedup
                rows.append(
                    {
                        "group": group,
                        "isthmus": ours.name,
                        "baseline": base.name,
                        "isthmus_median_s": ours_t,
                        "baseline_median_s": base_t,
                        "speedup": speedup,
                        "target": goal or "",
                        "status": _check(goal, value) if goal else "",
                    }
                )
    if not rows and not _REPORTS:
        return
    tr = terminalreporter
    tr.section("isthmus vs baselines, same run (>=: speed-up; <=: isthmus time / baseline time)")
    for r in rows:
        if r["target"].startswith("<="):
            measured = f"time {1.0 / r['speedup']:>6.2f}x of it"
        else:
            measured = f"{r['speedup']:>9.2f}x faster"
        tr.write_line(
            f"{r['group']:<36} {r['isthmus']:<32} vs {r['baseline']:<32} "
            f"{measured:>18}  target {r['target'] or '-':<6} {r['status']}"
        )
    for name, value, note in _REPORTS:
        tr.write_line(f"{name:<60} {value:>20}  {note}")
    out = Path("out")
    out.mkdir(exist_ok=True)
    (out / "bench-ratios.json").write_text(
        json.dumps({"ratios": rows, "reports": _REPORTS}, indent=1)
    )
