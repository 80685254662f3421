"""Modbus TCP acquisition (pymodbus asyncio client): coalesced polling and waveform streams.

One :class:`ModbusSession` per device, each its own task, so a dead or slow
device never holds up another. Inside a session:

* **Coalescing.** :func:`plan_reads` merges the tags of one register type and
  poll group into the fewest reads within the protocol limits (125 registers,
  2000 bits), bridging gaps of up to ``max_gap`` unused registers (bits:
  ``16 * max_gap``). :func:`plan_device` gives the whole plan (for ``isthmus
  check``).
* **Isolation.** If the device rejects a read with an address-type exception
  (illegal function / data address / data value), the read is split in two and
  retried until the rejected tag stands alone; only that tag turns BAD, is
  re-probed once a minute, and the rest keep flowing. The split is kept.
* **Waveform streams.** A :class:`~isthmus.sources.config.WaveformBlock` is
  read slot by slot into a :class:`isthmus.SampleRing`; the block sequence
  counter finds repeated blocks (not yet ready: wait) and skipped ones
  (overwritten before we read them: reported to the ring as a gap). By default
  (``waveform_reader = "rust"``) a Rust thread (:class:`isthmus._core.WaveformAcquisition`,
  its own read-only connection, function codes 3 and 4 only) follows the blocks
  and writes straight into the rings; this session starts, supervises (statistics,
  log lines, ``last_error``) and stops it. ``"pymodbus"`` keeps the older asyncio
  path below (:class:`_BlockStream`), which follows the same sequence.
* **Health.** ``asyncio.timeout`` around every request; reconnect with
  exponential backoff and equal jitter; a per-device request-rate limit
  (requests are spaced at least ``1 / max_requests_per_second`` apart);
  statistics in :class:`DeviceStats`.

Read-only: this module calls only ``read_coils``, ``read_discrete_inputs``,
``read_holding_registers`` and ``read_input_registers``; the Rust waveform
client can only build function codes 3 and 4.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from isthmus.errors import DecodeError, SessionError
from isthmus.sources.config import ModbusDevice, PollGroup, TagSpec, WaveformBlock
from isthmus.sources.values import Quality, TagValue, ValueBatch, float32_value, scaled_digits

log = logging.getLogger(__name__)

# Exception codes that mean "this address/function is wrong", so splitting the
# read can find the culprit. Others (4 device failure, 6 busy, 10/11 gateway)
# concern the whole device.
_TAG_EXCEPTIONS = {1: "illegal function", 2: "illegal data address", 3: "illegal data value"}
_DEVICE_EXCEPTIONS = {
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}
REPROBE_INTERVAL = 60.0  # s between re-reads of a rejected tag
TIMEOUTS_BEFORE_RECONNECT = 2
SUPERVISE_INTERVAL = 0.25  # s between looks at the Rust waveform reader
# the Rust reader's counters, added into DeviceStats as they grow
_WAVE_COUNTERS = (
    "requests",
    "errors",
    "timeouts",
    "reconnects",
    "blocks",
    "samples",
    "gap_samples",
)
_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


# --------------------------------------------------------------------------- plan


@dataclass
class ReadRequest:
    """One coalesced read: ``count`` registers (or bits) from ``start``, serving ``tags``."""

    register: str
    start: int
    count: int
    tags: list[TagSpec]
    rejected: str | None = None  # set when the device rejects this single tag
    next_probe: float = 0.0
    _decoder: Any = field(default=None, repr=False)
    # Tag names in decode order, one tuple per request (consumers cache routes by it), and
    # per-tag exactness fixes: (index, float32?, decimals of the scaling or None).
    _names: tuple[str, ...] | None = field(default=None, repr=False)
    _units: tuple[str | None, ...] = field(default=(), repr=False)
    _exact: list[tuple[int, bool, int | None]] | None = field(default=None, repr=False)

    def names(self) -> tuple[str, ...]:
        """The request's tag names in decode order (the same tuple on every call)."""
        if self._names is None or len(self._names) != len(self.tags):
            self._names = tuple(t.name for t in self.tags)
            self._units = tuple(t.unit for t in self.tags)
            self._exact = None
        return self._names

    def exactness(self) -> list[tuple[int, bool, int | None]]:
        """Tags whose decoded float64 needs a fix to be the value the device meant."""
        if self._exact is None:
            fixes = []
            for i, t in enumerate(self.tags):
                is_f32 = t.dtype == "float32" and t.scale == 1.0 and t.offset == 0.0
                digits = None
                if t.dtype not in ("float32", "float64", "string", "bit", "float16"):
                    digits = scaled_digits(t.scale, t.offset)
                if is_f32 or digits is not None:
                    fixes.append((i, is_f32, digits))
            self._exact = fixes
        return self._exact

    def describe(self) -> dict[str, Any]:
        """Plain-data view for ``isthmus check``."""
        out: dict[str, Any] = {
            "register": self.register,
            "start": self.start,
            "count": self.count,
            "tags": [t.name for t in self.tags],
        }
        if self.rejected:
            out["rejected"] = self.rejected
        return out


