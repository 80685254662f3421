//! Time-domain statistics of one frame, with detrending as `scipy.signal` does it.
//!
//! Sums use several independent accumulators so they vectorise; the order of operations
//! depends only on the frame's contents, never on how the stream was chunked.

use std::str::FromStr;

use super::SpectrumError;

/// What is removed from a frame before statistics and FFT (scipy's `detrend` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detrend {
    /// Nothing: the RMS includes the DC offset.
    None,
    /// The mean (scipy `"constant"`).
    Mean,
    /// The least-squares straight line (scipy `"linear"`).
    Linear,
}

impl Detrend {
    pub fn name(self) -> &'static str {
        match self {
            Detrend::None => "none",
            Detrend::Mean => "mean",
            Detrend::Linear => "linear",
        }
    }
}

impl FromStr for Detrend {
    type Err = SpectrumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "false" | "off" => Ok(Detrend::None),
            "mean" | "constant" => Ok(Detrend::Mean),
            "linear" => Ok(Detrend::Linear),
            _ => Err(SpectrumError::UnknownDetrend(s.to_string())),
        }
    }
}

/// Statistics of one frame. Shape statistics are of the detrended signal `y`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FrameStats {
    /// Mean of the raw samples.
    pub mean: f64,
    /// `sqrt(mean(y^2))`.
    pub rms: f64,
    /// `max |y|`.
    pub peak: f64,
    /// `max y - min y`.
    pub peak_to_peak: f64,
    /// `peak / rms` (NaN when rms is 0).
    pub crest_factor: f64,
    /// Population standard deviation of y (ddof = 0, numpy's default).
    pub std: f64,
    /// Skewness of y (biased, like `scipy.stats.skew`; NaN for a constant frame).
    pub skewness: f64,
    /// Pearson kurtosis of y (3 for a normal signal, `scipy.stats.kurtosis(fisher=False)`).
    pub kurtosis: f64,
}

/// Independent accumulators per sum: enough to hide FP-add latency and let the loops
/// vectorise, few enough to stay in registers.
const LANES: usize = 4;

#[inline]
fn combine(acc: [f64; LANES]) -> f64 {
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

super::simd::multiversion!(
    /// Mean of the frame, or `None` if any sample is NaN or infinite (or the sum overflows).
    pub fn finite_mean(x: &[f64]) -> Option<f64> => finite_mean_impl
);

#[inline(always)]
fn finite_mean_impl(x: &[f64]) -> Option<f64> {
    if x.is_empty() {
        return None;
    }
    let mut acc = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    let sum = combine(acc) + tail;
    // A NaN or infinity anywhere makes the sum non-finite.
    sum.is_finite().then(|| sum / x.len() as f64)
}

#[inline(always)]
/// Least-squares slope of `x` against centred time `n - (len - 1) / 2`.
fn linear_slope(x: &[f64]) -> f64 {
    let len = x.len() as f64;
    if x.len() < 2 {
        return 0.0;
    }
    let centre = (len - 1.0) / 2.0;
    let mut acc = [0.0f64; LANES];
    let mut t = [0.0f64; LANES];
    for (l, tl) in t.iter_mut().enumerate() {
        *tl = l as f64 - centre;
    }
    let chunks = x.chunks_exact(LANES);
    let rem = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] += t[l] * c[l];
            t[l] += LANES as f64;
        }
    }
    let mut tail = 0.0;
    for (i, &v) in rem.iter().enumerate() {
        tail += t[i] * v;
    }
    let stt = len * (len * len - 1.0) / 12.0;
    (combine(acc) + tail) / stt
}

super::simd::multiversion!(
    /// Statistics of `x` (which must be finite, with `mean` from [`finite_mean`]), and the
    /// detrended, windowed frame written into `windowed` (same length as `x` and `window`).
    pub fn frame_stats_and_window(
        x: &[f64],
        mean: f64,
        detrend: Detrend,
        window: &[f64],
        windowed: &mut [f64],
    ) -> FrameStats => frame_stats_and_window_impl
);

