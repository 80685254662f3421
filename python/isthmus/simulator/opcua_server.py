"""Vendor "charlie" pumps over OPC UA: an asyncua server with typed variables.

Address space (namespace ``urn:isthmus:simulator``, string node ids so they
survive a restart): ``ns=2;s=<pump>.<Variable>`` for each of
:data:`~isthmus.simulator.vendors.CHARLIE_VARIABLES`, plus
``<pump>.Waveform`` (Float array of :data:`CHARLIE_WAVEFORM_SAMPLES` samples
in g, a fresh snapshot every ``waveform_interval`` seconds, its source
timestamp the time of the first sample) and ``<pump>.WaveformRate`` (Hz).

Security: ``None`` always; with a server certificate and key also
Basic256Sha256 Sign and SignAndEncrypt. With ``users`` set, anonymous logins
are refused and user/password is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from pathlib import Path
from typing import Any

from isthmus.simulator.plant import Pump
from isthmus.simulator.vendors import CHARLIE_VARIABLES, CHARLIE_WAVEFORM_SAMPLES

NAMESPACE = "urn:isthmus:simulator"


def node_id(pump: str, variable: str, ns: int = 2) -> str:
    """The string node id of ``variable`` of ``pump``."""
    return f"ns={ns};s={pump}.{variable}"


class OpcUaPumpServer:
    """Serves the charlie-vendor pumps at ``opc.tcp://host:port/isthmus/``."""

    def __init__(
        self,
        pumps: list[Pump],
        host: str = "127.0.0.1",
        port: int = 4840,
        update_interval: float = 0.2,
        waveform_interval: float = 1.0,
        certificate: str | Path | None = None,
        private_key: str | Path | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.pumps = pumps
        self.url = f"opc.tcp://{host}:{port}/isthmus/"
        self.update_interval = update_interval
        self.waveform_interval = waveform_interval
        self.certificate = certificate
        self.private_key = private_key
        self.users = users
        self._server: Any = None
        self._vars: dict[tuple[str, str], Any] = {}
        self._task: asyncio.Task[None] | None = None
        # (pump, variable) -> OPC UA status code to publish instead of Good
        # (sensor-failure injection for tests; remove the entry to heal)
        self.failures: dict[tuple[str, str], int] = {}

    async def start(self) -> None:
        """Build the address space and listen."""
        from asyncua import ua
        from asyncua.crypto.permission_rules import User, UserRole
        from asyncua.server.server import Server

        users = self.users

        class _Users:
            def get_user(
                self,
                iserver: Any,
                username: str | None = None,
                password: str | None = None,
                certificate: Any = None,
            ) -> Any:
                if users is None:
                    return User(role=UserRole.User)
                if username is not None and users.get(username) == password:
                    return User(role=UserRole.User, name=username)
                return None

        server = Server(user_manager=_Users())  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("isthmus plant simulator (vendor charlie)")
        policies = [ua.SecurityPolicyType.NoSecurity]
        if self.certificate and self.private_key:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
            policies += [
                ua.SecurityPolicyType.Basic256Sha256_Sign,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ]
        server.set_security_policy(policies)
        tokens: list[type] = [ua.UserNameIdentityToken]
        if users is None:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        ns = await server.register_namespace(NAMESPACE)
        for pump in self.pumps:
            obj = await server.nodes.objects.add_object(f"ns={ns};s={pump.name}", pump.name)
            truth = pump.truth()
            for name, (_unit, value) in CHARLIE_VARIABLES.items():
                initial = value(truth)
                vtype = (
                    ua.VariantType.Boolean if isinstance(initial, bool) else ua.VariantType.Double
                )
                var = await obj.add_variable(
                    f"ns={ns};s={pump.name}.{name}", name, ua.Variant(initial, vtype)
                )
                self._vars[(pump.name, name)] = var
            wave = await obj.add_variable(
                f"ns={ns};s={pump.name}.Waveform",
                "Waveform",
                ua.Variant([0.0] * CHARLIE_WAVEFORM_SAMPLES, ua.VariantType.Float),
            )
            self._vars[(pump.name, "Waveform")] = wave
            rate = await obj.add_variable(
                f"ns={ns};s={pump.name}.WaveformRate",
                "WaveformRate",
                ua.Variant(pump.sample_rate, ua.VariantType.Double),
            )
            self._vars[(pump.name, "WaveformRate")] = rate
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._update_loop(), name="opcua-sim-update")

    async def stop(self) -> None:
        """Stop updating and close the server."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _update_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_wave = loop.time()
        while True:
            await self.write_values()
            if loop.time() >= next_wave:
                await self.write_waveforms()
                next_wave += self.waveform_interval
            await asyncio.sleep(self.update_interval)

    async def write_values(self) -> None:
        """Publish every pump's current truth."""
        from asyncua import ua

        for pump in self.pumps:
            truth = pump.truth()
            stamp = ua.DateTime.fromtimestamp(truth.time, datetime.UTC)
            for name, (_unit, value) in CHARLIE_VARIABLES.items():
                v = value(truth)
                vtype = ua.VariantType.Boolean if isinstance(v, bool) else ua.VariantType.Double
                status = ua.StatusCode(ua.UInt32(self.failures.get((pump.name, name), 0)))
                await self._vars[(pump.name, name)].write_value(
                    ua.DataValue(ua.Variant(v, vtype), StatusCode=status, SourceTimestamp=stamp)
                )

    async def write_waveforms(self) -> None:
        """Publish a fresh waveform snapshot (the last CHARLIE_WAVEFORM_SAMPLES samples)."""
        import time

        from asyncua import ua

        for pump in self.pumps:
            end = int(time.time() * pump.sample_rate)
            start = end - CHARLIE_WAVEFORM_SAMPLES
            samples = pump.waveform(0, start, CHARLIE_WAVEFORM_SAMPLES).astype("float32")
            stamp = ua.DateTime.fromtimestamp(start / pump.sample_rate, datetime.UTC)
            await self._vars[(pump.name, "Waveform")].write_value(
                ua.DataValue(
                    ua.Variant(samples.tolist(), ua.VariantType.Float), SourceTimestamp=stamp
                )
            )


__all__ = ["NAMESPACE", "OpcUaPumpServer", "node_id"]
