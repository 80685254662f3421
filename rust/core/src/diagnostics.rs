//! diagnostics (to be written).