def plan_reads(
    tags: Sequence[TagSpec],
    max_gap: int = 8,
    max_registers: int = 125,
    max_bits: int = 2000,
) -> list[ReadRequest]:
    """Merge ``tags`` (one register type) into the fewest reads.

    Sorted by address, a tag joins the current read when the unused gap
    before it is at most ``max_gap`` registers (``16 * max_gap`` bits) and the
    read stays within ``max_registers`` (``max_bits``). Greedy extension is
    optimal here: any read that could take the next tag is at least as long.
    """
    if not tags:
        return []
    kinds = {t.register for t in tags}
    if len(kinds) != 1:
        raise ValueError(f"plan_reads takes one register type, got {sorted(kinds)}")
    kind = kinds.pop()
    bits = kind in ("coil", "discrete")
    limit = max_bits if bits else max_registers
    gap = max_gap * 16 if bits else max_gap
    out: list[ReadRequest] = []
    for tag in sorted(tags, key=lambda t: (t.address, t.width)):
        end = tag.address + tag.width
        if out:
            cur = out[-1]
            cur_end = cur.start + cur.count
            new_end = max(cur_end, end)
            if tag.address - cur_end <= gap and new_end - cur.start <= limit:
                cur.count = new_end - cur.start
                cur.tags.append(tag)
                continue
        out.append(ReadRequest(kind, tag.address, tag.width, [tag]))
    return out


@dataclass
class GroupPlan:
    """The reads of one poll group."""

    group: PollGroup
    requests: list[ReadRequest]


@dataclass
class DevicePlan:
    """Every read a session issues for one device."""

    device: ModbusDevice
    groups: list[GroupPlan]

    @property
    def request_count(self) -> int:
        """Reads per round of all poll groups."""
        return sum(len(g.requests) for g in self.groups)

    def describe(self) -> dict[str, Any]:
        """Plain-data view (JSON-friendly) of the plan."""
        return {
            "device": self.device.name,
            "groups": [
                {
                    "name": g.group.name,
                    "interval": g.group.interval,
                    "requests": [r.describe() for r in g.requests],
                }
                for g in self.groups
            ],
            "waveforms": [
                {
                    "name": w.name,
                    "channel": w.channel,
                    "register": w.register,
                    "slots": w.slots,
                    "samples": w.samples,
                    "dtype": w.dtype,
                    "sample_rate": w.sample_rate,
                    "reads_per_second": w.sample_rate / w.samples,
                }
                for w in self.device.waveforms
            ],
        }


def plan_device(device: ModbusDevice) -> DevicePlan:
    """Coalesce every poll group of ``device`` (tags are grouped by register type)."""
    groups = []
    for group in device.poll_groups:
        requests: list[ReadRequest] = []
        for kind in ("coil", "discrete", "holding", "input"):
            tags = [t for t in group.tags if t.register == kind]
            requests += plan_reads(
                tags, device.max_gap, device.max_read_registers, device.max_read_bits
            )
        groups.append(GroupPlan(group, requests))
    return DevicePlan(device, groups)


# --------------------------------------------------------------------------- stats


