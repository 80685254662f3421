"""A python-snap7 server on loopback for the S7 tests, run as its own process.

``python tests/s7_peer.py PORT SERVICE_LOG`` serves the areas of :func:`build_areas`
on 127.0.0.1:PORT, prints ``ready`` and appends the S7 function code of every
request it receives to SERVICE_LOG (one per line: ``0xf0`` setup communication,
``0x04`` read var, ``0x05`` write var, ``0x28``/``0x29`` PLC control/stop,
``0x1d``.. upload/download, ``userdata`` for SZL/clock/block services), so a test
can prove what the gateway asked for. It runs in a child process so that a test
can kill it outright (SIGKILL), as a PLC losing power would.
"""

from __future__ import annotations

import sys
import time
from datetime import date, datetime, timedelta
from typing import Any

from snap7 import util
from snap7.type import SrvArea

# byte layout of DB1 (tests compare against these values)
DB1_VALUES: dict[str, Any] = {
    "temperature": 61.5,  # DB1.DBD0:REAL
    "running": True,  # DB1.DBX4.3
    "speed": -1234,  # DB1.DBW6:INT
    "count": 123456,  # DB1.DBD8:DINT
    "serial": "P-101",  # DB1.DBB12:STRING[20] (22 bytes: 12..33)
    "energy": 1.25e9,  # DB1.DBB34:LREAL
    "runtime": 3723.5,  # DB1.DBD42:TIME (s)
    "service_date": "2024-03-01",  # DB1.DBW46:DATE
    "shift_start": 21600.0,  # DB1.DBD48:TIME_OF_DAY (s)
    "stamp": "2024-03-01T06:30:15.123456789",  # DB1.DBB52:DTL (12 bytes)
    "last_trip": "2020-07-12T17:32:02.854000",  # DB1.DBB64:DATE_AND_TIME
}


def build_areas() -> dict[tuple[SrvArea, int], bytearray]:
    """The memory the peer serves: DB1 (mixed types), DB10, flags, inputs, outputs."""
    db1 = bytearray(80)
    util.set_real(db1, 0, 61.5)
    util.set_bool(db1, 4, 3, True)
    util.set_int(db1, 6, -1234)
    util.set_dint(db1, 8, 123456)
    util.set_string(db1, 12, "P-101", 20)
    util.set_lreal(db1, 34, 1.25e9)
    util.set_dint(db1, 42, 3723500)  # TIME is signed milliseconds
    util.set_date(db1, 46, date(2024, 3, 1))
    util.set_tod(db1, 48, timedelta(hours=6))
    db1[52:54] = (2024).to_bytes(2, "big")
    db1[54:60] = bytes([3, 1, 6, 6, 30, 15])  # month, day, weekday, hour, minute, second
    db1[60:64] = (123456789).to_bytes(4, "big")
    util.set_dt(db1, 64, datetime(2020, 7, 12, 17, 32, 2, 854000))
    db10 = bytearray(16)
    util.set_int(db10, 4, 615)
    util.set_real(db10, 8, 1.88)  # not exact in float32: published as 1.88
    util.set_int(db10, 12, 188)  # x 0.01 = 1.88 (binary: 1.8800000000000001)
    flags = bytearray(32)
    util.set_word(flags, 10, 1480)
    inputs = bytearray(8)
    util.set_bool(inputs, 0, 1, True)
    outputs = bytearray(8)
    util.set_bool(outputs, 4, 0, True)
    # DB20: 400 bytes for the session benchmark (100 tags of 4 bytes, a ramp of REALs)
    db20 = bytearray(400)
    for i in range(100):
        util.set_real(db20, 4 * i, float(i))
    return {
        (SrvArea.DB, 1): db1,
        (SrvArea.DB, 20): db20,
        (SrvArea.DB, 10): db10,
        (SrvArea.MK, 0): flags,
        (SrvArea.PE, 0): inputs,
        (SrvArea.PA, 0): outputs,
    }


def main() -> None:
    from snap7.server import Server

    port, service_log = int(sys.argv[1]), sys.argv[2]
    log = open(service_log, "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    class LoggingServer(Server):
        def _process_request(self, request_data: bytes, client_address: Any) -> Any:
            if len(request_data) > 10 and request_data[1] == 0x07:
                log.write("userdata\n")
            elif len(request_data) > 10:
                log.write(f"0x{request_data[10]:02x}\n")
            return super()._process_request(request_data, client_address)

    server = LoggingServer(log=False)
    areas = build_areas()  # kept alive: the server serves these buffers
    for (area, index), data in areas.items():
        server.register_area(area, index, data)
    server.start_to("127.0.0.1", port)
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
