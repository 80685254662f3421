"""Asset data products and the message envelope of the Unified Namespace.

Every payload is an :class:`Envelope`: a unique ``message_id`` (26-character ULID: time
ordered, 80 random bits, so consumers can drop duplicates of at-least-once delivery), a
UTC ``timestamp``, a ``quality`` and the ``schema`` id (``urn:isthmus:uns:<Model>:v<N>``)
around the model. Field units are declared on the fields themselves (``x-unit`` in the
JSON Schema) and read back by :func:`field_units`, which the unit mapping checks against.

Versioning: each model has ``SCHEMA_VERSION``; a change of its JSON Schema must bump it
(``tests/test_uns_models.py`` pins a fingerprint per version). The schema published on
``.../_schema`` is :func:`json_schema` of the model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, NamedTuple, TypeVar

import msgspec

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "MODELS",
    "ActiveAlerts",
    "Alert",
    "AlertEvidence",
    "AssetModel",
    "Envelope",
    "EvidencePeak",
    "FieldViolation",
    "GatewayStatus",
    "Motor",
    "Pump",
    "Quality",
    "RotatingAsset",
    "SpectralPeak",
    "VibrationFeatures",
    "check_field",
    "checked",
    "field_units",
    "json_schema",
    "new_message_id",
    "schema_id",
    "wrap",
]

Quality = Literal["good", "uncertain", "bad"]

#: ``schema`` of the envelope around a JSON Schema published on ``.../_schema``.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
Zone = Literal["A", "B", "C", "D"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_message_id(now_ms: int | None = None) -> str:
    """A ULID: 48-bit Unix milliseconds + 80 random bits, Crockford base32 (26 chars).

    Sortable by creation time to the millisecond; unique without coordination.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _measured(
    unit: str, description: str, ge: float | None = None, le: float | None = None
) -> msgspec.Meta:
    return msgspec.Meta(
        ge=ge,
        le=le,
        description=description,
        extra_json_schema={"x-unit": unit},
        extra={"unit": unit},
    )


Rpm = Annotated[float, _measured("rpm", "Shaft speed", ge=0)]
TempC = Annotated[float, _measured("degC", "Temperature", ge=-273.15)]
Bar = Annotated[float, _measured("bar", "Gauge pressure")]
VelocityMmS = Annotated[
    float, _measured("mm/s", "Vibration velocity RMS (ISO 20816 broadband)", ge=0)
]
AccelMs2 = Annotated[float, _measured("m/s^2", "Vibration acceleration RMS", ge=0)]
Amps = Annotated[float, _measured("A", "Phase current RMS", ge=0)]
KiloWatts = Annotated[float, _measured("kW", "Active power")]
Health = Annotated[float, _measured("1", "Health index: 1 healthy, 0 failed", ge=0.0, le=1.0)]
ZoneField = Annotated[
    Zone, msgspec.Meta(description="ISO 20816 evaluation zone of the vibration velocity")
]
Diagnosis = Annotated[
    str,
    msgspec.Meta(
        description="Bearing diagnosis from the envelope analysis "
        "(e.g. normal, outer_race, inner_race, rolling_element, cage)"
    ),
]


Running = Annotated[bool, msgspec.Meta(description="True while the machine runs (a PLC bit)")]
Fault = Annotated[
    bool, msgspec.Meta(description="True while the machine reports a fault or trip (a PLC bit)")
]
OperatingState = Annotated[
    str,
    msgspec.Meta(
        description="Operating state as the device names it (e.g. running, stopped, "
        "starting, tripped, maintenance)",
        max_length=256,
    ),
]
FieldQuality = Literal["uncertain", "bad", "stale"]


