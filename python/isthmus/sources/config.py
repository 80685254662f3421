"""Source configuration: Modbus devices and OPC UA endpoints (msgspec Structs, TOML-friendly).

Every Struct forbids unknown fields, so a typo in a config file is an error
and not a silently ignored setting. :func:`parse` turns a decoded TOML/JSON
mapping into these Structs and raises :class:`isthmus.ConfigError` naming the
config path at fault (e.g. ``modbus[0].poll_groups[1].tags[3].address``).

Times are seconds, rates are Hz, addresses are zero-based protocol addresses
(register 40001 of a vendor manual is holding-register address 0).
"""

from __future__ import annotations

import collections
import functools
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

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


def duplicates(names: Iterable[str]) -> list[str]:
    """Names that occur more than once, sorted (linear: start-up with 50k tags stays fast)."""
    counts = collections.Counter(names)
    return sorted(n for n, c in counts.items() if c > 1)


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
        if not self.name:
            raise ValueError("tag name must not be empty")
        if self.register in ("coil", "discrete") and self.dtype != "bit":
            raise ValueError(f"tag {self.name!r}: {self.register} tags are dtype 'bit'")
        word_bit = self.dtype == "bit" and self.register in ("holding", "input")
        if word_bit and (self.bit is None or not 0 <= self.bit <= 15):
            raise ValueError(f"tag {self.name!r}: a bit of a register needs bit in 0..15")
        try:
            width = register_width(self.dtype, self.length)
        except ValueError as exc:
            raise ValueError(f"tag {self.name!r}: {exc}") from None
        if not self.address >= 0 or self.address + width > 65536:
            raise ValueError(f"tag {self.name!r}: address {self.address} outside 0..65535")
        if not math.isfinite(self.scale) or not math.isfinite(self.offset):
            raise ValueError(f"tag {self.name!r}: scale and offset must be finite")
        if self.register in ("holding", "input"):
            self.to_tag()  # and the decoder's own rules (TagError is a ValueError)

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
        if not self.interval > 0:
            raise ValueError(f"poll group {self.name!r}: interval must be > 0 s")
        dupes = duplicates(t.name for t in self.tags)
        if dupes:
            raise ValueError(f"poll group {self.name!r}: duplicate tag names {dupes}")


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
        if not self.sample_rate > 0:
            raise ValueError(f"{where}: sample_rate must be > 0 Hz")
        if self.samples < 1:
            raise ValueError(f"{where}: samples must be >= 1")
        if self.slots < 1 or 65536 % self.slots:
            # block k lives in slot k % slots and its 16-bit counter is k % 65536
            raise ValueError(f"{where}: slots must be a power of two (1, 2, 4, ... 65536)")
        if self.stride is not None and self.stride < self.block_registers:
            raise ValueError(f"{where}: stride {self.stride} < block size {self.block_registers}")
        end = max(self.address, self.sequence_address + 1) + self.slot_stride * (self.slots - 1)
        if min(self.address, self.sequence_address) < 0 or end + self.block_registers > 65536:
            raise ValueError(f"{where}: registers outside 0..65535")
        seq_inside = self.address <= self.sequence_address < self.address + self.block_registers
        if seq_inside:
            raise ValueError(f"{where}: sequence register inside the sample registers")

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
    poll_groups: list[PollGroup] = msgspec.field(default_factory=list)
    waveforms: list[WaveformBlock] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        where = f"device {self.name!r}"
        if not 0 < self.port < 65536:
            raise ValueError(f"{where}: port must be in 1..65535")
        if not 0 <= self.unit_id <= 255:
            raise ValueError(f"{where}: unit_id must be in 0..255")
        for field in ("connect_timeout", "request_timeout", "max_requests_per_second"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{where}: {field} must be > 0")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError(f"{where}: need 0 < backoff_initial <= backoff_max")
        if self.max_gap < 0:
            raise ValueError(f"{where}: max_gap must be >= 0 registers")
        if not 1 <= self.max_read_registers <= MAX_READ_REGISTERS:
            raise ValueError(f"{where}: max_read_registers must be in 1..{MAX_READ_REGISTERS}")
        if not 1 <= self.max_read_bits <= MAX_READ_BITS:
            raise ValueError(f"{where}: max_read_bits must be in 1..{MAX_READ_BITS}")
        for block in self.waveforms:
            # a counter right before the samples is read with them, in the same request
            one_read = block.block_registers + (block.sequence_address == block.address - 1)
            if one_read > self.max_read_registers:
                raise ValueError(
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
                    raise ValueError(
                        f"{where}: tag {tag.name!r} spans {tag.width} registers, more than "
                        f"one read may take ({limit})"
                    )
        names = [t.name for g in self.poll_groups for t in g.tags] + [
            w.name for w in self.waveforms
        ]
        dupes = duplicates(names)
        if dupes:
            raise ValueError(f"{where}: duplicate tag names {dupes}")


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
        if not self.sampling_interval >= 0:
            raise ValueError(f"node {self.name!r}: sampling_interval must be >= 0 s")
        if self.queue_size < 1:
            raise ValueError(f"node {self.name!r}: queue_size must be >= 1")
        if self.waveform and not (self.sample_rate or 0) > 0:
            raise ValueError(f"node {self.name!r}: a waveform node needs sample_rate > 0 Hz")


class OpcUaEndpoint(_Config):
    """One OPC UA server and the nodes to subscribe to.

    ``security`` is ``None`` or ``Basic256Sha256`` (then ``mode`` is ``Sign`` or
    ``SignAndEncrypt`` and a client ``certificate`` + ``private_key`` (PEM or
    DER paths) are required). Without ``username`` the session is anonymous;
    with it, the password comes from the environment variable
    ``password_env`` or the file ``password_file`` (never from the config).
    """

    name: str
    url: str
    security: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
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
        if not self.url.startswith("opc.tcp://"):
            raise ValueError(f"{where}: url must start with opc.tcp://")
        if self.security == "None" and self.mode != "None":
            raise ValueError(f"{where}: mode {self.mode!r} needs security Basic256Sha256")
        if self.security != "None":
            if self.mode == "None":
                raise ValueError(
                    f"{where}: security {self.security} needs mode Sign or SignAndEncrypt"
                )
            if not (self.certificate and self.private_key):
                raise ValueError(
                    f"{where}: security {self.security} needs certificate and private_key"
                )
        if self.username is not None and (self.password_env is None) == (
            self.password_file is None
        ):
            raise ValueError(
                f"{where}: user {self.username!r} needs one of password_env, password_file"
            )
        if self.username is None and (self.password_env or self.password_file):
            raise ValueError(f"{where}: a password source without username")
        for field in ("timeout", "publishing_interval", "keepalive_interval"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{where}: {field} must be > 0 s")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError(f"{where}: need 0 < backoff_initial <= backoff_max")
        names = [n.name for n in self.nodes]
        dupes = duplicates(names)
        if dupes:
            raise ValueError(f"{where}: duplicate node names {dupes}")

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


class SourcesConfig(_Config):
    """All sources of one gateway (the gateway's config embeds these lists)."""

    modbus: list[ModbusDevice] = msgspec.field(default_factory=list)
    opcua: list[OpcUaEndpoint] = msgspec.field(default_factory=list)


T = TypeVar("T")


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
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "ModbusDevice",
    "OpcUaEndpoint",
    "OpcUaNode",
    "PollGroup",
    "SourcesConfig",
    "TagSpec",
    "WaveformBlock",
    "parse",
    "register_width",
]
