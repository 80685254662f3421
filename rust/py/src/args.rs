//! Scalar arguments whose bad values must raise the caller's `IsthmusError` subclass, not
//! PyO3's OverflowError (a negative count given to a `usize`, an int beyond 64 bits).
//!
//! Used as `#[pyo3(from_py_with = args::int)] frame: i64`, then [`count`] for the range.

use pyo3::prelude::*;
use pyo3::types::PyInt;

/// An int argument of any size. Values beyond i64 saturate to i64::MIN / i64::MAX, which
/// [`count`] rejects with the caller's error class. Non-ints (floats, str, None) stay a
/// TypeError naming the argument, as PyO3 raises it; numpy integers are ints.
pub fn int(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(e) => {
            let int = if obj.is_instance_of::<PyInt>() {
                obj.clone()
            } else {
                match obj.py().import("operator")?.call_method1("index", (obj,)) {
                    Ok(i) => i,
                    Err(_) => return Err(e),
                }
            };
            Ok(if int.lt(0)? { i64::MIN } else { i64::MAX })
        }
    }
}

/// [`int`] for an optional argument (None stays None).
pub fn opt_int(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if obj.is_none() {
        return Ok(None);
    }
    int(obj).map(Some)
}

/// A count argument (0 or more) as usize; a negative or too large value raises the error
/// `make` builds from a message naming the argument.
pub fn count(name: &str, value: i64, make: impl FnOnce(String) -> PyErr) -> PyResult<usize> {
    match value {
        i64::MIN => Err(make(format!(
            "{name} must be >= 0, got an int below -2**63"
        ))),
        i64::MAX => Err(make(format!("{name} is too large (2**63 or more)"))),
        v => usize::try_from(v).map_err(|_| make(format!("{name} must be >= 0, got {v}"))),
    }
}
