//! `isthmus._core`: thin PyO3 bindings over `isthmus-core`.
//!
//! Each core area has one binding file with a `register` function; this file
//! only declares the module.

use pyo3::prelude::*;

mod args;
mod arrays;
mod decode;
mod diagnostics;
mod errors;
mod ring;
mod s7;
mod spectrum;
mod waveform;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    decode::register(m)?;
    ring::register(m)?;
    spectrum::register(m)?;
    diagnostics::register(m)?;
    s7::register(m)?;
    waveform::register(m)?;
    Ok(())
}
