//! Bindings for `isthmus_core::spectrum`: `SpectrumAnalyzer`, `FeatureFrames`, `velocity_rms`.

use isthmus_core::spectrum::{
    self as core, AccelUnits, AnalyzerConfig, Detrend, FeatureBatch, Precision, PsdScaling,
    SpectrumAnalyzer as CoreAnalyzer, SpectrumError, WindowKind,
};
use numpy::ndarray::{ArrayView1, ArrayView2, ArrayView3, ArrayViewD, Ix1, Ix2};
use numpy::{
    Element, PyArray1, PyArray2, PyArray3, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods,
    PyUntypedArray, PyUntypedArrayMethods, ToPyArray,
};
use pyo3::prelude::*;
use pyo3::types::PyBool;

use crate::errors::SignalError;

/// Blocks at least this large release the GIL even when they complete no frame.
const DETACH_SAMPLES: usize = 8192;

fn signal_error(e: SpectrumError) -> PyErr {
    SignalError::new_err(e.to_string())
}

fn shape_error(e: impl std::fmt::Display) -> PyErr {
    SignalError::new_err(format!("internal shape mismatch: {e}"))
}

/// A count argument as usize, with a SignalError (not OverflowError) when negative.
fn count(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| SignalError::new_err(format!("{name} must be >= 0, got {value}")))
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
                SignalError::new_err(format!("samples must be a numeric array: {e}"))
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
    if !heavy && typed.is_c_contiguous() {
        // SAFETY: the GIL stays held for the whole call, so no Python code can write to the
        // array meanwhile; the slice does not outlive this block.
        let data = unsafe { typed.as_slice() }?;
        return analyzer.feed(data, samples, out).map_err(signal_error);
    }
    let readonly = typed.try_readonly()?;
    let copied: Vec<T>;
    // Zero-copy only for C order (as_slice would also accept Fortran order, whose memory
    // order interleaves the channels); otherwise copy in logical order, channel after channel.
    let data: &[T] = match readonly.as_slice() {
        Ok(slice) if typed.is_c_contiguous() => slice,
        _ => {
            copied = copy_in_c_order(readonly.as_array());
            &copied
        }
    };
    let result = if heavy {
        py.detach(|| analyzer.feed(data, samples, out))
    } else {
        analyzer.feed(data, samples, out)
    };
    result.map_err(signal_error)
}

/// The elements of a 1-D or 2-D view in logical (C) order. Static dimensions keep the
/// iteration fast (a dynamic-dimension iterator costs tens of ns per element).
fn copy_in_c_order<T: Copy>(view: ArrayViewD<'_, T>) -> Vec<T> {
    let mut out = Vec::with_capacity(view.len());
    match view.ndim() {
        1 => {
            if let Ok(v) = view.into_dimensionality::<Ix1>() {
                out.extend(v.iter().copied());
            }
        }
        2 => {
            if let Ok(v) = view.into_dimensionality::<Ix2>() {
                for row in v.rows() {
                    out.extend(row.iter().copied());
                }
            }
        }
        _ => out.extend(view.iter().copied()),
    }
    out
}

