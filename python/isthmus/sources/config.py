"""Source configuration: Modbus, S7, EtherNet/IP devices and OPC UA endpoints (msgspec Structs).

Every Struct forbids unknown fields, so a typo in a config file is an error
and not a silently ignored setting. :func:`parse` turns a decoded TOML/JSON
mapping into these Structs and raises :class:`isthmus.ConfigError` naming the
config path at fault (e.g. ``modbus[0].poll_groups[1].tags[3].address``).

Times are seconds, rates are Hz, addresses are zero-based protocol addresses
(register 40001 of a vendor manual is holding-register address 0).
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec

from isthmus.errors import ConfigError

RegisterType = Literal["holding", "input", "coil", "discrete"]
WordRegisterType = Literal["holding", "input"]
ByteOrder = Literal["ABCD", "CDAB", "BADC", "DCBA"]

# Modbus application protocol limits (spec v1.1b3, 6.1-6.4): one read returns
# at most 125 registers or 2000 bits.
MAX_READ_REGISTERS = 125
MAX_READ_BITS = 2000

# Registers one value occupies, by dtype family.
_WIDTH = {16: 1, 32: 2, 64: 4}


@functools.lru_cache(maxsize=256)
def register_width(dtype: str, length: int | None = None) -> int:
    """Registers a value of ``dtype`` spans (a string: ``length`` registers, two bytes each)."""
    if dtype in ("bit", "int8", "uint8", "bcd16", "float16"):
        return 1
    if dtype == "bcd32":
        return 2
    if dtype == "string":
        if length is None or length < 1:
            raise ValueError("a string tag needs length >= 1 (registers)")
        return length
    match = re.fullmatch(r"u?int(16|32|64)|float(32|64)", dtype)
    if match is None:
        raise ValueError(f"unknown dtype {dtype!r}")
    bits = int(match.group(1) or match.group(2))
    return _WIDTH[bits]


class _Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base: unknown fields are errors."""


