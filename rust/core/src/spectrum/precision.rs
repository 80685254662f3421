//! The floating-point type a frame is analysed in.
//!
//! Frames are windowed, transformed and summarised either in `f64` (the default; agrees
//! with numpy/scipy in float64 to ~1e-12) or in `f32` (about twice as fast: the FFT and the
//! per-sample loops move twice as many lanes per instruction, with ~1e-6 relative
//! precision, which is what a float32 sample stream carries anyway). Power spectra,
//! features and the Welch average are kept in `f64` either way.

use std::fmt::Debug;
use std::str::FromStr;

use num_complex::Complex;
use realfft::num_traits::Float;
use realfft::FftNum;

use super::bands::{self, RawPowerSums};
use super::stats::{self, Moments};
use super::SpectrumError;

/// A sample type frames can be analysed in: `f32` or `f64`. Besides the conversion, it
/// names the per-frame loops for the type, so that each type gets its fastest version
/// (hand-vectorised for f32 on AVX CPUs) without the generic code asking which it is.
pub trait Real: FftNum + Float + Into<f64> + Default + Debug {
    /// `v` as this type (the nearest value).
    fn narrow(v: f64) -> Self;

    /// Sum of the frame, accumulated in f64 lanes.
    #[doc(hidden)]
    fn frame_sum(x: &[Self]) -> f64;

    /// Central sums of `x - mean`, writing `(x - mean + offset) * window` into `windowed`.
    #[doc(hidden)]
    fn central_sums(
        x: &[Self],
        mean: f64,
        offset: f64,
        window: &[Self],
        windowed: &mut [Self],
    ) -> Moments;

    /// `power[k] = |X_k|^2` (squares summed in this type) and the lane sums of power and
    /// of `k * power`.
    #[doc(hidden)]
    fn power_sums(spectrum: &[Complex<Self>], power: &mut [f64]) -> RawPowerSums;

    /// Whether [`Real::untangled_power`] has a kernel for this type on this CPU.
    #[doc(hidden)]
    fn has_untangled_power() -> bool {
        false
    }

    /// The power spectrum of an even-length real frame from the half-length complex FFT of
    /// its sample pairs, and its plain sums. Only called when [`Real::has_untangled_power`].
    #[doc(hidden)]
    fn untangled_power(
        _z: &[Complex<Self>],
        _twiddles: &[Complex<Self>],
        _power: &mut [f64],
    ) -> RawPowerSums {
        unreachable!("no untangled_power kernel for this type")
    }
}

impl Real for f32 {
    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v as f32
    }

    fn frame_sum(x: &[Self]) -> f64 {
        stats::frame_sum_f32(x)
    }

    fn central_sums(
        x: &[Self],
        mean: f64,
        offset: f64,
        window: &[Self],
        windowed: &mut [Self],
    ) -> Moments {
        stats::central_sums_f32(x, mean, offset, window, windowed)
    }

    fn power_sums(spectrum: &[Complex<Self>], power: &mut [f64]) -> RawPowerSums {
        bands::power_sums_f32(spectrum, power)
    }

    fn has_untangled_power() -> bool {
        #[cfg(target_arch = "x86_64")]
        return super::avx::detected();
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    }

    #[cfg(target_arch = "x86_64")]
    fn untangled_power(
        z: &[Complex<Self>],
        twiddles: &[Complex<Self>],
        power: &mut [f64],
    ) -> RawPowerSums {
        assert!(super::avx::detected());
        // SAFETY: AVX is available (asserted); the kernel asserts the lengths itself.
        let (total, moment) = unsafe { super::avx::untangled_power(z, twiddles, power) };
        RawPowerSums { total, moment }
    }
}

impl Real for f64 {
    #[inline(always)]
    fn narrow(v: f64) -> Self {
        v
    }

    fn frame_sum(x: &[Self]) -> f64 {
        stats::frame_sum_f64(x)
    }

    fn central_sums(
        x: &[Self],
        mean: f64,
        offset: f64,
        window: &[Self],
        windowed: &mut [Self],
    ) -> Moments {
        stats::central_sums_f64(x, mean, offset, window, windowed)
    }

    fn power_sums(spectrum: &[Complex<Self>], power: &mut [f64]) -> RawPowerSums {
        bands::power_sums_f64(spectrum, power)
    }
}

/// Which [`Real`] type a [`super::SpectrumAnalyzer`] analyses frames in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    Float32,
    #[default]
    Float64,
}

impl Precision {
    /// numpy's name for it: `"float32"` or `"float64"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Float64 => "float64",
        }
    }
}

impl FromStr for Precision {
    type Err = SpectrumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "float32" | "f32" => Ok(Precision::Float32),
            "float64" | "f64" => Ok(Precision::Float64),
            _ => Err(SpectrumError::BadParameter {
                name: "dtype",
                expected: "\"float32\" or \"float64\"",
                got: s.to_string(),
            }),
        }
    }
}
