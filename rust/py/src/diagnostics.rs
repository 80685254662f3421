//! Bindings for `isthmus_core::diagnostics`: bearing frequencies and catalogue, ISO 20816-3
//! zones, the decimator, the streaming envelope analyzer and the rule/alert engine.

use std::sync::{Mutex, MutexGuard};

use crate::args;
use crate::arrays;
use crate::errors;
use isthmus_core::diagnostics as core;
use isthmus_core::diagnostics::{
    AlertState, BandChoice, BearingGeometry, Condition, DiagnosticsError, EnvelopeConfig,
    FaultKind, FaultOrders, Foundation, MachineGroup, RuleSpec,
};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList};

fn to_py(e: DiagnosticsError) -> PyErr {
    errors::DiagnosticsError::new_err(e.to_string())
}

fn signal_err(msg: impl Into<String>) -> PyErr {
    errors::SignalError::new_err(msg.into())
}

fn diag_err(msg: String) -> PyErr {
    errors::DiagnosticsError::new_err(msg)
}

fn signal(msg: String) -> PyErr {
    errors::SignalError::new_err(msg)
}

/// A count argument for a diagnostics parameter (DiagnosticsError when negative).
fn count(name: &str, value: i64) -> PyResult<usize> {
    args::count(name, value, diag_err)
}

/// Lock a stateful object's state with the GIL released while waiting (no deadlock with a
/// thread that holds the lock and waits for the GIL). Nothing panics while the lock is
/// held, so a poisoned lock is taken as it is.
fn lock<'a, T>(py: Python<'_>, mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
    mutex
        .lock_py_attached(py)
        .unwrap_or_else(|e| e.into_inner())
}

/// A `(lo_hz, hi_hz)` pair, DiagnosticsError for anything else.
fn parse_band(what: &str, obj: &Bound<'_, PyAny>) -> PyResult<(f64, f64)> {
    let pair: Vec<f64> = obj
        .extract()
        .map_err(|_| diag_err(format!("{what} must be a pair (lo_hz, hi_hz) of numbers")))?;
    match pair.as_slice() {
        &[lo, hi] => Ok((lo, hi)),
        _ => Err(diag_err(format!(
            "{what} must be a pair (lo_hz, hi_hz), got {} values",
            pair.len()
        ))),
    }
}

fn orders_dict<'py>(py: Python<'py>, o: &FaultOrders) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("bpfo", o.bpfo)?;
    d.set_item("bpfi", o.bpfi)?;
    d.set_item("bsf", o.bsf)?;
    d.set_item("ftf", o.ftf)?;
    Ok(d)
}

#[pyfunction]
#[pyo3(signature = (balls, ball_diameter, pitch_diameter, contact_angle_deg = 0.0))]
fn bearing_frequencies<'py>(
    py: Python<'py>,
    #[pyo3(from_py_with = args::int)] balls: i64,
    #[pyo3(from_py_with = args::float)] ball_diameter: f64,
    #[pyo3(from_py_with = args::float)] pitch_diameter: f64,
    #[pyo3(from_py_with = args::float)] contact_angle_deg: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let balls = u32::try_from(count("balls", balls)?)
        .map_err(|_| diag_err(format!("balls must be at most {}, got {balls}", u32::MAX)))?;
    let g = BearingGeometry {
        balls,
        ball_diameter,
        pitch_diameter,
        contact_angle_deg,
    };
    let o = core::fault_orders(&g).map_err(to_py)?;
    orders_dict(py, &o)
}

fn entry_dict<'py>(py: Python<'py>, e: &core::CatalogueEntry) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", e.name)?;
    d.set_item("aliases", e.aliases.to_vec())?;
    d.set_item("balls", e.geometry.balls)?;
    d.set_item("ball_diameter_mm", e.geometry.ball_diameter)?;
    d.set_item("pitch_diameter_mm", e.geometry.pitch_diameter)?;
    d.set_item("contact_angle_deg", e.geometry.contact_angle_deg)?;
    d.set_item("source", e.source)?;
    let o = core::fault_orders(&e.geometry).map_err(to_py)?;
    d.set_item("orders", orders_dict(py, &o)?)?;
    Ok(d)
}

