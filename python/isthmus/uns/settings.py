"""MQTT connection and outbox settings (msgspec Structs, TOML-friendly).

The gateway configuration embeds :class:`MqttSettings` and :class:`OutboxSettings`.
Secrets never sit in the configuration in clear: the password is read from an
environment variable (``password_env``) or a file (``password_file``) at each connection
attempt, so a rotated password is picked up without a restart.

Validation errors are :class:`isthmus.ConfigError` whose message starts with the config
path at fault, e.g. ``mqtt.url: unsupported scheme 'http' (use mqtt:// or mqtts://)``.

In TOML::

    [mqtt]
    url = "mqtts://broker.plant.example:8883"
    protocol = "5"                       # or "3.1.1"
    client_id = "isthmus-gw1"
    ca_file = "/etc/isthmus/ca.pem"
    cert_file = "/etc/isthmus/gw1.pem"   # mutual TLS (with key_file)
    key_file = "/etc/isthmus/gw1.key"
    username = "gw1"
    password_file = "/run/secrets/mqtt"  # or password_env = "ISTHMUS_MQTT_PASSWORD"

    [outbox]
    path = "/var/lib/isthmus/outbox.sqlite3"
    max_messages = 100000
    max_bytes = 67108864
    policy = "drop-oldest-telemetry"
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import msgspec

from isthmus.errors import ConfigError

__all__ = [
    "MqttSettings",
    "OutboxSettings",
    "convert_config",
]

T = TypeVar("T")

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


def _redacted(url: str) -> str:
    """``url`` with anything before an ``@`` in its authority replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{path}"


class MqttSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How the gateway reaches the MQTT broker.

    ``url`` is ``mqtt://host[:port]`` (plain TCP, default port 1883) or
    ``mqtts://host[:port]`` (TLS, default port 8883). With TLS, ``ca_file`` is the CA bundle
    the broker's certificate must chain to (system CAs when omitted); ``cert_file`` and
    ``key_file`` together give a client certificate for mutual TLS.
    """

    url: str = "mqtt://127.0.0.1:1883"
    #: MQTT protocol version: "5" (default) or "3.1.1".
    protocol: Literal["5", "3.1.1"] = "5"
    #: Client identifier; empty means ``isthmus-<hostname>``. Keep it stable so the broker
    #: takes over the previous session of a restarted gateway.
    client_id: str = ""
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    #: Name of the environment variable holding the password.
    password_env: str | None = None
    #: Path of a file whose content (stripped of the trailing newline) is the password.
    password_file: str | None = None
    #: MQTT keepalive, seconds.
    keepalive_s: int = 30
    #: Timeout of the CONNECT/CONNACK exchange and of each PUBACK wait, seconds.
    timeout_s: float = 10.0
    #: Reconnect backoff: first delay and ceiling, seconds (exponential, equal jitter:
    #: each delay drawn from the upper half of the current step).
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    #: QoS of data products and vibration features. 1 (default) lets the outbox delete a
    #: message only after PUBACK; 0 deletes it once written to the socket.
    telemetry_qos: Literal[0, 1] = 1
    #: QoS of alerts; at least 1 so every raise and clear is acknowledged.
    alert_qos: Literal[1, 2] = 1
    #: Period of the retained gateway status refresh (with counters), seconds.
    status_interval_s: float = 30.0
    #: Publishes awaiting their PUBACK at once (pipelining window), 1..1000.
    inflight: int = 64

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        shown = _redacted(self.url)
        if "@" in parts.netloc and ":" in parts.netloc.rpartition("@")[0]:
            raise ConfigError(
                "url: credentials in the URL are not accepted (they would end up in logs); "
                "use username with password_env or password_file"
            )
        if parts.scheme not in _DEFAULT_PORTS:
            raise ConfigError(
                f"url: unsupported scheme {parts.scheme!r} in {shown!r} "
                "(use mqtt://host:port or mqtts://host:port)"
            )
        if not parts.hostname:
            raise ConfigError(f"url: no host in {shown!r}")
        try:
            _ = parts.port
        except ValueError:
            raise ConfigError(f"url: bad port in {shown!r}") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"url: unexpected path or query in {shown!r}")
        if not self.tls and any((self.ca_file, self.cert_file, self.key_file)):
            raise ConfigError(
                "url: TLS files are set but the URL is mqtt://; use mqtts:// to enable TLS"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError(
                "cert_file: mutual TLS needs both cert_file and key_file"
                if self.cert_file is None
                else "key_file: mutual TLS needs both cert_file and key_file"
            )
        if self.password_env is not None and self.password_file is not None:
            raise ConfigError("password_file: give password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username:
            raise ConfigError("username: a password source is set but no username")
        if self.password_env is not None and not re.fullmatch(
            r"[A-Za-z_][A-Za-z0-9_]*", self.password_env
        ):
            raise ConfigError(f"password_env: {self.password_env!r} is not a variable name")
        if not 0 < self.keepalive_s <= 65535:
            raise ConfigError(f"keepalive_s: {self.keepalive_s} is not in 1..65535 s")
        for name in ("timeout_s", "reconnect_min_s", "reconnect_max_s", "status_interval_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be > 0 s")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError("reconnect_max_s: smaller than reconnect_min_s")
        if not 1 <= self.inflight <= 1000:
            raise ConfigError(f"inflight: {self.inflight} is not in 1..1000")

    @property
    def tls(self) -> bool:
        """True for ``mqtts://`` URLs."""
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        """Broker host name or address."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """Broker TCP port (scheme default when the URL has none)."""
        parts = urlsplit(self.url)
        return parts.port or _DEFAULT_PORTS[parts.scheme]

    @property
    def identifier(self) -> str:
        """The client id to use (``client_id`` or ``isthmus-<hostname>``)."""
        return self.client_id or f"isthmus-{socket.gethostname()}"

    def password(self) -> str | None:
        """Read the password from its source now (None without a source).

        Raises :class:`ConfigError` naming the source when it cannot be read.
        """
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"password_env: environment variable {self.password_env} is not set"
                )
            return value
        if self.password_file is not None:
            try:
                return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(
                    f"password_file: cannot read {self.password_file}: {exc.strerror}"
                ) from None
        return None


class OutboxSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The durable store-and-forward queue in front of the broker.

    Bound and policy (``policy = "drop-oldest-telemetry"``, the default): when a new
    message would exceed ``max_messages`` or ``max_bytes`` (topic + payload bytes), the
    oldest *telemetry* messages are dropped first. Alerts (and alert lists, schemas) are
    never dropped nor refused: when only they are left they are kept beyond the bound
    (counted). With ``policy = "reject-new"`` nothing accepted is ever dropped and new
    telemetry is refused while full. While the broker lags, telemetry also conflates per
    topic (latest wins; see :mod:`isthmus.uns.outbox`). Every drop is counted.

    ``synchronous = "normal"`` (default): in WAL mode a commit survives a crash or SIGKILL
    of the gateway process (the WAL is in the OS page cache) but the last commits may be
    lost on power failure or kernel panic. ``"full"`` fsyncs the WAL on every commit, which
    also survives power loss, at the cost of one disk flush per batch of messages.
    """

    path: str = "isthmus-outbox.sqlite3"
    max_messages: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    policy: Literal["drop-oldest-telemetry", "reject-new"] = "drop-oldest-telemetry"
    synchronous: Literal["normal", "full"] = "normal"
    #: Messages waiting in memory to be written into the outbox. Past it, new telemetry
    #: replaces the queued telemetry of its topic (latest wins) or, with none queued, is
    #: dropped (both counted) so producers never block; alerts always enter this queue.
    queue_size: int = 10_000

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("path: empty outbox path")
        if self.max_messages < 1:
            raise ConfigError(f"max_messages: {self.max_messages} must be >= 1")
        if self.max_bytes < 1024:
            raise ConfigError(f"max_bytes: {self.max_bytes} must be >= 1024")
        if self.queue_size < 1:
            raise ConfigError(f"queue_size: {self.queue_size} must be >= 1")


_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<where>[^`]*)`$", re.DOTALL)
_FIELD_PREFIX = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_]*): (?P<rest>.*)$", re.DOTALL)


def _join(path: str, suffix: str) -> str:
    if not suffix:
        return path
    if not path:
        return suffix.lstrip(".")
    return path + suffix if suffix.startswith("[") else f"{path}.{suffix.lstrip('.')}"


def config_error(exc: msgspec.ValidationError, path: str) -> ConfigError:
    """Turn a msgspec validation error into a ConfigError that starts with the config path.

    ``path`` is where the converted object sits in the whole configuration (e.g. ``mqtt``).
    """
    text = str(exc)
    where = ""
    match = _AT.match(text)
    if match:
        text, where = match["msg"], match["where"]
    full = _join(path, where)
    field = _FIELD_PREFIX.match(text)
    if field:  # our own __post_init__ messages start with "field: "
        full, text = _join(full, field["field"]), field["rest"]
    if "unknown field `password`" in text:
        text += " (a password is never kept in the config: use password_env or password_file)"
    return ConfigError(f"{full or '<config>'}: {text}")


def convert_config(data: Any, type_: type[T], path: str) -> T:
    """Convert decoded TOML/JSON ``data`` into ``type_``; errors name the config path."""
    try:
        return msgspec.convert(data, type_)
    except msgspec.ValidationError as exc:
        raise config_error(exc, path) from None
