//! Bindings for `isthmus_core::s7`: `S7Plan` and `s7_type_size`.
//!
//! Blocks arrive as any bytes-like object (`bytes` without a copy; `bytearray`,
//! `memoryview` and other buffers are copied once, as the GIL cannot protect a
//! mutable buffer while we read it).

use isthmus_core::s7 as core;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};
use std::borrow::Cow;

use crate::args;
use crate::errors;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<S7Plan>()?;
    m.add_function(wrap_pyfunction!(s7_type_size, m)?)?;
    Ok(())
}

fn tag_error(e: impl std::fmt::Display) -> PyErr {
    errors::TagError::new_err(e.to_string())
}

/// Bytes a value of the S7 type ``type_name`` occupies (``STRING[20]`` -> 22).
#[pyfunction]
fn s7_type_size(type_name: &str) -> PyResult<u32> {
    core::S7Type::parse(type_name)
        .map(core::S7Type::size)
        .map_err(tag_error)
}

fn block<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(bytes.as_bytes()));
    }
    let buffer = PyBuffer::<u8>::get(data).map_err(|_| {
        errors::DecodeError::new_err(format!(
            "an S7 block must be bytes-like, got {}",
            data.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    Ok(Cow::Owned(buffer.to_vec(data.py())?))
}

fn base_arg(base: i64) -> PyResult<u32> {
    u32::try_from(base)
        .map_err(|_| errors::DecodeError::new_err(format!("base {base} outside 0..4294967295")))
}

fn value_to_py(py: Python<'_>, value: core::S7Value) -> PyResult<Bound<'_, PyAny>> {
    Ok(match value {
        core::S7Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        core::S7Value::Int(i) => i.into_pyobject(py)?.into_any(),
        core::S7Value::Float(x) => PyFloat::new(py, x).into_any(),
        core::S7Value::Text(s) => PyString::new(py, &s).into_any(),
    })
}

/// S7 tags at byte offsets of one memory area, decoded from one block read.
#[pyclass(module = "isthmus._core", name = "S7Plan", frozen)]
pub struct S7Plan {
    plan: core::S7Plan,
    names: Vec<Py<PyString>>,
}

#[pymethods]
impl S7Plan {
    #[new]
    fn new(py: Python<'_>, tags: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut fields = Vec::new();
        let mut names = Vec::new();
        for item in tags.try_iter()? {
            let item = item?;
            let tuple = item
                .cast::<PyTuple>()
                .map_err(|_| tag_error("each S7 tag is a tuple (name, byte offset, type, bit)"))?;
            let (name, offset, ty, bit): (String, i64, String, i64) = tuple
                .extract()
                .map_err(|_| tag_error("each S7 tag is a tuple (name, byte offset, type, bit)"))?;
            let offset = u32::try_from(offset).map_err(|_| {
                tag_error(format!(
                    "tag {name:?}: byte offset {offset} outside 0..4294967295"
                ))
            })?;
            let bit = u8::try_from(bit)
                .map_err(|_| tag_error(format!("tag {name:?}: bit {bit} outside 0..=7")))?;
            let ty =
                core::S7Type::parse(&ty).map_err(|e| tag_error(format!("tag {name:?}: {e}")))?;
            fields.push(core::S7Field::new(&name, offset, ty, bit).map_err(tag_error)?);
            names.push(PyString::new(py, &name).unbind());
        }
        Ok(S7Plan {
            plan: core::S7Plan::new(fields),
            names,
        })
    }

    fn __len__(&self) -> usize {
        self.names.len()
    }

    /// Tag names in plan order.
    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.names.iter().map(|n| n.clone_ref(py)))
    }

    /// ``{name: value}``; the first tag that cannot be decoded raises DecodeError.
    #[pyo3(signature = (data, base=0))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::int)] base: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let bytes = block(data)?;
        let base = base_arg(base)?;
        let out = PyDict::new(py);
        for (field, name) in self.plan.fields().iter().zip(&self.names) {
            let value = core::decode_field(field, &bytes, base)
                .map_err(|e| errors::DecodeError::new_err(e.to_string()))?;
            out.set_item(name.bind(py), value_to_py(py, value)?)?;
        }
        Ok(out)
    }

    /// ``(values, reasons)``: one entry per tag in plan order; a tag that cannot be
    /// decoded has value None and its reason, the others decode regardless.
    #[pyo3(signature = (data, base=0))]
    fn decode_values<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::int)] base: i64,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
        let bytes = block(data)?;
        let base = base_arg(base)?;
        let values = PyList::empty(py);
        let reasons = PyList::empty(py);
        for field in self.plan.fields() {
            match core::decode_field(field, &bytes, base) {
                Ok(v) => {
                    values.append(value_to_py(py, v)?)?;
                    reasons.append(py.None())?;
                }
                Err(e) => {
                    values.append(py.None())?;
                    reasons.append(e.to_string())?;
                }
            }
        }
        Ok((values, reasons))
    }
}