#[pyfunction]
fn bearing<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
    let e = core::bearing_by_name(name).map_err(to_py)?;
    entry_dict(py, e)
}

#[pyfunction]
fn bearing_catalogue<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for e in core::catalogue() {
        d.set_item(e.name, entry_dict(py, e)?)?;
    }
    Ok(d)
}

fn parse_group(group: i64) -> PyResult<MachineGroup> {
    match group {
        1 => Ok(MachineGroup::Group1),
        2 => Ok(MachineGroup::Group2),
        _ => Err(errors::DiagnosticsError::new_err(format!(
            "group must be 1 or 2, got {group}"
        ))),
    }
}

fn parse_foundation(foundation: &str) -> PyResult<Foundation> {
    match foundation.to_ascii_lowercase().as_str() {
        "rigid" => Ok(Foundation::Rigid),
        "flexible" => Ok(Foundation::Flexible),
        _ => Err(errors::DiagnosticsError::new_err(format!(
            "foundation must be 'rigid' or 'flexible', got {foundation:?}"
        ))),
    }
}

#[pyfunction]
#[pyo3(signature = (velocity_rms_mm_s, group = 2, foundation = "rigid"))]
fn iso20816_zone(
    #[pyo3(from_py_with = args::float)] velocity_rms_mm_s: f64,
    #[pyo3(from_py_with = args::int)] group: i64,
    foundation: &str,
) -> PyResult<String> {
    let z = core::iso20816_zone(
        velocity_rms_mm_s,
        parse_group(group)?,
        parse_foundation(foundation)?,
    )
    .map_err(to_py)?;
    Ok(z.letter().to_string())
}

#[pyfunction]
#[pyo3(signature = (group = 2, foundation = "rigid"))]
fn iso20816_boundaries(
    #[pyo3(from_py_with = args::int)] group: i64,
    foundation: &str,
) -> PyResult<(f64, f64, f64)> {
    let b = core::zone_boundaries(parse_group(group)?, parse_foundation(foundation)?);
    Ok((b[0], b[1], b[2]))
}

/// Samples handed to the core decimator per call.
const DECIMATE_PIECE: usize = 1 << 16;

/// Streaming anti-aliased decimator (Kaiser FIR low-pass, then every `factor`-th sample).
/// Thread contract: calls from several threads are serialised by a lock.
#[pyclass(module = "isthmus._core", frozen)]
struct Decimator {
    inner: Mutex<core::Decimator>,
}

#[pymethods]
impl Decimator {
    #[new]
    fn new(#[pyo3(from_py_with = args::int)] factor: i64) -> PyResult<Self> {
        let factor = args::count("factor", factor, signal)?;
        Ok(Self {
            inner: Mutex::new(core::Decimator::new(factor).map_err(|e| signal_err(e.to_string()))?),
        })
    }

    fn process<'py>(
        &self,
        py: Python<'py>,
        samples_in: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = arrays::float64_1d(samples_in, "samples_in", signal)?;
        let x = x.try_readonly()?;
        let x = arrays::slice(&x)?;
        // The output (at most one sample per `factor`, plus one) is reserved fallibly, and
        // the core, which copies its input behind the filter history, gets bounded pieces:
        // a long block never needs a second full copy (the output is chunk-independent).
        let mut inner = lock(py, &self.inner);
        let inner = &mut *inner;
        let room = x.len() / inner.factor() + 1;
        let mut out = Vec::new();
        out.try_reserve_exact(room)
            .map_err(|_| arrays::memory_error(format!("cannot allocate {room} output samples")))?;
        py.detach(|| {
            for piece in x.chunks(DECIMATE_PIECE) {
                out.extend(inner.process(piece));
            }
        });
        Ok(out.into_pyarray(py))
    }

    #[getter]
    fn factor(&self, py: Python<'_>) -> usize {
        lock(py, &self.inner).factor()
    }

    #[getter]
    fn delay(&self, py: Python<'_>) -> usize {
        lock(py, &self.inner).delay()
    }

    #[getter]
    fn taps<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        lock(py, &self.inner).taps().to_vec().into_pyarray(py)
    }
}

