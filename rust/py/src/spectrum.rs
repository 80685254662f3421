//! Bindings for `isthmus_core::spectrum`: `SpectrumAnalyzer`, `FeatureFrames`, `velocity_rms`.

use isthmus_core::spectrum::{
    self as core, AccelUnits, AnalyzerConfig, Detrend, FeatureBatch, Precision, PsdScaling,
    SpectrumAnalyzer as CoreAnalyzer, SpectrumError, WindowKind,
};
use std::sync::{Mutex, MutexGuard};

use numpy::ndarray::Array;
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayDescrMethods, PyArrayDyn,
    PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyBool;

use crate::args;
use crate::arrays;
use crate::errors::SignalError;

/// Blocks at least this large release the GIL even when they complete no frame.
const DETACH_SAMPLES: usize = 8192;

fn signal_error(e: SpectrumError) -> PyErr {
    match e {
        SpectrumError::OutOfMemory { .. } => arrays::memory_error(e),
        e => SignalError::new_err(e.to_string()),
    }
}

fn signal(message: String) -> PyErr {
    SignalError::new_err(message)
}

fn shape_error(e: impl std::fmt::Display) -> PyErr {
    SignalError::new_err(format!("internal shape mismatch: {e}"))
}

/// A count argument as usize, with a SignalError (not OverflowError) when negative.
fn count(name: &str, value: i64) -> PyResult<usize> {
    args::count(name, value, signal)
}

fn parse_band(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let pair: Vec<f64> = obj.extract().map_err(|_| {
        SignalError::new_err(format!("{what} must be a pair (lo_hz, hi_hz) of numbers"))
    })?;
    match pair.as_slice() {
        &[lo, hi] => Ok((lo, hi)),
        _ => Err(SignalError::new_err(format!(
            "{what} must be a pair (lo_hz, hi_hz), got {} values",
            pair.len()
        ))),
    }
}

/// `detrend` as scipy spells it: a name, or False for none (None means the default, mean).
fn parse_detrend(obj: &Bound<'_, PyAny>) -> PyResult<Detrend> {
    if obj.is_none() {
        return Ok(Detrend::Mean);
    }
    if let Ok(flag) = obj.cast::<PyBool>() {
        if !flag.is_true() {
            return Ok(Detrend::None);
        }
    }
    let name: String = obj.extract().map_err(|_| {
        SignalError::new_err("detrend must be 'mean' (or 'constant'), 'linear', 'none' or False")
    })?;
    name.parse().map_err(signal_error)
}

/// Samples as a numpy array of a supported dtype; anything else goes through `asarray`.
fn as_numeric_array<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let array = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => {
            let np = py.import("numpy")?;
            let converted = np.call_method1("asarray", (obj,)).map_err(|e| {
                arrays::map_conversion(e, py, |e| {
                    signal(format!("samples must be a numeric array: {e}"))
                })
            })?;
            converted.cast_into::<PyUntypedArray>()?
        }
    };
    let kind = array.dtype().kind();
    if !matches!(kind, b'b' | b'i' | b'u' | b'f') {
        return Err(SignalError::new_err(format!(
            "samples must be integers or floats, got dtype {}",
            array.dtype()
        )));
    }
    Ok(array)
}

/// The block's samples per channel, checking its shape against the channel count.
fn block_length(shape: &[usize], channels: usize) -> PyResult<usize> {
    match *shape {
        [n] if channels == 1 => Ok(n),
        [_] => Err(SignalError::new_err(format!(
            "a 1-D block holds one channel, but the analyzer has {channels}: \
             pass a (channels, n) = ({channels}, n) array"
        ))),
        [c, n] if c == channels => Ok(n),
        [c, n] => Err(SignalError::new_err(format!(
            "block of shape ({c}, {n}) has {c} channel(s), the analyzer expects {channels} \
             (shape is channels x samples)"
        ))),
        _ => Err(SignalError::new_err(format!(
            "samples must be (n,) or (channels, n), got {} dimensions",
            shape.len()
        ))),
    }
}

