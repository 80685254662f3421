"""Siemens S7 acquisition (python-snap7's pure-Python ``AsyncClient``): coalesced, read-only.

One :class:`S7Session` per PLC, each its own task, so a dead PLC never holds up
another. Inside a session:

* **Coalescing.** :func:`plan_blocks` merges the tags of one memory area (a data
  block, the inputs, outputs or flags) into byte blocks, bridging gaps of up to
  ``max_gap`` unused bytes; :func:`pack_requests` packs blocks into multi-variable
  read requests that fit the PDU size the PLC granted at connect time (request
  and response alike, at most 20 items each). A poll group of 100 scattered tags
  is typically one or two round trips.
* **Decoding** is one Rust call per block (:class:`isthmus._core.S7Plan`).
* **Isolation.** A multi-variable read answers each item with its own return
  code. An item the PLC rejects (object does not exist, address out of range,
  access denied) is split in two and re-read until the rejected tag stands alone;
  only that tag turns BAD with the PLC's reason, is re-probed once a minute, and
  the rest keep flowing. A value whose bytes are malformed (a STRING longer than
  its maximum, an impossible date) is BAD on its own, with the reason.
* **Health.** ``asyncio.timeout`` around connect and every request; a timeout or a
  cut connection drops the connection (the byte stream may be mid-frame) and
  reconnects with exponential backoff and full jitter; every tag reports BAD
  ``not connected (...)`` meanwhile. Requests are spaced at least
  ``1 / max_requests_per_second`` apart. Statistics in :class:`DeviceStats`.

Why not python-snap7's own multi-variable optimiser: it lives in the synchronous
client only, raises for the whole read when one item fails (no per-tag
isolation) and may put several requests in flight at once (past the
per-device rate limit). The packing here uses the same request encoder
(``S7Protocol.build_multi_read_request``) and the client's send/receive.

Read-only: the only S7 services this module sends are Setup Communication (in
``connect``) and Read Var (function 0x04). No write, block upload/download, PLC
control or SZL call exists here; a test scans the source to keep it so.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from isthmus.sources.config import S7_READ_OVERHEAD, S7Device, S7PollGroup, S7TagSpec
from isthmus.sources.modbus import (
    REPROBE_INTERVAL,
    DeviceStats,
    RateLimiter,
    ValuesCallback,
    cancel_and_wait,
)
from isthmus.sources.values import Quality, TagValue, exact_value

log = logging.getLogger(__name__)

# S7 area codes (S7 protocol "area" byte).
AREA_CODES = {"I": 0x81, "Q": 0x82, "M": 0x83, "DB": 0x84}
# At most this many items in one multi-variable read (S7-300/400 limit; snap7's MAX_VARS).
MAX_ITEMS = 20
# Read request: header 12 + function and item count 2 + 12 per item.
_REQUEST_HEADER = 14
_REQUEST_ITEM = 12
# Read response: header 12 + function and item count 2 + per item 4 + data (+1 fill if odd).
_RESPONSE_HEADER = 14
_RESPONSE_ITEM = 4
# Item return codes that concern one address, so splitting finds the culprit.
ITEM_ERRORS = {
    0x01: "hardware fault",
    0x03: "access denied (object not accessible)",
    0x05: "address out of range",
    0x06: "data type not supported",
    0x07: "data type inconsistent",
    0x0A: "object does not exist",
}


# --------------------------------------------------------------------------- plan


@dataclass
class S7Block:
    """One contiguous byte range of one area, serving ``tags``."""

    area: str
    db: int
    start: int
    length: int
    tags: list[S7TagSpec]
    rejected: str | None = None  # set when the PLC rejects this single tag
    next_probe: float = 0.0
    _plan: Any = field(default=None, repr=False)

    @property
    def end(self) -> int:
        return self.start + self.length

    def spec(self) -> tuple[int, int, int, int]:
        """(area code, db, start, length) for the request encoder."""
        return (AREA_CODES[self.area], self.db, self.start, self.length)

    def describe(self) -> str:
        where = f"DB{self.db}" if self.area == "DB" else self.area
        return f"{where} bytes {self.start}..{self.end - 1}: {', '.join(t.name for t in self.tags)}"

    def plan(self) -> Any:
        """The Rust decoder of this block's tags (built once)."""
        if self._plan is None:
            from isthmus._core import S7Plan

            self._plan = S7Plan(
                (t.name, t.location.byte, t.location.type, t.location.bit) for t in self.tags
            )
        return self._plan


