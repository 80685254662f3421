//! Scalar arguments whose bad values must raise the caller's `IsthmusError` subclass, not
//! PyO3's OverflowError (a negative count given to a `usize`, an int beyond 64 bits).
//!
//! Used as `#[pyo3(from_py_with = args::int)] frame: i64`, then [`count`] for the range.

use pyo3::exceptions::PyTypeError;
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
                    Err(_) => return Err(not_a(obj, "an int", e)),
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

/// A float argument: any real number Python can convert. An int too large for a float (PyO3
/// alone raises OverflowError) becomes +/-infinity, which the range checks that follow
/// reject with the caller's error class (or, for a threshold, is the value meant).
pub fn float(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    match obj.extract::<f64>() {
        Ok(v) => Ok(v),
        Err(e) if obj.is_instance_of::<PyInt>() => {
            let negative = obj.lt(0).map_err(|_| e)?;
            Ok(if negative {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        // e.g. the ValueError of float(np.array("x")): not a number, whatever raised it.
        Err(e) => Err(not_a(obj, "a real number", e)),
    }
}

/// A TypeError for a value of the wrong Python type (PyO3 prefixes the argument's name).
fn not_a(obj: &Bound<'_, PyAny>, what: &str, cause: PyErr) -> PyErr {
    let py = obj.py();
    if cause.is_instance_of::<PyTypeError>(py) {
        return cause;
    }
    PyTypeError::new_err(format!(
        "expected {what}, got {}: {}",
        obj.get_type(),
        cause.value(py)
    ))
}

/// [`float`] for an optional argument (None stays None).
pub fn opt_float(obj: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
    if obj.is_none() {
        return Ok(None);
    }
    float(obj).map(Some)
}