/// The block as an aligned, C-ordered, native array of a type the core reads directly (the
/// block itself when it already is one); any other dtype or byte order converted once to
/// float64. Runs before the analyzer's lock is taken, as numpy may run Python code.
fn prepare<'py>(array: &Bound<'py, PyUntypedArray>) -> PyResult<Bound<'py, PyUntypedArray>> {
    let dtype = array.dtype();
    let native = dtype.is_native_byteorder().unwrap_or(true);
    let any = array.as_any();
    let ready = match (native, dtype.kind(), dtype.itemsize()) {
        (true, b'f', 4) => arrays::c_array::<f32>(any)?.into_any(),
        (true, b'i', 2) => arrays::c_array::<i16>(any)?.into_any(),
        (true, b'i', 4) => arrays::c_array::<i32>(any)?.into_any(),
        (true, b'u', 2) => arrays::c_array::<u16>(any)?.into_any(),
        (true, b'u', 4) => arrays::c_array::<u32>(any)?.into_any(),
        (_, b'i', 1) => arrays::c_array::<i8>(any)?.into_any(),
        (_, b'u', 1) => arrays::c_array::<u8>(any)?.into_any(),
        // float64, and int64, uint64, float16, bool or byte-swapped converted to it
        _ => arrays::c_array::<f64>(any)?.into_any(),
    };
    Ok(ready.cast_into::<PyUntypedArray>()?)
}

/// Feeds a block [`prepare`] returned, whose dtype is exactly `T`.
fn feed_typed<T>(
    py: Python<'_>,
    analyzer: &mut CoreAnalyzer,
    array: &Bound<'_, PyUntypedArray>,
    samples: usize,
    out: &mut FeatureBatch,
) -> PyResult<()>
where
    T: Element + Copy + Into<f64> + Sync,
{
    // SAFETY: the caller checked that the dtype is exactly T (kind, size, native order).
    let typed = unsafe { array.cast_unchecked::<PyArrayDyn<T>>() };
    // Releasing the GIL costs more than a small block that completes no frame.
    let heavy = analyzer.frames_completed_by(samples) > 0 || samples >= DETACH_SAMPLES;
    if !heavy {
        // SAFETY: the GIL stays held for the whole call, so no Python code can write to the
        // array meanwhile; the slice does not outlive this block.
        if let Some(data) = unsafe { arrays::slice_unguarded(typed) } {
            return analyzer.feed(data, samples, out).map_err(signal_error);
        }
    }
    let readonly = typed.try_readonly()?;
    let data = arrays::slice(&readonly)?;
    let result = if heavy {
        py.detach(|| analyzer.feed(data, samples, out))
    } else {
        analyzer.feed(data, samples, out)
    };
    result.map_err(signal_error)
}

/// Lock `mutex` without deadlocking against the GIL (it is released while waiting); a
/// panic elsewhere cannot leave the state half-updated in a way later calls trip over
/// (every method validates before it mutates), so a poisoned lock is taken as it is.
fn lock<'a, T>(py: Python<'_>, mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
    mutex
        .lock_py_attached(py)
        .unwrap_or_else(|e| e.into_inner())
}

/// Streaming spectral features of a multi-channel vibration signal (see `_core.pyi`).
///
/// Thread contract: one analyzer may be shared by threads; its methods are serialised by
/// a lock (taken with the GIL released, so a long `feed` never blocks other Python threads
/// that do not use this analyzer). Interleaving blocks from several threads is the caller's
/// business: the analyzer sees one stream.
#[pyclass(module = "isthmus._core", name = "SpectrumAnalyzer", frozen)]
pub struct PySpectrumAnalyzer {
    state: Mutex<AnalyzerState>,
    /// The empty result, shaped for the (fixed) configuration.
    empty: Py<FeatureFrames>,
}

struct AnalyzerState {
    inner: CoreAnalyzer,
    /// `dtype=None`: the precision follows the first block fed (after creation or reset).
    precision_follows_input: bool,
}