class TagSpec(_Config):
    """One scalar tag of a Modbus device (mirrors :class:`isthmus.Tag` plus the register type).

    ``value = raw * scale + offset`` in ``unit``. Coils and discrete inputs are
    always dtype ``bit``; on registers ``bit`` picks one bit (0 = LSB) of a word.
    ``length`` is the register count of a ``string``; ``byte`` (``high``/``low``)
    the byte an ``int8``/``uint8`` reads.
    """

    name: str
    address: int
    dtype: str = "uint16"
    register: RegisterType = "holding"
    order: ByteOrder = "ABCD"
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None
    length: int | None = None
    unit: str | None = None
    byte: Literal["high", "low"] | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        where = f"tag {self.name!r}"
        if not self.name:
            problems.append("tag name must not be empty")
        if self.register in ("coil", "discrete") and self.dtype != "bit":
            problems.append(f"{where}: {self.register} tags are dtype 'bit'")
        word_bit = self.dtype == "bit" and self.register in ("holding", "input")
        if word_bit and (self.bit is None or not 0 <= self.bit <= 15):
            problems.append(f"{where}: a bit of a register needs bit in 0..15")
        try:
            width: int | None = register_width(self.dtype, self.length)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            width = None
        if width is not None and (not self.address >= 0 or self.address + width > 65536):
            problems.append(f"{where}: address {self.address} outside 0..65535")
        if not math.isfinite(self.scale) or not math.isfinite(self.offset):
            problems.append(f"{where}: scale and offset must be finite")
        if not problems and self.register in ("holding", "input"):
            self.to_tag()  # and the decoder's own rules (TagError is a ValueError)
        _raise_all(problems)

    @property
    def width(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the tag spans."""
        if self.register in ("coil", "discrete"):
            return 1
        return register_width(self.dtype, self.length)

    def to_tag(self) -> Any:
        """The :class:`isthmus.Tag` that decodes this tag's registers."""
        import isthmus

        return isthmus.Tag(
            self.name,
            self.address,
            self.dtype,
            order=self.order,
            scale=self.scale,
            offset=self.offset,
            bit=self.bit,
            length=self.length,
            unit=self.unit,
            byte=self.byte,
        )


class PollGroup(_Config):
    """Tags read together every ``interval`` seconds."""

    name: str
    interval: float
    tags: list[TagSpec]

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not (self.interval > 0 and math.isfinite(self.interval)):
            problems.append(
                f"poll group {self.name!r}: interval must be > 0 s, got {self.interval}"
            )
        dupes = _duplicates(t.name for t in self.tags)
        if dupes:
            problems.append(f"poll group {self.name!r}: duplicate tag names {dupes}")
        _raise_all(problems)


class WaveformBlock(_Config):
    """A device-side sample buffer read as a stream into a SampleRing.

    The device keeps ``slots`` blocks of ``samples`` values each; slot ``i``
    holds its samples from ``address + i * stride`` and its block sequence
    number (uint16, incremented per block, wrapping) at
    ``sequence_address + i * stride``. Block ``k`` lives in slot ``k % slots``.
    With ``sequence_address == address - 1`` counter and samples come in one
    read, so they cannot tear. Skipped and repeated blocks are found from the
    counter; skipped samples are reported to the ring as a gap.
    """

    name: str
    channel: str
    sample_rate: float
    address: int
    samples: int
    sequence_address: int
    dtype: Literal["int16", "float32"] = "int16"
    register: WordRegisterType = "holding"
    order: ByteOrder = "ABCD"
    scale: float = 1.0
    slots: int = 1
    stride: int | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        where = f"waveform {self.name!r}"
        problems: list[str] = []
        if not (self.sample_rate > 0 and math.isfinite(self.sample_rate)):
            problems.append(f"{where}: sample_rate must be > 0 Hz")
        if self.samples < 1:
            problems.append(f"{where}: samples must be >= 1")
        if self.slots < 1 or 65536 % self.slots:
            # block k lives in slot k % slots and its 16-bit counter is k % 65536
            problems.append(f"{where}: slots must be a power of two (1, 2, 4, ... 65536)")
        if self.stride is not None and self.stride < self.block_registers:
            problems.append(f"{where}: stride {self.stride} < block size {self.block_registers}")
        if not problems:
            end = max(self.address, self.sequence_address + 1)
            end += self.slot_stride * (self.slots - 1)
            low = min(self.address, self.sequence_address)
            if low < 0 or end + self.block_registers > 65536:
                problems.append(f"{where}: registers outside 0..65535")
        seq_inside = self.address <= self.sequence_address < self.address + self.block_registers
        if seq_inside:
            problems.append(f"{where}: sequence register inside the sample registers")
        _raise_all(problems)

    @property
    def width(self) -> int:
        """Registers per sample."""
        return 1 if self.dtype == "int16" else 2

    @property
    def block_registers(self) -> int:
        """Registers of one block's samples."""
        return self.samples * self.width

    @property
    def slot_stride(self) -> int:
        """Registers from one slot to the next."""
        if self.stride is not None:
            return self.stride
        if self.sequence_address == self.address - 1:
            return self.block_registers + 1
        return self.block_registers


class ModbusDevice(_Config):
    """One Modbus TCP device (a PLC, drive or sensor gateway) and what to read from it."""

    name: str
    host: str
    port: int = 502
    unit_id: int = 1
    connect_timeout: float = 3.0
    request_timeout: float = 1.0
    max_requests_per_second: float = 50.0
    max_gap: int = 8
    max_read_registers: int = MAX_READ_REGISTERS
    max_read_bits: int = MAX_READ_BITS
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: who follows the waveform blocks: a Rust thread with its own read-only connection
    #: ("rust"), or the pymodbus session's asyncio tasks ("pymodbus", the older path)
    waveform_reader: Literal["rust", "pymodbus"] = "rust"
    poll_groups: list[PollGroup] = msgspec.field(default_factory=list)
    waveforms: list[WaveformBlock] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"device {self.name!r}"
        problems: list[str] = []
        if not self.host:
            problems.append(f"{where}: host must not be empty")
        if not 0 < self.port < 65536:
            problems.append(f"{where}: port must be in 1..65535, got {self.port}")
        if not 0 <= self.unit_id <= 255:
            problems.append(f"{where}: unit_id must be in 0..255, got {self.unit_id}")
        for field in ("connect_timeout", "request_timeout", "max_requests_per_second"):
            value = getattr(self, field)
            if not (value > 0 and math.isfinite(value)):
                problems.append(f"{where}: {field} must be > 0, got {value}")
        if not 0 < self.backoff_initial <= self.backoff_max:
            problems.append(f"{where}: need 0 < backoff_initial <= backoff_max")
        if self.max_gap < 0:
            problems.append(f"{where}: max_gap must be >= 0 registers")
        if not 1 <= self.max_read_registers <= MAX_READ_REGISTERS:
            problems.append(f"{where}: max_read_registers must be in 1..{MAX_READ_REGISTERS}")
        if not 1 <= self.max_read_bits <= MAX_READ_BITS:
            problems.append(f"{where}: max_read_bits must be in 1..{MAX_READ_BITS}")
        for block in self.waveforms:
            # a counter right before the samples is read with them, in the same request
            one_read = block.block_registers + (block.sequence_address == block.address - 1)
            if one_read > self.max_read_registers:
                problems.append(
                    f"{where}: waveform {block.name!r} needs {one_read} registers "
                    f"in one read, more than max_read_registers={self.max_read_registers}"
                )
        for group in self.poll_groups:
            for tag in group.tags:
                limit = (
                    self.max_read_bits
                    if tag.register in ("coil", "discrete")
                    else self.max_read_registers
                )
                if tag.width > limit:
                    problems.append(
                        f"{where}: tag {tag.name!r} spans {tag.width} registers, more than "
                        f"one read may take ({limit})"
                    )
        dupes = _duplicates(
            [t.name for g in self.poll_groups for t in g.tags] + [w.name for w in self.waveforms]
        )
        if dupes:
            problems.append(f"{where}: duplicate tag names {dupes}")
        group_dupes = _duplicates(g.name for g in self.poll_groups)
        if group_dupes:
            problems.append(f"{where}: duplicate poll group names {group_dupes}")
        _raise_all(problems)


class OpcUaNode(_Config):
    """One subscribed OPC UA variable.

    ``sampling_interval`` is seconds (the server may revise it). With
    ``waveform = true`` the variable is an array snapshot of samples taken at
    ``sample_rate`` Hz and goes into a SampleRing instead of the value stream.
    """

    node_id: str
    name: str
    sampling_interval: float = 0.5
    queue_size: int = 1
    waveform: bool = False
    sample_rate: float | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.name:
            problems.append("node name must not be empty")
        if not (self.sampling_interval >= 0 and math.isfinite(self.sampling_interval)):
            problems.append(f"node {self.name!r}: sampling_interval must be >= 0 s")
        if self.queue_size < 1:
            problems.append(f"node {self.name!r}: queue_size must be >= 1")
        if self.waveform and not (self.sample_rate or 0) > 0:
            problems.append(f"node {self.name!r}: a waveform node needs sample_rate > 0 Hz")
        _raise_all(problems)


class OpcUaEndpoint(_Config):
    """One OPC UA server and the nodes to subscribe to.

    ``security`` is ``None`` or ``Basic256Sha256`` (then ``mode`` is ``Sign`` or
    ``SignAndEncrypt`` and a client ``certificate`` + ``private_key`` (PEM or
    DER paths) are required).

    A secure endpoint must say which server certificates it trusts, or the
    username and password would go to whichever server answers on the port:
    ``trust_list`` is a certificate file (PEM, may hold several, or DER) or a
    directory of them (``*.pem``, ``*.crt``, ``*.cer``, ``*.der``); the server's
    certificate is trusted when it is one of them (same SHA-256 thumbprint) or
    was issued by a CA certificate among them, and is inside its validity
    period. ``server_certificate`` pins one certificate (a trust list of one).
    Any other certificate is refused before the session is created; the error
    names its subject and SHA-256 thumbprint.

    Without ``username`` the session is anonymous; with it, the password comes
    from the environment variable ``password_env`` or the file ``password_file``
    (never from the config, nor from the URL).
    """

    name: str
    url: str
    security: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    trust_list: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    timeout: float = 4.0
    publishing_interval: float = 0.5
    keepalive_interval: float = 1.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    nodes: list[OpcUaNode] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"endpoint {self.name!r}"
        problems: list[str] = []
        problems.extend(f"{where}: {p}" for p in _opcua_url_problems(self.url))
        if self.security == "None" and self.mode != "None":
            problems.append(f"{where}: mode {self.mode!r} needs security Basic256Sha256")
        if self.security != "None":
            if self.mode == "None":
                problems.append(
                    f"{where}: security {self.security} needs mode Sign or SignAndEncrypt"
                )
            if not (self.certificate and self.private_key):
                problems.append(
                    f"{where}: security {self.security} needs certificate and private_key"
                )
            if not (self.trust_list or self.server_certificate):
                problems.append(
                    f"{where}: security {self.security} needs trust_list (a file or directory "
                    "of trusted server certificates, or their CA) or server_certificate; "
                    "without it any server on the port would receive the session"
                )
        else:
            if self.trust_list or self.server_certificate:
                problems.append(
                    f"{where}: trust_list/server_certificate need security Basic256Sha256"
                )
            if self.username is not None:
                problems.append(
                    f"{where}: a username needs security Basic256Sha256 (with security None "
                    "the password would go in clear to whatever server answers on the port)"
                )
        if self.username is not None and (self.password_env is None) == (
            self.password_file is None
        ):
            problems.append(
                f"{where}: user {self.username!r} needs one of password_env, password_file"
            )
        if self.username is None and (self.password_env or self.password_file):
            problems.append(f"{where}: a password source without username")
        for field in ("timeout", "publishing_interval", "keepalive_interval"):
            value = getattr(self, field)
            if not (value > 0 and math.isfinite(value)):
                problems.append(f"{where}: {field} must be > 0 s, got {value}")
        if not 0 < self.backoff_initial <= self.backoff_max:
            problems.append(f"{where}: need 0 < backoff_initial <= backoff_max")
        dupes = _duplicates(n.name for n in self.nodes)
        if dupes:
            problems.append(f"{where}: duplicate node names {dupes}")
        # one monitored item per node id: a second tag on the same node would never get values
        node_dupes = _duplicates(n.node_id for n in self.nodes)
        if node_dupes:
            problems.append(
                f"{where}: node ids subscribed twice {node_dupes} (map one tag to several "
                "fields instead)"
            )
        _raise_all(problems)

    def password(self) -> str | None:
        """The user's password, read now from the environment or the file.

        Raises :class:`ConfigError` when the variable is unset or the file unreadable.
        """
        if self.username is None:
            return None
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"endpoint {self.name!r}: environment variable {self.password_env} is not set"
                )
            return value
        assert self.password_file is not None
        try:
            return Path(self.password_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"endpoint {self.name!r}: cannot read password_file {self.password_file}: {exc}"
            ) from None


