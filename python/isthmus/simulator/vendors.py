"""Register maps of the simulated pump vendors (each its own layout and units).

* ``acme`` (Modbus TCP): integers with fixed scaling, like a small drive:
  speed uint16 rpm, temperature int16 in 0.1 degC, pressure in 0.01 bar,
  vibration as features computed in the device (accel RMS/peak in mg,
  velocity RMS in 0.01 mm/s), status bits, run hours uint32.
* ``bravo`` (Modbus TCP): IEEE floats in word-swapped (CDAB) order on input
  registers, imperial units (speed Hz, temperature degF, pressure psi, flow
  US gpm), and raw vibration as int16 waveform blocks with a sequence counter.
* ``charlie`` (OPC UA): typed variables (speed rpm, temperature K, pressure
  kPa, flow l/s) and a Float array waveform snapshot.

A point's register value is ``round((engineering value - offset) / scale)``
for integers and the value itself for floats; decoders apply ``raw * scale +
offset`` (the :class:`isthmus.Tag` convention).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from isthmus.simulator.plant import Truth
from isthmus.sources.config import PollGroup, TagSpec, WaveformBlock

GPM_PER_M3H = 4.402868
PSI_PER_BAR = 14.503774


@dataclass(frozen=True)
class Point:
    """One register-mapped value of a vendor map."""

    name: str
    register: str  # holding | input | coil | discrete
    address: int
    dtype: str
    unit: str | None
    value: Callable[[Truth], float | bool]
    order: str = "ABCD"
    scale: float = 1.0
    offset: float = 0.0
    bit: int | None = None
    description: str = ""

    def tag(self) -> TagSpec:
        """The client-side tag that reads this point."""
        return TagSpec(
            name=self.name,
            address=self.address,
            dtype=self.dtype,
            register=self.register,  # type: ignore[arg-type]
            order=self.order,  # type: ignore[arg-type]
            scale=self.scale,
            offset=self.offset,
            bit=self.bit,
            unit=self.unit,
        )


@dataclass(frozen=True)
class VendorMap:
    """A vendor's Modbus register map: points, readable ranges, waveform blocks."""

    vendor: str
    description: str
    points: list[Point]
    # Readable [start, end) ranges per register type; everything else answers
    # "illegal data address", as a real device does for unmapped registers.
    ranges: dict[str, list[tuple[int, int]]]
    waveforms: list[WaveformBlock] = field(default_factory=list)

    def poll_group(self, interval: float = 1.0, name: str = "process") -> PollGroup:
        """All points as one poll group (what a gateway config would list)."""
        return PollGroup(name=name, interval=interval, tags=[p.tag() for p in self.points])


def acme_map() -> VendorMap:
    """Vendor A: fixed-point integers on holding registers, features for vibration."""
    pts = [
        Point(
            "speed", "holding", 0, "uint16", "rpm", lambda t: t.speed_rpm, description="shaft speed"
        ),
        Point(
            "temperature",
            "holding",
            1,
            "int16",
            "degC",
            lambda t: t.temperature_c,
            scale=0.1,
            description="bearing temperature",
        ),
        Point(
            "pressure",
            "holding",
            2,
            "uint16",
            "bar",
            lambda t: t.pressure_bar,
            scale=0.01,
            description="discharge pressure",
        ),
        Point("flow", "holding", 3, "uint16", "m3/h", lambda t: t.flow_m3h, scale=0.1),
        Point(
            "running",
            "holding",
            4,
            "bit",
            None,
            lambda t: t.running,
            bit=0,
            description="status word bit 0",
        ),
        Point(
            "alarm",
            "holding",
            4,
            "bit",
            None,
            lambda t: t.alarm,
            bit=1,
            description="status word bit 1",
        ),
        Point(
            "accel_rms",
            "holding",
            10,
            "uint16",
            "g",
            lambda t: t.accel_rms_g,
            scale=0.001,
            description="acceleration RMS, last 1 s",
        ),
        Point(
            "accel_peak",
            "holding",
            11,
            "uint16",
            "g",
            lambda t: t.accel_peak_g,
            scale=0.001,
            description="acceleration peak, last 1 s",
        ),
        Point(
            "velocity_rms",
            "holding",
            12,
            "uint16",
            "mm/s",
            lambda t: t.velocity_rms_mm_s,
            scale=0.01,
            description="velocity RMS 10-1000 Hz",
        ),
        Point("run_hours", "holding", 20, "uint32", "h", lambda t: t.run_hours, scale=0.1),
        Point("firmware", "holding", 40, "uint16", None, lambda t: 412),
        Point("run_command", "coil", 0, "bit", None, lambda t: t.running),
        Point("motor_on", "discrete", 0, "bit", None, lambda t: t.running),
        Point("high_vibration", "discrete", 1, "bit", None, lambda t: t.alarm),
    ]
    return VendorMap(
        "acme",
        "fixed-point integers, vibration features",
        pts,
        {"holding": [(0, 25), (40, 48)], "input": [], "coil": [(0, 16)], "discrete": [(0, 16)]},
    )


BRAVO_WAVEFORM_BASE = 1000
BRAVO_SAMPLES = 120
BRAVO_SLOTS = 64  # 0.3 s of buffer at 25.6 kHz


