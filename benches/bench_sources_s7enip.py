"""Session overhead of the S7 and EtherNet/IP sources: CPU per read of 100 tags vs the bare client.

The issue's target: the session may cost at most 1.5x the CPU of a direct loop
with the same client library. Both sides read the same 100 tags from the same
peer (a python-snap7 server / cpppo's Logix simulator, each in a child process, so
their CPU is not counted) in the same run, interleaved, and this process's CPU
time (all threads: the EtherNet/IP session's worker included) is divided by the
number of reads. The session side runs its real read path (packing, rate limiter,
request, decode in Rust, one TagValue per tag, the callback); the bare side is what
a user of the library writes:

* S7: python-snap7's ``AsyncClient.db_read`` of the 400-byte block, then one
  ``snap7.util.get_real`` per tag into a dict.
* EtherNet/IP: cpppo's ``connector.synchronous`` over the 100 parsed operations
  (Multiple Service Packets of 500 bytes), values into a dict.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from snap7 import util

from isthmus.sources.config import EnipDevice, S7Device, parse
from isthmus.sources.enip import EnipSession
from isthmus.sources.s7 import S7Session
from test_proto_enip import EnipPeer
from test_proto_s7 import S7Peer

TARGET = 1.5


def _cpu_per_read(run: Any, reads: int) -> float:
    began = time.process_time()
    run(reads)
    return (time.process_time() - began) / reads


def _ratio(session_side: Any, bare_side: Any, reads: int, repeats: int = 5) -> tuple[float, ...]:
    ours, bare = [], []
    for _ in range(repeats):  # interleaved: a machine slowing down slows both
        ours.append(_cpu_per_read(session_side, reads))
        bare.append(_cpu_per_read(bare_side, reads))
    o, b = statistics.median(ours), statistics.median(bare)
    return o, b, o / b


def _line(name: str, o: float, b: float, ratio: float) -> tuple[str, str, str]:
    status = "ok" if ratio <= TARGET else "MISS"
    return (
        name,
        f"{ratio:.2f}x the bare client's CPU",
        f"{o * 1e6:.0f} vs {b * 1e6:.0f} us per read of 100 tags; target <= {TARGET} {status}",
    )


def test_s7_session_cpu_per_read(tmp_path: Path, report: Any, benchmark: Any) -> None:
    from snap7 import AsyncClient

    peer = S7Peer(tmp_path)
    peer.start()
    device = parse(
        S7Device,
        {
            "name": "plc",
            "host": "127.0.0.1",
            "port": peer.port,
            "max_requests_per_second": 1e6,
            "poll_groups": [
                {
                    "name": "g",
                    "interval": 1.0,
                    "tags": [
                        {"name": f"t{i}", "address": f"DB20.DBD{4 * i}:REAL"} for i in range(100)
                    ],
                }
            ],
        },
    )
    loop = asyncio.new_event_loop()
    try:
        seen: list[int] = []
        session = S7Session(device, on_values=lambda values: seen.append(len(values)))
        loop.run_until_complete(session._connect())
        [plan] = session.plan
        client = AsyncClient()
        loop.run_until_complete(client.connect("127.0.0.1", 0, 1, tcp_port=peer.port))
        names = [(f"t{i}", 4 * i) for i in range(100)]

        async def session_reads(n: int) -> None:
            for _ in range(n):
                session._deliver(await session._read_group(plan))

        async def bare_reads(n: int) -> None:
            for _ in range(n):
                data = await client.db_read(20, 0, 400)
                values = {name: util.get_real(data, at) for name, at in names}
                assert len(values) == 100

        benchmark.group = "s7: session CPU per read of 100 tags"
        benchmark.extra_info["role"] = "isthmus"
        o, b, ratio = benchmark.pedantic(
            _ratio,
            args=(
                lambda n: loop.run_until_complete(session_reads(n)),
                lambda n: loop.run_until_complete(bare_reads(n)),
                200,
            ),
            rounds=1,
            iterations=1,
        )
        assert set(seen) == {100}
        report(*_line("s7 session vs snap7 AsyncClient loop", o, b, ratio))
        loop.run_until_complete(client.disconnect())
        loop.run_until_complete(session.close())
    finally:
        loop.close()
        peer.kill()


def test_enip_session_cpu_per_read(tmp_path: Path, report: Any, benchmark: Any) -> None:
    from cpppo.server.enip import client

    kinds = ["REAL", "DINT", "INT", "BOOL"]
    extra = [f"T{i:03d}={kinds[i % 4]}" for i in range(100)]
    peer = EnipPeer(tmp_path, extra=extra)
    peer.start()
    device = parse(
        EnipDevice,
        {
            "name": "clx",
            "host": "127.0.0.1",
            "port": peer.port,
            "route_path": "",
            "request_timeout": 5.0,
            "max_requests_per_second": 1e6,
            "poll_groups": [
                {
                    "name": "g",
                    "interval": 1.0,
                    "tags": [{"name": f"t{i}", "tag": f"T{i:03d}"} for i in range(100)],
                }
            ],
        },
    )
    loop = asyncio.new_event_loop()
    try:
        seen: list[int] = []
        session = EnipSession(device, on_values=lambda values: seen.append(len(values)))
        loop.run_until_complete(session._connect())
        [(_, reads)] = session.groups
        conn = client.connector(host="127.0.0.1", port=peer.port, timeout=5.0)
        tags = [f"T{i:03d}" for i in range(100)]

        async def session_reads(n: int) -> None:
            for _ in range(n):
                session._deliver(await session._read_group(reads))

        def bare_reads(n: int) -> None:
            for _ in range(n):
                ops = client.parse_operations(tags, route_path=False)
                with conn:
                    replies = conn.synchronous(
                        operations=ops, multiple=500, fragment=True, timeout=5.0
                    )
                    values = {tag: r[5][0] for tag, r in zip(tags, replies, strict=True)}
                assert len(values) == 100

        benchmark.group = "enip: session CPU per read of 100 tags"
        benchmark.extra_info["role"] = "isthmus"
        o, b, ratio = benchmark.pedantic(
            _ratio,
            args=(lambda n: loop.run_until_complete(session_reads(n)), bare_reads, 4, 3),
            rounds=1,
            iterations=1,
        )
        assert set(seen) == {100}
        report(*_line("enip session vs cpppo connector loop", o, b, ratio))
        conn.close()
        loop.run_until_complete(session.close())
    finally:
        loop.close()
        peer.kill()