def plan_blocks(tags: Sequence[S7TagSpec], max_gap: int, max_block: int) -> list[S7Block]:
    """Merge ``tags`` into the fewest byte blocks per area.

    Sorted by (area, db, byte), a tag joins the current block when it is in the
    same area, the unused gap before it is at most ``max_gap`` bytes and the
    block stays within ``max_block`` bytes.
    """
    out: list[S7Block] = []

    def key(t: S7TagSpec) -> tuple[str, int, int, int]:
        loc = t.location
        return (loc.area, loc.db, loc.byte, -loc.size)

    for tag in sorted(tags, key=key):
        loc = tag.location
        if out:
            cur = out[-1]
            new_end = max(cur.end, loc.end)
            same_area = (cur.area, cur.db) == (loc.area, loc.db)
            if same_area and loc.byte - cur.end <= max_gap and new_end - cur.start <= max_block:
                cur.length = new_end - cur.start
                cur.tags.append(tag)
                continue
        out.append(S7Block(loc.area, loc.db, loc.byte, loc.size, [tag]))
    return out


def max_block_bytes(pdu: int) -> int:
    """Data bytes one read item can carry in a PDU of ``pdu`` bytes."""
    return pdu - S7_READ_OVERHEAD


def pack_requests(blocks: Sequence[S7Block], pdu: int) -> list[list[S7Block]]:
    """Pack blocks into multi-variable reads whose request and response fit ``pdu`` bytes."""
    out: list[list[S7Block]] = []
    request = response = 0
    for block in blocks:
        data = _RESPONSE_ITEM + block.length + (block.length & 1)
        if (
            out
            and len(out[-1]) < MAX_ITEMS
            and request + _REQUEST_ITEM <= pdu
            and response + data <= pdu
        ):
            out[-1].append(block)
            request += _REQUEST_ITEM
            response += data
            continue
        out.append([block])
        request = _REQUEST_HEADER + _REQUEST_ITEM
        response = _RESPONSE_HEADER + data
    return out


@dataclass
class S7GroupPlan:
    """The blocks of one poll group (split further when the PLC rejects one)."""

    group: S7PollGroup
    blocks: list[S7Block]


def plan_s7_device(device: S7Device, pdu: int | None = None) -> list[S7GroupPlan]:
    """Coalesce every poll group of ``device`` for a PDU of ``pdu`` bytes (default: requested)."""
    limit = max_block_bytes(pdu or device.pdu_size)
    return [
        S7GroupPlan(group, plan_blocks(group.tags, device.max_gap, limit))
        for group in device.poll_groups
    ]


def describe_s7_plan(device: S7Device, pdu: int | None = None) -> list[str]:
    """Lines for ``isthmus check``: each group's blocks and round trips."""
    size = pdu or device.pdu_size
    lines: list[str] = []
    for plan in plan_s7_device(device, size):
        trips = len(pack_requests(plan.blocks, size))
        lines.append(
            f"poll group {plan.group.name!r} every {plan.group.interval:g} s: "
            f"{len(plan.blocks)} blocks in {trips} reads (PDU {size})"
        )
        lines.extend(f"  {block.describe()}" for block in plan.blocks)
    return lines


# --------------------------------------------------------------------------- session


class _Disconnect(Exception):
    """The connection must be dropped and re-established."""


@functools.lru_cache(maxsize=4096)
def _type_of(address: str) -> str:
    """The S7 data type an address reads (REAL, INT, ...), parsed once per address."""
    from isthmus.sources.s7address import parse_s7_address

    return parse_s7_address(address).type


def _ignore(values: list[TagValue]) -> None:
    """The default ``on_values``: values are dropped."""