impl PySpectrumAnalyzer {
    fn state(&self, py: Python<'_>) -> MutexGuard<'_, AnalyzerState> {
        lock(py, &self.state)
    }

    fn config<R>(&self, py: Python<'_>, f: impl FnOnce(&AnalyzerConfig) -> R) -> R {
        f(self.state(py).inner.config())
    }
}

#[pymethods]
impl PySpectrumAnalyzer {
    #[new]
    #[pyo3(signature = (
        sample_rate, frame=4096, hop=None, window="hann", channels=1, bands=None, peaks=5,
        average=1, detrend=None, velocity_band=None, accel_units="g", t0=0.0, dtype=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        #[pyo3(from_py_with = args::float)] sample_rate: f64,
        #[pyo3(from_py_with = args::int)] frame: i64,
        #[pyo3(from_py_with = args::opt_int)] hop: Option<i64>,
        window: &str,
        #[pyo3(from_py_with = args::int)] channels: i64,
        bands: Option<Bound<'_, PyAny>>,
        #[pyo3(from_py_with = args::int)] peaks: i64,
        #[pyo3(from_py_with = args::int)] average: i64,
        detrend: Option<Bound<'_, PyAny>>,
        velocity_band: Option<Bound<'_, PyAny>>,
        accel_units: &str,
        #[pyo3(from_py_with = args::float)] t0: f64,
        dtype: Option<&str>,
    ) -> PyResult<Self> {
        let precision = match dtype {
            None => Precision::Float64,
            Some(name) => name.parse::<Precision>().map_err(signal_error)?,
        };
        let frame = count("frame", frame)?;
        let hop = match hop {
            Some(h) => count("hop", h)?,
            None => frame / 2,
        };
        let bands = match bands {
            None => Vec::new(),
            Some(list) => list
                .try_iter()
                .map_err(|_| SignalError::new_err("bands must be a list of (lo_hz, hi_hz) pairs"))?
                .enumerate()
                .map(|(i, item)| parse_band(&format!("bands[{i}]"), &item?))
                .collect::<PyResult<Vec<_>>>()?,
        };
        let detrend = match detrend {
            None => Detrend::Mean,
            Some(d) => parse_detrend(&d)?,
        };
        let velocity_band = velocity_band
            .filter(|b| !b.is_none())
            .map(|b| parse_band("velocity_band", &b))
            .transpose()?;
        let config = AnalyzerConfig {
            sample_rate,
            frame,
            hop,
            window: window.parse::<WindowKind>().map_err(signal_error)?,
            channels: count("channels", channels)?,
            bands,
            peaks: count("peaks", peaks)?,
            average: count("average", average)?,
            detrend,
            velocity_band,
            accel_units: accel_units.parse::<AccelUnits>().map_err(signal_error)?,
            t0,
            precision,
        };
        let inner = CoreAnalyzer::new(config).map_err(signal_error)?;
        let empty = Py::new(
            py,
            FeatureFrames {
                batch: inner.empty_batch(),
            },
        )?;
        Ok(PySpectrumAnalyzer {
            state: Mutex::new(AnalyzerState {
                inner,
                precision_follows_input: dtype.is_none(),
            }),
            empty,
        })
    }

    /// Feeds a block `(n,)` or `(channels, n)`; returns the features of completed frames.
    fn feed(&self, py: Python<'_>, samples: &Bound<'_, PyAny>) -> PyResult<Py<FeatureFrames>> {
        // Python-side conversions first: they may run arbitrary code (a sequence's
        // __getitem__, numpy's copy of a subclass), which must not run under the lock.
        let given = as_numeric_array(samples)?;
        // As numpy and scipy do: float32 data is analysed in float32, the rest in float64.
        let follows = match (given.dtype().kind(), given.dtype().itemsize()) {
            (b'f', 4) => Precision::Float32,
            _ => Precision::Float64,
        };
        let array = prepare(&given)?;
        let mut state = self.state(py);
        let state = &mut *state;
        let n = block_length(array.shape(), state.inner.config().channels)?;
        let mut out = state.inner.empty_batch();
        if state.precision_follows_input && state.inner.samples() == 0 {
            state.inner.set_precision(follows).map_err(signal_error)?;
        }
        let inner = &mut state.inner;
        let dtype = array.dtype();
        match (dtype.kind(), dtype.itemsize()) {
            (b'f', 4) => feed_typed::<f32>(py, inner, &array, n, &mut out)?,
            (b'i', 2) => feed_typed::<i16>(py, inner, &array, n, &mut out)?,
            (b'i', 4) => feed_typed::<i32>(py, inner, &array, n, &mut out)?,
            (b'u', 2) => feed_typed::<u16>(py, inner, &array, n, &mut out)?,
            (b'u', 4) => feed_typed::<u32>(py, inner, &array, n, &mut out)?,
            (b'i', 1) => feed_typed::<i8>(py, inner, &array, n, &mut out)?,
            (b'u', 1) => feed_typed::<u8>(py, inner, &array, n, &mut out)?,
            (b'f', 8) => feed_typed::<f64>(py, inner, &array, n, &mut out)?,
            _ => return Err(signal(format!("internal: unexpected dtype {dtype}"))),
        }
        if out.is_empty() {
            return Ok(self.empty.clone_ref(py));
        }
        Py::new(py, FeatureFrames { batch: out })
    }

