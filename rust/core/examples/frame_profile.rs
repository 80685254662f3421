//! Where one reference frame's time goes: 4096 points, hann, 8 bands, 5 peaks, in each
//! precision, beside the bare real FFT. For profiling (`perf record` this binary); the
//! figures that count are the ratios in `benches/`, measured beside their baselines.
//!
//! `cargo run --release -p isthmus-core --example frame_profile [-- --repeat N]`

use std::hint::black_box;
use std::time::Instant;

use isthmus_core::spectrum::{
    frame_stats_and_window, power_spectrum, top_local_maxima, AnalyzerConfig, Detrend,
    FeatureBatch, PlannedRealFft, Precision, Real, SpectrumAnalyzer, Window, WindowKind,
};

const FRAME: usize = 4096;
const HOP: usize = 2048;
const FRAMES: usize = 32;

/// Best of five runs of `reps` calls, in microseconds per call.
fn best_us(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64 * 1e6
        })
        .fold(f64::INFINITY, f64::min)
}

/// A sine at 1234.5 Hz in uniform noise, sampled at 25.6 kHz.
fn signal(n: usize) -> Vec<f32> {
    let mut state = 12_345u64;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            let t = i as f64 / 25_600.0;
            (0.5 * (2.0 * std::f64::consts::PI * 1234.5 * t).sin() + 0.2 * noise) as f32
        })
        .collect()
}

fn profile<T: Real>(x: &[f32], precision: Precision, repeat: usize) {
    let name = precision.name();
    let frame: Vec<T> = x[..FRAME].iter().map(|&v| T::narrow(v.into())).collect();
    let window = Window::periodic(WindowKind::Hann, FRAME);
    let coefficients: Vec<T> = window
        .coefficients()
        .iter()
        .map(|&w| T::narrow(w))
        .collect();
    let mut fft = PlannedRealFft::<T>::new(FRAME);
    let fft_us = best_us(repeat * FRAMES, || {
        fft.input_mut().copy_from_slice(&frame);
        black_box(fft.process());
    });
    let stats_us = best_us(repeat * FRAMES, || {
        black_box(frame_stats_and_window(
            &frame,
            0.0,
            Detrend::Mean,
            &coefficients,
            fft.input_mut(),
        ));
    });
    let spectrum = fft.process().to_vec();
    let mut power = vec![0.0; FRAME / 2 + 1];
    let power_us = best_us(repeat * FRAMES, || {
        black_box(power_spectrum(&spectrum, &mut power, FRAME));
    });
    let mut peaks = Vec::with_capacity(6);
    let peaks_us = best_us(repeat * FRAMES, || top_local_maxima(&power, 5, &mut peaks));

    let config = AnalyzerConfig {
        bands: (0..8)
            .map(|i| (i as f64 * 1e3, (i + 1) as f64 * 1e3))
            .collect(),
        precision,
        ..AnalyzerConfig::new(25_600.0)
    };
    let mut analyzer = SpectrumAnalyzer::new(config).expect("reference configuration");
    let mut out = FeatureBatch::for_config(analyzer.config());
    let _ = analyzer.feed(&x[..FRAME - HOP], FRAME - HOP, &mut out);
    let block = &x[FRAME - HOP..FRAME - HOP + FRAMES * HOP];
    let frame_us = best_us(repeat, || {
        out = FeatureBatch::for_config(analyzer.config());
        let _ = analyzer.feed(black_box(block), block.len(), &mut out);
    }) / FRAMES as f64;

    println!(
        "{name}: all features {frame_us:.2} us/frame = {:.2}x one realfft transform",
        frame_us / fft_us
    );
    println!("  real FFT {fft_us:.2} us, stats+window {stats_us:.2} us, power {power_us:.2} us, 5 peaks {peaks_us:.2} us");
}

fn main() {
    let repeat = std::env::args()
        .skip_while(|a| a != "--repeat")
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(100);
    let x = signal(FRAME + FRAMES * HOP);
    profile::<f32>(&x, Precision::Float32, repeat);
    profile::<f64>(&x, Precision::Float64, repeat);
}
