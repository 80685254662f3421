//! isthmus-core: the hot paths of the isthmus edge gateway, free of Python.
//!
//! Every function here takes plain slices and returns plain Rust values or a
//! typed error; the `isthmus-py` crate converts them to and from Python.

pub mod decode;
pub mod diagnostics;
pub mod modbus_tcp;
pub mod ring;
pub mod s7;
pub mod spectrum;
pub mod waveform;
