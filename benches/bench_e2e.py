"""End-to-end scalar path: gateway CPU-seconds per value delivered to a real Mosquitto.

Run: ``python benches/bench_e2e.py [--tags 1000 10000] [--seconds 15] [--startup]``;
``--pipeline-only``: routing + products alone, in process, no I/O (where the pipeline's
own cost ends and the device and broker paths begin).

For each size, in the same run and against the same device and broker:

- the **baseline**, ``benches/e2e_script_baseline.py``: a plain asyncio script (pymodbus
  read + ``convert_from_registers`` + one JSON dict per asset + aiomqtt publish QoS 1);
- **isthmus**: the gateway (``Gateway`` + ``UnsSink``, as ``isthmus run`` starts it) on
  a configuration of the same tags, 5 float32 tags per ``Motor`` asset, one poll group.

The device (``e2e_device.py``, a pymodbus server in its own process) changes every
value on every poll, so every poll offers ``tags`` new values. A counter process
(``e2e_counter.py``) counts the values that arrive at the broker. Only the measured
process's CPU is counted (``/proc`` user + system time over the window, after a
warm-up). Reported: values delivered per CPU-second for each, their ratio, the share
of offered values delivered, and the peak RSS.

``--startup``: load + build a gateway of 7,000 assets / 50,000 tags in a fresh process
and report the time and RSS (no device needed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

PER_ASSET = 5
#: ``--profile DIR``: record the gateway with py-spy (collapsed stacks) into DIR.
PROFILE: Path | None = None
FIELDS = ("speed_rpm", "winding_temperature_c", "bearing_temperature_c", "current_a", "power_kw")
GATEWAY = """
import asyncio, json, sys
from isthmus.gateway.config import build_config
from isthmus.gateway.metrics import Metrics
from isthmus.gateway.pipeline import Gateway
from isthmus.gateway.sinks import UnsSink
config = build_config(json.load(open(sys.argv[1])))
async def main():
    gateway = Gateway(config, UnsSink(config.mqtt, config.outbox), Metrics())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await gateway.run(stop)
    m = gateway.metrics
    print("conflated", gateway.telemetry.conflated, "dropped", gateway.telemetry.dropped,
          file=sys.stderr, flush=True)
