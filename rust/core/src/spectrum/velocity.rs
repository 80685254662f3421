//! Vibration severity: velocity RMS (mm/s) from acceleration, as ISO 20816 measures it.
//!
//! Velocity is acceleration integrated once; in the frequency domain that is a division of
//! each component by `2 pi f`. Restricting the sum to a band (10-1000 Hz for ISO 20816-3
//! machines) keeps the 1/f^2 gain from amplifying low-frequency drift and noise.

use std::f64::consts::PI;
use std::ops::Range;
use std::str::FromStr;

use super::bands::band_bins;
use super::fft::PlannedRealFft;
use super::stats::finite_mean;
use super::window::{Window, WindowKind};
use super::{Result, SpectrumError};

/// Standard gravity in m/s^2 (ISO 80000-3), for accelerations given in g.
pub const STANDARD_GRAVITY: f64 = 9.806_65;

/// Units of an acceleration signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelUnits {
    /// Standard gravity, 9.80665 m/s^2.
    G,
    /// Metres per second squared.
    MetersPerSecondSquared,
}

impl AccelUnits {
    /// Factor converting a value in these units to m/s^2.
    pub fn to_si(self) -> f64 {
        match self {
            AccelUnits::G => STANDARD_GRAVITY,
            AccelUnits::MetersPerSecondSquared => 1.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AccelUnits::G => "g",
            AccelUnits::MetersPerSecondSquared => "m/s2",
        }
    }
}

impl FromStr for AccelUnits {
    type Err = SpectrumError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "g" | "G" => Ok(AccelUnits::G),
            "m/s2" | "m/s^2" | "m/s²" | "m s-2" => Ok(AccelUnits::MetersPerSecondSquared),
            _ => Err(SpectrumError::UnknownUnits(s.to_string())),
        }
    }
}

/// Precomputed integration of one-sided power spectra to velocity over a band.
#[derive(Debug, Clone)]
pub struct VelocityIntegrator {
    bins: Range<usize>,
    /// `c_k / (2 pi f_k)^2` per bin of the band (c_k: one-sided factor).
    weights: Vec<f64>,
    /// Turns the weighted sum of `|X_k|^2` into (mm/s)^2.
    scale: f64,
}

impl VelocityIntegrator {
    /// For `n`-point spectra of frames windowed by `window`, acceleration in `units`.
    pub fn new(
        band: (f64, f64),
        sample_rate: f64,
        window: &Window,
        units: AccelUnits,
    ) -> Result<Self> {
        let n = window.len();
        let bins = band_bins("velocity band", band, sample_rate, n, f64::MIN_POSITIVE)?;
        let resolution = sample_rate / n as f64;
        let weights = bins
            .clone()
            .map(|k| {
                let one_sided = if k == 0 || (n % 2 == 0 && k == n / 2) {
                    1.0
                } else {
                    2.0
                };
                let omega = 2.0 * PI * k as f64 * resolution;
                one_sided / (omega * omega)
            })
            .collect();
        // Parseval with the window's energy correction, m/s -> mm/s.
        let si = units.to_si() * 1000.0;
        let scale = si * si / (n as f64 * window.sum_squares());
        Ok(VelocityIntegrator {
            bins,
            weights,
            scale,
        })
    }

    /// Velocity RMS in mm/s from a power spectrum `|X_k|^2` (all `n / 2 + 1` bins).
    pub fn rms_mm_s(&self, power: &[f64]) -> f64 {
        let band = &power[self.bins.clone()];
        let mut acc = [0.0f64; 4];
        let mut tail = 0.0;
        let chunks = band.len() / 4;
        for c in 0..chunks {
            for l in 0..4 {
                let i = c * 4 + l;
                acc[l] += band[i] * self.weights[i];
            }
        }
        for i in chunks * 4..band.len() {
            tail += band[i] * self.weights[i];
        }
        (((acc[0] + acc[2]) + (acc[1] + acc[3]) + tail) * self.scale).sqrt()
    }
}

/// Velocity RMS in mm/s over `band` (Hz) of an acceleration record in `units`, by
/// integration in the frequency domain: one Hann-windowed FFT of the whole record (mean
/// removed), each component divided by `2 pi f`, the power summed over the band with the
/// window's energy correction. This is the broadband severity of ISO 20816 (10-1000 Hz
/// for most machines; 2-1000 Hz for slow ones).
pub fn velocity_rms(
    accel: &[f64],
    sample_rate: f64,
    band: (f64, f64),
    units: AccelUnits,
) -> Result<f64> {
    if !(sample_rate.is_finite() && sample_rate > 0.0) {
        return Err(SpectrumError::BadParameter {
            name: "sample_rate",
            expected: "a positive number of Hz",
            got: sample_rate.to_string(),
        });
    }
    if accel.len() < 4 {
        return Err(SpectrumError::BadSignal(format!(
            "accel needs at least 4 samples, got {}",
            accel.len()
        )));
    }
    let mean = finite_mean(accel).ok_or_else(|| {
        SpectrumError::BadSignal("accel contains NaN or infinite samples".to_string())
    })?;
    let window = Window::periodic(WindowKind::Hann, accel.len());
    let integrator = VelocityIntegrator::new(band, sample_rate, &window, units)?;
    let mut fft = PlannedRealFft::new(accel.len());
    for ((dst, &x), &w) in fft
        .input_mut()
        .iter_mut()
        .zip(accel)
        .zip(window.coefficients())
    {
        *dst = (x - mean) * w;
    }
    let power: Vec<f64> = fft.process().iter().map(|c| c.norm_sqr()).collect();
    Ok(integrator.rms_mm_s(&power))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amp: f64, freq: f64, fs: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| amp * (2.0 * PI * freq * i as f64 / fs + 0.7).sin())
            .collect()
    }

    #[test]
    fn sine_of_one_g_at_100_hz() {
        // v = a / (2 pi f): 9.80665 m/s^2 peak at 100 Hz -> 15.608 mm/s peak -> 11.037 mm/s RMS.
        let fs = 10_000.0;
        let accel = sine(1.0, 100.0, fs, 20_000);
        let v = velocity_rms(&accel, fs, (10.0, 1000.0), AccelUnits::G).unwrap();
        let expected = STANDARD_GRAVITY / (2.0 * PI * 100.0) * 1000.0 / 2f64.sqrt();
        assert!((v / expected - 1.0).abs() < 0.005, "{v} vs {expected}");
        let si = velocity_rms(
            &accel,
            fs,
            (10.0, 1000.0),
            AccelUnits::MetersPerSecondSquared,
        )
        .unwrap();
        assert!((v / si - STANDARD_GRAVITY).abs() < 1e-9);
    }

    #[test]
    fn components_outside_the_band_do_not_count() {
        let fs = 10_000.0;
        let accel = sine(1.0, 2_000.0, fs, 10_000);
        let v = velocity_rms(&accel, fs, (10.0, 1000.0), AccelUnits::G).unwrap();
        assert!(v < 1e-3, "{v}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let fs = 1000.0;
        let x = sine(1.0, 50.0, fs, 1000);
        assert!(velocity_rms(&x, fs, (0.0, 400.0), AccelUnits::G).is_err());
        assert!(velocity_rms(&x, fs, (10.0, 600.0), AccelUnits::G).is_err());
        assert!(velocity_rms(&x, -1.0, (10.0, 400.0), AccelUnits::G).is_err());
        let mut y = x.clone();
        y[10] = f64::NAN;
        assert!(velocity_rms(&y, fs, (10.0, 400.0), AccelUnits::G).is_err());
        assert!("furlongs".parse::<AccelUnits>().is_err());
    }
}
