"""Type stubs for the native core ``isthmus._core`` (hand-written; checked by mypy.stubtest)."""

__version__: str

# ===== decode: Modbus register decoding =====

# ===== end decode =====

# ===== ring: multi-channel sample rings =====

# ===== end ring =====

# ===== spectrum: streaming spectral features =====

# ===== end spectrum =====

# ===== diagnostics: bearing, envelope, ISO 20816, rules =====

# ===== end diagnostics =====
