"""Source configuration: Modbus devices and OPC UA endpoints (msgspec Structs, TOML-friendly).

Every Struct forbids unknown fields, so a typo in a config file is an error
and not a silently ignored setting. :func:`parse` turns a decoded TOML/JSON
mapping into these Structs and raises :class:`isthmus.ConfigError` naming the
config path at fault (e.g. ``modbus[0].poll_groups[1].tags[3].address``).

Times are seconds, rates are Hz, addresses are zero-based protocol addresses
(register 40001 of a vendor manual is holding-register address 0).
"""

from __future__ import annotations

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
        elif self.trust_list or self.server_certificate:
            problems.append(f"{where}: trust_list/server_certificate need security Basic256Sha256")
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


class SourcesConfig(_Config):
    """All sources of one gateway (the gateway's config embeds these lists)."""

    modbus: list[ModbusDevice] = msgspec.field(default_factory=list)
    opcua: list[OpcUaEndpoint] = msgspec.field(default_factory=list)


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
