//! The Python exception classes live in `isthmus/errors.py` so that Python-side
//! errors share one root with the native ones; Rust raises them by import.
#![allow(dead_code)]

pyo3::import_exception!(isthmus.errors, IsthmusError);
pyo3::import_exception!(isthmus.errors, TagError);
pyo3::import_exception!(isthmus.errors, DecodeError);
pyo3::import_exception!(isthmus.errors, SignalError);
pyo3::import_exception!(isthmus.errors, DiagnosticsError);
pyo3::import_exception!(isthmus.errors, ConfigError);
pyo3::import_exception!(isthmus.errors, SessionError);
