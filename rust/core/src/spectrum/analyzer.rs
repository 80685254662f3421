//! [`SpectrumAnalyzer`]: frames a multi-channel stream and computes features per frame.
//!
//! Samples are copied into one frame buffer per channel; each time a buffer is full the
//! frame is analysed and the buffer slides by `hop`. Every frame is analysed from the same
//! buffer contents with the same operations whatever the chunking of the input, so the
//! results are bit-identical however the stream is split.

use std::ops::Range;
use std::str::FromStr;

use super::bands::{band_bins, one_sided_power_sum, PowerSums};
use super::fft::PlannedRealFft;
use super::peaks::{refine_peak, top_local_maxima};
use super::precision::{Precision, Real};
use super::stats::{finite_mean, frame_stats_and_window, Detrend, FrameStats};
use super::velocity::{AccelUnits, VelocityIntegrator};
use super::window::{Window, WindowKernel, WindowKind};
use super::{Result, SpectrumError};

/// Everything that configures a [`SpectrumAnalyzer`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzerConfig {
    /// Samples per second per channel (Hz).
    pub sample_rate: f64,
    /// Samples per frame (FFT length).
    pub frame: usize,
    /// Samples between the starts of consecutive frames (1 ..= frame).
    pub hop: usize,
    pub window: WindowKind,
    pub channels: usize,
    /// Bands `(lo_hz, hi_hz)` for band RMS; bin k counts when `lo <= f_k < hi`.
    pub bands: Vec<(f64, f64)>,
    /// How many spectral peaks to report per frame and channel.
    pub peaks: usize,
    /// How many of the latest valid frames the Welch PSD averages.
    pub average: usize,
    pub detrend: Detrend,
    /// Band for a per-frame velocity RMS column (input taken as acceleration), or none.
    pub velocity_band: Option<(f64, f64)>,
    pub accel_units: AccelUnits,
    /// Time of sample 0 (Unix seconds); frame times are `t0 + start_index / sample_rate`.
    pub t0: f64,
    /// The type frames are windowed, transformed and summarised in.
    pub precision: Precision,
}

impl AnalyzerConfig {
    /// The reference configuration at `sample_rate`: frame 4096, hop 2048, hann, 1 channel,
    /// no bands, 5 peaks, average 1, mean removed, analysed in f64.
    pub fn new(sample_rate: f64) -> Self {
        AnalyzerConfig {
            sample_rate,
            frame: 4096,
            hop: 2048,
            window: WindowKind::Hann,
            channels: 1,
            bands: Vec::new(),
            peaks: 5,
            average: 1,
            detrend: Detrend::Mean,
            velocity_band: None,
            accel_units: AccelUnits::G,
            t0: 0.0,
            precision: Precision::Float64,
        }
    }
}

/// How [`SpectrumAnalyzer::psd`] scales the averaged power (scipy's `scaling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsdScaling {
    /// Power spectral density, units^2 / Hz.
    Density,
    /// Power spectrum, units^2 (a sine of amplitude A reads A^2 / 2 at its bin).
    Spectrum,
}

impl FromStr for PsdScaling {
    type Err = SpectrumError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "density" => Ok(PsdScaling::Density),
            "spectrum" => Ok(PsdScaling::Spectrum),
            _ => Err(SpectrumError::UnknownScaling(s.to_string())),
        }
    }
}

/// Features of a batch of frames, columnar, row-major: `(frame, channel[, band|peak])`.
/// Invalid frames (a NaN or infinite sample) have `valid = false` and NaN features.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureBatch {
    pub channels: usize,
    pub bands: usize,
    pub peaks: usize,
    pub has_velocity: bool,
    /// Index of each frame's first sample in the stream.
    pub start_index: Vec<u64>,
    /// Time of each frame's first sample (Unix seconds, or seconds since `t0 = 0`).
    pub start_time: Vec<f64>,
    pub valid: Vec<bool>,
    pub mean: Vec<f64>,
    pub rms: Vec<f64>,
    pub peak: Vec<f64>,
    pub peak_to_peak: Vec<f64>,
    pub crest_factor: Vec<f64>,
    pub std: Vec<f64>,
    pub skewness: Vec<f64>,
    pub kurtosis: Vec<f64>,
    pub band_rms: Vec<f64>,
    pub peak_freqs: Vec<f64>,
    pub peak_amps: Vec<f64>,
    pub dominant_freq: Vec<f64>,
    pub centroid: Vec<f64>,
    pub velocity_rms_mm_s: Vec<f64>,
}