#[inline(always)]
fn frame_stats_and_window_impl(
    x: &[f64],
    mean: f64,
    detrend: Detrend,
    window: &[f64],
    windowed: &mut [f64],
) -> FrameStats {
    assert!(x.len() == window.len() && x.len() == windowed.len() && !x.is_empty());
    let n = x.len();
    let len = n as f64;
    let centre = (len - 1.0) / 2.0;
    let slope = if detrend == Detrend::Linear {
        linear_slope(x)
    } else {
        0.0
    };
    // d = x - mean - slope t is the deviation from the fitted trend (slope 0 unless linear);
    // the detrended signal is y = d + offset, with offset = 0 after mean or linear
    // detrending and the mean without. Moments of d are exact central moments of y.
    let offset = if detrend == Detrend::None { mean } else { 0.0 };

    let mut s2 = [0.0f64; LANES];
    let mut s3 = [0.0f64; LANES];
    let mut s4 = [0.0f64; LANES];
    let mut hi = [f64::NEG_INFINITY; LANES];
    let mut lo = [f64::INFINITY; LANES];
    let mut t = [0.0f64; LANES];
    for (l, tl) in t.iter_mut().enumerate() {
        *tl = l as f64 - centre;
    }
    let body = n - n % LANES;
    for ((xc, wc), oc) in x[..body]
        .chunks_exact(LANES)
        .zip(window[..body].chunks_exact(LANES))
        .zip(windowed[..body].chunks_exact_mut(LANES))
    {
        let mut d = [0.0f64; LANES];
        for l in 0..LANES {
            d[l] = xc[l] - mean - slope * t[l];
        }
        for l in 0..LANES {
            oc[l] = (d[l] + offset) * wc[l];
        }
        for l in 0..LANES {
            let d2 = d[l] * d[l];
            s2[l] += d2;
            s3[l] += d2 * d[l];
            s4[l] += d2 * d2;
        }
        for l in 0..LANES {
            hi[l] = if d[l] > hi[l] { d[l] } else { hi[l] };
            lo[l] = if d[l] < lo[l] { d[l] } else { lo[l] };
            t[l] += LANES as f64;
        }
    }
    for i in body..n {
        let l = i - body;
        let d = x[i] - mean - slope * t[l];
        windowed[i] = (d + offset) * window[i];
        let d2 = d * d;
        s2[l] += d2;
        s3[l] += d2 * d;
        s4[l] += d2 * d2;
        hi[l] = hi[l].max(d);
        lo[l] = lo[l].min(d);
    }
    let m2 = combine(s2) / len;
    let m3 = combine(s3) / len;
    let m4 = combine(s4) / len;
    let max = hi.iter().copied().fold(f64::NEG_INFINITY, f64::max) + offset;
    let min = lo.iter().copied().fold(f64::INFINITY, f64::min) + offset;
    // mean(y^2) = m2 + offset^2 (the DC stays in the RMS when nothing is removed).
    let rms = (m2 + offset * offset).sqrt();
    let peak = max.abs().max(min.abs());
    // Moments of a (numerically) constant frame are undefined, as in scipy.stats.
    let constant = m2 <= (f64::EPSILON * mean.abs()).powi(2);
    FrameStats {
        mean,
        rms,
        peak,
        peak_to_peak: max - min,
        crest_factor: if rms > 0.0 { peak / rms } else { f64::NAN },
        std: m2.sqrt(),
        skewness: if constant {
            f64::NAN
        } else {
            m3 / m2.powf(1.5)
        },
        kurtosis: if constant { f64::NAN } else { m4 / (m2 * m2) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(x: &[f64], detrend: Detrend) -> (FrameStats, Vec<f64>) {
        let mean = finite_mean(x).unwrap();
        let window = vec![1.0; x.len()];
        let mut out = vec![0.0; x.len()];
        let s = frame_stats_and_window(x, mean, detrend, &window, &mut out);
        (s, out)
    }

    #[test]
    fn moments_of_a_small_sample() {
        let x = [1.0, 2.0, 4.0, 8.0, 16.0, -3.0, 0.5, 7.0, 2.0, 1.0, 9.0];
        let (s, y) = stats(&x, Detrend::Mean);
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let m = |p: i32| x.iter().map(|v| (v - mean).powi(p)).sum::<f64>() / n;
        assert!((s.mean - mean).abs() < 1e-12);
        assert!((s.std - m(2).sqrt()).abs() < 1e-12);
        assert!((s.rms - m(2).sqrt()).abs() < 1e-12);
        assert!((s.skewness - m(3) / m(2).powf(1.5)).abs() < 1e-12);
        assert!((s.kurtosis - m(4) / (m(2) * m(2))).abs() < 1e-12);
        assert!((s.peak_to_peak - 19.0).abs() < 1e-12);
        assert!((s.peak - (16.0 - mean)).abs() < 1e-12);
        assert!((y[0] - (1.0 - mean)).abs() < 1e-12);
    }

    #[test]
    fn linear_detrend_removes_a_ramp() {
        let x: Vec<f64> = (0..100).map(|i| 3.0 + 0.5 * i as f64).collect();
        let (s, y) = stats(&x, Detrend::Linear);
        assert!(y.iter().all(|v| v.abs() < 1e-12));
        assert!(s.rms < 1e-12);
        assert!(s.crest_factor.is_nan() || s.rms == 0.0 || s.crest_factor.is_finite());
    }

    #[test]
    fn no_detrend_keeps_the_offset_in_the_rms() {
        let x = [2.0, 4.0, 2.0, 4.0];
        let (s, _) = stats(&x, Detrend::None);
        assert!((s.rms - 10f64.sqrt()).abs() < 1e-12);
        assert!((s.std - 1.0).abs() < 1e-12);
        assert!((s.kurtosis - 1.0).abs() < 1e-12);
    }

    #[test]
    fn non_finite_samples_have_no_mean() {
        assert!(finite_mean(&[1.0, f64::NAN]).is_none());
        assert!(finite_mean(&[1.0, f64::INFINITY, f64::NEG_INFINITY]).is_none());
        assert!(finite_mean(&[]).is_none());
        assert_eq!(finite_mean(&[1.0, 3.0]), Some(2.0));
    }

    #[test]
    fn constant_frame_has_undefined_shape() {
        let (s, _) = stats(&[5.0; 16], Detrend::Mean);
        assert!(s.skewness.is_nan() && s.kurtosis.is_nan() && s.crest_factor.is_nan());
        assert_eq!(s.rms, 0.0);
    }
}
