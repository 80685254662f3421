"""Declared unit conversion, tag-to-field mapping and report by exception."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isthmus.errors import ConfigError
from isthmus.uns.models import Envelope, Motor, Pump, RotatingAsset, json_schema, wrap
from isthmus.uns.units import (
    CONVERSIONS,
    UNITS,
    FieldMap,
    ReportByException,
    compile_mapping,
    conversion,
)


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (212.0, "degF", "degC", 100.0),
        (32.0, "degF", "degC", 0.0),
        (-40.0, "degF", "degC", -40.0),
        (273.15, "K", "degC", 0.0),
        (100.0, "degC", "degF", 212.0),
        (25.0, "Hz", "rpm", 1500.0),
        (2 * math.pi, "rad/s", "rpm", 60.0),
        (1.0, "in/s", "mm/s", 25.4),
        (0.1, "ips", "mm/s", 2.54),
        (1.0, "g", "m/s^2", 9.80665),
        (14.503773773, "psi", "bar", 1.0),  # 1 bar = 100000 / 6894.757293168 psi
        (100.0, "kPa", "bar", 1.0),
        (1.0, "MPa", "bar", 10.0),
        (1.0, "hp", "kW", 0.745699872),
        (50.0, "%", "1", 0.5),
    ],
)
def test_conversions(value: float, src: str, dst: str, expected: float) -> None:
    assert conversion(src, dst)(value) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@given(
    pair=st.sampled_from(sorted(CONVERSIONS)),
    value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
def test_conversion_round_trips(pair: tuple[str, str], value: float) -> None:
    there = conversion(*pair)
    back = conversion(pair[1], pair[0])
    assert back(there(value)) == pytest.approx(value, rel=1e-9, abs=1e-6)


def test_every_pair_of_a_kind_is_in_the_table() -> None:
    kinds: dict[str, list[str]] = {}
    for name, unit in UNITS.items():
        kinds.setdefault(unit.kind, []).append(name)
    assert len(CONVERSIONS) == sum(len(v) ** 2 for v in kinds.values())


def test_mapping_converts_vendor_tags_onto_the_model() -> None:
    mapper = compile_mapping(
        Pump,
        [
            FieldMap(tag="P101.SPD", field="speed_rpm", unit="Hz"),
            FieldMap(tag="P101.BRG_T", field="bearing_temperature_c", unit="degF"),
            FieldMap(tag="P101.PRESS", field="discharge_pressure_bar", unit="psi"),
            FieldMap(tag="P101.VIB", field="vibration_velocity_rms_mm_s", unit="in/s"),
            FieldMap(tag="P101.ZONE", field="iso20816_zone"),
            FieldMap(tag="P101.HEALTH", field="health", unit="%"),
        ],
    )
    built = mapper.build(
        {
            "P101.SPD": 24.75,
            "P101.BRG_T": 149.0,
            "P101.PRESS": 72.5,
            "P101.VIB": 0.11,
            "P101.ZONE": "B",
            "P101.HEALTH": 93.0,
            "OTHER": 1.0,
        }
    )
    assert (built.quality, built.reasons) == ("good", [])
    pump = built.product
    assert isinstance(pump, Pump)
    assert pump.speed_rpm == pytest.approx(1485.0)
    assert pump.bearing_temperature_c == pytest.approx(65.0)
    assert pump.discharge_pressure_bar == pytest.approx(72.5 * 0.0689475729, rel=1e-9)
    assert pump.vibration_velocity_rms_mm_s == pytest.approx(2.794)
    assert pump.iso20816_zone == "B"
    assert pump.health == pytest.approx(0.93)
    assert mapper.apply({"P101.SPD": None}) == {"speed_rpm": None}


def test_g_onto_acceleration_field() -> None:
    mapper = compile_mapping(
        RotatingAsset, [FieldMap(tag="ACC", field="vibration_acceleration_rms_m_s2", unit="g")]
    )
    assert mapper.apply({"ACC": 0.5})["vibration_acceleration_rms_m_s2"] == pytest.approx(4.903325)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            FieldMap(tag="T", field="discharge_pressure_bar", unit="degF"),
            r"pumps\.p101\.mapping\[1\]\.unit: cannot convert degF \(temperature\) "
            r"to bar \(pressure\)",
        ),
        (
            FieldMap(tag="T", field="flow_m3_h", unit="degF"),
            r"mapping\[1\]\.field: Pump has no field 'flow_m3_h'",
        ),
        (FieldMap(tag="T", field="speed_rpm", unit="furlong"), r"mapping\[1\]\.unit: unknown"),
        (
            FieldMap(tag="T", field="iso20816_zone", unit="mm/s"),
            r"mapping\[1\]\.unit: field 'iso20816_zone' has no unit",
        ),
        (FieldMap(tag="T2", field="health"), r"mapping\[1\]\.field: 'health' is already mapped"),
        (FieldMap(tag="", field="speed_rpm"), r"mapping\[1\]\.tag: empty"),
    ],
)
def test_impossible_mappings_name_the_path(entry: FieldMap, message: str) -> None:
    first = FieldMap(tag="H", field="health")
    with pytest.raises(ConfigError, match=message):
        compile_mapping(Pump, [first, entry], where="pumps.p101.mapping")


def test_motor_units_declared() -> None:
    mapper = compile_mapping(
        Motor,
        [
            FieldMap(tag="I", field="current_a", unit="mA"),
            FieldMap(tag="P", field="power_kw", unit="W"),
            FieldMap(tag="TW", field="winding_temperature_c", unit="K"),
        ],
    )
    assert mapper.apply({"I": 1500.0, "P": 2500.0, "TW": 353.15}) == pytest.approx(
        {"current_a": 1.5, "power_kw": 2.5, "winding_temperature_c": 80.0}
    )
    with pytest.raises(ConfigError, match=r"cannot convert A \(current\) to kW \(power\)"):
        compile_mapping(Motor, [FieldMap(tag="I", field="power_kw", unit="A")])


def test_report_by_exception_deadbands_and_max_silence() -> None:
    rbe = ReportByException(
        Pump, deadbands={"speed_rpm": 5.0, "bearing_temperature_c": 0.5}, max_silence_s=60.0
    )
    state = {"speed_rpm": 1480.0, "bearing_temperature_c": 60.0, "iso20816_zone": "A"}
    assert rbe.offer(state, "good", now=0.0)  # first state always reported
    assert not rbe.offer({**state, "speed_rpm": 1484.0}, "good", now=1.0)  # inside deadband
    assert not rbe.offer({**state, "speed_rpm": 1476.0}, "good", now=2.0)  # vs last *reported*
    assert rbe.offer({**state, "speed_rpm": 1485.5}, "good", now=3.0)  # moved past it
    last = {**state, "speed_rpm": 1485.5}
    assert rbe.offer({**last, "bearing_temperature_c": 60.6}, "good", now=4.0)
    last["bearing_temperature_c"] = 60.6
    assert rbe.offer({**last, "iso20816_zone": "B"}, "good", now=5.0)  # enum changed
    last["iso20816_zone"] = "B"
    assert rbe.offer(last, "uncertain", now=6.0)  # quality changed
    assert rbe.offer({**last, "speed_rpm": None}, "uncertain", now=7.0)  # value lost
    last["speed_rpm"] = None
    assert not rbe.offer(last, "uncertain", now=66.9)
    assert rbe.offer(last, "uncertain", now=67.0)  # max silence: heartbeat
    assert rbe.suppressed == 3


def test_report_by_exception_without_deadband_reports_any_change() -> None:
    rbe = ReportByException(Pump, max_silence_s=10.0)
    assert rbe.offer({"health": 0.9}, "good", 0.0)
    assert not rbe.offer({"health": 0.9}, "good", 1.0)
    assert rbe.offer({"health": 0.9000001}, "good", 2.0)


@pytest.mark.parametrize(
    ("deadbands", "silence", "message"),
    [
        ({"flow": 1.0}, 60.0, r"report\.deadbands\.flow: Pump has no such field"),
        ({"iso20816_zone": 1.0}, 60.0, r"deadbands\.iso20816_zone: field is not numeric"),
        ({"speed_rpm": -1.0}, 60.0, r"deadbands\.speed_rpm: -1.0 must be finite"),
        ({}, 0.0, r"report\.max_silence_s"),
    ],
)
def test_report_by_exception_config_errors(
    deadbands: dict[str, float], silence: float, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ReportByException(Pump, deadbands, max_silence_s=silence)


PUMP_MAPPING = [
    FieldMap(tag="P1.SPD", field="speed_rpm", unit="Hz"),
    FieldMap(tag="P1.BRG_T", field="bearing_temperature_c", unit="degF"),
    FieldMap(tag="P1.PRESS", field="discharge_pressure_bar", unit="psi"),
    FieldMap(tag="P1.VIB", field="vibration_velocity_rms_mm_s", unit="in/s"),
    FieldMap(tag="P1.ZONE", field="iso20816_zone"),
    FieldMap(tag="P1.HEALTH", field="health", unit="%"),
]


def test_a_value_breaking_the_schema_is_left_out_and_makes_the_product_uncertain() -> None:
    mapper = compile_mapping(Pump, PUMP_MAPPING)
    # A stopped pump's speed sensor reading -0.02 Hz, a zone the standard does not have,
    # a health above 100 %.
    built = mapper.build({"P1.SPD": -0.02, "P1.BRG_T": 100.0, "P1.ZONE": "E", "P1.HEALTH": 120.0})
    pump = built.product
    assert isinstance(pump, Pump)
    # Left out, not clamped; the good value is kept.
    assert (pump.speed_rpm, pump.iso20816_zone, pump.health) == (None, None, None)
    assert pump.bearing_temperature_c == pytest.approx(37.7777778)
    assert built.quality == "uncertain"
    assert len(built.reasons) == 3
    assert "'P1.SPD' -> speed_rpm" in built.reasons[0] and ">= 0" in built.reasons[0]
    assert any("'P1.ZONE' -> iso20816_zone = 'E'" in r for r in built.reasons)
    assert any("'P1.HEALTH' -> health" in r and "<= 1" in r for r in built.reasons)
    assert mapper.rejected == {"speed_rpm": 1, "iso20816_zone": 1, "health": 1}
    mapper.build({"P1.SPD": -0.01})
    assert mapper.rejected["speed_rpm"] == 2
    # What a subscriber decodes against the published schema type.
    raw = msgspec.json.encode(wrap(pump, quality=built.quality))
    assert msgspec.json.decode(raw, type=Envelope[Pump]).payload == pump


_tag_value = st.one_of(
    st.none(),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=-(10**6), max_value=10**6),
)


@settings(max_examples=300, deadline=None)
@given(
    speed=_tag_value,
    temperature=_tag_value,
    pressure=_tag_value,
    velocity=_tag_value,
    health=_tag_value,
    zone=st.one_of(st.none(), st.sampled_from(["A", "B", "C", "D", "E", "a", "", "zone C"])),
)
def test_every_built_product_decodes_against_its_own_schema(
    speed: Any, temperature: Any, pressure: Any, velocity: Any, health: Any, zone: Any
) -> None:
    mapper = compile_mapping(Pump, PUMP_MAPPING)
    tags = {
        "P1.SPD": speed,
        "P1.BRG_T": temperature,
        "P1.PRESS": pressure,
        "P1.VIB": velocity,
        "P1.HEALTH": health,
        "P1.ZONE": zone,
    }
    built = mapper.build(tags)
    raw = msgspec.json.encode(wrap(built.product, quality=built.quality))
    back = msgspec.json.decode(raw, type=Envelope[Pump])  # never rejects its own payload
    assert back.quality == built.quality
    assert (built.quality == "uncertain") == bool(built.reasons)
    assert sum(mapper.rejected.values()) == len(built.reasons)
    # The published JSON Schema's bounds hold too (checked without msgspec).
    bounds = json_schema(Pump)["$defs"]["Pump"]["properties"]
    for name, value in msgspec.to_builtins(back.payload).items():
        if value is None or name in {"iso20816_zone", "bearing_diagnosis", "field_quality"}:
            continue
        declared = bounds[name]["anyOf"][0]
        assert value >= declared.get("minimum", -math.inf), name
        assert value <= declared.get("maximum", math.inf), name
    if back.payload.iso20816_zone is not None:
        assert back.payload.iso20816_zone in "ABCD"