const SERIES: [&str; 3] = ["outer_race", "inner_race", "ball"];
const PEAKS: usize = 5;

fn diagnosis_dict<'py>(py: Python<'py>, d: &core::Diagnosis) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("fault", d.fault.name())?;
    out.set_item("score_db", d.score_db)?;
    out.set_item("frequency_hz", d.frequency_hz)?;
    out.set_item("harmonics", d.harmonics)?;
    out.set_item("band_hz", (d.band.0, d.band.1))?;
    out.set_item("band_kurtosis", d.band_kurtosis)?;
    out.set_item("frames", d.frames)?;
    out.set_item("effective_frames", d.effective_frames)?;
    out.set_item("margin_db", d.margin_db)?;
    out.set_item("band_kurtosis_se", d.band_kurtosis_se)?;
    out.set_item("impulsive", d.impulsive)?;
    out.set_item("note", d.note.as_str())?;
    out.set_item("shaft_hz", d.shaft_hz)?;
    let series = PyDict::new(py);
    for s in &d.series {
        let e = PyDict::new(py);
        e.set_item("expected_hz", s.expected_hz)?;
        e.set_item("frequency_hz", s.frequency_hz)?;
        e.set_item("ratio", s.ratio)?;
        e.set_item("score_db", s.score_db)?;
        e.set_item("log10_p", s.log10_p)?;
        e.set_item("log10_alpha", s.log10_alpha)?;
        e.set_item("margin_db", s.margin_db)?;
        e.set_item("significant", s.significant)?;
        e.set_item("at_edge", s.at_edge)?;
        e.set_item("harmonics", s.harmonics)?;
        e.set_item("tested", s.tested)?;
        e.set_item("sidebands", s.sidebands)?;
        e.set_item("harmonic_db", s.harmonic_db.clone())?;
        series.set_item(s.kind.name(), e)?;
    }
    out.set_item("series", series)?;
    out.set_item("peaks", d.peaks.clone())?;
    Ok(out)
}

fn fault_code(k: FaultKind) -> i8 {
    match k {
        FaultKind::None => 0,
        FaultKind::OuterRace => 1,
        FaultKind::InnerRace => 2,
        FaultKind::Ball => 3,
        // below 1 so a "fault >= 1" gate stays shut
        FaultKind::Uncertain => -1,
    }
}

/// Streaming squared-envelope analysis with bearing fault scores.
/// Thread contract: calls from several threads are serialised by a lock.
#[pyclass(module = "isthmus._core", frozen)]
struct EnvelopeAnalyzer {
    inner: Mutex<core::EnvelopeAnalyzer>,
}

