//! Bindings for `isthmus_core::ring`: `SampleRing`, `RingReader`, `RingRead`.
//!
//! The core ring sits in an `Arc<RwLock<..>>` shared by the ring object and its
//! readers: the producer pushes under the write lock, readers copy in parallel
//! under the read lock, and every copy runs with the GIL released. The classes
//! are `frozen` (no PyO3 borrow flag) and `Sync`, so any thread may use them.

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use isthmus_core::ring::{self as core, ReaderCursor, RingError, Sample};
use numpy::ndarray::Array2;
use numpy::{
    Element, IntoPyArray, PyArrayDescr, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::marker::Ungil;
use pyo3::prelude::*;

use crate::args;
use crate::arrays;
use crate::errors::SignalError;

fn signal_error(err: RingError) -> PyErr {
    match err {
        RingError::OutOfMemory { .. } => arrays::memory_error(err),
        err => SignalError::new_err(err.to_string()),
    }
}

/// The ring's storage type, chosen at construction.
pub(crate) enum Store {
    F32(core::SampleRing<f32>),
    F64(core::SampleRing<f64>),
}

/// Methods common to both storage types, dispatched once per call.
macro_rules! with_ring {
    ($store:expr, $ring:ident => $body:expr) => {
        match $store {
            Store::F32($ring) => $body,
            Store::F64($ring) => $body,
        }
    };
}

/// A sample type the bindings can hand to numpy and find in a [`Store`].
trait Stored: Element + Sample {
    fn ring(store: &Store) -> Option<&core::SampleRing<Self>>;
    fn ring_mut(store: &mut Store) -> Option<&mut core::SampleRing<Self>>;
}

impl Stored for f32 {
    fn ring(store: &Store) -> Option<&core::SampleRing<Self>> {
        match store {
            Store::F32(r) => Some(r),
            Store::F64(_) => None,
        }
    }
    fn ring_mut(store: &mut Store) -> Option<&mut core::SampleRing<Self>> {
        match store {
            Store::F32(r) => Some(r),
            Store::F64(_) => None,
        }
    }
}

impl Stored for f64 {
    fn ring(store: &Store) -> Option<&core::SampleRing<Self>> {
        match store {
            Store::F64(r) => Some(r),
            Store::F32(_) => None,
        }
    }
    fn ring_mut(store: &mut Store) -> Option<&mut core::SampleRing<Self>> {
        match store {
            Store::F64(r) => Some(r),
            Store::F32(_) => None,
        }
    }
}

/// The ring plus the facts that never change, shared by the ring object and its readers.
pub(crate) struct Shared {
    store: RwLock<Store>,
    pub(crate) channels: usize,
    is_f64: bool,
}

impl Shared {
    // Nothing panics while a lock is held, but a poisoned lock must not become a
    // panic across the boundary either: the ring's state is valid after any push.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Copies of at least this many values run with the GIL released. Smaller ones keep it:
/// releasing and retaking the GIL costs more than copying 16 KiB, and would hand it to
/// other threads for nothing (numpy's own loops keep the GIL below a size threshold too).
/// No Rust lock is ever held while waiting for the GIL, so both paths are deadlock-free.
const DETACH_MIN_VALUES: usize = 4096;

/// Run `f` with the GIL released if `values` is large enough to be worth it.
fn copy_section<T: Ungil, F: Ungil + FnOnce() -> T>(py: Python<'_>, values: usize, f: F) -> T {
    if values >= DETACH_MIN_VALUES {
        py.detach(f)
    } else {
        f()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn positive(name: &str, value: i64) -> PyResult<usize> {
    let make = |message: String| SignalError::new_err(message);
    match value {
        i64::MIN => Err(make(format!(
            "{name} must be at least 1, got an int below -2**63"
        ))),
        v if v < 1 => Err(make(format!("{name} must be at least 1, got {v}"))),
        v => args::count(name, v, make),
    }
}

/// A count or index argument: any Python int in 0..2**64, else a SignalError naming it
/// (not PyO3's OverflowError for ints beyond i64, which names nothing); non-ints: TypeError.
fn non_negative(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(v) = value.extract::<u64>() {
        return Ok(v);
    }
    // operator.index: the int a numpy integer stands for; TypeError for floats and the rest.
    let int = value
        .py()
        .import("operator")?
        .call_method1("index", (value,))?;
    let problem = if int.lt(0)? {
        "must be >= 0"
    } else {
        "is beyond 2**64 - 1"
    };
    Err(SignalError::new_err(format!("{name} {problem}, got {int}")))
}

/// [`non_negative`] for a count of samples held in memory.
fn sample_count(name: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    let v = non_negative(name, value)?;
    Ok(usize::try_from(v).unwrap_or(usize::MAX))
}

/// `block` as an aligned C-contiguous array of `T`: zero-copy when it already is one,
/// otherwise converted by numpy from any int or float array or nested list.
fn contiguous_block<'py, T: Element>(
    block: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    if let Ok(arr) = block.cast::<PyArrayDyn<T>>() {
        if arrays::usable(arr) {
            return Ok(arr.clone());
        }
    }
    let py = block.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (block,)).map_err(|e| {
        arrays::map_conversion(e, py, |e| {
            SignalError::new_err(format!("block is not a numeric array: {e}"))
        })
    })?;
    let arr = arr
        .cast_into::<PyUntypedArray>()
        .map_err(|_| SignalError::new_err("block is not a numeric array"))?;
    let dtype = arr.dtype();
    if !matches!(dtype.kind(), b'i' | b'u' | b'f') {
        return Err(SignalError::new_err(format!(
            "block has dtype {dtype}; samples must be an int or float dtype"
        )));
    }
    arrays::c_array::<T>(arr.as_any())
}

/// Samples per channel of a block of shape `shape` for a ring of `channels`.
fn per_channel(shape: &[usize], channels: usize) -> PyResult<usize> {
    match *shape {
        [n] if channels == 1 => Ok(n),
        [c, n] if c == channels => Ok(n),
        _ => {
            let want = if channels == 1 {
                "(n,) or (1, n)".to_string()
            } else {
                format!("({channels}, n)")
            };
            let shape = match shape {
                [n] => format!("({n},)"),
                dims => format!(
                    "({})",
                    dims.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            Err(SignalError::new_err(format!(
                "block of shape {shape} does not fit a {channels}-channel ring: \
                 expected {want} (channels x samples)"
            )))
        }
    }
}

fn push_typed<T: Stored>(
    shared: &Shared,
    block: &Bound<'_, PyAny>,
    t0: Option<f64>,
    gap: u64,
) -> PyResult<core::PushInfo> {
    let arr = contiguous_block::<T>(block)?;
    let n = per_channel(arr.shape(), shared.channels)?;
    let view = arr.try_readonly()?;
    let samples = arrays::slice(&view)?;
    copy_section(block.py(), samples.len(), || {
        let mut store = shared.write();
        let ring = T::ring_mut(&mut store).expect("storage type fixed at construction");
        ring.push(samples, n, t0, gap).map_err(signal_error)
    })
}

/// A `channels x n` numpy array that takes over `data` without copying.
fn to_array<'py, T: Element>(
    py: Python<'py>,
    channels: usize,
    data: Vec<T>,
) -> PyResult<Bound<'py, PyAny>> {
    let n = data.len() / channels;
    let arr = Array2::from_shape_vec((channels, n), data)
        .map_err(|e| SignalError::new_err(format!("internal shape error: {e}")))?;
    Ok(arr.into_pyarray(py).into_any())
}

/// A preallocated multi-channel sample ring with absolute indices and a time base.
#[pyclass(frozen, module = "isthmus._core")]
pub struct SampleRing {
    shared: Arc<Shared>,
}

impl SampleRing {
    /// The shared core ring, for producers in other binding files (waveform acquisition).
    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }
}

#[pymethods]
impl SampleRing {
    #[new]
    #[pyo3(
        signature = (channels, capacity, sample_rate, dtype = None),
        text_signature = "(channels, capacity, sample_rate, dtype='float32')"
    )]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::int)] channels: i64,
        #[pyo3(from_py_with = args::int)] capacity: i64,
        #[pyo3(from_py_with = args::float)] sample_rate: f64,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let channels = positive("channels", channels)?;
        let capacity = positive("capacity", capacity)?;
        let is_f64 = match dtype {
            None => false,
            Some(spec) => {
                let name: String = py
                    .import("numpy")?
                    .call_method1("dtype", (spec,))
                    .and_then(|d| d.getattr("name")?.extract())
                    .map_err(|e| SignalError::new_err(format!("unknown dtype {spec}: {e}")))?;
                match name.as_str() {
                    "float32" => false,
                    "float64" => true,
                    other => {
                        return Err(SignalError::new_err(format!(
                            "ring dtype must be float32 or float64, got {other}"
                        )))
                    }
                }
            }
        };
        let store = py.detach(|| {
            if is_f64 {
                core::SampleRing::new(channels, capacity, sample_rate).map(Store::F64)
            } else {
                core::SampleRing::new(channels, capacity, sample_rate).map(Store::F32)
            }
        });
        Ok(Self {
            shared: Arc::new(Shared {
                store: RwLock::new(store.map_err(signal_error)?),
                channels,
                is_f64,
            }),
        })
    }

    /// Append a block; returns the index of its first sample (after any gap).
    #[pyo3(signature = (block, t0 = None, gap = None), text_signature = "($self, block, t0=None, gap=0)")]
    fn push(
        &self,
        block: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = args::opt_float)] t0: Option<f64>,
        gap: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let gap = gap
            .map(|g| non_negative("gap", g))
            .transpose()?
            .unwrap_or(0);
        let info = if self.shared.is_f64 {
            push_typed::<f64>(&self.shared, block, t0, gap)?
        } else {
            push_typed::<f32>(&self.shared, block, t0, gap)?
        };
        Ok(info.start_index)
    }

    /// A new reader starting at the next sample written (or at the oldest one kept).
    #[pyo3(signature = (from_oldest = false))]
    fn reader(&self, from_oldest: bool) -> RingReader {
        let cursor = with_ring!(&*self.shared.read(), r => if from_oldest {
            r.cursor_at_oldest()
        } else {
            r.cursor_at_end()
        });
        RingReader {
            shared: Arc::clone(&self.shared),
            cursor: Mutex::new(cursor),
        }
    }

    /// A copy of the newest `n` samples, `channels x n`; gap slots hold NaN.
    fn latest<'py>(&self, py: Python<'py>, n: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let n = sample_count("latest(n): n", n)?;
        if self.shared.is_f64 {
            latest_typed::<f64>(py, &self.shared, n)
        } else {
            latest_typed::<f32>(py, &self.shared, n)
        }
    }

    /// Time in seconds of sample `index`.
    fn time_of(&self, index: &Bound<'_, PyAny>) -> PyResult<f64> {
        let index = non_negative("index", index)?;
        Ok(with_ring!(&*self.shared.read(), r => r.time_of(index)))
    }

    #[getter]
    fn channels(&self) -> usize {
        self.shared.channels
    }

    #[getter]
    fn capacity(&self) -> usize {
        with_ring!(&*self.shared.read(), r => r.capacity())
    }

    #[getter]
    fn sample_rate(&self) -> f64 {
        with_ring!(&*self.shared.read(), r => r.sample_rate())
    }

    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> Bound<'py, PyArrayDescr> {
        if self.shared.is_f64 {
            PyArrayDescr::of::<f64>(py)
        } else {
            PyArrayDescr::of::<f32>(py)
        }
    }

    #[getter]
    fn written(&self) -> u64 {
        with_ring!(&*self.shared.read(), r => r.written())
    }

    #[getter]
    fn total_gap(&self) -> u64 {
        with_ring!(&*self.shared.read(), r => r.total_gap())
    }

    fn __repr__(&self) -> String {
        let (capacity, rate, written) =
            with_ring!(&*self.shared.read(), r => (r.capacity(), r.sample_rate(), r.written()));
        let dtype = if self.shared.is_f64 {
            "float64"
        } else {
            "float32"
        };
        format!(
            "SampleRing(channels={}, capacity={capacity}, sample_rate={rate:?}, \
             dtype='{dtype}', written={written})",
            self.shared.channels
        )
    }
}

