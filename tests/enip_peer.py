"""cpppo's EtherNet/IP server (Logix tag simulation) with a log of the CIP services it received.

``python tests/enip_peer.py SERVICE_LOG <cpppo.server.enip arguments...>`` runs
``python -m cpppo.server.enip`` unchanged, except that every CIP request reaching
its message router is recorded in SERVICE_LOG, one per line, by name
(``read_tag``, ``read_frag``, ``multiple``, ``write_tag``, ``write_frag``,
``get_attribute_single``, ...) or as ``0x..`` service code when unnamed.
"""

from __future__ import annotations

import sys
from typing import Any

_NAMED = (
    "read_tag",
    "read_frag",
    "write_tag",
    "write_frag",
    "multiple",
    "get_attribute_single",
    "get_attributes_all",
    "set_attribute_single",
)


def main() -> None:
    from cpppo.server.enip import device, logix
    from cpppo.server.enip.main import main as cpppo_main

    log = open(sys.argv.pop(1), "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    def record(data: Any) -> None:
        names = [n for n in _NAMED if n in data]
        service = data.get("service")
        if names:
            log.write(f"{names[0]}\n")
        elif service is not None and not service & 0x80:
            log.write(f"0x{service:02x}\n")

    for cls in (logix.Logix, device.Message_Router):
        original = cls.request

        def request(self: Any, data: Any, addr: Any = None, _original: Any = original) -> Any:
            record(data)
            return _original(self, data, addr=addr)

        cls.request = request
    sys.exit(cpppo_main())


if __name__ == "__main__":
    main()