    /// Latest one-sided amplitude spectrum, (channels, bins).
    fn spectrum<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let state = self.state(py);
        let v = state.inner.amplitude_spectrum();
        rows(py, v, state.inner.config().channels, state.inner.bins())
    }

    /// Welch PSD of the last `average` valid frames, (channels, bins).
    #[pyo3(signature = (scaling="density"))]
    fn psd<'py>(&self, py: Python<'py>, scaling: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let scaling: PsdScaling = scaling.parse().map_err(signal_error)?;
        let state = self.state(py);
        if state.inner.frames() == 0 {
            return Err(SignalError::new_err(
                "no frame completed yet: feed at least `frame` samples before asking for a PSD",
            ));
        }
        let v = state.inner.psd(scaling);
        rows(py, v, state.inner.config().channels, state.inner.bins())
    }

    /// Frequency of each bin (Hz), (bins,).
    fn frequencies<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_vec(py, self.state(py).inner.frequencies())
    }

    /// Forgets buffered samples, spectra and counters.
    fn reset(&self, py: Python<'_>) {
        self.state(py).inner.reset();
    }

    #[getter]
    fn sample_rate(&self, py: Python<'_>) -> f64 {
        self.config(py, |c| c.sample_rate)
    }

    #[getter]
    fn frame(&self, py: Python<'_>) -> usize {
        self.config(py, |c| c.frame)
    }

    #[getter]
    fn hop(&self, py: Python<'_>) -> usize {
        self.config(py, |c| c.hop)
    }

    #[getter]
    fn window(&self, py: Python<'_>) -> &'static str {
        self.config(py, |c| c.window.name())
    }

    #[getter]
    fn channels(&self, py: Python<'_>) -> usize {
        self.config(py, |c| c.channels)
    }

    #[getter]
    fn bands(&self, py: Python<'_>) -> Vec<(f64, f64)> {
        self.config(py, |c| c.bands.clone())
    }

    #[getter]
    fn peaks(&self, py: Python<'_>) -> usize {
        self.config(py, |c| c.peaks)
    }

    #[getter]
    fn average(&self, py: Python<'_>) -> usize {
        self.config(py, |c| c.average)
    }

    #[getter]
    fn dtype(&self, py: Python<'_>) -> &'static str {
        self.state(py).inner.precision().name()
    }

    #[getter]
    fn detrend(&self, py: Python<'_>) -> &'static str {
        self.config(py, |c| c.detrend.name())
    }

    #[getter]
    fn velocity_band(&self, py: Python<'_>) -> Option<(f64, f64)> {
        self.config(py, |c| c.velocity_band)
    }

    #[getter]
    fn accel_units(&self, py: Python<'_>) -> &'static str {
        self.config(py, |c| c.accel_units.name())
    }

    #[getter]
    fn bins(&self, py: Python<'_>) -> usize {
        self.state(py).inner.bins()
    }

    #[getter]
    fn frames(&self, py: Python<'_>) -> u64 {
        self.state(py).inner.frames()
    }

    #[getter]
    fn invalid_frames(&self, py: Python<'_>) -> u64 {
        self.state(py).inner.invalid_frames().iter().sum()
    }

    #[getter]
    fn invalid_frames_by_channel(&self, py: Python<'_>) -> Vec<u64> {
        self.state(py).inner.invalid_frames()
    }

    #[getter]
    fn samples(&self, py: Python<'_>) -> u64 {
        self.state(py).inner.samples()
    }

    #[getter]
    fn coherent_gain(&self, py: Python<'_>) -> f64 {
        self.state(py).inner.window().coherent_gain()
    }

    #[getter]
    fn enbw_hz(&self, py: Python<'_>) -> f64 {
        let state = self.state(py);
        let cfg = state.inner.config();
        state.inner.window().enbw_bins() * cfg.sample_rate / cfg.frame as f64
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let state = self.state(py);
        let c = state.inner.config();
        format!(
            "SpectrumAnalyzer(sample_rate={}, frame={}, hop={}, window={:?}, channels={}, \
             bands={}, peaks={}, average={}, detrend={:?}, dtype={:?})",
            c.sample_rate,
            c.frame,
            c.hop,
            c.window.name(),
            c.channels,
            c.bands.len(),
            c.peaks,
            c.average,
            c.detrend.name(),
            c.precision.name()
        )
    }
}

/// A `(n, m)` array taking over `v` (no copy).
fn rows<'py>(
    py: Python<'py>,
    v: Vec<f64>,
    n: usize,
    m: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    Ok(Array::from_shape_vec((n, m), v)
        .map_err(shape_error)?
        .into_pyarray(py))
}

/// A `shape` array holding a copy of `v` (MemoryError when the copy does not fit).
fn cube<'py>(
    py: Python<'py>,
    v: &[f64],
    shape: (usize, usize, usize),
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    Ok(Array::from_shape_vec(shape, arrays::try_to_vec(v)?)
        .map_err(shape_error)?
        .into_pyarray(py))
}

/// Features of the frames completed by one `feed` call, as columnar numpy arrays.
#[pyclass(module = "isthmus._core", name = "FeatureFrames", frozen)]
pub struct FeatureFrames {
    batch: FeatureBatch,
}

impl FeatureFrames {
    fn per_channel<'py>(&self, py: Python<'py>, v: &[f64]) -> PyResult<Bound<'py, PyArray2<f64>>> {
        rows(
            py,
            arrays::try_to_vec(v)?,
            self.batch.len(),
            self.batch.channels,
        )
    }
}

