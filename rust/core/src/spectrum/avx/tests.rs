//! Each kernel against its portable twin: bit-identical results (the fused untangling within
//! f32 precision of the full transform) for every length 0..=80 and some odd and large ones,
//! on finite data and on data salted with NaN, +-inf, -0, ties and f32-overflowing values.
//! The analyzer and the planner are also driven through every small frame size: no panic.

use super::super::bands::{power_spectrum, power_spectrum_portable_for_tests};
use super::super::peaks::{top_local_maxima, top_local_maxima_portable_for_tests};
use super::super::precision::Real;
use super::super::stats::{
    central_stats_portable_for_tests, finite_mean, finite_mean_portable_for_tests,
    frame_stats_and_window, frame_sum_f32, frame_sum_f64, frame_sum_portable, Detrend, FrameStats,
};
use super::super::{AnalyzerConfig, PlannedRealFft, Precision, SpectrumAnalyzer};
use num_complex::Complex;
use rustfft::FftPlanner;

/// Whether the kernels are in use here; without AVX only the portable loops run.
fn avx_in_use() -> bool {
    let detected = super::detected();
    if !detected {
        eprintln!("no AVX on this CPU: the portable loops are the only ones in use");
    }
    detected
}

fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (0..=80).collect();
    v.extend([127, 128, 129, 255, 256, 257, 4095, 4096, 4097]);
    v
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 53) as f64
    }
}

/// Data of length `n`; `salt` 0 = plain finite, 1 = NaN/inf salted, 2 = many ties/zeros,
/// 3 = huge magnitudes (f32 overflow in squares), 4 = all NaN, 5 = negative & -inf.
fn data(n: usize, seed: u64, salt: u32) -> Vec<f64> {
    let mut r = Rng(seed ^ 0x9e3779b97f4a7c15);
    (0..n)
        .map(|i| {
            let u = r.unit();
            let base = 3.0 + (u - 0.5) + 0.7 * (i as f64 * 0.37).sin();
            match salt {
                0 => base,
                1 => match r.next() % 11 {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => f64::NEG_INFINITY,
                    3 => -0.0,
                    _ => base,
                },
                2 => [0.0, 2.0, 1.0, 2.0, 2.0, 0.0][(r.next() % 6) as usize],
                3 => base * 1e30,
                4 => f64::NAN,
                _ => match r.next() % 5 {
                    0 => f64::NEG_INFINITY,
                    1 => -base,
                    2 => f64::NAN,
                    _ => base,
                },
            }
        })
        .collect()
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_stats(a: &FrameStats, b: &FrameStats) -> bool {
    [
        (a.mean, b.mean),
        (a.rms, b.rms),
        (a.peak, b.peak),
        (a.peak_to_peak, b.peak_to_peak),
        (a.crest_factor, b.crest_factor),
        (a.std, b.std),
        (a.skewness, b.skewness),
        (a.kurtosis, b.kurtosis),
    ]
    .iter()
    .all(|&(x, y)| same(x, y))
}

fn same_slice<T: Copy + Into<f64>>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| same(x.into(), y.into()))
}

/// The kernel-backed central statistics against the portable loop, outputs included.
fn check_central_stats<T: Real>(x: &[T], mean: f64, detrend: Detrend, w: &[T], what: &str) {
    let n = x.len();
    let (mut a, mut b) = (vec![T::default(); n], vec![T::default(); n]);
    let fast = frame_stats_and_window(x, mean, detrend, w, &mut a);
    let slow = central_stats_portable_for_tests(x, mean, detrend, w, &mut b);
    assert!(
        same_stats(&fast, &slow) && same_slice(&a, &b),
        "{what}: {fast:?} vs {slow:?}"
    );
}

/// The kernel-backed power spectrum and its sums against the portable loop.
fn check_power_sums<T: Real>(spectrum: &[Complex<T>], n: usize, what: &str) {
    let bins = spectrum.len();
    let (mut a, mut b) = (vec![0.0; bins], vec![0.0; bins]);
    let fast = power_spectrum(spectrum, &mut a, n);
    let slow = power_spectrum_portable_for_tests(spectrum, &mut b, n);
    assert!(
        same(fast.total, slow.total) && same(fast.moment, slow.moment) && same_slice(&a, &b),
        "{what}"
    );
}

