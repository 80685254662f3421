//! Broadband velocity RMS from acceleration, the measure ISO 20816-3 zones use.

use super::{param, DiagnosticsError};
use realfft::RealFftPlanner;

const G: f64 = 9.806_65;

/// Velocity RMS in mm/s over `band` (Hz) of an acceleration record in g, by integration in
/// the frequency domain: each bin of the (mean-removed, un-windowed) spectrum is divided by
/// 2 pi f, and Parseval sums the bins inside the band.
pub fn velocity_rms_mm_s(
    accel_g: &[f64],
    sample_rate: f64,
    band: (f64, f64),
) -> Result<f64, DiagnosticsError> {
    if !(sample_rate.is_finite() && sample_rate > 0.0) {
        return Err(param("sample_rate", "must be positive"));
    }
    let (lo, hi) = band;
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
        return Err(param(
            "band",
            format!("must be 0 < lo < hi, got ({lo}, {hi})"),
        ));
    }
    let n = accel_g.len();
    if n < 16 {
        return Err(param(
            "accel",
            format!("needs at least 16 samples, got {n}"),
        ));
    }
    if accel_g.iter().any(|v| !v.is_finite()) {
        return Err(param("accel", "contains NaN or infinity"));
    }
    let mean = accel_g.iter().sum::<f64>() / n as f64;
    let mut buf: Vec<f64> = accel_g.iter().map(|v| (v - mean) * G * 1000.0).collect();
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let mut spec = fft.make_output_vec();
    fft.process(&mut buf, &mut spec)
        .map_err(|e| param("accel", e.to_string()))?;
    let df = sample_rate / n as f64;
    let mut power = 0.0;
    for (k, c) in spec.iter().enumerate().skip(1) {
        let f = k as f64 * df;
        if f < lo || f > hi {
            continue;
        }
        // one-sided: bins other than Nyquist count twice
        let weight = if n % 2 == 0 && k == n / 2 { 1.0 } else { 2.0 };
        let w = 2.0 * std::f64::consts::PI * f;
        power += weight * c.norm_sqr() / (w * w);
    }
    Ok((power / (n as f64 * n as f64)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_velocity_matches_closed_form() {
        // 1 g peak at 50 Hz: velocity peak = 9806.65 / (2 pi 50) mm/s, RMS = peak / sqrt 2.
        let fs = 10_000.0;
        let x: Vec<f64> = (0..100_000)
            .map(|i| (2.0 * std::f64::consts::PI * 50.0 * i as f64 / fs).sin())
            .collect();
        let v = velocity_rms_mm_s(&x, fs, (10.0, 1000.0)).unwrap();
        let expect = 9806.65 / (2.0 * std::f64::consts::PI * 50.0) / 2f64.sqrt();
        assert!((v / expect - 1.0).abs() < 1e-3, "{v} vs {expect}");
        // outside the band: nothing
        let v = velocity_rms_mm_s(&x, fs, (100.0, 1000.0)).unwrap();
        assert!(v < expect * 1e-3);
    }
}
