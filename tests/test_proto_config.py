"""Source configuration: TOML in, Structs out, errors that name the config path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from isthmus.errors import ConfigError
from isthmus.sources.config import (
    ModbusDevice,
    PollGroup,
    SourcesConfig,
    TagSpec,
    WaveformBlock,
    parse,
)

EXAMPLE = """
[[modbus]]
name = "P-101"
host = "10.0.0.21"
unit_id = 3
max_requests_per_second = 20
max_gap = 4

  [[modbus.poll_groups]]
  name = "fast"
  interval = 0.5
  tags = [
    { name = "speed", address = 0, dtype = "uint16", unit = "rpm" },
    { name = "temperature", address = 1, dtype = "int16", scale = 0.1, unit = "degC" },
    { name = "running", address = 4, dtype = "bit", bit = 0 },
    { name = "motor_on", address = 0, register = "discrete", dtype = "bit" },
  ]

  [[modbus.waveforms]]
  name = "vibration"
  channel = "de_accel"
  sample_rate = 25600
  register = "holding"
  sequence_address = 1000
  address = 1001
  samples = 120
  slots = 16
  scale = 0.0005
  unit = "g"

[[opcua]]
name = "P-103"
url = "opc.tcp://10.0.0.30:4840/isthmus/"
security = "Basic256Sha256"
mode = "SignAndEncrypt"
certificate = "client.der"
private_key = "client.pem"
trust_list = "pki/trusted"
username = "gateway"
password_env = "P103_PASSWORD"
nodes = [
  { node_id = "ns=2;s=P-103.ShaftSpeed", name = "speed", sampling_interval = 0.1, queue_size = 4 },
  { node_id = "ns=2;s=P-103.Waveform", name = "wave", waveform = true, sample_rate = 25600 },
]
"""


def test_full_example_parses() -> None:
    cfg = parse(SourcesConfig, tomllib.loads(EXAMPLE), "sources")
    dev = cfg.modbus[0]
    assert (dev.port, dev.unit_id, dev.max_gap) == (502, 3, 4)
    assert [t.register for t in dev.poll_groups[0].tags] == [
        "holding",
        "holding",
        "holding",
        "discrete",
    ]
    wave = dev.waveforms[0]
    assert wave.slot_stride == 121 and wave.block_registers == 120
    ep = cfg.opcua[0]
    assert ep.mode == "SignAndEncrypt" and ep.nodes[1].waveform


def bad(data: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse(SourcesConfig, data, "sources")


def test_errors_name_the_config_path() -> None:
    base = tomllib.loads(EXAMPLE)
    base["modbus"][0]["poll_groups"][0]["tags"][1]["adress"] = 5
    bad(base, r"^sources\.modbus\[0\]\.poll_groups\[0\]\.tags\[1\]: .*unknown field `adress`")
    base = tomllib.loads(EXAMPLE)
    base["modbus"][0]["port"] = "502"
    bad(base, r"^sources\.modbus\[0\]\.port: Expected `int`, got `str`")
    base = tomllib.loads(EXAMPLE)
    base["modbus"][0]["poll_groups"][0]["tags"][0]["address"] = 70000
    bad(base, r"^sources\.modbus\[0\]\.poll_groups\[0\]\.tags\[0\]: tag 'speed': address 70000")
    base = tomllib.loads(EXAMPLE)
    base["opcua"][0]["nodes"][0]["queue_size"] = 0
    bad(base, r"^sources\.opcua\[0\]\.nodes\[0\]: node 'speed': queue_size")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"security": "None", "mode": "None", "certificate": None, "trust_list": None},
            r"^sources\.opcua\[0\]: endpoint '[\w-]+': a username needs security Basic256Sha256",
        ),
        (
            {
                "security": "None",
                "mode": "None",
                "certificate": None,
                "trust_list": None,
                "username": None,
                "password_env": None,
            },
            None,
        ),
        ({"certificate": None}, "needs certificate and private_key"),
        ({"mode": "None"}, "needs mode Sign or SignAndEncrypt"),
        ({"password_env": None}, "needs one of password_env, password_file"),
        ({"password_file": "pw.txt"}, "needs one of password_env, password_file"),
        ({"username": None}, "password source without username"),
        ({"url": "http://x"}, "opc.tcp://"),
        ({"trust_list": None}, "needs trust_list"),
        ({"trust_list": None, "server_certificate": "server.der"}, None),
        (
            {"security": "None", "mode": "None", "certificate": None, "private_key": None},
            "trust_list/server_certificate need security",
        ),
        ({"url": "opc.tcp://gateway:pw@10.0.0.30:4840/"}, "credentials in the URL"),
    ],
)
def test_opcua_security_and_identity_rules(change: dict[str, object], match: str | None) -> None:
    data = tomllib.loads(EXAMPLE)
    data["opcua"][0].update({k: v for k, v in change.items()})
    data["opcua"][0] = {k: v for k, v in data["opcua"][0].items() if v is not None}
    if match is None:
        parse(SourcesConfig, data)
    else:
        bad(data, match)


def test_tag_rules() -> None:
    with pytest.raises(ValueError, match="coil tags are dtype 'bit'"):
        TagSpec(name="c", address=0, register="coil", dtype="uint16")
    with pytest.raises(ValueError, match=r"needs bit in 0\.\.15"):
        TagSpec(name="b", address=0, dtype="bit")
    with pytest.raises(ValueError, match="unknown dtype 'int24'"):
        TagSpec(name="x", address=0, dtype="int24")
    assert TagSpec(name="s", address=0, dtype="string", length=9).width == 9  # registers
    assert TagSpec(name="f", address=0, dtype="float64").width == 4


def test_waveform_must_fit_one_read() -> None:
    block = WaveformBlock(
        name="w",
        channel="c",
        sample_rate=1000,
        address=1,
        sequence_address=0,
        samples=62,
        dtype="float32",
    )
    assert block.block_registers == 124
    ModbusDevice(name="d", host="h", waveforms=[block])
    big = WaveformBlock(
        name="w",
        channel="c",
        sample_rate=1000,
        address=1,
        sequence_address=0,
        samples=63,
        dtype="float32",
    )
    with pytest.raises(ValueError, match="needs 127 registers in one read"):
        ModbusDevice(name="d", host="h", waveforms=[big])
    # 125 samples fit a read alone, but not with the counter register read along
    full = WaveformBlock(
        name="w", channel="c", sample_rate=1000, address=1, sequence_address=0, samples=125
    )
    with pytest.raises(ValueError, match="needs 126 registers in one read"):
        ModbusDevice(name="d", host="h", waveforms=[full])
    apart = WaveformBlock(
        name="w", channel="c", sample_rate=1000, address=1, sequence_address=200, samples=125
    )
    ModbusDevice(name="d", host="h", waveforms=[apart])  # counter read on its own


def test_tag_wider_than_one_read_is_a_config_error() -> None:
    wide = TagSpec(name="label", address=0, dtype="string", length=126)
    group = PollGroup(name="g", interval=1.0, tags=[wide])
    with pytest.raises(ValueError, match="'label' spans 126 registers"):
        ModbusDevice(name="d", host="h", poll_groups=[group])
    with pytest.raises(ValueError, match="sequence register inside"):
        WaveformBlock(
            name="w", channel="c", sample_rate=1000, address=0, sequence_address=5, samples=10
        )


def test_password_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse(SourcesConfig, tomllib.loads(EXAMPLE))
    ep = cfg.opcua[0]
    monkeypatch.delenv("P103_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="P103_PASSWORD is not set"):
        ep.password()
    monkeypatch.setenv("P103_PASSWORD", "hunter2")
    assert ep.password() == "hunter2"
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    data = tomllib.loads(EXAMPLE)
    del data["opcua"][0]["password_env"]
    data["opcua"][0]["password_file"] = str(pw)
    assert parse(SourcesConfig, data).opcua[0].password() == "from-file"
    data["opcua"][0]["password_file"] = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="cannot read password_file"):
        parse(SourcesConfig, data).opcua[0].password()


def test_tag_values_encode_to_json() -> None:
    import msgspec

    from isthmus.sources.values import Quality, TagValue, bad

    v = TagValue(
        source="P-101", tag="speed", value=1797, unit="rpm", source_time=1.5, gateway_time=2.0
    )
    assert msgspec.json.decode(msgspec.json.encode(v)) == {
        "source": "P-101",
        "tag": "speed",
        "value": 1797,
        "unit": "rpm",
        "quality": "good",
        "reason": None,
        "source_time": 1.5,
        "gateway_time": 2.0,
    }
    b = bad("P-101", "bogus", "illegal data address (exception code 2)")
    assert (b.quality, b.value, b.good) == (Quality.BAD, None, False)


def test_decoder_rules_apply_at_config_time() -> None:
    data = tomllib.loads(EXAMPLE)
    data["modbus"][0]["poll_groups"][0]["tags"][2]["scale"] = 2.0  # a scaled bit
    with pytest.raises(
        ConfigError, match=r"^sources\.modbus\[0\]\.poll_groups\[0\]\.tags\[2\]: .*running"
    ):
        parse(SourcesConfig, data, "sources")
    data = tomllib.loads(EXAMPLE)
    data["modbus"][0]["poll_groups"][0]["tags"][0]["byte"] = "low"  # byte on a uint16
    with pytest.raises(ConfigError, match=r"tags\[0\]: .*speed"):
        parse(SourcesConfig, data, "sources")


def test_waveform_reader_is_rust_by_default_and_checked() -> None:
    cfg = parse(SourcesConfig, tomllib.loads(EXAMPLE), "sources")
    assert cfg.modbus[0].waveform_reader == "rust"
    base = tomllib.loads(EXAMPLE)
    base["modbus"][0]["waveform_reader"] = "pymodbus"
    assert parse(SourcesConfig, base, "sources").modbus[0].waveform_reader == "pymodbus"
    base["modbus"][0]["waveform_reader"] = "fast"
    bad(base, r"^sources\.modbus\[0\]\.waveform_reader: Invalid enum value 'fast'")
