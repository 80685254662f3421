"""The plain-script baseline of the end-to-end bench (what a user would write instead).

``python benches/e2e_script_baseline.py MODBUS_PORT MQTT_PORT TAGS TAGS_PER_ASSET POLL_HZ``:
an asyncio loop that reads the device's holding registers in 125-register requests
with pymodbus, converts each float32 with ``convert_from_registers``, builds one JSON
dict per asset and publishes it with aiomqtt at QoS 1 (all publishes of a poll
awaited together). Kept plain on purpose: this is the baseline, do not optimise it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time


async def main(modbus_port: int, mqtt_port: int, tags: int, per_asset: int, hz: float) -> None:
    import aiomqtt
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=modbus_port)
    await client.connect()
    registers = tags * 2
    requests = [(start, min(124, registers - start)) for start in range(0, registers, 124)]
    float32 = client.DATATYPE.FLOAT32
    quiet = logging.getLogger("bench.mqtt")
    quiet.setLevel(logging.ERROR)  # aiomqtt warns on every publish past 10 pending
    async with aiomqtt.Client(
        "127.0.0.1", mqtt_port, max_inflight_messages=1000, logger=quiet
    ) as mqtt:
        print("ready", flush=True)
        due = time.monotonic()
        while True:
            values: list[float] = []
            for start, count in requests:
                response = await client.read_holding_registers(start, count=count, device_id=1)
                regs = response.registers
                for i in range(0, count, 2):
                    values.append(client.convert_from_registers(regs[i : i + 2], float32))
            now = time.time()
            publishes = []
            for asset in range(0, tags // per_asset):
                doc = {"timestamp": now}
                for k in range(per_asset):
                    doc[f"t{k}"] = values[asset * per_asset + k]
                publishes.append(mqtt.publish(f"bench/script/a{asset}", json.dumps(doc), qos=1))
            await asyncio.gather(*publishes)
            due += 1.0 / hz
            await asyncio.sleep(max(0.0, due - time.monotonic()))


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(int(a[0]), int(a[1]), int(a[2]), int(a[3]), float(a[4])))
