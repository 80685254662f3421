//! Waveform acquisition over Modbus TCP: a device's sample blocks streamed into rings.
//!
//! A device keeps `slots` blocks of `samples` values; slot `i` holds its
//! samples at `address + i * stride` and the block's 16-bit sequence number at
//! `sequence_address + i * stride`; block `k` lives in slot `k % slots`. One
//! [`WaveformAcquisition`] per device runs a dedicated thread with its own
//! read-only connection ([`crate::modbus_tcp`]) that follows every block of
//! the device in turn, exactly as the Python session's `_BlockStream` does:
//!
//! * the expected sequence number: push the samples, move on at once;
//! * an older lap: not written yet, look again half a block period later (a
//!   counter stuck in an older lap for long means the device restarted: adopt
//!   its numbering, size the gap by the clock);
//! * a newer number: overwritten before we read it; jump to the newest block
//!   (binary search over the slot counters) and declare the skipped samples a gap.
//!
//! Requests share a per-device [`RateLimiter`] with the Python polling of the
//! same device. Timeouts, exception responses and lost connections are counted
//! in [`WaveformStats`] and reported as [`Event`]s for the supervisor to log;
//! the stream position survives reconnects, so an outage becomes a gap.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::decode::{decode_array, Column, Dtype, Order, RegisterBlock};
use crate::modbus_tcp::{ModbusError, ModbusTcpClient, ReadFunction, MAX_READ_REGISTERS};
use crate::ring::{RingError, SampleRing};

/// A configuration the acquisition cannot run with.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum WaveformError {
    #[error("waveform {name:?}: {problem}")]
    Block { name: String, problem: String },
    #[error("{0}")]
    Device(String),
    #[error("the acquisition is running: stop it before changing its blocks")]
    Running,
}

/// Exception codes that say the address or function is wrong (a configuration
/// error: re-probed once a minute); the others concern the device (retry soon).
const REJECTED_CODES: [u8; 3] = [1, 2, 3];
/// Seconds between re-reads of a waveform the device rejected.
pub const REPROBE_INTERVAL: Duration = Duration::from_secs(60);
/// Blocks read on the caught-up schedule before one immediate read looks for a backlog.
const TIMED_READS: u32 = 8;
/// Timeouts in a row that drop the connection.
pub const TIMEOUTS_BEFORE_RECONNECT: u32 = 2;

/// Where one device-side block buffer lives and how its samples are encoded.
#[derive(Debug, Clone)]
pub struct BlockLayout {
    pub name: String,
    pub function: ReadFunction,
    pub address: u16,
    pub sequence_address: u16,
    /// Samples per block.
    pub samples: usize,
    /// Blocks kept by the device (a power of two: block `k` sits in slot `k % slots`).
    pub slots: u32,
    /// Registers from one slot to the next.
    pub stride: u16,
    pub dtype: Dtype,
    pub order: Order,
    pub scale: f64,
    pub sample_rate: f64,
}

impl BlockLayout {
    /// Registers per sample (int16: 1, float32: 2).
    fn width(&self) -> usize {
        match self.dtype {
            Dtype::Float32 => 2,
            _ => 1,
        }
    }

    /// Registers of one block's samples.
    pub fn block_registers(&self) -> usize {
        self.samples * self.width()
    }

    /// True if the counter sits right before the samples: one read gets both (cannot tear).
    pub fn counter_adjacent(&self) -> bool {
        u32::from(self.sequence_address) + 1 == u32::from(self.address)
    }

    /// Seconds per block.
    pub fn period(&self) -> f64 {
        self.samples as f64 / self.sample_rate
    }

