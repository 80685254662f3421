"""The gateway's one configuration file: TOML decoded into msgspec Structs.

Layout (see ``examples/`` for complete files)::

    [gateway]                 # this gateway: name, queue bounds, status period, logs
    [mqtt]                    # isthmus.uns.settings.MqttSettings
    [outbox]                  # isthmus.uns.settings.OutboxSettings
    [sources]                 # Modbus devices and OPC UA endpoints (isthmus.sources.config)
    [[assets]]                # one per machine: model, ISA-95 path, field mapping,
    [assets.isa95]            #   vibration channels, bearing, ISO 20816 class, rules
    [assets.fields.<field>]
    [assets.vibration]
    [[assets.vibration.channels]]
    [[assets.rules]]

Tags are referenced as ``"<source>.<tag>"`` (source = Modbus device or OPC UA
endpoint name; a source name may not contain a dot, so every reference has one
reading). :func:`load_config` reports *every* error at once, each with its
path (``assets[2].vibration.bearing: unknown bearing "6205x"``), by raising
:class:`isthmus.ConfigError`; nothing is started from an invalid file. It also
checks what the file points at: certificate, key and password files, trust lists,
password environment variables and the outbox directory.

This module is plain data plus checks: it imports the sources and UNS areas and
the Rust core, never other gateway modules, so anything may import it.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec

from isthmus.errors import ConfigError
from isthmus.gateway._convert import collect_errors
from isthmus.sources.catalog import (
    SourceCatalog,
    loose_catalog,
    request_rate_problems,
    source_catalog,
    source_entries,
)
from isthmus.sources.config import SourcesConfig
from isthmus.uns.settings import MqttSettings, OutboxSettings
from isthmus.uns.topics import segment_problem

ModelType = Literal["Pump", "Motor", "RotatingAsset"]
Severity = Literal["info", "warning", "critical"]

# Features a rule may watch: per-frame values the pipeline computes for each asset.
RULE_FEATURES = frozenset(
    {
        "velocity_rms",  # mm/s RMS, 10-1000 Hz (ISO 20816-3)
        "acceleration_rms",  # in the channel's unit
        "acceleration_peak",
        "crest_factor",
        "kurtosis",
        "bpfo_score",  # dB over the local floor in the envelope spectrum
        "bpfi_score",
        "bsf_score",
    }
)


# Data-product fields the pipeline computes when an asset has a [vibration] section.
VIBRATION_FIELDS = frozenset({"vibration_velocity_rms_mm_s", "iso20816_zone", "bearing_diagnosis"})


class _Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every configuration Struct: unknown keys are errors, never ignored."""


class GatewaySection(_Config):
    """The gateway itself.

    ``enterprise``/``site`` place the gateway's status topic
    (``{enterprise}/{site}/_gateway/{name}/status``); default: the first asset's.

    ``queue_size`` is the number of assets' products waiting for the sink before the
    telemetry queue conflates (per asset: the newest product replaces the waiting one,
    counted); it is never taken below the asset count. Alerts are never dropped.

    Publishing cadence: a product is published when a field changed by more than its
    ``deadband`` (any change without one), its quality changed, or ``max_silence_s``
    passed; at most once per ``publish_min_interval_s`` per asset. A field is stale
    (left out, the product bad) after ``stale_after_polls`` x its poll interval
    without a reading.
    """

    name: str = "isthmus"
    enterprise: str | None = None
    site: str | None = None
    queue_size: int = 1024
    publish_min_interval_s: float = 0.1
    max_silence_s: float = 60.0
    stale_after_polls: float = 3.0
    status_interval_s: float = 10.0
    features_interval_s: float = 5.0
    log_format: Literal["kv", "json"] = "kv"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Isa95Path(_Config):
    """Where the asset lives in the Unified Namespace; ``asset`` defaults to the asset name."""

    enterprise: str
    site: str
    area: str
    line: str
    asset: str | None = None


class FieldMapping(_Config):
    """One model field fed from one tag; ``unit`` is the tag's unit (converted to the model's).

    ``deadband`` (in the model's unit) suppresses publishing changes smaller than it.
    """

    tag: str
    unit: str | None = None
    deadband: float | None = None


class VibrationChannel(_Config):
    """One accelerometer: its waveform source (``"<source>.<waveform>"``) and its unit."""

    name: str
    waveform: str
    unit: Literal["g", "m/s^2"] = "g"


