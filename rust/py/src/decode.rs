//! Bindings for `isthmus_core::decode`: `Tag`, `DecodePlan`, `decode_array`,
//! `encode_array`.
//!
//! Register input is accepted as a list/tuple of ints, `array.array`, a numpy
//! integer array (uint16 zero-copy) or a bytes-like object (`bytes`,
//! `bytearray`, `memoryview`) in wire order (big-endian per register). Values
//! outside 0..=65535 raise `DecodeError`.

use isthmus_core::decode as core;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple,
};

use crate::args;
use crate::arrays;
use crate::errors;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Tag>()?;
    m.add_class::<DecodePlan>()?;
    m.add_function(wrap_pyfunction!(decode_array, m)?)?;
    m.add_function(wrap_pyfunction!(encode_array, m)?)?;
    Ok(())
}

fn tag_error(e: impl std::fmt::Display) -> PyErr {
    errors::TagError::new_err(e.to_string())
}

fn decode_error(e: impl std::fmt::Display) -> PyErr {
    errors::DecodeError::new_err(e.to_string())
}

/// A plan's decode error; running out of memory is a MemoryError.
fn plan_error(e: core::DecodeError) -> PyErr {
    match e {
        core::DecodeError::OutOfMemory { .. } => arrays::memory_error(e),
        e => decode_error(e),
    }
}

/// An array decode/encode error; running out of memory is a MemoryError.
fn array_error(e: core::ArrayError) -> PyErr {
    match e {
        core::ArrayError::OutOfMemory { .. } => arrays::memory_error(e),
        e => decode_error(e),
    }
}

/// rust-numpy refuses to share an array another Rust borrow is writing to; say so
/// instead of panicking.
fn busy(e: numpy::BorrowError) -> PyErr {
    decode_error(format!("array is being written elsewhere: {e}"))
}

/// An int argument; ints too large for i64 saturate so that range checks
/// report them as out of range instead of raising OverflowError.
fn int_arg(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(v) => Ok(v),
        Err(e) if obj.is_instance_of::<PyInt>() => {
            let negative = obj.lt(0).map_err(|_| e)?;
            Ok(if negative { i64::MIN } else { i64::MAX })
        }
        Err(e) => Err(e),
    }
}

/// One named value at a Modbus register address, validated on construction.
#[pyclass(module = "isthmus._core", name = "Tag", frozen)]
pub struct Tag {
    spec: core::TagSpec,
}