fn latest_typed<'py, T: Stored>(
    py: Python<'py>,
    shared: &Shared,
    n: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let data = copy_section(py, n.saturating_mul(shared.channels), || {
        let store = shared.read();
        let ring = T::ring(&store).expect("storage type fixed at construction");
        let mut out = Vec::new();
        ring.latest_into(n, &mut out).map(|()| out)
    });
    to_array(py, shared.channels, data.map_err(signal_error)?)
}

/// One reader's cursor into a `SampleRing`, with running totals.
#[pyclass(frozen, module = "isthmus._core")]
pub struct RingReader {
    shared: Arc<Shared>,
    cursor: Mutex<ReaderCursor>,
}

fn read_typed<T: Stored>(reader: &RingReader, py: Python<'_>, max_n: usize) -> PyResult<RingRead> {
    let read_locked = || {
        let mut cursor = lock(&reader.cursor);
        let store = reader.shared.read();
        let ring = T::ring(&store).expect("storage type fixed at construction");
        let mut out = Vec::new();
        ring.read_into(&mut cursor, max_n, &mut out)
            .map(|info| (info, ring.time_of(info.start_index), out))
    };
    // The size of the copy is known only under the locks; what the reader is owed now
    // decides whether to release the GIL (a push landing in between can only make the copy
    // larger by what fits the ring, which is harmless).
    let bound = {
        let cursor = lock(&reader.cursor);
        let written = with_ring!(&*reader.shared.read(), r => r.written());
        let owed = usize::try_from(written - cursor.position()).unwrap_or(usize::MAX);
        owed.min(max_n).saturating_mul(reader.shared.channels)
    };
    let (info, time, data) = copy_section(py, bound, read_locked).map_err(signal_error)?;
    Ok(RingRead {
        samples: to_array(py, reader.shared.channels, data)?.unbind(),
        start_index: info.start_index,
        start_time: time,
        lost_overrun: info.lost_overrun,
        lost_gap: info.lost_gap,
        len: info.len,
    })
}

