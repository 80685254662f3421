"""OPC UA sessions against the simulator's real asyncua server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from isthmus.simulator import PumpConfig, Simulator
from isthmus.simulator.vendors import CHARLIE_VARIABLES
from isthmus.sources.config import OpcUaEndpoint, OpcUaNode
from isthmus.sources.opcua import OpcUaSession, quality_of
from isthmus.sources.values import Quality, TagValue
from proto_support import free_port, ramp_index, wait_for

# one simulator (asyncua servers take seconds to build) shared by the module's tests
pytestmark = [pytest.mark.network, pytest.mark.asyncio(loop_scope="module")]


def nodes(pump: str = "C") -> list[OpcUaNode]:
    return [
        OpcUaNode(node_id=f"ns=2;s={pump}.{name}", name=name, sampling_interval=0.05, unit=unit)
        for name, (unit, _) in CHARLIE_VARIABLES.items()
    ]


def endpoint(port: int, node_list: list[OpcUaNode], **kw: object) -> OpcUaEndpoint:
    args: dict[str, object] = {
        "name": "C",
        "url": f"opc.tcp://127.0.0.1:{port}/isthmus/",
        "nodes": node_list,
        "keepalive_interval": 0.5,
        "backoff_initial": 0.2,
        "backoff_max": 1.0,
        "timeout": 2.0,
    }
    args.update(kw)
    return OpcUaEndpoint(**args)  # type: ignore[arg-type]


class Latest(dict[str, TagValue]):
    def __call__(self, values: list[TagValue]) -> None:
        for v in values:
            self[v.tag] = v


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def charlie() -> AsyncIterator[tuple[Simulator, int]]:
    port = free_port()
    sim = Simulator(
        [PumpConfig("C", "charlie", 1480.0)],
        opcua_port=port,
        tick_interval=0,
        waveform_test_pattern=True,
        opcua_waveform_interval=0.5,
    )
    async with sim:
        yield sim, port


async def test_values_equal_truth_with_source_timestamps(charlie: tuple[Simulator, int]) -> None:
    sim, port = charlie
    latest = Latest()
    async with OpcUaSession(endpoint(port, nodes()), latest):
        ok = await wait_for(
            lambda: all(n in latest and latest[n].good for n in CHARLIE_VARIABLES), 30
        )
        assert ok, latest
    truth = sim.truth("C")
    for name, (unit, value) in CHARLIE_VARIABLES.items():
        got = latest[name]
        assert got.value == pytest.approx(value(truth), rel=1e-12), name
        assert got.unit == unit
        assert got.source_time == pytest.approx(truth.time, abs=1e-3)


async def test_unknown_node_is_bad_and_the_rest_flow(charlie: tuple[Simulator, int]) -> None:
    _sim, port = charlie
    latest = Latest()
    node_list = [*nodes(), OpcUaNode(node_id="ns=2;s=C.NoSuchThing", name="ghost")]
    async with OpcUaSession(endpoint(port, node_list), latest) as session:
        assert await wait_for(lambda: "ghost" in latest and "ShaftSpeed" in latest, 15)
        assert latest["ghost"].quality is Quality.BAD
        assert latest["ghost"].reason == "BadNodeIdUnknown"
        assert latest["ShaftSpeed"].good
        assert session.stats.bad_nodes == 1


async def test_unknown_node_is_logged_once_with_the_status_code(
    charlie: tuple[Simulator, int], caplog: pytest.LogCaptureFixture
) -> None:
    _sim, port = charlie
    latest = Latest()
    node_list = [*nodes(), OpcUaNode(node_id="ns=2;s=C.NoSuchThing", name="ghost")]
    async with OpcUaSession(endpoint(port, node_list), latest) as session:
        assert await wait_for(lambda: session.stats.bad_nodes == 1, 15)
        session._lost.set()  # a reconnect subscribes again and is refused again
        assert await wait_for(lambda: session.stats.sessions >= 2, 15)
        assert await wait_for(lambda: session.stats.bad_nodes == 1, 15)
    lines = [r.getMessage() for r in caplog.records if "ns=2;s=C.NoSuchThing" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "BadNodeIdUnknown (0x80340000)" in lines[0] and "'ghost'" in lines[0]


async def test_waveform_snapshots_go_into_the_ring_with_gaps(
    charlie: tuple[Simulator, int],
) -> None:
    _sim, port = charlie
    wave = OpcUaNode(
        node_id="ns=2;s=C.Waveform",
        name="wave",
        waveform=True,
        sample_rate=25600.0,
        sampling_interval=0.05,
        queue_size=4,
    )
    blocks: list[tuple[np.ndarray, int]] = []
    async with OpcUaSession(
        endpoint(port, [wave]), on_block=lambda ch, s, g: blocks.append((s.copy(), g))
    ) as session:
        assert await wait_for(lambda: len(blocks) >= 4, 30)
    assert "wave" in session.rings
    expected_next = None
    for samples, gap in blocks:
        idx = ramp_index(samples)
        assert np.all(np.diff(idx) % 16384 == 1)
        if expected_next is not None:
            # snapshots are 4096 samples every 0.5 s: the time between them is a gap
            assert gap > 0
            assert idx[0] == (expected_next + gap) % 16384
        expected_next = (idx[-1] + 1) % 16384


async def secure(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Self-signed server and client certificates: (Simulator kwargs, endpoint kwargs).

    A username needs security Basic256Sha256, so the password tests run over it.
    """
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    server_key, server_cert = tmp_path / "server-key.pem", tmp_path / "server-cert.der"
    client_key, client_cert = tmp_path / "client-key.pem", tmp_path / "client-cert.der"
    await setup_self_signed_certificate(
        server_key,
        server_cert,
        "urn:isthmus:simulator",
        "localhost",
        [ExtendedKeyUsageOID.SERVER_AUTH],
        {"commonName": "sim"},
    )
    await setup_self_signed_certificate(
        client_key,
        client_cert,
        "urn:freeopcua:client",
        "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "isthmus"},
    )
    sim_kw = {"opcua_certificate": server_cert, "opcua_private_key": server_key}
    ep_kw = {
        "security": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "certificate": str(client_cert),
        "private_key": str(client_key),
        "server_certificate": str(server_cert),
    }
    return sim_kw, ep_kw


