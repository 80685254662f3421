"""``isthmus check [--probe] CONFIG``: validate a configuration without starting anything.

Prints every error with its path and exits 2, or prints a summary of what the
gateway would do and each Modbus device's coalesced request plan (and warnings)
and exits 0. With ``--probe`` it then reaches every device, endpoint and the
broker once, read-only (:mod:`isthmus.gateway.probe`), and exits 1 when one of
them or one tag did not answer well.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="gateway configuration file (TOML)")
    parser.add_argument(
        "--probe",
        action="store_true",
        help="also connect to every device, endpoint and the broker once (read-only) and "
        "show reachability, TLS and each tag's first value or error",
    )


def run(args: argparse.Namespace) -> int:
    from isthmus.errors import ConfigError
    from isthmus.gateway.config import load_config, warnings

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"isthmus check: {exc}", file=sys.stderr)
        return 2
    describe(config, sys.stdout)
    for note in warnings(config):
        print(f"warning: {note}", file=sys.stdout)
    if not args.probe:
        return 0
    import asyncio
    import logging

    from isthmus.gateway.probe import probe

    # what the peers said is in the probe's report; the libraries' own logging is not
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger("asyncua").setLevel(logging.CRITICAL + 1)
    sys.stdout.flush()
    return 0 if asyncio.run(probe(config, sys.stdout)) else 1


def describe(config: object, out: TextIO) -> None:
    """Human summary of a valid configuration: sources, request plans, assets, sinks."""
    from isthmus.gateway import contracts
    from isthmus.gateway.config import GatewayConfig

    assert isinstance(config, GatewayConfig)
    g = config.gateway
    print(f"configuration OK: gateway {g.name!r}", file=out)
    telemetry = max(g.queue_size, 2 * len(config.assets) + 1)
    print(
        f"  queues: alerts never dropped; telemetry {telemetry} entries, one per asset "
        "(a newer product replaces a waiting one, counted); products every "
        f">= {g.publish_min_interval_s:g} s on change, heartbeat {g.max_silence_s:g} s; "
        f"fields stale after {g.stale_after_polls:g} poll intervals",
        file=out,
    )
    if config.mqtt is not None:
        m = config.mqtt
        auth = f", user {m.username}" if m.username else ""
        tls = f", TLS (CA {m.ca_file or 'system'})" if m.tls else ""
        print(f"  mqtt: {m.url} MQTT {m.protocol} as {m.identifier}{auth}{tls}", file=out)
    else:
        print("  mqtt: none: data products and alerts are printed (console sink)", file=out)
    o = config.outbox
    print(
        f"  outbox: {o.path} (<= {o.max_messages} messages, {o.max_bytes} bytes, {o.policy})",
        file=out,
    )
    print("sources:", file=out)
    for line in contracts.describe_sources(config.sources):
        print(f"  {line}", file=out)
    catalog = contracts.source_catalog(config.sources, [])
    print("assets:", file=out)
    for asset in config.assets:
        print(
            f"  {asset.name} ({asset.model}) -> {asset.topic_path}; ISO 20816-3 group "
            f"{asset.machine_group} {asset.foundation}",
            file=out,
        )
        for field, mapping in sorted(asset.fields.items()):
            unit = mapping.unit or catalog.tag_unit(mapping.tag)
            unit = f" [{unit}]" if unit else ""
            print(f"    {field} <- {mapping.tag}{unit}", file=out)
        vib = asset.vibration
        if vib is not None:
            channels = ", ".join(f"{c.name} <- {c.waveform} [{c.unit}]" for c in vib.channels)
            print(
                f"    vibration: {vib.sample_rate:g} Hz, {channels}; bearing "
                f"{vib.bearing or '-'}; velocity band {vib.band[0]:g}-{vib.band[1]:g} Hz",
                file=out,
            )
        for rule in asset.rules:
            print(f"    rule {rule.name}: {describe_rule(rule)}", file=out)


def describe_rule(rule: object) -> str:
    """One line saying when a rule raises and clears."""
    from isthmus.gateway.config import Rule

    assert isinstance(rule, Rule)
    if rule.kind == "threshold":
        clear = rule.clear_at if rule.clear_at is not None else rule.raise_at
        what = f"{rule.feature} >= {rule.raise_at} raises, < {clear} clears"
    elif rule.kind == "baseline":
        what = f"{rule.feature} z-score >= {rule.raise_at} after learning {rule.learn_s:g} s"
    elif rule.kind == "iso_zone":
        what = f"ISO 20816 zone {rule.zone} or worse"
    else:
        what = f"bearing fault score >= {rule.raise_at} dB with >= 2 harmonics"
    return f"{what}, {rule.persist} frames to change state, severity {rule.severity}"