#[test]
fn exhaustive_sums_and_central_stats() {
    if !avx_in_use() {
        return;
    }
    for n in lengths() {
        for salt in 0..6 {
            let x = data(n, n as u64 * 7 + salt as u64, salt);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            // Raw sums (AVX dispatcher) vs the portable layout, NaN/inf included.
            let (fast, slow) = (frame_sum_f64(&x), frame_sum_portable(&x));
            assert!(same(fast, slow), "sum f64 n {n} salt {salt}");
            let (fast, slow) = (frame_sum_f32(&x32), frame_sum_portable(&x32));
            assert!(same(fast, slow), "sum f32 n {n} salt {salt}");
            assert_eq!(finite_mean(&x), finite_mean_portable_for_tests(&x));
            assert_eq!(finite_mean(&x32), finite_mean_portable_for_tests(&x32));
            if n == 0 {
                continue;
            }
            let w: Vec<f64> = (0..n).map(|i| 0.5 + (i % 5) as f64 * 0.1).collect();
            let w32: Vec<f32> = w.iter().map(|&v| v as f32).collect();
            // Any mean, including a non-finite one (the function is public).
            let means = [
                finite_mean(&x).unwrap_or(0.0),
                0.0,
                -1.5,
                f64::NAN,
                f64::INFINITY,
            ];
            for mean in means {
                for detrend in [Detrend::Mean, Detrend::None] {
                    let what = format!("n {n} salt {salt} mean {mean} {detrend:?}");
                    check_central_stats(&x, mean, detrend, &w, &format!("f64 {what}"));
                    check_central_stats(&x32, mean, detrend, &w32, &format!("f32 {what}"));
                }
            }
        }
    }
}

#[test]
fn exhaustive_power_sums() {
    if !avx_in_use() {
        return;
    }
    for bins in lengths() {
        for salt in 0..6 {
            let re = data(bins, bins as u64 + 100 * salt as u64, salt);
            let im = data(bins, bins as u64 + 1000 + 100 * salt as u64, salt);
            let s64: Vec<Complex<f64>> = re
                .iter()
                .zip(&im)
                .map(|(&a, &b)| Complex::new(a, b))
                .collect();
            let s32: Vec<Complex<f32>> = s64
                .iter()
                .map(|c| Complex::new(c.re as f32, c.im as f32))
                .collect();
            // Every n that gives this many bins, and some that don't (n is only used for the
            // one-sided correction).
            for n in [2 * bins.max(1) - 2, 2 * bins.max(1) - 1, 0, 1, 2 * bins + 7] {
                check_power_sums(&s64, n, &format!("f64 bins {bins} n {n} salt {salt}"));
                check_power_sums(&s32, n, &format!("f32 bins {bins} n {n} salt {salt}"));
            }
        }
    }
}

#[test]
fn exhaustive_local_maxima() {
    if !avx_in_use() {
        return;
    }
    for n in lengths() {
        for salt in 0..6 {
            let p = data(n, 31 * n as u64 + salt as u64, salt);
            let p_abs: Vec<f64> = p.iter().map(|v| v.abs()).collect();
            for power in [&p, &p_abs] {
                for count in [0, 1, 2, 3, 5, 17, n / 2, n, n + 3] {
                    let (mut a, mut b) = (vec![99], vec![98]);
                    top_local_maxima(power, count, &mut a);
                    top_local_maxima_portable_for_tests(power, count, &mut b);
                    assert_eq!(a, b, "n {n} salt {salt} count {count}");
                }
            }
        }
    }
}

/// The half-length plan's inputs for a frame of `2 m` samples: z = FFT(pairs), twiddles.
fn half_inputs(x: &[f32]) -> (Vec<Complex<f32>>, Vec<Complex<f32>>) {
    let n = x.len();
    let m = n / 2;
    let mut z: Vec<Complex<f32>> = x
        .chunks_exact(2)
        .map(|c| Complex::new(c[0], c[1]))
        .collect();
    FftPlanner::<f32>::new().plan_fft_forward(m).process(&mut z);
    let tw = (0..m)
        .map(|k| {
            let angle = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
            Complex::new((-0.5 * angle.cos()) as f32, (-0.5 * angle.sin()) as f32)
        })
        .collect();
    (z, tw)
}

#[test]
fn exhaustive_untangled_power() {
    if !avx_in_use() {
        return;
    }
    let mut lens: Vec<usize> = (1..=80).collect();
    lens.extend([127, 128, 129, 255, 256, 257, 2047, 2048, 2049]);
    for m in lens {
        let n = 2 * m;
        for salt in [0u32, 2, 3] {
            let x: Vec<f32> = data(n, m as u64 + salt as u64, salt)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let (z, tw) = half_inputs(&x);
            let mut fused = vec![-1.0; m + 1];
            // Direct kernel call, for every m >= 1 (the planner only uses m >= 8).
            let (total, moment) = unsafe { super::untangled_power(&z, &tw, &mut fused) };
            let mut plain = vec![0.0; m + 1];
            let mut fft = PlannedRealFft::<f32>::new(n);
            let spectrum = fft.forward(&x).to_vec();
            let _ = power_spectrum(&spectrum, &mut plain, n);
            let scale = plain.iter().cloned().fold(0.0, f64::max);
            let (mut t, mut mo) = (0.0, 0.0);
            for (k, (a, b)) in fused.iter().zip(&plain).enumerate() {
                assert!(
                    same(*a, *b) || (a - b).abs() <= 2e-5 * scale,
                    "m {m} salt {salt} bin {k}: {a} vs {b}"
                );
                t += b;
                mo += k as f64 * b;
            }
            if scale.is_finite() {
                assert!((total - t).abs() <= 2e-5 * t.abs().max(scale), "m {m}");
                assert!(
                    (moment - mo).abs() <= 2e-5 * mo.abs().max(scale * m as f64),
                    "m {m}"
                );
            }
            // And through the public planner (power of every length).
            let mut via = vec![0.0; fft.bins()];
            fft.input_mut().copy_from_slice(&x);
            let _ = fft.power(&mut via);
            for (k, (a, b)) in via.iter().zip(&plain).enumerate() {
                assert!(
                    same(*a, *b) || (a - b).abs() <= 2e-5 * scale,
                    "planner n {n} bin {k}: {a} vs {b}"
                );
            }
        }
    }
}