class VibrationSection(_Config):
    """Vibration acquisition and diagnosis of an asset.

    ``sample_rate`` in Hz; ``band`` the velocity-RMS band in Hz (ISO 20816-3: 10-1000);
    ``frame``/``hop`` in samples; ``bearing`` names a catalogue bearing; ``speed_tag``
    gives the shaft speed for the fault frequencies (default: the asset's ``speed`` field).

    Envelope analysis: ``envelope_frame`` samples per frame (default: the power of two
    nearest 0.64 s, e.g. 16384 at 25.6 kHz: 1.6 Hz resolution, fine enough for the +/-2 %
    search window around a fault frequency of 50 Hz or more), its squared-envelope spectrum
    averaged exponentially over ``envelope_average`` frames (8: a fault is confirmed over a
    few seconds and a repaired bearing clears within tens of seconds, not minutes).
    """

    sample_rate: float
    channels: list[VibrationChannel]
    bearing: str | None = None
    band: tuple[float, float] = (10.0, 1000.0)
    frame: int = 8192
    hop: int = 4096
    speed_tag: str | None = None
    envelope_frame: int | None = None
    envelope_average: int = 8


class Rule(_Config):
    """An alert rule over one feature.

    ``kind``: ``threshold`` raises at ``raise_at`` and clears below ``clear_at``
    (hysteresis), after ``persist`` consecutive frames either way; ``baseline`` learns
    mean and spread over ``learn_s`` seconds and raises at z-score ``raise_at``;
    ``iso_zone`` raises when the ISO 20816 zone reaches ``zone``; ``bearing`` raises
    when a bearing fault score exceeds ``raise_at`` dB with at least two harmonics.
    """

    name: str
    kind: Literal["threshold", "baseline", "iso_zone", "bearing"]
    feature: str | None = None
    raise_at: float | None = None
    clear_at: float | None = None
    zone: Literal["B", "C", "D"] | None = None
    persist: int = 3
    learn_s: float = 60.0
    severity: Severity = "warning"


class Asset(_Config):
    """One machine published as one data product.

    ``machine_group`` (1: large machines above 300 kW, 2: medium 15-300 kW) and
    ``foundation`` pick the ISO 20816-3 zone boundaries applied to the asset's
    velocity RMS, whether it is computed at the edge or read from a tag.
    """

    name: str
    model: ModelType
    isa95: Isa95Path
    machine_group: Literal[1, 2] = 2
    foundation: Literal["rigid", "flexible"] = "rigid"
    fields: dict[str, FieldMapping] = msgspec.field(default_factory=dict)
    vibration: VibrationSection | None = None
    rules: list[Rule] = msgspec.field(default_factory=list)

    @property
    def asset_id(self) -> str:
        """The asset's last topic level: ``isa95.asset`` or its name."""
        return self.isa95.asset or self.name

    @property
    def topic_path(self) -> str:
        """``enterprise/site/area/line/asset``: the asset's ISA-95 topic prefix."""
        p = self.isa95
        return "/".join((p.enterprise, p.site, p.area, p.line, p.asset or self.name))


class GatewayConfig(_Config):
    """The whole file."""

    gateway: GatewaySection = msgspec.field(default_factory=GatewaySection)
    sources: SourcesConfig = msgspec.field(default_factory=SourcesConfig)
    mqtt: MqttSettings | None = None
    outbox: OutboxSettings = msgspec.field(default_factory=OutboxSettings)
    assets: list[Asset] = msgspec.field(default_factory=list)


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a configuration file; :class:`ConfigError` lists every problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line}); "
            "save the file as UTF-8"
        ) from None
    config = parse_config(text, source=str(path))
    problems = environment_problems(config)
    if problems:
        raise _config_error(str(path), problems)
    return config


