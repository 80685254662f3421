"""S7 source against a real python-snap7 server over loopback (a child process)."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from isthmus.errors import ConfigError
from isthmus.sources.config import S7Device, SourcesConfig, parse
from isthmus.sources.s7 import S7Session, pack_requests, plan_blocks, plan_s7_device
from isthmus.sources.values import Quality, TagValue
from proto_support import free_port, wait_for
from s7_peer import DB1_VALUES

pytestmark = pytest.mark.network

DB1_TAGS = [
    ("temperature", "DB1.DBD0:REAL"),
    ("running", "DB1.DBX4.3"),
    ("speed", "DB1.DBW6:INT"),
    ("count", "DB1.DBD8:DINT"),
    ("serial", "DB1.DBB12:STRING[20]"),
    ("energy", "DB1.DBB34:LREAL"),
    ("runtime", "DB1.DBD42:TIME"),
    ("service_date", "DB1.DBW46:DATE"),
    ("shift_start", "DB1.DBD48:TIME_OF_DAY"),
    ("stamp", "DB1.DBB52:DTL"),
    ("last_trip", "DB1.DBB64:DATE_AND_TIME"),
]
OTHER_TAGS = [
    ("pressure", "DB10.DBW4:INT", 615),
    ("rpm", "MW10", 1480),
    ("door_closed", "I0.1", True),
    ("lamp", "Q4.0", True),
]


class S7Peer:
    """tests/s7_peer.py in a child process; ``services`` lists what it was asked."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.log = tmp / f"s7-services-{self.port}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("s7_peer.py")),
                str(self.port),
                str(self.log),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def services(self) -> set[str]:
        return set(self.log.read_text().split()) if self.log.exists() else set()


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[S7Peer]:
    server = S7Peer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def device(port: int, tags: list[tuple[str, str]], **kw: Any) -> S7Device:
    raw = {
        "name": "plc1",
        "host": "127.0.0.1",
        "port": port,
        "request_timeout": 1.0,
        "connect_timeout": 1.0,
        "backoff_initial": 0.1,
        "backoff_max": 0.4,
        "max_requests_per_second": 200,
        "poll_groups": [
            {
                "name": "fast",
                "interval": 0.1,
                "tags": [{"name": n, "address": a} for n, a in tags],
            }
        ],
        **kw,
    }
    return parse(S7Device, raw)


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


async def test_reads_every_type_as_the_plc_holds_it(peer: S7Peer) -> None:
    tags = DB1_TAGS + [(n, a) for n, a, _ in OTHER_TAGS]
    got = Collector()
    async with S7Session(device(peer.port, tags), on_values=got) as session:
        assert await wait_for(lambda: len(got.rounds) >= 3, 10)
    latest = got.latest()
    expected = {**DB1_VALUES, **{n: v for n, _, v in OTHER_TAGS}}
    assert {k: v.value for k, v in latest.items()} == expected
    assert all(v.quality is Quality.GOOD and v.source == "plc1" for v in latest.values())
    # one round of 15 tags in five areas: one multi-variable read (coalesced per area)
    rounds = len(got.rounds)
    assert session.stats.requests <= rounds + 1
    assert session.stats.connected is False  # closed


async def test_only_read_services_reach_the_plc(peer: S7Peer) -> None:
    got = Collector()
    async with S7Session(device(peer.port, DB1_TAGS), on_values=got):
        assert await wait_for(lambda: len(got.rounds) >= 2, 10)
    # setup communication (0xf0) and read var (0x04), nothing else
    assert peer.services == {"0xf0", "0x04"}


async def test_unknown_db_and_past_the_end_are_isolated_and_reprobed_later(peer: S7Peer) -> None:
    tags = [
        ("temperature", "DB1.DBD0:REAL"),
        ("missing_db", "DB99.DBW0:INT"),
        ("past_end", "DB1.DBD78:REAL"),  # DB1 is 80 bytes: 78..81 runs past its end
        ("count", "DB1.DBD8:DINT"),
        ("pressure", "DB10.DBW4:INT"),
    ]
    got = Collector()
    async with S7Session(device(peer.port, tags, max_gap=100), on_values=got) as session:
        assert await wait_for(lambda: len(got.rounds) >= 4, 10)
        requests_before = session.stats.requests
        rounds_before = len(got.rounds)
        assert await wait_for(lambda: len(got.rounds) >= rounds_before + 5, 10)
        per_round = (session.stats.requests - requests_before) / (len(got.rounds) - rounds_before)
    latest = got.latest()
    assert latest["temperature"].value == 61.5 and latest["temperature"].good
    assert latest["count"].value == 123456 and latest["pressure"].value == 615
    assert latest["missing_db"].quality is Quality.BAD
    assert "object does not exist" in (latest["missing_db"].reason or "")
    assert latest["past_end"].quality is Quality.BAD
    assert "address out of range" in (latest["past_end"].reason or "")
    # the rejected tags are not re-read every round: the good ones need one read per round
    assert per_round <= 1.01
    # every round reports every tag (bad ones with their reason), none silently dropped
    assert all({v.tag for v in r} == {n for n, _ in tags} for r in got.rounds[1:])