@dataclass
class DeviceStats:
    """Running statistics of one device session."""

    requests: int = 0
    errors: int = 0  # exception responses and I/O errors
    timeouts: int = 0
    reconnects: int = 0
    connected: bool = False
    last_good_read: float | None = None  # Unix s
    overruns: int = 0  # poll rounds that took longer than their interval
    blocks: int = 0  # waveform blocks received
    samples: int = 0
    gap_samples: int = 0
    waveform_connected: bool | None = None  # the Rust waveform reader's connection
    latencies: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=2048)
    )

    def latency_ms(self, q: float) -> float | None:
        """Latency percentile ``q`` (0..100) over the last 2048 requests, ms."""
        if not self.latencies:
            return None
        return float(np.percentile(np.fromiter(self.latencies, float), q) * 1e3)

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view for metrics."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "reconnects": self.reconnects,
            "connected": self.connected,
            "last_good_read": self.last_good_read,
            "overruns": self.overruns,
            "blocks": self.blocks,
            "samples": self.samples,
            "gap_samples": self.gap_samples,
            "waveform_connected": self.waveform_connected,
            "latency_p50_ms": self.latency_ms(50),
            "latency_p95_ms": self.latency_ms(95),
            "latency_p99_ms": self.latency_ms(99),
        }


# --------------------------------------------------------------------------- session


class _Rejected(Exception):
    def __init__(self, code: int) -> None:
        self.code = code
        name = _TAG_EXCEPTIONS.get(code) or _DEVICE_EXCEPTIONS.get(code) or f"exception {code}"
        super().__init__(f"{name} (exception code {code})")


class _Disconnect(Exception):
    """The connection must be dropped and re-established."""


class RateLimiter:
    """Spaces calls at least ``1 / rate`` s apart (no bursts: a PLC's comfort first).

    With ``shared`` (a :class:`isthmus._core.ModbusRateLimiter`) the slots are booked
    there, so the Rust waveform reader and the polls of one device share one budget.
    """

    def __init__(self, rate: float, shared: Any = None) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self.shared = shared

    async def wait(self) -> None:
        if self.shared is not None:
            delay: float = self.shared.reserve()
            if delay > 0:
                await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


ValuesCallback = Callable[[list[TagValue]], None]
BatchCallback = Callable[[ValueBatch], None]


def _ignore(values: list[TagValue]) -> None:
    """The default ``on_values``: values are dropped (rings still fill)."""


# (channel, samples (channels x n, float32), gap samples before them)
BlockCallback = Callable[[str, "np.ndarray[Any, Any]", int], None]


