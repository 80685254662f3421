"""EtherNet/IP source against cpppo's Logix simulator over loopback (a child process)."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from isthmus.errors import ConfigError
from isthmus.sources.config import EnipDevice, SourcesConfig, parse
from isthmus.sources.enip import EnipSession, pack, plan_group
from isthmus.sources.values import Quality, TagValue
from proto_support import free_port, wait_for

pytestmark = pytest.mark.network

TAGS = [
    "Speed=REAL",
    "Count=DINT",
    "Level=INT",
    "Small=SINT",
    "Run=BOOL",
    "Temps=INT[10]",
    "Big=DINT[300]",
    "Total=LREAL",
    "Serial=SSTRING",
]


class EnipPeer:
    """tests/enip_peer.py (cpppo's server) in a child process; ``services`` is its log."""

    def __init__(self, tmp: Path, port: int | None = None, extra: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.tags = [*TAGS, *extra]
        self.log = tmp / f"enip-services-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        peer = str(Path(__file__).with_name("enip_peer.py"))
        self.proc = subprocess.Popen(
            [sys.executable, peer, str(self.log), "--no-config", "-U",
             "-a", f"127.0.0.1:{self.port}", *self.tags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, "cpppo server exited"
                time.sleep(0.1)
        raise AssertionError("cpppo server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def services(self, since: int = 0) -> set[str]:
        """Services logged after byte ``since`` of the log (the server keeps it open)."""
        return set(self.log.read_text()[since:].split()) if self.log.exists() else set()


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnipPeer]:
    server = EnipPeer(tmp_path_factory.mktemp("enip"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


def device(port: int, tags: list[dict[str, Any]], **kw: Any) -> EnipDevice:
    raw = {
        "name": "clx",
        "host": "127.0.0.1",
        "port": port,
        "route_path": "",
        "request_timeout": 1.0,
        "connect_timeout": 1.0,
        "backoff_initial": 0.1,
        "backoff_max": 0.4,
        "max_requests_per_second": 200,
        "poll_groups": [{"name": "fast", "interval": 0.1, "tags": tags}],
        **kw,
    }
    return parse(EnipDevice, raw)


class Collector:
    def __init__(self) -> None:
        self.rounds: list[list[TagValue]] = []

    def __call__(self, values: list[TagValue]) -> None:
        self.rounds.append(values)

    def latest(self) -> dict[str, TagValue]:
        out: dict[str, TagValue] = {}
        for values in self.rounds:
            out.update({v.tag: v for v in values})
        return out


ALL = [
    {"name": "speed", "tag": "Speed", "type": "REAL"},
    {"name": "count", "tag": "Count", "type": "DINT"},
    {"name": "level", "tag": "Level", "scale": 0.1},
    {"name": "small", "tag": "Small", "type": "SINT"},
    {"name": "run", "tag": "Run", "type": "BOOL"},
    {"name": "temps", "tag": "Temps[2]", "elements": 5},
    {"name": "total", "tag": "Total", "type": "LREAL"},
    {"name": "serial", "tag": "Serial", "type": "SSTRING"},
]


async def test_reads_atomic_types_and_slices_in_one_packet(peer: EnipPeer) -> None:
    got = Collector()
    async with EnipSession(device(peer.port, ALL), on_values=got) as session:
        assert await wait_for(lambda: len(got.rounds) >= 3, 15)
        rounds, requests = len(got.rounds), session.stats.requests
    latest = got.latest()
    assert set(latest) == {
        "speed", "count", "level", "small", "run", "total", "serial",
        *(f"temps[{i}]" for i in range(5)),
    }  # fmt: skip
    assert all(v.quality is Quality.GOOD for v in latest.values()), latest
    # cpppo's simulator starts every tag at zero
    assert latest["speed"].value == 0.0 and isinstance(latest["speed"].value, float)
    assert latest["count"].value == 0 and isinstance(latest["count"].value, int)
    assert latest["run"].value is False and latest["serial"].value == ""
    # eight tags, one Multiple Service Packet per round
    assert requests <= rounds + 1


async def test_large_array_is_read_in_fragments_completely(peer: EnipPeer) -> None:
    got = Collector()
    tags = [{"name": "big", "tag": "Big[0]", "elements": 300, "type": "DINT"}]
    async with EnipSession(device(peer.port, tags), on_values=got) as session:
        assert await wait_for(lambda: len(got.rounds) >= 2, 15)
    latest = got.latest()
    assert len(latest) == 300 and all(v.good and v.value == 0 for v in latest.values())
    # 1,200 bytes do not fit one reply: continued at the byte offset reached
    assert session.stats.requests >= 3 * len(got.rounds) - 3


async def test_unknown_tag_and_type_mismatch_are_isolated(peer: EnipPeer) -> None:
    got = Collector()
    tags = [
        {"name": "speed", "tag": "Speed"},
        {"name": "nope", "tag": "NoSuchTag"},
        {"name": "wrong", "tag": "Count", "type": "REAL"},
        {"name": "past", "tag": "Temps[20]"},
        {"name": "level", "tag": "Level"},
    ]
    async with EnipSession(device(peer.port, tags), on_values=got) as session:
        assert await wait_for(lambda: len(got.rounds) >= 3, 15)
        before, rounds = session.stats.requests, len(got.rounds)
        assert await wait_for(lambda: len(got.rounds) >= rounds + 4, 15)
        per_round = (session.stats.requests - before) / (len(got.rounds) - rounds)
    latest = got.latest()
    assert latest["speed"].good and latest["level"].good
    assert latest["nope"].quality is Quality.BAD
    assert "0x05" in (latest["nope"].reason or "")
    assert latest["past"].quality is Quality.BAD
    assert latest["wrong"].quality is Quality.BAD
    assert "type mismatch" in (latest["wrong"].reason or "")
    assert "DINT" in (latest["wrong"].reason or "")
    assert per_round <= 1.01  # the rejected tags wait for their re-probe, off the wire
    assert all({v.tag for v in r} == {t["name"] for t in tags} for r in got.rounds)


async def test_only_read_services_reach_the_controller(peer: EnipPeer) -> None:
    since = peer.log_size()
    got = Collector()
    async with EnipSession(device(peer.port, ALL), on_values=got):
        assert await wait_for(lambda: len(got.rounds) >= 2, 15)
    services = peer.services(since)
    assert "read_frag" in services
    assert services <= {"read_frag", "multiple", "0x65", "0x66"}, services


async def test_refused_then_killed_then_back(tmp_path: Path) -> None:
    port = free_port()
    got = Collector()
    tags = [{"name": "speed", "tag": "Speed"}]
    async with EnipSession(device(port, tags), on_values=got) as session:
        # nothing listens yet: refused, BAD with the reason, retried with backoff
        assert await wait_for(lambda: len(got.rounds) >= 2, 10)
        assert not got.rounds[-1][0].good and "not connected" in (got.rounds[-1][0].reason or "")
        server = EnipPeer(tmp_path, port)
        server.start()
        try:
            assert await wait_for(lambda: got.rounds[-1][0].good, 15)
            server.kill()  # SIGKILL mid-session
            assert await wait_for(lambda: not got.rounds[-1][0].good, 10)
            reconnects = session.stats.reconnects
            await asyncio.sleep(1.0)
            assert 1 <= session.stats.reconnects - reconnects <= 12
            again = EnipPeer(tmp_path, port)
            again.start()
            try:
                assert await wait_for(lambda: got.rounds[-1][0].good, 15)
            finally:
                again.kill()
        finally:
            server.kill()


async def test_silent_peer_times_out_and_never_stalls() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []

    async def accept_forever() -> None:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        while True:
            conn, _ = await loop.sock_accept(listener)
            accepted.append(conn)

    acceptor = asyncio.create_task(accept_forever())
    got = Collector()
    try:
        dev = device(port, [{"name": "speed", "tag": "Speed"}], connect_timeout=0.3)
        began = time.monotonic()
        async with EnipSession(dev, on_values=got) as session:
            assert await wait_for(lambda: len(got.rounds) >= 3, 15)
        assert time.monotonic() - began < 15
        assert accepted
        assert all(not v.good for r in got.rounds for v in r)
        assert session.stats.reconnects >= 2
    finally:
        acceptor.cancel()
        for conn in accepted:
            conn.close()
        listener.close()


async def test_cip_attributes_of_the_identity_object(peer: EnipPeer) -> None:
    """Generic CIP: Get Attribute Single for devices that are not Logix controllers."""
    got = Collector()
    dev = parse(
        EnipDevice,
        {
            "name": "drive",
            "host": "127.0.0.1",
            "port": peer.port,
            "route_path": "",
            "backoff_initial": 0.1,
            "max_requests_per_second": 200,
            "poll_groups": [
                {
                    "name": "identity",
                    "interval": 0.1,
                    "attributes": [
                        {"name": "vendor", "class_id": 1, "instance": 1, "attribute": 1,
                         "type": "UINT"},
                        {"name": "product", "class_id": 1, "instance": 1, "attribute": 7,
                         "type": "SSTRING"},
                        {"name": "missing", "class_id": 1, "instance": 1, "attribute": 99,
                         "type": "UINT"},
                        {"name": "too_wide", "class_id": 1, "instance": 1, "attribute": 1,
                         "type": "UDINT"},
                    ],
                }
            ],
        },
    )  # fmt: skip
    since = peer.log_size()
    async with EnipSession(dev, on_values=got):
        assert await wait_for(lambda: len(got.rounds) >= 2, 15)
    latest = got.latest()
    assert latest["vendor"].good and latest["vendor"].value == 1  # cpppo poses as Rockwell
    assert latest["product"].good and "LOGIX" in str(latest["product"].value).upper()
    assert latest["missing"].quality is Quality.BAD and "CIP status" in (
        latest["missing"].reason or ""
    )
    assert latest["too_wide"].quality is Quality.BAD
    assert "2 bytes returned, UDINT is 4" in (latest["too_wide"].reason or "")
    assert peer.services(since) <= {"get_attribute_single", "0x65", "0x66"}


def test_packets_respect_the_request_size() -> None:
    tags = [{"name": f"t{i}", "tag": f"Tag_{i:03d}"} for i in range(100)]
    dev = device(1, tags, max_request_bytes=500)
    reads = plan_group(dev, dev.poll_groups[0])
    packets = pack(reads, 500)
    assert sum(len(p) for p in packets) == 100
    assert all(4 + sum(r.request_bytes for r in p) <= 500 for p in packets)
    assert len(packets) <= 5


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ({"tag": "1abc"}, "not a Logix tag path"),
        ({"tag": "Temps", "elements": 3}, "needs a start index"),
        ({"tag": "Speed", "type": "FLOAT"}, "is not one of"),
        ({"tag": "Run", "type": "BOOL", "scale": 2.0}, "cannot be scaled"),
    ],
)
def test_bad_tags_are_one_line_config_errors(tag: dict[str, Any], message: str) -> None:
    raw = {"enip": [{"name": "c", "host": "h", "poll_groups": [
        {"name": "g", "interval": 1, "tags": [{"name": "x", **tag}]}
    ]}]}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse(SourcesConfig, raw, "sources")
    text = str(info.value)
    assert text.startswith("sources.enip[0].poll_groups[0].tags[0]: tag 'x'"), text
    assert message in text and "\n" not in text


def test_no_code_path_sends_a_cip_write() -> None:
    """Read-only toward OT: the EtherNet/IP source calls none of cpppo's write services."""
    from cpppo.server.enip import client

    package = Path(__import__("isthmus.sources", fromlist=["x"]).__file__).parent
    text = (package / "enip.py").read_text()
    forbidden = {n for n in dir(client.connector) if re.search(r"write|set_attribute|service", n)}
    assert {"write", "set_attribute_single"} <= forbidden
    pattern = re.compile(r"\.(" + "|".join(sorted(forbidden)) + r")\(")
    assert not pattern.findall(text)
    assert pattern.findall("conn.write(path, data=[1])")
    # operations never carry data (cpppo's marker of a write); the one method named is a read
    assert not re.search(r"[\"'](data|tag_type)[\"']", text)
    assert re.findall(r"[\"']method[\"']: *[\"'](\w+)", text) == ["get_attribute_single"]
    assert set(re.findall(r"conn\.(\w+)", text)) <= {"synchronous", "conn", "close"}


def test_real_and_scaled_integers_are_published_as_the_controller_meant_them() -> None:
    # cpppo hands a REAL over as the float64 of its float32: 1.88 -> 1.8799999952316284
    as_float32 = struct.unpack("<f", struct.pack("<f", 1.88))[0]
    assert as_float32 != 1.88
    session = EnipSession(
        device(
            1,
            [],
            poll_groups=[
                {
                    "name": "fast",
                    "interval": 0.1,
                    "tags": [
                        {"name": "level", "tag": "Level", "type": "REAL"},
                        {"name": "level_x100", "tag": "Raw", "type": "INT", "scale": 0.01},
                    ],
                    "attributes": [
                        {"name": "attr_level", "class_id": 4, "instance": 1, "attribute": 3,
                         "type": "REAL"},
                        {"name": "attr_x100", "class_id": 4, "instance": 1, "attribute": 4,
                         "type": "INT", "scale": 0.01},
                    ],
                }
            ],
        )
    )  # fmt: skip
    reads = {read.tag.name: read for _group, plan in session.groups for read in plan}
    [level] = session._values(reads["level"], 0, [as_float32], 0xCA)
    [scaled] = session._values(reads["level_x100"], 0, [188], 0xC3)
    [attr_level] = session._values(reads["attr_level"], 0, list(struct.pack("<f", 1.88)), None)
    [attr_x100] = session._values(reads["attr_x100"], 0, list(struct.pack("<h", 188)), None)
    assert [v.value for v in (level, scaled, attr_level, attr_x100)] == [1.88] * 4
    assert all(v.good for v in (level, scaled, attr_level, attr_x100))
