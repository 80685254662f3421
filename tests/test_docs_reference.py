"""docs/gateway.md says what the code does: configuration keys and the metrics table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway_helpers import SAMPLE_RATE, plant, running, wait_until
from mqtt_broker import Broker

DOC = Path(__file__).resolve().parent.parent / "docs" / "gateway.md"


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_configuration_reference_names_every_key() -> None:
    from isthmus.gateway import config
    from isthmus.sources import config as sources

    reference = section("Configuration reference")
    quoted = {
        word for span in re.findall(r"`([^`]+)`", reference) for word in re.findall(r"\w+", span)
    }
    structs: list[type[msgspec.Struct]] = [
        config.GatewaySection,
        config.Isa95Path,
        config.Asset,
        config.FieldMapping,
        config.VibrationSection,
        config.VibrationChannel,
        config.Rule,
        sources.OpcUaEndpoint,
        sources.OpcUaNode,
        sources.PollGroup,
    ]
    missing = [
        f"{struct.__name__}.{field.encode_name}"
        for struct in structs
        for field in msgspec.structs.fields(struct)
        if field.encode_name not in quoted
    ]
    assert missing == [], missing


def documented_metrics() -> tuple[set[str], set[str]]:
    """Names in the metrics table: exact ones, and prefixes written as ``name_*``."""
    rows = [line for line in section("Metrics").splitlines() if line.startswith("| `")]
    exact: set[str] = set()
    prefixes: set[str] = set()
    for row in rows:
        first_cell = row.split("|")[1]
        for name in re.findall(r"`(isthmus_[a-z_]*\*?)`", first_cell):
            if name.endswith("*"):
                prefixes.add(name[:-1])
            else:
                exact.add(name)
    return exact, prefixes


@pytest.mark.network
async def test_metrics_table_matches_what_a_running_gateway_exposes(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    from isthmus.gateway.demo import demo_config
    from isthmus.gateway.metrics import Metrics
    from isthmus.gateway.pipeline import Gateway
    from isthmus.gateway.sinks import UnsSink

    exposed: set[str] = set()
    async with plant(tick_interval=0.2) as (_sim, ports):
        config = demo_config(
            ports, outbox=str(tmp_path / "o.sqlite3"), mqtt=mqtt_broker.url, sample_rate=SAMPLE_RATE
        )
        assert config.mqtt is not None
        metrics = Metrics()
        gateway: Any = Gateway(config, UnsSink(config.mqtt, config.outbox), metrics)
        async with running(gateway):
            await wait_until(
                lambda: (
                    metrics.total("isthmus_frames_analysed") > 0
                    and metrics.total("isthmus_uns_mqtt_published") > 0
                ),
                60,
                "analysed frames and acknowledged publishes",
            )
            for family in metrics.registry.collect():
                for sample in family.samples:
                    exposed.add(sample.name)
    exact, prefixes = documented_metrics()

    def documented(name: str) -> bool:
        for suffix in ("", "_total", "_sum", "_count", "_bucket", "_created"):
            base = name.removesuffix(suffix) if suffix and name.endswith(suffix) else name
            if base in exact or any(base.startswith(p) for p in prefixes):
                return True
        return False

    undocumented = sorted(n for n in exposed if not documented(n) and not n.endswith("_created"))
    assert undocumented == []
    families = {re.sub(r"_(total|sum|count|bucket|created)$", "", n) for n in exposed}
    not_exposed = sorted(
        n for n in exact if n not in exposed and n.removesuffix("_total") not in families
    )
    # isthmus_bad_values_total and isthmus_rejected_values_total only appear once a bad
    # or rejected value was counted; alerts only once a rule changed state; sink retries
    # only once the sink refused an alert
    assert set(not_exposed) <= {
        "isthmus_sink_retries_total",
        "isthmus_bad_values_total",
        "isthmus_rejected_values_total",
        "isthmus_alerts_total",
        "isthmus_active_alerts",
    }, not_exposed
    assert "isthmus_outbox_depth" in exposed