class ModbusSession:
    """Reads one device until closed; values go to ``on_values``, waveforms to ``rings``.

    Use as an async context manager (the session runs as a background task)::

        async with ModbusSession(device, on_values=print) as session:
            await asyncio.sleep(10)
            print(session.stats.snapshot(), session.rings["de_accel"].written)

    ``ring_seconds`` sizes each waveform ring. ``on_values`` is called with the
    values of one read (GOOD or BAD, never silently dropped); ``on_block``, if
    given, with every waveform block pushed into a ring (channel, samples,
    gap samples before them): a Python call per block, so only with
    ``waveform_reader = "pymodbus"`` (the Rust reader never calls into Python).
    """

    def __init__(
        self,
        device: ModbusDevice,
        on_values: ValuesCallback | None = None,
        ring_seconds: float = 10.0,
        on_block: BlockCallback | None = None,
    ) -> None:
        self.device = device
        self.on_block = on_block
        self.plan = plan_device(device)
        self.stats = DeviceStats()
        self.on_values: ValuesCallback = on_values if on_values is not None else _ignore
        #: When set, each read is delivered as one :class:`ValueBatch` here instead of a
        #: list of :class:`TagValue` to ``on_values`` (the gateway's columnar path).
        self.on_batch: BatchCallback | None = None
        self.rings: dict[str, Any] = {}
        if device.waveforms:
            import isthmus

            for block in device.waveforms:
                capacity = max(int(block.sample_rate * ring_seconds), block.samples * block.slots)
                self.rings[block.channel] = isthmus.SampleRing(1, capacity, block.sample_rate)
        self._waves: Any = None  # isthmus._core.WaveformAcquisition, if Rust reads them
        self._python_waveforms = list(device.waveforms)
        if device.waveforms and device.waveform_reader == "rust":
            if on_block is not None:
                raise SessionError(
                    f"modbus {device.name}: on_block needs waveform_reader = 'pymodbus' "
                    "(the Rust waveform reader does not call back into Python per block)"
                )
            self._waves = self._rust_reader()
            self._python_waveforms = []
            self._limiter = RateLimiter(device.max_requests_per_second, self._waves_limiter)
        else:
            self._limiter = RateLimiter(device.max_requests_per_second)
        self._waves_seen: dict[str, Any] = {}
        self._waves_error: str | None = None
        for block in device.waveforms:
            # counter read with the samples: 1 request per block; apart: 3 (a seqlock)
            per_block = 1 if block.sequence_address == block.address - 1 else 3
            needed = block.sample_rate / block.samples * per_block
            if needed > device.max_requests_per_second:
                log.warning(
                    "modbus %s: waveform %s needs %.0f requests/s but max_requests_per_second "
                    "is %g: expect its gaps to grow (they are counted)",
                    device.name,
                    block.name,
                    needed,
                    device.max_requests_per_second,
                )
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._consecutive_timeouts = 0
        self._streams: dict[str, _BlockStream] = {}
        self.last_error: str | None = None
        # loops also stop on this flag: a cancellation lost inside pymodbus
        # (see cancel_and_wait) must not keep a TaskGroup child alive
        self._closing = False

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> ModbusSession:
        self._task = asyncio.create_task(self.run(), name=f"modbus:{self.device.name}")
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
        if self._waves is not None:
            self._waves.stop()
            # the thread ends within one socket call (stop() shuts its socket down)
            if not await asyncio.to_thread(self._waves.join, 10.0):
                log.error("modbus %s: the waveform reader did not stop", self.device.name)
            self._supervise_once()

    async def run(self) -> None:
        """Connect, read, and reconnect with backoff, until closed."""
        if self._waves is None:
            await self._run_polls()
            return
        self._waves.start()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._supervise_waves(), name=f"waves:{self.device.name}")
                if self.plan.groups:
                    tasks.create_task(self._run_polls(), name=f"polls:{self.device.name}")
        finally:
            self._waves.stop()  # returns at once; close() waits for the thread
            self._supervise_once()

    async def _run_polls(self) -> None:
        """The pymodbus connection: poll groups (and pymodbus waveform streams)."""
        backoff = self.device.backoff_initial
        while not self._closing:
            reason = "connection closed"
            good_before = self.stats.last_good_read
            try:
                await self._connect()
                async with asyncio.TaskGroup() as tasks:
                    for group in self.plan.groups:
                        tasks.create_task(self._poll(group), name=f"poll:{group.group.name}")
                    for block in self._python_waveforms:
                        tasks.create_task(self._stream(block), name=f"wave:{block.name}")
            except* (_Disconnect, OSError, TimeoutError) as group_exc:
                reason = "; ".join(str(e) or type(e).__name__ for e in group_exc.exceptions)
                log.warning("modbus %s: connection lost: %s", self.device.name, reason)
            except* Exception as group_exc:
                # A bug, an odd library error or a failing on_values callback must not end
                # this device's acquisition for good: log it in full and start over.
                reason = "; ".join(repr(e) for e in group_exc.exceptions)
                self.stats.errors += 1
                log.error(
                    "modbus %s: session failed, reconnecting",
                    self.device.name,
                    exc_info=group_exc,
                )
            self._drop()
            if self._closing:
                break
            if self.stats.last_good_read != good_before:
                # the device did answer this time: start the backoff over
                backoff = self.device.backoff_initial
            self.last_error = reason
            self._report_all_bad(f"not connected ({reason})")
            self.stats.reconnects += 1
            # equal jitter (upper half of the step): gateways restarted together spread out
            await asyncio.sleep(random.uniform(0.5 * backoff, backoff))
            backoff = min(backoff * 2, self.device.backoff_max)

    async def _connect(self) -> None:
        from pymodbus.client import AsyncModbusTcpClient

        self._drop()
        # reconnect_delay=0: pymodbus must not reconnect on its own; retries=0:
        # our own timeout governs each request.
        client = AsyncModbusTcpClient(
            self.device.host,
            port=self.device.port,
            timeout=self.device.request_timeout,
            retries=0,
            reconnect_delay=0,
        )
        try:
            async with asyncio.timeout(self.device.connect_timeout):
                ok = await client.connect()
        except BaseException:
            client.close()
            raise
        if not ok:
            client.close()
            raise _Disconnect(f"cannot connect to {self.device.host}:{self.device.port}")
        self._client = client
        self._consecutive_timeouts = 0
        self.stats.connected = True

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.stats.connected = False

    # -- one request ----------------------------------------------------------

    async def _read(self, kind: str, start: int, count: int) -> list[Any]:
        """One read; raises _Rejected (exception response), _Disconnect or TimeoutError."""
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        client = self._client
        if client is None or not client.connected:
            raise _Disconnect("connection closed")
        await self._limiter.wait()
        read = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[kind]
        self.stats.requests += 1
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.device.request_timeout):
                response = await read(start, count=count, device_id=self.device.unit_id)
        except TimeoutError:
            self.stats.timeouts += 1
            self._consecutive_timeouts += 1
            if self._consecutive_timeouts >= TIMEOUTS_BEFORE_RECONNECT:
                raise _Disconnect(f"{self._consecutive_timeouts} timeouts in a row") from None
            raise
        except ModbusIOException as exc:
            # pymodbus' own response timeout (it raced ours) or a garbled frame
            self.stats.errors += 1
            raise _Disconnect(str(exc)) from None
        except ConnectionException as exc:
            self.stats.errors += 1
            raise _Disconnect(str(exc)) from None
        self._consecutive_timeouts = 0
        self.stats.latencies.append(time.perf_counter() - began)
        if response.isError():
            self.stats.errors += 1
            raise _Rejected(int(getattr(response, "exception_code", 0)))
        self.stats.last_good_read = time.time()
        data = response.bits if kind in ("coil", "discrete") else response.registers
        return list(data[:count])

    # -- polling --------------------------------------------------------------

    async def _poll(self, plan: GroupPlan) -> None:
        loop = asyncio.get_running_loop()
        interval = plan.group.interval
        due = loop.time()
        while not self._closing:
            index = 0
            while index < len(plan.requests):
                # _read_request may split plan.requests[index] in place
                batches, consumed = await self._read_request(plan, index)
                index += consumed
                for batch in batches:
                    self._emit(batch)
            due += interval
            now = loop.time()
            if due < now:
                self.stats.overruns += 1
                due = now
            await asyncio.sleep(due - now)

    def _emit(self, batch: ValueBatch) -> None:
        if self.on_batch is not None:
            self.on_batch(batch)
            return
        values = batch_values(batch)
        if values:
            self.on_values(values)

    def _bad_batch(self, req: ReadRequest, reason: str) -> ValueBatch:
        return ValueBatch(
            source=self.device.name,
            tags=req.names(),
            values=[None] * len(req.tags),
            quality=Quality.BAD,
            reason=reason,
            units=req._units,
        )

    async def _read_request(self, plan: GroupPlan, index: int) -> tuple[list[ValueBatch], int]:
        """Read ``plan.requests[index]``; returns its batches and how many requests it spans."""
        req = plan.requests[index]
        if req.rejected is not None and time.monotonic() < req.next_probe:
            return [self._bad_batch(req, req.rejected)], 1
        try:
            data = await self._read(req.register, req.start, req.count)
        except TimeoutError:
            return [self._bad_batch(req, "timeout")], 1
        except _Rejected as exc:
            if exc.code not in _TAG_EXCEPTIONS:
                return [self._bad_batch(req, str(exc))], 1
            if len(req.tags) == 1:
                if req.rejected is None:
                    log.warning(
                        "modbus %s: tag %s rejected: %s", self.device.name, req.tags[0].name, exc
                    )
                req.rejected = str(exc)
                req.next_probe = time.monotonic() + REPROBE_INTERVAL
                return [self._bad_batch(req, req.rejected)], 1
            # split in two and try each half (recursively, so the bad tag ends alone)
            tags = sorted(req.tags, key=lambda t: t.address)
            half = len(tags) // 2
            d = self.device
            parts = plan_reads(tags[:half], d.max_gap, d.max_read_registers, d.max_read_bits)
            parts += plan_reads(tags[half:], d.max_gap, d.max_read_registers, d.max_read_bits)
            plan.requests[index : index + 1] = parts
            batches: list[ValueBatch] = []
            consumed = 0
            for _ in parts:  # each part may split again; it reports how many it became
                more, n = await self._read_request(plan, index + consumed)
                batches += more
                consumed += n
            return batches, consumed
        req.rejected = None
        return [self._decode(req, data)], 1

    def _decode(self, req: ReadRequest, data: list[Any]) -> ValueBatch:
        """One read's values, decoded in Rust in one call, exact as the device meant them.

        A float32 register is given as the float64 nearest its shortest float32 repr
        (1.88, not 1.8799999952316284); an integer register scaled by a decimal factor
        as the nearest float64 of its decimal value (188 * 0.01 -> 1.88). Integers stay
        integers, float64 stays as decoded.
        """
        now = time.time()
        names = req.names()
        if req.register in ("coil", "discrete"):
            start = req.start
            bits = [bool(data[t.address - start]) for t in req.tags]
            return ValueBatch(
                source=self.device.name, tags=names, values=bits, gateway_time=now, units=req._units
            )
        if req._decoder is None:
            import isthmus

            req._decoder = isthmus.DecodePlan([t.to_tag() for t in req.tags])
        bad_tags: dict[int, str] = {}
        try:
            values: list[Any] = list(req._decoder.decode(data, base=req.start).values())
        except DecodeError:
            values = []
            for i, tag in enumerate(req.tags):
                value, reason = self._decode_one(tag, req, data)
                values.append(value)
                if reason is not None:
                    bad_tags[i] = reason
        for i, is_f32, digits in req.exactness():
            value = values[i]
            if value is None or isinstance(value, str):
                continue
            if is_f32:
                values[i] = float32_value(value)
            elif digits is not None and math.isfinite(value):
                values[i] = round(value, digits)
        return ValueBatch(
            source=self.device.name,
            tags=names,
            values=values,
            gateway_time=now,
            bad_tags=bad_tags,
            units=req._units,
        )

    def _decode_one(
        self, tag: TagSpec, req: ReadRequest, data: list[Any]
    ) -> tuple[Any, str | None]:
        import isthmus

        try:
            value = isthmus.DecodePlan([tag.to_tag()]).decode(data, base=req.start)[tag.name]
        except DecodeError as exc:
            return None, f"decode: {exc}"
        return _plain(value), None

    def _bad(self, tag: TagSpec, reason: str) -> TagValue:
        return TagValue(
            source=self.device.name,
            tag=tag.name,
            value=None,
            unit=tag.unit,
            quality=Quality.BAD,
            reason=reason,
        )

    def _report_all_bad(self, reason: str) -> None:
        for plan in self.plan.groups:
            for req in plan.requests:
                self._emit(self._bad_batch(req, reason))

    # -- waveform streams: the Rust reader --------------------------------------

    def _rust_reader(self) -> Any:
        from isthmus import _core

        d = self.device
        self._waves_limiter = _core.ModbusRateLimiter(d.max_requests_per_second)
        waves = _core.WaveformAcquisition(
            d.host,
            d.port,
            self._waves_limiter,
            unit_id=d.unit_id,
            connect_timeout=d.connect_timeout,
            request_timeout=d.request_timeout,
            backoff_initial=d.backoff_initial,
            backoff_max=d.backoff_max,
        )
        for b in d.waveforms:
            waves.add_block(
                b.name,
                self.rings[b.channel],
                register=b.register,
                address=b.address,
                sequence_address=b.sequence_address,
                samples=b.samples,
                slots=b.slots,
                stride=b.slot_stride,
                dtype=b.dtype,
                order=b.order,
                scale=b.scale,
                sample_rate=b.sample_rate,
            )
        return waves

    async def _supervise_waves(self) -> None:
        """Carry the Rust reader's counters, latencies and events into this session."""
        while not self._closing:
            self._supervise_once()
            await asyncio.sleep(SUPERVISE_INTERVAL)

    def _supervise_once(self) -> None:
        waves = self._waves
        st = self.stats
        now = waves.stats()
        seen = self._waves_seen
        for key in _WAVE_COUNTERS:
            setattr(st, key, getattr(st, key) + now[key] - seen.get(key, 0))
        self._waves_seen = now
        st.latencies.extend(waves.drain_latencies())
        good = now["last_good_read"]
        if good is not None and (st.last_good_read is None or good > st.last_good_read):
            st.last_good_read = good
        st.waveform_connected = now["connected"]
        if not self.plan.groups:
            st.connected = now["connected"]
        for level, message in waves.drain_events():
            log.log(_LOG_LEVELS[level], "modbus %s: waveform reader: %s", self.device.name, message)
        error = waves.last_error
        if error is not None and error != self._waves_error:
            self.last_error = error
        self._waves_error = error

    # -- waveform streams: the pymodbus path ----------------------------------

    async def _stream(self, block: WaveformBlock) -> None:
        """Follow the device's block sequence; push samples and gaps into the ring."""
        # the stream's position survives reconnects, so a outage becomes a gap
        stream = self._streams.setdefault(block.name, _BlockStream(self, block))
        await stream.run()


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it is done.

    Python 3.11's ``asyncio.wait_for`` (used inside pymodbus) loses a
    cancellation that arrives together with the response it waits for, so one
    ``cancel()`` is not always enough: repeat until the task really ends.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


