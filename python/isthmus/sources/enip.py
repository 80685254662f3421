"""EtherNet/IP (CIP) acquisition of Logix tags with cpppo's client: coalesced, read-only.

One :class:`EnipSession` per controller. cpppo's client is synchronous (blocking
sockets), so every call to it runs on the session's own single worker thread,
never on the event loop; the loop only awaits the results, under
``asyncio.timeout``.

* **Coalescing.** The tags of a poll group are packed into Multiple Service
  Packet requests of at most ``max_request_bytes`` (one round trip for dozens of
  tags); arrays and slices are read with Read Tag Fragmented, continued at the
  byte offset where the controller stopped until complete.
* **Isolation.** Each service inside a Multiple Service Packet answers with its
  own status: a tag the controller does not have (CIP status 0x05, path
  destination unknown), a bad path (0x04) or an index past the end of an array
  (0x05/0x08) turns only that tag BAD, with the reason; it is re-probed once a
  minute and left out of the packets until then. A value of another type than
  the configured ``type`` is BAD ("type mismatch"), not a wrong number.
* **Health.** Connect and every request are bounded by the configured timeouts
  (cpppo's own socket timeout, and an ``asyncio.timeout`` a little longer that
  closes the socket under a stuck worker); a refused, cut or silent connection
  drops it and reconnects with exponential backoff and full jitter, all tags
  BAD ``not connected (...)`` meanwhile. Requests are spaced at least
  ``1 / max_requests_per_second`` apart. Statistics in :class:`DeviceStats`.

Generic CIP devices (drives, I/O adapters) are read with Get Attribute Single
(0x0E) of a class/instance/attribute, one request each (no Multiple Service
Packet: not every device routes one).

Read-only: the only CIP services this module sends are Register Session (in
cpppo's ``connector``), Read Tag Fragmented (0x52), Get Attribute Single (0x0E)
and Multiple Service Packet (0x0A) carrying those reads. No write, no set
attribute; a test scans the source to keep it so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from isthmus.errors import SessionError
from isthmus.sources.config import EnipAttributeSpec, EnipDevice, EnipPollGroup, EnipTagSpec
from isthmus.sources.modbus import (
    REPROBE_INTERVAL,
    DeviceStats,
    RateLimiter,
    ValuesCallback,
    cancel_and_wait,
)
from isthmus.sources.values import Quality, TagValue, exact_value

log = logging.getLogger(__name__)

# CIP elementary data type codes (CIP Vol. 1, C-6.1) and their sizes in bytes.
CIP_TYPES = {
    0xC1: ("BOOL", 1),
    0xC2: ("SINT", 1),
    0xC3: ("INT", 2),
    0xC4: ("DINT", 4),
    0xC5: ("LINT", 8),
    0xC6: ("USINT", 1),
    0xC7: ("UINT", 2),
    0xC8: ("UDINT", 4),
    0xC9: ("ULINT", 8),
    0xCA: ("REAL", 4),
    0xCB: ("LREAL", 8),
    0xDA: ("SSTRING", 0),
}
# CIP general status codes (CIP Vol. 1, Appendix B) seen on tag reads.
CIP_STATUS = {
    0x04: "path segment error",
    0x05: "path destination unknown (no such tag)",
    0x06: "partial data",
    0x08: "service not supported",
    0x0A: "attribute list error",
    0x13: "not enough data",
    0x1E: "embedded service error",
    0x26: "path size invalid",
    0xFF: "general error",
}
# Bytes one read costs inside a Multiple Service Packet: its offset entry (2),
# service and path size (2), element count and byte offset (6).
_PACKET_OVERHEAD = 10
_PARTIAL = 0x06
# Get Attribute Single replies: CIP is little-endian.
_ATTRIBUTE_FORMATS = {
    "BOOL": "<B", "SINT": "<b", "INT": "<h", "DINT": "<i", "LINT": "<q", "USINT": "<B",
    "UINT": "<H", "UDINT": "<I", "ULINT": "<Q", "REAL": "<f", "LREAL": "<d",
}  # fmt: skip


@dataclass
class EnipRead:
    """One tag's (or CIP attribute's) read: its cpppo operation and state."""

    tag: EnipTagSpec | EnipAttributeSpec
    path: list[dict[str, Any]]
    route_path: Any
    rejected: str | None = None
    next_probe: float = 0.0

    @property
    def is_attribute(self) -> bool:
        return isinstance(self.tag, EnipAttributeSpec)

    def operation(self, offset: int = 0) -> dict[str, Any]:
        """A fresh cpppo operation (cpppo pops keys from what it is given)."""
        if isinstance(self.tag, EnipAttributeSpec):
            return {
                "method": "get_attribute_single",
                "path": list(self.path),
                "route_path": self.route_path,
            }
        op: dict[str, Any] = {
            "path": list(self.path),
            "elements": self.tag.elements,
            "route_path": self.route_path,
        }
        if offset:
            op["offset"] = offset
        return op

    @property
    def request_bytes(self) -> int:
        symbolic = sum(2 + len(s.get("symbolic", "")) + 1 for s in self.path)
        return _PACKET_OVERHEAD + symbolic + 4 * sum("element" in s for s in self.path)


def route_of(device: EnipDevice) -> Any:
    """cpppo's route path for ``"1/0"`` style text; False sends without routing."""
    if not device.route_path:
        return False
    numbers = [int(n) for n in device.route_path.split("/")]
    return [{"port": p, "link": link} for p, link in zip(numbers[::2], numbers[1::2], strict=True)]


