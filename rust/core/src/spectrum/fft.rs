//! A real-input FFT planned once, with its buffers, so that a frame costs no allocation.

use std::fmt;
use std::sync::Arc;

use num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

use super::bands::{one_sided, power_spectrum, PowerSums};
use super::precision::Real;

/// The fast route to a power spectrum: the half-length complex FFT of the sample pairs,
/// untangled into the real spectrum and squared in one fused pass.
struct HalfLengthPlan<T: Real> {
    fft: Arc<dyn Fft<T>>,
    z: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
    /// `-(cos, sin)(2 pi k / N) / 2` for k < N / 2.
    twiddles: Vec<Complex<T>>,
}

impl<T: Real> HalfLengthPlan<T> {
    fn new(len: usize) -> Self {
        let m = len / 2;
        let fft = FftPlanner::<T>::new().plan_fft_forward(m);
        let zero = Complex::new(T::zero(), T::zero());
        let twiddles = (0..m)
            .map(|k| {
                let angle = 2.0 * std::f64::consts::PI * k as f64 / len as f64;
                Complex::new(T::narrow(-0.5 * angle.cos()), T::narrow(-0.5 * angle.sin()))
            })
            .collect();
        HalfLengthPlan {
            scratch: vec![zero; fft.get_outofplace_scratch_len()],
            z: vec![zero; m],
            fft,
            twiddles,
        }
    }
}

/// Forward real FFT of a fixed length with preallocated input, output and scratch, in `f64`
/// or `f32` (rustfft picks AVX, SSE or NEON kernels at run time).
pub struct PlannedRealFft<T: Real = f64> {
    plan: Arc<dyn RealToComplex<T>>,
    input: Vec<T>,
    output: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
    half: Option<HalfLengthPlan<T>>,
}

impl<T: Real> fmt::Debug for PlannedRealFft<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedRealFft")
            .field("len", &self.input.len())
            .finish()
    }
}

impl<T: Real> PlannedRealFft<T> {
    /// Plans a transform of `len` real samples (`len >= 1`; any length, fastest for 2^k).
    pub fn new(len: usize) -> Self {
        let mut planner = RealFftPlanner::<T>::new();
        let plan = planner.plan_fft_forward(len.max(1));
        let input = plan.make_input_vec();
        let output = plan.make_output_vec();
        let scratch = plan.make_scratch_vec();
        let half = (len % 2 == 0 && len >= 16 && T::has_untangled_power())
            .then(|| HalfLengthPlan::new(len));
        PlannedRealFft {
            plan,
            input,
            output,
            scratch,
            half,
        }
    }

    /// Number of real input samples.
    pub fn len(&self) -> usize {
        self.input.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// Number of one-sided output bins, `len / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.output.len()
    }

    /// The input buffer: fill it, then call [`Self::process`]. Its contents are destroyed.
    pub fn input_mut(&mut self) -> &mut [T] {
        &mut self.input
    }

    /// Transforms the input buffer; returns the one-sided spectrum (numpy `rfft` convention:
    /// unnormalised, `X[k] = sum x[n] exp(-2 pi i k n / N)`).
    pub fn process(&mut self) -> &[Complex<T>] {
        // Lengths are fixed by construction, so this cannot fail.
        let _ =
            self.plan
                .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch);
        &self.output
    }

    /// Transforms the input buffer (destroying it) into the power spectrum `|X_k|^2`
    /// (`power` has [`Self::bins`] values) and returns its one-sided totals: the same as
    /// [`Self::process`] then [`power_spectrum`], faster where a fused kernel exists (f32,
    /// even lengths, AVX).
    pub fn power(&mut self, power: &mut [f64]) -> PowerSums {
        let n = self.input.len();
        let Some(half) = &mut self.half else {
            return power_spectrum(self.process(), power, n);
        };
        // SAFETY: Complex<T> is repr(C) {re, im} of two T with T's alignment, and n is even:
        // the input is exactly n / 2 complex values, z[j] = x[2j] + i x[2j+1].
        let pairs = unsafe {
            std::slice::from_raw_parts_mut(self.input.as_mut_ptr() as *mut Complex<T>, n / 2)
        };
        half.fft
            .process_outofplace_with_scratch(pairs, &mut half.z, &mut half.scratch);
        let raw = T::untangled_power(&half.z, &half.twiddles, power);
        one_sided(raw, power, n)
    }

    /// Transforms `x` (copied into the input buffer; must have the planned length).
    pub fn forward(&mut self, x: &[T]) -> &[Complex<T>] {
        self.input.copy_from_slice(x);
        self.process()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_complex::Complex64;

    #[test]
    fn matches_a_direct_dft() {
        let n = 12;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 - 1.5).collect();
        let mut fft = PlannedRealFft::<f64>::new(n);
        assert_eq!(fft.bins(), 7);
        let spectrum = fft.forward(&x).to_vec();
        for (k, got) in spectrum.iter().enumerate() {
            let mut want = Complex64::new(0.0, 0.0);
            for (i, &v) in x.iter().enumerate() {
                let ph = -2.0 * std::f64::consts::PI * (k * i) as f64 / n as f64;
                want += Complex64::new(v * ph.cos(), v * ph.sin());
            }
            assert!((got - want).norm() < 1e-12, "bin {k}");
        }
    }

    #[test]
    fn single_precision_agrees_with_double() {
        let n = 4096;
        let x: Vec<f64> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
            .collect();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let want = PlannedRealFft::<f64>::new(n).forward(&x).to_vec();
        let got = PlannedRealFft::<f32>::new(n).forward(&x32).to_vec();
        let scale = want.iter().map(|c| c.norm()).fold(0.0, f64::max);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let g = Complex64::new(g.re.into(), g.im.into());
            assert!((g - w).norm() < 1e-5 * scale, "bin {k}");
        }
    }

    #[test]
    fn fused_power_matches_the_full_transform() {
        // Even lengths take the half-length route where a kernel exists (f32 on AVX); every
        // length must agree with process() + power_spectrum within f32 precision.
        for n in [4, 16, 18, 30, 32, 100, 1024, 4098] {
            let x: Vec<f32> = (0..n)
                .map(|i| (((i * 7919) % 1000) as f32 / 500.0 - 1.0) + 0.3)
                .collect();
            let mut fft = PlannedRealFft::<f32>::new(n);
            let mut fused = vec![0.0; fft.bins()];
            fft.input_mut().copy_from_slice(&x);
            let sums = fft.power(&mut fused);
            let mut plain = vec![0.0; fft.bins()];
            let spectrum = fft.forward(&x).to_vec();
            let want = power_spectrum(&spectrum, &mut plain, n);
            let scale = plain.iter().cloned().fold(0.0, f64::max);
            for (k, (a, b)) in fused.iter().zip(&plain).enumerate() {
                assert!((a - b).abs() <= 1e-5 * scale, "n {n} bin {k}: {a} vs {b}");
            }
            assert!(
                (sums.total - want.total).abs() <= 1e-5 * want.total,
                "n {n}"
            );
            assert!(
                (sums.moment - want.moment).abs() <= 1e-5 * want.moment,
                "n {n}"
            );
        }
    }
}
