//! Streaming spectral features of vibration signals, and the building blocks behind them.
//!
//! * [`window`]: cosine-sum windows (hann, hamming, blackman, flattop, rectangular) with their
//!   coherent and energy gains and their exact frequency response ([`WindowKernel`]).
//! * [`fft`]: a real FFT planned once with preallocated buffers ([`PlannedRealFft`]).
//! * [`precision`]: frames are analysed in `f64` or, faster, `f32` ([`Precision`]). On x86-64
//!   CPUs with AVX the per-frame loops run hand-vectorised kernels (private `avx` module)
//!   that reproduce their portable twins bit for bit.
//! * [`stats`]: frame statistics (mean, RMS, peak, crest, std, skewness, kurtosis) with
//!   scipy-style detrending.
//! * [`peaks`]: top-N spectral peaks with window-exact interpolation between bins.
//! * [`bands`]: frequency bands as bin ranges, band power with the one-sided convention.
//! * [`velocity`]: acceleration to velocity RMS (mm/s) by integration in the frequency domain.
//! * [`analyzer`]: [`SpectrumAnalyzer`], the streaming frame assembler that ties them together.
//!
//! Conventions (the same as `scipy.signal.welch`): one-sided spectra of `N / 2 + 1` bins,
//! every bin doubled except DC and (for even N) Nyquist; `"density"` scaling
//! `1 / (fs sum(w^2))`, `"spectrum"` scaling `1 / sum(w)^2`.

// The per-frame loops index several fixed-size lane arrays in step, which is what lets them
// vectorise; iterator chains over four arrays would hide that.
#![allow(clippy::needless_range_loop)]

pub mod analyzer;
#[cfg(target_arch = "x86_64")]
mod avx;
pub mod bands;
pub mod fft;
pub mod peaks;
pub mod precision;
pub mod stats;
pub mod velocity;
pub mod window;

pub use analyzer::{AnalyzerConfig, FeatureBatch, PsdScaling, SpectrumAnalyzer};
pub use bands::{band_bins, one_sided_power_sum, power_spectrum, PowerSums};
pub use fft::PlannedRealFft;
pub use peaks::{refine_peak, top_local_maxima, SpectralPeak};
pub use precision::{Precision, Real};
pub use stats::{finite_mean, frame_stats_and_window, Detrend, FrameStats};
pub use velocity::{velocity_rms, AccelUnits, STANDARD_GRAVITY};
pub use window::{Window, WindowKernel, WindowKind};

/// Everything that can be wrong with spectral parameters or input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpectrumError {
    #[error("{name} must be {expected}, got {got}")]
    BadParameter {
        name: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("unknown window {name:?}; choose one of: {known}")]
    UnknownWindow { name: String, known: String },
    #[error("unknown detrend {0:?}; choose one of: mean (or constant), linear, none")]
    UnknownDetrend(String),
    #[error("unknown acceleration units {0:?}; choose g or m/s2")]
    UnknownUnits(String),
    #[error("unknown PSD scaling {0:?}; choose density or spectrum")]
    UnknownScaling(String),
    #[error("{what} ({lo} Hz, {hi} Hz) must satisfy {lower} < hi <= {nyquist} Hz (Nyquist)")]
    BandOutOfRange {
        what: String,
        lo: f64,
        hi: f64,
        /// The lower bound spelled out: `"0 <= lo"`, or `"0 < lo"` where 1/f weights apply.
        lower: String,
        nyquist: f64,
    },
    #[error(
        "{what} ({lo} Hz, {hi} Hz) contains no frequency bin at a resolution of {resolution} Hz"
    )]
    EmptyBand {
        what: String,
        lo: f64,
        hi: f64,
        resolution: f64,
    },
    #[error(
        "an analyzer of {channels} channel(s) x frame {frame} x average {average} is too \
         large to allocate"
    )]
    TooLarge {
        channels: usize,
        frame: usize,
        average: usize,
    },
    /// The features of the frames one block completes do not fit in memory
    /// (bindings: MemoryError).
    #[error("cannot allocate the features of {frames} frames: out of memory")]
    OutOfMemory { frames: usize },
    #[error("expected {expected} channel(s), got {got}")]
    ChannelCount { expected: usize, got: usize },
    #[error("sample block of {len} values does not split into {channels} channel(s)")]
    BlockShape { len: usize, channels: usize },
    #[error("{0}")]
    BadSignal(String),
}

pub type Result<T> = std::result::Result<T, SpectrumError>;