impl FeatureBatch {
    /// An empty batch shaped for `config`.
    pub fn for_config(config: &AnalyzerConfig) -> Self {
        FeatureBatch {
            channels: config.channels,
            bands: config.bands.len(),
            peaks: config.peaks,
            has_velocity: config.velocity_band.is_some(),
            ..FeatureBatch::default()
        }
    }

    /// Makes room for `frames` more frames, so that appending them does not reallocate.
    /// Fails, instead of aborting, when the columns cannot grow that much (a long block fed
    /// with a small hop and many bands or peaks asks for more than the block itself).
    pub fn reserve(&mut self, frames: usize) -> Result<()> {
        let too_large = || SpectrumError::OutOfMemory { frames };
        let per_channel = frames.checked_mul(self.channels).ok_or_else(too_large)?;
        let per_band = per_channel.checked_mul(self.bands).ok_or_else(too_large)?;
        let per_peak = per_channel.checked_mul(self.peaks).ok_or_else(too_large)?;
        let grow = |v: &mut Vec<f64>, n: usize| v.try_reserve(n).map_err(|_| too_large());
        self.start_index
            .try_reserve(frames)
            .map_err(|_| too_large())?;
        grow(&mut self.start_time, frames)?;
        for column in [
            &mut self.mean,
            &mut self.rms,
            &mut self.peak,
            &mut self.peak_to_peak,
            &mut self.crest_factor,
            &mut self.std,
            &mut self.skewness,
            &mut self.kurtosis,
            &mut self.dominant_freq,
            &mut self.centroid,
        ] {
            grow(column, per_channel)?;
        }
        self.valid
            .try_reserve(per_channel)
            .map_err(|_| too_large())?;
        grow(&mut self.band_rms, per_band)?;
        grow(&mut self.peak_freqs, per_peak)?;
        grow(&mut self.peak_amps, per_peak)?;
        if self.has_velocity {
            grow(&mut self.velocity_rms_mm_s, per_channel)?;
        }
        Ok(())
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.start_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.start_index.is_empty()
    }

    fn push_stats(&mut self, s: &FrameStats, valid: bool) {
        self.valid.push(valid);
        self.mean.push(s.mean);
        self.rms.push(s.rms);
        self.peak.push(s.peak);
        self.peak_to_peak.push(s.peak_to_peak);
        self.crest_factor.push(s.crest_factor);
        self.std.push(s.std);
        self.skewness.push(s.skewness);
        self.kurtosis.push(s.kurtosis);
    }

    fn push_invalid(&mut self) {
        let nan = f64::NAN;
        let s = FrameStats {
            mean: nan,
            rms: nan,
            peak: nan,
            peak_to_peak: nan,
            crest_factor: nan,
            std: nan,
            skewness: nan,
            kurtosis: nan,
        };
        self.push_stats(&s, false);
        self.band_rms.extend(std::iter::repeat_n(nan, self.bands));
        self.peak_freqs.extend(std::iter::repeat_n(nan, self.peaks));
        self.peak_amps.extend(std::iter::repeat_n(nan, self.peaks));
        self.dominant_freq.push(nan);
        self.centroid.push(nan);
        if self.has_velocity {
            self.velocity_rms_mm_s.push(nan);
        }
    }
}

/// Per-channel state: the ring of recent power spectra.
#[derive(Debug, Clone)]
struct ChannelState {
    /// `average` power spectra `|X_k|^2` of the latest valid frames, one after another.
    powers: Vec<f64>,
    /// Valid spectra stored (at most `average`) and the slot the next one goes to.
    stored: usize,
    next_slot: usize,
    invalid_frames: u64,
}

/// The part of the analyzer that works in the analysis precision: one frame buffer per
/// channel, the window and the FFT.
#[derive(Debug)]
struct FrameEngine<T: Real> {
    buffers: Vec<Vec<T>>,
    window: Vec<T>,
    fft: PlannedRealFft<T>,
}

impl<T: Real> FrameEngine<T> {
    fn new(window: &Window, channels: usize) -> Self {
        let n = window.len();
        FrameEngine {
            buffers: vec![vec![T::zero(); n]; channels],
            window: window
                .coefficients()
                .iter()
                .map(|&w| T::narrow(w))
                .collect(),
            fft: PlannedRealFft::new(n),
        }
    }