#[pymethods]
impl EnvelopeAnalyzer {
    #[new]
    #[pyo3(signature = (
        sample_rate, rpm, bearing = None, *, orders = None, band = None, frame = 0,
        average = 32, reselect_every = 4, hysteresis = 0.25, harmonics = 5, tolerance = 0.02,
        slip = 0.02, false_alarm = 0.01, bands_tried = 1, min_harmonics = 2,
        min_band_kurtosis = 0.5
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        #[pyo3(from_py_with = args::float)] sample_rate: f64,
        #[pyo3(from_py_with = args::float)] rpm: f64,
        bearing: Option<&str>,
        orders: Option<&Bound<'_, PyDict>>,
        band: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = args::int)] frame: i64,
        #[pyo3(from_py_with = args::int)] average: i64,
        #[pyo3(from_py_with = args::int)] reselect_every: i64,
        #[pyo3(from_py_with = args::float)] hysteresis: f64,
        #[pyo3(from_py_with = args::int)] harmonics: i64,
        #[pyo3(from_py_with = args::float)] tolerance: f64,
        #[pyo3(from_py_with = args::float)] slip: f64,
        #[pyo3(from_py_with = args::float)] false_alarm: f64,
        #[pyo3(from_py_with = args::int)] bands_tried: i64,
        #[pyo3(from_py_with = args::int)] min_harmonics: i64,
        #[pyo3(from_py_with = args::float)] min_band_kurtosis: f64,
    ) -> PyResult<Self> {
        let fault_orders = match (bearing, orders) {
            (Some(_), Some(_)) => {
                return Err(errors::DiagnosticsError::new_err(
                    "give either bearing (a catalogue name) or orders, not both",
                ))
            }
            (Some(name), None) => {
                core::fault_orders(&core::bearing_by_name(name).map_err(to_py)?.geometry)
                    .map_err(to_py)?
            }
            (None, Some(d)) => {
                let get = |k: &str| -> PyResult<f64> {
                    let v: f64 = d
                        .get_item(k)?
                        .ok_or_else(|| {
                            errors::DiagnosticsError::new_err(format!("orders needs key {k:?}"))
                        })?
                        .extract()
                        .map_err(|_| diag_err(format!("orders[{k:?}] must be a number")))?;
                    if !(v.is_finite() && v > 0.0) {
                        return Err(errors::DiagnosticsError::new_err(format!(
                            "orders[{k:?}] must be positive, got {v}"
                        )));
                    }
                    Ok(v)
                };
                FaultOrders {
                    bpfo: get("bpfo")?,
                    bpfi: get("bpfi")?,
                    bsf: get("bsf")?,
                    ftf: get("ftf")?,
                }
            }
            (None, None) => {
                return Err(errors::DiagnosticsError::new_err(
                    "a bearing name or fault orders are needed",
                ))
            }
        };
        let mut cfg = EnvelopeConfig::new(sample_rate, fault_orders, rpm / 60.0);
        cfg.frame = count("frame", frame)?;
        cfg.band = match band.filter(|b| !b.is_none()) {
            Some(b) => {
                let (lo, hi) = parse_band("band", b)?;
                BandChoice::Fixed { lo, hi }
            }
            None => BandChoice::SpectralKurtosis,
        };
        cfg.average = count("average", average)?;
        cfg.reselect_every = count("reselect_every", reselect_every)?;
        cfg.hysteresis = hysteresis;
        cfg.harmonics = count("harmonics", harmonics)?;
        cfg.tolerance = tolerance;
        cfg.slip = slip;
        cfg.false_alarm = false_alarm;
        cfg.bands_tried = count("bands_tried", bands_tried)?;
        cfg.min_harmonics = count("min_harmonics", min_harmonics)?;
        cfg.min_band_kurtosis = min_band_kurtosis;
        Ok(Self {
            inner: Mutex::new(core::EnvelopeAnalyzer::new(cfg).map_err(to_py)?),
        })
    }

    /// Feed samples (g); returns one column per feature for the frames this chunk completed.
    #[pyo3(signature = (samples_in, rpm = None))]
    fn feed<'py>(
        &self,
        py: Python<'py>,
        samples_in: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = args::opt_float)] rpm: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let x = arrays::float64_1d(samples_in, "samples_in", signal)?;
        let x = x.try_readonly()?;
        let x = arrays::slice(&x)?;
        let mut inner = lock(py, &self.inner);
        if let Some(r) = rpm {
            inner.set_shaft_hz(r / 60.0).map_err(to_py)?;
        }
        let inner = &mut *inner;
        let frames = py
            .detach(|| inner.feed(x))
            .map_err(|e| signal_err(e.to_string()))?;
        let col = |f: &dyn Fn(&core::FrameFeatures) -> f64| -> Vec<f64> {
            frames.iter().map(f).collect()
        };
        let out = PyDict::new(py);
        out.set_item(
            "start_index",
            frames
                .iter()
                .map(|f| f.start_index as i64)
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        out.set_item(
            "fault",
            frames
                .iter()
                .map(|f| fault_code(f.diagnosis.fault))
                .collect::<Vec<_>>()
                .into_pyarray(py),
        )?;
        out.set_item("score_db", col(&|f| f.diagnosis.score_db).into_pyarray(py))?;
        out.set_item(
            "frequency_hz",
            col(&|f| f.diagnosis.frequency_hz).into_pyarray(py),
        )?;
        out.set_item("band_lo_hz", col(&|f| f.diagnosis.band.0).into_pyarray(py))?;
        out.set_item("band_hi_hz", col(&|f| f.diagnosis.band.1).into_pyarray(py))?;
        out.set_item(
            "band_kurtosis",
            col(&|f| f.diagnosis.band_kurtosis).into_pyarray(py),
        )?;
        out.set_item("shaft_hz", col(&|f| f.diagnosis.shaft_hz).into_pyarray(py))?;
        for (i, name) in SERIES.iter().enumerate() {
            out.set_item(
                format!("{name}_score_db"),
                col(&|f| f.diagnosis.series[i].score_db).into_pyarray(py),
            )?;
            out.set_item(
                format!("{name}_harmonics"),
                col(&|f| f.diagnosis.series[i].harmonics as f64).into_pyarray(py),
            )?;
            out.set_item(
                format!("{name}_hz"),
                col(&|f| f.diagnosis.series[i].frequency_hz).into_pyarray(py),
            )?;
            out.set_item(
                format!("{name}_margin_db"),
                col(&|f| f.diagnosis.series[i].margin_db).into_pyarray(py),
            )?;
            out.set_item(
                format!("{name}_sidebands"),
                col(&|f| f.diagnosis.series[i].sidebands as f64).into_pyarray(py),
            )?;
        }
        for k in 0..PEAKS {
            let get = |f: &core::FrameFeatures, j: usize| {
                f.diagnosis
                    .peaks
                    .get(k)
                    .map(|p| if j == 0 { p.0 } else { p.1 })
                    .unwrap_or(f64::NAN)
            };
            out.set_item(
                format!("peak{}_hz", k + 1),
                col(&|f| get(f, 0)).into_pyarray(py),
            )?;
            out.set_item(
                format!("peak{}_db", k + 1),
                col(&|f| get(f, 1)).into_pyarray(py),
            )?;
        }
        Ok(out)
    }

    /// The diagnosis from the current envelope-spectrum average.
    fn diagnose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let diagnosis = lock(py, &self.inner).diagnose();
        diagnosis_dict(py, &diagnosis)
    }

    /// (frequencies in Hz, squared-envelope amplitude in g^2) of the current average.
    #[allow(clippy::type_complexity)]
    fn envelope_spectrum<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>) {
        let inner = lock(py, &self.inner);
        let a = inner.envelope_spectrum();
        let df = inner.config().sample_rate / inner.frame() as f64;
        let f: Vec<f64> = (0..a.len()).map(|k| k as f64 * df).collect();
        (f.into_pyarray(py), a.into_pyarray(py))
    }

    #[getter]
    fn sample_rate(&self, py: Python<'_>) -> f64 {
        lock(py, &self.inner).config().sample_rate
    }
    #[getter]
    fn frame(&self, py: Python<'_>) -> usize {
        lock(py, &self.inner).frame()
    }
    #[getter]
    fn hop(&self, py: Python<'_>) -> usize {
        lock(py, &self.inner).hop()
    }
    #[getter]
    fn band(&self, py: Python<'_>) -> Option<(f64, f64)> {
        lock(py, &self.inner).band()
    }
    #[getter]
    fn band_changes(&self, py: Python<'_>) -> usize {
        lock(py, &self.inner).band_changes()
    }
    #[getter]
    fn frames_averaged(&self, py: Python<'_>) -> usize {
        lock(py, &self.inner).frames_averaged()
    }
    #[getter]
    fn orders<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let orders = lock(py, &self.inner).config().orders;
        orders_dict(py, &orders)
    }
}

