"""`isthmus demo` as a user runs it: no set-up, a scripted run that ends with a summary."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway_helpers import HAS_DSP, NEEDS_DSP_REASON, SAMPLE_RATE, free_port, outbox_rows

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
    assert "isthmus-demo/simulated-plant/utilities/cooling/P-102/state" in out
    assert '"schema":"urn:isthmus:uns:Pump:v2"' in out
    assert "INJECTED outer-race fault into P-102" in out
    # The summary: one bearing alert raised, with its BPFO evidence.
    summary = out[out.rindex("isthmus demo: ran") :]
    assert re.search(r"P-102: .*alerts raised 1, cleared 0", summary), summary
    assert re.search(r"raised +P-102\.bearing: .*BPFO 17\d\.\d Hz", summary), summary
    assert "diagnosis outer_race" in summary
    # Nothing was published to a broker, so everything waits in the local outbox.
    topics = {topic for _, topic, _ in outbox_rows(outbox)}
    assert "isthmus-demo/simulated-plant/utilities/cooling/P-102/alerts" in topics
    assert "isthmus-demo/simulated-plant/utilities/cooling/P-101/state" in topics
    assert not any(t.startswith("acme/") for t in topics)  # not the namespace of examples/
    # The live view (printed every 5 s with --plain) fits an 80x24 terminal.
    views = out[: out.rindex("isthmus demo: ran")].split("-" * 72 + "\n")
    views = [v for v in views if v.strip()]
    assert len(views) >= 5
    for view in views:
        lines = view.rstrip("\n").split("\n")
        assert len(lines) <= 24, view
        assert max(len(line) for line in lines) <= 80, view


def demo_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isthmus.cli", "demo", "--plain", *args],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=cwd,
    )


@pytest.mark.skipif(not HAS_DSP, reason=NEEDS_DSP_REASON)
def test_demo_on_a_broker_reports_delivery_and_clears_its_retained_topics(
    mqtt_broker: Any, tmp_path: Path
) -> None:
    result = demo_process(
        "--duration",
        "20",
        "--fault-after",
        "4",
        "--sample-rate",
        str(SAMPLE_RATE),
        "--mqtt",
        mqtt_broker.url,
        "--outbox",
        str(tmp_path / "outbox.sqlite3"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    delivery = re.search(
        rf"broker {re.escape(mqtt_broker.url)}: (\d+) messages acknowledged, (\d+) still in "
        r"the outbox; cleared (\d+) retained topics under isthmus-demo/simulated-plant/",
        result.stdout,
    )
    assert delivery, result.stdout[-2000:]
    acked, _waiting, cleared = (int(g) for g in delivery.groups())
    assert acked > 10
    # state and _schema of two pumps, the gateway status (and alerts/active once raised)
    assert cleared >= 5
    left = asyncio.run(retained(mqtt_broker.port, "#"))
    assert left == [], left


@pytest.mark.skipif(not HAS_DSP, reason=NEEDS_DSP_REASON)
def test_demo_with_a_dead_broker_fails_instead_of_reporting_counts(tmp_path: Path) -> None:
    dead = f"mqtt://127.0.0.1:{free_port()}"
    result = demo_process(
        "--duration",
        "6",
        "--fault-after",
        "-1",
        "--sample-rate",
        str(SAMPLE_RATE),
        "--mqtt",
        dead,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert f"FAILED: the broker at {dead} was never reached; nothing was delivered" in (
        result.stdout
    )


async def retained(port: int, pattern: str) -> list[str]:
    """Topics holding a retained message on the broker right now."""
    import aiomqtt

    found: list[str] = []
    async with aiomqtt.Client("127.0.0.1", port, identifier="retained-check") as client:
        await client.subscribe(pattern, qos=1)
        with contextlib.suppress(TimeoutError):
            while True:
                async with asyncio.timeout(1.0):
                    message = await anext(client.messages)
                if message.retain and message.payload:
                    found.append(str(message.topic))
    return found