/// Streaming spectral features of a multi-channel vibration signal (see `_core.pyi`).
#[pyclass(module = "isthmus._core", name = "SpectrumAnalyzer")]
pub struct PySpectrumAnalyzer {
    inner: CoreAnalyzer,
    empty: Py<FeatureFrames>,
    /// `dtype=None`: the precision follows the first block fed (after creation or reset).
    precision_follows_input: bool,
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
        sample_rate: f64,
        frame: i64,
        hop: Option<i64>,
        window: &str,
        channels: i64,
        bands: Option<Bound<'_, PyAny>>,
        peaks: i64,
        average: i64,
        detrend: Option<Bound<'_, PyAny>>,
        velocity_band: Option<Bound<'_, PyAny>>,
        accel_units: &str,
        t0: f64,
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
            inner,
            empty,
            precision_follows_input: dtype.is_none(),
        })
    }

    /// Feeds a block `(n,)` or `(channels, n)`; returns the features of completed frames.
    fn feed(&mut self, py: Python<'_>, samples: &Bound<'_, PyAny>) -> PyResult<Py<FeatureFrames>> {
        let array = as_numeric_array(samples)?;
        let n = block_length(array.shape(), self.inner.config().channels)?;
        let mut out = self.inner.empty_batch();
        let dtype = array.dtype();
        let native = dtype.is_native_byteorder().unwrap_or(true);
        if self.precision_follows_input && self.inner.samples() == 0 {
            // As numpy and scipy do: float32 data is analysed in float32, the rest in float64.
            let precision = match (dtype.kind(), dtype.itemsize()) {
                (b'f', 4) => Precision::Float32,
                _ => Precision::Float64,
            };
            self.inner.set_precision(precision).map_err(signal_error)?;
        }
        let inner = &mut self.inner;
        match (native, dtype.kind(), dtype.itemsize()) {
            (true, b'f', 8) => feed_typed::<f64>(py, inner, &array, n, &mut out)?,
            (true, b'f', 4) => feed_typed::<f32>(py, inner, &array, n, &mut out)?,
            (true, b'i', 2) => feed_typed::<i16>(py, inner, &array, n, &mut out)?,
            (true, b'i', 4) => feed_typed::<i32>(py, inner, &array, n, &mut out)?,
            (true, b'u', 2) => feed_typed::<u16>(py, inner, &array, n, &mut out)?,
            (true, b'u', 4) => feed_typed::<u32>(py, inner, &array, n, &mut out)?,
            (_, b'i', 1) => feed_typed::<i8>(py, inner, &array, n, &mut out)?,
            (_, b'u', 1) => feed_typed::<u8>(py, inner, &array, n, &mut out)?,
            _ => {
                // int64, uint64, float16, bool, byte-swapped: convert once to float64.
                let np = py.import("numpy")?;
                let as_f64 = np
                    .call_method1("asarray", (&array, np.getattr("float64")?))?
                    .cast_into::<PyUntypedArray>()?;
                feed_typed::<f64>(py, inner, &as_f64, n, &mut out)?;
            }
        }
        if out.is_empty() {
            return Ok(self.empty.clone_ref(py));
        }
        Py::new(py, FeatureFrames { batch: out })
    }

    /// Latest one-sided amplitude spectrum, (channels, bins).
    fn spectrum<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let v = self.inner.amplitude_spectrum();
        rows(py, &v, self.inner.config().channels, self.inner.bins())
    }

    /// Welch PSD of the last `average` valid frames, (channels, bins).
    #[pyo3(signature = (scaling="density"))]
    fn psd<'py>(&self, py: Python<'py>, scaling: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let scaling: PsdScaling = scaling.parse().map_err(signal_error)?;
        if self.inner.frames() == 0 {
            return Err(SignalError::new_err(
                "no frame completed yet: feed at least `frame` samples before asking for a PSD",
            ));
        }
        let v = self.inner.psd(scaling);
        rows(py, &v, self.inner.config().channels, self.inner.bins())
    }

    /// Frequency of each bin (Hz), (bins,).
    fn frequencies<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_vec(py, self.inner.frequencies())
    }

    /// Forgets buffered samples, spectra and counters.
    fn reset(&mut self) {
        self.inner.reset();
    }

    #[getter]
    fn sample_rate(&self) -> f64 {
        self.inner.config().sample_rate
    }

    #[getter]
    fn frame(&self) -> usize {
        self.inner.config().frame
    }

    #[getter]
    fn hop(&self) -> usize {
        self.inner.config().hop
    }

    #[getter]
    fn window(&self) -> &'static str {
        self.inner.config().window.name()
    }

    #[getter]
    fn channels(&self) -> usize {
        self.inner.config().channels
    }

    #[getter]
    fn bands(&self) -> Vec<(f64, f64)> {
        self.inner.config().bands.clone()
    }

    #[getter]
    fn peaks(&self) -> usize {
        self.inner.config().peaks
    }

    #[getter]
    fn average(&self) -> usize {
        self.inner.config().average
    }

    #[getter]
    fn dtype(&self) -> &'static str {
        self.inner.precision().name()
    }

    #[getter]
    fn detrend(&self) -> &'static str {
        self.inner.config().detrend.name()
    }

    #[getter]
    fn velocity_band(&self) -> Option<(f64, f64)> {
        self.inner.config().velocity_band
    }

    #[getter]
    fn accel_units(&self) -> &'static str {
        self.inner.config().accel_units.name()
    }

    #[getter]
    fn bins(&self) -> usize {
        self.inner.bins()
    }

    #[getter]
    fn frames(&self) -> u64 {
        self.inner.frames()
    }

    #[getter]
    fn invalid_frames(&self) -> u64 {
        self.inner.invalid_frames().iter().sum()
    }

    #[getter]
    fn invalid_frames_by_channel(&self) -> Vec<u64> {
        self.inner.invalid_frames()
    }

    #[getter]
    fn samples(&self) -> u64 {
        self.inner.samples()
    }

    #[getter]
    fn coherent_gain(&self) -> f64 {
        self.inner.window().coherent_gain()
    }

    #[getter]
    fn enbw_hz(&self) -> f64 {
        let cfg = self.inner.config();
        self.inner.window().enbw_bins() * cfg.sample_rate / cfg.frame as f64
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
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

fn rows<'py>(
    py: Python<'py>,
    v: &[f64],
    n: usize,
    m: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    Ok(ArrayView2::from_shape((n, m), v)
        .map_err(shape_error)?
        .to_pyarray(py))
}