/// One alert event; `state` is "raised" or "cleared".
#[pyclass(module = "isthmus._core", frozen, get_all)]
struct Alert {
    id: String,
    asset: String,
    rule: String,
    severity: String,
    state: String,
    first_time: f64,
    last_time: f64,
    value: f64,
    threshold: f64,
    evidence: Py<PyDict>,
}

fn opt<'py>(py: Python<'py>, d: &Bound<'py, PyDict>, k: &str, v: Option<f64>) -> PyResult<()> {
    let _ = py;
    if let Some(v) = v {
        d.set_item(k, v)?;
    }
    Ok(())
}

impl Alert {
    fn from_core(py: Python<'_>, a: core::Alert) -> PyResult<Self> {
        let e = PyDict::new(py);
        let ev = &a.evidence;
        e.set_item("feature", &ev.feature)?;
        if let Some(f) = &ev.fault {
            e.set_item("fault", f)?;
        }
        opt(py, &e, "frequency_hz", ev.frequency_hz)?;
        opt(py, &e, "score_db", ev.score_db)?;
        opt(py, &e, "harmonics", ev.harmonics)?;
        opt(py, &e, "z_score", ev.z_score)?;
        opt(py, &e, "baseline_mean", ev.baseline_mean)?;
        opt(py, &e, "baseline_std", ev.baseline_std)?;
        if let Some(z) = ev.zone {
            e.set_item("zone", z.to_string())?;
        }
        if !ev.peaks.is_empty() {
            let peaks = PyList::empty(py);
            for (hz, db) in &ev.peaks {
                let p = PyDict::new(py);
                p.set_item("frequency_hz", hz)?;
                p.set_item("level_db", db)?;
                peaks.append(p)?;
            }
            e.set_item("peaks", peaks)?;
        }
        Ok(Self {
            id: a.id,
            asset: a.asset,
            rule: a.rule,
            severity: a.severity,
            state: match a.state {
                AlertState::Raised => "raised",
                AlertState::Cleared => "cleared",
            }
            .to_string(),
            first_time: a.first_time,
            last_time: a.last_time,
            value: a.value,
            threshold: a.threshold,
            evidence: e.unbind(),
        })
    }
}