def parse_config(text: str, source: str = "<config>") -> GatewayConfig:
    """Validate TOML text; :class:`ConfigError` (``.errors``: one line per problem)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _config_error(source, [f"<toml>: {exc}"]) from None
    return build_config(raw, source=source)


def build_config(raw: dict[str, Any], source: str = "<config>") -> GatewayConfig:
    """Validate an already parsed document (the demo builds its own).

    Structural errors (types, unknown or missing fields) and semantic ones
    (references, duplicates, units, bearings) are reported together: the semantic
    checks run on every section and asset that is structurally sound.
    """
    errors: list[str] = []
    sound: dict[str, Any] = {}
    for field in msgspec.structs.fields(GatewayConfig):
        if field.encode_name not in raw or field.encode_name == "assets":
            continue
        before = len(errors)
        collect_errors(raw[field.encode_name], field.type, field.encode_name, errors)
        if len(errors) == before:
            sound[field.encode_name] = raw[field.encode_name]
    unknown = sorted(set(raw) - {f.encode_name for f in msgspec.structs.fields(GatewayConfig)})
    errors.extend(f"{key}: unknown section" for key in unknown)
    raw_assets = raw.get("assets", [])
    assets: list[tuple[int, Asset]] = []
    if not isinstance(raw_assets, list):
        errors.append("assets: expected an array of tables ([[assets]])")
        raw_assets = []
    for index, raw_asset in enumerate(raw_assets):
        before = len(errors)
        collect_errors(raw_asset, Asset, f"assets[{index}]", errors)
        if len(errors) == before:
            assets.append((index, msgspec.convert(raw_asset, Asset)))
    partial = msgspec.convert(sound, GatewayConfig)
    catalog = None
    if "sources" in raw and "sources" not in sound:
        # Broken sources still name their tags: check references against those names
        # rather than calling every tag unknown, and their names for clashes.
        catalog = loose_catalog(raw["sources"])
        errors.extend(_source_problems(_raw_sources(raw["sources"])))
    errors.extend(validate(partial, assets, asset_count=len(raw_assets), catalog=catalog))
    if errors:
        raise _config_error(source, errors)
    return msgspec.convert(raw, GatewayConfig)


def _config_error(source: str, errors: list[str]) -> ConfigError:
    if len(errors) == 1:
        exc = ConfigError(f"{source}: {errors[0]}")
    else:
        exc = ConfigError(f"{source}: {len(errors)} errors:\n  " + "\n  ".join(errors))
    exc.errors = errors  # type: ignore[attr-defined]
    return exc


# --- semantic checks (every error, with its path) -------------------------------------------


def validate(
    config: GatewayConfig,
    assets: list[tuple[int, Asset]] | None = None,
    asset_count: int | None = None,
    catalog: SourceCatalog | None = None,
) -> list[str]:
    """Checks across sections: references, duplicates, units, bearings, rule sanity.

    ``assets`` (index in the file, asset) defaults to all of ``config.assets``.
    """
    errors: list[str] = []
    if assets is None:
        assets = list(enumerate(config.assets))
    if asset_count is None:
        asset_count = len(assets)
    g = config.gateway
    if g.queue_size < 1:
        errors.append(f"gateway.queue_size: must be at least 1, got {g.queue_size}")
    if not (g.publish_min_interval_s >= 0 and math.isfinite(g.publish_min_interval_s)):
        errors.append(
            f"gateway.publish_min_interval_s: must be >= 0 s, got {g.publish_min_interval_s}"
        )
    if not g.stale_after_polls >= 1 or not math.isfinite(g.stale_after_polls):
        errors.append(f"gateway.stale_after_polls: must be >= 1, got {g.stale_after_polls}")
    for name in ("status_interval_s", "features_interval_s", "max_silence_s"):
        value = getattr(g, name)
        if not (value > 0 and math.isfinite(value)):
            errors.append(f"gateway.{name}: must be a positive number of seconds, got {value}")
    for level in ("name", "enterprise", "site"):
        value = getattr(g, level)
        problem = segment_problem(value) if value is not None else None
        if problem:
            errors.append(f"gateway.{level}: {problem}")

    if catalog is None:
        catalog = source_catalog(config.sources, [])
        errors.extend(_source_problems(_typed_sources(config.sources)))
        errors.extend(request_rate_problems(config.sources))
    if asset_count == 0:
        errors.append("assets: no assets configured")
    _duplicates(((f"assets[{i}].name", a.name) for i, a in assets), errors)
    _duplicates(((f"assets[{i}].isa95", a.topic_path) for i, a in assets), errors, "ISA-95 path")
    for index, asset in assets:
        _validate_asset(f"assets[{index}]", asset, catalog, errors)
    return errors


def _duplicates(items: Iterable[tuple[str, str]], errors: list[str], what: str = "name") -> None:
    seen: dict[str, str] = {}
    for path, value in items:
        if value in seen:
            errors.append(f"{path}: duplicate {what} {value!r} (first at {seen[value]})")
        else:
            seen[value] = path


def _validate_asset(path: str, asset: Asset, catalog: SourceCatalog, errors: list[str]) -> None:
    # five levels of at most 1024 bytes keep every topic far below MQTT's 65535 bytes
    for level in ("enterprise", "site", "area", "line", "asset"):
        value = getattr(asset.isa95, level)
        if level == "asset" and value is None:
            value = asset.name
        problem = segment_problem(value)
        if problem:
            errors.append(f"{path}.isa95.{level}: {problem}")

    model_fields: dict[str, str | None] | None = model_field_units(asset.model)
    for field_name, mapping in asset.fields.items():
        fpath = f"{path}.fields.{field_name}"
        if asset.vibration is not None and field_name in VIBRATION_FIELDS:
            errors.append(
                f"{fpath}: computed from [vibration] at the edge; map it from a tag "
                "or configure vibration, not both"
            )
            continue
        if model_fields is not None and field_name not in model_fields:
            errors.append(
                f"{fpath}: {asset.model} has no field {field_name!r} "
                f"(fields: {', '.join(sorted(model_fields))})"
            )
            continue
        tag_unit = catalog.tag_unit(mapping.tag)
        if not catalog.has_tag(mapping.tag):
            errors.append(f"{fpath}.tag: unknown tag {mapping.tag!r}{catalog.hint(mapping.tag)}")
        unit = mapping.unit if mapping.unit is not None else tag_unit
        target = model_fields.get(field_name) if model_fields is not None else None
        problem = unit_problem(unit, target)
        if problem:
            errors.append(f"{fpath}.unit: {problem}")
        if mapping.deadband is not None and not mapping.deadband >= 0:
            errors.append(f"{fpath}.deadband: must be >= 0, got {mapping.deadband}")

    if asset.vibration is not None:
        _validate_vibration(f"{path}.vibration", asset.vibration, catalog, errors, asset.fields)
    _duplicates(((f"{path}.rules[{i}].name", r.name) for i, r in enumerate(asset.rules)), errors)
    for index, rule in enumerate(asset.rules):
        _validate_rule(f"{path}.rules[{index}]", rule, asset, errors)


def _validate_vibration(
    path: str,
    vib: VibrationSection,
    catalog: SourceCatalog,
    errors: list[str],
    asset_fields: dict[str, FieldMapping],
) -> None:
    if not (vib.sample_rate > 0 and math.isfinite(vib.sample_rate)):
        errors.append(f"{path}.sample_rate: must be a positive rate in Hz, got {vib.sample_rate}")
    if not vib.channels:
        errors.append(f"{path}.channels: at least one channel is needed")
    lo, hi = vib.band
    if not 0 <= lo < hi:
        errors.append(f"{path}.band: need 0 <= low < high Hz, got ({lo}, {hi})")
    elif vib.sample_rate > 0 and hi >= vib.sample_rate / 2:
        errors.append(
            f"{path}.band: upper edge {hi} Hz is not below Nyquist ({vib.sample_rate / 2} Hz)"
        )
    if vib.frame < 64 or vib.frame & (vib.frame - 1):
        errors.append(f"{path}.frame: must be a power of two >= 64, got {vib.frame}")
    if not 0 < vib.hop <= vib.frame:
        errors.append(f"{path}.hop: must be in 1..frame ({vib.frame}), got {vib.hop}")
    ef = vib.envelope_frame
    if ef is not None and (ef < 1024 or ef & (ef - 1)):
        errors.append(f"{path}.envelope_frame: must be a power of two >= 1024, got {ef}")
    if vib.envelope_average < 1:
        errors.append(f"{path}.envelope_average: must be >= 1, got {vib.envelope_average}")
    if vib.bearing is not None:
        problem = bearing_problem(vib.bearing)
        if problem:
            errors.append(f"{path}.bearing: {problem}")
    if vib.bearing is not None and vib.speed_tag is None and "speed_rpm" not in asset_fields:
        errors.append(
            f"{path}.bearing: fault frequencies need the shaft speed: "
            "map fields.speed_rpm or set vibration.speed_tag"
        )
    if vib.speed_tag is not None and not catalog.has_tag(vib.speed_tag):
        errors.append(
            f"{path}.speed_tag: unknown tag {vib.speed_tag!r}{catalog.hint(vib.speed_tag)}"
        )
    _duplicates(
        ((f"{path}.channels[{i}].name", c.name) for i, c in enumerate(vib.channels)), errors
    )
    for index, channel in enumerate(vib.channels):
        cpath = f"{path}.channels[{index}].waveform"
        rate = catalog.waveform_rate(channel.waveform)
        if not catalog.has_waveform(channel.waveform):
            errors.append(
                f"{cpath}: unknown waveform {channel.waveform!r}{catalog.hint(channel.waveform)}"
            )
        elif rate is not None and vib.sample_rate > 0 and abs(rate - vib.sample_rate) > 1e-6:
            errors.append(
                f"{cpath}: source samples at {rate} Hz but vibration.sample_rate is "
                f"{vib.sample_rate} Hz"
            )


def _validate_rule(path: str, rule: Rule, asset: Asset, errors: list[str]) -> None:
    if rule.persist < 1:
        errors.append(f"{path}.persist: must be at least 1 frame, got {rule.persist}")
    if rule.kind in ("threshold", "baseline"):
        if rule.feature is None:
            errors.append(f"{path}.feature: a {rule.kind} rule needs a feature")
        elif rule.feature not in RULE_FEATURES:
            errors.append(
                f"{path}.feature: unknown feature {rule.feature!r} "
                f"(features: {', '.join(sorted(RULE_FEATURES))})"
            )
        if rule.raise_at is None:
            errors.append(f"{path}.raise_at: a {rule.kind} rule needs raise_at")
    inverted = (
        rule.raise_at is not None and rule.clear_at is not None and rule.clear_at > rule.raise_at
    )
    if rule.kind == "threshold" and inverted:
        errors.append(
            f"{path}.clear_at: {rule.clear_at} is above raise_at {rule.raise_at} "
            "(hysteresis needs clear_at <= raise_at)"
        )
    if rule.kind == "baseline" and not rule.learn_s > 0:
        errors.append(f"{path}.learn_s: must be positive, got {rule.learn_s}")
    if rule.kind == "iso_zone" and rule.zone is None:
        errors.append(f'{path}.zone: an iso_zone rule needs zone = "B" | "C" | "D"')
    if rule.kind == "bearing" and asset.vibration is not None and asset.vibration.bearing is None:
        errors.append(f"{path}: a bearing rule needs vibration.bearing")
    if rule.kind == "bearing" and asset.vibration is None:
        errors.append(f"{path}: a bearing rule needs a [vibration] section")
    velocity_mapped = "vibration_velocity_rms_mm_s" in asset.fields
    if rule.kind == "iso_zone" and asset.vibration is None and not velocity_mapped:
        errors.append(
            f"{path}: an iso_zone rule needs [vibration] or a vibration_velocity_rms_mm_s field"
        )
    if rule.kind == "bearing" and rule.raise_at is None:
        errors.append(f"{path}.raise_at: a bearing rule needs raise_at (dB)")


# --- models, units, bearings: the UNS area and the Rust core, reached downward --------------


def model_field_units(model: str) -> dict[str, str | None]:
    """Field name -> declared unit of a data-product model (None: unitless)."""
    from isthmus.uns.models import MODELS, field_units

    return field_units(MODELS[model])


def unit_problem(unit: str | None, target: str | None) -> str | None:
    """Why a value in ``unit`` cannot feed a field in ``target``, or None when it can."""
    from isthmus.uns.units import UNITS, conversion

    if unit is None or target is None:
        if unit is not None and unit not in UNITS:
            return f"unknown unit {unit!r} (known: {', '.join(UNITS)})"
        if unit is not None and target is None:
            return f"the field has no unit, but the tag is in {unit!r}"
        return None
    try:
        conversion(unit, target, "unit")
    except ConfigError as exc:
        return str(exc).removeprefix("unit: ")
    return None


def bearing_problem(name: str) -> str | None:
    """Why ``name`` is not a bearing of the core's catalogue, or None when it is."""
    from isthmus import _core
    from isthmus.errors import DiagnosticsError

    try:
        _core.bearing(name)
    except DiagnosticsError:
        catalogue = sorted(_core.bearing_catalogue())
        return f"unknown bearing {name!r} (catalogue: {', '.join(catalogue)})"
    return None


