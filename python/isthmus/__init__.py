"""isthmus: the narrow land bridge between the plant floor and the enterprise.

``import isthmus`` gives the hot-path API (register decoding, sample rings,
vibration DSP and diagnostics) and needs only numpy. The gateway's protocol
layers (Modbus, OPC UA, MQTT) live in submodules and are imported on demand.
"""

from __future__ import annotations

from isthmus import _core
from isthmus.errors import (
    ConfigError,
    DecodeError,
    DiagnosticsError,
    IsthmusError,
    SessionError,
    SignalError,
    TagError,
)

__version__: str = _core.__version__

# --- register decoding (isthmus._core, decode) ---
from isthmus._core import DecodePlan, Tag, decode_array, encode_array

# isort: split

# --- sample rings (isthmus._core, ring) ---
from isthmus._core import RingRead, RingReader, SampleRing

# --- spectral features (isthmus._core, spectrum) ---
# isort: split
from isthmus._core import FeatureFrames, SpectrumAnalyzer, velocity_rms

# --- diagnostics (isthmus._core, diagnostics) ---
# isort: split
from isthmus._core import (
    Alert,
    Decimator,
    EnvelopeAnalyzer,
    RuleEngine,
    bearing,
    bearing_catalogue,
    bearing_frequencies,
    iso20816_boundaries,
    iso20816_zone,
)

__all__ = [  # noqa: RUF022 (grouped by area, sorted within each group)
    "ConfigError",
    "DecodeError",
    "DiagnosticsError",
    "IsthmusError",
    "SessionError",
    "SignalError",
    "TagError",
    "__version__",
    # --- decode exports ---
    "DecodePlan",
    "Tag",
    "decode_array",
    "encode_array",
    # --- ring exports ---
    "RingRead",
    "RingReader",
    "SampleRing",
    # --- spectrum exports ---
    "FeatureFrames",
    "SpectrumAnalyzer",
    "velocity_rms",
    # --- diagnostics exports ---
    "Alert",
    "Decimator",
    "EnvelopeAnalyzer",
    "RuleEngine",
    "bearing",
    "bearing_catalogue",
    "bearing_frequencies",
    "iso20816_boundaries",
    "iso20816_zone",
]
