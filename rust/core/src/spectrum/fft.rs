//! A real-input FFT planned once, with its buffers, so that a frame costs no allocation.

use std::fmt;
use std::sync::Arc;

use num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use super::precision::Real;

/// Forward real FFT of a fixed length with preallocated input, output and scratch, in `f64`
/// or `f32` (rustfft picks AVX, SSE or NEON kernels at run time).
pub struct PlannedRealFft<T: Real = f64> {
    plan: Arc<dyn RealToComplex<T>>,
    input: Vec<T>,
    output: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
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
        PlannedRealFft {
            plan,
            input,
            output,
            scratch,
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
}
