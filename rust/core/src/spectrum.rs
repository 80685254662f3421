//! spectrum (to be written).