async def test_malformed_bytes_are_bad_with_a_reason_alone(peer: S7Peer) -> None:
    # DB1.DBB6 holds INT -1234 (0xFB 0x2E): read as a STRING[2] header it claims 46
    # characters, more than 2; the REAL at byte 0 read as DATE_AND_TIME is not BCD.
    tags = [
        ("bad_string", "DB1.DBB6:STRING[2]"),
        ("bad_dt", "DB1.DBB0:DATE_AND_TIME"),
        ("speed", "DB1.DBW6:INT"),
    ]
    got = Collector()
    async with S7Session(device(peer.port, tags), on_values=got):
        assert await wait_for(lambda: len(got.rounds) >= 2, 10)
    latest = got.latest()
    assert latest["speed"].value == -1234 and latest["speed"].good
    assert latest["bad_string"].quality is Quality.BAD
    assert "STRING current length 46" in (latest["bad_string"].reason or "")
    assert latest["bad_dt"].quality is Quality.BAD
    assert "not BCD" in (latest["bad_dt"].reason or "")


async def test_killed_plc_turns_bad_then_recovers_with_backoff(tmp_path: Path) -> None:
    peer = S7Peer(tmp_path)
    peer.start()
    got = Collector()
    try:
        async with S7Session(device(peer.port, DB1_TAGS[:3]), on_values=got) as session:
            assert await wait_for(lambda: session.stats.last_good_read is not None, 10)
            peer.kill()  # SIGKILL: no goodbye on the wire
            assert await wait_for(
                lambda: any(
                    not v.good and "not connected" in (v.reason or "") for v in got.rounds[-1]
                ),
                10,
            )
            assert session.stats.connected is False
            reconnects = session.stats.reconnects
            await asyncio.sleep(1.0)
            # still trying, spaced by the backoff (0.1..0.4 s with jitter): a few, not hundreds
            tries = session.stats.reconnects - reconnects
            assert 1 <= tries <= 12
            bad_since = time.time()
            server = S7Peer(tmp_path)
            server.port = peer.port
            server.start()
            try:
                assert await wait_for(
                    lambda: got.rounds[-1][0].good and got.rounds[-1][0].gateway_time > bad_since,
                    10,
                )
            finally:
                server.kill()
    finally:
        peer.kill()
    assert got.latest()["temperature"].value == 61.5


async def test_silent_peer_times_out_and_never_stalls() -> None:
    """A listener that accepts TCP and never answers: BAD 'not connected', rounds go on."""
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
        dev = device(port, DB1_TAGS[:2], connect_timeout=0.3)
        async with S7Session(dev, on_values=got) as session:
            assert await wait_for(lambda: len(got.rounds) >= 3, 10)
        assert accepted, "the session did connect at TCP level"
        assert all(not v.good for r in got.rounds for v in r)
        assert "timed out" in (got.rounds[-1][0].reason or "")
        assert session.stats.reconnects >= 2
    finally:
        acceptor.cancel()
        for conn in accepted:
            conn.close()
        listener.close()


def test_plan_coalesces_per_area_and_respects_the_pdu() -> None:
    tags = [(f"t{i}", f"DB1.DBW{i * 4}:INT") for i in range(100)]
    dev = device(102, tags, max_gap=8)
    [plan] = plan_s7_device(dev, pdu=240)
    # 100 INTs spread over 398 bytes, a gap of 2 between them: blocks of at most 222 bytes
    assert all(b.length <= 240 - 18 for b in plan.blocks)
    assert sum(len(b.tags) for b in plan.blocks) == 100
    assert len(plan.blocks) == 2
    for request in pack_requests(plan.blocks, 240):
        response = 14 + sum(4 + b.length + (b.length & 1) for b in request)
        assert response <= 240 and 14 + 12 * len(request) <= 240
    # different areas never share a block
    mixed = plan_blocks(
        [
            t
            for t in device(102, [("a", "DB1.DBW0"), ("b", "DB2.DBW0"), ("c", "MW0")])
            .poll_groups[0]
            .tags
        ],
        max_gap=100,
        max_block=222,
    )
    assert len(mixed) == 3


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("DB1.DBD0:LREAL", "LREAL is 8 bytes"),
        ("DB0.DBW0", "data block number 0"),
        ("DB1.DBX0.8", "bit 8 outside 0..7"),
        ("MW10:FLOAT", "unknown S7 type"),
        ("DB1.DBB0:STRING[300]", "STRING needs a length"),
        ("DB1.DBB0:BOOL", "BOOL needs a bit address"),
        ("I0.1:INT", "a bit address is BOOL"),
        ("DB1.DBB0:", "empty type"),
        ("40001", "not S7 syntax"),
    ],
)
def test_bad_addresses_are_one_line_config_errors(address: str, message: str) -> None:
    raw = {"s7": [{"name": "p", "host": "h", "poll_groups": [
        {"name": "g", "interval": 1, "tags": [{"name": "x", "address": address}]}
    ]}]}  # fmt: skip
    with pytest.raises(ConfigError) as info:
        parse(SourcesConfig, raw, "sources")
    text = str(info.value)
    assert text.startswith("sources.s7[0].poll_groups[0].tags[0]: tag 'x'"), text
    assert message in text and "\n" not in text