asyncio.run(main())
"""


def gateway_config(tags: int, modbus_port: int, mqtt_port: int, outbox: str, hz: float) -> Any:
    tag_list = [{"name": f"t{i}", "address": 2 * i, "dtype": "float32"} for i in range(tags)]
    assets = []
    for a in range(tags // PER_ASSET):
        assets.append(
            {
                "name": f"M{a}",
                "model": "Motor",
                "isa95": {"enterprise": "e", "site": "s", "area": "a", "line": "l"},
                "fields": {f: {"tag": f"plc.t{a * PER_ASSET + k}"} for k, f in enumerate(FIELDS)},
            }
        )
    return {
        "gateway": {"name": "bench", "status_interval_s": 10.0},
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "inflight": 1000},
        "outbox": {"path": outbox},
        "sources": {
            "modbus": [
                {
                    "name": "plc",
                    "host": "127.0.0.1",
                    "port": modbus_port,
                    "max_requests_per_second": 10_000.0,
                    "request_timeout": 2.0,
                    "poll_groups": [{"name": "all", "interval": 1.0 / hz, "tags": tag_list}],
                }
            ]
        },
        "assets": assets,
    }


class Counter:
    """The counter process; ``values`` is the newest total it printed."""

    def __init__(self, mqtt_port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "e2e_counter.py"), str(mqtt_port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.values = 0
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(10), "counter did not start"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts and parts[0] == "ready":
                self.ready.set()
            elif parts and parts[0] == "count":
                self.values = int(parts[2])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def _start(cmd: list[str], what: str, timeout: float = 120.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "ready" in line:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"{what} did not start")


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def measure(
    cmd: list[str],
    what: str,
    counter: Counter,
    tags: int,
    hz: float,
    warmup: float,
    seconds: float,
) -> dict[str, float]:
    proc = _start(cmd, what)
    try:
        ps = psutil.Process(proc.pid)
        # start-up is not measured: wait until values flow, then warm up
        start_values, deadline = counter.values, time.monotonic() + 300
        while counter.values == start_values and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(warmup)
        spy = None
        if PROFILE is not None:
            # py-spy attached for the window (sampling, non-blocking: a few % overhead)
            spy = subprocess.Popen(
                [
                    os.environ.get("PY_SPY") or str(Path(sys.executable).parent / "py-spy"),
                    *("record", "--pid", str(proc.pid), "-d", str(int(seconds))),
                    *("-r", "100", "-f", "raw", "--nonblocking"),
                    *("-o", str(PROFILE / f"{what}-{tags}.txt")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cpu0, values0, t0 = _cpu(ps), counter.values, time.monotonic()
        rss = 0
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
            rss = max(rss, ps.memory_info().rss)
        cpu1, values1, t1 = _cpu(ps), counter.values, time.monotonic()
        if spy is not None:
            spy.wait(30)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    delivered = values1 - values0
    offered = tags * hz * (t1 - t0)
    cpu = cpu1 - cpu0
    return {
        "cpu_s": cpu,
        "delivered": delivered,
        "offered": offered,
        "values_per_cpu_s": delivered / cpu if cpu > 0 else float("nan"),
        "delivered_share": delivered / offered,
        "rss_mib": rss / 2**20,
    }


def run_size(tags: int, hz: float, seconds: float, warmup: float) -> dict[str, Any]:
    from mqtt_broker import Broker
    from proto_support import free_port

    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker")
        broker.workdir.mkdir(exist_ok=True)
        broker.start()
        modbus_port = free_port()
        device = _start(
            [sys.executable, str(HERE / "e2e_device.py"), str(modbus_port), str(2 * tags), str(hz)],
            "device",
        )
        counter = Counter(broker.port)
        try:
            script = measure(
                [
                    sys.executable,
                    str(HERE / "e2e_script_baseline.py"),
                    str(modbus_port),
                    str(broker.port),
                    str(tags),
                    str(PER_ASSET),
                    str(hz),
                ],
                "script",
                counter,
                tags,
                hz,
                warmup,
                seconds,
            )
            config_file = Path(tmp) / "gateway.json"
            config_file.write_text(
                json.dumps(
                    gateway_config(
                        tags, modbus_port, broker.port, str(Path(tmp) / "outbox.sqlite3"), hz
                    )
                )
            )
            gateway = measure(
                [sys.executable, "-c", GATEWAY, str(config_file)],
                "gateway",
                counter,
                tags,
                hz,
                warmup,
                seconds,
            )
        finally:
            counter.stop()
            device.terminate()
            device.wait(10)
            broker.stop()
    return {
        "tags": tags,
        "hz": hz,
        "script": script,
        "isthmus": gateway,
        "ratio": gateway["values_per_cpu_s"] / script["values_per_cpu_s"],
    }


STARTUP = """
import json, resource, sys, time
t0 = time.perf_counter()
from isthmus.gateway.config import build_config
from isthmus.gateway.pipeline import Gateway
from isthmus.gateway.sinks import ConsoleSink
config = build_config(json.load(open(sys.argv[1])))
t1 = time.perf_counter()
gateway = Gateway(config, ConsoleSink(stream=None))
t2 = time.perf_counter()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"config_s": t1 - t0, "gateway_s": t2 - t1, "total_s": t2 - t0,
                  "assets": len(gateway.assets), "peak_rss_mib": rss}))
