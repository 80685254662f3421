"""OPC UA Float, Boolean and String values into a data product, from a real asyncua server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway_helpers import free_port, running
from isthmus.gateway.config import build_config
from isthmus.gateway.pipeline import Gateway
from isthmus.gateway.sinks import ConsoleSink

pytestmark = [pytest.mark.network]


async def test_float_boolean_and_string_nodes_arrive_exact_and_good() -> None:
    from asyncua import Server, ua

    port = free_port()
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/t/")
    idx = await server.register_namespace("urn:isthmus:test")
    motor = await server.nodes.objects.add_object(idx, "M")
    values: dict[str, Any] = {
        "temp": ua.Variant(1.88, ua.VariantType.Float),  # float32: 1.8799999952316284
        "run": ua.Variant(True, ua.VariantType.Boolean),
        "trip": ua.Variant(False, ua.VariantType.Boolean),
        "mode": ua.Variant("running", ua.VariantType.String),
        "power": ua.Variant(123456.789, ua.VariantType.Double),
        "count": ua.Variant(284857027299509239, ua.VariantType.Int64),
    }
    for name, variant in values.items():
        await motor.add_variable(ua.NodeId(f"M.{name}", idx), name, variant)
    config = build_config(
        {
            "gateway": {"name": "gw"},
            "sources": {
                "opcua": [
                    {
                        "name": "ua",
                        "url": f"opc.tcp://127.0.0.1:{port}/t/",
                        "nodes": [
                            {"node_id": f"ns={idx};s=M.{n}", "name": n, "sampling_interval": 0.05}
                            for n in values
                        ],
                    }
                ]
            },
            "assets": [
                {
                    "name": "M-1",
                    "model": "Motor",
                    "isa95": {"enterprise": "e", "site": "s", "area": "a", "line": "l"},
                    "fields": {
                        "bearing_temperature_c": {"tag": "ua.temp"},
                        "running": {"tag": "ua.run"},
                        "fault": {"tag": "ua.trip"},
                        "state": {"tag": "ua.mode"},
                        "power_kw": {"tag": "ua.power"},
                        "current_a": {"tag": "ua.count"},
                    },
                }
            ],
        }
    )
    sink = ConsoleSink(stream=None)
    gateway = Gateway(config, sink)
    async with server, running(gateway):
        async with asyncio.timeout(30):
            while True:
                body = sink.last.get(("M-1", "product"))
                if body is not None and json.loads(body)["quality"] == "good":
                    break
                await asyncio.sleep(0.1)
    doc = json.loads(body)
    assert doc["payload"]["field_quality"] == {}
    assert b'"bearing_temperature_c":1.88,' in body
    assert doc["payload"]["running"] is True and doc["payload"]["fault"] is False
    assert doc["payload"]["state"] == "running"
    assert b'"power_kw":123456.789' in body
    assert b'"current_a":284857027299509239' in body
