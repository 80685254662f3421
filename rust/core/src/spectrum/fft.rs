//! A real-input FFT planned once, with its buffers, so that a frame costs no allocation.

use std::fmt;
use std::sync::Arc;

use num_complex::Complex64;
use realfft::{RealFftPlanner, RealToComplex};

/// Forward real FFT of a fixed length with preallocated input, output and scratch.
pub struct PlannedRealFft {
    plan: Arc<dyn RealToComplex<f64>>,
    input: Vec<f64>,
    output: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

impl fmt::Debug for PlannedRealFft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedRealFft")
            .field("len", &self.input.len())
            .finish()
    }
}

impl PlannedRealFft {
    /// Plans a transform of `len` real samples (`len >= 1`; any length, fastest for 2^k).
    pub fn new(len: usize) -> Self {
        let mut planner = RealFftPlanner::<f64>::new();
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
    pub fn input_mut(&mut self) -> &mut [f64] {
        &mut self.input
    }

    /// Transforms the input buffer; returns the one-sided spectrum (numpy `rfft` convention:
    /// unnormalised, `X[k] = sum x[n] exp(-2 pi i k n / N)`).
    pub fn process(&mut self) -> &[Complex64] {
        // Lengths are fixed by construction, so this cannot fail.
        let _ =
            self.plan
                .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch);
        &self.output
    }

    /// Transforms `x` (copied into the input buffer; must have the planned length).
    pub fn forward(&mut self, x: &[f64]) -> &[Complex64] {
        self.input.copy_from_slice(x);
        self.process()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_direct_dft() {
        let n = 12;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 - 1.5).collect();
        let mut fft = PlannedRealFft::new(n);
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
}