"""


def startup(assets: int = 7000, tags: int = 50_000) -> dict[str, Any]:
    per = tags // assets
    with tempfile.TemporaryDirectory() as tmp:
        raw = gateway_config(assets * PER_ASSET, 502, 1883, str(Path(tmp) / "o.sqlite3"), 1.0)
        extra = tags - assets * PER_ASSET  # unmapped tags polled too (50k in all)
        group = raw["sources"]["modbus"][0]["poll_groups"][0]
        base = len(group["tags"])
        group["tags"] += [
            {"name": f"x{i}", "address": 2 * (base + i) % 65534, "dtype": "uint16"}
            for i in range(extra)
        ]
        # one device cannot address 50k float32 tags: spread them over devices of 10k
        tags_all = group["tags"]
        devices = []
        for d in range(0, len(tags_all), 10_000):
            chunk = [
                dict(t, address=(2 * j) % 65534) for j, t in enumerate(tags_all[d : d + 10_000])
            ]
            devices.append(
                {
                    "name": f"plc{d // 10_000}" if d else "plc",
                    "host": "127.0.0.1",
                    "port": 502,
                    "max_requests_per_second": 1000.0,
                    "poll_groups": [{"name": "all", "interval": 1.0, "tags": chunk}],
                }
            )
        raw["sources"]["modbus"] = devices
        for asset in raw["assets"]:
            for mapping in asset["fields"].values():
                index = int(mapping["tag"].split(".t")[1])
                dev = index // 10_000
                mapping["tag"] = f"{'plc' + str(dev) if dev else 'plc'}.t{index}"
        path = Path(tmp) / "big.json"
        path.write_text(json.dumps(raw))
        if PROFILE is not None:
            (PROFILE / "big.json").write_text(json.dumps(raw))
        out = subprocess.run(
            [sys.executable, "-c", STARTUP, str(path)], capture_output=True, text=True
        )
    if out.returncode != 0:
        raise RuntimeError(f"start-up run failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    result["tags"] = sum(len(d["poll_groups"][0]["tags"]) for d in devices)
    result["per_asset"] = per
    return result


def pipeline_only(tags: int, cycles: int = 20) -> float:
    """Values per CPU-second of routing + products alone (in this process, no I/O).

    One read of every tag (one ``ValueBatch``) is routed and every touched asset's
    product built and queued, ``cycles`` times; the sink's work is not included.
    """
    from isthmus.gateway.config import build_config
    from isthmus.gateway.pipeline import Gateway
    from isthmus.gateway.sinks import ConsoleSink
    from isthmus.sources.values import ValueBatch

    config = build_config(gateway_config(tags, 502, 1883, "unused.sqlite3", 4.0))
    gateway = Gateway(config, ConsoleSink(stream=None))
    names = tuple(f"t{i}" for i in range(tags))

    def cycle(k: int) -> None:
        gateway.on_batch(
            ValueBatch(source="plc", tags=names, values=[10.0 + i + k for i in range(tags)])
        )
        now = time.time()
        dirty, gateway._dirty = gateway._dirty, set()
        for runtime in dirty:
            gateway._product(runtime, now)
        while gateway.telemetry.get_nowait() is not None:
            pass

    cycle(0)
    started = time.process_time()
    for k in range(1, cycles + 1):
        cycle(k)
    return tags * cycles / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--hz", type=float, default=4.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--startup", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument(
        "--pipeline-only", action="store_true", help="routing + products alone, no I/O"
    )
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    results: dict[str, Any] = {"sizes": []}
    if args.pipeline_only:
        for tags in args.tags:
            rate = pipeline_only(tags)
            results.setdefault("pipeline_only", {})[tags] = rate
            print(f"{tags:>6} tags: routing + products alone {rate:,.0f} values/CPU-s", flush=True)
    for tags in [] if args.pipeline_only else args.tags:
        r = run_size(tags, args.hz, args.seconds, args.warmup)
        results["sizes"].append(r)
        s, g = r["script"], r["isthmus"]
        print(
            f"{tags:>6} tags x {args.hz:g} Hz | script {s['values_per_cpu_s']:>9,.0f} values/CPU-s "
            f"({s['delivered_share']:.1%} delivered, {s['rss_mib']:.0f} MiB) | isthmus "
            f"{g['values_per_cpu_s']:>9,.0f} ({g['delivered_share']:.1%}, {g['rss_mib']:.0f} MiB)"
            f" | ratio {r['ratio']:.2f}x",
            flush=True,
        )
    if args.startup:
        results["startup"] = startup()
        print("start-up:", json.dumps(results["startup"]), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
