"""The gateway's counters, served to Prometheus and copied into the status message.

Every figure lives once, in a private ``prometheus_client`` registry (one per
gateway, so tests can run several): the pipeline updates counters and histograms
as it works; figures other components already keep (per-device poll statistics,
outbox depth) are read at collection time through :meth:`Metrics.add_source`.
:meth:`Metrics.snapshot` flattens the same registry for the MQTT status message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Seconds: from sub-millisecond DSP frames to multi-second timeouts.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# A live figure read at collection time: name, help, labels -> value.
LiveFigures = Callable[[], Iterable[tuple[str, str, dict[str, str], float]]]


class _LiveCollector(Collector):
    def __init__(self, sources: list[LiveFigures]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        label_names: dict[str, list[str]] = {}
        for source in self._sources:
            for name, help_text, labels, value in source():
                family = families.get(name)
                if family is None:
                    label_names[name] = sorted(labels)
                    family = GaugeMetricFamily(name, help_text, labels=label_names[name])
                    families[name] = family
                family.add_metric([labels.get(k, "") for k in label_names[name]], value)
        return list(families.values())


class Metrics:
    """All gateway counters. Names are prefixed ``isthmus_``; units in the names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.started = time.time()
        self.poll_errors = Counter(
            "isthmus_bad_values",
            "Values received with bad or uncertain quality",
            ["source"],
            registry=r,
        )
        self.values = Counter(
            "isthmus_values", "Tag values received from sources", ["source"], registry=r
        )
        self.dsp_seconds = Histogram(
            "isthmus_dsp_seconds",
            "DSP time per analysed frame: spectra, envelope, rules (s)",
            ["asset"],
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.alerts = Counter(
            "isthmus_alerts", "Alert transitions", ["asset", "rule", "state"], registry=r
        )
        self.active_alerts = Gauge(
            "isthmus_active_alerts", "Alerts currently raised", ["asset"], registry=r
        )
        self.messages = Counter(
            "isthmus_messages", "Messages handed to the sink", ["kind"], registry=r
        )
        self.rejected = Counter(
            "isthmus_rejected_values",
            "Values left out of a data product because its schema rejects them "
            "(out of bounds, not one of its choices)",
            ["asset", "field"],
            registry=r,
        )
        self.dropped = Counter(
            "isthmus_dropped",
            "Telemetry dropped because a bounded queue was full, or refused by the sink",
            ["queue"],
            registry=r,
        )
        self.conflated = Counter(
            "isthmus_conflated",
            "Telemetry messages replaced by a newer one of the same asset before the sink "
            "took them (latest wins)",
            ["queue"],
            registry=r,
        )
        self.sink_retries = Counter(
            "isthmus_sink_retries",
            "Messages the sink refused and that were retried (alerts are never dropped)",
            ["kind"],
            registry=r,
        )
        self.alerts_undelivered = Counter(
            "isthmus_alerts_undelivered",
            "Alert events not handed to the sink when the gateway stopped (kept in the "
            "alert state file: the next start clears them with a reason)",
            registry=r,
        )
        self._live: list[LiveFigures] = []
        r.register(_LiveCollector(self._live))

    def add_source(self, figures: LiveFigures) -> None:
        """Register a callable read at every collection (e.g. outbox depth, device stats)."""
        self._live.append(figures)

    def snapshot(self) -> dict[str, float]:
        """Every figure as ``{"name{label=value,...}": number}`` (histograms: _sum and _count)."""
        out: dict[str, float] = {"uptime_s": round(time.time() - self.started, 3)}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith(("_bucket", "_created")):
                    continue
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                key = f"{sample.name}{{{labels}}}" if labels else sample.name
                out[key] = sample.value
        return out

    def total(self, name: str, **labels: str) -> float:
        """Sum of a figure over the label values not given (tests and the demo summary)."""
        value = 0.0
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name != name:
                    continue
                if all(sample.labels.get(k) == v for k, v in labels.items()):
                    value += sample.value
        return value


def serve(metrics: Metrics, port: int, host: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the server."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
