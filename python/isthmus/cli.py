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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    result: int = module.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