class S7Session:
    """Reads one S7 PLC until closed; values go to ``on_values``.

    Use as an async context manager (the session runs as a background task)::

        async with S7Session(device, on_values=print) as session:
            await asyncio.sleep(10)
            print(session.stats.snapshot())

    ``on_values`` is called with the values of one poll round of one group (GOOD
    or BAD, never silently dropped), the same callback the Modbus session uses.
    """

    def __init__(self, device: S7Device, on_values: ValuesCallback | None = None) -> None:
        self.device = device
        self.on_values: ValuesCallback = on_values if on_values is not None else _ignore
        self.plan = plan_s7_device(device)
        self.stats = DeviceStats()
        self.pdu = device.pdu_size
        self.last_error: str | None = None
        self._limiter = RateLimiter(device.max_requests_per_second)
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> S7Session:
        self._task = asyncio.create_task(self.run(), name=f"s7:{self.device.name}")
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
        await self._drop()

    async def run(self) -> None:
        """Connect, read, and reconnect with backoff, forever."""
        backoff = self.device.backoff_initial
        while not self._closing:
            reason = "connection closed"
            good_before = self.stats.last_good_read
            try:
                await self._connect()
                async with asyncio.TaskGroup() as tasks:
                    for plan in self.plan:
                        tasks.create_task(self._poll(plan), name=f"poll:{plan.group.name}")
            except* (_Disconnect, OSError, TimeoutError) as group_exc:
                reason = "; ".join(str(e) or type(e).__name__ for e in group_exc.exceptions)
                log.warning("s7 %s: connection lost: %s", self.device.name, reason)
            except* Exception as group_exc:
                # a library surprise or a failing callback must not end acquisition for good
                reason = "; ".join(repr(e) for e in group_exc.exceptions)
                self.stats.errors += 1
                log.error(
                    "s7 %s: session failed, reconnecting", self.device.name, exc_info=group_exc
                )
            await self._drop()
            if self._closing:
                break
            if self.stats.last_good_read != good_before:
                backoff = self.device.backoff_initial  # it did answer: start over
            self.last_error = reason
            self._report_all_bad(f"not connected ({reason})")
            self.stats.reconnects += 1
            # full jitter: many gateways restarting together do not hit the PLC together
            await asyncio.sleep(random.uniform(0.5 * backoff, backoff))
            backoff = min(backoff * 2, self.device.backoff_max)

    async def _connect(self) -> None:
        from snap7 import AsyncClient
        from snap7.error import S7Error

        await self._drop()
        client = AsyncClient()
        client.pdu_length = self.device.pdu_size  # what we ask for; the PLC may grant less
        d = self.device
        try:
            async with asyncio.timeout(d.connect_timeout):
                await client.connect(d.host, d.rack, d.slot, tcp_port=d.port)
        except TimeoutError:
            await _quiet_disconnect(client)
            raise _Disconnect(f"connect to {d.host}:{d.port} timed out") from None
        except (S7Error, OSError) as exc:
            await _quiet_disconnect(client)
            raise _Disconnect(f"cannot connect to {d.host}:{d.port}: {exc}") from None
        self._client = client
        granted = int(client.pdu_length)
        if granted != self.pdu:
            # plan for what this PLC carries: blocks must fit its PDU
            self.pdu = granted
            self.plan = plan_s7_device(d, granted)
        self.stats.connected = True

    async def _drop(self) -> None:
        client, self._client = self._client, None
        self.stats.connected = False
        if client is not None:
            await _quiet_disconnect(client)

    # -- one request ----------------------------------------------------------

    async def _read(self, blocks: Sequence[S7Block]) -> list[bytes | int]:
        """One multi-variable read: per block its bytes or its item return code."""
        from snap7.error import S7ConnectionError, S7Error, S7TimeoutError

        client = self._client
        if client is None:
            raise _Disconnect("connection closed")
        await self._limiter.wait()
        request = client.protocol.build_multi_read_request([b.spec() for b in blocks])
        self.stats.requests += 1
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.device.request_timeout):
                response = await client._send_receive(request)
        except (TimeoutError, S7TimeoutError):
            self.stats.timeouts += 1
            # the answer may still arrive, or half of it: the stream is unusable
            raise _Disconnect(f"no answer within {self.device.request_timeout:g} s") from None
        except S7ConnectionError as exc:
            self.stats.errors += 1
            raise _Disconnect(str(exc)) from None
        except S7Error as exc:
            # a refusal of the whole request (header error class/code): the PLC is there
            self.stats.errors += 1
            raise _RequestRefused(str(exc)) from None
        self.stats.latencies.append(time.perf_counter() - began)
        items = _split_items(response.get("raw_data", b""), len(blocks))
        if items is None:
            self.stats.errors += 1
            raise _Disconnect("malformed read response")
        self.stats.last_good_read = time.time()
        return items

    # -- polling --------------------------------------------------------------

    async def _poll(self, plan: S7GroupPlan) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._closing:
            self._deliver(await self._read_group(plan))
            due += plan.group.interval
            now = loop.time()
            if due < now:
                self.stats.overruns += 1
                due = now
            await asyncio.sleep(due - now)

    async def _read_group(self, plan: S7GroupPlan) -> list[TagValue]:
        """One round: every block read (or reported), rejected items split until isolated."""
        now = time.monotonic()
        values: list[TagValue] = []
        pending: list[S7Block] = []
        for block in plan.blocks:
            if block.rejected is not None and now < block.next_probe:
                values += [self._bad(t, block.rejected) for t in block.tags]
            else:
                pending.append(block)
        while pending:
            split: list[S7Block] = []
            for request in pack_requests(pending, self.pdu):
                try:
                    items = await self._read(request)
                except _RequestRefused as exc:
                    values += [self._bad(t, str(exc)) for b in request for t in b.tags]
                    continue
                for block, item in zip(request, items, strict=True):
                    if isinstance(item, bytes):
                        block.rejected = None
                        values += self._decode(block, item)
                    else:
                        split += self._rejected(plan, block, item, values)
            pending = split
        return values

    def _rejected(
        self, plan: S7GroupPlan, block: S7Block, code: int, values: list[TagValue]
    ) -> list[S7Block]:
        """Mark a single-tag block rejected (its BAD value into ``values``), or split it in
        two (returned for re-reading)."""
        reason = f"{ITEM_ERRORS.get(code, 'item error')} (return code 0x{code:02X})"
        if len(block.tags) == 1:
            if block.rejected is None:
                log.warning(
                    "s7 %s: tag %s rejected: %s", self.device.name, block.tags[0].name, reason
                )
            block.rejected = reason
            block.next_probe = time.monotonic() + REPROBE_INTERVAL
            values.append(self._bad(block.tags[0], reason))  # re-probed in a minute
            return []
        tags = sorted(block.tags, key=lambda t: t.location.byte)
        half = len(tags) // 2
        limit = max_block_bytes(self.pdu)
        parts = plan_blocks(tags[:half], self.device.max_gap, limit)
        parts += plan_blocks(tags[half:], self.device.max_gap, limit)
        index = plan.blocks.index(block)
        plan.blocks[index : index + 1] = parts  # the split is kept
        return parts

    def _decode(self, block: S7Block, data: bytes) -> list[TagValue]:
        now = time.time()
        values, reasons = block.plan().decode_values(data, block.start)
        out: list[TagValue] = []
        source = self.device.name
        for tag, value, reason in zip(block.tags, values, reasons, strict=True):
            if reason is not None:
                out.append(self._bad(tag, f"decode: {reason}"))
                continue
            if tag.scale != 1.0 or tag.offset != 0.0:
                value = value * tag.scale + tag.offset
            value = exact_value(value, _type_of(tag.address), tag.scale, tag.offset)
            out.append(
                TagValue(source=source, tag=tag.name, value=value, unit=tag.unit, gateway_time=now)
            )
        return out

    def _bad(self, tag: S7TagSpec, reason: str) -> TagValue:
        return TagValue(
            source=self.device.name,
            tag=tag.name,
            value=None,
            unit=tag.unit,
            quality=Quality.BAD,
            reason=reason,
        )

    def _report_all_bad(self, reason: str) -> None:
        for plan in self.plan:
            values = [self._bad(t, reason) for b in plan.blocks for t in b.tags]
            if values:
                self._deliver(values)

    def _deliver(self, values: list[TagValue]) -> None:
        """The one output step: hand the values of one read to the gateway."""
        if values:
            self.on_values(values)