# --- Siemens S7 ------------------------------------------------------------------------------

# S7 negotiates the PDU size per connection; 240 (S7-300 CPUs) to 960 (S7-1500).
S7_MIN_PDU = 240
S7_MAX_PDU = 960
# Bytes of a read response that are not data: header 12 + parameters 2 + item header 4.
S7_READ_OVERHEAD = 18
_S7_NUMERIC = {
    "BYTE", "WORD", "DWORD", "SINT", "INT", "DINT", "USINT", "UINT", "UDINT", "REAL", "LREAL",
}  # fmt: skip


def _check_interval_and_names(where: str, interval: float, names: list[str]) -> None:
    if not interval > 0:
        raise ValueError(f"{where}: interval must be > 0 s")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: duplicate tag names {dupes}")


class S7TagSpec(_Config):
    """One tag of an S7 PLC at an S7 address (``DB1.DBD0:REAL``, ``MW10``, ``I0.1``).

    See :mod:`isthmus.sources.s7address` for the syntax. Numeric types may be
    scaled: ``value = raw * scale + offset`` in ``unit``.
    """

    name: str
    address: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    def __post_init__(self) -> None:
        from isthmus.sources.s7address import parse_s7_address

        if not self.name:
            raise ValueError("tag name must not be empty")
        try:
            parsed = parse_s7_address(self.address)
        except ValueError as exc:
            raise ValueError(f"tag {self.name!r}: {exc}") from None
        if not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError(f"tag {self.name!r}: scale and offset must be finite")
        scaled = (self.scale, self.offset) != (1.0, 0.0)
        if scaled and parsed.type not in _S7_NUMERIC:
            raise ValueError(f"tag {self.name!r}: a {parsed.type} cannot be scaled")

    @property
    def location(self) -> Any:
        """The parsed :class:`~isthmus.sources.s7address.S7Address`."""
        from isthmus.sources.s7address import parse_s7_address

        return parse_s7_address(self.address)