# --- sources: names that make references ambiguous, sources with nothing to read -----------


def _typed_sources(sources: SourcesConfig) -> list[tuple[str, object, int]]:
    out: list[tuple[str, object, int]] = []
    for path, entry in source_entries(sources):
        count = sum(len(g.tags) for g in getattr(entry, "poll_groups", []))
        count += len(getattr(entry, "waveforms", [])) + len(getattr(entry, "nodes", []))
        out.append((path, entry.name, count))
    return out


def _raw_sources(raw: Any) -> list[tuple[str, object, int]]:
    """The same as :func:`_typed_sources` from a structurally broken ``[sources]`` table."""

    def items(value: Any) -> list[Any]:
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    if not isinstance(raw, dict):
        return []
    out: list[tuple[str, object, int]] = []
    for kind in ("modbus", "opcua"):
        entries = raw.get(kind)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            count = sum(len(items(g.get("tags"))) for g in items(entry.get("poll_groups")))
            count += len(items(entry.get("waveforms"))) + len(items(entry.get("nodes")))
            out.append((f"sources.{kind}[{index}]", entry.get("name"), count))
    return out


def _source_problems(sources: list[tuple[str, object, int]]) -> list[str]:
    """Dots in names (``a.b``+``c`` and ``a``+``b.c`` would both be ``a.b.c``), duplicates,
    sources without a single tag."""
    errors: list[str] = []
    seen: dict[str, str] = {}
    for path, name, count in sources:
        if not isinstance(name, str):
            continue
        if "." in name:
            errors.append(
                f"{path}.name: {name!r} contains '.', which separates source and tag in "
                "references (\"<source>.<tag>\"); use '-' or '_'"
            )
        if name in seen:
            errors.append(f"{path}.name: duplicate source name {name!r} (first at {seen[name]})")
        else:
            seen[name] = path
        if count == 0:
            errors.append(f"{path}: source {name!r} has no tags, waveforms or nodes to read")
    return errors


