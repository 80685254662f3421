//! Frequency bands as ranges of one-sided FFT bins.

use std::ops::Range;

use num_complex::Complex;

use super::precision::Real;
use super::{Result, SpectrumError};

/// Bins `k` of an `n`-point FFT at `sample_rate` whose frequency `k fs / n` lies in
/// `[lo, hi)`; the Nyquist bin is included when `hi` reaches Nyquist, so that adjacent
/// bands `(a, b), (b, c)` share no bin and `(0, fs/2)` holds them all. `min_lo` is the lowest
/// allowed `lo` (0 for band power; above 0 where 1/f weights are applied). `what` names the
/// band in errors (e.g. `"bands[2]"`).
pub fn band_bins(
    what: &str,
    (lo, hi): (f64, f64),
    sample_rate: f64,
    n: usize,
    min_lo: f64,
) -> Result<Range<usize>> {
    let nyquist = sample_rate / 2.0;
    let tolerance = 1e-9 * nyquist;
    let valid = lo.is_finite()
        && hi.is_finite()
        && lo >= min_lo
        && lo < hi
        && hi <= nyquist + tolerance
        && (min_lo == 0.0 || lo > 0.0);
    if !valid {
        return Err(SpectrumError::BandOutOfRange {
            what: what.to_string(),
            lo,
            hi,
            lower: if min_lo == 0.0 {
                "0 <= lo".to_string()
            } else if min_lo == f64::MIN_POSITIVE {
                "0 < lo".to_string()
            } else {
                format!("{min_lo} <= lo")
            },
            nyquist,
        });
    }
    let bins = n / 2 + 1;
    let resolution = sample_rate / n as f64;
    // Bin k is in the band when lo <= k * df < hi (with a little slack for rounding).
    let first = ((lo / resolution) - 1e-9).ceil().max(0.0) as usize;
    let end = if hi >= nyquist - tolerance {
        bins
    } else {
        (((hi / resolution) - 1e-9).ceil().max(0.0) as usize).min(bins)
    };
    if first >= end {
        return Err(SpectrumError::EmptyBand {
            what: what.to_string(),
            lo,
            hi,
            resolution,
        });
    }
    Ok(first..end)
}

/// `sum_{k in range} c_k power[k]`, the one-sided sum of a power spectrum `|X|^2` of an
/// `n`-point FFT: `c_k = 2` except for DC and, for even `n`, Nyquist, which occur once.
#[inline]
pub fn one_sided_power_sum(power: &[f64], range: Range<usize>, n: usize) -> f64 {
    let mut acc = [0.0f64; 4];
    let slice = &power[range.clone()];
    let chunks = slice.chunks_exact(4);
    let tail: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for l in 0..4 {
            acc[l] += c[l];
        }
    }
    let mut total = 2.0 * ((acc[0] + acc[2]) + (acc[1] + acc[3]) + tail);
    if range.start == 0 {
        total -= power[0];
    }
    if n % 2 == 0 && range.end == n / 2 + 1 && range.start <= n / 2 {
        total -= power[n / 2];
    }
    total
}

/// One-sided totals of a power spectrum, gathered while it is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerSums {
    /// `sum_k c_k |X_k|^2` over all bins.
    pub total: f64,
    /// `sum_k c_k k |X_k|^2` (for the centroid, in bins).
    pub moment: f64,
}

impl PowerSums {
    /// Power-weighted mean frequency in Hz (NaN when there is no power).
    pub fn centroid(&self, resolution: f64) -> f64 {
        if self.total > 0.0 {
            self.moment / self.total * resolution
        } else {
            f64::NAN
        }
    }
}

/// Writes `|X_k|^2` of an `n`-point one-sided spectrum into `power` (in f64, whatever the
/// spectrum's precision; the squares are summed in it) and returns its one-sided totals,
/// in one pass.
pub fn power_spectrum<T: Real>(spectrum: &[Complex<T>], power: &mut [f64], n: usize) -> PowerSums {
    assert_eq!(spectrum.len(), power.len());
    one_sided(T::power_sums(spectrum, power), power, n)
}

/// [`power_spectrum`] through the portable loop only.
#[cfg(test)]
pub(crate) fn power_spectrum_portable_for_tests<T: Real>(
    spectrum: &[Complex<T>],
    power: &mut [f64],
    n: usize,
) -> PowerSums {
    one_sided(power_sums_portable(spectrum, power), power, n)
}

/// One-sided totals from plain sums over the bins of an `n`-point power spectrum.
pub(crate) fn one_sided(raw: RawPowerSums, power: &[f64], n: usize) -> PowerSums {
    // Every bin counts twice in a one-sided spectrum but DC and (even n) Nyquist.
    let Some(&dc) = power.first() else {
        return PowerSums {
            total: 0.0,
            moment: 0.0,
        };
    };
    let mut sums = PowerSums {
        total: 2.0 * raw.total - dc,
        moment: 2.0 * raw.moment,
    };
    if n % 2 == 0 && n / 2 < power.len() {
        sums.total -= power[n / 2];
        sums.moment -= (n / 2) as f64 * power[n / 2];
    }
    sums
}

/// Plain (all-bins-once) sums of power and of `k * power` (internal to [`power_spectrum`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct RawPowerSums {
    pub(crate) total: f64,
    pub(crate) moment: f64,
}

/// Lanes of the power sums: two AVX vectors of f64.
const POWER_LANES: usize = 8;

/// Per-lane sums of power and of `k * power`.
struct PowerLanes {
    total: [f64; POWER_LANES],
    moment: [f64; POWER_LANES],
}