class S7PollGroup(_Config):
    """S7 tags read together every ``interval`` seconds."""

    name: str
    interval: float
    tags: list[S7TagSpec]

    def __post_init__(self) -> None:
        where = f"poll group {self.name!r}"
        _check_interval_and_names(where, self.interval, [t.name for t in self.tags])


class S7Device(_Config):
    """One Siemens S7 PLC (S7-300/400/1200/1500 over ISO-on-TCP) and what to read from it.

    ``rack``/``slot`` select the CPU (S7-300: 0/2; S7-400: see the hardware
    configuration; S7-1200/1500: 0/1, with PUT/GET access enabled and the data
    blocks not "optimized"). ``pdu_size`` is what the gateway asks for; the PLC
    may grant less, and reads are planned for what it grants. ``max_gap`` is the
    number of unused bytes a coalesced read may bridge.
    """

    name: str
    host: str
    port: int = 102
    rack: int = 0
    slot: int = 1
    connect_timeout: float = 3.0
    request_timeout: float = 1.0
    max_requests_per_second: float = 20.0
    max_gap: int = 16
    pdu_size: int = 480
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    poll_groups: list[S7PollGroup] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"device {self.name!r}"
        if not 0 < self.port < 65536:
            raise ValueError(f"{where}: port must be in 1..65535")
        if not 0 <= self.rack <= 7 or not 0 <= self.slot <= 31:
            raise ValueError(f"{where}: rack must be in 0..7 and slot in 0..31")
        for field in ("connect_timeout", "request_timeout", "max_requests_per_second"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{where}: {field} must be > 0")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError(f"{where}: need 0 < backoff_initial <= backoff_max")
        if self.max_gap < 0:
            raise ValueError(f"{where}: max_gap must be >= 0 bytes")
        if not S7_MIN_PDU <= self.pdu_size <= S7_MAX_PDU:
            raise ValueError(f"{where}: pdu_size must be in {S7_MIN_PDU}..{S7_MAX_PDU}")
        limit = S7_MIN_PDU - S7_READ_OVERHEAD
        for group in self.poll_groups:
            for tag in group.tags:
                if tag.location.size > limit:
                    raise ValueError(
                        f"{where}: tag {tag.name!r} is {tag.location.size} bytes, more than the "
                        f"{limit} one read is sure to carry (smallest PDU {S7_MIN_PDU})"
                    )
        names = [t.name for g in self.poll_groups for t in g.tags]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"{where}: duplicate tag names {dupes}")


