"""`isthmus check`: every error in one pass, what the file points at, hostile names."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from isthmus import ConfigError
from isthmus.gateway.config import build_config, load_config, warnings
from test_gateway_config import EXAMPLES, base


def errors_of(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    errors: list[str] = info.value.errors  # type: ignore[attr-defined]
    return errors


def isthmus(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "isthmus.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **env},
    )


def test_twenty_mistakes_are_reported_in_one_pass() -> None:
    raw = base()
    device = raw["sources"]["modbus"][0]
    device["port"] = 70000
    device["unit_id"] = 300
    group = device["poll_groups"][0]
    group["interval"] = -1.0
    group["tags"].append(copy.deepcopy(group["tags"][0]))  # duplicate tag name 'speed'
    group["tags"].append({"name": "bad", "address": 3, "dtype": "int7"})
    raw["sources"]["modbus"].append(copy.deepcopy(device))  # duplicate source name
    raw["sources"]["modbus"].append({"name": "empty", "host": "127.0.0.1"})
    raw["sources"]["modbus"].append(
        {
            "name": "a.b",
            "host": "h",
            "poll_groups": [{"name": "g", "interval": 1, "tags": [{"name": "c", "address": 0}]}],
        }
    )
    raw["gateway"]["status_interval_s"] = -5
    raw["assets"][0]["isa95"]["area"] = "wa\x07ter"
    errors = errors_of(raw)
    text = "\n".join(errors)
    for expected in (
        "sources.modbus[0]: device 'vendor_a': port must be in 1..65535, got 70000",
        "sources.modbus[0]: device 'vendor_a': unit_id must be in 0..255, got 300",
        "sources.modbus[0].poll_groups[0]: poll group 'process': interval must be > 0 s",
        "sources.modbus[0].poll_groups[0]: poll group 'process': duplicate tag names ['speed']",
        "sources.modbus[0].poll_groups[0].tags[3]: tag 'bad': unknown dtype 'int7'",
        "sources.modbus[1].name: duplicate source name 'vendor_a'",
        "sources.modbus[2]: source 'empty' has no tags",
        "sources.modbus[3].name: 'a.b' contains '.'",
        "gateway.status_interval_s: must be a positive number",
        "assets[0].isa95.area: topic level 'wa\\x07ter' contains control characters U+0007",
    ):
        assert expected in text, text


def test_dotted_source_names_would_make_references_ambiguous() -> None:
    # "a.b" + tag "c" and "a" + tag "b.c" both read "a.b.c"
    raw = base()
    raw["sources"]["modbus"][0]["name"] = "vendor.a"
    raw["assets"][0]["fields"] = {}
    raw["assets"][0]["vibration"]["channels"][0]["waveform"] = "vendor.a.de"
    errors = errors_of(raw)
    assert any(e.startswith("sources.modbus[0].name: 'vendor.a' contains '.'") for e in errors)


@pytest.mark.parametrize(
    ("level", "value", "message"),
    [
        ("area", "wa\x07ter", "control characters U+0007"),
        ("area", "wa\x7fter", "control characters U+007F"),
        ("line", "l\x9f", "control characters U+009F"),
        ("enterprise", "$acme", "may not start with '$'"),
        ("site", "$plant", "may not start with '$'"),
        ("line", " l1", "leading or trailing spaces"),
        ("line", "l1 ", "leading or trailing spaces"),
        ("line", "l+1", "contains '+'"),
        ("line", "l#", "contains '#'"),
        ("line", "a/b", "contains '/'"),
        ("line", "x" * 1025, "longer than 1024"),
        ("asset", "\x00", "control characters U+0000"),
    ],
)
def test_every_isa95_level_follows_mqtt_rules(level: str, value: str, message: str) -> None:
    raw = base()
    raw["assets"][0]["isa95"][level] = value
    errors = errors_of(raw)
    assert any(e.startswith(f"assets[0].isa95.{level}: ") and message in e for e in errors), errors


def test_gateway_levels_follow_the_same_rules() -> None:
    raw = base()
    raw["gateway"].update(name="gw\x01", enterprise="$SYS", site="s ")
    errors = errors_of(raw)
    assert [e.split(":")[0] for e in errors] == [
        "gateway.name",
        "gateway.enterprise",
        "gateway.site",
    ]


def test_a_valid_unicode_level_is_accepted() -> None:
    raw = base()
    raw["assets"][0]["isa95"]["area"] = "Kühlwasser-Ø"
    assert build_config(raw).assets[0].topic_path == "acme/plant1/Kühlwasser-Ø/l1/pump-101"


def test_overlapping_registers_of_different_types_are_warned() -> None:
    raw = base()
    tags = raw["sources"]["modbus"][0]["poll_groups"][0]["tags"]
    tags.append({"name": "flow", "address": 1, "dtype": "float32"})  # overlaps temp (int16 @1)
    tags.append({"name": "speed_alias", "address": 0, "dtype": "uint16"})  # same value: fine
    tags.append({"name": "run", "address": 0, "dtype": "bit", "bit": 3})  # a bit of a word: fine
    found = warnings(build_config(raw))
    assert len(found) == 1, found
    assert "'temp' (int16, holding 1..1) and 'flow' (float32, holding 1..2) overlap" in found[0]


@pytest.mark.parametrize(
    ("url", "warned"), [("mqtt://10.0.0.5", True), ("mqtts://10.0.0.5", False)]
)
def test_mqtt_username_without_tls_is_warned(url: str, warned: bool) -> None:
    raw = base()
    raw["mqtt"] = {"url": url, "username": "gw", "password_env": "GW_PW"}
    found = [w for w in warnings(build_config(raw)) if w.startswith("mqtt.url")]
    if warned:
        assert found == [
            "mqtt.url: username 'gw' with a plain mqtt:// URL sends the password in clear to "
            "10.0.0.5 (use mqtts:// unless it is on loopback)"
        ]
    else:
        assert found == []


def test_two_tags_on_one_opcua_node_are_refused() -> None:
    raw = base()
    raw["sources"]["opcua"] = [
        {
            "name": "ua",
            "url": "opc.tcp://127.0.0.1:4840/",
            "nodes": [
                {"node_id": "ns=2;s=P.Speed", "name": "speed"},
                {"node_id": "ns=2;s=P.Speed", "name": "speed2"},
            ],
        }
    ]
    errors = errors_of(raw)
    assert any("node ids subscribed twice ['ns=2;s=P.Speed']" in e for e in errors), errors


# --- what the file points at -----------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A TOML inline value (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    items = [(k, v) for k, v in value.items() if v is not None]  # TOML has no null
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in items) + "}"


def write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(f"{k} = {toml_value(v)}" for k, v in raw.items()) + "\n")
    return path


def test_files_directories_and_environment_are_checked(tmp_path: Path) -> None:
    raw = base()
    raw["mqtt"] = {
        "url": "mqtts://127.0.0.1:8883",
        "ca_file": str(tmp_path / "no-ca.pem"),
        "username": "gw",
        "password_env": "ISTHMUS_TEST_UNSET_VARIABLE",
    }
    raw["outbox"] = {"path": "/nonexistent/dir/outbox.sqlite3"}
    raw["sources"]["opcua"] = [
        {
            "name": "ua",
            "url": "opc.tcp://127.0.0.1:4840/",
            "security": "Basic256Sha256",
            "mode": "Sign",
            "certificate": str(tmp_path / "client.der"),
            "private_key": str(tmp_path),
            "trust_list": str(tmp_path / "trusted"),
            "nodes": [{"node_id": "ns=2;s=P.Speed", "name": "speed"}],
        }
    ]
    (tmp_path / "trusted").mkdir()
    config = write(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    errors = info.value.errors  # type: ignore[attr-defined]
    text = "\n".join(errors)
    for expected in (
        f"mqtt.ca_file: cannot read {tmp_path / 'no-ca.pem'}: No such file or directory",
        "mqtt.password_env: environment variable ISTHMUS_TEST_UNSET_VARIABLE is not set",
        "outbox.path: directory /nonexistent/dir does not exist",
        f"sources.opcua[0].certificate: cannot read {tmp_path / 'client.der'}",
        f"sources.opcua[0].private_key: {tmp_path} is a directory",
        f"sources.opcua[0].trust_list: directory {tmp_path / 'trusted'} holds no certificate",
    ):
        assert expected in text, text
    result = isthmus("check", str(config))
    assert result.returncode == 2 and result.stdout == ""
    assert "outbox.path: directory /nonexistent/dir does not exist" in result.stderr
    assert not Path("/nonexistent/dir").exists()
    # run refuses the same file before starting anything
    result = isthmus("run", str(config))
    assert result.returncode == 2 and "mqtt.ca_file" in result.stderr


def test_secrets_are_never_printed(tmp_path: Path) -> None:
    raw = base()
    raw["sources"]["opcua"] = [
        {
            "name": "ua",
            "url": "opc.tcp://operator:hunter2-secret@127.0.0.1:4840/",
            "nodes": [{"node_id": "ns=2;s=P.Speed", "name": "speed"}],
        }
    ]
    raw["mqtt"] = {"url": "http://gw:hunter2-secret@broker:1883"}
    result = isthmus("check", str(write(tmp_path, raw)))
    assert result.returncode == 2
    assert "credentials in the URL are not accepted" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_check_refuses_a_secure_endpoint_without_trust(tmp_path: Path) -> None:
    raw = base()
    raw["sources"]["opcua"] = [
        {
            "name": "ua",
            "url": "opc.tcp://127.0.0.1:4840/",
            "security": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "certificate": "c.der",
            "private_key": "k.pem",
            "nodes": [{"node_id": "ns=2;s=P.Speed", "name": "speed"}],
        }
    ]
    result = isthmus("check", str(write(tmp_path, raw)))
    assert result.returncode == 2
    assert "sources.opcua[0]: endpoint 'ua': security Basic256Sha256 needs trust_list" in (
        result.stderr
    )


def test_examples_still_pass_check() -> None:
    for example in sorted(EXAMPLES.glob("*.toml")):
        result = isthmus("check", str(example))
        assert result.returncode == 0, (example, result.stderr)


def test_toml_round_trip_helper_is_faithful(tmp_path: Path) -> None:
    raw = base()
    assert tomllib.loads(write(tmp_path, raw).read_text()) == msgspec.to_builtins(raw)


# --- check --probe: real peers (pymodbus and asyncua simulators, Mosquitto with mTLS) --------


def probe_config(modbus_port: int, opcua_port: int, broker: Any, tmp_path: Path) -> Path:
    from isthmus.simulator.vendors import acme_map

    group = msgspec.to_builtins(acme_map().poll_group(interval=1.0))
    group["tags"] = group["tags"][:3]
    raw = base()
    raw["sources"] = {
        "modbus": [
            {"name": "acme", "host": "127.0.0.1", "port": modbus_port, "poll_groups": [group]},
            {
                "name": "missing",
                "host": "127.0.0.1",
                "port": free_tcp_port(),
                "connect_timeout": 1.0,
                "poll_groups": [
                    {"name": "g", "interval": 1, "tags": [{"name": "x", "address": 0}]}
                ],
            },
        ],
        "opcua": [
            {
                "name": "charlie",
                "url": f"opc.tcp://127.0.0.1:{opcua_port}/isthmus/",
                "nodes": [
                    {"node_id": "ns=2;s=C.ShaftSpeed", "name": "ShaftSpeed", "unit": "rpm"},
                    {"node_id": "ns=2;s=C.NoSuchThing", "name": "ghost"},
                ],
            }
        ],
    }
    raw["assets"][0]["fields"] = {"speed_rpm": {"tag": "acme.speed"}}
    del raw["assets"][0]["vibration"]
    raw["assets"][0]["rules"] = []
    tls = broker.tls
    raw["mqtt"] = {
        "url": broker.url,
        "client_id": "gw-probe-test",
        "ca_file": str(tls.ca),
        "cert_file": str(tls.client_cert),
        "key_file": str(tls.client_key),
    }
    raw["outbox"] = {"path": str(tmp_path / "outbox.sqlite3")}
    return write(tmp_path, raw)


def free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.network
async def test_probe_reports_reachability_tls_and_each_tag(
    mqtt_tls_broker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    # aiomqtt is a test extra, not a runtime dependency: the probe must not need it
    blocker = tmp_path / "no-aiomqtt"
    blocker.mkdir()
    (blocker / "aiomqtt.py").write_text("raise ImportError('aiomqtt is not installed')\n")
    monkeypatch.setenv("PYTHONPATH", str(blocker))

    from isthmus.simulator import PumpConfig, Simulator

    modbus_port, opcua_port = free_tcp_port(), free_tcp_port()
    sim = Simulator(
        [PumpConfig("A", "acme", 1500.0, modbus_port), PumpConfig("C", "charlie", 1480.0)],
        opcua_port=opcua_port,
        tick_interval=0,
    )
    config = probe_config(modbus_port, opcua_port, mqtt_tls_broker, tmp_path)
    async with sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "isthmus.cli",
            "check",
            "--probe",
            str(config),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out_b, err_b = await asyncio.wait_for(proc.communicate(), 60)
        truth = sim.truth("A")
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 1, (out, err)  # the ghost node and the missing device
    assert err == ""
    probe = out[out.index("probe:") :]
    assert f"modbus acme 127.0.0.1:{modbus_port} unit 1: reachable" in probe
    speed = float(probe.split("speed = ")[1].split()[0])
    assert speed == pytest.approx(truth.speed_rpm, abs=1.0)
    assert "modbus missing 127.0.0.1:" in probe and "UNREACHABLE" in probe
    assert f"opcua charlie opc.tcp://127.0.0.1:{opcua_port}/isthmus/: connected" in probe
    assert "ShaftSpeed = 1480" in probe
    assert "ghost (ns=2;s=C.NoSuchThing): BadNodeIdUnknown (0x80340000)" in probe
    assert "TLS TLSv1.3 ok, broker certificate verified" in probe or "TLS TLSv1.2 ok" in probe
    assert "MQTT 5 CONNECT accepted as gw-probe-test-probe" in probe
    assert probe.rstrip().endswith("probe found problems")


@pytest.mark.network
async def test_probe_reports_a_tls_refusal(mqtt_tls_broker: Any, tmp_path: Path) -> None:
    import asyncio

    from mqtt_broker import make_pki

    other = make_pki(tmp_path / "other-pki")  # a CA the broker's certificate is not from
    raw = base()
    del raw["assets"][0]["vibration"]
    raw["assets"][0]["rules"] = []
    raw["assets"][0]["fields"] = {"speed_rpm": {"tag": "vendor_a.speed"}}
    raw["sources"]["modbus"][0]["waveforms"] = []
    raw["sources"]["modbus"][0]["port"] = free_tcp_port()
    raw["sources"]["modbus"][0]["connect_timeout"] = 0.5
    raw["mqtt"] = {"url": mqtt_tls_broker.url, "ca_file": str(other.ca)}
    raw["outbox"] = {"path": str(tmp_path / "outbox.sqlite3")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "isthmus.cli",
        "check",
        "--probe",
        str(write(tmp_path, raw)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out_b, _ = await asyncio.wait_for(proc.communicate(), 60)
    out = out_b.decode()
    assert proc.returncode == 1
    assert f"mqtt 127.0.0.1:{mqtt_tls_broker.port}: TLS REFUSED: CERTIFICATE_VERIFY_FAILED" in out


# --- hostile arguments and files: rc 2 and one line on stderr, never a traceback ------------


def hostile_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    good = tmp_path / "good.toml"
    good.write_bytes((EXAMPLES / "minimal.toml").read_bytes())
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[gateway]\nname = "Kühler"\n'.encode("latin-1"))
    one_error = tmp_path / "one-error.toml"
    one_error.write_text("[gateway]\nqueue_size = 0\n")
    return [
        (["check", str(latin1)], "not UTF-8 text (byte 0xFC on line 2)"),
        (["run", str(latin1)], "not UTF-8 text"),
        (["check", str(tmp_path / "missing.toml")], "cannot read"),
        (["check", str(tmp_path)], "cannot read"),
        (["run", str(good), "--metrics-port", "70000"], "port 70000 is not in 1..65535"),
        (["run", str(good), "--metrics-port", "http"], "'http' is not a port number"),
        (["run", str(good), "--log-level", "bogus"], "unknown log level 'bogus'"),
        (["run", str(good), "--log-format", "xml"], "invalid choice: 'xml'"),
        (["demo", "--sample-rate", "0"], "--sample-rate"),
        (["demo", "--sample-rate", "1000"], "--sample-rate"),
        (["demo", "--sample-rate", "nan"], "--sample-rate"),
        (["demo", "--mqtt", "http://x"], "unsupported scheme 'http'"),
        (["demo", "--mqtt", "mqtt://u:pw@x"], "credentials in the URL"),
        (["demo", "--duration", "-5"], "--duration"),
        (["demo", "--duration", "inf"], "--duration"),
        (["demo", "--fault-after", "nan"], "--fault-after"),
        (["analyze"], "the following arguments are required"),
        (["bogus-command"], "invalid choice"),
        (["check"], "the following arguments are required: config"),
    ]


def test_hostile_arguments_give_one_line_and_rc_2(tmp_path: Path) -> None:
    for args, expected in hostile_cases(tmp_path):
        result = isthmus(*args, cwd=tmp_path)
        lines = result.stderr.splitlines()
        assert result.returncode == 2, (args, result.stderr)
        assert len(lines) == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr and expected in lines[0], (args, lines)


def test_busy_or_bad_metrics_address_is_one_line(tmp_path: Path) -> None:
    import socket

    config = tmp_path / "gateway.toml"
    raw = base()
    raw["outbox"] = {"path": str(tmp_path / "outbox.sqlite3")}
    config = write(tmp_path, raw)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for extra, expected in (
            (["--metrics-port", str(port)], "Address already in use"),
            (["--metrics-port", "9", "--metrics-host", "no such host!"], "cannot serve metrics"),
            (["--metrics-port", "9", "--metrics-host", "192.0.2.1"], "cannot serve metrics"),
        ):
            result = isthmus("run", str(config), "--console", *extra, cwd=tmp_path)
            lines = [line for line in result.stderr.splitlines() if "level=" not in line]
            assert result.returncode == 2, (extra, result.stderr)
            assert len(lines) == 1 and expected in lines[0], (extra, result.stderr)
            assert "Traceback" not in result.stderr