    /// Copies `src` into channel `channel`'s buffer from position `at`.
    fn load<I: Copy + Into<f64>>(&mut self, channel: usize, at: usize, src: &[I]) {
        let dst = &mut self.buffers[channel][at..at + src.len()];
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = T::narrow(s.into());
        }
    }

    /// Drops the oldest `hop` samples of every buffer.
    fn slide(&mut self, hop: usize) {
        for buffer in &mut self.buffers {
            buffer.copy_within(hop.., 0);
        }
    }

    fn clear(&mut self) {
        for buffer in &mut self.buffers {
            buffer.fill(T::zero());
        }
    }

    /// Statistics and power spectrum `|X_k|^2` (into `power`) of channel `channel`'s full
    /// buffer, or `None` when it holds a NaN or infinite sample.
    fn analyse(
        &mut self,
        channel: usize,
        detrend: Detrend,
        power: &mut [f64],
    ) -> Option<(FrameStats, PowerSums)> {
        let buffer = &self.buffers[channel];
        let mean = finite_mean(buffer)?;
        let stats =
            frame_stats_and_window(buffer, mean, detrend, &self.window, self.fft.input_mut());
        Some((stats, self.fft.power(power)))
    }
}

/// A [`FrameEngine`] of either precision.
#[derive(Debug)]
enum Engine {
    Float32(FrameEngine<f32>),
    Float64(FrameEngine<f64>),
}

/// Runs `$body` with `$e` bound to the engine, whatever its precision.
macro_rules! with_engine {
    ($engine:expr, $e:ident => $body:expr) => {
        match $engine {
            Engine::Float32($e) => $body,
            Engine::Float64($e) => $body,
        }
    };
}

impl Engine {
    fn new(precision: Precision, window: &Window, channels: usize) -> Self {
        match precision {
            Precision::Float32 => Engine::Float32(FrameEngine::new(window, channels)),
            Precision::Float64 => Engine::Float64(FrameEngine::new(window, channels)),
        }
    }
}

/// Streaming spectral features of a multi-channel signal. See the module docs.
#[derive(Debug)]
pub struct SpectrumAnalyzer {
    config: AnalyzerConfig,
    window: Window,
    kernel: WindowKernel,
    engine: Engine,
    band_ranges: Vec<Range<usize>>,
    velocity: Option<VelocityIntegrator>,
    states: Vec<ChannelState>,
    /// Samples currently in every channel's buffer.
    fill: usize,
    /// Stream index of `buffer[0]`.
    buffer_start: u64,
    frames: u64,
    /// `1 / (N sum(w^2))`: one-sided power sum to mean square (Parseval).
    mean_square_scale: f64,
    resolution: f64,
    bins: usize,
    peak_scratch: Vec<usize>,
}

fn positive(name: &'static str, value: usize, expected: &'static str) -> Result<()> {
    if value == 0 {
        return Err(SpectrumError::BadParameter {
            name,
            expected,
            got: value.to_string(),
        });
    }
    Ok(())
}

/// Refuses a configuration whose buffers cannot be allocated, before allocating any of
/// them: an infallible allocation of a size taken from the caller would abort the process
/// (or panic on overflow) instead of returning an error. Counts f64 values: the window, the
/// FFT's input, output and scratch (a few frames; arbitrary lengths need more scratch), and
/// per channel a frame buffer plus `average` power spectra. The probe reserves address space
/// only and is released at once.
fn check_footprint(config: &AnalyzerConfig) -> Result<()> {
    let too_large = || SpectrumError::TooLarge {
        channels: config.channels,
        frame: config.frame,
        average: config.average,
    };
    let frame = config.frame;
    let bins = frame / 2 + 1;
    let per_channel = bins
        .checked_mul(config.average)
        .and_then(|powers| powers.checked_add(frame));
    let values = per_channel
        .and_then(|v| v.checked_mul(config.channels))
        .and_then(|v| {
            frame
                .checked_mul(8)
                .and_then(|shared| v.checked_add(shared))
        })
        .ok_or_else(too_large)?;
    let mut probe: Vec<f64> = Vec::new();
    probe.try_reserve_exact(values).map_err(|_| too_large())
}

