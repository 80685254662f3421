"""``isthmus run CONFIG``: the gateway, until SIGINT or SIGTERM.

On a signal the sources stop, what is queued goes into the outbox, the outbox
is flushed to the broker (bounded wait) and the process exits 0. A broken
configuration exits 2 before anything starts (no connection, no outbox file).
"""

from __future__ import annotations

import argparse
import sys

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port 1..65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not in 1..65535")
    return port


def log_level(text: str) -> str:
    """An argparse type: a log level name, any case."""
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r} (use {', '.join(LOG_LEVELS)})"
        )
    return level


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="gateway configuration file (TOML)")
    parser.add_argument(
        "--metrics-port",
        type=tcp_port,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics",
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="address for --metrics-port (default loopback)"
    )
    parser.add_argument(
        "--log-format", choices=["kv", "json"], default=None, help="override [gateway].log_format"
    )
    parser.add_argument(
        "--log-level", type=log_level, default=None, help="override [gateway].log_level"
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="print data products and alerts to stdout instead of publishing over MQTT",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from isthmus.errors import ConfigError
    from isthmus.gateway.config import load_config, warnings

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"isthmus run: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(config, args, warnings(config)))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


async def serve(config: object, args: argparse.Namespace, notes: list[str] | None = None) -> int:
    """Run the configured gateway in this event loop until a signal arrives."""
    import asyncio
    import logging
    import signal

    from isthmus.gateway import logs
    from isthmus.gateway.config import GatewayConfig
    from isthmus.gateway.metrics import Metrics
    from isthmus.gateway.metrics import serve as serve_metrics
    from isthmus.gateway.pipeline import Gateway
    from isthmus.gateway.sinks import ConsoleSink, UnsSink

    assert isinstance(config, GatewayConfig)
    logs.setup(
        args.log_level or config.gateway.log_level, args.log_format or config.gateway.log_format
    )
    log = logging.getLogger("isthmus.gateway")
    for note in notes or []:
        log.warning("configuration: %s", note)
    metrics = Metrics()
    server = None
    if args.metrics_port is not None:
        try:
            server = serve_metrics(metrics, args.metrics_port, args.metrics_host)
        except OSError as exc:  # port taken, address not ours, host unknown
            print(
                f"isthmus run: --metrics-host/--metrics-port: cannot serve metrics on "
                f"{args.metrics_host}:{args.metrics_port}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
        log.info(
            "metrics served",
            extra={"url": f"http://{args.metrics_host}:{args.metrics_port}/metrics"},
        )
    sink: ConsoleSink | UnsSink
    if config.mqtt is None or args.console:
        sink = ConsoleSink(sys.stdout, outbox=config.outbox)
    else:
        sink = UnsSink(config.mqtt, config.outbox)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await Gateway(config, sink, metrics).run(stop)
    finally:
        if server is not None:
            server.shutdown()
    return 0