fn cube<'py>(
    py: Python<'py>,
    v: &[f64],
    shape: (usize, usize, usize),
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    Ok(ArrayView3::from_shape(shape, v)
        .map_err(shape_error)?
        .to_pyarray(py))
}

/// Features of the frames completed by one `feed` call, as columnar numpy arrays.
#[pyclass(module = "isthmus._core", name = "FeatureFrames", frozen)]
pub struct FeatureFrames {
    batch: FeatureBatch,
}

impl FeatureFrames {
    fn per_channel<'py>(&self, py: Python<'py>, v: &[f64]) -> PyResult<Bound<'py, PyArray2<f64>>> {
        rows(py, v, self.batch.len(), self.batch.channels)
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
    fn start_time<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        ArrayView1::from(&self.batch.start_time).to_pyarray(py)
    }

    #[getter]
    fn valid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<bool>>> {
        Ok(
            ArrayView2::from_shape((self.batch.len(), self.batch.channels), &self.batch.valid)
                .map_err(shape_error)?
                .to_pyarray(py),
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
#[pyo3(signature = (accel, sample_rate, band=(10.0, 1000.0), units="g"))]
fn velocity_rms(
    py: Python<'_>,
    accel: &Bound<'_, PyAny>,
    sample_rate: f64,
    band: (f64, f64),
    units: &str,
) -> PyResult<f64> {
    let units: AccelUnits = units.parse().map_err(signal_error)?;
    let array = as_numeric_array(accel)?;
    if array.ndim() != 1 {
        return Err(SignalError::new_err(format!(
            "accel must be 1-D (one channel), got shape {:?}",
            array.shape()
        )));
    }
    let np = py.import("numpy")?;
    let as_f64 = np
        .call_method1("ascontiguousarray", (&array, np.getattr("float64")?))?
        .cast_into::<PyArrayDyn<f64>>()?;
    let readonly = as_f64.try_readonly()?;
    let data = readonly.as_slice()?;
    py.detach(|| core::velocity_rms(data, sample_rate, band, units))
        .map_err(signal_error)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySpectrumAnalyzer>()?;
    m.add_class::<FeatureFrames>()?;
    m.add_function(wrap_pyfunction!(velocity_rms, m)?)?;
    Ok(())
}
