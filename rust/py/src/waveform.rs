//! Bindings for `isthmus_core::waveform`: `ModbusRateLimiter` and `WaveformAcquisition`.
//!
//! The acquisition thread writes straight into the `SampleRing` objects Python
//! already holds (the same shared core ring, no copy through Python); Python
//! starts, stops and supervises it. Every call here is short: only `join`
//! waits, and it does so with the GIL released.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use isthmus_core::decode::{Dtype, Order};
use isthmus_core::modbus_tcp::ReadFunction;
use isthmus_core::ring::RingError;
use isthmus_core::waveform::{self as core, BlockLayout, BlockSink, DeviceSettings, Level};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args;
use crate::errors::{ConfigError, SessionError};
use crate::ring::{SampleRing, Shared, Store};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An int argument in the range of `T` (a port, an address, a count), else ConfigError.
fn ranged<T: TryFrom<i64>>(name: &str, value: i64) -> PyResult<T> {
    T::try_from(value).map_err(|_| match value {
        i64::MIN | i64::MAX => ConfigError::new_err(format!("{name} is out of range")),
        v => ConfigError::new_err(format!("{name} {v} is out of range")),
    })
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ConfigError::new_err(format!("{name} must be > 0 s, got {value}")))
}

/// Spaces requests to one device at least `1 / requests_per_second` apart; shared by the
/// Python polling and the waveform thread of that device.
#[pyclass(frozen, module = "isthmus._core")]
pub struct ModbusRateLimiter {
    inner: Arc<core::RateLimiter>,
}

