//! The acquisition against a tiny Modbus TCP device served from a test thread.

use super::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::AtomicUsize;

/// A device: 65536 holding registers, a block writer, and faults to switch on.
#[derive(Default)]
struct Device {
    registers: Mutex<Vec<u16>>,
    /// Function codes received, in order.
    functions: Mutex<Vec<u8>>,
    requests: AtomicUsize,
    /// Answer late by this many ms.
    delay_ms: AtomicU64,
    /// Answer every request with this exception code (0: none).
    exception: AtomicU64,
    /// Closed: drop every connection and refuse new ones.
    dead: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
    accepted: AtomicUsize,
}

struct Server {
    device: Arc<Device>,
    port: u16,
}

impl Server {
    fn start() -> Self {
        let device = Arc::new(Device {
            registers: Mutex::new(vec![0; 65536]),
            ..Default::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dev = Arc::clone(&device);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                if dev.dead.load(Ordering::SeqCst) {
                    drop(stream); // accept and hang up: a device that is down
                    continue;
                }
                dev.accepted.fetch_add(1, Ordering::SeqCst);
                lock(&dev.connections).push(stream.try_clone().unwrap());
                let dev = Arc::clone(&dev);
                thread::spawn(move || serve_connection(&dev, stream));
            }
        });
        Server { device, port }
    }

    /// Kills every open connection; new ones are hung up on until `revive`.
    fn kill(&self) {
        self.device.dead.store(true, Ordering::SeqCst);
        for c in lock(&self.device.connections).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn revive(&self) {
        self.device.dead.store(false, Ordering::SeqCst);
    }
}

