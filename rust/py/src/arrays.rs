//! numpy arrays in, Rust slices out: the one place where array memory becomes a `&[T]`.
//!
//! rust-numpy's `as_slice` checks contiguity, not alignment, and `slice::from_raw_parts`
//! on a misaligned pointer is undefined behaviour (a debug build aborts on it). An array
//! at an odd address (`np.frombuffer(buf, offset=1)`), a strided or Fortran-ordered view,
//! or a byte-swapped dtype is therefore copied by numpy into an aligned C-ordered native
//! array first; the common case (already so) stays zero-copy. Copies that do not fit in
//! memory raise numpy's MemoryError.

use numpy::npyffi::NPY_ARRAY_ALIGNED;
use numpy::{
    Element, PyArray, PyArrayDescr, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyReadonlyArray, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;

/// True when the array's memory can be read as a `&[T]` in logical (C) order as it is.
pub fn usable<T: Element, D: numpy::ndarray::Dimension>(array: &Bound<'_, PyArray<T, D>>) -> bool {
    // SAFETY: reading the flags of a live array object.
    let aligned = unsafe { (*array.as_array_ptr()).flags } & NPY_ARRAY_ALIGNED != 0;
    // numpy calls an empty array aligned whatever its address; the pointer decides.
    let pointer_aligned = (array.data() as usize) % std::mem::align_of::<T>() == 0;
    array.is_c_contiguous() && aligned && pointer_aligned
}

/// `obj` as an aligned, C-ordered, native-endian array of `T`: the object itself when it
/// already is one, else numpy's conversion (any array, list or scalar numpy can convert;
/// its TypeError/ValueError/MemoryError propagate for the caller to map).
pub fn c_array<'py, T: Element>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    if let Ok(array) = obj.cast::<PyArrayDyn<T>>() {
        if usable(array) {
            return Ok(array.clone());
        }
    }
    let py = obj.py();
    let converted = py.import("numpy")?.call_method1(
        "require",
        (obj, PyArrayDescr::of::<T>(py), ("C_CONTIGUOUS", "ALIGNED")),
    )?;
    Ok(converted.cast_into::<PyArrayDyn<T>>()?)
}

/// The elements of an array [`c_array`] returned, in C order. An empty array gives an
/// empty slice whatever its address (`from_raw_parts` needs an aligned pointer even then).
pub fn slice<'a, T: Element, D: numpy::ndarray::Dimension>(
    array: &'a PyReadonlyArray<'_, T, D>,
) -> PyResult<&'a [T]> {
    if array.len() == 0 {
        return Ok(&[]);
    }
    if !usable(array) {
        // Not reached for arrays from `c_array`; refuse rather than read misaligned memory.
        return Err(pyo3::exceptions::PyBufferError::new_err(
            "internal error: array is not aligned and C-contiguous",
        ));
    }
    Ok(array.as_slice()?)
}

/// [`slice`] for an array borrowed without a readonly guard (the GIL is held for the whole
/// use of the slice, so no Python code can write to the array meanwhile); None when the
/// array's memory is not usable as it is.
///
/// # Safety
/// No other code may write to the array while the slice lives.
pub unsafe fn slice_unguarded<'a, T: Element>(
    array: &'a Bound<'_, PyArrayDyn<T>>,
) -> Option<&'a [T]> {
    if array.len() == 0 {
        return Some(&[]);
    }
    if !usable(array) {
        return None;
    }
    // SAFETY: aligned, C-contiguous and non-empty (checked above); the caller
    // guarantees no concurrent writes.
    Some(unsafe { std::slice::from_raw_parts(array.data(), array.len()) })
}

/// A conversion error from numpy as the caller's error class, except MemoryError, which
/// stays what it is.
pub fn map_conversion(err: PyErr, py: Python<'_>, make: impl FnOnce(String) -> PyErr) -> PyErr {
    if err.is_instance_of::<PyMemoryError>(py) {
        err
    } else {
        make(err.value(py).to_string())
    }
}

/// A MemoryError naming what could not be allocated.
pub fn memory_error(what: impl std::fmt::Display) -> PyErr {
    PyMemoryError::new_err(what.to_string())
}

/// A copy of `values` in a new vector, or MemoryError when it does not fit.
pub fn try_to_vec<T: Clone>(values: &[T]) -> PyResult<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(values.len()).map_err(|_| {
        memory_error(format!(
            "cannot copy {} values: out of memory",
            values.len()
        ))
    })?;
    out.extend_from_slice(values);
    Ok(out)
}

/// A 1-D run of numbers (any bool, int or float array, or a sequence numpy converts) as an
/// aligned C-ordered float64 array; zero-copy when it already is one. Anything else raises
/// the error `make` builds from a message naming `what`.
pub fn float64_1d<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    make: impl Fn(String) -> PyErr,
) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    let py = obj.py();
    let array = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => py
            .import("numpy")?
            .call_method1("asarray", (obj,))
            .map_err(|e| {
                map_conversion(e, py, |e| {
                    make(format!("{what} must be a 1-D numeric array: {e}"))
                })
            })?
            .cast_into::<PyUntypedArray>()?,
    };
    let dtype = array.dtype();
    if !matches!(dtype.kind(), b'b' | b'i' | b'u' | b'f') {
        return Err(make(format!(
            "{what} must be a 1-D numeric array, got dtype {dtype}"
        )));
    }
    if array.ndim() != 1 {
        return Err(make(format!(
            "{what} must be a 1-D numeric array, got shape {:?}",
            array.shape()
        )));
    }
    c_array::<f64>(array.as_any())
        .map_err(|e| map_conversion(e, py, |e| make(format!("{what}: {e}"))))
}