#[pymethods]
impl Tag {
    #[new]
    #[pyo3(signature = (name, address, dtype, order="ABCD", scale=1.0, offset=0.0, bit=None, length=None, unit=None, byte=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &str,
        address: &Bound<'_, PyAny>,
        dtype: &str,
        order: &str,
        #[pyo3(from_py_with = args::float)] scale: f64,
        #[pyo3(from_py_with = args::float)] offset: f64,
        bit: Option<&Bound<'_, PyAny>>,
        length: Option<&Bound<'_, PyAny>>,
        unit: Option<&str>,
        byte: Option<&str>,
    ) -> PyResult<Self> {
        let params = core::TagParams {
            order: Some(order),
            scale: Some(scale),
            offset: Some(offset),
            bit: bit.map(int_arg).transpose()?,
            length: length.map(int_arg).transpose()?,
            byte,
            unit,
        };
        let spec = core::TagSpec::new(name, int_arg(address)?, dtype, params).map_err(tag_error)?;
        Ok(Tag { spec })
    }

    #[getter]
    fn name(&self) -> &str {
        self.spec.name()
    }
    #[getter]
    fn address(&self) -> u16 {
        self.spec.address()
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        self.spec.dtype().name()
    }
    #[getter]
    fn order(&self) -> &'static str {
        self.spec.order().name()
    }
    #[getter]
    fn scale(&self) -> f64 {
        self.spec.scale()
    }
    #[getter]
    fn offset(&self) -> f64 {
        self.spec.offset()
    }
    #[getter]
    fn bit(&self) -> Option<u8> {
        self.spec.bit()
    }
    #[getter]
    fn length(&self) -> Option<u16> {
        self.spec.length()
    }
    #[getter]
    fn unit(&self) -> Option<&str> {
        self.spec.unit()
    }
    #[getter]
    fn byte(&self) -> Option<&'static str> {
        self.spec.byte().map(core::ByteHalf::name)
    }
    /// Registers the tag occupies.
    #[getter]
    fn width(&self) -> usize {
        self.spec.width()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Tag>().is_ok_and(|o| o.get().spec == self.spec)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        // Only fields compared exactly (not the floats, where 0.0 == -0.0).
        let s = &self.spec;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            s.name(),
            s.address(),
            s.dtype(),
            s.order(),
            s.bit(),
            s.length(),
        )
            .hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        let s = &self.spec;
        let mut out = format!(
            "Tag({:?}, {}, {:?}",
            s.name(),
            s.address(),
            s.dtype().name()
        );
        if s.order() != core::Order::ABCD {
            out += &format!(", order={:?}", s.order().name());
        }
        if s.scale() != 1.0 {
            out += &format!(", scale={:?}", s.scale());
        }
        if s.offset() != 0.0 {
            out += &format!(", offset={:?}", s.offset());
        }
        if let Some(bit) = s.bit() {
            out += &format!(", bit={bit}");
        }
        if let Some(length) = s.length() {
            out += &format!(", length={length}");
        }
        if let Some(unit) = s.unit() {
            out += &format!(", unit={unit:?}");
        }
        if let Some(core::ByteHalf::Low) = s.byte() {
            out += ", byte=\"low\"";
        }
        out.replace('"', "'") + ")"
    }
}

/// Registers as received: borrowed from a numpy uint16 array, copied, or wire bytes.
enum Registers<'py> {
    Borrowed(PyReadonlyArray1<'py, u16>),
    Owned(Vec<u16>),
    Wire(Bound<'py, PyBytes>),
}

impl Registers<'_> {
    fn block(&self) -> PyResult<core::RegisterBlock<'_>> {
        Ok(match self {
            Registers::Borrowed(a) => core::RegisterBlock::Values(arrays::slice(a)?),
            Registers::Owned(v) => core::RegisterBlock::Values(v),
            Registers::Wire(b) => core::RegisterBlock::Wire(b.as_bytes()),
        })
    }
}

fn wire_to_values(bytes: &[u8]) -> PyResult<Vec<u16>> {
    if bytes.len() % 2 == 1 {
        return Err(decode_error(core::ArrayError::OddBytes {
            got: bytes.len(),
        }));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect())
}

fn register_value(index: usize, item: &Bound<'_, PyAny>) -> PyResult<u16> {
    match item.extract::<i64>() {
        Ok(v) => u16::try_from(v)
            .map_err(|_| decode_error(format!("register {index} is {v}, outside 0..=65535"))),
        Err(_) if item.is_instance_of::<PyInt>() => Err(decode_error(format!(
            "register {index} is {}, outside 0..=65535",
            item.repr().map(|r| r.to_string()).unwrap_or_default()
        ))),
        Err(_) => Err(decode_error(format!(
            "register {index} is not an int (got {})",
            item.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))),
    }
}