impl SpectrumAnalyzer {
    pub fn new(config: AnalyzerConfig) -> Result<Self> {
        if !(config.sample_rate.is_finite() && config.sample_rate > 0.0) {
            return Err(SpectrumError::BadParameter {
                name: "sample_rate",
                expected: "a positive number of Hz",
                got: config.sample_rate.to_string(),
            });
        }
        if config.frame < 4 {
            return Err(SpectrumError::BadParameter {
                name: "frame",
                expected: "at least 4 samples",
                got: config.frame.to_string(),
            });
        }
        if config.hop == 0 || config.hop > config.frame {
            return Err(SpectrumError::BadParameter {
                name: "hop",
                expected: "between 1 and frame (a larger hop would skip samples)",
                got: format!("{} with frame {}", config.hop, config.frame),
            });
        }
        positive("channels", config.channels, "at least 1")?;
        positive("average", config.average, "at least 1 frame")?;
        if config.peaks > config.frame / 2 {
            return Err(SpectrumError::BadParameter {
                name: "peaks",
                expected: "at most frame / 2",
                got: config.peaks.to_string(),
            });
        }
        if !config.t0.is_finite() {
            return Err(SpectrumError::BadParameter {
                name: "t0",
                expected: "a finite time in seconds",
                got: config.t0.to_string(),
            });
        }
        check_footprint(&config)?;
        let n = config.frame;
        let band_ranges = config
            .bands
            .iter()
            .enumerate()
            .map(|(i, &band)| band_bins(&format!("bands[{i}]"), band, config.sample_rate, n, 0.0))
            .collect::<Result<Vec<_>>>()?;
        let window = Window::periodic(config.window, n);
        let velocity = config
            .velocity_band
            .map(|band| {
                VelocityIntegrator::new(band, config.sample_rate, &window, config.accel_units)
            })
            .transpose()?;
        let kernel = WindowKernel::new(&window);
        let engine = Engine::new(config.precision, &window, config.channels);
        let bins = n / 2 + 1;
        let states = (0..config.channels)
            .map(|_| ChannelState {
                powers: vec![0.0; bins * config.average],
                stored: 0,
                next_slot: 0,
                invalid_frames: 0,
            })
            .collect();
        Ok(SpectrumAnalyzer {
            mean_square_scale: 1.0 / (n as f64 * window.sum_squares()),
            resolution: config.sample_rate / n as f64,
            bins,
            peak_scratch: Vec::with_capacity(config.peaks + 1),
            window,
            kernel,
            engine,
            band_ranges,
            velocity,
            states,
            fill: 0,
            buffer_start: 0,
            frames: 0,
            config,
        })
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.config
    }

    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The type frames are analysed in.
    pub fn precision(&self) -> Precision {
        self.config.precision
    }