# --- EtherNet/IP (CIP) -----------------------------------------------------------------------

ENIP_TYPES = (
    "BOOL", "SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT", "REAL", "LREAL",
    "SSTRING",
)  # fmt: skip
_ENIP_TAG = re.compile(
    r"(Program:[A-Za-z_][\w]*\.)?[A-Za-z_][\w]*(\[\d+(,\d+){0,2}\])?"
    r"(\.[A-Za-z_][\w]*(\[\d+(,\d+){0,2}\])?)*"
)


class EnipTagSpec(_Config):
    """One Logix tag, by its symbolic path (``Speed``, ``Program:Main.Speed``,
    ``Temps[3]``, ``Recipe.Name``).

    With ``elements > 1`` the tag is an array slice starting at the index in
    ``tag`` (``Temps[0]`` with ``elements = 10``) and publishes one value per
    element, named ``<name>[i]``. ``type``, when given, is checked against the
    type the controller reports (a mismatch is a bad value, not a wrong number).
    Numeric values may be scaled: ``value = raw * scale + offset`` in ``unit``.
    """

    name: str
    tag: str
    elements: int = 1
    type: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("tag name must not be empty")
        if _ENIP_TAG.fullmatch(self.tag) is None:
            raise ValueError(
                f"tag {self.name!r}: {self.tag!r} is not a Logix tag path "
                "(Speed, Program:Main.Speed, Temps[3], Recipe.Name)"
            )
        if not 1 <= self.elements <= 65535:
            raise ValueError(f"tag {self.name!r}: elements must be in 1..65535")
        if self.elements > 1 and not self.tag.endswith("]"):
            raise ValueError(f"tag {self.name!r}: an array slice needs a start index (Temps[0])")
        if self.type is not None:
            self.type = self.type.upper()
            if self.type not in ENIP_TYPES:
                raise ValueError(
                    f"tag {self.name!r}: type {self.type!r} is not one of {', '.join(ENIP_TYPES)}"
                )
        if not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError(f"tag {self.name!r}: scale and offset must be finite")
        if (self.scale, self.offset) != (1.0, 0.0) and self.type in ("BOOL", "SSTRING"):
            raise ValueError(f"tag {self.name!r}: a {self.type} cannot be scaled")

    @property
    def value_names(self) -> list[str]:
        """Names of the values this tag publishes."""
        if self.elements == 1:
            return [self.name]
        return [f"{self.name}[{i}]" for i in range(self.elements)]