/// A list of ints (what pymodbus hands over), on the hot path of `plan.decode`:
/// borrowed items and one C call per register instead of PyO3's owned
/// iteration; anything unusual falls back to [`register_value`] for the message.
fn list_registers(list: &Bound<'_, PyList>) -> PyResult<Vec<u16>> {
    let py = list.py();
    let n = list.len();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: `list` is a live list we hold; PyList_GetItem bounds-checks and
        // returns a borrowed reference (NULL with IndexError if the list shrank),
        // which is used only for the PyLong_AsLongLong call right after.
        let value = unsafe {
            let item = pyo3::ffi::PyList_GetItem(list.as_ptr(), i as pyo3::ffi::Py_ssize_t);
            if item.is_null() {
                return Err(PyErr::fetch(py));
            }
            pyo3::ffi::PyLong_AsLongLong(item)
        };
        if value == -1 && PyErr::take(py).is_some() || !(0..=65535).contains(&value) {
            return Err(match list.get_item(i) {
                Ok(item) => register_value(i, &item)
                    .err()
                    .unwrap_or_else(|| decode_error(format!("register {i} is not usable"))),
                Err(e) => e,
            });
        }
        out.push(value as u16);
    }
    Ok(out)
}

/// Any numpy integer array as aligned C-ordered uint16, after checking the range.
fn checked_u16_array<'py>(
    arr: &Bound<'py, PyUntypedArray>,
    ndim: usize,
) -> PyResult<Bound<'py, PyAny>> {
    if arr.ndim() != ndim {
        return Err(decode_error(format!(
            "registers must be a {ndim}-D array, got {} dimensions",
            arr.ndim()
        )));
    }
    let kind = arr.dtype().kind();
    if kind != b'i' && kind != b'u' {
        return Err(decode_error(format!(
            "registers must be integers, got a {} array",
            arr.dtype().str().map(|s| s.to_string()).unwrap_or_default()
        )));
    }
    if arr.len() > 0 {
        let lowest: i128 = arr.call_method0("min")?.extract()?;
        let highest: i128 = arr.call_method0("max")?.extract()?;
        if lowest < 0 || highest > 65535 {
            let bad = if lowest < 0 { lowest } else { highest };
            return Err(decode_error(format!(
                "register value {bad} is outside 0..=65535"
            )));
        }
    }
    Ok(arrays::c_array::<u16>(arr.as_any())?.into_any())
}