def batch_values(batch: ValueBatch) -> list[TagValue]:
    """A batch as one :class:`TagValue` per tag (for consumers of the per-value stream)."""
    out = []
    units = batch.units or (None,) * len(batch.tags)
    for i, (tag, value) in enumerate(zip(batch.tags, batch.values, strict=True)):
        reason = batch.bad_tags.get(i, batch.reason)
        quality = Quality.BAD if i in batch.bad_tags else batch.quality
        out.append(
            TagValue(
                source=batch.source,
                tag=tag,
                value=value if quality is not Quality.BAD else None,
                unit=units[i],
                quality=quality,
                reason=reason if quality is not Quality.GOOD else None,
                source_time=batch.source_time,
                gateway_time=batch.gateway_time,
            )
        )
    return out


def _plain(value: Any) -> float | int | bool | str:
    if isinstance(value, np.generic):
        return value.item()  # type: ignore[no-any-return]
    return value  # type: ignore[no-any-return]


class _BlockStream:
    """State of one waveform stream (see :class:`WaveformBlock` for the device layout).

    ``expected`` is the sequence number of the next block we want; only its
    low 16 bits must match the device's counter (block ``k`` sits in slot
    ``k % slots``, so ``slots`` divides 65536). Reading its slot gives:

    * the expected number: push the samples, move on;
    * a number one or more laps older: not written yet, wait;
    * a newer number: the device overwrote what we wanted (we fell behind or
      were disconnected). We find the newest block (binary search over the
      slot counters), continue from there and declare the skipped blocks a gap.
    """

    def __init__(self, session: ModbusSession, block: WaveformBlock) -> None:
        self.s = session
        self.block = block
        self.ring = session.rings[block.channel]
        self.period = block.samples / block.sample_rate  # s per block
        self.expected: int | None = None
        self.pending_gap = 0  # samples lost since the last push
        self.last_push: float | None = None  # loop time of the last good block

    async def run(self) -> None:
        while not self.s._closing:
            try:
                await self._follow()
            except TimeoutError:
                continue  # one slow answer; _read drops the connection if they persist
            except _Rejected as exc:
                error = f"waveform {self.block.name}: {exc}"
                repeated, self.s.last_error = self.s.last_error == error, error
                if exc.code not in _TAG_EXCEPTIONS:
                    # busy / device failure: transient, the device is still there; retry
                    # soon (the missed blocks are counted as a gap on resumption)
                    if not repeated:
                        log.warning("modbus %s: %s", self.s.device.name, error)
                    await asyncio.sleep(max(self.period, 0.1))
                    continue
                # the device refuses the waveform registers: a configuration
                # error, not a reason to stop the poll groups
                log.error(
                    "modbus %s: waveform %s rejected: %s", self.s.device.name, self.block.name, exc
                )
                await asyncio.sleep(REPROBE_INTERVAL)

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        stale_since: float | None = None
        while not self.s._closing:
            if self.expected is None:
                # first contact: start at the newest block, nothing to catch up
                self.expected = await self._find_newest()
                continue
            seq, samples = await self._read_slot(self.expected % self.block.slots, self.expected)
            d = (seq - self.expected) & 0xFFFF
            if d == 0:
                if samples is not None:
                    self._push(samples)
                    stale_since = None
                continue  # pushed (more may be ready), or a torn read to retry
            if d < 0x8000:
                # overwritten by a newer lap: we fell behind (or were away). Skip
                # to the newest block: anything older may be overwritten while
                # we read it, and chasing the writer would thrash.
                newest = await self._find_newest()
                target = (newest - self.expected) & 0xFFFF
                if d >= target or target >= 0x8000:  # the block in hand is as new: keep it
                    target = d
                since = loop.time() - (self.last_push or loop.time())
                jump = _unwrap(target, since / self.period)
                self.pending_gap += jump * self.block.samples
                self.expected += jump
                stale_since = None
                if d == target and samples is not None:
                    self._push(samples)
                continue
            now = loop.time()
            stale_since = stale_since or now
            if now - stale_since > max(1.0, 4 * self.period * self.block.slots):
                # an older lap for too long: the device's counter restarted;
                # adopt its numbering and size the gap by the clock
                since = now - (self.last_push or now)
                self.pending_gap += max(0, round(since / self.period) - 1) * self.block.samples
                self.expected += d - 0x10000
                stale_since = None
                if samples is not None:
                    self._push(samples)
                continue
            await asyncio.sleep(self.period / 2)  # not written yet

    async def _find_newest(self) -> int:
        """Sequence number of the newest block, by binary search over the slot counters.

        Slot 0 holds block ``k0`` (a multiple of ``slots``); slot ``i`` holds
        ``k0 + i`` if it was written in the same lap and ``k0 + i - slots`` if
        not, so the newest block is in the last slot of the current lap:
        ``1 + log2(slots)`` one-register reads.
        """
        b = self.block

        async def seq_of(slot: int) -> int:
            regs = await self.s._read(b.register, b.sequence_address + slot * b.slot_stride, 1)
            return int(regs[0])

        k0 = await seq_of(0)
        lo, hi = 0, b.slots - 1  # slot lo is in the current lap
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if (await seq_of(mid) - k0) & 0xFFFF == mid:
                lo = mid
            else:
                hi = mid - 1
        return (k0 + lo) & 0xFFFF

    async def _read_slot(
        self, slot: int, want: int | None
    ) -> tuple[int, np.ndarray[Any, Any] | None]:
        """Read one slot: (sequence number found, samples or None if the read tore)."""
        b = self.block
        base = slot * b.slot_stride
        if b.sequence_address == b.address - 1:
            regs = await self.s._read(b.register, b.sequence_address + base, 1 + b.block_registers)
            return regs[0], self._samples(regs[1:])
        # separate counter register: read it around the samples (a seqlock)
        before = (await self.s._read(b.register, b.sequence_address + base, 1))[0]
        if want is not None and (before - want) & 0xFFFF >= 0x8000:
            return before, None  # an older lap: not written yet, no need for the samples
        regs = await self.s._read(b.register, b.address + base, b.block_registers)
        after = (await self.s._read(b.register, b.sequence_address + base, 1))[0]
        return (after, self._samples(regs)) if after == before else (after, None)

    def _samples(self, regs: list[int]) -> np.ndarray[Any, Any]:
        import isthmus

        b = self.block
        values = isthmus.decode_array(
            np.asarray(regs, dtype=np.uint16), b.dtype, order=b.order, scale=b.scale
        )
        return np.asarray(values, dtype=np.float32).reshape(1, -1)

    def _push(self, samples: np.ndarray[Any, Any]) -> None:
        if self.ring.written == 0:
            # Modbus carries no timestamps: anchor the ring's time base on the
            # arrival of the first block (its first sample one block earlier)
            self.ring.push(samples, t0=time.time() - self.period, gap=self.pending_gap)
        else:
            self.ring.push(samples, gap=self.pending_gap)
        if self.s.on_block is not None:
            self.s.on_block(self.block.channel, samples, self.pending_gap)
        st = self.s.stats
        st.blocks += 1
        st.samples += samples.shape[1]
        st.gap_samples += self.pending_gap
        self.pending_gap = 0
        self.last_push = asyncio.get_running_loop().time()
        assert self.expected is not None
        self.expected += 1


def _unwrap(delta16: int, estimate: float) -> int:
    """The jump congruent to ``delta16`` mod 65536 closest to ``estimate`` blocks (never < delta16).

    A 16-bit counter wraps every 65536 blocks (5 minutes at 25.6 kHz with
    120-sample blocks); after a longer outage the clock says how many laps.
    """
    laps = round((estimate - delta16) / 65536)
    return delta16 + max(0, laps) * 65536


class ModbusSources:
    """Several devices, one session each (a dead device cannot stall the others)."""

    def __init__(
        self,
        devices: Sequence[ModbusDevice],
        on_values: ValuesCallback | None = None,
        ring_seconds: float = 10.0,
    ) -> None:
        self.sessions = {d.name: ModbusSession(d, on_values, ring_seconds) for d in devices}
        if len(self.sessions) != len(devices):
            raise SessionError("two Modbus devices share a name")

    async def __aenter__(self) -> ModbusSources:
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
    "DevicePlan",
    "DeviceStats",
    "GroupPlan",
    "ModbusSession",
    "ModbusSources",
    "RateLimiter",
    "ReadRequest",
    "plan_device",
    "plan_reads",
]