class EnipAttributeSpec(_Config):
    """A CIP attribute read with Get Attribute Single, for any CIP device (drives, adapters):
    ``class_id``/``instance``/``attribute`` (e.g. the identity object: 1/1/7 is the product
    name) decoded as ``type`` (little-endian, as CIP sends it)."""

    name: str
    class_id: int
    instance: int
    attribute: int
    type: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    def __post_init__(self) -> None:
        where = f"attribute {self.name!r}"
        if not self.name:
            raise ValueError("attribute name must not be empty")
        if not 1 <= self.class_id <= 0xFFFF or not 0 <= self.instance <= 0xFFFF:
            raise ValueError(f"{where}: class_id must be in 1..65535 and instance in 0..65535")
        if not 1 <= self.attribute <= 0xFFFF:
            raise ValueError(f"{where}: attribute must be in 1..65535")
        self.type = self.type.upper()
        if self.type not in ENIP_TYPES:
            raise ValueError(f"{where}: type {self.type!r} is not one of {', '.join(ENIP_TYPES)}")
        if not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError(f"{where}: scale and offset must be finite")
        if (self.scale, self.offset) != (1.0, 0.0) and self.type in ("BOOL", "SSTRING"):
            raise ValueError(f"{where}: a {self.type} cannot be scaled")

    @property
    def value_names(self) -> list[str]:
        return [self.name]


class EnipPollGroup(_Config):
    """EtherNet/IP tags (and CIP attributes) read together every ``interval`` seconds."""

    name: str
    interval: float
    tags: list[EnipTagSpec] = msgspec.field(default_factory=list)
    attributes: list[EnipAttributeSpec] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"poll group {self.name!r}"
        names = [t.name for t in self.tags] + [a.name for a in self.attributes]
        _check_interval_and_names(where, self.interval, names)


