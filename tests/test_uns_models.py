"""Settings, topics and models: validation naming the config path, schemas, envelopes."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import pytest

from isthmus.errors import ConfigError
from isthmus.uns.contract import contract, contract_fingerprint
from isthmus.uns.models import (
    MODELS,
    ActiveAlerts,
    Alert,
    Envelope,
    Motor,
    Pump,
    RotatingAsset,
    field_units,
    json_schema,
    new_message_id,
    wrap,
)
from isthmus.uns.settings import MqttSettings, OutboxSettings, convert_config
from isthmus.uns.topics import AssetPath, Leaf, gateway_status_topic

# -- settings -------------------------------------------------------------------------------


class Root(msgspec.Struct, forbid_unknown_fields=True):
    mqtt: MqttSettings
    outbox: OutboxSettings = msgspec.field(default_factory=OutboxSettings)


def load(text: str) -> Root:
    return convert_config(tomllib.loads(text), Root, "")


def test_toml_settings_load() -> None:
    root = load(
        """
        [mqtt]
        url = "mqtts://broker.plant.example:8884"
        protocol = "3.1.1"
        ca_file = "/etc/isthmus/ca.pem"
        cert_file = "/etc/isthmus/gw.pem"
        key_file = "/etc/isthmus/gw.key"
        username = "gw1"
        password_env = "ISTHMUS_MQTT_PASSWORD"
        [outbox]
        path = "/var/lib/isthmus/outbox.db"
        max_messages = 5000
        synchronous = "full"
        """
    )
    assert root.mqtt.tls and root.mqtt.host == "broker.plant.example" and root.mqtt.port == 8884
    assert root.outbox.synchronous == "full"
    assert MqttSettings(url="mqtt://h").port == 1883
    assert MqttSettings(url="mqtts://h").port == 8883


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[mqtt]\nurl = "http://x"', r"^mqtt\.url: unsupported scheme 'http'"),
        ('[mqtt]\nurl = "mqtt://"', r"^mqtt\.url: no host"),
        ('[mqtt]\nurl = "mqtt://u:pw@h"', r"^mqtt\.url: credentials in the URL are not accepted"),
        (
            '[mqtt]\npassword = "x"',
            r"^mqtt: Object contains unknown field `password`.*password_env",
        ),
        ('[mqtt]\nprotocol = "4"', r"^mqtt\.protocol: Invalid enum value '4'"),
        ("[mqtt]\nalert_qos = 0", r"^mqtt\.alert_qos: Invalid enum value 0"),
        ('[mqtt]\nurl = "mqtt://h"\nca_file = "ca.pem"', r"^mqtt\.url: TLS files .* mqtt://"),
        ('[mqtt]\nurl = "mqtts://h"\ncert_file = "c.pem"', r"^mqtt\.key_file: mutual TLS"),
        ('[mqtt]\npassword_env = "X"', r"^mqtt\.username: a password source"),
        (
            '[mqtt]\nusername = "u"\npassword_env = "X"\npassword_file = "f"',
            r"^mqtt\.password_file: give password_env or password_file",
        ),
        ("[mqtt]\nkeepalive_s = 0", r"^mqtt\.keepalive_s"),
        ("[mqtt]\n[outbox]\nmax_messages = 0", r"^outbox\.max_messages"),
        ('[mqtt]\n[outbox]\npolicy = "drop-alerts"', r"^outbox\.policy: Invalid enum"),
        ("[mqtt]\n[outbox]\nmax_byte = 1", r"^outbox: Object contains unknown field `max_byte`"),
    ],
)
def test_settings_errors_name_the_path(toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(toml)


def test_password_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_PW", "from-env")
    assert MqttSettings(username="u", password_env="GW_PW").password() == "from-env"
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert MqttSettings(username="u", password_file=str(secret)).password() == "from-file"
    monkeypatch.delenv("GW_PW")
    with pytest.raises(ConfigError, match="password_env: environment variable GW_PW is not set"):
        MqttSettings(username="u", password_env="GW_PW").password()
    with pytest.raises(ConfigError, match="password_file: cannot read"):
        MqttSettings(username="u", password_file=str(tmp_path / "nope")).password()
    assert MqttSettings().password() is None


# -- topics ---------------------------------------------------------------------------------


def test_isa95_topics() -> None:
    path = AssetPath.parse("acme/plant1/pumps/line1/p101")
    assert path.state == "acme/plant1/pumps/line1/p101/state"
    assert path.topic(Leaf.ACTIVE_ALERTS) == "acme/plant1/pumps/line1/p101/alerts/active"
    assert path.schema.endswith("/_schema") and path.vibration.endswith("/vibration")
    assert gateway_status_topic("acme", "plant1", "gw1") == "acme/plant1/_gateway/gw1/status"


def test_whole_topic_length_and_levels() -> None:
    from isthmus.uns.topics import MAX_TOPIC_BYTES, topic_problem

    assert topic_problem("acme/plant1/pumps/line1/p101/alerts/active") is None
    long_topic = "/".join(["x" * 1000] * 66)  # every level fine, the whole too long
    assert len(long_topic.encode()) > MAX_TOPIC_BYTES
    assert topic_problem(long_topic) == "topic of 66065 bytes is longer than MQTT's 65535"
    assert "U+0007" in (topic_problem("a/b\x07/c") or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("acme/plant1/pumps/line1", r"assets\.p101\.path: .* needs 5 levels"),
        ("acme/plant1//line1/p101", r"assets\.p101\.path\.area: empty topic level"),
        ("acme/plant1/pu\x07mps/line1/p101", r"path\.area: .* control characters U\+0007"),
        ("acme/plant1/pumps/line1/p\x85", r"path\.asset: .* control characters U\+0085"),
        ("acme/plant1/pumps/ line1/p101", r"path\.line: .* leading or trailing spaces"),
        ("acme/plant1/pumps/line1/$p101", r"path\.asset: .* may not start with '\$'"),
        ("acme/plant1/pumps/line1/" + "x" * 1025, r"path\.asset: .* longer than 1024"),
        ("acme/plant+1/pumps/line1/p101", r"assets\.p101\.path\.site: .* contains '\+'"),
        ("acme/plant1/pumps/line#/p101", r"path\.line: .* contains '#'"),
        ("$SYS/plant1/pumps/line1/p101", r"path\.enterprise: .* may not start with '\$'"),
    ],
)
def test_bad_topic_segments(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AssetPath.parse(text, where="assets.p101.path")


def test_asset_path_in_config_names_the_field() -> None:
    data = {"enterprise": "acme", "site": "s", "area": "a/b", "line": "l", "asset": "x"}
    with pytest.raises(ConfigError, match=r"^assets\[0\]\.path\.area: .* contains '/'"):
        convert_config(data, AssetPath, "assets[0].path")
    with pytest.raises(ConfigError, match="gateway_id: empty"):
        gateway_status_topic("acme", "plant1", "")


# -- models ---------------------------------------------------------------------------------


# A model's contract (wire names, types, bounds, required fields, enum values, units) is
# what consumers depend on: when it changes, bump the model's SCHEMA_VERSION and record the
# new fingerprint here. Documentation and the msgspec version rendering it do not count.
SCHEMA_FINGERPRINTS = {
    # v2: running/fault (bool), state (string) and field_quality.
    "urn:isthmus:uns:Pump:v2": "1b1a6848152e2b81",
    "urn:isthmus:uns:Motor:v2": "2063f61e891285d7",
    "urn:isthmus:uns:RotatingAsset:v2": "689bac334e4e4495",
    # v2: alerts carry typed evidence.
    "urn:isthmus:uns:Alert:v2": "a8b2eb74222538f5",
    "urn:isthmus:uns:ActiveAlerts:v2": "3d6b118fba7bc2ac",
}


@pytest.mark.parametrize("model", [Pump, Motor, RotatingAsset, Alert, ActiveAlerts])
def test_schema_is_versioned(model: type[Any]) -> None:
    schema = json_schema(model)
    assert schema["$id"] == f"urn:isthmus:uns:{model.__name__}:v{model.SCHEMA_VERSION}"
    assert SCHEMA_FINGERPRINTS[schema["$id"]] == contract_fingerprint(model), (
        f"{model.__name__}'s contract changed: bump SCHEMA_VERSION and update the fingerprint"
    )


def _variant(doc: str, bound: float, unit: str, zones: tuple[str, ...], required: bool) -> Any:
    """A small model built from parts, to see which edits move the fingerprint."""
    speed = Annotated[
        float, msgspec.Meta(ge=bound, description=doc, extra_json_schema={"x-unit": unit})
    ]
    zone = Literal[zones]  # type: ignore[valid-type]
    fields: list[Any] = [
        ("speed", speed if required else speed | None, msgspec.NODEFAULT if required else None),
        ("zone", zone | None, None),
    ]
    return msgspec.defstruct("Probe", fields, kw_only=True, module="probe")


def test_fingerprint_follows_the_contract_not_the_documentation() -> None:
    base = contract_fingerprint(_variant("Shaft speed", 0, "rpm", ("A", "B"), False))
    # documentation, including its whitespace, is not contract
    for doc in ("  Shaft   speed\n   of the pump  ", "", "Other words entirely"):
        assert contract_fingerprint(_variant(doc, 0, "rpm", ("A", "B"), False)) == base
    # each of these is a change a consumer sees
    assert contract_fingerprint(_variant("Shaft speed", 1, "rpm", ("A", "B"), False)) != base
    assert contract_fingerprint(_variant("Shaft speed", 0, "Hz", ("A", "B"), False)) != base
    assert contract_fingerprint(_variant("Shaft speed", 0, "rpm", ("A", "B", "C"), False)) != base
    assert contract_fingerprint(_variant("Shaft speed", 0, "rpm", ("A", "B"), True)) != base
    renamed = msgspec.defstruct(
        "Probe", [("speed", float | None, None)], kw_only=True, rename="camel"
    )
    other = msgspec.defstruct("Probe", [("speed_rpm", float | None, None)], kw_only=True)
    assert contract_fingerprint(renamed) != contract_fingerprint(other)


def test_fingerprint_ignores_docstring_layout() -> None:
    """msgspec 0.23 strips docstring indentation in the JSON Schema: not a contract change."""

    class Documented(msgspec.Struct, kw_only=True):
        """One line.

        Indented continuation that some msgspec versions keep and others strip.
        """

        value: float | None = None

    class Plain(msgspec.Struct, kw_only=True):
        value: float | None = None

    Plain.__qualname__ = Documented.__qualname__
    assert contract_fingerprint(Documented) == contract_fingerprint(Plain)
    assert contract(Alert)["structs"]  # Alert refers to AlertEvidence and EvidencePeak
    assert {n.rsplit(".", 1)[1] for n in contract(Alert)["structs"]} == {
        "Alert",
        "AlertEvidence",
        "EvidencePeak",
    }


def test_schema_declares_units_and_bounds() -> None:
    defs = json_schema(Pump)["$defs"]["Pump"]["properties"]
    temp = defs["bearing_temperature_c"]["anyOf"][0]
    assert temp["x-unit"] == "degC" and temp["minimum"] == -273.15
    assert defs["iso20816_zone"]["anyOf"][0]["enum"] == ["A", "B", "C", "D"]
    assert defs["running"]["anyOf"][0]["type"] == "boolean"
    assert defs["state"]["anyOf"][0]["type"] == "string"
    assert field_units(Pump) == {
        "running": None,
        "fault": None,
        "state": None,
        "speed_rpm": "rpm",
        "bearing_temperature_c": "degC",
        "discharge_pressure_bar": "bar",
        "vibration_velocity_rms_mm_s": "mm/s",
        "iso20816_zone": None,
        "bearing_diagnosis": None,
        "health": "1",
    }
    assert set(MODELS) == {"Pump", "Motor", "RotatingAsset"}


def test_envelope_round_trip_and_validation() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    env = wrap(Pump(speed_rpm=1480.0, health=0.9), quality="uncertain", timestamp=when)
    raw = msgspec.json.encode(env)
    back = msgspec.json.decode(raw, type=Envelope[Pump])
    assert back == env
    doc = json.loads(raw)
    assert doc["timestamp"] == "2026-01-02T03:04:05Z"
    assert doc["schema"] == "urn:isthmus:uns:Pump:v2" and len(doc["message_id"]) == 26
    doc["payload"]["health"] = 1.5
    with pytest.raises(msgspec.ValidationError, match="health"):
        msgspec.json.decode(json.dumps(doc), type=Envelope[Pump])
    alert = wrap(Alert(alert_id="x", state="raised", severity="alarm", message="m"))
    assert alert.schema == "urn:isthmus:uns:Alert:v2"


def test_message_ids_unique_and_time_ordered() -> None:
    ids = [new_message_id(now_ms=1_700_000_000_000 + i // 10) for i in range(2000)]
    assert len(set(ids)) == len(ids)
    assert [i[:10] for i in ids] == sorted(i[:10] for i in ids)  # time prefix sorts
    assert all(len(i) == 26 and i.isalnum() for i in ids)