fn serve_connection(dev: &Device, mut s: TcpStream) {
    let mut req = [0u8; 12];
    while s.read_exact(&mut req).is_ok() {
        if dev.dead.load(Ordering::SeqCst) {
            return;
        }
        dev.requests.fetch_add(1, Ordering::SeqCst);
        let function = req[7];
        lock(&dev.functions).push(function);
        let start = usize::from(u16::from_be_bytes([req[8], req[9]]));
        let count = usize::from(u16::from_be_bytes([req[10], req[11]]));
        let delay = dev.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            thread::sleep(Duration::from_millis(delay));
        }
        let exception = dev.exception.load(Ordering::SeqCst) as u8;
        let pdu = if exception != 0 {
            vec![function | 0x80, exception]
        } else {
            let regs = lock(&dev.registers);
            let mut pdu = vec![function, (count * 2) as u8];
            for r in &regs[start..start + count] {
                pdu.extend_from_slice(&r.to_be_bytes());
            }
            pdu
        };
        let mut out = vec![req[0], req[1], 0, 0];
        out.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
        out.push(req[6]);
        out.extend_from_slice(&pdu);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// The device side of a block buffer: writes block `k` (a ramp: sample `j` of the
/// stream is `j % 16384`) into slot `k % slots`, counter with it.
struct Writer {
    device: Arc<Device>,
    layout: BlockLayout,
    next_block: u64,
}

impl Writer {
    /// Writes a full lap, as a device that has been running for a while holds.
    fn fill(&mut self) {
        for _ in 0..self.layout.slots {
            self.write_block();
        }
    }

    fn write_block(&mut self) {
        let b = &self.layout;
        let k = self.next_block;
        let slot = (k % u64::from(b.slots)) as usize;
        let base = slot * usize::from(b.stride);
        let mut regs = lock(&self.device.registers);
        let seq_at = usize::from(b.sequence_address) + base;
        // a seqlock device bumps the counter after the samples; invalidate first
        regs[seq_at] = regs[seq_at].wrapping_add(0x8000);
        for i in 0..b.samples {
            let value = ((k * b.samples as u64 + i as u64) % 16384) as u16;
            let at = usize::from(b.address) + base + i * b.width();
            match b.dtype {
                Dtype::Float32 => {
                    // CDAB: low word first
                    let bits = (f32::from(value) * 0.5).to_bits();
                    regs[at] = bits as u16;
                    regs[at + 1] = (bits >> 16) as u16;
                }
                _ => regs[at] = value,
            }
        }
        regs[seq_at] = (k & 0xFFFF) as u16;
        self.next_block += 1;
    }

    /// True once `ring` ends with the last sample written. (Waiting on a sample count
    /// instead can outlast a stopped writer: a counter stuck for over a second reads
    /// as a device restart, with a gap sized by the clock.)
    fn reached(&self, ring: &Ring, scale: f32) -> bool {
        let ring = ring.read().unwrap();
        let mut last = Vec::new();
        if ring.written() == 0 || ring.latest_into(1, &mut last).is_err() {
            return false;
        }
        let want = ((self.next_block * self.layout.samples as u64 - 1) % 16384) as f32;
        (last[0] / scale - want).abs() < 0.5
    }
}

fn layout(samples: usize, slots: u32) -> BlockLayout {
    BlockLayout {
        name: "vib".into(),
        function: ReadFunction::HoldingRegisters,
        address: 1001,
        sequence_address: 1000,
        samples,
        slots,
        stride: samples as u16 + 1,
        dtype: Dtype::Int16,
        order: Order::parse("ABCD").unwrap(),
        scale: 1.0,
        // 32 samples per ~2 ms, the pace of `write_blocks` below (a device never runs
        // faster than its rate: the reader's schedule assumes that much)
        sample_rate: 16000.0,
    }
}

fn settings(port: u16) -> DeviceSettings {
    DeviceSettings {
        host: "127.0.0.1".into(),
        port,
        unit_id: 1,
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
    }
}

type Ring = Arc<RwLock<SampleRing<f32>>>;

fn acquisition(port: u16, b: &BlockLayout, rate: f64) -> (WaveformAcquisition, Ring) {
    let ring: Ring = Arc::new(RwLock::new(
        SampleRing::new(1, 1 << 16, b.sample_rate).unwrap(),
    ));
    let sink: Arc<dyn BlockSink> = ring.clone();
    let limiter = Arc::new(RateLimiter::new(rate).unwrap());
    let acq = WaveformAcquisition::new(settings(port), vec![(b.clone(), sink)], limiter).unwrap();
    (acq, ring)
}

fn wait_until(within: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    ok()
}

/// Reads the whole ring: every returned sample must sit at the index its ramp value
/// says (nothing repeated, reordered or silently dropped). Returns (read, gap samples).
fn check_ramp(ring: &Ring, scale: f32) -> (u64, u64) {
    let ring = ring.read().unwrap();
    let mut cursor = ring.cursor_at_oldest();
    let (mut total, mut gaps) = (0, 0);
    let mut first: Option<(u64, i64)> = None;
    loop {
        let mut out = Vec::new();
        let info = ring
            .read_into(&mut cursor, usize::MAX, &mut out)
            .expect("a read of a small ring fits in memory");
        assert_eq!(info.lost_overrun, 0);
        gaps += info.lost_gap;
        if info.len == 0 {
            if ring.available(&cursor) == 0 {
                return (total, gaps);
            }
            continue;
        }
        for (j, v) in out.iter().enumerate() {
            let index = info.start_index + j as u64;
            let value = (v / scale).round() as i64;
            let (i0, v0) = *first.get_or_insert((index, value));
            assert_eq!(value, (v0 + (index - i0) as i64) % 16384, "sample {index}");
        }
        total += info.len as u64;
    }
}

/// Writes `blocks` blocks at the device's pace (one per `period`).
fn write_blocks(writer: &mut Writer, blocks: usize, period: Duration) {
    for _ in 0..blocks {
        writer.write_block();
        thread::sleep(period);
    }
}

#[test]
fn follows_the_stream_without_loss_and_reads_only() {
    let server = Server::start();
    let b = layout(32, 64); // 128 ms of buffer: no gap even on a loaded test machine
    let mut writer = Writer {
        device: Arc::clone(&server.device),
        layout: b.clone(),
        next_block: 40_000,
    };
    writer.fill();
    let (mut acq, ring) = acquisition(server.port, &b, 10_000.0);
    acq.start().unwrap();
    assert!(wait_until(Duration::from_secs(5), || acq
        .stats()
        .blocks
        .load(Ordering::Relaxed)
        > 0
        || acq.stats().requests.load(Ordering::Relaxed) > 3));
    write_blocks(&mut writer, 300, Duration::from_millis(2));
    assert!(wait_until(Duration::from_secs(5), || writer.reached(&ring, 1.0)));
    acq.stop();
    assert!(acq.join(Duration::from_secs(5)));
    let stats = acq.stats();
    let (read, gaps) = check_ramp(&ring, 1.0);
    assert_eq!(read, stats.samples.load(Ordering::Relaxed));
    assert_eq!(gaps, stats.gap_samples.load(Ordering::Relaxed));
    assert_eq!(
        gaps, 0,
        "a steady 16-slot buffer read at 10k requests/s loses nothing"
    );
    assert!(read >= 300 * 32);
    assert_eq!(stats.reconnects.load(Ordering::Relaxed), 0);
    let functions = lock(&server.device.functions);
    assert!(!functions.is_empty() && functions.iter().all(|&f| f == 3));
}

#[test]
fn a_stall_longer_than_the_buffer_is_an_exact_gap() {
    let server = Server::start();
    let b = layout(32, 8);
    let mut writer = Writer {
        device: Arc::clone(&server.device),
        layout: b.clone(),
        next_block: 65_500, // the counter wraps during the test
    };
    writer.fill();
    let (mut acq, ring) = acquisition(server.port, &b, 10_000.0);
    acq.start().unwrap();
    // counted blocks are written once the reader has connected and caught up
    assert!(wait_until(Duration::from_secs(10), || writer.reached(&ring, 1.0)));
    write_blocks(&mut writer, 50, Duration::from_millis(2));
    server.device.delay_ms.store(150, Ordering::SeqCst); // answers slower than the timeout...
    write_blocks(&mut writer, 40, Duration::from_millis(2)); // ...while 5 laps are written
    server.device.delay_ms.store(0, Ordering::SeqCst);
    write_blocks(&mut writer, 100, Duration::from_millis(2));
    assert!(wait_until(Duration::from_secs(5), || writer.reached(&ring, 1.0)));
    acq.stop();
    assert!(acq.join(Duration::from_secs(5)));
    let (read, gaps) = check_ramp(&ring, 1.0);
    assert!(gaps > 0, "blocks were overwritten during the stall");
    assert_eq!(gaps, acq.stats().gap_samples.load(Ordering::Relaxed));
    assert_eq!(read, acq.stats().samples.load(Ordering::Relaxed));
    assert_eq!(gaps % 32, 0);
}

#[test]
fn seqlock_layout_and_scaled_float32_decode() {
    let server = Server::start();
    let mut b = layout(20, 16);
    b.sample_rate = 6000.0; // 20 samples per ~3 ms
    b.dtype = Dtype::Float32;
    b.order = Order::parse("CDAB").unwrap();
    b.address = 2000;
    b.sequence_address = 1000; // counters apart from the samples
    b.stride = 40;
    b.scale = 2.0; // the device holds value/2
    let mut writer = Writer {
        device: Arc::clone(&server.device),
        layout: b.clone(),
        next_block: 7,
    };
    writer.fill();
    let (mut acq, ring) = acquisition(server.port, &b, 10_000.0);
    acq.start().unwrap();
    // the reader starts at the newest block: blocks written before it has connected are
    // neither read nor gaps, so write the counted ones only once it has caught up
    assert!(wait_until(Duration::from_secs(10), || writer.reached(&ring, 1.0)));
    write_blocks(&mut writer, 100, Duration::from_millis(3));
    assert!(wait_until(Duration::from_secs(5), || writer.reached(&ring, 1.0)));
    acq.stop();
    assert!(acq.join(Duration::from_secs(5)));
    let (read, gaps) = check_ramp(&ring, 1.0); // value/2 * scale 2 = the ramp
    assert!(read + gaps >= 100 * 20 && read > 0);
    assert_eq!(gaps, acq.stats().gap_samples.load(Ordering::Relaxed));
}

#[test]
fn a_rejected_waveform_is_an_error_event_not_a_reconnect() {
    let server = Server::start();
    server.device.exception.store(2, Ordering::SeqCst);
    let b = layout(32, 16);
    let (mut acq, _ring) = acquisition(server.port, &b, 1000.0);
    acq.start().unwrap();
    assert!(wait_until(Duration::from_secs(5), || acq
        .last_error()
        .is_some()));
    thread::sleep(Duration::from_millis(200));
    acq.stop();
    assert!(acq.join(Duration::from_secs(5)));
    assert_eq!(
        acq.last_error().unwrap(),
        "waveform vib: illegal data address (exception code 2)"
    );
    let (events, dropped) = acq.drain_events();
    assert_eq!(dropped, 0);
    assert!(events
        .iter()
        .any(|e| e.level == Level::Error && e.message.contains("rejected")));
    // re-probed once a minute, not hammered; and no reconnect for it
    assert_eq!(server.device.requests.load(Ordering::SeqCst), 1);
    assert_eq!(acq.stats().reconnects.load(Ordering::Relaxed), 0);
    assert_eq!(acq.stats().errors.load(Ordering::Relaxed), 1);
}

#[test]
fn a_killed_device_is_reconnected_with_backoff_and_the_outage_is_a_gap() {
    let server = Server::start();
    let b = layout(32, 16);
    let mut writer = Writer {
        device: Arc::clone(&server.device),
        layout: b.clone(),
        next_block: 0,
    };
    writer.fill();
    let (mut acq, ring) = acquisition(server.port, &b, 10_000.0);
    acq.start().unwrap();
    // counted blocks are written once the reader has connected and caught up
    assert!(wait_until(Duration::from_secs(10), || writer.reached(&ring, 1.0)));
    write_blocks(&mut writer, 50, Duration::from_millis(2));
    assert!(wait_until(Duration::from_secs(5), || acq
        .stats()
        .blocks
        .load(Ordering::Relaxed)
        >= 40));
    server.kill();
    write_blocks(&mut writer, 100, Duration::from_millis(2)); // the device runs on unseen
    assert!(acq.stats().reconnects.load(Ordering::Relaxed) >= 1);
    server.revive();
    write_blocks(&mut writer, 100, Duration::from_millis(2));
    assert!(wait_until(Duration::from_secs(5), || writer.reached(&ring, 1.0)));
    assert!(acq.stats().connected.load(Ordering::Relaxed));
    acq.stop();
    assert!(acq.join(Duration::from_secs(5)));
    let (read, gaps) = check_ramp(&ring, 1.0);
    assert!(
        gaps >= 64 * 32,
        "the outage overwrote at least 4 laps: {gaps}"
    );
    assert_eq!(gaps, acq.stats().gap_samples.load(Ordering::Relaxed));
    assert_eq!(read, acq.stats().samples.load(Ordering::Relaxed));
    let (events, _) = acq.drain_events();
    assert!(events
        .iter()
        .any(|e| e.message.starts_with("connection lost")));
    assert!(server.device.accepted.load(Ordering::SeqCst) >= 2);
}

#[test]
fn requests_keep_to_the_shared_rate_limit() {
    let server = Server::start();
    let b = layout(32, 16);
    let mut writer = Writer {
        device: Arc::clone(&server.device),
        layout: b.clone(),
        next_block: 0,
    };
    writer.fill();
    let (mut acq, _ring) = acquisition(server.port, &b, 100.0);
    acq.start().unwrap();
    thread::sleep(Duration::from_millis(200));
    let before = server.device.requests.load(Ordering::SeqCst);
    let t0 = Instant::now();
    write_blocks(&mut writer, 250, Duration::from_millis(4)); // wants > 250 requests/s
    let sent = server.device.requests.load(Ordering::SeqCst) - before;
    let elapsed = t0.elapsed().as_secs_f64();
    acq.stop();
    assert!(acq.join(Duration::from_secs(5)));
    assert!(
        sent as f64 <= 100.0 * elapsed + 2.0,
        "{sent} in {elapsed} s"
    );
    assert!(sent as f64 >= 50.0 * elapsed, "{sent} in {elapsed} s");
    assert!(acq.stats().gap_samples.load(Ordering::Relaxed) > 0);
}

#[test]
fn stop_unblocks_a_waiting_thread_at_once() {
    let server = Server::start();
    server.device.delay_ms.store(5_000, Ordering::SeqCst);
    let b = layout(32, 16);
    let mut s = settings(server.port);
    s.request_timeout = Duration::from_secs(30);
    let ring: Arc<dyn BlockSink> = Arc::new(RwLock::new(
        SampleRing::<f32>::new(1, 4096, 8000.0).unwrap(),
    ));
    let limiter = Arc::new(RateLimiter::new(100.0).unwrap());
    let mut acq = WaveformAcquisition::new(s, vec![(b, ring)], limiter).unwrap();
    acq.start().unwrap();
    assert!(wait_until(Duration::from_secs(5), || server
        .device
        .requests
        .load(Ordering::SeqCst)
        > 0));
    let t0 = Instant::now();
    acq.stop();
    assert!(acq.join(Duration::from_secs(2)));
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[test]
fn bad_layouts_are_refused_with_their_name() {
    let server_port = 1;
    let mut b = layout(200, 4); // 201 registers in one read
    let ring: Arc<dyn BlockSink> = Arc::new(RwLock::new(
        SampleRing::<f32>::new(1, 4096, 8000.0).unwrap(),
    ));
    let limiter = Arc::new(RateLimiter::new(100.0).unwrap());
    let err = WaveformAcquisition::new(
        settings(server_port),
        vec![(b.clone(), Arc::clone(&ring))],
        Arc::clone(&limiter),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .starts_with("waveform \"vib\": 201 registers"),
        "{err}"
    );
    b = layout(32, 3);
    let err = WaveformAcquisition::new(settings(server_port), vec![(b, ring)], limiter)
        .err()
        .unwrap();
    assert!(err.to_string().contains("power of two"), "{err}");
    assert!(RateLimiter::new(0.0).is_err());
}

#[test]
fn unwrap_picks_the_lap_the_clock_says() {
    assert_eq!(unwrap(5, 0.0), 5);
    assert_eq!(unwrap(5, 65541.0), 65541);
    assert_eq!(unwrap(5, 3.0 * 65536.0), 3 * 65536 + 5);
    assert_eq!(unwrap(100, 30.0), 100); // never less than the counter says
}

#[test]
fn the_client_can_only_issue_read_functions_3_and_4() {
    // Read-only by construction: the one enum of function codes has two members.
    let source = include_str!("../modbus_tcp.rs");
    let codes: Vec<&str> = source
        .lines()
        .filter(|l| l.contains("=> ") && l.trim_start().starts_with("ReadFunction::"))
        .collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    assert!(codes[0].trim_end().ends_with("=> 3,") && codes[1].trim_end().ends_with("=> 4,"));
    assert!(!source.to_lowercase().contains("write_register"));
}