def warnings(config: GatewayConfig) -> list[str]:
    """Legal but suspicious: Modbus tags of one device whose registers overlap with another
    type or offset (one of them decodes the other's bytes as garbage); an MQTT password
    sent without TLS."""
    out: list[str] = []
    for index, device in enumerate(config.sources.modbus):
        spans: list[tuple[str, int, int, str, str]] = []
        for group in device.poll_groups:
            for tag in group.tags:
                if tag.register in ("holding", "input") and tag.dtype != "bit":
                    end = tag.address + tag.width
                    spans.append((tag.register, tag.address, end, tag.name, tag.dtype))
        spans.sort()
        for i, (space, start, end, name, dtype) in enumerate(spans):
            for other_space, o_start, o_end, other, o_dtype in spans[i + 1 :]:
                if other_space != space or o_start >= end:
                    break
                if (start, dtype) == (o_start, o_dtype):
                    continue  # the same value under two names
                out.append(
                    f"sources.modbus[{index}]: tags {name!r} ({dtype}, {space} "
                    f"{start}..{end - 1}) and {other!r} ({o_dtype}, {other_space} "
                    f"{o_start}..{o_end - 1}) overlap"
                )
    if config.mqtt is not None and config.mqtt.username and not config.mqtt.tls:
        # a warning, not an error: a broker on loopback commonly takes this
        out.append(
            f"mqtt.url: username {config.mqtt.username!r} with a plain mqtt:// URL sends the "
            f"password in clear to {config.mqtt.host} (use mqtts:// unless it is on loopback)"
        )
    return out