class AssetModel(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of asset data products: every field is optional (None = not measured).

    ``field_quality`` names each field whose value is not good now, and why it is left
    out (None): ``bad`` (the source failed or gave a bad status), ``stale`` (no reading
    for longer than its staleness bound) or ``uncertain`` (the source said so, or the
    value broke the field's schema). Fields not listed are good (or never configured).
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    field_quality: dict[str, FieldQuality] = {}


class Pump(AssetModel, kw_only=True):
    """Centrifugal pump data product."""

    #: v2: ``running``, ``fault``, ``state`` and ``field_quality``.
    SCHEMA_VERSION: ClassVar[int] = 2

    running: Running | None = None
    fault: Fault | None = None
    state: OperatingState | None = None

    speed_rpm: Rpm | None = None
    bearing_temperature_c: TempC | None = None
    discharge_pressure_bar: Bar | None = None
    vibration_velocity_rms_mm_s: VelocityMmS | None = None
    iso20816_zone: ZoneField | None = None
    bearing_diagnosis: Diagnosis | None = None
    health: Health | None = None


class Motor(AssetModel, kw_only=True):
    """Electric motor data product."""

    #: v2: ``running``, ``fault``, ``state`` and ``field_quality``.
    SCHEMA_VERSION: ClassVar[int] = 2

    running: Running | None = None
    fault: Fault | None = None
    state: OperatingState | None = None

    speed_rpm: Rpm | None = None
    winding_temperature_c: TempC | None = None
    bearing_temperature_c: TempC | None = None
    current_a: Amps | None = None
    power_kw: KiloWatts | None = None
    vibration_velocity_rms_mm_s: VelocityMmS | None = None
    iso20816_zone: ZoneField | None = None
    bearing_diagnosis: Diagnosis | None = None
    health: Health | None = None


class RotatingAsset(AssetModel, kw_only=True):
    """Any rotating machine (fan, gearbox, compressor) without a dedicated model."""

    #: v2: ``running``, ``fault``, ``state`` and ``field_quality``.
    SCHEMA_VERSION: ClassVar[int] = 2

    running: Running | None = None
    fault: Fault | None = None
    state: OperatingState | None = None

    speed_rpm: Rpm | None = None
    bearing_temperature_c: TempC | None = None
    vibration_velocity_rms_mm_s: VelocityMmS | None = None
    vibration_acceleration_rms_m_s2: AccelMs2 | None = None
    iso20816_zone: ZoneField | None = None
    bearing_diagnosis: Diagnosis | None = None
    health: Health | None = None


#: Model name (as written in the gateway configuration) -> Struct.
MODELS: dict[str, type[AssetModel]] = {
    "Pump": Pump,
    "Motor": Motor,
    "RotatingAsset": RotatingAsset,
}


class SpectralPeak(msgspec.Struct, kw_only=True):
    frequency_hz: float
    amplitude: float


class VibrationFeatures(msgspec.Struct, kw_only=True):
    """Periodic vibration features of one channel (published on ``.../vibration``)."""

    SCHEMA_VERSION: ClassVar[int] = 1

    channel: str
    sample_rate_hz: float
    window_s: float
    velocity_rms_mm_s: VelocityMmS | None = None
    acceleration_rms_m_s2: AccelMs2 | None = None
    crest_factor: float | None = None
    kurtosis: float | None = None
    #: Band name -> RMS in the channel's unit.
    bands: dict[str, float] = {}
    peaks: list[SpectralPeak] = []
    #: Fault name (bpfo, bpfi, bsf, ftf, ...) -> score.
    fault_scores: dict[str, float] = {}


class EvidencePeak(msgspec.Struct, kw_only=True):
    """One of the strongest envelope-spectrum peaks behind a bearing alert."""

    frequency_hz: Annotated[float, _measured("Hz", "Peak frequency", ge=0)]
    level_db: Annotated[float, _measured("dB", "Peak level over the spectrum's median")]


class AlertEvidence(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why an alert was raised; which fields are set depends on the rule kind.

    Bearing rules: ``fault``, ``frequency_hz``, ``score_db``, ``harmonics``, ``peaks``.
    Baseline rules: ``z_score``, ``baseline_mean``, ``baseline_std``. Zone rules: ``zone``.
    Every rule: ``feature``, the feature column the rule watched.
    """

    feature: str | None = None
    #: Bearing fault type matched (``outer_race``, ``inner_race``, ``ball``, ``cage``).
    fault: str | None = None
    frequency_hz: Annotated[float, _measured("Hz", "Fault frequency matched", ge=0)] | None = None
    score_db: Annotated[float, _measured("dB", "Fault score over the envelope floor")] | None = None
    harmonics: Annotated[int, msgspec.Meta(ge=0, description="Harmonics found")] | None = None
    z_score: float | None = None
    baseline_mean: float | None = None
    baseline_std: float | None = None
    zone: ZoneField | None = None
    #: Strongest envelope-spectrum peaks, strongest first.
    peaks: list[EvidencePeak] = []


class Alert(msgspec.Struct, kw_only=True):
    """One raise or clear of an alert condition (published on ``.../alerts``)."""

    #: v2: ``evidence``.
    SCHEMA_VERSION: ClassVar[int] = 2

    #: Stable id of the condition (raise and clear share it), e.g. ``vibration.zone_c``.
    alert_id: str
    state: Literal["raised", "cleared"]
    severity: Literal["info", "warning", "alarm", "critical"]
    message: str
    value: float | None = None
    threshold: float | None = None
    unit: str | None = None
    raised_at: datetime | None = None
    evidence: AlertEvidence | None = None


class ActiveAlerts(msgspec.Struct, kw_only=True):
    """Alerts active now (retained on ``.../alerts/active``; empty once all cleared)."""

    #: v2: the alerts carry ``evidence`` (Alert v2).
    SCHEMA_VERSION: ClassVar[int] = 2

    alerts: list[Alert] = []


class GatewayStatus(msgspec.Struct, kw_only=True):
    """The gateway's retained status: online with counters, or offline (the will)."""

    SCHEMA_VERSION: ClassVar[int] = 1

    state: Literal["online", "offline"]
    gateway_id: str
    version: str = ""
    since: datetime | None = None
    counters: dict[str, int] = {}


T = TypeVar("T")


class Envelope(msgspec.Struct, Generic[T], kw_only=True):
    """What every UNS message carries around its payload."""

    message_id: str
    timestamp: datetime
    quality: Quality
    #: ``urn:isthmus:uns:<Model>:v<N>``.
    schema: str
    payload: T


def schema_id(model: type[Any]) -> str:
    """``urn:isthmus:uns:<Model>:v<SCHEMA_VERSION>``."""
    version = getattr(model, "SCHEMA_VERSION", 1)
    return f"urn:isthmus:uns:{model.__name__}:v{version}"


def wrap(
    payload: T,
    *,
    quality: Quality = "good",
    timestamp: datetime | None = None,
    message_id: str | None = None,
) -> Envelope[T]:
    """Put ``payload`` in an :class:`Envelope` with a fresh id and the current UTC time."""
    return Envelope(
        message_id=message_id or new_message_id(),
        timestamp=timestamp or datetime.now(UTC),
        quality=quality,
        schema=schema_id(type(payload)),
        payload=payload,
    )


def json_schema(model: type[Any]) -> dict[str, Any]:
    """JSON Schema of ``Envelope[model]`` (msgspec-generated) with ``$id`` and version.

    Built once per model (7,000 assets of one model share it); each call returns a new
    top-level dict over the shared, read-only sub-schemas.
    """
    cached = _SCHEMAS.get(model)
    if cached is None:
        cached = _SCHEMAS[model] = _json_schema(model)
    return dict(cached)


_SCHEMAS: dict[type[Any], dict[str, Any]] = {}


def _json_schema(model: type[Any]) -> dict[str, Any]:
    schema = msgspec.json.schema(Envelope[model])  # type: ignore[valid-type]
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = schema_id(model)
    schema["x-schema-version"] = getattr(model, "SCHEMA_VERSION", 1)
    return schema


class FieldViolation(NamedTuple):
    """A value its model's schema rejects (out of its bounds, not one of its choices)."""

    field: str
    value: Any
    error: str


S = TypeVar("S", bound=msgspec.Struct)


def check_field(model: type[msgspec.Struct], name: str, value: Any) -> FieldViolation | None:
    """Why ``value`` cannot be ``model.name`` under the model's schema, or None if it can.

    The Struct constructor checks neither bounds (``ge``/``le``) nor ``Literal`` choices;
    a decoder of the published JSON does, so a product built unchecked can break its own
    schema (a stopped pump reading -0.02 Hz as ``speed_rpm: -1.2``).
    """
    if value is None:
        return None
    try:
        msgspec.convert({name: value}, type=model)
    except msgspec.ValidationError as exc:
        return FieldViolation(name, value, str(exc))
    return None


def checked(model: type[S], fields: Mapping[str, Any]) -> tuple[S, list[FieldViolation]]:
    """``model(**fields)`` with every value checked against the schema.

    A value the schema rejects is left out (None) and reported, never clamped: the caller
    marks the product's quality and counts it. Unknown field names raise ``TypeError``.
    """
    violations = [v for n, x in fields.items() if (v := check_field(model, n, x)) is not None]
    bad = {v.field for v in violations}
    return model(**{k: v for k, v in fields.items() if k not in bad}), violations


_FIELD_UNITS: dict[type[Any], dict[str, str | None]] = {}


def field_units(model: type[msgspec.Struct]) -> dict[str, str | None]:
    """Field name -> declared unit (``None`` for unitless fields such as the zone); cached."""
    cached = _FIELD_UNITS.get(model)
    if cached is None:
        cached = _FIELD_UNITS[model] = _field_units(model)
    return dict(cached)


def _field_units(model: type[msgspec.Struct]) -> dict[str, str | None]:
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    units: dict[str, str | None] = {}
    for field in info.fields:
        if field.name == "field_quality":
            continue  # the gateway's own account of the fields, never mapped from a tag
        units[field.name] = _unit_of(field.type)
    return units


def _unit_of(t: msgspec.inspect.Type) -> str | None:
    if isinstance(t, msgspec.inspect.Metadata):
        unit = (t.extra or {}).get("unit")
        return unit if isinstance(unit, str) else _unit_of(t.type)
    if isinstance(t, msgspec.inspect.UnionType):
        for member in t.types:
            unit = _unit_of(member)
            if unit is not None:
                return unit
    return None