    /// Checks the layout against the protocol's limits (the error names the waveform).
    pub fn check(&self) -> Result<(), WaveformError> {
        let bad = |problem: String| {
            Err(WaveformError::Block {
                name: self.name.clone(),
                problem,
            })
        };
        if !matches!(self.dtype, Dtype::Int16 | Dtype::Float32) {
            return bad(format!(
                "dtype {} is not int16 or float32",
                self.dtype.name()
            ));
        }
        if !(self.sample_rate.is_finite() && self.sample_rate > 0.0) {
            return bad(format!("sample_rate {} is not > 0 Hz", self.sample_rate));
        }
        // a block must arrive within a day: the thread sleeps in units of this period
        if self.period() > 86_400.0 {
            return bad(format!(
                "{} samples at {} Hz take longer than a day per block",
                self.samples, self.sample_rate
            ));
        }
        if !(self.scale.is_finite() && self.scale != 0.0) {
            return bad(format!(
                "scale {} is not a finite non-zero number",
                self.scale
            ));
        }
        if self.samples == 0 {
            return bad("samples must be >= 1".into());
        }
        if self.slots == 0 || 65536 % self.slots != 0 {
            return bad(format!(
                "slots {} is not a power of two up to 65536",
                self.slots
            ));
        }
        let one_read = self.block_registers() + usize::from(self.counter_adjacent());
        if one_read > usize::from(MAX_READ_REGISTERS) {
            return bad(format!(
                "{one_read} registers in one read, more than {MAX_READ_REGISTERS}"
            ));
        }
        if usize::from(self.stride) < self.block_registers() {
            return bad(format!(
                "stride {} < block size {}",
                self.stride,
                self.block_registers()
            ));
        }
        let last = u64::from(self.stride) * u64::from(self.slots - 1);
        let end = u64::from(self.address) + last + self.block_registers() as u64;
        if end > 65536 || u64::from(self.sequence_address) + last >= 65536 {
            return bad("registers outside 0..65535".into());
        }
        Ok(())
    }
}

/// How to reach the device, and how patiently.
#[derive(Debug, Clone)]
pub struct DeviceSettings {
    pub host: String,
    pub port: u16,
    pub unit_id: u8,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// Where the samples of one block stream go (a [`SampleRing`] behind a lock,
/// or a binding's shared ring).
pub trait BlockSink: Send + Sync {
    /// Index of the next sample (samples plus gap samples so far).
    fn written(&self) -> u64;
    /// Appends one block of one channel; `t0` anchors the time base, `gap` samples come first.
    fn push(&self, samples: &[f32], t0: Option<f64>, gap: u64) -> Result<(), RingError>;
}

impl BlockSink for RwLock<SampleRing<f32>> {
    fn written(&self) -> u64 {
        self.read().unwrap_or_else(|e| e.into_inner()).written()
    }
    fn push(&self, samples: &[f32], t0: Option<f64>, gap: u64) -> Result<(), RingError> {
        let mut ring = self.write().unwrap_or_else(|e| e.into_inner());
        ring.push(samples, samples.len(), t0, gap).map(|_| ())
    }
}

/// Spaces requests at least `1 / rate` s apart, across every user of one device.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `rate` requests per second (finite, > 0).
    pub fn new(rate: f64) -> Result<Self, WaveformError> {
        // below one request a day the interval is not a useful Duration (nor a useful rate)
        let interval = Duration::try_from_secs_f64(1.0 / rate)
            .ok()
            .filter(|_| rate.is_finite() && rate >= 1.0 / 86_400.0);
        let Some(interval) = interval else {
            return Err(WaveformError::Device(format!(
                "max_requests_per_second must be at least one a day (1.16e-5), got {rate}"
            )));
        };
        Ok(Self {
            interval,
            next: Mutex::new(None),
        })
    }

    /// Books the next request slot; returns how long to wait before sending.
    pub fn reserve(&self) -> Duration {
        let now = Instant::now();
        let mut next = lock(&self.next);
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + self.interval);
        slot - now
    }
}

/// Running counters of one device's waveform acquisition.
#[derive(Debug, Default)]
pub struct WaveformStats {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub reconnects: AtomicU64,
    pub blocks: AtomicU64,
    pub samples: AtomicU64,
    pub gap_samples: AtomicU64,
    pub connected: AtomicBool,
    /// Unix seconds of the last answered request, as f64 bits (0 = never).
    last_good_read: AtomicU64,
}

impl WaveformStats {
    /// Unix seconds of the last answered request, if any.
    pub fn last_good_read(&self) -> Option<f64> {
        let bits = self.last_good_read.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }
}

/// How much an [`Event`] matters (the supervisor maps it to a log level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// A status change or error for the supervisor to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub level: Level,
    pub message: String,
}

/// Events kept for the supervisor before the oldest are dropped (counted).
const EVENT_BACKLOG: usize = 256;
/// Latencies kept between two drains.
const LATENCY_BACKLOG: usize = 4096;

