//! Time-domain statistics of one frame, with detrending as `scipy.signal` does it.
//!
//! Sums use several independent accumulators so they vectorise; the order of operations
//! depends only on the frame's contents, never on how the stream was chunked.

use std::str::FromStr;

use super::precision::Real;
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

/// Lanes of the mean's f64 sum: four AVX vectors, enough to hide FP-add latency.
const MEAN_LANES: usize = 16;
/// Lanes of the central sums: two AVX vectors of f32, or of f64 for the portable f64 loop.
const F32_LANES: usize = 16;
const F64_LANES: usize = 8;

/// Sums lanes in a fixed tree order, in f64.
#[inline(always)]
fn combine<T: Copy + Into<f64>, const L: usize>(acc: &[T; L]) -> f64 {
    let mut wide = [0.0f64; L];
    for l in 0..L {
        wide[l] = acc[l].into();
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            wide[l] += wide[l + width];
        }
    }
    wide[0]
}

/// Mean of the frame (accumulated in f64), or `None` if any sample is NaN or infinite (or
/// the sum overflows).
pub fn finite_mean<T: Real>(x: &[T]) -> Option<f64> {
    if x.is_empty() {
        return None;
    }
    let sum = T::frame_sum(x);
    // A NaN or infinity anywhere makes the sum non-finite.
    sum.is_finite().then(|| sum / x.len() as f64)
}

/// The portable f64-lane sum behind [`finite_mean`] (the layout [`super::avx::sum_f64`]
/// and `sum_widened` reproduce).
pub(crate) fn frame_sum_portable<T: Real>(x: &[T]) -> f64 {
    let mut acc = [0.0f64; MEAN_LANES];
    let body = x.len() - x.len() % MEAN_LANES;
    for c in x[..body].chunks_exact(MEAN_LANES) {
        for l in 0..MEAN_LANES {
            acc[l] += c[l].into();
        }
    }
    frame_sum_finish(&x[body..], acc)
}

/// Adds the samples after the full chunks (lane by lane) and sums the lanes.
fn frame_sum_finish<T: Real>(tail: &[T], mut acc: [f64; MEAN_LANES]) -> f64 {
    for (l, &v) in tail.iter().enumerate() {
        acc[l] += v.into();
    }
    combine(&acc)
}

/// The sum behind [`finite_mean`] for f32 frames: AVX where the CPU has it.
pub(crate) fn frame_sum_f32(x: &[f32]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if super::avx::detected() {
        let mut acc = [0.0f64; MEAN_LANES];
        // SAFETY: AVX is available, checked just above.
        let body = unsafe { super::avx::sum_widened(x, &mut acc) };
        return frame_sum_finish(&x[body..], acc);
    }
    frame_sum_portable(x)
}

/// The sum behind [`finite_mean`] for f64 frames: AVX where the CPU has it.
pub(crate) fn frame_sum_f64(x: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if super::avx::detected() {
        let mut acc = [0.0f64; MEAN_LANES];
        // SAFETY: AVX is available, checked just above.
        let body = unsafe { super::avx::sum_f64(x, &mut acc) };
        return frame_sum_finish(&x[body..], acc);
    }
    frame_sum_portable(x)
}

/// [`finite_mean`] through the portable loop only.
#[cfg(test)]
pub(crate) fn finite_mean_portable_for_tests<T: Real>(x: &[T]) -> Option<f64> {
    let sum = frame_sum_portable(x);
    (!x.is_empty() && sum.is_finite()).then(|| sum / x.len() as f64)
}

/// [`frame_stats_and_window`] (mean or no detrending) through the portable loops only.
#[cfg(test)]
pub(crate) fn central_stats_portable_for_tests<T: Real>(
    x: &[T],
    mean: f64,
    detrend: Detrend,
    window: &[T],
    windowed: &mut [T],
) -> FrameStats {
    assert!(detrend != Detrend::Linear);
    let offset = if detrend == Detrend::None { mean } else { 0.0 };
    let sums = if std::mem::size_of::<T>() == 4 {
        central_sums_lanes::<T, F32_LANES>(x, mean, offset, window, windowed)
    } else {
        central_sums_lanes::<T, F64_LANES>(x, mean, offset, window, windowed)
    };
    sums.into_stats(x.len(), mean, offset)
}

/// Least-squares slope of `x` against centred time `n - (len - 1) / 2`, in f64.
fn linear_slope<T: Real>(x: &[T]) -> f64 {
    const L: usize = 4;
    let len = x.len() as f64;
    if x.len() < 2 {
        return 0.0;
    }
    let centre = (len - 1.0) / 2.0;
    let mut acc = [0.0f64; L];
    let mut t = [0.0f64; L];
    for (l, tl) in t.iter_mut().enumerate() {
        *tl = l as f64 - centre;
    }
    let chunks = x.chunks_exact(L);
    let rem = chunks.remainder();
    for c in chunks {
        for l in 0..L {
            acc[l] += t[l] * c[l].into();
            t[l] += L as f64;
        }
    }
    let mut tail = 0.0;
    for (i, &v) in rem.iter().enumerate() {
        tail += t[i] * v.into();
    }
    let stt = len * (len * len - 1.0) / 12.0;
    (combine(&acc) + tail) / stt
}