async def test_user_password_from_env_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim_kw, ep_kw = await secure(tmp_path)
    port = free_port()
    sim = Simulator(
        [PumpConfig("C", "charlie")],
        opcua_port=port,
        tick_interval=0,
        opcua_users={"operator": "s3cret"},
        **sim_kw,
    )
    monkeypatch.setenv("ISTHMUS_TEST_PW", "s3cret")
    wrong = tmp_path / "pw"
    wrong.write_text("nope\n")
    async with sim:
        ok, bad = Latest(), Latest()
        good_ep = endpoint(
            port, nodes(), username="operator", password_env="ISTHMUS_TEST_PW", **ep_kw
        )
        bad_ep = endpoint(
            port, nodes(), name="C2", username="operator", password_file=str(wrong), **ep_kw
        )
        async with OpcUaSession(good_ep, ok), OpcUaSession(bad_ep, bad) as refused:
            assert await wait_for(lambda: "ShaftSpeed" in ok and ok["ShaftSpeed"].good, 15)
            assert await wait_for(lambda: refused.last_error is not None, 15)
            assert refused.stats.sessions == 0
            assert bad["ShaftSpeed"].quality is Quality.BAD
            assert "BadUserAccessDenied" in (refused.last_error or "")


@pytest.mark.asyncio(loop_scope="function")
async def test_unreadable_password_file_is_reported_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing secret is a named error, logged once without a traceback; retries go on."""
    missing = tmp_path / "no-such-password"
    sim_kw, ep_kw = await secure(tmp_path)
    port = free_port()
    sim = Simulator([PumpConfig("C", "charlie")], opcua_port=port, tick_interval=0, **sim_kw)
    ep = endpoint(port, nodes(), username="operator", password_file=str(missing), **ep_kw)
    latest = Latest()
    async with sim, OpcUaSession(ep, latest) as session:
        assert await wait_for(lambda: str(missing) in caplog.text, 10)
        await asyncio.sleep(2.5)  # several retries at backoff <= 1 s
        assert session.stats.sessions == 0
        assert session._task is not None and not session._task.done()
    assert str(missing) in (session.last_error or "")
    named = [r for r in caplog.records if str(missing) in r.getMessage()]
    assert len(named) == 1 and named[0].exc_info is None
    assert latest["ShaftSpeed"].quality is Quality.BAD


async def test_basic256sha256_sign_and_encrypt(tmp_path: Path) -> None:
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    server_key, server_cert = tmp_path / "server-key.pem", tmp_path / "server-cert.der"
    client_key, client_cert = tmp_path / "client-key.pem", tmp_path / "client-cert.der"
    await setup_self_signed_certificate(
        server_key,
        server_cert,
        "urn:isthmus:simulator",
        "localhost",
        [ExtendedKeyUsageOID.SERVER_AUTH],
        {"commonName": "sim"},
    )
    await setup_self_signed_certificate(
        client_key,
        client_cert,
        "urn:freeopcua:client",
        "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "isthmus"},
    )
    port = free_port()
    sim = Simulator(
        [PumpConfig("C", "charlie")],
        opcua_port=port,
        tick_interval=0,
        opcua_certificate=server_cert,
        opcua_private_key=server_key,
    )
    async with sim:
        for mode in ("Sign", "SignAndEncrypt"):
            latest = Latest()
            ep = endpoint(
                port,
                nodes(),
                security="Basic256Sha256",
                mode=mode,
                certificate=str(client_cert),
                private_key=str(client_key),
                server_certificate=str(server_cert),
            )
            async with OpcUaSession(ep, latest) as session:
                assert await wait_for(
                    lambda got=latest: "ShaftSpeed" in got and got["ShaftSpeed"].good, 20
                )
                assert session.security_policy_uri is not None
                assert session.security_policy_uri.endswith("#Basic256Sha256")
            await asyncio.sleep(0)


@pytest.mark.asyncio(loop_scope="function")
async def test_status_codes_become_quality() -> None:
    from asyncua import ua

    assert quality_of(ua.StatusCode(ua.StatusCodes.Good)) == (Quality.GOOD, None)
    q, reason = quality_of(ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue))
    assert (q, reason) == (Quality.UNCERTAIN, "UncertainLastUsableValue")
    q, reason = quality_of(ua.StatusCode(ua.StatusCodes.BadSensorFailure))
    assert (q, reason) == (Quality.BAD, "BadSensorFailure")


async def test_bad_status_from_the_server_becomes_bad_quality(
    charlie: tuple[Simulator, int],
) -> None:
    from asyncua import ua

    sim, port = charlie
    assert sim.opcua is not None
    history: list[TagValue] = []
    async with OpcUaSession(endpoint(port, nodes()), history.extend):
        assert await wait_for(lambda: any(v.tag == "Flow" and v.good for v in history), 30)
        sim.opcua.failures[("C", "Flow")] = ua.StatusCodes.BadSensorFailure
        try:
            assert await wait_for(
                lambda: (
                    (history[-1].tag == "Flow" and not history[-1].good)
                    or any(v.tag == "Flow" and v.quality is Quality.BAD for v in history)
                ),
                10,
            )
        finally:
            del sim.opcua.failures[("C", "Flow")]
        assert await wait_for(lambda: [v for v in history if v.tag == "Flow"][-1].good, 10)
    flow = [v for v in history if v.tag == "Flow"]
    failed = [v for v in flow if v.quality is Quality.BAD]
    assert failed[0].reason == "BadSensorFailure" and failed[0].value is None
    assert all(v.tag == "Flow" for v in failed)  # the other variables stayed good
