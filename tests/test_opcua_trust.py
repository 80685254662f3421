"""OPC UA server certificates are verified against a trust list before credentials are sent.

Real asyncua servers on loopback: the right server, and an impostor on the same port
with a different certificate; certificates made here with `cryptography` (tests/pki.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from isthmus import ConfigError
from isthmus.sources.config import OpcUaEndpoint, OpcUaNode
from isthmus.sources.opcua import OpcUaSession
from isthmus.sources.values import TagValue
from pki import Issued, issue
from proto_support import free_port, wait_for

pytestmark = pytest.mark.network

PASSWORD = "s3cret-pw"


class Seen:
    """What a server's user manager was handed: (username, password) per login attempt."""

    def __init__(self) -> None:
        self.logins: list[tuple[str | None, str | None]] = []


@asynccontextmanager
async def server(port: int, issued: Issued, seen: Seen, value: float) -> AsyncIterator[Any]:
    """An asyncua server offering Basic256Sha256 with ``issued``'s certificate, one variable."""
    from asyncua import ua
    from asyncua.crypto.permission_rules import User, UserRole
    from asyncua.server.server import Server

    class Users:
        def get_user(
            self, iserver: Any, username: Any = None, password: Any = None, certificate: Any = None
        ) -> Any:
            seen.logins.append((username, password))
            return User(role=UserRole.User, name=username)

    srv = Server(user_manager=Users())  # type: ignore[arg-type]
    await srv.init()
    srv.set_endpoint(f"opc.tcp://127.0.0.1:{port}/test/")
    await srv.load_certificate(str(issued.cert_path))
    await srv.load_private_key(str(issued.key_path))
    srv.set_security_policy(
        [
            ua.SecurityPolicyType.NoSecurity,
            ua.SecurityPolicyType.Basic256Sha256_Sign,
            ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        ]
    )
    srv.set_identity_tokens([ua.UserNameIdentityToken])
    ns = await srv.register_namespace("urn:isthmus:test")
    obj = await srv.nodes.objects.add_object(f"ns={ns};s=P", "P")
    await obj.add_variable(f"ns={ns};s=P.Speed", "Speed", ua.Variant(value, ua.VariantType.Double))
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = issue(tmp_path, "plant-ca", ca=True, days=365)
    return {
        "ca": ca,
        "real": issue(tmp_path, "real-server", issuer=ca),
        "self_signed": issue(tmp_path, "self-signed-server"),
        "impostor": issue(tmp_path, "impostor"),
        "client": issue(tmp_path, "gateway", uri="urn:freeopcua:client", server=False),
        "dir": tmp_path,
    }