/// Converts any accepted register input (see the module docs).
fn registers<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Registers<'py>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        if b.as_bytes().len() % 2 == 1 {
            return Err(decode_error(core::ArrayError::OddBytes {
                got: b.as_bytes().len(),
            }));
        }
        return Ok(Registers::Wire(b.clone()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Registers::Owned(wire_to_values(&b.to_vec())?));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return Ok(Registers::Owned(list_registers(list)?));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let mut out = Vec::with_capacity(tuple.len());
        for (i, item) in tuple.iter().enumerate() {
            out.push(register_value(i, &item)?);
        }
        return Ok(Registers::Owned(out));
    }
    if let Ok(arr) = obj.cast::<PyArray1<u16>>() {
        // Zero-copy when aligned and C-ordered; numpy copies strided or misaligned views.
        let arr = arrays::c_array::<u16>(arr.as_any())?;
        let arr = arr.cast::<PyArray1<u16>>()?;
        return Ok(Registers::Borrowed(arr.try_readonly().map_err(busy)?));
    }
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        let converted = checked_u16_array(arr, 1)?;
        let arr = converted.cast::<PyArray1<u16>>()?;
        return Ok(Registers::Borrowed(arr.try_readonly().map_err(busy)?));
    }
    if let Ok(buf) = PyBuffer::<u16>::get(obj) {
        // array.array("H") and other native uint16 buffers.
        return Ok(Registers::Owned(buf.to_vec(obj.py())?));
    }
    if let Ok(buf) = PyBuffer::<u8>::get(obj) {
        // Other bytes-like objects (memoryview, array("B")) are wire bytes, as
        // `bytes` is; iterating them would wrongly make every byte a register.
        return Ok(Registers::Owned(wire_to_values(&buf.to_vec(obj.py())?)?));
    }
    let iter = obj.try_iter().map_err(|_| {
        decode_error(format!(
            "registers must be a sequence of ints, numpy array or bytes, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let mut out = Vec::new();
    for (i, item) in iter.enumerate() {
        out.push(register_value(i, &item?)?);
    }
    Ok(Registers::Owned(out))
}

fn base_arg(base: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    base.map(int_arg).transpose()
}

fn value_to_py<'py>(py: Python<'py>, value: core::Value) -> Bound<'py, PyAny> {
    match value {
        core::Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        core::Value::Int(i) => i
            .into_pyobject(py)
            .map(Bound::into_any)
            .unwrap_or_else(|e| match e {}),
        core::Value::UInt(u) => u
            .into_pyobject(py)
            .map(Bound::into_any)
            .unwrap_or_else(|e| match e {}),
        core::Value::Float(x) => PyFloat::new(py, x).into_any(),
        core::Value::Str(s) => PyString::new(py, &s).into_any(),
    }
}

fn column_to_py(py: Python<'_>, column: core::Column) -> Bound<'_, PyAny> {
    use core::Column as C;
    match column {
        C::Bool(v) => v.into_pyarray(py).into_any(),
        C::I8(v) => v.into_pyarray(py).into_any(),
        C::U8(v) => v.into_pyarray(py).into_any(),
        C::I16(v) => v.into_pyarray(py).into_any(),
        C::U16(v) => v.into_pyarray(py).into_any(),
        C::I32(v) => v.into_pyarray(py).into_any(),
        C::U32(v) => v.into_pyarray(py).into_any(),
        C::I64(v) => v.into_pyarray(py).into_any(),
        C::U64(v) => v.into_pyarray(py).into_any(),
        C::F16(v) => v.into_pyarray(py).into_any(),
        C::F32(v) => v.into_pyarray(py).into_any(),
        C::F64(v) => v.into_pyarray(py).into_any(),
        C::Str(v) => {
            let objects: Vec<Py<PyAny>> = v
                .iter()
                .map(|s| PyString::new(py, s).into_any().unbind())
                .collect();
            PyArray1::from_vec(py, objects).into_any()
        }
    }
}

/// Converts one Python value for encoding; `None` when it has no usable type.
fn encode_value(value: &Bound<'_, PyAny>) -> Option<core::EncodeValue> {
    use core::EncodeValue as E;
    if let Ok(b) = value.cast::<PyBool>() {
        return Some(E::Bool(b.is_true()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return s.to_str().ok().map(|s| E::Str(s.to_owned()));
    }
    if let Ok(b) = value.extract::<bool>() {
        return Some(E::Bool(b)); // numpy.bool_
    }
    if let Ok(i) = value.extract::<i128>() {
        return Some(E::Int(i));
    }
    if value.is_instance_of::<PyInt>() {
        // Beyond i128: as a float it is still out of every integer range.
        let x = value.extract::<f64>().unwrap_or(f64::INFINITY);
        return Some(E::Float(x));
    }
    value.extract::<f64>().ok().map(E::Float)
}

/// A validated set of tags over one register block, decoded in one call.
#[pyclass(module = "isthmus._core", name = "DecodePlan", frozen)]
pub struct DecodePlan {
    plan: core::Plan,
    tags: Vec<Py<Tag>>,
    /// Tag names interned once, so decoding builds its dict without new keys.
    names: Vec<Py<PyString>>,
    /// `{name: None}` in plan order: copying it gives a dict already sized for
    /// every tag, so filling it in never resizes.
    template: Py<PyDict>,
}

#[pymethods]
impl DecodePlan {
    #[new]
    fn new(py: Python<'_>, tags: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut handles = Vec::new();
        for item in tags.try_iter()? {
            let item = item?;
            let tag = item.cast::<Tag>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "DecodePlan takes Tag objects, got {}",
                    item.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            handles.push(tag.clone().unbind());
        }
        let specs = handles.iter().map(|t| t.get().spec.clone()).collect();
        let plan = core::Plan::new(specs).map_err(tag_error)?;
        let names: Vec<Py<PyString>> = plan
            .tags()
            .iter()
            .map(|t| PyString::intern(py, t.name()).unbind())
            .collect();
        let template = PyDict::new(py);
        for name in &names {
            template.set_item(name.bind(py), py.None())?;
        }
        Ok(DecodePlan {
            plan,
            tags: handles,
            names,
            template: template.unbind(),
        })
    }

    /// Address of the first register the plan reads.
    #[getter]
    fn start(&self) -> u16 {
        self.plan.start()
    }

    /// Number of registers the plan reads from `start`.
    #[getter]
    fn count(&self) -> usize {
        self.plan.count()
    }

    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.tags.iter().map(|t| t.clone_ref(py)))
    }

    fn __len__(&self) -> usize {
        self.tags.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "DecodePlan({} tags, start={}, count={})",
            self.tags.len(),
            self.plan.start(),
            self.plan.count()
        )
    }

    #[pyo3(signature = (registers, base=None))]
    fn decode<'py>(
        &self,
        py: Python<'py>,
        registers: &Bound<'py, PyAny>,
        base: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let base = base_arg(base)?;
        let regs = self::registers(registers)?;
        let owned;
        let values: &[u16] = match &regs {
            Registers::Borrowed(a) => arrays::slice(a)?,
            Registers::Owned(v) => v,
            Registers::Wire(b) => {
                owned = wire_to_values(b.as_bytes())?;
                &owned
            }
        };
        let dict = self.template.bind(py).copy()?;
        let mut failure = None;
        self.plan
            .decode_each(values, base, |i, value| {
                if let Err(e) = dict.set_item(self.names[i].bind(py), value_to_py(py, value)) {
                    failure.get_or_insert(e);
                }
            })
            .map_err(plan_error)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(dict),
        }
    }

    #[pyo3(signature = (frames, base=None))]
    fn decode_many<'py>(
        &self,
        py: Python<'py>,
        frames: &Bound<'py, PyAny>,
        base: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let base = base_arg(base)?;
        let converted;
        let array = match frames.cast::<PyArray2<u16>>() {
            Ok(a) => a,
            Err(_) => {
                let numpy = py.import("numpy")?;
                let arr = numpy.call_method1("asarray", (frames,)).map_err(|e| {
                    arrays::map_conversion(e, py, |e| {
                        decode_error(format!("frames are not an array: {e}"))
                    })
                })?;
                let arr = arr.cast::<PyUntypedArray>()?;
                converted = checked_u16_array(arr, 2)?;
                converted.cast::<PyArray2<u16>>()?
            }
        };
        let columns = array.shape()[1];
        // Row-major aligned data is used in place; Fortran order, strided or misaligned
        // views are copied by numpy (as_slice alone would also hand out a Fortran buffer).
        let contiguous = arrays::c_array::<u16>(array.as_any())?;
        let ro = contiguous.try_readonly().map_err(busy)?;
        let data: &[u16] = arrays::slice(&ro)?;
        let plan = &self.plan;
        let decoded = py
            .detach(|| plan.decode_many(data, columns, base))
            .map_err(plan_error)?;
        let dict = PyDict::new(py);
        for (name, column) in self.names.iter().zip(decoded) {
            dict.set_item(name.bind(py), column_to_py(py, column))?;
        }
        Ok(dict)
    }

    fn encode<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<u16>>> {
        if values.cast::<PyMapping>().is_err() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "encode takes a mapping of tag name to value, got {}",
                values.get_type()
            )));
        }
        let mut given = Vec::with_capacity(self.tags.len());
        for (name, tag) in self.names.iter().zip(self.plan.tags()) {
            let item = match values.get_item(name.bind(py)) {
                Ok(v) => Some(v),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(py) => None,
                Err(e) => return Err(e),
            };
            let converted = match item {
                None => None,
                Some(v) => Some(encode_value(&v).ok_or_else(|| {
                    decode_error(format!(
                        "cannot encode tag {:?} ({}): a value of type {} is not a bool, int, float or str",
                        tag.name(),
                        tag.dtype().name(),
                        v.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                    ))
                })?),
            };
            given.push(converted);
        }
        // A key that names no tag is most likely a typo: say so.
        for key in values.try_iter()? {
            let key = key?;
            let known = key
                .extract::<&str>()
                .is_ok_and(|k| self.plan.tags().iter().any(|t| t.name() == k));
            if !known {
                return Err(decode_error(format!(
                    "cannot encode: the plan has no tag {}",
                    key.repr()?
                )));
            }
        }
        let regs = self.plan.encode(&given).map_err(decode_error)?;
        Ok(regs.into_pyarray(py))
    }
}