/// State shared by the acquisition thread and its owner.
struct Shared {
    settings: DeviceSettings,
    blocks: Vec<(BlockLayout, Arc<dyn BlockSink>)>,
    limiter: Arc<RateLimiter>,
    stats: WaveformStats,
    stop: Mutex<bool>,
    wake: Condvar,
    /// The live socket, so `stop` can unblock a read.
    socket: Mutex<Option<TcpStream>>,
    events: Mutex<VecDeque<Event>>,
    events_dropped: AtomicU64,
    latencies: Mutex<Vec<f64>>,
    last_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Shared {
    fn stopped(&self) -> bool {
        *lock(&self.stop)
    }

    /// Sleeps `d` unless stopped first; returns true if stopped.
    fn sleep(&self, d: Duration) -> bool {
        let guard = lock(&self.stop);
        if d.is_zero() {
            return *guard;
        }
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stop| !*stop)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    fn event(&self, level: Level, message: String) {
        let mut events = lock(&self.events);
        if events.len() >= EVENT_BACKLOG {
            events.pop_front();
            self.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
        events.push_back(Event { level, message });
    }

    /// Sets the last error; true if it differs from the one before.
    fn set_error(&self, error: String) -> bool {
        let mut last = lock(&self.last_error);
        let new = last.as_deref() != Some(error.as_str());
        *last = Some(error);
        new
    }
}

/// The position of one block stream; survives reconnects and restarts.
#[derive(Debug, Clone, Default)]
struct StreamState {
    /// Sequence number of the next block wanted (mod 2**64; only its low 16 bits meet the device).
    expected: Option<u64>,
    /// Samples lost since the last push.
    pending_gap: u64,
    last_push: Option<Instant>,
    stale_since: Option<Instant>,
    /// True once a read found the next block not yet written (and until we fall behind):
    /// then block `k + 1` is written at most one period after block `k` was found.
    caught_up: bool,
    /// Reads timed by that rule since the last look for a backlog.
    timed_reads: u32,
    /// When this stream may send its next request.
    due: Option<Instant>,
}

/// What a stream does after one step.
enum Next {
    /// More may be ready: step again at once.
    Again,
    /// Nothing new yet: step again after this long.
    Wait(Duration),
}

/// Waveform acquisition of one device: a thread, started and stopped by its owner.
pub struct WaveformAcquisition {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Vec<StreamState>>>,
    states: Vec<StreamState>,
}

impl WaveformAcquisition {
    /// Checks every block; nothing runs until [`start`](Self::start).
    pub fn new(
        settings: DeviceSettings,
        blocks: Vec<(BlockLayout, Arc<dyn BlockSink>)>,
        limiter: Arc<RateLimiter>,
    ) -> Result<Self, WaveformError> {
        for (layout, _) in &blocks {
            layout.check()?;
        }
        let durations = [
            ("connect_timeout", settings.connect_timeout),
            ("request_timeout", settings.request_timeout),
            ("backoff_initial", settings.backoff_initial),
        ];
        for (name, d) in durations {
            if d.is_zero() {
                return Err(WaveformError::Device(format!("{name} must be > 0")));
            }
        }
        if settings.backoff_max < settings.backoff_initial {
            return Err(WaveformError::Device(
                "need backoff_initial <= backoff_max".into(),
            ));
        }
        let states = vec![StreamState::default(); blocks.len()];
        Ok(Self {
            shared: Arc::new(Shared {
                settings,
                blocks,
                limiter,
                stats: WaveformStats::default(),
                stop: Mutex::new(false),
                wake: Condvar::new(),
                socket: Mutex::new(None),
                events: Mutex::new(VecDeque::new()),
                events_dropped: AtomicU64::new(0),
                latencies: Mutex::new(Vec::new()),
                last_error: Mutex::new(None),
            }),
            thread: None,
            states,
        })
    }

    /// Starts the acquisition thread (no-op if it runs); a stopped one is joined first and
    /// its streams go on from where they were.
    pub fn start(&mut self) -> std::io::Result<()> {
        if self.running() && !self.shared.stopped() {
            return Ok(());
        }
        self.reap(); // a stopped thread ends within one socket call
        *lock(&self.shared.socket) = None;
        *lock(&self.shared.stop) = false;
        let shared = Arc::clone(&self.shared);
        let states = std::mem::take(&mut self.states);
        let name = format!("isthmus-wave:{}", self.shared.settings.host);
        let handle = thread::Builder::new()
            .name(name)
            .spawn(move || Acquirer::new(shared, states).run())?;
        self.thread = Some(handle);
        Ok(())
    }

    /// True while the thread runs.
    pub fn running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Asks the thread to stop and unblocks it; returns at once (see [`join`](Self::join)).
    pub fn stop(&self) {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
        if let Some(socket) = lock(&self.shared.socket).as_ref() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Waits up to `timeout` for a stopped thread to end; true if it has (or never ran).
    pub fn join(&mut self, timeout: Duration) -> bool {
        // a timeout past the clock's range waits for as long as it takes
        let deadline = Instant::now().checked_add(timeout);
        while self.running() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
        self.reap();
        true
    }

    /// Takes back the stream positions of a finished thread.
    fn reap(&mut self) {
        if let Some(handle) = self.thread.take() {
            match handle.join() {
                Ok(states) => self.states = states,
                // A panic in the thread is a bug; start the streams over rather than abort.
                Err(_) => self.states = vec![StreamState::default(); self.shared.blocks.len()],
            }
        }
    }

    /// Number of block streams.
    pub fn block_count(&self) -> usize {
        self.shared.blocks.len()
    }

    pub fn stats(&self) -> &WaveformStats {
        &self.shared.stats
    }

    /// Events since the last call, oldest first, and how many were dropped unread.
    pub fn drain_events(&self) -> (Vec<Event>, u64) {
        let events = lock(&self.shared.events).drain(..).collect();
        (
            events,
            self.shared.events_dropped.swap(0, Ordering::Relaxed),
        )
    }

    /// Request latencies (s) since the last call.
    pub fn drain_latencies(&self) -> Vec<f64> {
        std::mem::take(&mut *lock(&self.shared.latencies))
    }

    pub fn last_error(&self) -> Option<String> {
        lock(&self.shared.last_error).clone()
    }
}

impl Drop for WaveformAcquisition {
    fn drop(&mut self) {
        self.stop();
        // The thread owns clones of everything it uses; it ends on its own.
    }
}

/// The thread's side: one connection at a time, every stream in turn.
struct Acquirer {
    shared: Arc<Shared>,
    states: Vec<StreamState>,
    /// Reused buffers: the last answer's data bytes, one block's samples.
    bytes: Vec<u8>,
    samples: Vec<f32>,
    consecutive_timeouts: u32,
    rng: u64,
}

/// Why a connection ended.
enum Lost {
    Stopped,
    Reason(String),
}

impl Acquirer {
    fn new(shared: Arc<Shared>, states: Vec<StreamState>) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Self {
            shared,
            states,
            bytes: Vec::with_capacity(256),
            samples: Vec::new(),
            consecutive_timeouts: 0,
            rng: seed,
        }
    }

    /// A uniform random number in [0, 1) (xorshift: jitter needs no more).
    fn random(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    fn run(mut self) -> Vec<StreamState> {
        let s = Arc::clone(&self.shared);
        let mut backoff = s.settings.backoff_initial;
        while !s.stopped() {
            let good_before = s.stats.last_good_read.load(Ordering::Relaxed);
            let reason = match self.connect() {
                Ok(mut client) => match self.serve(&mut client) {
                    Lost::Stopped => break,
                    Lost::Reason(reason) => reason,
                },
                Err(e) => e.to_string(),
            };
            *lock(&s.socket) = None;
            s.stats.connected.store(false, Ordering::Relaxed);
            if s.stopped() {
                break;
            }
            s.event(Level::Warning, format!("connection lost: {reason}"));
            s.set_error(reason);
            if s.stats.last_good_read.load(Ordering::Relaxed) != good_before {
                // the device did answer this time: start the backoff over
                backoff = s.settings.backoff_initial;
            }
            s.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            // full jitter: spread reconnects of many gateways over the whole window
            let wait = backoff.mul_f64(0.5 + 0.5 * self.random());
            if s.sleep(wait) {
                break;
            }
            backoff = (backoff * 2).min(s.settings.backoff_max);
        }
        s.stats.connected.store(false, Ordering::Relaxed);
        for state in &mut self.states {
            state.stale_since = None;
            state.caught_up = false;
            state.due = None;
        }
        self.states
    }

    fn connect(&mut self) -> Result<ModbusTcpClient, ModbusError> {
        let st = &self.shared.settings;
        let client = ModbusTcpClient::connect(
            &st.host,
            st.port,
            st.unit_id,
            st.connect_timeout,
            st.request_timeout,
        )?;
        *lock(&self.shared.socket) = client.shutdown_handle().ok();
        if self.shared.stopped() {
            client.shutdown(); // stop() ran before the handle was stored
        }
        self.consecutive_timeouts = 0;
        self.shared.stats.connected.store(true, Ordering::Relaxed);
        Ok(client)
    }

    /// Steps the stream that is due first, until the connection is lost or we are stopped.
    fn serve(&mut self, client: &mut ModbusTcpClient) -> Lost {
        let s = Arc::clone(&self.shared);
        if s.blocks.is_empty() {
            while !s.sleep(Duration::from_secs(3600)) {}
            return Lost::Stopped;
        }
        loop {
            let now = Instant::now();
            let (i, due) = self
                .states
                .iter()
                .enumerate()
                .map(|(i, st)| (i, st.due.unwrap_or(now)))
                .min_by_key(|&(_, due)| due)
                .expect("at least one block");
            if s.sleep(due.saturating_duration_since(now)) {
                return Lost::Stopped;
            }
            let (layout, _) = &s.blocks[i];
            let period = Duration::from_secs_f64(layout.period());
            let outcome = self.step(client, i);
            let now = Instant::now();
            let next_due = match outcome {
                Ok(Next::Again) => now,
                Ok(Next::Wait(d)) => now + d,
                Err(ModbusError::Timeout) => {
                    // one slow answer: retry; `request` drops the connection if they persist
                    self.states[i].stale_since = None;
                    self.states[i].caught_up = false;
                    now
                }
                Err(ModbusError::Exception { code }) => {
                    self.states[i].stale_since = None;
                    self.states[i].caught_up = false;
                    let error = format!(
                        "waveform {}: {}",
                        layout.name,
                        ModbusError::Exception { code }
                    );
                    let new = s.set_error(error.clone());
                    if REJECTED_CODES.contains(&code) {
                        // the device refuses the waveform registers: a configuration error
                        s.event(
                            Level::Error,
                            format!(
                                "waveform {} rejected: {}",
                                layout.name,
                                ModbusError::Exception { code }
                            ),
                        );
                        now + REPROBE_INTERVAL
                    } else {
                        // busy / device failure: transient; the missed blocks become a gap
                        if new {
                            s.event(Level::Warning, error);
                        }
                        now + period.max(Duration::from_millis(100))
                    }
                }
                Err(ModbusError::Request(problem)) => {
                    // not reached with a checked layout; never spin on it
                    s.event(Level::Error, format!("waveform {}: {problem}", layout.name));
                    now + REPROBE_INTERVAL
                }
                Err(e) => {
                    if s.stopped() {
                        return Lost::Stopped;
                    }
                    return Lost::Reason(e.to_string());
                }
            };
            self.states[i].due = Some(next_due);
            if self.consecutive_timeouts >= TIMEOUTS_BEFORE_RECONNECT {
                return Lost::Reason(format!("{} timeouts in a row", self.consecutive_timeouts));
            }
        }
    }

    /// One read through the shared rate limit; the data bytes land in `self.bytes`.
    fn request(
        &mut self,
        client: &mut ModbusTcpClient,
        function: ReadFunction,
        start: u32,
        count: usize,
    ) -> Result<(), ModbusError> {
        let s = &self.shared;
        // checked layouts keep both within u16 / MAX_READ_REGISTERS
        let start = u16::try_from(start).map_err(|_| ModbusError::Request("address".into()))?;
        let count = u16::try_from(count).map_err(|_| ModbusError::Request("count".into()))?;
        if s.sleep(s.limiter.reserve()) {
            return Err(ModbusError::Closed);
        }
        s.stats.requests.fetch_add(1, Ordering::Relaxed);
        let began = Instant::now();
        let result = client.read_registers(function, start, count, &mut self.bytes);
        match &result {
            Err(ModbusError::Timeout) => {
                s.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                self.consecutive_timeouts += 1;
                return result;
            }
            Err(ModbusError::Exception { .. }) => {
                s.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                s.stats.errors.fetch_add(1, Ordering::Relaxed);
                return result;
            }
            Ok(()) => {
                let now = unix_now();
                s.stats
                    .last_good_read
                    .store(now.to_bits(), Ordering::Relaxed);
            }
        }
        self.consecutive_timeouts = 0;
        let mut latencies = lock(&s.latencies);
        if latencies.len() < LATENCY_BACKLOG {
            latencies.push(began.elapsed().as_secs_f64());
        }
        result
    }

    /// The sequence number in `slot` of stream `i`.
    fn seq_of(
        &mut self,
        client: &mut ModbusTcpClient,
        i: usize,
        slot: u64,
    ) -> Result<u64, ModbusError> {
        let (b, _) = &self.shared.blocks[i];
        let at = u32::from(b.sequence_address) + slot as u32 * u32::from(b.stride);
        let function = b.function;
        self.request(client, function, at, 1)?;
        Ok(u64::from(u16::from_be_bytes([
            self.bytes[0],
            self.bytes[1],
        ])))
    }

    /// Sequence number of the newest block: `1 + log2(slots)` one-register reads.
    ///
    /// Slot 0 holds block `k0` (a multiple of `slots`); slot `i` holds `k0 + i`
    /// if written in the same lap, so the newest block is the last slot of the lap.
    fn find_newest(&mut self, client: &mut ModbusTcpClient, i: usize) -> Result<u64, ModbusError> {
        let slots = u64::from(self.shared.blocks[i].0.slots);
        let k0 = self.seq_of(client, i, 0)?;
        let (mut lo, mut hi) = (0u64, slots - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if (self.seq_of(client, i, mid)?.wrapping_sub(k0)) & 0xFFFF == mid {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok((k0 + lo) & 0xFFFF)
    }

    /// Reads one slot: the sequence number found, and whether `self.samples` holds its block
    /// (false: a torn read, or an older lap not worth reading).
    fn read_slot(
        &mut self,
        client: &mut ModbusTcpClient,
        i: usize,
        slot: u64,
        want: u64,
    ) -> Result<(u64, bool), ModbusError> {
        let shared = Arc::clone(&self.shared);
        let (b, _) = &shared.blocks[i];
        let base = slot as u32 * u32::from(b.stride);
        if b.counter_adjacent() {
            let at = u32::from(b.sequence_address) + base;
            self.request(client, b.function, at, 1 + b.block_registers())?;
            let seq = u64::from(u16::from_be_bytes([self.bytes[0], self.bytes[1]]));
            self.decode(b, 2)?;
            return Ok((seq, true));
        }
        // separate counter register: read it around the samples (a seqlock)
        let before = self.seq_of(client, i, slot)?;
        if before.wrapping_sub(want) & 0xFFFF >= 0x8000 {
            return Ok((before, false)); // an older lap: not written yet
        }
        self.request(
            client,
            b.function,
            u32::from(b.address) + base,
            b.block_registers(),
        )?;
        self.decode(b, 0)?;
        let after = self.seq_of(client, i, slot)?;
        Ok((after, after == before))
    }

    /// Decodes the samples in `self.bytes[skip..]` into `self.samples` (as the Python
    /// path does: `decode_array`, then float32).
    fn decode(&mut self, b: &BlockLayout, skip: usize) -> Result<(), ModbusError> {
        let wire = RegisterBlock::Wire(&self.bytes[skip..]);
        let column = decode_array(wire, b.dtype, b.order, b.scale, 0.0)
            .map_err(|e| ModbusError::Protocol(e.to_string()))?;
        self.samples.clear();
        match column {
            Column::I16(v) => self.samples.extend(v.iter().map(|&x| f32::from(x))),
            Column::F32(v) => self.samples.extend_from_slice(&v),
            Column::F64(v) => self.samples.extend(v.iter().map(|&x| x as f32)),
            _ => return Err(ModbusError::Protocol("unexpected sample type".into())),
        }
        Ok(())
    }

    /// Pushes `self.samples` (block `expected`) and the pending gap into the ring.
    fn push(&mut self, i: usize) {
        let s = Arc::clone(&self.shared);
        let (b, sink) = &s.blocks[i];
        let state = &mut self.states[i];
        // Modbus carries no timestamps: anchor the ring's time base on the arrival of
        // the first block (its first sample one block earlier)
        let t0 = (sink.written() == 0).then(|| unix_now() - b.period());
        if let Err(e) = sink.push(&self.samples, t0, state.pending_gap) {
            s.stats.errors.fetch_add(1, Ordering::Relaxed);
            s.event(
                Level::Error,
                format!("waveform {}: ring push failed: {e}", b.name),
            );
            return;
        }
        s.stats.blocks.fetch_add(1, Ordering::Relaxed);
        s.stats
            .samples
            .fetch_add(self.samples.len() as u64, Ordering::Relaxed);
        s.stats
            .gap_samples
            .fetch_add(state.pending_gap, Ordering::Relaxed);
        state.pending_gap = 0;
        state.last_push = Some(Instant::now());
        state.expected = state.expected.map(|e| e.wrapping_add(1));
    }

    /// One step of stream `i` (the body of the Python `_follow` loop).
    fn step(&mut self, client: &mut ModbusTcpClient, i: usize) -> Result<Next, ModbusError> {
        let (slots, period, samples) = {
            let b = &self.shared.blocks[i].0;
            (u64::from(b.slots), b.period(), b.samples as u64)
        };
        let Some(expected) = self.states[i].expected else {
            // first contact: start at the newest block, nothing to catch up
            self.states[i].expected = Some(self.find_newest(client, i)?);
            return Ok(Next::Again);
        };
        let (seq, complete) = self.read_slot(client, i, expected % slots, expected)?;
        let d = seq.wrapping_sub(expected) & 0xFFFF;
        if d == 0 {
            if !complete {
                return Ok(Next::Again); // a torn read: retry
            }
            self.push(i);
            let state = &mut self.states[i];
            state.stale_since = None;
            if state.caught_up && state.timed_reads < TIMED_READS {
                // Caught up: the next block is written within one period of this one
                // being found, so read it then instead of polling half a period early.
                state.timed_reads += 1;
                return Ok(Next::Wait(Duration::from_secs_f64(period)));
            }
            // Behind (more may be ready now), or time to look for a backlog a device
            // whose clock runs fast would build up: read again at once.
            state.caught_up = false;
            state.timed_reads = 0;
            return Ok(Next::Again);
        }
        if d < 0x8000 {
            // overwritten by a newer lap: we fell behind (or were away). Skip to the
            // newest block: anything older may be overwritten while we read it.
            // (find_newest reads only counters: self.samples keeps the block in hand)
            let newest = self.find_newest(client, i)?;
            let mut target = newest.wrapping_sub(expected) & 0xFFFF;
            if d >= target || target >= 0x8000 {
                target = d; // the block in hand is as new: keep it
            }
            let state = &mut self.states[i];
            let since = state.last_push.map_or(0.0, |t| t.elapsed().as_secs_f64());
            let jump = unwrap(target, since / period);
            state.pending_gap += jump * samples;
            state.expected = Some(expected.wrapping_add(jump));
            state.stale_since = None;
            state.caught_up = false;
            if d == target && complete {
                self.push(i);
            }
            return Ok(Next::Again);
        }
        let now = Instant::now();
        let state = &mut self.states[i];
        let stale_since = *state.stale_since.get_or_insert(now);
        let stale_limit = (4.0 * period * slots as f64).max(1.0);
        if (now - stale_since).as_secs_f64() > stale_limit {
            // an older lap for too long: the device's counter restarted; adopt its
            // numbering and size the gap by the clock
            let since = state.last_push.map_or(0.0, |t| (now - t).as_secs_f64());
            let blocks_missed = ((since / period).round() - 1.0).max(0.0) as u64;
            state.pending_gap += blocks_missed * samples;
            state.expected = Some(expected.wrapping_sub(0x10000 - d));
            state.stale_since = None;
            if complete {
                self.push(i);
            }
            return Ok(Next::Again);
        }
        // not written yet: it will be within one period of the last block's arrival; a
        // device whose clock runs slow is found again within an eighth of a period
        state.caught_up = true;
        let due = state.last_push.map_or(Duration::ZERO, |t| {
            (t + Duration::from_secs_f64(period)).saturating_duration_since(now)
        });
        let wait = due.max(Duration::from_secs_f64(period / 8.0));
        Ok(Next::Wait(wait))
    }
}

/// The jump congruent to `delta16` mod 65536 closest to `estimate` blocks (never < `delta16`).
///
/// A 16-bit counter wraps every 65536 blocks (5 minutes at 25.6 kHz in
/// 120-sample blocks); after a longer outage the clock says how many laps.
pub fn unwrap(delta16: u64, estimate: f64) -> u64 {
    let laps = ((estimate - delta16 as f64) / 65536.0).round();
    delta16 + (laps.max(0.0) as u64) * 65536
}

#[cfg(test)]
mod tests;
