"""Counts the values delivered to the broker (its own process: its CPU is nobody's).

``python benches/e2e_counter.py MQTT_PORT``: subscribes to ``#`` at QoS 1 and prints
``messages values`` totals every 0.2 s. A value is a non-null measurement in a message:
each ``t<k>`` of the script's dicts, each measured field of the gateway's products.
"""

from __future__ import annotations

import asyncio
import sys
import time

import msgspec

MEASURED = ("speed_rpm", "winding_temperature_c", "bearing_temperature_c", "current_a", "power_kw")


async def main(port: int) -> None:
    import aiomqtt

    decode = msgspec.json.Decoder().decode
    messages = values = 0
    last = time.monotonic()
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"counter-{time.time()}") as client:
        await client.subscribe("bench/#", qos=1)
        await client.subscribe("e/+/+/+/+/state", qos=1)
        print("ready 0 0", flush=True)
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes):
                continue
            doc = decode(payload)
            messages += 1
            if "payload" in doc:
                body = doc["payload"]
                values += sum(1 for k in MEASURED if body.get(k) is not None)
            else:
                values += len(doc) - 1
            now = time.monotonic()
            if now - last >= 0.2:
                last = now
                print(f"count {messages} {values}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
