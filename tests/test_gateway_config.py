"""Gateway configuration: every error is reported at once, each with its path."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from isthmus import ConfigError
from isthmus.gateway.config import GatewayConfig, build_config, load_config, parse_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def base() -> dict[str, Any]:
    """A small valid configuration: one Modbus pump with a waveform block."""
    return copy.deepcopy(
        {
            "gateway": {"name": "edge-1"},
            "sources": {
                "modbus": [
                    {
                        "name": "vendor_a",
                        "host": "127.0.0.1",
                        "port": 5020,
                        "max_requests_per_second": 400.0,
                        "poll_groups": [
                            {
                                "name": "process",
                                "interval": 1.0,
                                "tags": [
                                    {
                                        "name": "speed",
                                        "address": 0,
                                        "dtype": "uint16",
                                        "unit": "rpm",
                                    },
                                    {
                                        "name": "temp",
                                        "address": 1,
                                        "dtype": "int16",
                                        "scale": 0.1,
                                        "unit": "degC",
                                    },
                                ],
                            }
                        ],
                        "waveforms": [
                            {
                                "name": "de",
                                "channel": "de_accel",
                                "address": 1001,
                                "sequence_address": 1000,
                                "samples": 120,
                                "sample_rate": 25600.0,
                                "unit": "g",
                            }
                        ],
                    }
                ]
            },
            "assets": [
                {
                    "name": "pump-101",
                    "model": "Pump",
                    "isa95": {
                        "enterprise": "acme",
                        "site": "plant1",
                        "area": "water",
                        "line": "l1",
                    },
                    "fields": {
                        "speed_rpm": {"tag": "vendor_a.speed"},
                        "bearing_temperature_c": {"tag": "vendor_a.temp"},
                    },
                    "vibration": {
                        "sample_rate": 25600.0,
                        "channels": [{"name": "de", "waveform": "vendor_a.de"}],
                    },
                    "rules": [
                        {
                            "name": "vibration-high",
                            "kind": "threshold",
                            "feature": "velocity_rms",
                            "raise_at": 4.5,
                            "clear_at": 3.5,
                        }
                    ],
                }
            ],
        }
    )


def errors_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    errors: list[str] = info.value.errors  # type: ignore[attr-defined]
    # The message carries every line too, so a person sees them all.
    for line in errors:
        assert line in str(info.value)
    return errors


def test_base_configuration_is_valid() -> None:
    config = build_config(base())
    assert isinstance(config, GatewayConfig)
    asset = config.assets[0]
    assert asset.topic_path == "acme/plant1/water/l1/pump-101"
    assert asset.vibration is not None and asset.vibration.channels[0].waveform == "vendor_a.de"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["gateway"].update(queue_sise=3), "gateway.queue_sise: unknown field"),
        (lambda c: c.update(extra={}), "extra: unknown section"),
        (lambda c: c["gateway"].update(queue_size=0), "gateway.queue_size: must be at least 1"),
        (lambda c: c["gateway"].update(name="a/b"), "gateway.name: topic level 'a/b' contains '/'"),
        (lambda c: c["assets"][0].update(model="Pumpe"), "assets[0].model: Invalid enum value"),
        (lambda c: c["assets"][0].pop("isa95"), "assets[0].isa95: missing required field"),
        (
            lambda c: c["assets"][0]["isa95"].update(line="l1/l2"),
            "assets[0].isa95.line: topic level 'l1/l2' contains '/'",
        ),
        (
            lambda c: c["assets"][0]["isa95"].update(area="a+"),
            "assets[0].isa95.area: topic level 'a+' contains '+'",
        ),
        (
            lambda c: c["assets"][0]["fields"]["speed_rpm"].update(tag="vendor_a.sped"),
            "assets[0].fields.speed_rpm.tag: unknown tag 'vendor_a.sped' "
            "(did you mean 'vendor_a.speed'?)",
        ),
        (
            lambda c: c["assets"][0]["fields"]["speed_rpm"].update(deadband=-1.0),
            "assets[0].fields.speed_rpm.deadband: must be >= 0",
        ),
        (
            lambda c: c["assets"][0]["vibration"].update(sample_rate="fast"),
            "assets[0].vibration.sample_rate: Expected `float`, got `str`",
        ),
        (
            lambda c: c["assets"][0]["vibration"].update(sample_rate=-1.0),
            "assets[0].vibration.sample_rate: must be a positive rate in Hz",
        ),
        (
            lambda c: c["assets"][0].update(machine_group=3),
            "assets[0].machine_group: Invalid enum value 3",
        ),
        (
            lambda c: c["assets"][0].update(foundation="soft"),
            "assets[0].foundation: Invalid enum value 'soft'",
        ),
        (
            lambda c: c["assets"][0]["vibration"].update(band=[10.0, 20000.0]),
            "assets[0].vibration.band: upper edge 20000.0 Hz is not below Nyquist",
        ),
        (
            lambda c: c["assets"][0]["vibration"].update(frame=5000),
            "assets[0].vibration.frame: must be a power of two",
        ),
        (
            lambda c: c["assets"][0]["vibration"]["channels"][0].update(unit="m/s2"),
            "assets[0].vibration.channels[0].unit: Invalid enum value 'm/s2'",
        ),
        (
            lambda c: c["assets"][0]["vibration"]["channels"][0].update(waveform="vendor_a.nde"),
            "assets[0].vibration.channels[0].waveform: unknown waveform 'vendor_a.nde'",
        ),
        (
            lambda c: c["assets"][0]["vibration"].update(sample_rate=12800.0),
            "assets[0].vibration.channels[0].waveform: source samples at 25600.0 Hz",
        ),
        (
            lambda c: c["assets"][0]["vibration"]["channels"].append(
                {"name": "de", "waveform": "vendor_a.de"}
            ),
            "assets[0].vibration.channels[1].name: duplicate name 'de'",
        ),
        (
            lambda c: c["assets"][0]["rules"][0].update(feature="velocity"),
            "assets[0].rules[0].feature: unknown feature 'velocity'",
        ),
        (
            lambda c: c["assets"][0]["rules"][0].update(clear_at=9.0),
            "assets[0].rules[0].clear_at: 9.0 is above raise_at 4.5",
        ),
        (
            lambda c: c["assets"][0]["rules"][0].update(kind="bearing"),
            "assets[0].rules[0]: a bearing rule needs vibration.bearing",
        ),
        (
            lambda c: c["assets"][0]["rules"][0].update(kind="iso_zone"),
            "assets[0].rules[0].zone: an iso_zone rule needs zone",
        ),
        (
            lambda c: c["assets"][0]["rules"][0].update(persist=0),
            "assets[0].rules[0].persist: must be at least 1 frame",
        ),
        (
            lambda c: c["assets"][0]["fields"].update(
                vibration_velocity_rms_mm_s={"tag": "vendor_a.speed"}
            ),
            "assets[0].fields.vibration_velocity_rms_mm_s: computed from [vibration]",
        ),
        (lambda c: c.update(assets=[]), "assets: no assets configured"),
        (
            lambda c: c["assets"][0]["vibration"].update(bearing="6205x"),
            "assets[0].vibration.bearing: unknown bearing '6205x' (catalogue: ",
        ),
        (
            lambda c: (
                c["assets"][0]["vibration"].update(bearing="6205"),
                c["assets"][0]["fields"].pop("speed_rpm"),
            ),
            "assets[0].vibration.bearing: fault frequencies need the shaft speed",
        ),
        (
            lambda c: c["assets"][0]["fields"]["speed_rpm"].update(unit="degF"),
            "assets[0].fields.speed_rpm.unit: cannot convert degF (temperature) to rpm",
        ),
        (
            lambda c: c["assets"][0]["fields"]["speed_rpm"].update(unit="furlong/fortnight"),
            "assets[0].fields.speed_rpm.unit: unknown unit 'furlong/fortnight'",
        ),
        (
            # The unit declared at the source is used when the mapping gives none.
            lambda c: c["sources"]["modbus"][0]["poll_groups"][0]["tags"][1].update(unit="psi"),
            "assets[0].fields.bearing_temperature_c.unit: cannot convert psi (pressure) to degC",
        ),
        (
            lambda c: c["assets"][0]["fields"].update(colour={"tag": "vendor_a.speed"}),
            "assets[0].fields.colour: Pump has no field 'colour'",
        ),
        (
            lambda c: c["assets"][0]["fields"].update(iso20816_zone={"tag": "vendor_a.speed"}),
            "assets[0].fields.iso20816_zone: computed from [vibration]",
        ),
        (lambda c: c.update(mqtt={"url": "http://broker"}), "mqtt.url: unsupported scheme 'http'"),
        (lambda c: c.update(mqtt={"password": "x"}), "mqtt.password: unknown field"),
        (lambda c: c.update(outbox={"max_messages": 0}), "outbox.max_messages: 0 must be >= 1"),
        (
            lambda c: c["sources"]["modbus"][0].update(max_requests_per_second=100.0),
            "sources.modbus[0].max_requests_per_second: 'vendor_a' needs 214 reads/s",
        ),
        (
            lambda c: c["sources"]["modbus"][0].update(port=70000),
            "sources.modbus[0]: device 'vendor_a': port must be in 1..65535",
        ),
        (
            lambda c: c["sources"]["modbus"][0]["poll_groups"][0]["tags"][0].update(dtype="int7"),
            "sources.modbus[0].poll_groups[0].tags[0]: tag 'speed': unknown dtype 'int7'",
        ),
        (
            lambda c: c["assets"].append(copy.deepcopy(c["assets"][0])),
            "assets[1].name: duplicate name 'pump-101' (first at assets[0].name)",
        ),
        (
            lambda c: c["sources"]["modbus"].append(copy.deepcopy(c["sources"]["modbus"][0])),
            "sources.modbus[1].name: duplicate source name 'vendor_a'",
        ),
    ],
)
def test_each_error_names_its_path(mutate: Any, expected: str) -> None:
    raw = base()
    mutate(raw)
    errors = errors_of(raw)
    assert any(line.startswith(expected) for line in errors), errors


def test_all_errors_are_reported_at_once() -> None:
    raw = base()
    raw["gateway"]["queue_sise"] = 3  # structural, top level
    raw["assets"][0]["fields"]["speed_rpm"]["tag"] = "nowhere.speed"  # semantic
    raw["assets"][0]["vibration"]["band"] = "wide"  # structural, in an asset
    second = copy.deepcopy(raw["assets"][0])
    second["name"] = "pump-102"
    second["isa95"]["line"] = "a#b"
    second["vibration"]["band"] = [10.0, 1000.0]
    second["rules"][0]["clear_at"] = 10.0
    raw["assets"].append(second)
    errors = errors_of(raw)
    prefixes = sorted(line.split(":")[0] for line in errors)
    assert prefixes == sorted(
        [
            "gateway.queue_sise",
            "assets[0].vibration.band",
            "assets[1].isa95.line",
            "assets[1].fields.speed_rpm.tag",
            "assets[1].rules[0].clear_at",
        ]
    ), errors
    # assets[0] is structurally broken, so its semantic checks wait for the fix; the
    # sound asset is checked in full in the same pass.
    assert "ConfigError" not in errors[0]


def test_broken_sources_do_not_make_every_tag_unknown() -> None:
    raw = base()
    raw["sources"]["modbus"][0]["port"] = 0
    raw["assets"][0]["fields"]["speed_rpm"]["tag"] = "vendor_a.nope"
    errors = errors_of(raw)
    assert [e.split(":")[0] for e in errors] == [
        "sources.modbus[0]",
        "assets[0].fields.speed_rpm.tag",
    ], errors


def test_toml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"<toml>: .*line 2"):
        parse_config('[gateway]\nname = "unterminated\n')


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid(example: Path) -> None:
    config = load_config(example)
    assert config.assets


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES.glob("*.toml")}
    assert {"minimal.toml", "simulator-pumps.toml"} <= names


def _isthmus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isthmus.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_cli_lists_every_error_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[gateway]\nqueue_size = 0\n\n"
        "[[assets]]\nname = 'p'\nmodel = 'Pump'\n"
        "isa95 = { enterprise = 'e', site = 's', area = 'a', line = 'l' }\n"
        "fields.speed_rpm = { tag = 'dev.speed' }\n"
        "[[assets]]\nname = 'p'\nmodel = 'Fan'\n"
    )
    result = _isthmus("check", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    for expected in (
        "gateway.queue_size: must be at least 1",
        "assets[0].fields.speed_rpm.tag: unknown tag 'dev.speed'",
        "assets[1].model: Invalid enum value 'Fan'",
        "assets[1].isa95: missing required field",
    ):
        assert expected in result.stderr, result.stderr


def test_check_cli_summarises_a_valid_file_with_its_request_plans() -> None:
    result = _isthmus("check", str(EXAMPLES / "simulator-pumps.toml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "configuration OK: gateway 'edge-01'" in out
    assert "P-102 (Pump) -> acme/plant1/utilities/cooling/P-102" in out
    # acme's five process tags (a status bit among them) coalesce into one read over a
    # gap; bravo's CDAB floats and its status word into another; the waveform is streamed.
    assert "read holding 0..12 (13 registers): speed, temperature, pressure, running, " in out
    assert "read input 0..10 (11 registers): speed, temperature, pressure, running" in out
    assert "waveform 'vibration' (de_accel): 64 slots x 120 int16 samples" in out
    assert out.count("request plan: 1 reads per round") == 2
    assert "opcua p103: opc.tcp://127.0.0.1:4840/isthmus/" in out
    assert "bearing_temperature_c <- p102.temperature [degF]" in out


def test_simulator_example_matches_the_simulator_register_maps() -> None:
    from isthmus.simulator.vendors import acme_map, bravo_map

    config = load_config(EXAMPLES / "simulator-pumps.toml")
    devices = {d.name: d for d in config.sources.modbus}
    for device, vmap in (("p101", acme_map()), ("p102", bravo_map(25600.0))):
        points = {p.name: p for p in vmap.points}
        for tag in devices[device].poll_groups[0].tags:
            point = points[tag.name]
            assert (tag.register, tag.address, tag.dtype, tag.order, tag.bit, tag.unit) == (
                point.register,
                point.address,
                point.dtype,
                point.order,
                point.bit,
                point.unit,
            ), tag.name
            assert tag.scale == pytest.approx(point.scale)
        assert devices[device].waveforms == vmap.waveforms


def test_building_the_cli_imports_no_protocol_library() -> None:
    code = (
        "import sys; from isthmus.cli import build_parser; build_parser(); "
        "heavy = [m for m in ('pymodbus', 'asyncua', 'aiomqtt', 'prometheus_client', 'scipy') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
