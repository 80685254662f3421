"""`isthmus demo` as a user runs it: no set-up, a scripted run that ends with a summary."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_helpers import HAS_DSP, NEEDS_DSP_REASON, SAMPLE_RATE, outbox_rows

pytestmark = [pytest.mark.slow, pytest.mark.network]


@pytest.mark.skipif(not HAS_DSP, reason=NEEDS_DSP_REASON)
def test_scripted_demo_shows_the_fault_and_exits_with_a_summary(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "isthmus.cli",
            "demo",
            "--duration",
            "40",
            "--fault-after",
            "8",
            "--plain",
            "--sample-rate",
            str(SAMPLE_RATE),
            "--outbox",
            str(outbox),
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    # The live view: both assets, the published data product, the injection event.
    assert "P-101" in out and "P-102" in out and "acme" in out and "bravo" in out
    assert "acme/plant1/utilities/cooling/P-102/state" in out
    assert '"schema":"urn:isthmus:uns:Pump:v2"' in out
    assert "INJECTED outer-race fault into P-102" in out
    # The summary: one bearing alert raised, with its BPFO evidence.
    summary = out[out.rindex("isthmus demo: ran") :]
    assert re.search(r"P-102: .*alerts raised 1, cleared 0", summary), summary
    assert re.search(r"raised +P-102\.bearing: .*BPFO 17\d\.\d Hz", summary), summary
    assert "diagnosis outer_race" in summary
    # Nothing was published to a broker, so everything waits in the local outbox.
    topics = {topic for _, topic, _ in outbox_rows(outbox)}
    assert "acme/plant1/utilities/cooling/P-102/alerts" in topics
    assert "acme/plant1/utilities/cooling/P-101/state" in topics