    /// Switches the analysis precision; only before the first sample (or after
    /// [`Self::reset`]), so that no frame mixes precisions.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision == self.config.precision {
            return Ok(());
        }
        if self.samples() > 0 {
            return Err(SpectrumError::BadParameter {
                name: "dtype",
                expected: "set before the first sample is fed (or after reset)",
                got: format!("{} after {} samples", precision.name(), self.samples()),
            });
        }
        self.engine = Engine::new(precision, &self.window, self.config.channels);
        self.config.precision = precision;
        Ok(())
    }

    /// One-sided bins per spectrum, `frame / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Frequency of every bin (Hz).
    pub fn frequencies(&self) -> Vec<f64> {
        (0..self.bins).map(|k| k as f64 * self.resolution).collect()
    }

    /// Frames completed so far (each covers all channels).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Invalid frames per channel (a NaN or infinite sample in the frame).
    pub fn invalid_frames(&self) -> Vec<u64> {
        self.states.iter().map(|s| s.invalid_frames).collect()
    }

    /// Samples fed so far per channel.
    pub fn samples(&self) -> u64 {
        self.buffer_start + self.fill as u64
    }

    /// An empty batch shaped for this analyzer.
    pub fn empty_batch(&self) -> FeatureBatch {
        FeatureBatch::for_config(&self.config)
    }

    /// How many frames a block of `samples` per channel would complete now.
    pub fn frames_completed_by(&self, samples: usize) -> usize {
        let total = self.fill + samples;
        if total < self.config.frame {
            0
        } else {
            1 + (total - self.config.frame) / self.config.hop
        }
    }

    /// Feeds `samples` per channel from `data`, laid out channel after channel
    /// (`data[c * samples + i]` is sample i of channel c, as a C-ordered `(channels, n)`
    /// array), and appends the features of every completed frame to `out`.
    pub fn feed<T: Copy + Into<f64>>(
        &mut self,
        data: &[T],
        samples: usize,
        out: &mut FeatureBatch,
    ) -> Result<()> {
        let channels = self.config.channels;
        if data.len() != samples * channels {
            return Err(SpectrumError::BlockShape {
                len: data.len(),
                channels,
            });
        }
        out.reserve(self.frames_completed_by(samples))?;
        let frame = self.config.frame;
        let hop = self.config.hop;
        let mut pos = 0;
        while pos < samples {
            let take = (frame - self.fill).min(samples - pos);
            for c in 0..channels {
                let src = &data[c * samples + pos..c * samples + pos + take];
                with_engine!(&mut self.engine, e => e.load(c, self.fill, src));
            }
            self.fill += take;
            pos += take;
            if self.fill == frame {
                self.analyse_frame(out);
                with_engine!(&mut self.engine, e => e.slide(hop));
                self.fill = frame - hop;
                self.buffer_start += hop as u64;
            }
        }
        Ok(())
    }

    fn analyse_frame(&mut self, out: &mut FeatureBatch) {
        let start = self.buffer_start;
        out.start_index.push(start);
        out.start_time
            .push(self.config.t0 + start as f64 / self.config.sample_rate);
        self.frames += 1;
        let n = self.config.frame;
        let bins = self.bins;
        let detrend = self.config.detrend;
        for (c, state) in self.states.iter_mut().enumerate() {
            let slot = state.next_slot;
            let power = &mut state.powers[slot * bins..(slot + 1) * bins];
            let analysed = with_engine!(&mut self.engine, e => e.analyse(c, detrend, power));
            let Some((stats, sums)) = analysed else {
                state.invalid_frames += 1;
                out.push_invalid();
                continue;
            };
            out.push_stats(&stats, true);
            state.next_slot = (slot + 1) % self.config.average;
            state.stored = (state.stored + 1).min(self.config.average);
            let power = &state.powers[slot * bins..(slot + 1) * bins];

            for range in &self.band_ranges {
                let ms = one_sided_power_sum(power, range.clone(), n) * self.mean_square_scale;
                out.band_rms.push(ms.sqrt());
            }

            top_local_maxima(power, self.config.peaks, &mut self.peak_scratch);
            for i in 0..self.config.peaks {
                let (freq, amp) = match self.peak_scratch.get(i) {
                    Some(&bin) => {
                        let peak = refine_peak(power, bin, &self.kernel, self.window.sum());
                        (peak.position * self.resolution, peak.amplitude)
                    }
                    None => (f64::NAN, f64::NAN),
                };
                out.peak_freqs.push(freq);
                out.peak_amps.push(amp);
            }
            let dominant = match self.peak_scratch.first() {
                Some(&bin) if self.config.peaks > 0 => {
                    let first = out.peak_freqs.len() - self.config.peaks;
                    debug_assert!(bin > 0);
                    out.peak_freqs[first]
                }
                _ => dominant_bin_frequency(power, self.resolution),
            };
            out.dominant_freq.push(dominant);
            out.centroid.push(sums.centroid(self.resolution));
            if let Some(v) = &self.velocity {
                out.velocity_rms_mm_s.push(v.rms_mm_s(power));
            }
        }
    }

    /// Latest one-sided amplitude spectrum, `channels x bins` row-major: a sine of amplitude
    /// A at a bin centre reads A (`2 |X_k| / sum(w)`, DC and Nyquist not doubled). Rows of
    /// channels without a valid frame yet are NaN.
    pub fn amplitude_spectrum(&self) -> Vec<f64> {
        let n = self.config.frame;
        let scale = 1.0 / self.window.sum();
        let mut out = Vec::with_capacity(self.bins * self.states.len());
        for state in &self.states {
            if state.stored == 0 {
                out.extend(std::iter::repeat_n(f64::NAN, self.bins));
                continue;
            }
            let slot = (state.next_slot + self.config.average - 1) % self.config.average;
            let power = &state.powers[slot * self.bins..(slot + 1) * self.bins];
            out.extend(power.iter().enumerate().map(|(k, p)| {
                let doubled = if k == 0 || (n % 2 == 0 && k == n / 2) {
                    1.0
                } else {
                    2.0
                };
                doubled * p.sqrt() * scale
            }));
        }
        out
    }

    /// Welch PSD: the mean of the power spectra of the latest `average` valid frames per
    /// channel (fewer if fewer were seen), `channels x bins` row-major, scaled like
    /// `scipy.signal.welch` (one-sided). Rows of channels without a valid frame are NaN.
    pub fn psd(&self, scaling: PsdScaling) -> Vec<f64> {
        let n = self.config.frame;
        let scale = match scaling {
            PsdScaling::Density => 1.0 / (self.config.sample_rate * self.window.sum_squares()),
            PsdScaling::Spectrum => 1.0 / (self.window.sum() * self.window.sum()),
        };
        let mut out = Vec::with_capacity(self.bins * self.states.len());
        for state in &self.states {
            if state.stored == 0 {
                out.extend(std::iter::repeat_n(f64::NAN, self.bins));
                continue;
            }
            let start = out.len();
            out.extend_from_slice(&state.powers[..self.bins]);
            let row = &mut out[start..];
            for slot in 1..state.stored {
                let power = &state.powers[slot * self.bins..(slot + 1) * self.bins];
                for (acc, p) in row.iter_mut().zip(power) {
                    *acc += p;
                }
            }
            let count = state.stored as f64;
            for (k, v) in row.iter_mut().enumerate() {
                let doubled = if k == 0 || (n % 2 == 0 && k == n / 2) {
                    1.0
                } else {
                    2.0
                };
                *v = *v / count * doubled * scale;
            }
        }
        out
    }

    /// Number of valid spectra currently averaged by [`Self::psd`] for each channel.
    pub fn psd_frames(&self) -> Vec<usize> {
        self.states.iter().map(|s| s.stored).collect()
    }

    /// Forgets all buffered samples, spectra and counters (the configuration stays).
    pub fn reset(&mut self) {
        with_engine!(&mut self.engine, e => e.clear());
        for state in &mut self.states {
            state.powers.fill(0.0);
            state.stored = 0;
            state.next_slot = 0;
            state.invalid_frames = 0;
        }
        self.fill = 0;
        self.buffer_start = 0;
        self.frames = 0;
    }
}