/// Statistics of `x` (which must be finite, with `mean` from [`finite_mean`]), and the
/// detrended, windowed frame written into `windowed` (same length as `x` and `window`).
/// Moments accumulate in `T` in 8 or 16 lanes: in f32 their relative error stays near 1e-6
/// for any frame length a vibration analyzer uses.
pub fn frame_stats_and_window<T: Real>(
    x: &[T],
    mean: f64,
    detrend: Detrend,
    window: &[T],
    windowed: &mut [T],
) -> FrameStats {
    assert!(x.len() == window.len() && x.len() == windowed.len() && !x.is_empty());
    // d = x - mean - slope t is the deviation from the fitted trend (slope 0 unless linear);
    // the detrended signal is y = d + offset, with offset = 0 after mean or linear
    // detrending and the mean without. Moments of d are exact central moments of y.
    let offset = if detrend == Detrend::None { mean } else { 0.0 };
    let sums = if detrend == Detrend::Linear {
        let slope = linear_slope(x);
        // The trend is removed first (into `windowed`), then the residual is summed and
        // windowed in place, by the portable loops: rare enough to need no fast path.
        let centre = (x.len() as f64 - 1.0) / 2.0;
        for (i, (d, &v)) in windowed.iter_mut().zip(x).enumerate() {
            *d = T::narrow(v.into() - mean - slope * (i as f64 - centre));
        }
        if std::mem::size_of::<T>() == 4 {
            central_sums_in_place::<T, F32_LANES>(windowed, offset, window)
        } else {
            central_sums_in_place::<T, F64_LANES>(windowed, offset, window)
        }
    } else {
        T::central_sums(x, mean, offset, window, windowed)
    };
    sums.into_stats(x.len(), mean, offset)
}

/// Central sums of one frame: `d = x - mean` and its powers, extremes (internal to
/// [`frame_stats_and_window`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Moments {
    s2: f64,
    s3: f64,
    s4: f64,
    max: f64,
    min: f64,
}

/// A hand-vectorised body of the central sums over the full chunks (`avx::central_sums_*`):
/// same arguments as [`central_sums_lanes`] plus its lane accumulators; returns the samples
/// it consumed.
type CentralKernel<T, const L: usize> =
    unsafe fn(&[T], T, T, &[T], &mut [T], &mut [[T; L]; 5]) -> usize;

/// Central sums of f64 frames: AVX where the CPU has it, else the portable lanes.
pub(crate) fn central_sums_f64(
    x: &[f64],
    mean: f64,
    offset: f64,
    window: &[f64],
    windowed: &mut [f64],
) -> Moments {
    #[cfg(target_arch = "x86_64")]
    let kernel = super::avx::detected()
        .then_some(super::avx::central_sums_f64 as CentralKernel<f64, F64_LANES>);
    #[cfg(not(target_arch = "x86_64"))]
    let kernel = None;
    central_sums_with::<f64, F64_LANES>(kernel, x, mean, offset, window, windowed)
}

/// Central sums of f32 frames: AVX where the CPU has it, else the portable lanes.
pub(crate) fn central_sums_f32(
    x: &[f32],
    mean: f64,
    offset: f64,
    window: &[f32],
    windowed: &mut [f32],
) -> Moments {
    #[cfg(target_arch = "x86_64")]
    let kernel = super::avx::detected()
        .then_some(super::avx::central_sums_f32 as CentralKernel<f32, F32_LANES>);
    #[cfg(not(target_arch = "x86_64"))]
    let kernel = None;
    central_sums_with::<f32, F32_LANES>(kernel, x, mean, offset, window, windowed)
}

/// The central sums through `kernel` (full chunks) and the portable tail, or all portable.
/// `kernel` must be one the CPU runs.
fn central_sums_with<T: Real, const L: usize>(
    kernel: Option<CentralKernel<T, L>>,
    x: &[T],
    mean: f64,
    offset: f64,
    window: &[T],
    windowed: &mut [T],
) -> Moments {
    let Some(kernel) = kernel else {
        return central_sums_lanes::<T, L>(x, mean, offset, window, windowed);
    };
    let (mean, offset) = (T::narrow(mean), T::narrow(offset));
    let mut lanes = CentralLanes::<T, L>::new();
    let mut raw = [lanes.s2, lanes.s3, lanes.s4, lanes.hi, lanes.lo];
    // SAFETY: the callers pass a kernel only once its CPU feature is detected; the kernel
    // asserts that the slices have equal lengths.
    let body = unsafe { kernel(x, mean, offset, window, windowed, &mut raw) };
    [lanes.s2, lanes.s3, lanes.s4, lanes.hi, lanes.lo] = raw;
    lanes.tail(
        &x[body..],
        mean,
        offset,
        &window[body..],
        &mut windowed[body..],
    );
    lanes.finish()
}