#[pymethods]
impl FeatureFrames {
    fn __len__(&self) -> usize {
        self.batch.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "FeatureFrames(frames={}, channels={}, bands={}, peaks={})",
            self.batch.len(),
            self.batch.channels,
            self.batch.bands,
            self.batch.peaks
        )
    }

    #[getter]
    fn channels(&self) -> usize {
        self.batch.channels
    }

    #[getter]
    fn start_index<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let v: Vec<i64> = self
            .batch
            .start_index
            .iter()
            .map(|&i| i64::try_from(i).unwrap_or(i64::MAX))
            .collect();
        PyArray1::from_vec(py, v)
    }

    #[getter]
    fn start_time<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        Ok(arrays::try_to_vec(&self.batch.start_time)?.into_pyarray(py))
    }

    #[getter]
    fn valid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<bool>>> {
        let shape = (self.batch.len(), self.batch.channels);
        Ok(
            Array::from_shape_vec(shape, arrays::try_to_vec(&self.batch.valid)?)
                .map_err(shape_error)?
                .into_pyarray(py),
        )
    }

    #[getter]
    fn mean<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.mean)
    }

    #[getter]
    fn rms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.rms)
    }

    #[getter]
    fn peak<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.peak)
    }

    #[getter]
    fn peak_to_peak<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.peak_to_peak)
    }

    #[getter]
    fn crest_factor<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.crest_factor)
    }

    #[getter]
    fn std<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.std)
    }

    #[getter]
    fn skewness<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.skewness)
    }

    #[getter]
    fn kurtosis<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.kurtosis)
    }

    #[getter]
    fn dominant_freq<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.dominant_freq)
    }

    #[getter]
    fn centroid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        self.per_channel(py, &self.batch.centroid)
    }

    #[getter]
    fn velocity_rms_mm_s<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<Bound<'py, PyArray2<f64>>>> {
        if !self.batch.has_velocity {
            return Ok(None);
        }
        self.per_channel(py, &self.batch.velocity_rms_mm_s)
            .map(Some)
    }

    #[getter]
    fn band_rms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let b = &self.batch;
        cube(py, &b.band_rms, (b.len(), b.channels, b.bands))
    }

    #[getter]
    fn peak_freqs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let b = &self.batch;
        cube(py, &b.peak_freqs, (b.len(), b.channels, b.peaks))
    }

    #[getter]
    fn peak_amps<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let b = &self.batch;
        cube(py, &b.peak_amps, (b.len(), b.channels, b.peaks))
    }
}

/// Velocity RMS (mm/s) of an acceleration record over a band, by frequency-domain integration.
#[pyfunction]
#[pyo3(
    signature = (accel, sample_rate, band=None, units="g"),
    text_signature = "(accel, sample_rate, band=(10.0, 1000.0), units='g')"
)]
fn velocity_rms(
    py: Python<'_>,
    accel: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = args::float)] sample_rate: f64,
    band: Option<Bound<'_, PyAny>>,
    units: &str,
) -> PyResult<f64> {
    let units: AccelUnits = units.parse().map_err(signal_error)?;
    let band = match band {
        None => (10.0, 1000.0),
        Some(b) => parse_band("band", &b)?,
    };
    let array = as_numeric_array(accel)?;
    if array.ndim() != 1 {
        return Err(SignalError::new_err(format!(
            "accel must be 1-D (one channel), got shape {:?}",
            array.shape()
        )));
    }
    let as_f64 = arrays::c_array::<f64>(array.as_any())?;
    let readonly = as_f64.try_readonly()?;
    let data = arrays::slice(&readonly)?;
    py.detach(|| core::velocity_rms(data, sample_rate, band, units))
        .map_err(signal_error)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySpectrumAnalyzer>()?;
    m.add_class::<FeatureFrames>()?;
    m.add_function(wrap_pyfunction!(velocity_rms, m)?)?;
    Ok(())
}
