"""The ``isthmus`` command line: one subcommand per job.

Each subcommand lives in its own module exposing ``configure(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so
``isthmus analyze`` never loads the protocol libraries.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    # --- analyze (diagnostics) ---
    "analyze": ("isthmus.analyze", "diagnose a vibration recording (bearing faults, ISO 20816)"),
    # --- simulate (protocols) ---
    "simulate": (
        "isthmus.simulator.command",
        "Serve simulated pumps of several vendors over Modbus TCP and OPC UA",
    ),
    # --- run / check / demo (gateway) ---
    "run": ("isthmus.gateway.run", "run the gateway on a configuration file until stopped"),
    "check": ("isthmus.gateway.check", "validate a gateway configuration, show request plans"),
    "demo": ("isthmus.gateway.demo", "simulated pumps, the gateway and a live view: no set-up"),
}


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments give one line on stderr and exit 2, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="isthmus",
        description="Edge gateway between the plant floor and the enterprise.",
    )
    from isthmus import __version__

    parser.add_argument("--version", action="version", version=f"isthmus {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.configure(sub_parser)
        sub_parser.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from isthmus.errors import IsthmusError

    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        result: int = module.run(args)
    except IsthmusError as exc:  # a refusal the command did not word itself: still one line
        print(f"isthmus {args.command}: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