def plan_group(device: EnipDevice, group: EnipPollGroup) -> list[EnipRead]:
    try:
        from cpppo.server.enip import client
    except ImportError:
        raise SessionError(
            f"enip {device.name}: EtherNet/IP needs cpppo: pip install 'isthmus[enip]'"
        ) from None

    route = route_of(device)
    reads = []
    for tag in group.tags:
        [op] = list(client.parse_operations([tag.tag]))
        reads.append(EnipRead(tag, op["path"], route))
    for attr in group.attributes:
        path = [
            {"class": attr.class_id},
            {"instance": attr.instance},
            {"attribute": attr.attribute},
        ]
        reads.append(EnipRead(attr, path, route))
    return reads


def pack(reads: Sequence[EnipRead], max_bytes: int) -> list[list[EnipRead]]:
    """Reads grouped into Multiple Service Packets of at most ``max_bytes`` of requests."""
    out: list[list[EnipRead]] = []
    size = 0
    for read in reads:
        cost = read.request_bytes
        # devices that are not controllers may not route Multiple Service Packets: alone
        if (
            out
            and size + cost <= max_bytes
            and not read.is_attribute
            and not out[-1][0].is_attribute
        ):
            out[-1].append(read)
            size += cost
            continue
        out.append([read])
        size = 4 + cost  # service, path and count of the packet itself
    return out


class _Disconnect(Exception):
    """The connection must be dropped and re-established."""


def _ignore(values: list[TagValue]) -> None:
    """The default ``on_values``: values are dropped."""