class _RequestRefused(Exception):
    """The PLC refused a whole request (an error in the response header)."""


def _split_items(raw: bytes, count: int) -> list[bytes | int] | None:
    """Per item of a multi-variable read response: its data, or its return code.

    None when the response does not hold ``count`` well-formed items.
    """
    out: list[bytes | int] = []
    offset = 0
    for index in range(count):
        if offset + 4 > len(raw):
            return None
        code, transport, length = struct.unpack_from(">BBH", raw, offset)
        offset += 4
        if code != 0xFF:
            out.append(code)
            continue
        # transport sizes 3 (bit), 4 (byte/word/dword) give the length in bits
        size = length // 8 if transport in (0x03, 0x04) else length
        if offset + size > len(raw):
            return None
        out.append(bytes(raw[offset : offset + size]))
        offset += size
        if index < count - 1 and size & 1:
            offset += 1  # fill byte before the next item
    return out


async def _quiet_disconnect(client: Any) -> None:
    try:
        async with asyncio.timeout(1.0):
            await client.disconnect()
    except Exception:  # already broken: nothing left to close cleanly
        log.debug("s7 disconnect failed", exc_info=True)


class S7Sources:
    """Several PLCs, one session each (a dead PLC cannot stall the others)."""

    def __init__(self, devices: Sequence[S7Device], on_values: ValuesCallback | None = None):
        self.sessions = {d.name: S7Session(d, on_values) for d in devices}

    async def __aenter__(self) -> S7Sources:
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
    "AREA_CODES",
    "ITEM_ERRORS",
    "S7Block",
    "S7GroupPlan",
    "S7Session",
    "S7Sources",
    "describe_s7_plan",
    "pack_requests",
    "plan_blocks",
    "plan_s7_device",
]