def test_no_code_path_sends_an_s7_write_or_control_service() -> None:
    """Read-only toward OT: the S7 source calls none of the client's write/control methods."""
    import snap7

    package = Path(__import__("isthmus.sources", fromlist=["x"]).__file__).parent
    client_methods = {
        name for name in dir(snap7.AsyncClient) + dir(snap7.Client) if not name.startswith("__")
    }
    forbidden = {
        name
        for name in client_methods
        if re.search(
            r"write|upload|download|delete|plc_|start|stop|compress|copy_ram|set_|force|"
            r"password|szl|fill|clear",
            name,
        )
    }
    assert {"db_write", "write_area", "plc_stop", "download", "read_szl"} <= forbidden
    pattern = re.compile(r"\.(" + "|".join(sorted(map(re.escape, forbidden))) + r")\b")
    text = (package / "s7.py").read_text()
    assert not pattern.findall(text)
    # the check finds such calls where they exist
    assert pattern.findall("client.db_write(1, 0, data)")
    # and what the session does call is on the read side only
    called = set(re.findall(r"client\.(\w+)", text))
    assert called <= {"connect", "disconnect", "pdu_length", "protocol", "_send_receive"}, called


async def test_simulated_delta_pump_serves_its_truth_over_s7() -> None:
    """`isthmus simulate`'s S7 vendor: the values read are the pump's truth, faults included."""
    from isthmus.simulator.sim import PumpConfig, Simulator
    from isthmus.simulator.vendors import DELTA_S7_TAGS

    port = free_port()
    sim = Simulator([PumpConfig("P-104", "delta", 1480.0, port)], tick_interval=0)
    tags = [(name, address) for name, address, _, _ in DELTA_S7_TAGS]
    got = Collector()
    async with sim:
        sim.inject("P-104", "outer_race", 0.8)
        sim.s7["P-104"].update()
        truth = sim.truth("P-104")
        async with S7Session(device(port, tags), on_values=got):
            assert await wait_for(lambda: len(got.rounds) >= 2, 10)
    latest = got.latest()
    assert all(v.good for v in latest.values()), latest
    for name, _, _, value in DELTA_S7_TAGS:
        expected = value(truth)
        read = latest[name].value
        if isinstance(expected, bool):
            assert read is expected, name
        elif name == "pressure":
            assert read == round(expected), name  # an INT of centibar
        elif name == "run_hours":
            assert read == round(expected), name
        else:
            assert read == pytest.approx(expected, rel=1e-6), name  # REAL: float32
    assert latest["velocity_rms"].value > 0


async def test_real_and_scaled_integers_are_published_as_the_plc_meant_them(peer: S7Peer) -> None:
    # REAL 1.88 is 1.8799999952316284 as float32; INT 188 x 0.01 is 1.8800000000000001
    tags = [
        {"name": "level", "address": "DB10.DBD8:REAL"},
        {"name": "level_x100", "address": "DB10.DBW12:INT", "scale": 0.01},
        {"name": "level_scaled", "address": "DB10.DBD8:REAL", "scale": 2.0},
    ]
    config = device(peer.port, [], poll_groups=[{"name": "fast", "interval": 0.1, "tags": tags}])
    got = Collector()
    async with S7Session(config, on_values=got):
        assert await wait_for(lambda: len(got.latest()) == 3, 10)
    latest = got.latest()
    assert latest["level"].value == 1.88 and latest["level"].good
    assert latest["level_x100"].value == 1.88
    # a scaled REAL is float arithmetic on the float32: left as computed
    assert latest["level_scaled"].value == 2.0 * float(np.float32(1.88))