#[pymethods]
impl RingReader {
    /// New samples since the last read (at most `max_n` per channel, up to the next gap).
    #[pyo3(signature = (max_n = None))]
    fn read(&self, py: Python<'_>, max_n: Option<&Bound<'_, PyAny>>) -> PyResult<RingRead> {
        let max_n = match max_n {
            None => usize::MAX,
            Some(m) => sample_count("max_n", m)?,
        };
        if self.shared.is_f64 {
            read_typed::<f64>(self, py, max_n)
        } else {
            read_typed::<f32>(self, py, max_n)
        }
    }

    #[getter]
    fn position(&self) -> u64 {
        lock(&self.cursor).position()
    }

    #[getter]
    fn available(&self) -> u64 {
        let cursor = lock(&self.cursor);
        with_ring!(&*self.shared.read(), r => r.available(&cursor))
    }

    #[getter]
    fn total_read(&self) -> u64 {
        lock(&self.cursor).total_read
    }

    #[getter]
    fn total_lost_overrun(&self) -> u64 {
        lock(&self.cursor).total_lost_overrun
    }

    #[getter]
    fn total_lost_gap(&self) -> u64 {
        lock(&self.cursor).total_lost_gap
    }

    fn __repr__(&self) -> String {
        let c = lock(&self.cursor);
        format!(
            "RingReader(position={}, total_read={}, total_lost_overrun={}, total_lost_gap={})",
            c.position(),
            c.total_read,
            c.total_lost_overrun,
            c.total_lost_gap
        )
    }
}

/// The result of one `RingReader.read()`.
#[pyclass(frozen, module = "isthmus._core")]
pub struct RingRead {
    #[pyo3(get)]
    samples: Py<PyAny>,
    #[pyo3(get)]
    start_index: u64,
    #[pyo3(get)]
    start_time: f64,
    #[pyo3(get)]
    lost_overrun: u64,
    #[pyo3(get)]
    lost_gap: u64,
    len: usize,
}

#[pymethods]
impl RingRead {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!(
            "RingRead(len={}, start_index={}, start_time={:?}, lost_overrun={}, lost_gap={})",
            self.len, self.start_index, self.start_time, self.lost_overrun, self.lost_gap
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SampleRing>()?;
    m.add_class::<RingReader>()?;
    m.add_class::<RingRead>()?;
    Ok(())
}
