"""S7 addresses as engineers write them: ``DB1.DBD0:REAL``, ``DB1.DBX2.3``, ``MW10``, ``I0.1``.

Grammar (case-insensitive; German ``E``/``A`` are accepted for ``I``/``Q``)::

    DB<n>.DBX<byte>.<bit>        a bit of a data block (BOOL)
    DB<n>.DB{B,W,D}<byte>        a byte / word / double word of a data block
    {I,Q,M}<byte>.<bit>          a bit of the inputs, outputs or flags (X optional: IX0.1)
    {I,Q,M}{B,W,D}<byte>         a byte / word / double word of the same

followed by an optional ``:TYPE``. Without a type a bit is BOOL, B is BYTE,
W is WORD and D is DWORD. A W or D address takes a type of that width (``DBW4:INT``,
``MD8:REAL``); a B address marks where a value of any width starts
(``DB5.DBB0:STRING[20]``, ``DB2.DBB8:LREAL``, ``DB2.DBB16:DTL``).

Only reading is ever done with these addresses; the type sizes come from the
Rust core (:func:`isthmus._core.s7_type_size`), which also decodes the values.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

S7Area = Literal["DB", "I", "Q", "M"]

# S7 addresses a bit as a 24-bit number: byte offsets stay below 2**21.
MAX_BYTE = (1 << 21) - 1

_DB = re.compile(r"DB(\d+)\.DB(?:X(\d+)\.(\d+)|([BWD])(\d+))")
_AREA = re.compile(r"([IQMEA])(?:X?(\d+)\.(\d+)|([BWD])(\d+))")
_WIDTH = {"B": 1, "W": 2, "D": 4}
_DEFAULT = {"B": "BYTE", "W": "WORD", "D": "DWORD"}
_GERMAN = {"E": "I", "A": "Q"}


@dataclass(frozen=True)
class S7Address:
    """A parsed address: the area, data block (0 outside DBs), byte, bit, type and size."""

    area: S7Area
    db: int
    byte: int
    bit: int
    type: str
    size: int

    @property
    def end(self) -> int:
        """First byte after the value."""
        return self.byte + self.size


def _canonical_type(name: str) -> str:
    upper = re.sub(r"\s+", "", name.upper())
    return {"TOD": "TIME_OF_DAY", "DT": "DATE_AND_TIME"}.get(upper, upper)


@functools.lru_cache(maxsize=4096)
def parse_s7_address(text: str) -> S7Address:
    """Parse ``text``; raises ValueError with a one-line reason."""
    from isthmus._core import s7_type_size
    from isthmus.errors import TagError

    where, colon, type_part = text.strip().partition(":")
    if colon and not type_part.strip():
        raise ValueError(f"address {text!r}: empty type after ':'")
    where = where.strip().upper()
    match = _DB.fullmatch(where)
    area: S7Area
    if match is not None:
        area, db = "DB", int(match.group(1))
        if not 1 <= db <= 65535:
            raise ValueError(f"address {text!r}: data block number {db} outside 1..65535")
        bit_byte, bit, width_letter, byte_text = match.group(2, 3, 4, 5)
    else:
        match = _AREA.fullmatch(where)
        if match is None:
            raise ValueError(
                f"address {text!r} is not S7 syntax (DB1.DBD0:REAL, DB1.DBX2.3, MW10, I0.1, Q4.0)"
            )
        letter = _GERMAN.get(match.group(1), match.group(1))
        area, db = letter, 0  # type: ignore[assignment]
        bit_byte, bit, width_letter, byte_text = match.group(2, 3, 4, 5)
    if width_letter is None:
        byte, bit_number = int(bit_byte), int(bit)
        if bit_number > 7:
            raise ValueError(f"address {text!r}: bit {bit_number} outside 0..7")
        default, width = "BOOL", None
    else:
        byte, bit_number = int(byte_text), 0
        default, width = _DEFAULT[width_letter], _WIDTH[width_letter]
    type_name = _canonical_type(type_part) if type_part.strip() else default
    try:
        size = s7_type_size(type_name)
    except TagError as exc:
        raise ValueError(f"address {text!r}: {exc}") from None
    if width is None and type_name != "BOOL":
        raise ValueError(f"address {text!r}: a bit address is BOOL, not {type_name}")
    if width is not None and type_name == "BOOL":
        raise ValueError(f"address {text!r}: BOOL needs a bit address (e.g. DB1.DBX0.0, M0.0)")
    if width in (2, 4) and size != width:
        letter = f"DB{db}.DBB" if area == "DB" else f"{area}B"
        raise ValueError(
            f"address {text!r}: {type_name} is {size} bytes, the address {width}; "
            f"write its start as a byte address ({letter}{byte}:{type_name})"
        )
    if byte + size - 1 > MAX_BYTE:
        raise ValueError(f"address {text!r}: byte {byte} + {size} passes {MAX_BYTE}")
    return S7Address(area, db, byte, bit_number, type_name, size)


__all__ = ["MAX_BYTE", "S7Address", "S7Area", "parse_s7_address"]
