"""A publish-only MQTT client on asyncio, built for a durable outbox that publishes in batches.

Why not aiomqtt or paho: the publisher hands the connection a batch of outbox rows at a
time and deletes them when their PUBACKs arrive. aiomqtt scans every pending publish on
each new one (``_pending_calls``), so its cost per message grows with the in-flight window;
paho (under aiomqtt or alone) makes one ``send`` per packet and three ``recv`` calls per
PUBACK. Here a whole batch is encoded into one buffer and written with one call, and
every PUBACK in a read is parsed from the buffer in one pass. Measured side by side in
``benches/bench_uns.py``.

What it speaks, and nothing more: CONNECT (MQTT 3.1.1 or 5, clean start, will,
username/password, keepalive) and CONNACK with its reason code and MQTT 5 properties
(receive maximum, maximum packet size, maximum QoS, retain available); PUBLISH at QoS 0,
1 and 2 with PUBACK / PUBREC-PUBREL-PUBCOMP and their MQTT 5 reason codes; PINGREQ and
PINGRESP; DISCONNECT both ways (the broker's MQTT 5 reason code is kept). It never
subscribes. TLS comes from asyncio's ``ssl`` support, so a refused handshake or a
certificate alert surfaces as the ``ssl`` error that says so.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from isthmus.errors import SessionError

__all__ = [
    "BrokerLimits",
    "ConnectRefused",
    "MqttConnection",
    "MqttError",
    "OutgoingPublish",
    "reason_name",
]


class MqttError(SessionError):
    """The MQTT connection failed or was lost; the message says how."""


class ConnectRefused(MqttError):
    """The broker answered CONNECT with a failure (``code``: CONNACK return/reason code)."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


# Reason codes (MQTT 5 section 2.4) and CONNACK return codes (3.1.1 section 3.2.2.3).
_REASONS = {
    0x00: "success",
    0x10: "no matching subscribers",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x92: "packet identifier not found",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9F: "connection rate exceeded",
}
_CONNACK_V3 = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


def reason_name(code: int, protocol: str = "5") -> str:
    """Human name of a reason code (or 3.1.1 CONNACK return code)."""
    table = _CONNACK_V3 if protocol != "5" else _REASONS
    return f"{table.get(code, 'unknown reason')} (0x{code:02x})"