#[pymethods]
impl Alert {
    /// A plain dict (JSON-ready apart from NaN values).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("id", &self.id)?;
        d.set_item("asset", &self.asset)?;
        d.set_item("rule", &self.rule)?;
        d.set_item("severity", &self.severity)?;
        d.set_item("state", &self.state)?;
        d.set_item("first_time", self.first_time)?;
        d.set_item("last_time", self.last_time)?;
        d.set_item("value", self.value)?;
        d.set_item("threshold", self.threshold)?;
        d.set_item("evidence", self.evidence.bind(py).copy()?)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Alert(rule={:?}, asset={:?}, state={:?}, severity={:?}, value={:.3}, threshold={:.3}, first_time={}, last_time={})",
            self.rule, self.asset, self.state, self.severity, self.value, self.threshold,
            self.first_time, self.last_time
        )
    }
}

fn zone_index(z: &str) -> PyResult<u8> {
    match z {
        "A" | "a" => Ok(0),
        "B" | "b" => Ok(1),
        "C" | "c" => Ok(2),
        "D" | "d" => Ok(3),
        _ => Err(errors::DiagnosticsError::new_err(format!(
            "zone must be A, B, C or D, got {z:?}"
        ))),
    }
}

/// Evaluates rules over columnar per-frame features and emits alert events.
/// Thread contract: calls from several threads are serialised by a lock.
#[pyclass(module = "isthmus._core", frozen)]
struct RuleEngine {
    inner: Mutex<core::RuleEngine>,
}

impl RuleEngine {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        py: Python<'_>,
        name: &str,
        severity: &str,
        condition: Condition,
        raise_frames: i64,
        raise_seconds: f64,
        clear_frames: i64,
        clear_seconds: f64,
    ) -> PyResult<()> {
        let spec = RuleSpec {
            name: name.to_string(),
            severity: severity.to_string(),
            condition,
            raise_frames: count("raise_frames", raise_frames)?,
            raise_seconds,
            clear_frames: count("clear_frames", clear_frames)?,
            clear_seconds,
        };
        lock(py, &self.inner).add(spec).map_err(to_py)
    }
}