#[pymethods]
impl ModbusRateLimiter {
    #[new]
    fn new(#[pyo3(from_py_with = args::float)] requests_per_second: f64) -> PyResult<Self> {
        let inner = core::RateLimiter::new(requests_per_second)
            .map_err(|e| ConfigError::new_err(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Books the next request slot; returns the seconds to wait before sending.
    fn reserve(&self) -> f64 {
        self.inner.reserve().as_secs_f64()
    }
}

/// A shared Python ring as the acquisition's sink.
struct RingSink(Arc<Shared>);

impl BlockSink for RingSink {
    fn written(&self) -> u64 {
        match &*self.0.read() {
            Store::F32(r) => r.written(),
            Store::F64(r) => r.written(),
        }
    }

    fn push(&self, samples: &[f32], t0: Option<f64>, gap: u64) -> Result<(), RingError> {
        match &mut *self.0.write() {
            Store::F32(r) => r.push(samples, samples.len(), t0, gap).map(|_| ()),
            Store::F64(r) => {
                let wide: Vec<f64> = samples.iter().map(|&x| f64::from(x)).collect();
                r.push(&wide, wide.len(), t0, gap).map(|_| ())
            }
        }
    }
}

struct Inner {
    settings: DeviceSettings,
    limiter: Arc<core::RateLimiter>,
    pending: Vec<(BlockLayout, Arc<dyn BlockSink>)>,
    acquisition: Option<core::WaveformAcquisition>,
}

/// The waveform blocks of one Modbus TCP device, read by a Rust thread into SampleRings.
#[pyclass(frozen, module = "isthmus._core")]
pub struct WaveformAcquisition {
    inner: Mutex<Inner>,
}

#[pymethods]
impl WaveformAcquisition {
    #[new]
    #[pyo3(signature = (
        host, port, limiter, *, unit_id = 1, connect_timeout = 3.0, request_timeout = 1.0,
        backoff_initial = 0.5, backoff_max = 30.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        #[pyo3(from_py_with = args::int)] port: i64,
        limiter: &ModbusRateLimiter,
        #[pyo3(from_py_with = args::int)] unit_id: i64,
        #[pyo3(from_py_with = args::float)] connect_timeout: f64,
        #[pyo3(from_py_with = args::float)] request_timeout: f64,
        #[pyo3(from_py_with = args::float)] backoff_initial: f64,
        #[pyo3(from_py_with = args::float)] backoff_max: f64,
    ) -> PyResult<Self> {
        let settings = DeviceSettings {
            host,
            port: ranged("port", port)?,
            unit_id: ranged("unit_id", unit_id)?,
            connect_timeout: seconds("connect_timeout", connect_timeout)?,
            request_timeout: seconds("request_timeout", request_timeout)?,
            backoff_initial: seconds("backoff_initial", backoff_initial)?,
            backoff_max: seconds("backoff_max", backoff_max)?,
        };
        Ok(Self {
            inner: Mutex::new(Inner {
                settings,
                limiter: Arc::clone(&limiter.inner),
                pending: Vec::new(),
                acquisition: None,
            }),
        })
    }

    /// Adds one block stream (before the first `start`); its samples go into `ring`.
    #[pyo3(signature = (
        name, ring, *, register, address, sequence_address, samples, slots, stride, dtype,
        order, scale, sample_rate
    ))]
    #[allow(clippy::too_many_arguments)]
    fn add_block(
        &self,
        name: String,
        ring: &SampleRing,
        register: &str,
        #[pyo3(from_py_with = args::int)] address: i64,
        #[pyo3(from_py_with = args::int)] sequence_address: i64,
        #[pyo3(from_py_with = args::int)] samples: i64,
        #[pyo3(from_py_with = args::int)] slots: i64,
        #[pyo3(from_py_with = args::int)] stride: i64,
        dtype: &str,
        order: &str,
        #[pyo3(from_py_with = args::float)] scale: f64,
        #[pyo3(from_py_with = args::float)] sample_rate: f64,
    ) -> PyResult<()> {
        let bad = |problem: String| ConfigError::new_err(format!("waveform {name:?}: {problem}"));
        let address: u16 = ranged("address", address)?;
        let sequence_address: u16 = ranged("sequence_address", sequence_address)?;
        let samples: usize = ranged("samples", samples)?;
        let slots: u32 = ranged("slots", slots)?;
        let stride: u16 = ranged("stride", stride)?;
        let function = match register {
            "holding" => ReadFunction::HoldingRegisters,
            "input" => ReadFunction::InputRegisters,
            other => return Err(bad(format!("register {other:?} is not holding or input"))),
        };
        let dtype = Dtype::parse(dtype).map_err(|e| bad(e.to_string()))?;
        let order = Order::parse(order).map_err(|e| bad(e.to_string()))?;
        let shared = ring.shared();
        if shared.channels != 1 {
            return Err(bad(format!(
                "the ring has {} channels; a block stream fills one",
                shared.channels
            )));
        }
        let layout = BlockLayout {
            name: name.clone(),
            function,
            address,
            sequence_address,
            samples,
            slots,
            stride,
            dtype,
            order,
            scale,
            sample_rate,
        };
        layout
            .check()
            .map_err(|e| ConfigError::new_err(e.to_string()))?;
        let mut inner = lock(&self.inner);
        if inner.acquisition.is_some() {
            return Err(bad("the acquisition has started: add blocks before".into()));
        }
        inner.pending.push((layout, Arc::new(RingSink(shared))));
        Ok(())
    }

    /// Starts the thread (no-op while it runs); a stopped one is joined first (GIL released).
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.start_detached())
    }

    /// Asks the thread to stop (unblocking any read); returns at once.
    fn stop(&self) {
        if let Some(acq) = &lock(&self.inner).acquisition {
            acq.stop();
        }
    }

    /// Waits up to `timeout` s (GIL released) for a stopped thread; True if it has ended.
    fn join(&self, py: Python<'_>, #[pyo3(from_py_with = args::float)] timeout: f64) -> bool {
        let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
        py.detach(|| match lock(&self.inner).acquisition.as_mut() {
            Some(acq) => acq.join(timeout),
            None => true,
        })
    }

    /// True while the thread runs.
    #[getter]
    fn running(&self) -> bool {
        lock(&self.inner)
            .acquisition
            .as_ref()
            .is_some_and(|a| a.running())
    }

    /// The last error (a lost connection, a rejected or failing block), if any.
    #[getter]
    fn last_error(&self) -> Option<String> {
        lock(&self.inner)
            .acquisition
            .as_ref()
            .and_then(|a| a.last_error())
    }

    /// Counters since construction: requests, errors, timeouts, reconnects, blocks,
    /// samples, gap_samples (ints), connected (bool), last_good_read (Unix s or None).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let inner = lock(&self.inner);
        let Some(acq) = inner.acquisition.as_ref() else {
            for key in [
                "requests",
                "errors",
                "timeouts",
                "reconnects",
                "blocks",
                "samples",
                "gap_samples",
            ] {
                out.set_item(key, 0u64)?;
            }
            out.set_item("connected", false)?;
            out.set_item("last_good_read", py.None())?;
            return Ok(out);
        };
        let s = acq.stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        out.set_item("requests", load(&s.requests))?;
        out.set_item("errors", load(&s.errors))?;
        out.set_item("timeouts", load(&s.timeouts))?;
        out.set_item("reconnects", load(&s.reconnects))?;
        out.set_item("blocks", load(&s.blocks))?;
        out.set_item("samples", load(&s.samples))?;
        out.set_item("gap_samples", load(&s.gap_samples))?;
        out.set_item(
            "connected",
            s.connected.load(std::sync::atomic::Ordering::Relaxed),
        )?;
        out.set_item("last_good_read", s.last_good_read())?;
        Ok(out)
    }

    /// Status changes and errors since the last call, oldest first, as
    /// ``(level, message)`` with level ``"info"``, ``"warning"`` or ``"error"``; a final
    /// ``("warning", "... events dropped")`` if the backlog overflowed.
    fn drain_events(&self) -> Vec<(&'static str, String)> {
        let inner = lock(&self.inner);
        let Some(acq) = inner.acquisition.as_ref() else {
            return Vec::new();
        };
        let (events, dropped) = acq.drain_events();
        let mut out: Vec<(&'static str, String)> = events
            .into_iter()
            .map(|e| {
                let level = match e.level {
                    Level::Info => "info",
                    Level::Warning => "warning",
                    Level::Error => "error",
                };
                (level, e.message)
            })
            .collect();
        if dropped > 0 {
            out.push((
                "warning",
                format!("{dropped} waveform events dropped unread"),
            ));
        }
        out
    }

    /// Request latencies (s) since the last call.
    fn drain_latencies(&self) -> Vec<f64> {
        lock(&self.inner)
            .acquisition
            .as_ref()
            .map(|a| a.drain_latencies())
            .unwrap_or_default()
    }

    fn __repr__(&self) -> String {
        let inner = lock(&self.inner);
        let blocks = inner
            .acquisition
            .as_ref()
            .map_or(inner.pending.len(), |a| a.block_count());
        format!(
            "WaveformAcquisition(host={:?}, port={}, blocks={blocks}, running={})",
            inner.settings.host,
            inner.settings.port,
            inner.acquisition.as_ref().is_some_and(|a| a.running())
        )
    }
}

impl WaveformAcquisition {
    fn start_detached(&self) -> PyResult<()> {
        let mut inner = lock(&self.inner);
        if inner.acquisition.is_none() {
            let blocks = std::mem::take(&mut inner.pending);
            let acq = core::WaveformAcquisition::new(
                inner.settings.clone(),
                blocks,
                Arc::clone(&inner.limiter),
            )
            .map_err(|e| ConfigError::new_err(e.to_string()))?;
            inner.acquisition = Some(acq);
        }
        let acq = inner.acquisition.as_mut().expect("set above");
        acq.start()
            .map_err(|e| SessionError::new_err(format!("cannot start the waveform thread: {e}")))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ModbusRateLimiter>()?;
    m.add_class::<WaveformAcquisition>()?;
    Ok(())
}