def endpoint(
    port: int, client: Issued, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> OpcUaEndpoint:
    monkeypatch.setenv("TRUST_TEST_PW", PASSWORD)
    args: dict[str, Any] = {
        "name": "ua",
        "url": f"opc.tcp://127.0.0.1:{port}/test/",
        "security": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "certificate": str(client.cert_path),
        "private_key": str(client.key_path),
        "username": "operator",
        "password_env": "TRUST_TEST_PW",
        "nodes": [OpcUaNode(node_id="ns=2;s=P.Speed", name="speed", sampling_interval=0.05)],
        "timeout": 2.0,
        "keepalive_interval": 0.5,
        "backoff_initial": 0.1,
        "backoff_max": 0.2,
    }
    args.update(kw)
    return OpcUaEndpoint(**args)


class Latest(dict[str, TagValue]):
    def __call__(self, values: list[TagValue]) -> None:
        for v in values:
            self[v.tag] = v


async def test_server_in_trust_directory_is_accepted(
    pki: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "server.pem").write_bytes(pki["self_signed"].pem())
    port, seen, latest = free_port(), Seen(), Latest()
    async with server(port, pki["self_signed"], seen, 1480.0):
        ep = endpoint(port, pki["client"], monkeypatch, trust_list=str(trusted))
        async with OpcUaSession(ep, latest):
            assert await wait_for(lambda: "speed" in latest and latest["speed"].good, 20)
    assert latest["speed"].value == 1480.0
    assert ("operator", PASSWORD) in seen.logins


async def test_server_signed_by_a_trusted_ca_is_accepted(
    pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen, latest = free_port(), Seen(), Latest()
    ca_file = pki["dir"] / "ca.pem"
    ca_file.write_bytes(pki["ca"].pem())
    async with server(port, pki["real"], seen, 42.5):
        ep = endpoint(port, pki["client"], monkeypatch, mode="Sign", trust_list=str(ca_file))
        async with OpcUaSession(ep, latest):
            assert await wait_for(lambda: "speed" in latest and latest["speed"].good, 20)
    assert latest["speed"].value == 42.5


async def test_impostor_gets_no_credentials_and_the_error_names_its_certificate(
    pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the trust list holds the plant CA; the impostor's self-signed certificate is not from it
    ca_file = pki["dir"] / "ca.pem"
    ca_file.write_bytes(pki["ca"].pem())
    port, seen, latest = free_port(), Seen(), Latest()
    caplog.set_level(logging.DEBUG)
    async with server(port, pki["impostor"], seen, 666.0):
        ep = endpoint(port, pki["client"], monkeypatch, trust_list=str(ca_file))
        async with OpcUaSession(ep, latest) as session:
            # several retries (backoff <= 0.2 s)
            assert await wait_for(lambda: "speed" in latest, 10)
            await asyncio.sleep(1.5)
            stats = session.stats
            error = session.last_error or ""
    assert seen.logins == []  # not even the username reached the impostor
    assert stats.sessions == 0
    assert all(not v.good and v.value is None for v in latest.values())
    impostor: Issued = pki["impostor"]
    assert "CN=impostor" in error
    assert impostor.thumbprint in error
    assert str(ca_file) in error  # where to put it to trust it
    assert "BadNoValidCertificates" not in error
    ours = [
        r
        for r in caplog.records
        if r.name == "isthmus.sources.opcua" and impostor.thumbprint in r.getMessage()
    ]
    assert len(ours) == 1, [r.getMessage() for r in ours]  # once, not per retry
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]


@pytest.mark.parametrize(
    ("holder", "named_in_error"),
    [
        # another device holding a plant-CA key (an HMI): signed by the CA, names another host
        ({"name": "hmi-7", "hosts": ("hmi-7.plant",)}, "names hmi-7.plant but not '127.0.0.1'"),
        # a CA certificate offered as if it were the server's
        ({"name": "sub-ca", "ca": True}, "basicConstraints CA=true"),
    ],
)
async def test_ca_issued_certificate_must_name_this_server(
    pki: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    holder: dict[str, Any],
    named_in_error: str,
) -> None:
    ca_file = pki["dir"] / "ca.pem"
    ca_file.write_bytes(pki["ca"].pem())
    other = issue(pki["dir"], issuer=pki["ca"], **holder)
    port, seen, latest = free_port(), Seen(), Latest()
    async with server(port, other, seen, 666.0):
        ep = endpoint(port, pki["client"], monkeypatch, trust_list=str(ca_file))
        async with OpcUaSession(ep, latest) as session:
            assert await wait_for(lambda: "speed" in latest, 10)
            error = session.last_error or ""
    assert seen.logins == []  # the credentials never left
    assert all(not v.good and v.value is None for v in latest.values())
    assert f"CN={holder['name']}" in error
    assert other.thumbprint in error
    assert named_in_error in error, error


async def test_wrong_pin_says_which_certificate_was_offered(
    pki: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port, seen, latest = free_port(), Seen(), Latest()
    caplog.set_level(logging.DEBUG)
    async with server(port, pki["impostor"], seen, 666.0):
        ep = endpoint(
            port, pki["client"], monkeypatch, server_certificate=str(pki["real"].cert_path)
        )
        async with OpcUaSession(ep, latest) as session:
            assert await wait_for(lambda: session.last_error is not None, 10)
            await asyncio.sleep(0.5)
            error = session.last_error or ""
    assert seen.logins == []
    assert pki["impostor"].thumbprint in error
    assert f"server_certificate {pki['real'].cert_path}" in error
    assert "BadNoValidCertificates" not in error
    assert not [r for r in caplog.records if r.levelno >= logging.CRITICAL]


async def test_certificate_added_to_the_trust_directory_is_picked_up_without_restart(
    pki: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = tmp_path / "trusted-later"
    trusted.mkdir()
    (trusted / "other.pem").write_bytes(pki["impostor"].pem())
    port, seen, latest = free_port(), Seen(), Latest()
    async with server(port, pki["self_signed"], seen, 7.0):
        ep = endpoint(port, pki["client"], monkeypatch, trust_list=str(trusted))
        async with OpcUaSession(ep, latest) as session:
            assert await wait_for(lambda: session.last_error is not None, 10)
            assert seen.logins == []
            (trusted / "server.pem").write_bytes(pki["self_signed"].pem())
            assert await wait_for(lambda: "speed" in latest and latest["speed"].good, 20)


def test_secure_endpoint_without_trust_is_refused() -> None:
    with pytest.raises(ValueError, match="needs trust_list"):
        OpcUaEndpoint(
            name="ua",
            url="opc.tcp://127.0.0.1:4840/",
            security="Basic256Sha256",
            mode="Sign",
            certificate="c.der",
            private_key="k.pem",
        )


def test_credentials_in_the_url_are_refused_without_repeating_them() -> None:
    with pytest.raises(ValueError) as info:
        OpcUaEndpoint(name="ua", url=f"opc.tcp://operator:{PASSWORD}@127.0.0.1:4840/")
    assert "credentials in the URL" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_unreadable_trust_list_is_a_config_error(tmp_path: Path) -> None:
    from isthmus.sources.trust import load_certificates

    with pytest.raises(ConfigError, match="holds no certificate"):
        load_certificates(tmp_path)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"junk\.pem is not a PEM or DER certificate"):
        load_certificates(tmp_path)