class EnipSession:
    """Reads one EtherNet/IP controller until closed; values go to ``on_values``.

    Use as an async context manager, like :class:`isthmus.sources.modbus.ModbusSession`.
    ``on_values`` is called with the values of one poll round of one group; an
    array slice of ``n`` elements gives ``n`` values named ``<name>[i]``.
    """

    def __init__(self, device: EnipDevice, on_values: ValuesCallback | None = None) -> None:
        self.device = device
        self.on_values: ValuesCallback = on_values if on_values is not None else _ignore
        self.groups = [(g, plan_group(device, g)) for g in device.poll_groups]
        self.stats = DeviceStats()
        self.last_error: str | None = None
        self._limiter = RateLimiter(device.max_requests_per_second)
        self._conn: Any = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()  # one request on the wire at a time
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> EnipSession:
        self._task = asyncio.create_task(self.run(), name=f"enip:{self.device.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading and drop the connection."""
        self._closing = True
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        self._drop()

    async def run(self) -> None:
        """Connect, read, and reconnect with backoff, forever."""
        backoff = self.device.backoff_initial
        while not self._closing:
            reason = "connection closed"
            good_before = self.stats.last_good_read
            try:
                await self._connect()
                async with asyncio.TaskGroup() as tasks:
                    for group, reads in self.groups:
                        tasks.create_task(self._poll(group, reads), name=f"poll:{group.name}")
            except* (_Disconnect, OSError, TimeoutError) as group_exc:
                reason = "; ".join(str(e) or type(e).__name__ for e in group_exc.exceptions)
                log.warning("enip %s: connection lost: %s", self.device.name, reason)
            except* Exception as group_exc:
                reason = "; ".join(repr(e) for e in group_exc.exceptions)
                self.stats.errors += 1
                log.error(
                    "enip %s: session failed, reconnecting", self.device.name, exc_info=group_exc
                )
            self._drop()
            if self._closing:
                break
            if self.stats.last_good_read != good_before:
                backoff = self.device.backoff_initial
            self.last_error = reason
            self._report_all_bad(f"not connected ({reason})")
            self.stats.reconnects += 1
            await asyncio.sleep(random.uniform(0.5 * backoff, backoff))
            backoff = min(backoff * 2, self.device.backoff_max)

    async def _connect(self) -> None:
        self._drop()
        self._worker = concurrent.futures.ThreadPoolExecutor(1, f"enip:{self.device.name}")
        d = self.device

        def connect() -> Any:
            from cpppo.server.enip import client

            return client.connector(host=d.host, port=d.port, timeout=d.connect_timeout)

        try:
            self._conn = await self._in_worker(connect, d.connect_timeout)
        except _Disconnect as exc:
            raise _Disconnect(f"cannot connect to {d.host}:{d.port}: {exc}") from None
        self.stats.connected = True

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.stats.connected = False
        if conn is not None:
            _close_quietly(conn)
        if self._worker is not None:
            # a worker stuck in a socket call ends when the socket closes; never wait for it
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None

    async def _in_worker(self, call: Any, seconds: float) -> Any:
        """Run ``call`` on the worker thread; any failure means the connection is gone."""
        worker = self._worker
        if worker is None:
            raise _Disconnect("connection closed")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(worker, call)
        try:
            # cpppo's socket timeout fires first; this one catches a worker that hangs anyway
            async with asyncio.timeout(seconds + 1.0):
                return await future
        except TimeoutError:
            self.stats.timeouts += 1
            raise _Disconnect(f"no answer within {seconds:g} s") from None
        except Exception as exc:  # cpppo raises socket errors, assertions, StopIteration...
            if _is_timeout(exc):
                self.stats.timeouts += 1
                raise _Disconnect(f"no answer within {seconds:g} s") from None
            self.stats.errors += 1
            raise _Disconnect(f"{type(exc).__name__}: {exc}") from None

    # -- one request ----------------------------------------------------------

    async def _request(self, ops: list[dict[str, Any]]) -> list[tuple[int, Any, int | None]]:
        """One Multiple Service Packet (or a single read): per op (status, values, CIP type)."""
        conn = self._conn
        if conn is None:
            raise _Disconnect("connection closed")
        timeout = self.device.request_timeout
        multiple = self.device.max_request_bytes if len(ops) > 1 else 0

        def call() -> list[tuple[int, Any, int | None]]:
            out: list[tuple[int, Any, int | None]] = []
            with conn:  # cpppo's parser lock, held for one exchange
                for _, _, _, reply, status, value in conn.synchronous(
                    operations=ops, multiple=multiple, fragment=True, timeout=timeout
                ):
                    code = status[0] if isinstance(status, tuple) else int(status or 0)
                    frag: Any = reply.get("read_frag") if reply is not None else None
                    kind = frag.get("type") if hasattr(frag, "get") else None  # True on errors
                    out.append((code, value, kind))
            return out

        async with self._lock:
            await self._limiter.wait()
            self.stats.requests += 1
            began = time.perf_counter()
            results: list[tuple[int, Any, int | None]] = await self._in_worker(call, timeout)
        if len(results) != len(ops):
            self.stats.errors += 1
            raise _Disconnect(f"{len(results)} replies to {len(ops)} reads")
        self.stats.latencies.append(time.perf_counter() - began)
        self.stats.last_good_read = time.time()
        return results

    # -- polling --------------------------------------------------------------

    async def _poll(self, group: EnipPollGroup, reads: list[EnipRead]) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._closing:
            self._deliver(await self._read_group(reads))
            due += group.interval
            now = loop.time()
            if due < now:
                self.stats.overruns += 1
                due = now
            await asyncio.sleep(due - now)

    async def _read_group(self, reads: list[EnipRead]) -> list[TagValue]:
        now = time.monotonic()
        values: list[TagValue] = []
        active = []
        for read in reads:
            if read.rejected is not None and now < read.next_probe:
                values += self._bad(read.tag, read.rejected)
            else:
                active.append(read)
        for packet in pack(active, self.device.max_request_bytes):
            results = await self._request([r.operation() for r in packet])
            for read, (status, data, kind) in zip(packet, results, strict=True):
                if status == _PARTIAL and isinstance(data, list) and not read.is_attribute:
                    status, data, kind = await self._continue(read, data, kind)
                values += self._values(read, status, data, kind)
        return values

    async def _continue(self, read: EnipRead, data: list[Any], kind: int | None) -> Any:
        """Read Tag Fragmented continued at the byte offset reached, until complete."""
        assert isinstance(read.tag, EnipTagSpec)
        size = CIP_TYPES.get(kind or 0, ("", 0))[1]
        if not size:
            return 0xFF, None, kind
        got = list(data)
        status = _PARTIAL
        while status == _PARTIAL and len(got) < read.tag.elements:
            [(status, more, kind)] = await self._request([read.operation(len(got) * size)])
            if not isinstance(more, list) or not more:
                return status or 0xFF, None, kind
            got += more
        return status, got, kind

    def _values(self, read: EnipRead, status: int, data: Any, kind: int | None) -> list[TagValue]:
        tag = read.tag
        if status != 0 or not isinstance(data, list):
            reason = f"CIP status 0x{status:02X} ({CIP_STATUS.get(status, 'error')})"
            if read.rejected is None:
                log.warning("enip %s: tag %s rejected: %s", self.device.name, tag.name, reason)
            read.rejected = reason
            read.next_probe = time.monotonic() + REPROBE_INTERVAL
            return self._bad(tag, reason)
        read.rejected = None
        if isinstance(tag, EnipAttributeSpec):
            return self._attribute_value(tag, data)
        if kind not in CIP_TYPES:
            return self._bad(tag, f"unsupported CIP type 0x{kind or 0:04X} (not atomic)")
        type_name = CIP_TYPES[kind][0]
        if tag.type is not None and type_name != tag.type:
            return self._bad(tag, f"type mismatch: the controller has {type_name}, not {tag.type}")
        if len(data) != tag.elements:
            return self._bad(tag, f"{len(data)} elements returned, {tag.elements} asked")
        now = time.time()
        scaled = tag.scale != 1.0 or tag.offset != 0.0
        out = []
        for name, raw in zip(tag.value_names, data, strict=True):
            value: Any = bool(raw) if type_name == "BOOL" else raw
            if scaled and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = value * tag.scale + tag.offset
            value = exact_value(value, type_name, tag.scale, tag.offset)
            out.append(
                TagValue(
                    source=self.device.name, tag=name, value=value, unit=tag.unit, gateway_time=now
                )
            )
        return out

    def _attribute_value(self, attr: EnipAttributeSpec, data: list[Any]) -> list[TagValue]:
        raw = bytes(int(b) & 0xFF for b in data)
        value: Any
        if attr.type == "SSTRING":
            if not raw or raw[0] > len(raw) - 1:
                return self._bad(attr, f"SSTRING of {len(raw)} bytes is malformed")
            value = raw[1 : 1 + raw[0]].decode("latin-1")
        else:
            fmt = _ATTRIBUTE_FORMATS[attr.type]
            if len(raw) != struct.calcsize(fmt):
                return self._bad(
                    attr, f"{len(raw)} bytes returned, {attr.type} is {struct.calcsize(fmt)}"
                )
            value = struct.unpack(fmt, raw)[0]
            if attr.type == "BOOL":
                value = bool(value)
            else:
                if attr.scale != 1.0 or attr.offset != 0.0:
                    value = value * attr.scale + attr.offset
                value = exact_value(value, attr.type, attr.scale, attr.offset)
        return [
            TagValue(
                source=self.device.name,
                tag=attr.name,
                value=value,
                unit=attr.unit,
                gateway_time=time.time(),
            )
        ]

    def _bad(self, tag: EnipTagSpec | EnipAttributeSpec, reason: str) -> list[TagValue]:
        return [
            TagValue(
                source=self.device.name,
                tag=name,
                value=None,
                unit=tag.unit,
                quality=Quality.BAD,
                reason=reason,
            )
            for name in tag.value_names
        ]

    def _report_all_bad(self, reason: str) -> None:
        for _, reads in self.groups:
            values = [v for r in reads for v in self._bad(r.tag, reason)]
            if values:
                self._deliver(values)

    def _deliver(self, values: list[TagValue]) -> None:
        """The one output step: hand the values of one read to the gateway."""
        if values:
            self.on_values(values)


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, TimeoutError) or "timeout" in text or "timed out" in text


def _close_quietly(conn: Any) -> None:
    try:
        if conn.conn is not None:
            conn.conn.shutdown(2)  # wakes a worker blocked in recv
    except OSError:
        pass
    try:
        conn.close()
    except Exception:  # already broken: nothing left to close cleanly
        log.debug("enip close failed", exc_info=True)


class EnipSources:
    """Several controllers, one session each."""

    def __init__(self, devices: Sequence[EnipDevice], on_values: ValuesCallback | None = None):
        self.sessions = {d.name: EnipSession(d, on_values) for d in devices}

    async def __aenter__(self) -> EnipSources:
        for session in self.sessions.values():
            await session.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for session in self.sessions.values():
            await session.close()


__all__ = [
    "CIP_STATUS",
    "CIP_TYPES",
    "EnipRead",
    "EnipSession",
    "EnipSources",
    "pack",
    "plan_group",
    "route_of",
]