# MQTT 5 property identifiers and their value types (section 2.2.2.2).
_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
_PROPERTY_TYPES = {
    0x01: _BYTE, 0x02: _U32, 0x03: _STR, 0x08: _STR, 0x09: _BIN, 0x0B: _VARINT,
    0x11: _U32, 0x12: _STR, 0x13: _U16, 0x15: _STR, 0x16: _BIN, 0x17: _BYTE,
    0x18: _U32, 0x19: _BYTE, 0x1A: _STR, 0x1C: _STR, 0x1F: _STR, 0x21: _U16,
    0x22: _U16, 0x23: _U16, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _U32,
    0x28: _BYTE, 0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip
_RECEIVE_MAXIMUM, _MAXIMUM_PACKET_SIZE, _MAXIMUM_QOS, _RETAIN_AVAILABLE = 0x21, 0x27, 0x24, 0x25
_REASON_STRING, _SERVER_KEEP_ALIVE = 0x1F, 0x13

_CONNECT, _CONNACK, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 1, 2, 3, 4, 5, 6, 7
_PINGREQ_PACKET, _PINGRESP, _DISCONNECT = b"\xc0\x00", 13, 14
_MAX_PACKET = 268_435_455 + 5


def _varint(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    if n < 16384:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _read_varint(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None if ``buf`` ends inside the integer."""
    value = shift = 0
    for i in range(4):
        if pos + i >= len(buf):
            return None
        byte = buf[pos + i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos + i + 1
        shift += 7
    raise MqttError("malformed packet from the broker: variable byte integer too long")


def _parse_properties(body: bytes, pos: int) -> tuple[dict[int, object], int]:
    got = _read_varint(body, pos)
    if got is None:
        raise MqttError("malformed packet from the broker: truncated properties")
    length, pos = got
    end = pos + length
    props: dict[int, object] = {}
    while pos < end:
        ident = body[pos]
        pos += 1
        kind = _PROPERTY_TYPES.get(ident)
        value: object
        if kind == _BYTE:
            value, pos = body[pos], pos + 1
        elif kind == _U16:
            value, pos = struct.unpack_from("!H", body, pos)[0], pos + 2
        elif kind == _U32:
            value, pos = struct.unpack_from("!I", body, pos)[0], pos + 4
        elif kind == _VARINT:
            got = _read_varint(body, pos)
            if got is None:
                raise MqttError("malformed packet from the broker: truncated property")
            value, pos = got
        elif kind in (_STR, _BIN):
            (n,) = struct.unpack_from("!H", body, pos)
            raw = body[pos + 2 : pos + 2 + n]
            value, pos = (raw.decode("utf-8", "replace") if kind == _STR else raw), pos + 2 + n
        elif kind == _PAIR:
            (n,) = struct.unpack_from("!H", body, pos)
            pos += 2 + n
            (n,) = struct.unpack_from("!H", body, pos)
            pos += 2 + n
            continue
        else:
            raise MqttError(f"malformed packet from the broker: unknown property 0x{ident:02x}")
        props[ident] = value
    return props, end


class OutgoingPublish(NamedTuple):
    """One message for :meth:`MqttConnection.publish_many`; ``key`` comes back with its ack."""

    key: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class BrokerLimits:
    """What the broker said about itself in CONNACK (MQTT 5; defaults for 3.1.1)."""

    receive_maximum: int = 65535
    maximum_packet_size: int = _MAX_PACKET
    maximum_qos: int = 2
    retain_available: bool = True
    server_keep_alive: int | None = None
    session_present: bool = False
    extra: dict[int, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectOptions:
    """Everything CONNECT carries."""

    client_id: str
    protocol: str = "5"  # "5" or "3.1.1"
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = None
    will_topic: str | None = None
    will_payload: bytes = b""
    will_qos: int = 1
    will_retain: bool = True


def encode_connect(opts: ConnectOptions) -> bytes:
    v5 = opts.protocol == "5"
    flags = 0x02  # clean start: the outbox, not the broker, keeps what is unacknowledged
    payload = _string(opts.client_id.encode("utf-8"))
    if opts.will_topic is not None:
        flags |= 0x04 | (opts.will_qos << 3) | (0x20 if opts.will_retain else 0)
        if v5:
            payload += b"\x00"  # will properties
        payload += _string(opts.will_topic.encode("utf-8")) + _string(opts.will_payload)
    if opts.username is not None:
        flags |= 0x80
        payload += _string(opts.username.encode("utf-8"))
        if opts.password is not None:
            flags |= 0x40
            payload += _string(opts.password.encode("utf-8"))
    variable = (
        b"\x00\x04MQTT" + bytes([5 if v5 else 4, flags]) + struct.pack("!H", opts.keepalive_s)
    )
    if v5:
        variable += b"\x00"  # no properties: session expiry 0, defaults for the rest
    body = variable + payload
    return b"\x10" + _varint(len(body)) + body


class MqttConnection(asyncio.Protocol):
    """One MQTT connection; open it with :meth:`open`.

    Acknowledged keys (:attr:`OutgoingPublish.key`) collect in :meth:`take_acks` as
    ``(key, reason_code)``: 0 (or 0x10) is a PUBACK/PUBCOMP of success, a code >= 0x80 is
    the broker refusing that message (MQTT 5). QoS 0 messages are acknowledged when
    written. :attr:`ack_ready` is set whenever acks are waiting and when the connection
    ends; :attr:`closed` tells whether it ended and :attr:`error` why.
    """

    def __init__(self, opts: ConnectOptions, wake: asyncio.Event | None = None) -> None:
        self.opts = opts
        self.v5 = opts.protocol == "5"
        self.limits = BrokerLimits()
        self.error: MqttError | None = None
        self.closed = False
        #: True when the broker (or the network) ended the connection, not :meth:`abort`.
        self.lost_by_peer = False
        self.tls_established = False
        self._aborted = False
        self.ack_ready = wake if wake is not None else asyncio.Event()
        self.connack: asyncio.Future[BrokerLimits] = asyncio.get_running_loop().create_future()
        self.inflight: dict[int, tuple[int, float]] = {}  # packet id -> (key, sent monotonic)
        self.broker_disconnect_reason: int | None = None
        self.last_read = time.monotonic()
        self.last_write = time.monotonic()
        self._acks: list[tuple[int, int]] = []
        self._buf = bytearray()
        self._topic_cache: dict[str, bytes] = {}  # topic -> its length-prefixed UTF-8
        self._next_id = 1
        self._transport: asyncio.Transport | None = None
        self._pong = asyncio.Event()

    # -- opening and closing --------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        opts: ConnectOptions,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout_s: float,
        wake: asyncio.Event | None = None,
    ) -> MqttConnection:
        """Connect (TCP, TLS), send CONNECT, wait for CONNACK, all within ``timeout_s``.

        Raises :class:`ConnectRefused` for a refusing CONNACK, :class:`MqttError` otherwise
        (the cause kept in the message: DNS, refused port, TLS alert, timeout).
        """
        loop = asyncio.get_running_loop()
        conn = cls(opts, wake)
        try:
            async with asyncio.timeout(timeout_s):
                started = time.monotonic()
                await loop.create_connection(
                    lambda: conn,
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=host if ssl_context is not None else None,
                )
                if ssl_context is not None:
                    # TLS 1.3: the broker judges our certificate after the handshake and
                    # answers with an alert. Writing CONNECT before it arrives makes the
                    # broker's close a TCP reset, which can swallow the alert; so wait
                    # about one handshake's time for it first.
                    await asyncio.sleep(min(0.25, max(0.02, time.monotonic() - started)))
                    if conn.closed:
                        raise conn.error or MqttError("connection closed after TLS handshake")
                    conn.tls_established = True
                conn._write(encode_connect(opts))
                conn.limits = await asyncio.shield(conn.connack)
        except TimeoutError:
            conn.abort()
            # A TLS 1.3 server reports a refused client certificate after the handshake:
            # the alert may have arrived just as the timeout fired.
            raise conn.error or MqttError(f"no CONNACK within {timeout_s:g} s") from None
        except ssl.SSLError as exc:
            conn.abort()
            raise MqttError(f"TLS handshake failed: {_ssl_text(exc)}") from None
        except MqttError:
            conn.abort()
            raise
        except OSError as exc:
            conn.abort()
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise MqttError(f"{why} ({host}:{port})") from None
        except BaseException:
            conn.abort()
            raise
        return conn

    def disconnect(self) -> None:
        """Send DISCONNECT (no will) and close."""
        self._aborted = True
        if self._transport is not None and not self.closed:
            self._write(b"\xe0\x00")
            self._transport.close()

    def abort(self) -> None:
        self._aborted = True
        if self._transport is not None:
            self._transport.abort()
        if not self.connack.done():
            self.connack.cancel()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost_by_peer = not self._aborted
        if self.error is None:
            if isinstance(exc, ssl.SSLError):
                self.error = MqttError(f"TLS error: {_ssl_text(exc)}")
            elif isinstance(exc, ConnectionResetError) and not self.connack.done():
                hint = (
                    " (right after the TLS handshake: a broker that does not accept this "
                    "client's certificate, or its absence, does this)"
                    if self.tls_established
                    else ""
                )
                self.error = MqttError(f"connection reset by the broker before CONNACK{hint}")
            elif exc is not None:
                self.error = MqttError(f"connection lost: {exc}")
            elif self.broker_disconnect_reason is not None:
                self.error = MqttError(
                    "broker disconnected: " + reason_name(self.broker_disconnect_reason)
                )
            elif self._aborted:
                self.error = MqttError("connection closed by the gateway")
            else:
                self.error = MqttError("connection closed by the broker")
        if not self.connack.done():
            # Retrieved by open(); never left for "Future exception was never retrieved".
            self.connack.set_exception(self.error)
            self.connack.exception()
        self.ack_ready.set()
        self._pong.set()

    def data_received(self, data: bytes) -> None:
        self.last_read = time.monotonic()
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        acks = self._acks
        inflight = self.inflight
        try:
            while pos + 2 <= end:
                first = buf[pos]
                # Fast path: a PUBACK without properties (3.1.1; MQTT 5 with or without a
                # reason code, such as 0x10 "no matching subscribers").
                if first == 0x40 and 2 <= buf[pos + 1] <= 3:
                    size = 2 + buf[pos + 1]
                    if pos + size > end:
                        break
                    entry = inflight.pop((buf[pos + 2] << 8) | buf[pos + 3], None)
                    if entry is not None:
                        acks.append((entry[0], buf[pos + 4] if size == 5 else 0))
                    pos += size
                    continue
                got = _read_varint(buf, pos + 1)
                if got is None:
                    break
                length, start = got
                if start + length > end:
                    break
                self._packet(first, bytes(buf[start : start + length]))
                pos = start + length
        except (MqttError, struct.error, IndexError, UnicodeDecodeError) as exc:
            self.error = (
                exc if isinstance(exc, MqttError) else MqttError(f"malformed packet: {exc}")
            )
            self.abort()
        del buf[:pos]
        if acks:
            self.ack_ready.set()

    def _packet(self, first: int, body: bytes) -> None:
        kind = first >> 4
        if kind in (_PUBACK, _PUBCOMP, _PUBREC):
            packet_id = (body[0] << 8) | body[1]
            reason = body[2] if len(body) > 2 else 0
            if kind == _PUBREC and reason < 0x80:
                if packet_id in self.inflight:
                    self._write(b"\x62\x02" + body[:2])  # PUBREL, then wait for PUBCOMP
                return
            entry = self.inflight.pop(packet_id, None)
            if entry is not None:
                self._acks.append((entry[0], reason))
        elif kind == _CONNACK:
            self._connack(body)
        elif kind == _PINGRESP:
            self._pong.set()
        elif kind == _DISCONNECT:
            self.broker_disconnect_reason = body[0] if body else 0
            text = reason_name(self.broker_disconnect_reason)
            if self.v5 and len(body) > 1:
                props, _ = _parse_properties(body, 1)
                if _REASON_STRING in props:
                    text += f": {props[_REASON_STRING]}"
            self.error = MqttError(f"broker disconnected: {text}")
        elif kind == _PUBLISH:
            pass  # never subscribed; nothing to deliver
        else:
            raise MqttError(f"unexpected packet type {kind} from the broker")

    def _connack(self, body: bytes) -> None:
        if self.connack.done():
            raise MqttError("second CONNACK from the broker")
        code = body[1]
        limits = BrokerLimits(session_present=bool(body[0] & 1))
        text = reason_name(code, self.opts.protocol)
        if self.v5 and len(body) > 2:
            props, _ = _parse_properties(body, 2)
            limits.extra = props
            limits.receive_maximum = int(props.get(_RECEIVE_MAXIMUM, 65535))  # type: ignore[call-overload]
            limits.maximum_packet_size = int(props.get(_MAXIMUM_PACKET_SIZE, _MAX_PACKET))  # type: ignore[call-overload]
            limits.maximum_qos = int(props.get(_MAXIMUM_QOS, 2))  # type: ignore[call-overload]
            limits.retain_available = bool(props.get(_RETAIN_AVAILABLE, 1))
            if _SERVER_KEEP_ALIVE in props:
                limits.server_keep_alive = int(props[_SERVER_KEEP_ALIVE])  # type: ignore[call-overload]
            if _REASON_STRING in props:
                text += f": {props[_REASON_STRING]}"
        if code != 0:
            self.error = ConnectRefused(code, text)
            self.connack.set_exception(self.error)
            self.connack.exception()  # retrieved: open() raises self.error
            self.abort()
            return
        self.connack.set_result(limits)

    # -- publishing ---------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)
        self.last_write = time.monotonic()

    def packet_size(self, topic: str, payload: bytes, qos: int) -> int:
        """Bytes of the PUBLISH packet for these fields (for the broker's size limit)."""
        body = 2 + len(topic.encode("utf-8")) + (2 if qos else 0) + (1 if self.v5 else 0)
        body += len(payload)
        return 1 + len(_varint(body)) + body

    def publish_many(
        self, messages: Sequence[tuple[int, str, bytes, int, bool]], *, dup: bool = False
    ) -> None:
        """Encode every message (:class:`OutgoingPublish` fields) into one buffer, one write.

        QoS 0 messages count as acknowledged once written. Raises :class:`MqttError` if the
        connection is closed.
        """
        if self.closed or self._transport is None:
            raise self.error or MqttError("not connected")
        props = b"\x00" if self.v5 else b""
        extra = len(props)
        now = time.monotonic()
        parts: list[bytes] = []
        append = parts.append
        inflight = self.inflight
        topics = self._topic_cache
        for key, topic, payload, qos, retain in messages:
            name = topics.get(topic)
            if name is None:
                raw = topic.encode("utf-8")
                name = len(raw).to_bytes(2, "big") + raw
                if len(topics) >= 65536:
                    topics.clear()
                topics[topic] = name
            header = 0x30 | (qos << 1) | (1 if retain else 0)
            remaining = len(name) + extra + len(payload)
            if qos:
                if dup:
                    header |= 0x08
                packet_id = self._next_id
                while packet_id in inflight:
                    packet_id = packet_id % 65535 + 1
                self._next_id = packet_id % 65535 + 1
                inflight[packet_id] = (key, now)
                remaining += 2
                if remaining < 128:
                    append(bytes((header, remaining)))
                else:
                    append(bytes((header,)) + _varint(remaining))
                append(name)
                append(packet_id.to_bytes(2, "big"))
            else:
                self._acks.append((key, 0))
                append(bytes((header,)) + _varint(remaining))
                append(name)
            if extra:
                append(props)
            append(payload)
        self._write(b"".join(parts))
        if self._acks:
            self.ack_ready.set()

    def take_acks(self) -> list[tuple[int, int]]:
        """The ``(key, reason)`` pairs acknowledged since the last call, in arrival order."""
        acks, self._acks = self._acks, []
        return acks

    def oldest_inflight_age(self) -> float:
        """Seconds the oldest unacknowledged publish has waited (0 when none)."""
        if not self.inflight:
            return 0.0
        return time.monotonic() - next(iter(self.inflight.values()))[1]

    async def ping(self, timeout_s: float) -> None:
        """PINGREQ and wait for PINGRESP; :class:`MqttError` if none in ``timeout_s``."""
        self._pong.clear()
        self._write(_PINGREQ_PACKET)
        try:
            async with asyncio.timeout(timeout_s):
                await self._pong.wait()
        except TimeoutError:
            raise MqttError(f"broker silent: no PINGRESP within {timeout_s:g} s") from None
        if self.closed:
            raise self.error or MqttError("connection closed")


def _ssl_text(exc: ssl.SSLError) -> str:
    """``tlsv13 alert certificate required``, ``certificate verify failed: <why>``."""
    verify = getattr(exc, "verify_message", None)
    if verify:
        return f"certificate verify failed: {verify}"
    text = str(exc)
    if "] " in text:  # "[SSL: CODE] words (_ssl.c:NNN)" -> "words"
        text = text.split("] ", 1)[1].rsplit(" (_ssl.c", 1)[0]
    return text