#[pymethods]
impl RuleEngine {
    #[new]
    fn new(asset: &str) -> Self {
        Self {
            inner: Mutex::new(core::RuleEngine::new(asset)),
        }
    }

    #[getter]
    fn asset(&self, py: Python<'_>) -> String {
        lock(py, &self.inner).asset().to_string()
    }

    #[getter]
    fn rules(&self, py: Python<'_>) -> Vec<String> {
        lock(py, &self.inner).rule_names()
    }

    #[pyo3(signature = (
        name, feature, raise_level, clear_level = None, *, above = true, severity = "warning",
        raise_frames = 1, raise_seconds = 0.0, clear_frames = 1, clear_seconds = 0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_threshold(
        &self,
        py: Python<'_>,
        name: &str,
        feature: &str,
        #[pyo3(from_py_with = args::float)] raise_level: f64,
        #[pyo3(from_py_with = args::opt_float)] clear_level: Option<f64>,
        above: bool,
        severity: &str,
        #[pyo3(from_py_with = args::int)] raise_frames: i64,
        #[pyo3(from_py_with = args::float)] raise_seconds: f64,
        #[pyo3(from_py_with = args::int)] clear_frames: i64,
        #[pyo3(from_py_with = args::float)] clear_seconds: f64,
    ) -> PyResult<()> {
        let condition = Condition::Threshold {
            feature: feature.to_string(),
            raise: raise_level,
            clear: clear_level.unwrap_or(raise_level),
            above,
        };
        self.push(
            py,
            name,
            severity,
            condition,
            raise_frames,
            raise_seconds,
            clear_frames,
            clear_seconds,
        )
    }

    #[pyo3(signature = (
        name, feature, *, learn_frames = 30, learn_seconds = 0.0, z_raise = 4.0, z_clear = 2.0,
        severity = "warning", raise_frames = 3, raise_seconds = 0.0, clear_frames = 3,
        clear_seconds = 0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_baseline(
        &self,
        py: Python<'_>,
        name: &str,
        feature: &str,
        #[pyo3(from_py_with = args::int)] learn_frames: i64,
        #[pyo3(from_py_with = args::float)] learn_seconds: f64,
        #[pyo3(from_py_with = args::float)] z_raise: f64,
        #[pyo3(from_py_with = args::float)] z_clear: f64,
        severity: &str,
        #[pyo3(from_py_with = args::int)] raise_frames: i64,
        #[pyo3(from_py_with = args::float)] raise_seconds: f64,
        #[pyo3(from_py_with = args::int)] clear_frames: i64,
        #[pyo3(from_py_with = args::float)] clear_seconds: f64,
    ) -> PyResult<()> {
        let condition = Condition::Baseline {
            feature: feature.to_string(),
            learn_frames: count("learn_frames", learn_frames)?,
            learn_seconds,
            z_raise,
            z_clear,
        };
        self.push(
            py,
            name,
            severity,
            condition,
            raise_frames,
            raise_seconds,
            clear_frames,
            clear_seconds,
        )
    }

    #[pyo3(signature = (
        name, feature = "iso_zone", *, raise_zone = "C", severity = "warning", raise_frames = 1,
        raise_seconds = 0.0, clear_frames = 1, clear_seconds = 0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_zone_change(
        &self,
        py: Python<'_>,
        name: &str,
        feature: &str,
        raise_zone: &str,
        severity: &str,
        #[pyo3(from_py_with = args::int)] raise_frames: i64,
        #[pyo3(from_py_with = args::float)] raise_seconds: f64,
        #[pyo3(from_py_with = args::int)] clear_frames: i64,
        #[pyo3(from_py_with = args::float)] clear_seconds: f64,
    ) -> PyResult<()> {
        let condition = Condition::ZoneChange {
            feature: feature.to_string(),
            raise_zone: zone_index(raise_zone)?,
        };
        self.push(
            py,
            name,
            severity,
            condition,
            raise_frames,
            raise_seconds,
            clear_frames,
            clear_seconds,
        )
    }