# --- what the file points at: files, directories, environment variables ---------------------


def _file_problem(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except IsADirectoryError:
        return f"{path} is a directory, not a file"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return None


def environment_problems(config: GatewayConfig) -> list[str]:
    """Missing or unreadable files, unset password variables, a missing outbox directory.

    Paths are taken as the gateway will take them (relative to the working directory).
    Secrets are only checked for presence; their values are never read into a message.
    """
    import os

    from isthmus.sources.trust import load_certificates

    errors: list[str] = []

    def need_file(where: str, path: str | None) -> None:
        problem = _file_problem(path) if path else None
        if problem:
            errors.append(f"{where}: {problem}")

    def need_env(where: str, name: str | None) -> None:
        if name and name not in os.environ:
            errors.append(f"{where}: environment variable {name} is not set")

    m = config.mqtt
    if m is not None:
        for name in ("ca_file", "cert_file", "key_file", "password_file"):
            need_file(f"mqtt.{name}", getattr(m, name))
        need_env("mqtt.password_env", m.password_env)
    for index, ep in enumerate(config.sources.opcua):
        where = f"sources.opcua[{index}]"
        for name in ("certificate", "private_key", "password_file"):
            need_file(f"{where}.{name}", getattr(ep, name))
        need_env(f"{where}.password_env", ep.password_env)
        for name in ("trust_list", "server_certificate"):
            value = getattr(ep, name)
            if value:
                try:
                    load_certificates(value, f"{where}.{name}")
                except ConfigError as exc:
                    errors.append(str(exc))
    directory = Path(config.outbox.path).parent
    if not directory.is_dir():
        errors.append(
            f"outbox.path: directory {directory} does not exist (the gateway does not create it)"
        )
    elif not os.access(directory, os.W_OK):
        errors.append(f"outbox.path: directory {directory} is not writable")
    return errors