/// Central sums of `buf` (already detrended), replacing it by `(buf + offset) * window`.
fn central_sums_in_place<T: Real, const L: usize>(
    buf: &mut [T],
    offset: f64,
    window: &[T],
) -> Moments {
    let (zero, offset) = (T::zero(), T::narrow(offset));
    let mut lanes = CentralLanes::<T, L>::new();
    let body = buf.len() - buf.len() % L;
    let mut d = [zero; L];
    for (chunk, w) in buf[..body]
        .chunks_exact_mut(L)
        .zip(window[..body].chunks_exact(L))
    {
        d.copy_from_slice(chunk);
        lanes.chunk(&d, zero, offset, w, chunk);
    }
    let tail = buf.len() - body;
    d[..tail].copy_from_slice(&buf[body..]);
    lanes.tail(&d[..tail], zero, offset, &window[body..], &mut buf[body..]);
    lanes.finish()
}

/// Per-lane accumulators of the central sums.
struct CentralLanes<T, const L: usize> {
    s2: [T; L],
    s3: [T; L],
    s4: [T; L],
    hi: [T; L],
    lo: [T; L],
}

impl<T: Real, const L: usize> CentralLanes<T, L> {
    fn new() -> Self {
        CentralLanes {
            s2: [T::zero(); L],
            s3: [T::zero(); L],
            s4: [T::zero(); L],
            hi: [T::neg_infinity(); L],
            lo: [T::infinity(); L],
        }
    }

    /// One chunk of `L` samples (the order of operations the AVX kernels reproduce).
    #[inline(always)]
    fn chunk(&mut self, x: &[T], mean: T, offset: T, window: &[T], windowed: &mut [T]) {
        let mut d = [T::zero(); L];
        for l in 0..L {
            d[l] = x[l] - mean;
        }
        for l in 0..L {
            windowed[l] = (d[l] + offset) * window[l];
        }
        for l in 0..L {
            let d2 = d[l] * d[l];
            self.s2[l] = self.s2[l] + d2;
            self.s3[l] = self.s3[l] + d2 * d[l];
            self.s4[l] = self.s4[l] + d2 * d2;
        }
        for l in 0..L {
            self.hi[l] = if d[l] > self.hi[l] { d[l] } else { self.hi[l] };
            self.lo[l] = if d[l] < self.lo[l] { d[l] } else { self.lo[l] };
        }
    }

    /// The samples after the full chunks, lane by lane.
    fn tail(&mut self, x: &[T], mean: T, offset: T, window: &[T], windowed: &mut [T]) {
        for (l, ((&v, &w), out)) in x.iter().zip(window).zip(windowed).enumerate() {
            let d = v - mean;
            *out = (d + offset) * w;
            let d2 = d * d;
            self.s2[l] = self.s2[l] + d2;
            self.s3[l] = self.s3[l] + d2 * d;
            self.s4[l] = self.s4[l] + d2 * d2;
            self.hi[l] = if d > self.hi[l] { d } else { self.hi[l] };
            self.lo[l] = if d < self.lo[l] { d } else { self.lo[l] };
        }
    }

    fn finish(&self) -> Moments {
        Moments {
            s2: combine(&self.s2),
            s3: combine(&self.s3),
            s4: combine(&self.s4),
            max: self
                .hi
                .iter()
                .fold(f64::NEG_INFINITY, |m, &v| m.max(v.into())),
            min: self.lo.iter().fold(f64::INFINITY, |m, &v| m.min(v.into())),
        }
    }
}

#[inline(always)]
fn central_sums_lanes<T: Real, const L: usize>(
    x: &[T],
    mean: f64,
    offset: f64,
    window: &[T],
    windowed: &mut [T],
) -> Moments {
    let (mean, offset) = (T::narrow(mean), T::narrow(offset));
    let mut lanes = CentralLanes::<T, L>::new();
    let body = x.len() - x.len() % L;
    for ((xc, wc), oc) in x[..body]
        .chunks_exact(L)
        .zip(window[..body].chunks_exact(L))
        .zip(windowed[..body].chunks_exact_mut(L))
    {
        lanes.chunk(xc, mean, offset, wc, oc);
    }
    lanes.tail(
        &x[body..],
        mean,
        offset,
        &window[body..],
        &mut windowed[body..],
    );
    lanes.finish()
}

impl Moments {
    fn into_stats(self, n: usize, mean: f64, offset: f64) -> FrameStats {
        let len = n as f64;
        let m2 = self.s2 / len;
        let m3 = self.s3 / len;
        let m4 = self.s4 / len;
        let max = self.max + offset;
        let min = self.min + offset;
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
        assert!(finite_mean::<f64>(&[]).is_none());
        assert_eq!(finite_mean(&[1.0, 3.0]), Some(2.0));
    }

    #[test]
    fn constant_frame_has_undefined_shape() {
        let (s, _) = stats(&[5.0; 16], Detrend::Mean);
        assert!(s.skewness.is_nan() && s.kurtosis.is_nan() && s.crest_factor.is_nan());
        assert_eq!(s.rms, 0.0);
    }
}