    #[pyo3(signature = (
        name, *, k_db = 10.0, clear_db = None, min_harmonics = 2,
        faults = vec!["outer_race".to_string(), "inner_race".to_string(), "ball".to_string()],
        gate_feature = Some("fault".to_string()), gate_min = 1.0,
        severity = "warning", raise_frames = 2, raise_seconds = 0.0, clear_frames = 2,
        clear_seconds = 0.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_bearing(
        &self,
        py: Python<'_>,
        name: &str,
        #[pyo3(from_py_with = args::float)] k_db: f64,
        #[pyo3(from_py_with = args::opt_float)] clear_db: Option<f64>,
        #[pyo3(from_py_with = args::int)] min_harmonics: i64,
        faults: Vec<String>,
        gate_feature: Option<String>,
        #[pyo3(from_py_with = args::float)] gate_min: f64,
        severity: &str,
        #[pyo3(from_py_with = args::int)] raise_frames: i64,
        #[pyo3(from_py_with = args::float)] raise_seconds: f64,
        #[pyo3(from_py_with = args::int)] clear_frames: i64,
        #[pyo3(from_py_with = args::float)] clear_seconds: f64,
    ) -> PyResult<()> {
        let condition = Condition::BearingFault {
            faults,
            raise_db: k_db,
            clear_db: clear_db.unwrap_or(k_db - 3.0),
            min_harmonics: count("min_harmonics", min_harmonics)? as f64,
            gate: gate_feature.map(|g| (g, gate_min)),
        };
        self.push(
            py,
            name,
            severity,
            condition,
            raise_frames,
            raise_seconds,
            clear_frames,
            clear_seconds,
        )
    }

    /// Evaluate frames at `times` (s, increasing) with feature columns of the same length.
    fn evaluate(
        &self,
        py: Python<'_>,
        times: &Bound<'_, PyAny>,
        features: &Bound<'_, PyDict>,
    ) -> PyResult<Vec<Alert>> {
        let times = arrays::float64_1d(times, "times", diag_err)?;
        let mut columns = Vec::with_capacity(features.len());
        for (k, v) in features.iter() {
            let name: String = k.extract().map_err(|_| {
                diag_err(format!("feature names must be str, got {}", k.get_type()))
            })?;
            // any bool, integer or float column (e.g. the analyzer's int8 `fault`) as float64
            let column = arrays::float64_1d(&v, &format!("feature {name:?}"), diag_err)?;
            columns.push((name, column));
        }
        let times = times.try_readonly()?;
        let readonly = columns
            .iter()
            .map(|(k, v)| Ok((k.as_str(), v.try_readonly()?)))
            .collect::<PyResult<Vec<_>>>()?;
        let cols = readonly
            .iter()
            .map(|(k, v)| Ok((*k, arrays::slice(v)?)))
            .collect::<PyResult<Vec<_>>>()?;
        let t = arrays::slice(&times)?;
        let mut inner = lock(py, &self.inner);
        let inner = &mut *inner;
        let events = py.detach(|| inner.evaluate(t, &cols)).map_err(to_py)?;
        events
            .into_iter()
            .map(|a| Alert::from_core(py, a))
            .collect()
    }

    /// The alerts currently raised.
    fn active(&self, py: Python<'_>) -> PyResult<Vec<Alert>> {
        let active = lock(py, &self.inner).active();
        active
            .into_iter()
            .map(|a| Alert::from_core(py, a))
            .collect()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bearing_frequencies, m)?)?;
    m.add_function(wrap_pyfunction!(bearing, m)?)?;
    m.add_function(wrap_pyfunction!(bearing_catalogue, m)?)?;
    m.add_function(wrap_pyfunction!(iso20816_zone, m)?)?;
    m.add_function(wrap_pyfunction!(iso20816_boundaries, m)?)?;
    m.add_class::<Decimator>()?;
    m.add_class::<EnvelopeAnalyzer>()?;
    m.add_class::<Alert>()?;
    m.add_class::<RuleEngine>()?;
    Ok(())
}
