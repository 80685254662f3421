"""Acquisition sessions: Modbus TCP, OPC UA, S7 and EtherNet/IP clients feeding one value stream.

Submodules are imported on demand (``isthmus.sources.modbus`` needs pymodbus,
``isthmus.sources.opcua`` asyncua, ``isthmus.sources.s7`` python-snap7,
``isthmus.sources.enip`` cpppo); importing this package loads none of them.

Read-only toward OT
-------------------
isthmus never writes to a machine. The Modbus session issues only the four read
functions (read coils, read discrete inputs, read holding registers, read input
registers); no code path calls a pymodbus write function, and a test greps this
package's source to keep it so. The OPC UA session only browses, reads and
subscribes: it never writes a node attribute and never calls a method. A
per-device request-rate limit bounds the load the gateway can put on a PLC, and
a device that rejects an address is simply left alone for that tag. The S7
session sends only Setup Communication and Read Var; the EtherNet/IP session
only Read Tag Fragmented (inside Multiple Service Packets).
"""

from __future__ import annotations