/// Frequency of the largest bin above DC (used when no peaks are requested); NaN if flat.
fn dominant_bin_frequency(power: &[f64], resolution: f64) -> f64 {
    let mut best = 0;
    let mut best_power = 0.0;
    for (k, &p) in power.iter().enumerate().skip(1) {
        if p > best_power {
            best = k;
            best_power = p;
        }
    }
    if best == 0 {
        f64::NAN
    } else {
        best as f64 * resolution
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn config(frame: usize, hop: usize) -> AnalyzerConfig {
        AnalyzerConfig {
            frame,
            hop,
            bands: vec![(0.0, 100.0), (100.0, 500.0)],
            ..AnalyzerConfig::new(1000.0)
        }
    }

    #[test]
    fn sizes_beyond_memory_are_errors_not_aborts() {
        let huge = [
            (1, usize::MAX / 2, 1),    // frame: the count overflows
            (1, 1 << 44, 1),           // frame: 2^44 values do not fit any memory here
            (1, 1024, usize::MAX / 4), // average x bins overflows
            (1, 1024, 1 << 40),        // average: petabytes
            (usize::MAX / 2, 1024, 1), // channels overflow
            (1 << 40, 1024, 1),        // channels: petabytes
        ];
        for (channels, frame, average) in huge {
            let cfg = AnalyzerConfig {
                channels,
                frame,
                hop: frame / 2,
                average,
                ..AnalyzerConfig::new(1000.0)
            };
            let err = SpectrumAnalyzer::new(cfg).unwrap_err();
            assert!(matches!(err, SpectrumError::TooLarge { .. }), "{err}");
        }
    }

    fn signal(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 1000.0;
                (2.0 * PI * 123.4 * t).sin()
                    + 0.3 * (2.0 * PI * 40.0 * t).cos()
                    + 0.01 * (i % 7) as f64
            })
            .collect()
    }

    fn run(cfg: &AnalyzerConfig, x: &[f64], chunk: usize) -> FeatureBatch {
        let mut a = SpectrumAnalyzer::new(cfg.clone()).unwrap();
        let mut out = a.empty_batch();
        for block in x.chunks(chunk) {
            a.feed(block, block.len(), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn frames_do_not_depend_on_chunking() {
        let cfg = config(256, 100);
        let x = signal(2000);
        let whole = run(&cfg, &x, x.len());
        assert_eq!(whole.len(), 1 + (2000 - 256) / 100);
        for chunk in [1, 37, 256, 999] {
            assert_eq!(run(&cfg, &x, chunk), whole, "chunk {chunk}");
        }
        assert_eq!(whole.start_index[1], 100);
    }

    #[test]
    fn finds_the_sine_and_its_band() {
        let cfg = config(1000, 500);
        let x = signal(1000);
        let out = run(&cfg, &x, 1000);
        assert_eq!(out.len(), 1);
        assert!(
            (out.dominant_freq[0] - 123.4).abs() < 0.01,
            "{:?}",
            out.peak_freqs
        );
        assert!((out.peak_amps[0] - 1.0).abs() < 0.01, "{:?}", out.peak_amps);
        assert!((out.peak_freqs[1] - 40.0).abs() < 0.01);
        // Sine of amplitude 1 lies in band 1: RMS 1/sqrt(2).
        assert!(
            (out.band_rms[1] - 0.5f64.sqrt()).abs() < 0.01,
            "{:?}",
            out.band_rms
        );
        assert!((out.band_rms[0] - 0.3 / 2f64.sqrt()).abs() < 0.01);
    }

    #[test]
    fn full_band_power_equals_windowed_energy() {
        // Parseval: the one-sided power over all bins, scaled by 1/(N sum w^2), equals
        // sum((y w)^2) / sum(w^2) exactly; for the rectangular window that is mean(y^2).
        for kind in WindowKind::ALL {
            let cfg = AnalyzerConfig {
                window: kind,
                bands: vec![(0.0, 500.0)],
                ..config(512, 512)
            };
            let x = signal(512);
            let out = run(&cfg, &x, 512);
            let mean = x.iter().sum::<f64>() / 512.0;
            let w = Window::periodic(kind, 512);
            let energy: f64 = x
                .iter()
                .zip(w.coefficients())
                .map(|(v, c)| ((v - mean) * c).powi(2))
                .sum::<f64>()
                / w.sum_squares();
            assert!((out.band_rms[0] - energy.sqrt()).abs() < 1e-12, "{kind}");
            if kind == WindowKind::Rectangular {
                assert!((out.band_rms[0] - out.rms[0]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn nan_marks_the_frame_invalid_and_stays_out_of_the_psd() {
        let cfg = AnalyzerConfig {
            average: 4,
            ..config(100, 100)
        };
        let mut a = SpectrumAnalyzer::new(cfg).unwrap();
        let mut x = signal(400);
        x[150] = f64::NAN;
        let mut out = a.empty_batch();
        a.feed(&x, 400, &mut out).unwrap();
        assert_eq!(out.valid, vec![true, false, true, true]);
        assert!(out.rms[1].is_nan() && out.band_rms[2].is_nan());
        assert_eq!(a.invalid_frames(), vec![1]);
        assert_eq!(a.psd_frames(), vec![3]);
        assert!(a.psd(PsdScaling::Density).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn channels_are_independent() {
        let cfg = AnalyzerConfig {
            channels: 2,
            ..config(128, 64)
        };
        let x = signal(512);
        let mut both = x.clone();
        both.extend(x.iter().map(|v| 2.0 * v));
        let mut a = SpectrumAnalyzer::new(cfg).unwrap();
        let mut out = a.empty_batch();
        a.feed(&both, 512, &mut out).unwrap();
        for f in 0..out.len() {
            assert!((out.rms[2 * f + 1] - 2.0 * out.rms[2 * f]).abs() < 1e-12);
        }
        assert!(a.feed(&both[..5], 2, &mut out).is_err());
    }

    #[test]
    fn bad_configs_are_rejected() {
        let bad = [
            AnalyzerConfig {
                hop: 0,
                ..config(64, 32)
            },
            AnalyzerConfig {
                hop: 65,
                ..config(64, 32)
            },
            AnalyzerConfig {
                channels: 0,
                ..config(64, 32)
            },
            AnalyzerConfig {
                bands: vec![(0.0, 700.0)],
                ..config(64, 32)
            },
            AnalyzerConfig {
                sample_rate: f64::NAN,
                ..config(64, 32)
            },
            AnalyzerConfig {
                velocity_band: Some((0.0, 100.0)),
                ..config(64, 32)
            },
        ];
        for cfg in bad {
            assert!(SpectrumAnalyzer::new(cfg.clone()).is_err(), "{cfg:?}");
        }
    }
}