def bravo_map(sample_rate: float = 25600.0) -> VendorMap:
    """Vendor B: float32 CDAB on input registers, imperial units, raw waveform blocks."""
    pts = [
        Point("speed", "input", 0, "float32", "Hz", lambda t: t.speed_rpm / 60.0, order="CDAB"),
        Point(
            "temperature",
            "input",
            2,
            "float32",
            "degF",
            lambda t: t.temperature_c * 9.0 / 5.0 + 32.0,
            order="CDAB",
        ),
        Point(
            "pressure",
            "input",
            4,
            "float32",
            "psi",
            lambda t: t.pressure_bar * PSI_PER_BAR,
            order="CDAB",
        ),
        Point(
            "flow", "input", 6, "float32", "gpm", lambda t: t.flow_m3h * GPM_PER_M3H, order="CDAB"
        ),
        Point(
            "run_seconds", "input", 8, "uint32", "s", lambda t: t.run_hours * 3600.0, order="CDAB"
        ),
        Point("running", "input", 10, "bit", None, lambda t: t.running, bit=0),
        Point("alarm", "input", 10, "bit", None, lambda t: t.alarm, bit=3),
    ]
    stride = BRAVO_SAMPLES + 1
    wave = WaveformBlock(
        name="vibration",
        channel="de_accel",
        sample_rate=sample_rate,
        address=BRAVO_WAVEFORM_BASE + 1,
        sequence_address=BRAVO_WAVEFORM_BASE,
        samples=BRAVO_SAMPLES,
        slots=BRAVO_SLOTS,
        dtype="int16",
        scale=0.0005,
        unit="g",
    )
    return VendorMap(
        "bravo",
        "float32 CDAB, imperial units, raw int16 waveform blocks",
        pts,
        {
            "holding": [(BRAVO_WAVEFORM_BASE, BRAVO_WAVEFORM_BASE + stride * BRAVO_SLOTS)],
            "input": [(0, 12)],
            "coil": [],
            "discrete": [],
        },
        [wave],
    )


MODBUS_VENDORS: dict[str, Callable[[float], VendorMap]] = {
    "acme": lambda rate: acme_map(),
    "bravo": bravo_map,
}

# OPC UA vendor "charlie": browse name -> (unit, value from truth).
CHARLIE_VARIABLES: dict[str, tuple[str | None, Callable[[Truth], float | bool]]] = {
    "ShaftSpeed": ("rpm", lambda t: t.speed_rpm),
    "BearingTemperature": ("K", lambda t: t.temperature_c + 273.15),
    "DischargePressure": ("kPa", lambda t: t.pressure_bar * 100.0),
    "Flow": ("l/s", lambda t: t.flow_m3h / 3.6),
    "Running": (None, lambda t: t.running),
}
CHARLIE_WAVEFORM_SAMPLES = 4096

# S7 vendor "delta": (tag name, S7 address in DB1, unit, value from truth). Speed and
# flow are REALs, the pressure an INT in centibar, the run hours a DINT, as a Siemens
# programmer might lay out a DB.
DELTA_DB = 1
DELTA_DB_SIZE = 32
DELTA_S7_TAGS: list[tuple[str, str, str | None, Callable[[Truth], float | bool]]] = [
    ("speed", "DB1.DBD0:REAL", "rpm", lambda t: t.speed_rpm),
    ("temperature", "DB1.DBD4:REAL", "degC", lambda t: t.temperature_c),
    ("pressure", "DB1.DBW8:INT", "cbar", lambda t: t.pressure_bar * 100.0),
    ("flow", "DB1.DBD10:REAL", "m3/h", lambda t: t.flow_m3h),
    ("running", "DB1.DBX14.0", None, lambda t: t.running),
    ("alarm", "DB1.DBX14.1", None, lambda t: t.alarm),
    ("run_hours", "DB1.DBD16:DINT", "h", lambda t: t.run_hours),
    ("velocity_rms", "DB1.DBD20:REAL", "mm/s", lambda t: t.velocity_rms_mm_s),
]
VENDORS = [*MODBUS_VENDORS, "charlie", "delta"]


def describe(vmap: VendorMap) -> str:
    """The register map as a printable table."""
    lines = [f"vendor {vmap.vendor}: {vmap.description}"]
    lines.append(
        f"  {'name':<14} {'register':<9} {'addr':>5} {'dtype':<8} {'order':<5} "
        f"{'scale':>8} {'unit':<6}"
    )
    for p in vmap.points:
        dtype = p.dtype if p.bit is None else f"bit {p.bit}"
        lines.append(
            f"  {p.name:<14} {p.register:<9} {p.address:>5} {dtype:<8} {p.order:<5} "
            f"{p.scale:>8g} {p.unit or '':<6}"
        )
    for w in vmap.waveforms:
        lines.append(
            f"  waveform {w.name!r} ({w.channel}): {w.register} {w.slots} slots x "
            f"{w.slot_stride} regs from {w.sequence_address}; slot = uint16 sequence + "
            f"{w.samples} x {w.dtype} ({w.scale:g} {w.unit}/count) at {w.sample_rate:g} Hz; "
            f"block k in slot k % {w.slots}"
        )
    return "\n".join(lines)


__all__ = [
    "CHARLIE_VARIABLES",
    "DELTA_DB",
    "DELTA_DB_SIZE",
    "DELTA_S7_TAGS",
    "MODBUS_VENDORS",
    "VENDORS",
    "Point",
    "VendorMap",
    "describe",
]