/// `PlannedRealFft::power` (the fused route where it applies) against the full transform
/// squared, for `T`: within `rtol` of the largest bin on finite data, non-finite totals on
/// data with NaN or infinity (bad samples must show, not vanish).
fn check_planner_power<T: Real>(x: &[f64], finite: bool, rtol: f64, what: &str) {
    let x: Vec<T> = x.iter().map(|&v| T::narrow(v)).collect();
    let mut fft = PlannedRealFft::<T>::new(x.len());
    let mut fused = vec![0.0; fft.bins()];
    fft.input_mut().copy_from_slice(&x);
    let sums = fft.power(&mut fused);
    if !finite {
        assert!(!sums.total.is_finite(), "{what}: total {}", sums.total);
        return;
    }
    let spectrum = fft.forward(&x).to_vec();
    let mut plain = vec![0.0; fft.bins()];
    let want = power_spectrum(&spectrum, &mut plain, x.len());
    let scale = plain.iter().cloned().fold(0.0, f64::max);
    for (k, (a, b)) in fused.iter().zip(&plain).enumerate() {
        assert!((a - b).abs() <= rtol * scale, "{what} bin {k}: {a} vs {b}");
    }
    assert!(
        (sums.total - want.total).abs() <= rtol * want.total.max(scale),
        "{what}"
    );
}

#[test]
fn planner_power_every_length_and_nonfinite() {
    for n in lengths().into_iter().filter(|&n| n >= 1) {
        // Salt 3 is left out: its f32 squares overflow, which the kernel tests cover.
        for salt in [0u32, 1, 2, 4, 5] {
            let x = data(n, n as u64 + 5, salt);
            let finite = x.iter().all(|v| v.is_finite());
            let what = format!("n {n} salt {salt}");
            check_planner_power::<f32>(&x, finite, 2e-5, &format!("f32 {what}"));
            check_planner_power::<f64>(&x, finite, 1e-12, &format!("f64 {what}"));
        }
    }
}

#[test]
fn analyzer_every_small_frame_never_panics() {
    for frame in (4..=80).chain([127, 128, 129, 255, 256, 257]) {
        for precision in [Precision::Float32, Precision::Float64] {
            for salt in [0u32, 1, 2, 3] {
                let cfg = AnalyzerConfig {
                    frame,
                    hop: (frame / 3).max(1),
                    peaks: frame / 2,
                    average: 2,
                    precision,
                    bands: vec![(0.0, 100.0)],
                    ..AnalyzerConfig::new(1000.0)
                };
                let hop = cfg.hop;
                let mut a = SpectrumAnalyzer::new(cfg).unwrap();
                let x = data(3 * frame + 1, frame as u64, salt);
                let mut out = a.empty_batch();
                a.feed(&x, x.len(), &mut out).unwrap();
                let frames = (x.len() - frame) / hop + 1;
                assert_eq!(out.len(), frames, "frame {frame} {precision:?} salt {salt}");
                if x.iter().all(|v| v.is_finite()) {
                    assert_eq!(a.invalid_frames(), vec![0], "frame {frame} salt {salt}");
                }
                let _ = a.psd(super::super::PsdScaling::Density);
                let _ = a.amplitude_spectrum();
            }
        }
    }
}

#[test]
fn fuzz_local_maxima_small_alphabets() {
    if !avx_in_use() {
        return;
    }
    let alphabet = [
        0.0,
        -0.0,
        1.0,
        2.0,
        3.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut r = Rng(12345);
    for case in 0..30_000u64 {
        let n = match case % 4 {
            0 => (r.next() % 40) as usize,
            1 => (r.next() % 300) as usize,
            2 => 1000 + (r.next() % 1200) as usize,
            _ => (r.next() % 5000) as usize,
        };
        let k = 2 + (r.next() % 7) as usize;
        let power: Vec<f64> = (0..n)
            .map(|_| alphabet[(r.next() % k as u64) as usize])
            .collect();
        let count = 1 + (r.next() % (n as u64 / 2 + 2)) as usize;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        top_local_maxima(&power, count, &mut a);
        top_local_maxima_portable_for_tests(&power, count, &mut b);
        assert_eq!(a, b, "case {case} n {n} count {count}");
    }
}

#[test]
fn an_empty_spectrum_has_zero_sums() {
    let empty: [Complex<f64>; 0] = [];
    let sums = power_spectrum(&empty, &mut [], 0);
    assert_eq!((sums.total, sums.moment), (0.0, 0.0));
}