class EnipDevice(_Config):
    """One EtherNet/IP controller (Rockwell ControlLogix/CompactLogix) and what to read.

    ``route_path`` is the backplane route to the CPU (``"1/0"``: port 1, slot 0);
    an empty string sends without routing (CompactLogix, Micro800, simulators).
    ``max_request_bytes`` bounds one Multiple Service Packet request (Logix's
    unconnected messages take about 500 bytes).
    """

    name: str
    host: str
    port: int = 44818
    route_path: str = "1/0"
    connect_timeout: float = 3.0
    request_timeout: float = 2.0
    max_requests_per_second: float = 20.0
    max_request_bytes: int = 500
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    poll_groups: list[EnipPollGroup] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"device {self.name!r}"
        if not 0 < self.port < 65536:
            raise ValueError(f"{where}: port must be in 1..65535")
        if self.route_path and re.fullmatch(r"\d+/\d+(/\d+/\d+)*", self.route_path) is None:
            raise ValueError(f"{where}: route_path {self.route_path!r} is not port/link[/...]")
        for field in ("connect_timeout", "request_timeout", "max_requests_per_second"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{where}: {field} must be > 0")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError(f"{where}: need 0 < backoff_initial <= backoff_max")
        if not 100 <= self.max_request_bytes <= 4000:
            raise ValueError(f"{where}: max_request_bytes must be in 100..4000")
        names = [n for g in self.poll_groups for t in g.tags for n in t.value_names]
        names += [a.name for g in self.poll_groups for a in g.attributes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"{where}: duplicate tag names {dupes}")


class SourcesConfig(_Config):
    """All sources of one gateway (the gateway's config embeds these lists)."""

    modbus: list[ModbusDevice] = msgspec.field(default_factory=list)
    opcua: list[OpcUaEndpoint] = msgspec.field(default_factory=list)
    s7: list[S7Device] = msgspec.field(default_factory=list)
    enip: list[EnipDevice] = msgspec.field(default_factory=list)


T = TypeVar("T")


def _duplicates(names: Iterable[str]) -> list[str]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return sorted(n for n, c in counts.items() if c > 1)


def _raise_all(problems: list[str]) -> None:
    """Raise every problem at once (one per line): a fix should not reveal the next one."""
    if problems:
        raise ValueError("\n".join(problems))


def _opcua_url_problems(url: str) -> list[str]:
    """What is wrong with an OPC UA URL; never repeats a password it carries."""
    if not url.startswith("opc.tcp://"):
        return ["url must start with opc.tcp://"]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["url has a bad port"]
    problems: list[str] = []
    if parts.username is not None or parts.password is not None:
        problems.append(
            "url: credentials in the URL are not accepted (they would end up in logs); "
            "use username with password_env or password_file"
        )
    if not parts.hostname:
        problems.append("url has no host")
    if port == 0:
        problems.append("url has a bad port")
    return problems


def parse(kind: type[T], data: Any, path: str = "") -> T:
    """Convert decoded TOML/JSON ``data`` to ``kind``; errors name the config path.

    ``path`` is the prefix of this object inside the whole config file (e.g.
    ``"sources"``), so messages read ``sources.modbus[0].port: ...``.
    """
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(_with_path(str(exc), path)) from None


def _with_path(message: str, prefix: str) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.modbus[0].port`".
    match = re.search(r" - at `\$(.*)`$", message)
    if match is None:
        return f"{prefix or '<root>'}: {message}"
    where = (prefix + match.group(1)).lstrip(".") or "<root>"
    return f"{where}: {message[: match.start()]}"


__all__ = [
    "ENIP_TYPES",
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "EnipDevice",
    "EnipPollGroup",
    "EnipTagSpec",
    "ModbusDevice",
    "OpcUaEndpoint",
    "OpcUaNode",
    "PollGroup",
    "S7Device",
    "S7PollGroup",
    "S7TagSpec",
    "SourcesConfig",
    "TagSpec",
    "WaveformBlock",
    "parse",
    "register_width",
]
