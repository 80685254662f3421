"""A minimal gateway process for the kill tests (run as a subprocess, not collected).

Publishes ``--count`` alerts for one asset through the real Publisher, printing
``ACCEPTED <message_id>`` once each is durably in the outbox, ``ONLINE`` once connected,
and ``DRAINED`` when the outbox is empty. With ``--exit-when-drained`` it then closes
cleanly; otherwise it idles until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from isthmus.uns.models import Alert
from isthmus.uns.publisher import Publisher
from isthmus.uns.settings import MqttSettings, OutboxSettings
from isthmus.uns.topics import AssetPath

PATH = AssetPath(enterprise="acme", site="plant1", area="pumps", line="line1", asset="p101")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    mqtt = MqttSettings(url=args.url, client_id="gw-proc", reconnect_min_s=0.1, reconnect_max_s=0.5)
    outbox = OutboxSettings(path=args.outbox)
    async with Publisher(mqtt, outbox, enterprise="acme", site="plant1", gateway_id="gw1") as pub:
        async with asyncio.timeout(10):
            await pub.connected.wait()
        say("ONLINE")
        for i in range(args.count):
            alert = Alert(
                alert_id="burst",
                state="raised" if i % 2 == 0 else "cleared",
                severity="alarm",
                message=f"burst {args.tag} {i}",
                value=float(i),
            )
            message_id = await pub.publish_alert(PATH, alert)
            say(f"ACCEPTED {message_id}")
            await asyncio.sleep(args.delay)
        async with asyncio.timeout(60):
            await pub.wait_drained()
        say("DRAINED")
        if not args.exit_when_drained:
            await asyncio.sleep(3600)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--tag", default="a")
    parser.add_argument("--exit-when-drained", action="store_true")
    asyncio.run(main(parser.parse_args()))
