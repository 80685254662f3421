"""OPC UA acquisition (asyncua client): subscriptions into the common value stream.

:class:`OpcUaSession` connects to one endpoint (security None or
Basic256Sha256 Sign / SignAndEncrypt with a client certificate; anonymous or
user/password), creates one subscription and monitors every configured node
with its own sampling interval and queue size. Data-change notifications
become :class:`~isthmus.sources.values.TagValue` (status code -> quality, the
server's source timestamp kept); array variables marked ``waveform`` go into a
:class:`isthmus.SampleRing` instead, with the time between snapshots reported
as a gap and overlapping samples dropped.

Server restarts: asyncua's watchdog probes the server every
``keepalive_interval`` s; on a lost connection the session is torn down, every
node reported BAD, and a new session with new subscriptions is created after an
exponential backoff with equal jitter (a delay drawn from the upper half of the
step). The session only reads and subscribes: no writes, no method calls.

Security: with Basic256Sha256 the server's certificate is checked against the
endpoint's ``trust_list``/``server_certificate`` (:mod:`isthmus.sources.trust`)
before the session is created, so credentials only go to a trusted server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from isthmus.errors import ConfigError
from isthmus.sources.config import OpcUaEndpoint, OpcUaNode
from isthmus.sources.modbus import BlockCallback, _ignore, cancel_and_wait
from isthmus.sources.trust import UntrustedCertificate
from isthmus.sources.values import Quality, TagValue, float32_value

log = logging.getLogger(__name__)

ValuesCallback = Callable[[list[TagValue]], None]


def quality_of(status: Any) -> tuple[Quality, str | None]:
    """OPC UA status code -> (quality, reason); the two top bits give the severity."""
    code = int(getattr(status, "value", status))
    severity = code >> 30
    if severity == 0:
        return Quality.GOOD, None
    try:
        from asyncua.ua.status_codes import get_name_and_doc

        name = get_name_and_doc(code)[0]
    except Exception:  # an unknown code still has a severity
        name = f"0x{code:08X}"
    return (Quality.UNCERTAIN if severity == 1 else Quality.BAD), name


@dataclass
class OpcUaStats:
    """Running statistics of one endpoint session."""

    sessions: int = 0  # sessions created (1 + reconnects)
    notifications: int = 0
    bad_nodes: int = 0  # nodes the server refused to monitor (last session)
    connected: bool = False
    last_notification: float | None = None
    snapshots: int = 0
    gap_samples: int = 0
    overlap_samples: int = 0  # samples dropped because a snapshot repeated them


class OpcUaSession:
    """Subscribes to one endpoint until closed (an async context manager)."""

    def __init__(
        self,
        endpoint: OpcUaEndpoint,
        on_values: ValuesCallback | None = None,
        ring_seconds: float = 10.0,
        on_block: BlockCallback | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.on_block = on_block
        self.on_values: ValuesCallback = on_values if on_values is not None else _ignore
        self.stats = OpcUaStats()
        self.rings: dict[str, Any] = {}
        self._ring_end: dict[str, float] = {}  # Unix s just after the last sample pushed
        for node in endpoint.nodes:
            if node.waveform:
                import isthmus

                assert node.sample_rate is not None
                self.rings[node.name] = isthmus.SampleRing(
                    1, int(node.sample_rate * ring_seconds), node.sample_rate
                )
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._lost = asyncio.Event()
        self._by_node: dict[Any, OpcUaNode] = {}
        self._refused_logged: set[tuple[str, str]] = set()
        self.last_error: str | None = None
        self.security_policy_uri: str | None = None  # of the current session
        self.server_certificate_label: str | None = None  # the trusted server's, once verified

    async def __aenter__(self) -> OpcUaSession:
        self._task = asyncio.create_task(self.run(), name=f"opcua:{self.endpoint.name}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop and disconnect."""
        self._closing = True
        self._lost.set()
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def run(self) -> None:
        """Connect, subscribe, wait for loss, reconnect with backoff; forever."""
        backoff = self.endpoint.backoff_initial
        while not self._closing:
            client = None
            reason = "connection lost"
            try:
                client = await self._connect()
                backoff = self.endpoint.backoff_initial
                # asyncua bounds each request; this bounds the whole set-up as well
                async with asyncio.timeout(self.endpoint.timeout * (2 + len(self.endpoint.nodes))):
                    await self._subscribe(client)
                await self._lost.wait()
            except (UntrustedCertificate, ConfigError) as exc:
                # a trust decision or an unusable file: said once, not on every retry
                reason = str(exc)
                if reason != self.last_error:
                    log.error("opcua %s: %s", self.endpoint.name, reason)
            except (OSError, TimeoutError, ConnectionError) as exc:
                reason = str(exc) or type(exc).__name__
                log.warning("opcua %s: %s", self.endpoint.name, reason)
            except Exception as exc:
                from asyncua.ua.uaerrors import UaError

                reason = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, UaError):  # asyncua's refusals (bad user, bad node ...)
                    log.warning("opcua %s: %s", self.endpoint.name, reason)
                else:
                    # a bug, an odd library error, an unreadable password file: log it in
                    # full and keep retrying rather than end this endpoint's acquisition
                    log.exception("opcua %s: session failed, reconnecting", self.endpoint.name)
            finally:
                self.stats.connected = False
                if client is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(self.endpoint.timeout):
                            await client.disconnect()
            if self._closing:
                break
            self.last_error = reason
            self._report_all_bad(f"not connected ({reason})")
            await asyncio.sleep(random.uniform(0.5 * backoff, backoff))
            backoff = min(backoff * 2, self.endpoint.backoff_max)

    async def _connect(self) -> Any:
        from asyncua import ua
        from asyncua.client.client import Client
        from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

        ep = self.endpoint
        client = Client(ep.url, timeout=ep.timeout, watchdog_intervall=ep.keepalive_interval)
        if ep.security == "Basic256Sha256":
            assert ep.certificate and ep.private_key
            mode = (
                ua.MessageSecurityMode.Sign
                if ep.mode == "Sign"
                else ua.MessageSecurityMode.SignAndEncrypt
            )
            # Verified before set_security: asyncua would take whatever the server offers.
            offered = await self._trusted_server_certificate(mode, SecurityPolicyBasic256Sha256.URI)
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                ep.certificate,
                ep.private_key,
                server_certificate=offered,
                mode=mode,
            )
        if ep.username is not None:
            client.set_user(ep.username)
            password = ep.password()
            if password is not None:
                client.set_password(password)
        self._lost = asyncio.Event()
        lost = self._lost

        async def on_lost(exc: Exception) -> None:
            log.warning("opcua %s: connection lost: %r", ep.name, exc)
            lost.set()

        client.connection_lost_callback = on_lost
        async with asyncio.timeout(ep.timeout * 2):
            await client.connect()
        self.stats.sessions += 1
        self.stats.connected = True
        self.security_policy_uri = client.security_policy.URI
        return client

    async def _trusted_server_certificate(self, mode: Any, policy_uri: str) -> bytes:
        """The DER certificate the server offers for ``mode``, once the trust list vouches for it.

        Read from the server's endpoint list over an unsecured discovery channel (which
        carries no credentials); the secure channel set up with it afterwards proves the
        server holds the matching private key. Raises :class:`UntrustedCertificate`.
        """
        from asyncua.client.client import Client

        from isthmus.sources.trust import (
            certificate_label,
            load_certificates,
            verify_server_certificate,
        )

        ep = self.endpoint
        trusted = []
        places = []
        if ep.trust_list:
            trusted += load_certificates(ep.trust_list, f"endpoint {ep.name!r}: trust_list")
            places.append(f"trust_list {ep.trust_list}")
        if ep.server_certificate:
            trusted += load_certificates(
                ep.server_certificate, f"endpoint {ep.name!r}: server_certificate"
            )
            places.append(f"server_certificate {ep.server_certificate}")
        discovery = Client(ep.url, timeout=ep.timeout)
        async with asyncio.timeout(ep.timeout * 2):
            endpoints = await discovery.connect_and_get_server_endpoints()
        offered = Client.find_endpoint(endpoints, mode, policy_uri).ServerCertificate
        if not offered:
            raise UntrustedCertificate(f"{ep.url} offered no certificate for {policy_uri}")
        der = _first_certificate(offered)
        cert = verify_server_certificate(der, trusted, server=ep.url, where=" and ".join(places))
        self.server_certificate_label = certificate_label(cert)
        return der

    async def _subscribe(self, client: Any) -> None:
        from asyncua import ua

        ep = self.endpoint
        sub = await client.create_subscription(ep.publishing_interval * 1000.0, _Handler(self))
        groups: dict[tuple[float, int], list[OpcUaNode]] = {}
        for node in ep.nodes:
            groups.setdefault((node.sampling_interval, node.queue_size), []).append(node)
        self._by_node = {}
        bad: list[TagValue] = []
        for (interval, queue), nodes in groups.items():
            handles = [client.get_node(n.node_id) for n in nodes]
            for cfg, handle in zip(nodes, handles, strict=True):
                self._by_node[handle.nodeid] = cfg
            results = await sub.subscribe_data_change(
                handles, queuesize=queue, sampling_interval=interval * 1000.0
            )
            for cfg, result in zip(nodes, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    _quality, reason = quality_of(result)
                    reason = reason or "refused"
                    bad.append(self._bad(cfg, reason))
                    if (cfg.node_id, reason) not in self._refused_logged:
                        # once per node and status: a reconnect must not repeat it
                        self._refused_logged.add((cfg.node_id, reason))
                        log.warning(
                            "opcua %s: server refused node %s (tag %r): %s (0x%08X)",
                            ep.name,
                            cfg.node_id,
                            cfg.name,
                            reason,
                            result.value,
                        )
        self.stats.bad_nodes = len(bad)
        if bad:
            self.on_values(bad)

    # -- notifications --------------------------------------------------------

    def _notify(self, node: Any, value: Any, data: Any) -> None:
        cfg = self._by_node.get(node.nodeid)
        if cfg is None:
            return
        self.stats.notifications += 1
        now = time.time()
        self.stats.last_notification = now
        dv = data.monitored_item.Value
        quality, reason = quality_of(dv.StatusCode)
        stamp = dv.SourceTimestamp or dv.ServerTimestamp
        source_time = stamp.timestamp() if stamp is not None else None
        if cfg.waveform and quality is not Quality.BAD and value is not None:
            self._push_waveform(cfg, value, source_time if source_time is not None else now)
            return
        if quality is Quality.BAD:
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and _is_float32(dv):
            # an OPC UA Float is float32: publish its shortest repr (1.88, not 1.8799999)
            value = float32_value(value)
        self.on_values(
            [
                TagValue(
                    source=self.endpoint.name,
                    tag=cfg.name,
                    value=value,
                    unit=cfg.unit,
                    quality=quality,
                    reason=reason,
                    source_time=source_time,
                    gateway_time=now,
                )
            ]
        )

    def _push_waveform(self, cfg: OpcUaNode, value: Any, t0: float) -> None:
        assert cfg.sample_rate is not None
        samples = np.asarray(value, dtype=np.float32).reshape(1, -1)
        rate = cfg.sample_rate
        end = self._ring_end.get(cfg.name)
        gap = 0
        if end is not None:
            offset = round((t0 - end) * rate)  # samples between the last push and this snapshot
            if offset >= 0:
                gap = offset
            else:
                skip = min(-offset, samples.shape[1])  # already in the ring
                self.stats.overlap_samples += skip
                samples = samples[:, skip:]
                t0 += skip / rate
        if samples.shape[1] == 0:
            return
        ring = self.rings[cfg.name]
        if end is None:
            ring.push(samples, t0=t0)
        else:
            ring.push(samples, gap=gap)
        if self.on_block is not None:
            self.on_block(cfg.name, samples, gap)
        self.stats.snapshots += 1
        self.stats.gap_samples += gap
        self._ring_end[cfg.name] = t0 + samples.shape[1] / rate

    def _bad(self, cfg: OpcUaNode, reason: str) -> TagValue:
        return TagValue(
            source=self.endpoint.name,
            tag=cfg.name,
            value=None,
            unit=cfg.unit,
            quality=Quality.BAD,
            reason=reason,
        )

    def _report_all_bad(self, reason: str) -> None:
        values = [self._bad(n, reason) for n in self.endpoint.nodes if not n.waveform]
        if values:
            self.on_values(values)


def _first_certificate(chain: bytes) -> bytes:
    """The leaf of a DER certificate chain (OPC UA may send the chain concatenated)."""
    # the outer SEQUENCE of a certificate > 255 bytes has a two-byte length at bytes 2:4
    if len(chain) >= 4 and chain[1] == 0x82:
        return chain[: int.from_bytes(chain[2:4], "big") + 4]
    return chain


def _is_float32(data_value: Any) -> bool:
    variant = getattr(data_value, "Value", None)
    kind = getattr(variant, "VariantType", None)
    return getattr(kind, "name", None) == "Float"


class _Handler:
    """asyncua subscription handler forwarding to the session."""

    def __init__(self, session: OpcUaSession) -> None:
        self.session = session

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.session._notify(node, val, data)

    def status_change_notification(self, status: Any) -> None:
        # the server says the subscription is gone (e.g. BadTimeout): start over
        quality, reason = quality_of(getattr(status, "Status", status))
        if quality is not Quality.GOOD:
            log.warning("opcua %s: subscription status %s", self.session.endpoint.name, reason)
            self.session._lost.set()


__all__ = ["OpcUaSession", "OpcUaStats", "quality_of"]
