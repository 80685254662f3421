"""``isthmus check --probe``: reach every peer of a configuration once, read-only.

Each Modbus device is connected and every poll group's requests are read once (the
same coalesced reads the gateway would make; waveform blocks: one block); each OPC UA
endpoint is connected, its server certificate verified as the gateway would, and every
node read once; the MQTT broker gets a TLS handshake (when ``mqtts://``) and a CONNECT
under a separate client id (``<client_id>-probe``, so the gateway's session is not
taken over), then a DISCONNECT: nothing is written to a device and nothing published.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import Any, TextIO

import numpy as np

from isthmus.gateway.config import GatewayConfig
from isthmus.sources.config import ModbusDevice, OpcUaEndpoint
from isthmus.uns.settings import MqttSettings


def _value(value: Any, unit: str | None, dtype: str | None = None) -> str:
    if isinstance(value, float):
        # an unscaled float32 register as float32 (49.166668), not its float64 widening
        value = str(np.float32(value)) if dtype == "float32" else repr(value)
    return f"{value} {unit}" if unit else str(value)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def probe_modbus(device: ModbusDevice, out: list[str]) -> bool:
    """Connect once and read every request of the plan once; True when all tags read good."""
    from isthmus.sources.modbus import ModbusSession, batch_values

    session = ModbusSession(device)
    where = f"modbus {device.name} {device.host}:{device.port} unit {device.unit_id}"
    began = time.perf_counter()
    try:
        # the session's own connect and read steps: the same requests, decoding and limits
        await session._connect()
    except (OSError, TimeoutError, Exception) as exc:
        out.append(f"{where}: UNREACHABLE: {_reason(exc)}")
        return False
    ok = True
    dtypes = {t.name: t.dtype for g in device.poll_groups for t in g.tags if t.scale == 1.0}
    try:
        out.append(f"{where}: reachable ({1e3 * (time.perf_counter() - began):.0f} ms)")
        for group in session.plan.groups:
            index = 0
            while index < len(group.requests):
                batches, consumed = await session._read_request(group, index)
                index += consumed
                for v in (v for batch in batches for v in batch_values(batch)):
                    if v.good:
                        value = _value(v.value, v.unit, dtypes.get(v.tag))
                        out.append(f"  {v.tag} = {value}")
                    else:
                        ok = False
                        out.append(f"  {v.tag}: {v.quality.name.lower()} ({v.reason})")
        for block in device.waveforms:
            try:
                data = await session._read(block.register, block.address, block.block_registers)
                out.append(f"  {block.name}: waveform block of {len(data)} registers read")
            except Exception as exc:
                ok = False
                out.append(f"  {block.name}: waveform block not readable: {_reason(exc)}")
    except Exception as exc:
        ok = False
        out.append(f"  connection lost while reading: {_reason(exc)}")
    finally:
        session._drop()
    return ok


async def probe_opcua(endpoint: OpcUaEndpoint, out: list[str]) -> bool:
    """Connect once (certificate verified as the gateway would), read every node once."""
    from asyncua import ua

    from isthmus.sources.opcua import OpcUaSession, quality_of

    session = OpcUaSession(endpoint)
    where = f"opcua {endpoint.name} {endpoint.url}"
    try:
        client = await session._connect()
    except Exception as exc:
        out.append(f"{where}: UNREACHABLE or REFUSED: {_reason(exc)}")
        return False
    ok = True
    try:
        security = f"security {endpoint.security}/{endpoint.mode}"
        if session.server_certificate_label:
            security += f", server certificate {session.server_certificate_label} trusted"
        out.append(f"{where}: connected, {security}")
        for node in endpoint.nodes:
            try:
                async with asyncio.timeout(endpoint.timeout):
                    dv = await client.get_node(node.node_id).read_data_value(
                        raise_on_bad_status=False
                    )
            except Exception as exc:
                ok = False
                out.append(f"  {node.name} ({node.node_id}): {_reason(exc)}")
                continue
            quality, reason = quality_of(dv.StatusCode)
            if quality.name == "GOOD":
                value = dv.Value.Value if dv.Value is not None else None
                if node.waveform:
                    size = len(value) if value is not None else 0
                    out.append(f"  {node.name}: waveform snapshot of {size} samples")
                else:
                    out.append(f"  {node.name} = {_value(value, node.unit)}")
            else:
                ok = False
                code = dv.StatusCode.value if isinstance(dv.StatusCode, ua.StatusCode) else 0
                out.append(f"  {node.name} ({node.node_id}): {reason} (0x{code:08X})")
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(endpoint.timeout):
                await client.disconnect()
    return ok


async def probe_mqtt(mqtt: MqttSettings, out: list[str]) -> bool:
    """TLS handshake (mqtts) and one CONNECT/DISCONNECT under ``<client id>-probe``."""
    where = f"mqtt {mqtt.host}:{mqtt.port}"
    context: ssl.SSLContext | None = None
    if mqtt.tls:
        try:
            context = ssl.create_default_context(cafile=mqtt.ca_file)
            if mqtt.cert_file and mqtt.key_file:
                context.load_cert_chain(mqtt.cert_file, mqtt.key_file)
        except (OSError, ssl.SSLError) as exc:
            # a key that does not match its certificate, a CA file that is not PEM, ...
            out.append(f"{where}: TLS files unusable: {_reason(exc)}")
            return False
        try:
            async with asyncio.timeout(mqtt.timeout_s):
                _reader, writer = await asyncio.open_connection(
                    mqtt.host, mqtt.port, ssl=context, server_hostname=mqtt.host
                )
        except ssl.SSLError as exc:
            out.append(f"{where}: TLS REFUSED: {exc.reason or exc}")
            return False
        except (OSError, TimeoutError) as exc:
            out.append(f"{where}: UNREACHABLE: {_reason(exc)}")
            return False
        tls = writer.get_extra_info("ssl_object")
        peer = writer.get_extra_info("peercert") or {}
        subject = ", ".join("=".join(x) for rdn in peer.get("subject", ()) for x in rdn)
        out.append(f"{where}: TLS {tls.version()} ok, broker certificate verified ({subject})")
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    from isthmus.uns.mqtt_client import ConnectOptions, MqttConnection

    client_id = f"{mqtt.identifier}-probe"
    opts = ConnectOptions(
        client_id=client_id,
        protocol="5" if mqtt.protocol == "5" else "3.1.1",
        username=mqtt.username or None,
        password=mqtt.password() if mqtt.username else None,
    )
    try:
        connection = await MqttConnection.open(
            mqtt.host,
            mqtt.port,
            opts,
            ssl_context=context if mqtt.tls else None,
            timeout_s=mqtt.timeout_s,
        )
    except Exception as exc:
        out.append(f"{where}: MQTT CONNECT refused or failed: {_reason(exc)}")
        return False
    connection.disconnect()
    out.append(f"{where}: MQTT {mqtt.protocol} CONNECT accepted as {client_id}")
    return True


async def probe(config: GatewayConfig, stream: TextIO) -> bool:
    """Probe every peer; print what each said; True when every peer and tag answered well."""
    lines: list[str] = []
    ok = True
    for device in config.sources.modbus:
        ok &= await probe_modbus(device, lines)
    for endpoint in config.sources.opcua:
        ok &= await probe_opcua(endpoint, lines)
    # no S7 or EtherNet/IP probe yet: say so, and never call such a config probed OK
    for kind, devices in (("s7", config.sources.s7), ("enip", config.sources.enip)):
        for dev in devices:
            lines.append(f"{kind} {dev.name} {dev.host}:{dev.port}: NOT PROBED (no {kind} probe)")
            ok = False
    if config.mqtt is not None:
        ok &= await probe_mqtt(config.mqtt, lines)
    print("probe:", file=stream)
    for line in lines:
        print(f"  {line}", file=stream)
    print(f"probe {'OK' if ok else 'found problems'}", file=stream)
    return ok