/// Decodes a whole block of one dtype (a waveform block) in one pass.
#[pyfunction]
#[pyo3(signature = (registers, dtype, order="ABCD", scale=1.0, offset=0.0))]
fn decode_array<'py>(
    py: Python<'py>,
    registers: &Bound<'py, PyAny>,
    dtype: &str,
    order: &str,
    #[pyo3(from_py_with = args::float)] scale: f64,
    #[pyo3(from_py_with = args::float)] offset: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let dtype = core::Dtype::parse(dtype).map_err(tag_error)?;
    let order = core::Order::parse(order).map_err(tag_error)?;
    let regs = self::registers(registers)?;
    let block = regs.block()?;
    let column = py
        .detach(|| core::decode_array(block, dtype, order, scale, offset))
        .map_err(array_error)?;
    Ok(column_to_py(py, column))
}

/// Encodes numbers as consecutive registers of one dtype.
#[pyfunction]
#[pyo3(signature = (values, dtype, order="ABCD"))]
fn encode_array<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    dtype: &str,
    order: &str,
) -> PyResult<Bound<'py, PyArray1<u16>>> {
    let dtype = core::Dtype::parse(dtype).map_err(tag_error)?;
    let order = core::Order::parse(order).map_err(tag_error)?;
    let numpy = py.import("numpy")?;
    let arr = numpy.call_method1("asarray", (values,)).map_err(|e| {
        arrays::map_conversion(e, py, |e| {
            decode_error(format!("values are not an array: {e}"))
        })
    })?;
    let arr = arr.cast::<PyUntypedArray>()?;
    if arr.ndim() != 1 {
        return Err(decode_error(format!(
            "values must be a 1-D array, got {} dimensions",
            arr.ndim()
        )));
    }
    // Converted (by numpy, when not already aligned native C order) to the widest type.
    let kind = match arr.dtype().kind() {
        b'b' | b'i' => 'i',
        b'u' => 'u',
        b'f' => 'f',
        _ => {
            return Err(decode_error(format!(
                "values must be numbers, got a {} array",
                arr.dtype().str().map(|s| s.to_string()).unwrap_or_default()
            )))
        }
    };
    let result = match kind {
        'i' => {
            let a = arrays::c_array::<i64>(arr.as_any())?;
            let a = a.try_readonly().map_err(busy)?;
            let s = arrays::slice(&a)?;
            py.detach(|| core::encode_array(core::Numbers::I64(s), dtype, order))
        }
        'u' => {
            let a = arrays::c_array::<u64>(arr.as_any())?;
            let a = a.try_readonly().map_err(busy)?;
            let s = arrays::slice(&a)?;
            py.detach(|| core::encode_array(core::Numbers::U64(s), dtype, order))
        }
        _ => {
            let a = arrays::c_array::<f64>(arr.as_any())?;
            let a = a.try_readonly().map_err(busy)?;
            let s = arrays::slice(&a)?;
            py.detach(|| core::encode_array(core::Numbers::F64(s), dtype, order))
        }
    };
    Ok(result.map_err(array_error)?.into_pyarray(py))
}