impl PowerLanes {
    /// Bins `start..` (the ones after the full chunks), lane by lane.
    fn tail<T: Real>(&mut self, spectrum: &[Complex<T>], power: &mut [f64], start: usize) {
        for (l, k) in (start..power.len()).enumerate() {
            let c = spectrum[k];
            let p: f64 = (c.re * c.re + c.im * c.im).into();
            power[k] = p;
            self.total[l] += p;
            self.moment[l] += k as f64 * p;
        }
    }

    fn finish(&self) -> RawPowerSums {
        let sum = |acc: &[f64; POWER_LANES]| {
            let mut width = POWER_LANES;
            let mut wide = *acc;
            while width > 1 {
                width /= 2;
                for l in 0..width {
                    wide[l] += wide[l + width];
                }
            }
            wide[0]
        };
        RawPowerSums {
            total: sum(&self.total),
            moment: sum(&self.moment),
        }
    }
}

/// Portable power sums (see [`power_spectrum`]; the layout the AVX kernels reproduce).
fn power_sums_portable<T: Real>(spectrum: &[Complex<T>], power: &mut [f64]) -> RawPowerSums {
    const L: usize = POWER_LANES;
    let mut lanes = PowerLanes {
        total: [0.0; L],
        moment: [0.0; L],
    };
    let mut k = [0.0f64; L];
    for (l, kl) in k.iter_mut().enumerate() {
        *kl = l as f64;
    }
    let body = power.len() - power.len() % L;
    for (sc, pc) in spectrum[..body]
        .chunks_exact(L)
        .zip(power[..body].chunks_exact_mut(L))
    {
        for l in 0..L {
            let p: f64 = (sc[l].re * sc[l].re + sc[l].im * sc[l].im).into();
            pc[l] = p;
            lanes.total[l] += p;
            lanes.moment[l] += k[l] * p;
            k[l] += L as f64;
        }
    }
    lanes.tail(spectrum, power, body);
    lanes.finish()
}

/// A hand-vectorised body of the power sums over the full chunks (`avx::power_sums_*`):
/// spectrum, power and the lane sums of power and `k * power`; returns the bins consumed.
type PowerKernel<T> =
    unsafe fn(&[Complex<T>], &mut [f64], &mut [f64; POWER_LANES], &mut [f64; POWER_LANES]) -> usize;

/// Power sums of f64 spectra: AVX where the CPU has it.
pub(crate) fn power_sums_f64(spectrum: &[Complex<f64>], power: &mut [f64]) -> RawPowerSums {
    #[cfg(target_arch = "x86_64")]
    let kernel = super::avx::detected().then_some(super::avx::power_sums_f64 as PowerKernel<f64>);
    #[cfg(not(target_arch = "x86_64"))]
    let kernel = None;
    power_sums_with(kernel, spectrum, power)
}

/// Power sums of f32 spectra: AVX where the CPU has it.
pub(crate) fn power_sums_f32(spectrum: &[Complex<f32>], power: &mut [f64]) -> RawPowerSums {
    #[cfg(target_arch = "x86_64")]
    let kernel = super::avx::detected().then_some(super::avx::power_sums_f32 as PowerKernel<f32>);
    #[cfg(not(target_arch = "x86_64"))]
    let kernel = None;
    power_sums_with(kernel, spectrum, power)
}

/// The power sums through `kernel` (full chunks) and the portable tail, or all portable.
/// `kernel` must be one the CPU runs.
fn power_sums_with<T: Real>(
    kernel: Option<PowerKernel<T>>,
    spectrum: &[Complex<T>],
    power: &mut [f64],
) -> RawPowerSums {
    let Some(kernel) = kernel else {
        return power_sums_portable(spectrum, power);
    };
    let mut lanes = PowerLanes {
        total: [0.0; POWER_LANES],
        moment: [0.0; POWER_LANES],
    };
    // SAFETY: the callers pass a kernel only once its CPU feature is detected; the kernel
    // asserts that the slices have equal lengths.
    let body = unsafe { kernel(spectrum, power, &mut lanes.total, &mut lanes.moment) };
    lanes.tail(spectrum, power, body);
    lanes.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_bands_share_no_bin_and_cover_the_spectrum() {
        let fs = 25_600.0;
        let n = 4096; // 6.25 Hz bins
        let a = band_bins("a", (0.0, 100.0), fs, n, 0.0).unwrap();
        let b = band_bins("b", (100.0, 12_800.0), fs, n, 0.0).unwrap();
        assert_eq!(a, 0..16);
        assert_eq!(b, 16..2049);
    }

    #[test]
    fn bad_bands_are_errors() {
        let fs = 1000.0;
        assert!(band_bins("x", (10.0, 600.0), fs, 100, 0.0).is_err());
        assert!(band_bins("x", (-1.0, 100.0), fs, 100, 0.0).is_err());
        assert!(band_bins("x", (200.0, 100.0), fs, 100, 0.0).is_err());
        assert!(band_bins("x", (0.0, 100.0), fs, 100, 1e-300).is_err());
        let empty = band_bins("bands[0]", (11.0, 12.0), fs, 100, 0.0).unwrap_err();
        assert!(empty.to_string().contains("bands[0]"), "{empty}");
    }

    #[test]
    fn one_sided_sum_counts_dc_and_nyquist_once() {
        let p = [1.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(one_sided_power_sum(&p, 0..5, 8), 8.0);
        assert_eq!(one_sided_power_sum(&p, 1..4, 8), 6.0);
        assert_eq!(one_sided_power_sum(&p, 0..5, 9), 9.0);
    }
}
