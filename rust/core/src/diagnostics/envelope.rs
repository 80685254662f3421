//! Streaming envelope analysis (squared-envelope spectrum, SES) with a statistical fault test.
//!
//! Per frame of `frame` samples (hop `frame / 2`):
//! 1. spectral kurtosis (SK) of short-time Fourier bins at several window lengths is
//!    accumulated; every `reselect_every` frames the most impulsive band wide enough to hold
//!    three harmonics of the highest fault frequency is chosen, with hysteresis;
//! 2. the frame is band-passed and made analytic in the frequency domain (negative
//!    frequencies and out-of-band bins zeroed), giving the complex envelope;
//! 3. the squared envelope is Hann-windowed and transformed; its power spectrum is averaged
//!    over frames (plain mean for the first `average` frames, exponential after).
//!
//! The decision is a significance test with a stated false-alarm rate, not a dB gate. On
//! healthy (noise-only) input an SES bin averaged over K frames is ~ chi-square with 2K degrees
//! of freedom (K corrected for the exponential average, unequal frame levels and the 50 %
//! frame overlap); divided by
//! the median of its neighbours (rescaled to a mean) it is ~ F(2K, 2K N_eq), N_eq the floor's
//! equivalent number of independent bins. Each harmonic's bin thus has a p-value; a fault
//! series is a comb `h * f0 * r`, h = 1..H, with one speed ratio `r` for all harmonics
//! (searched from `1 - tolerance - slip` to `1 + tolerance`: rolling elements slip, so lines
//! sit below nominal); the comb's harmonics combine by Fisher's method (chi-square, 2H dof),
//! and the best comb's p-value is multiplied by the number of distinct combs tried
//! (Bonferroni). A series is significant when that p-value is at most
//! `false_alarm / (3 series * bands_tried)`, its fundamental (the first harmonic not on a
//! shaft-speed multiple) and at least `min_harmonics` harmonics stand out on their own
//! (single-bin p <= 1 %). Harmonics landing on integer multiples of shaft speed are left
//! out: unbalance and looseness put lines there that no bearing test can tell apart.
//! Ball faults are tested at 2 x BSF (a spalled ball strikes both races once per spin) with
//! FTF (cage) sidebands counted; inner-race and ball verdicts need at least one sideband.

use super::bearing::FaultOrders;
use super::stats;
use super::{param, DiagnosticsError};
use crate::spectrum::WindowKind;
use num_complex::Complex64;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// A harmonic of an impact train counts when its line has at least this fraction (-10 dB)
/// of the strongest line of the series.
const COMPARABLE: f64 = 0.1;

/// How the demodulation band is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BandChoice {
    /// A fixed band (Hz), e.g. a known structural resonance.
    Fixed { lo: f64, hi: f64 },
    /// The band of highest spectral kurtosis, re-chosen periodically with hysteresis.
    SpectralKurtosis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeConfig {
    pub sample_rate: f64,
    /// Bearing fault frequencies as orders of shaft speed.
    pub orders: FaultOrders,
    /// Nominal shaft speed in Hz (sets the frame length and minimum band width).
    pub shaft_hz: f64,
    /// Frame length in samples (power of two); 0 = automatic: the +/- tolerance search window
    /// at the lowest fault frequency spans at least three bins.
    pub frame: usize,
    pub band: BandChoice,
    pub reselect_every: usize,
    /// A new band must have SK at least (1 + hysteresis) times the current band's.
    pub hysteresis: f64,
    pub average: usize,
    pub harmonics: usize,
    /// Relative uncertainty of the shaft speed, searched both ways (rpm entry, drift).
    pub tolerance: f64,
    /// Largest rolling-element slip: fault lines are searched down to `1 - tolerance - slip`
    /// of nominal, but only up to `1 + tolerance`.
    pub slip: f64,
    /// Probability that one diagnosis of healthy noise names a fault (all series together).
    pub false_alarm: f64,
    /// Demodulation bands the caller tries and picks the best of (Bonferroni factor).
    pub bands_tried: usize,
    /// A significant series needs at least this many harmonics standing out on their own.
    pub min_harmonics: usize,
    /// A localized defect makes impacts: a fault needs the squared envelope's kurtosis excess
    /// (0 for Gaussian noise) at least this high and three standard errors above 0.
    pub min_band_kurtosis: f64,
}

impl EnvelopeConfig {
    pub fn new(sample_rate: f64, orders: FaultOrders, shaft_hz: f64) -> Self {
        Self {
            sample_rate,
            orders,
            shaft_hz,
            frame: 0,
            band: BandChoice::SpectralKurtosis,
            reselect_every: 4,
            hysteresis: 0.25,
            average: 32,
            harmonics: 5,
            tolerance: 0.02,
            slip: 0.02,
            false_alarm: 0.01,
            bands_tried: 1,
            min_harmonics: 2,
            min_band_kurtosis: 0.5,
        }
    }

    /// Significance level of one series: the false-alarm rate shared by three series
    /// (outer race, inner race, ball) in each band tried.
    pub fn series_alpha(&self) -> f64 {
        self.false_alarm / (3 * self.bands_tried.max(1)) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    None,
    OuterRace,
    InnerRace,
    Ball,
    /// Significant bearing lines that do not name one fault for sure (see `Diagnosis::note`).
    Uncertain,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::None => "none",
            FaultKind::OuterRace => "outer_race",
            FaultKind::InnerRace => "inner_race",
            FaultKind::Ball => "ball",
            FaultKind::Uncertain => "uncertain",
        }
    }
}

/// Test of one fault-frequency series in the averaged squared-envelope spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesScore {
    pub kind: FaultKind,
    /// Theoretical fundamental in Hz (ball faults: 2 x BSF).
    pub expected_hz: f64,
    /// Frequency of the fundamental's line in the best comb (Hz).
    pub frequency_hz: f64,
    /// Speed ratio of the best comb: found / nominal frequency (below 1: slip).
    pub ratio: f64,
    /// Mean over the first three tested harmonics of bin power over its floor (dB).
    pub score_db: f64,
    /// log10 of the series p-value (Bonferroni over the combs tried); NaN if not testable.
    pub log10_p: f64,
    /// log10 of the p-value a fault needs (`EnvelopeConfig::series_alpha`).
    pub log10_alpha: f64,
    /// 10 log10(alpha / p): at least 0 when significant (more is stronger evidence).
    pub margin_db: f64,
    /// Significant: p <= alpha, fundamental and `min_harmonics` harmonics stand out.
    pub significant: bool,
    /// The best comb lies at the edge of the searched speed range (speed probably wrong).
    pub at_edge: bool,
    /// Harmonics (of those tested) standing out on their own: single-bin p <= 1 % and a line
    /// within 10 dB of the series' strongest.
    pub harmonics: usize,
    /// Harmonics tested (usable in the band, not on a shaft-speed multiple).
    pub tested: usize,
    /// Sidebands (shaft speed for inner race, FTF for ball) standing out (p <= 1 %).
    pub sidebands: usize,
    /// Power over floor of each tested harmonic at the best comb, dB.
    pub harmonic_db: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub fault: FaultKind,
    pub score_db: f64,
    pub frequency_hz: f64,
    pub harmonics: usize,
    /// Outer race, inner race, ball: always all three.
    pub series: Vec<SeriesScore>,
    pub band: (f64, f64),
    pub band_kurtosis: f64,
    pub frames: usize,
    /// Frames the average is worth as independent chi-square draws (overlap, exponential
    /// averaging); the K of the null distribution.
    pub effective_frames: f64,
    pub shaft_hz: f64,
    /// Margin of the deciding series over its significance level (dB, see `SeriesScore`).
    pub margin_db: f64,
    /// Standard error of `band_kurtosis` for Gaussian noise: 2 / sqrt(independent envelope
    /// samples), about (frames x frame / 2) x band width / sample rate of them.
    pub band_kurtosis_se: f64,
    /// The band is impulsive: kurtosis excess >= `min_band_kurtosis` and >= 3 standard errors.
    pub impulsive: bool,
    /// Why the verdict is what it is when lines alone would say otherwise (empty if not).
    pub note: String,
    /// Strongest envelope-spectrum peaks: (Hz, dB over the spectrum's median).
    pub peaks: Vec<(f64, f64)>,
}

/// What one completed frame produced: its first sample index and the diagnosis then.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameFeatures {
    pub start_index: u64,
    pub diagnosis: Diagnosis,
}

struct SkLevel {
    nw: usize,
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    s2: Vec<f64>,
    s4: Vec<f64>,
    n: f64,
}

pub struct EnvelopeAnalyzer {
    cfg: EnvelopeConfig,
    frame: usize,
    hop: usize,
    shaft_hz: f64,
    pending: Vec<f64>,
    consumed_frames: u64,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn Fft<f64>>,
    hann: Vec<f64>,
    levels: Vec<SkLevel>,
    band: Option<(f64, f64)>,
    band_sk: f64,
    band_changes: usize,
    // scratch
    buf: Vec<f64>,
    spec: Vec<Complex64>,
    analytic: Vec<Complex64>,
    fft_scratch: Vec<Complex64>,
    // averages
    ses: Vec<f64>,
    ses_frames: usize,
    /// Sum of squared averaging weights: 1 / (frames worth of independent draws).
    ses_w2: f64,
    /// Sums of weight x level and (weight x level)^2 of the frames' envelope spectra: frames
    /// of unequal level (a burst of impacts) are worth fewer independent draws.
    level_s1: f64,
    level_s2: f64,
    /// Correlation of power spectra of frames overlapping by one hop (Hann, 50 %: 1/36).
    overlap_rho: f64,
    /// Variance inflation of a sum of adjacent SES bins (Hann leakage): 1 + 2 sum c_j^2.
    bin_corr: f64,
    shaft_avg: f64,
    env_m2: f64,
    env_m4: f64,
}

/// Periodic Hann window, the same coefficients the spectrum analyzer uses.
fn hann(n: usize) -> Vec<f64> {
    WindowKind::Hann.coefficients(n, true)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    *m
}

/// (Correlation of the power spectra of two frames one hop apart, variance inflation of a
/// sum of neighbouring bins) for a window: both set how many independent chi-square draws an
/// average or a floor estimate is worth.
fn window_correlations(w: &[f64]) -> (f64, f64) {
    let n = w.len();
    let energy: f64 = w.iter().map(|v| v * v).sum();
    let shifted: f64 = (0..n / 2).map(|i| w[i] * w[i + n / 2]).sum();
    let rho = (shifted / energy).powi(2);
    let mut inflation = 1.0;
    for j in 1..=3 {
        // bins j apart of white noise: correlation |sum w^2 e^{-2 pi i j n / N}| / sum w^2
        let (mut re, mut im) = (0.0, 0.0);
        for (i, v) in w.iter().enumerate() {
            let ph = -2.0 * std::f64::consts::PI * (j * i) as f64 / n as f64;
            re += v * v * ph.cos();
            im += v * v * ph.sin();
        }
        inflation += 2.0 * (re * re + im * im) / (energy * energy);
    }
    (rho, inflation)
}

impl EnvelopeAnalyzer {
    pub fn new(cfg: EnvelopeConfig) -> Result<Self, DiagnosticsError> {
        let fs = cfg.sample_rate;
        if !(fs.is_finite() && fs > 0.0) {
            return Err(param("sample_rate", format!("must be positive, got {fs}")));
        }
        if !(cfg.shaft_hz.is_finite() && cfg.shaft_hz > 0.0) {
            return Err(param(
                "rpm",
                "a positive nominal shaft speed is needed to place fault frequencies",
            ));
        }
        if !(cfg.tolerance > 0.0 && cfg.tolerance < 0.2) {
            return Err(param("tolerance", "must be in (0, 0.2)"));
        }
        if !(cfg.slip >= 0.0 && cfg.slip < 0.2) {
            return Err(param("slip", "must be in [0, 0.2)"));
        }
        if !(cfg.false_alarm > 0.0 && cfg.false_alarm <= 0.5) {
            return Err(param("false_alarm", "must be in (0, 0.5]"));
        }
        if cfg.bands_tried == 0 || cfg.min_harmonics == 0 {
            return Err(param(
                "bands_tried",
                "bands_tried and min_harmonics must be >= 1",
            ));
        }
        if cfg.harmonics == 0 || cfg.harmonics > 20 {
            return Err(param("harmonics", "must be in 1..=20"));
        }
        if cfg.average == 0 || cfg.reselect_every == 0 {
            return Err(param("average", "average and reselect_every must be >= 1"));
        }
        let o = cfg.orders;
        let lowest = o.bpfo.min(o.bsf).min(o.bpfi) * cfg.shaft_hz;
        let frame = if cfg.frame == 0 {
            // the +/- tolerance window at the lowest fault frequency spans >= 3 bins
            let df = 2.0 * cfg.tolerance * lowest / 3.0;
            ((fs / df).ceil() as usize)
                .next_power_of_two()
                .clamp(1024, 1 << 20)
        } else {
            cfg.frame
        };
        if !frame.is_power_of_two() || !(256..=(1 << 22)).contains(&frame) {
            return Err(param(
                "frame",
                format!("must be a power of two in 256..=4194304, got {frame}"),
            ));
        }
        if let BandChoice::Fixed { lo, hi } = cfg.band {
            if !(lo >= 0.0 && hi > lo && hi <= fs / 2.0) {
                return Err(param(
                    "band",
                    format!("must satisfy 0 <= lo < hi <= sample_rate/2, got ({lo}, {hi})"),
                ));
            }
        }
        // Refuse, instead of aborting the process, a frame whose buffers (pending samples,
        // window, frame, spectra, analytic signal, FFT plans and scratch: about 16 values per
        // sample) do not fit in memory; the probe only reserves address space.
        Vec::<f64>::new()
            .try_reserve_exact(16 * frame)
            .map_err(|_| {
                param(
                    "frame",
                    format!("buffers for {frame} samples do not fit in memory"),
                )
            })?;
        let mut rplan = RealFftPlanner::<f64>::new();
        let fwd = rplan.plan_fft_forward(frame);
        let inv = FftPlanner::<f64>::new().plan_fft_inverse(frame);
        let levels = [16usize, 32, 64, 128, 256, 512, 1024]
            .iter()
            .filter(|&&nw| nw * 4 <= frame)
            .map(|&nw| SkLevel {
                nw,
                fft: rplan.plan_fft_forward(nw),
                window: hann(nw),
                s2: vec![0.0; nw / 2 + 1],
                s4: vec![0.0; nw / 2 + 1],
                n: 0.0,
            })
            .collect();
        let scratch_len = inv.get_inplace_scratch_len();
        let window = hann(frame);
        let (overlap_rho, bin_corr) = window_correlations(&window);
        Ok(Self {
            frame,
            hop: frame / 2,
            shaft_hz: cfg.shaft_hz,
            pending: Vec::with_capacity(2 * frame),
            consumed_frames: 0,
            fwd,
            inv,
            hann: window,
            levels,
            band: match cfg.band {
                BandChoice::Fixed { lo, hi } => Some((lo, hi)),
                BandChoice::SpectralKurtosis => None,
            },
            band_sk: f64::NAN,
            band_changes: 0,
            buf: vec![0.0; frame],
            spec: vec![Complex64::default(); frame / 2 + 1],
            analytic: vec![Complex64::default(); frame],
            fft_scratch: vec![Complex64::default(); scratch_len],
            ses: vec![0.0; frame / 2 + 1],
            ses_frames: 0,
            ses_w2: 0.0,
            level_s1: 0.0,
            level_s2: 0.0,
            overlap_rho,
            bin_corr,
            shaft_avg: cfg.shaft_hz,
            env_m2: 0.0,
            env_m4: 0.0,
            cfg,
        })
    }

    pub fn frame(&self) -> usize {
        self.frame
    }
    pub fn hop(&self) -> usize {
        self.hop
    }
    pub fn config(&self) -> &EnvelopeConfig {
        &self.cfg
    }
    pub fn band(&self) -> Option<(f64, f64)> {
        self.band
    }
    pub fn band_changes(&self) -> usize {
        self.band_changes
    }
    pub fn frames_averaged(&self) -> usize {
        self.ses_frames
    }

    /// Independent frames the current average is worth: 1 / sum of squared weights, less
    /// the correlation of overlapping frames.
    pub fn effective_frames(&self) -> f64 {
        if self.ses_frames == 0 || self.ses_w2 <= 0.0 {
            return 0.0;
        }
        // Satterthwaite: a weighted sum of chi-square draws of unequal scale is worth
        // (sum w L)^2 / sum (w L)^2 of them (1 / sum w^2 when every frame has the same level)
        let k = if self.level_s2 > 0.0 {
            self.level_s1 * self.level_s1 / self.level_s2
        } else {
            1.0 / self.ses_w2
        };
        k / (1.0 + 2.0 * self.overlap_rho * (1.0 - 1.0 / k))
    }

    /// Set the shaft speed (Hz) for frames completed from now on (e.g. from an RPM tag).
    pub fn set_shaft_hz(&mut self, shaft_hz: f64) -> Result<(), DiagnosticsError> {
        if !(shaft_hz.is_finite() && shaft_hz > 0.0) {
            return Err(param(
                "rpm",
                format!("must be positive, got {}", shaft_hz * 60.0),
            ));
        }
        self.shaft_hz = shaft_hz;
        Ok(())
    }

    /// Minimum demodulation band width: three harmonics of the highest fault frequency must
    /// fall inside the usable 80 % of the envelope spectrum.
    fn min_band_width(&self) -> f64 {
        let o = self.cfg.orders;
        3.0 * o.bpfi.max(o.bpfo).max(2.0 * o.bsf) * self.shaft_hz / 0.8
    }

    /// Feed samples (any chunk size); returns features for every frame completed.
    pub fn feed(&mut self, x: &[f64]) -> Result<Vec<FrameFeatures>, DiagnosticsError> {
        if x.iter().any(|v| !v.is_finite()) {
            return Err(param("samples", "contain NaN or infinity"));
        }
        let mut out = Vec::new();
        let mut rest = x;
        while !rest.is_empty() {
            let take = (self.frame - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.frame {
                let start = self.consumed_frames * self.hop as u64;
                self.process_frame();
                self.consumed_frames += 1;
                self.pending.drain(..self.hop);
                out.push(FrameFeatures {
                    start_index: start,
                    diagnosis: self.diagnose(),
                });
            }
        }
        Ok(out)
    }

    fn accumulate_sk(&mut self, fresh_from: usize) {
        let frame = &self.buf;
        // SK statistics remember about two re-selection periods: each frame holds hundreds
        // of short-time windows, enough for a stable estimate, and a moved resonance wins soon
        let forget = 1.0 - 1.0 / (2.0 * self.cfg.reselect_every as f64);
        for lv in &mut self.levels {
            let nw = lv.nw;
            let step = nw / 2;
            let mut input = vec![0.0; nw];
            let mut out = lv.fft.make_output_vec();
            lv.s2.iter_mut().for_each(|v| *v *= forget);
            lv.s4.iter_mut().for_each(|v| *v *= forget);
            lv.n *= forget;
            let mut start = fresh_from;
            while start + nw <= frame.len() {
                for ((d, s), w) in input
                    .iter_mut()
                    .zip(&frame[start..start + nw])
                    .zip(&lv.window)
                {
                    *d = s * w;
                }
                // lengths match the plan, so this cannot fail
                if lv.fft.process(&mut input, &mut out).is_ok() {
                    for (k, c) in out.iter().enumerate() {
                        let p = c.norm_sqr();
                        lv.s2[k] += p;
                        lv.s4[k] += p * p;
                    }
                    lv.n += 1.0;
                }
                start += step;
            }
        }
    }

    /// Best band by SK among those at least the minimum width: (lo, hi, sk).
    fn best_sk_band(&self) -> Option<(f64, f64, f64)> {
        let fs = self.cfg.sample_rate;
        // when even the widest candidate is narrower than wanted (slow sampling, fast
        // shaft), take the widest: fewer harmonics fit, but the analysis still runs
        let widest = self
            .levels
            .first()
            .map_or(0.0, |lv| 2.0 * fs / lv.nw as f64);
        let min_bw = self.min_band_width().min(widest);
        let mut best: Option<(f64, f64, f64)> = None;
        for lv in &self.levels {
            let bin = fs / lv.nw as f64;
            if 2.0 * bin < min_bw || lv.n < 8.0 {
                continue;
            }
            for k in 1..lv.nw / 2 {
                let m2 = lv.s2[k] / lv.n;
                if m2 <= 0.0 {
                    continue;
                }
                let sk = lv.s4[k] / lv.n / (m2 * m2) - 2.0;
                if best.is_none_or(|b| sk > b.2) {
                    best = Some(((k - 1) as f64 * bin, (k + 1) as f64 * bin, sk));
                }
            }
        }
        best
    }

    /// SK of the accumulated STFT bin closest to a band (for the hysteresis comparison).
    fn sk_of_band(&self, band: (f64, f64)) -> f64 {
        let fs = self.cfg.sample_rate;
        let width = band.1 - band.0;
        let centre = 0.5 * (band.0 + band.1);
        for lv in &self.levels {
            let bin = fs / lv.nw as f64;
            if (2.0 * bin - width).abs() < 1e-9 * width && lv.n > 0.0 {
                let k = (centre / bin).round() as usize;
                let m2 = lv.s2[k] / lv.n;
                return if m2 > 0.0 {
                    lv.s4[k] / lv.n / (m2 * m2) - 2.0
                } else {
                    f64::NAN
                };
            }
        }
        f64::NAN
    }

    fn process_frame(&mut self) {
        let n = self.frame;
        let mean = self.pending.iter().sum::<f64>() / n as f64;
        for (b, v) in self.buf.iter_mut().zip(&self.pending) {
            *b = v - mean;
        }
        let first = self.consumed_frames == 0;
        if matches!(self.cfg.band, BandChoice::SpectralKurtosis) {
            self.accumulate_sk(if first { 0 } else { self.hop });
            let due = first
                || self.band.is_none()
                || self.consumed_frames % self.cfg.reselect_every as u64 == 0;
            if due {
                if let Some((lo, hi, sk)) = self.best_sk_band() {
                    let switch = match self.band {
                        None => true,
                        Some(cur) if cur == (lo, hi) => false,
                        Some(cur) => {
                            let cur_sk = self.sk_of_band(cur);
                            !(cur_sk.is_finite())
                                || sk > cur_sk + self.cfg.hysteresis * cur_sk.abs().max(0.1)
                        }
                    };
                    if switch {
                        if self.band.is_some() {
                            self.band_changes += 1;
                        }
                        self.band = Some((lo, hi));
                        // an average over different bands means nothing: restart it
                        self.ses_frames = 0;
                        self.env_m2 = 0.0;
                        self.env_m4 = 0.0;
                    }
                    self.band_sk = sk;
                }
            }
        }
        let Some((lo, hi)) = self.band else { return };
        // 1) spectrum of the frame
        if self.fwd.process(&mut self.buf, &mut self.spec).is_err() {
            return;
        }
        // 2) analytic band: positive in-band bins doubled, all else zero
        let df = self.cfg.sample_rate / n as f64;
        let klo = ((lo / df).ceil() as usize).max(1);
        let khi = ((hi / df).floor() as usize).min(n / 2 - 1);
        self.analytic
            .iter_mut()
            .for_each(|c| *c = Complex64::default());
        for k in klo..=khi {
            self.analytic[k] = self.spec[k] * 2.0;
        }
        self.inv
            .process_with_scratch(&mut self.analytic, &mut self.fft_scratch);
        // 3) squared envelope; its moments over the middle half (free of circular wrap)
        let scale = 1.0 / (n as f64 * n as f64);
        let (mut m2, mut m4) = (0.0, 0.0);
        for (i, (b, z)) in self.buf.iter_mut().zip(&self.analytic).enumerate() {
            let se = z.norm_sqr() * scale;
            *b = se;
            if i >= n / 4 && i < 3 * n / 4 {
                m2 += se;
                m4 += se * se;
            }
        }
        let se_mean = self.buf.iter().sum::<f64>() / n as f64;
        for (b, w) in self.buf.iter_mut().zip(&self.hann) {
            *b = (*b - se_mean) * w;
        }
        if self.fwd.process(&mut self.buf, &mut self.spec).is_err() {
            return;
        }
        // 4) average
        self.ses_frames += 1;
        let alpha = 1.0 / self.ses_frames.min(self.cfg.average) as f64;
        self.ses_w2 = (1.0 - alpha) * (1.0 - alpha) * self.ses_w2 + alpha * alpha;
        // this frame's level: its mean envelope power over the range fault lines can use
        let kmax = ((0.8 * (hi - lo) / df) as usize).clamp(3, self.spec.len());
        let level =
            self.spec[2..kmax].iter().map(|c| c.norm_sqr()).sum::<f64>() / (kmax - 2) as f64;
        self.level_s1 = (1.0 - alpha) * self.level_s1 + alpha * level;
        self.level_s2 = (1.0 - alpha) * (1.0 - alpha) * self.level_s2 + (alpha * level).powi(2);
        for (a, c) in self.ses.iter_mut().zip(&self.spec) {
            *a += alpha * (c.norm_sqr() - *a);
        }
        let half = (n / 2) as f64;
        self.env_m2 += alpha * (m2 / half - self.env_m2);
        self.env_m4 += alpha * (m4 / half - self.env_m4);
        self.shaft_avg += alpha * (self.shaft_hz - self.shaft_avg);
    }

    /// Kurtosis excess of the squared envelope: E[e^2] / E[e]^2 - 2 (0 for Gaussian noise).
    pub fn band_kurtosis_se(&self) -> f64 {
        let Some((lo, hi)) = self.band else {
            return f64::NAN;
        };
        if self.ses_frames == 0 || self.ses_w2 <= 0.0 {
            return f64::NAN;
        }
        // the moments use each frame's middle half: consecutive frames tile without overlap
        let samples = (self.frame / 2) as f64 / self.ses_w2;
        let independent = (samples * (hi - lo) / self.cfg.sample_rate).max(1.0);
        2.0 / independent.sqrt()
    }

    pub fn band_kurtosis(&self) -> f64 {
        if self.ses_frames == 0 || self.env_m2 <= 0.0 {
            return f64::NAN;
        }
        self.env_m4 / (self.env_m2 * self.env_m2) - 2.0
    }

    /// The averaged squared-envelope spectrum as amplitudes (g^2), bins of sample_rate/frame.
    pub fn envelope_spectrum(&self) -> Vec<f64> {
        let gain: f64 = self.hann.iter().sum();
        self.ses.iter().map(|p| 2.0 * p.sqrt() / gain).collect()
    }

    /// Median of the SES over `lo..=hi` without `xlo..=xhi` (bins), and how many bins that is.
    fn floor_median(&self, lo: usize, hi: usize, xlo: usize, xhi: usize) -> (f64, usize) {
        let mut v: Vec<f64> = (lo..=hi)
            .filter(|k| *k < xlo || *k > xhi)
            .map(|k| self.ses[k])
            .collect();
        let n = v.len();
        (median(&mut v), n)
    }

    fn refine(&self, k: usize) -> f64 {
        let df = self.cfg.sample_rate / self.frame as f64;
        if k == 0 || k + 1 >= self.ses.len() {
            return k as f64 * df;
        }
        let (a, b, c) = (
            self.ses[k - 1].max(1e-300).ln(),
            self.ses[k].max(1e-300).ln(),
            self.ses[k + 1].max(1e-300).ln(),
        );
        let den = a - 2.0 * b + c;
        let d = if den.abs() > 0.0 {
            0.5 * (a - c) / den
        } else {
            0.0
        };
        (k as f64 + d.clamp(-0.5, 0.5)) * df
    }

    /// The null model of the current average: (K, median of Gamma(K, 1/K), its relative
    /// variance against a mean's, per bin).
    fn null_model(&self) -> (f64, f64, f64) {
        let k = self.effective_frames().max(1e-3);
        let m = stats::gamma_median(k);
        let f = stats::gamma_pdf(k, m);
        // var(median / m) over var(mean), asymptotically: K / (4 f(m)^2 m^2)
        (k, m, k / (4.0 * f * f * m * m))
    }

    /// ln p of one bin against its floor: the F(2K, 2K N_eq) survival function.
    fn ln_p_bin(&self, k: usize, floor: f64, n_eq: f64, null: (f64, f64, f64)) -> f64 {
        let (kf, m, _) = null;
        let x = self.ses[k] / (floor / m);
        if !(x.is_finite() && floor > 0.0) {
            return 0.0;
        }
        stats::ln_f_sf(x, 2.0 * kf, 2.0 * kf * n_eq)
    }

    fn score_series(&self, kind: FaultKind, f0: f64, sideband: f64) -> SeriesScore {
        let df = self.cfg.sample_rate / self.frame as f64;
        let len = self.ses.len();
        let alpha = self.cfg.series_alpha();
        let mut out = SeriesScore {
            kind,
            expected_hz: f0,
            frequency_hz: f64::NAN,
            ratio: f64::NAN,
            score_db: f64::NAN,
            log10_p: f64::NAN,
            log10_alpha: alpha.log10(),
            margin_db: f64::NAN,
            significant: false,
            at_edge: false,
            harmonics: 0,
            tested: 0,
            sidebands: 0,
            harmonic_db: Vec::new(),
        };
        let limit = match self.band {
            Some((lo, hi)) => 0.8 * (hi - lo),
            None => return out,
        }
        .min(self.cfg.sample_rate / 2.0);
        if self.ses_frames == 0 || f0.is_nan() || f0 <= 0.0 {
            return out;
        }
        let (r_lo, r_hi) = (
            1.0 - self.cfg.tolerance - self.cfg.slip,
            1.0 + self.cfg.tolerance,
        );
        let shaft = self.shaft_avg;
        // the floor: the median within one shaft speed (at least 20 bins) either side of a
        // harmonic's search range
        let reach = shaft.max(20.0 * df);
        let null = self.null_model();
        // per harmonic: bin range searched, floor, equivalent floor bins
        struct Harmonic {
            klo: usize,
            khi: usize,
            floor: f64,
            n_eq: f64,
        }
        let mut hs: Vec<Harmonic> = Vec::new();
        for h in 1..=self.cfg.harmonics {
            let (flo, fhi) = (h as f64 * f0 * r_lo, h as f64 * f0 * r_hi);
            if fhi + reach + df > limit {
                break;
            }
            let klo = ((flo / df).round() as usize).max(3);
            let khi = ((fhi / df).round() as usize).min(len - 2);
            let lo = (((flo - reach) / df).floor().max(2.0)) as usize;
            let hi = (((fhi + reach) / df).ceil() as usize).min(len - 1);
            if khi < klo || hi <= lo {
                break;
            }
            let (floor, n) = self.floor_median(lo, hi, klo.saturating_sub(1), khi + 1);
            if n < 8 || floor.is_nan() || floor <= 0.0 {
                break;
            }
            hs.push(Harmonic {
                klo,
                khi,
                floor,
                n_eq: n as f64 / (self.bin_corr * null.2),
            });
        }
        if hs.len() < self.cfg.min_harmonics {
            return out;
        }
        // ln p of every bin each harmonic may land on
        let ln_p: Vec<Vec<f64>> = hs
            .iter()
            .map(|h| {
                (h.klo..=h.khi)
                    .map(|k| self.ln_p_bin(k, h.floor, h.n_eq, null))
                    .collect()
            })
            .collect();
        // a line on an integer multiple of shaft speed cannot be told from unbalance etc.
        let on_shaft = |k: usize| {
            let f = k as f64 * df;
            let n = (f / shaft).round();
            n >= 1.0 && (f - n * shaft).abs() <= 1.5 * df
        };
        // the comb: one speed ratio for all harmonics, stepped so the top harmonic moves by
        // half a bin; distinct bin tuples counted for the Bonferroni factor
        let top = hs.len() as f64 * f0;
        let step = 0.5 * df / top;
        let steps = ((r_hi - r_lo) / step).ceil() as usize;
        let mut combs = 0usize;
        let mut last: Vec<usize> = Vec::new();
        let mut best: Option<(f64, f64, Vec<usize>)> = None; // (ln p, r, bins)
        for i in 0..=steps {
            let r = r_lo + i as f64 * step;
            let bins: Vec<usize> = hs
                .iter()
                .enumerate()
                .map(|(j, h)| (((j + 1) as f64 * f0 * r / df).round() as usize).clamp(h.klo, h.khi))
                .collect();
            if bins == last {
                continue;
            }
            combs += 1;
            let mut t = 0.0;
            let mut used = 0;
            for (j, &k) in bins.iter().enumerate() {
                if on_shaft(k) {
                    continue;
                }
                t -= 2.0 * ln_p[j][k - hs[j].klo].max(-700.0);
                used += 1;
            }
            last = bins;
            if used < self.cfg.min_harmonics {
                continue;
            }
            let lp = stats::ln_chi2_sf_even(t, used);
            if best.as_ref().is_none_or(|b| lp < b.0) {
                best = Some((lp, r, last.clone()));
            }
        }
        let Some((lp, r, bins)) = best else {
            return out;
        };
        let log10_p = stats::log10_of_ln(lp + (combs as f64).ln()).min(0.0);
        let single = 0.01f64.ln();
        // line power above the floor (mean-normalised) of each harmonic of the best comb
        let excess = |j: usize, k: usize| self.ses[k] / (hs[j].floor / null.1) - 1.0;
        let strongest = bins
            .iter()
            .enumerate()
            .filter(|(_, &k)| !on_shaft(k))
            .map(|(j, &k)| excess(j, k))
            .fold(0.0f64, f64::max);
        let mut fundamental_ok = None;
        let mut harmonic_db = Vec::new();
        for (j, &k) in bins.iter().enumerate() {
            if on_shaft(k) {
                continue;
            }
            // impacts put comparable power into their first harmonics (jitter of a few %
            // barely lowers them); a sinusoidal modulation puts nearly all into the
            // fundamental: a harmonic 10 dB under the strongest line is not evidence of
            // impacts however significant it is
            let stands_out =
                ln_p[j][k - hs[j].klo] <= single && excess(j, k) >= COMPARABLE * strongest;
            fundamental_ok.get_or_insert(stands_out);
            if stands_out {
                out.harmonics += 1;
            }
            harmonic_db.push(10.0 * (self.ses[k] / (hs[j].floor / null.1)).log10());
            if sideband > 0.0 {
                for s in [-sideband * r, sideband * r] {
                    let ks = ((k as f64 * df + s) / df).round() as usize;
                    let k_best = (ks.saturating_sub(1)..=(ks + 1).min(len - 1))
                        .max_by(|a, b| self.ses[*a].total_cmp(&self.ses[*b]))
                        .unwrap_or(ks);
                    if k_best >= 1 && self.ln_p_bin(k_best, hs[j].floor, hs[j].n_eq, null) <= single
                    {
                        out.sidebands += 1;
                    }
                }
            }
        }
        out.tested = harmonic_db.len();
        let used = harmonic_db.len().min(3);
        out.score_db = harmonic_db[..used].iter().sum::<f64>() / used.max(1) as f64;
        out.harmonic_db = harmonic_db;
        out.frequency_hz = self.refine(bins[0]);
        out.ratio = r;
        out.log10_p = log10_p;
        out.margin_db = 10.0 * (out.log10_alpha - log10_p);
        out.at_edge = r - r_lo < 1.5 * step || r_hi - r < 1.5 * step;
        out.significant = log10_p <= out.log10_alpha
            && out.harmonics >= self.cfg.min_harmonics
            && fundamental_ok == Some(true);
        out
    }

    fn top_peaks(&self, count: usize) -> Vec<(f64, f64)> {
        let df = self.cfg.sample_rate / self.frame as f64;
        let limit = match self.band {
            Some((lo, hi)) => 0.8 * (hi - lo),
            None => return Vec::new(),
        };
        let kmax = ((limit / df) as usize).min(self.ses.len() - 1);
        let kmin = ((0.5 * self.shaft_avg / df) as usize).max(2);
        if kmax <= kmin + 2 {
            return Vec::new();
        }
        let mut all: Vec<f64> = self.ses[kmin..kmax].to_vec();
        let med = median(&mut all);
        let mut peaks: Vec<(usize, f64)> = (kmin..kmax)
            .filter(|&k| self.ses[k] > self.ses[k - 1] && self.ses[k] >= self.ses[k + 1])
            .map(|k| (k, self.ses[k]))
            .collect();
        peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
        peaks.truncate(count);
        peaks
            .into_iter()
            .map(|(k, p)| (self.refine(k), 10.0 * (p / med).log10()))
            .collect()
    }

    /// Diagnose from the current average. The verdict is the significant series with the
    /// largest margin; it is "uncertain" when that comb sits at the edge of the speed range
    /// searched (the rpm is probably off) or when another series is about as significant.
    pub fn diagnose(&self) -> Diagnosis {
        let o = self.cfg.orders.at(self.shaft_avg);
        let series = vec![
            self.score_series(FaultKind::OuterRace, o.bpfo, 0.0),
            self.score_series(FaultKind::InnerRace, o.bpfi, self.shaft_avg),
            self.score_series(FaultKind::Ball, 2.0 * o.bsf, o.ftf),
        ];
        let band_kurtosis = self.band_kurtosis();
        let band_kurtosis_se = self.band_kurtosis_se();
        let impulsive =
            band_kurtosis >= self.cfg.min_band_kurtosis && band_kurtosis >= 3.0 * band_kurtosis_se;
        let mut ranked: Vec<&SeriesScore> = series.iter().filter(|s| s.significant).collect();
        ranked.sort_by(|a, b| b.margin_db.total_cmp(&a.margin_db));
        let mut note = String::new();
        if !impulsive {
            if let Some(w) = ranked.first() {
                note = format!(
                    "{} lines are significant but the band is not impulsive (kurtosis excess \
                     {:.2}, needs {:.2}): a modulation, not the impacts of a localized defect",
                    w.kind.name(),
                    band_kurtosis,
                    self.cfg.min_band_kurtosis.max(3.0 * band_kurtosis_se)
                );
            }
            ranked.clear();
        }
        let (fault, shown) = match ranked.as_slice() {
            [] => (
                FaultKind::None,
                series
                    .iter()
                    .filter(|s| s.margin_db.is_finite())
                    .max_by(|a, b| a.margin_db.total_cmp(&b.margin_db)),
            ),
            [w, rest @ ..] => {
                if w.at_edge {
                    note = format!(
                        "{} lines found at {:.1} % of nominal speed, the edge of the range \
                         searched: check the rpm",
                        w.kind.name(),
                        100.0 * w.ratio
                    );
                    (FaultKind::Uncertain, Some(*w))
                } else if w.kind != FaultKind::OuterRace && w.sidebands == 0 {
                    // a defect on the rotating inner ring passes the load zone once per
                    // revolution, a damaged ball once per cage turn: their lines carry
                    // sidebands at shaft speed or FTF; lines without any are something else
                    note = format!(
                        "{} lines without the {} sidebands that defect makes",
                        w.kind.name(),
                        if w.kind == FaultKind::InnerRace {
                            "shaft-speed"
                        } else {
                            "cage (FTF)"
                        }
                    );
                    (FaultKind::Uncertain, Some(*w))
                } else if let Some(r) = rest.first().filter(|r| r.margin_db >= 0.5 * w.margin_db) {
                    note = format!(
                        "{} ({:.0} dB) and {} ({:.0} dB) are both significant",
                        w.kind.name(),
                        w.margin_db,
                        r.kind.name(),
                        r.margin_db
                    );
                    (FaultKind::Uncertain, Some(*w))
                } else {
                    (w.kind, Some(*w))
                }
            }
        };
        let (score_db, frequency_hz, harmonics, margin_db) = match shown {
            Some(s) => (s.score_db, s.frequency_hz, s.harmonics, s.margin_db),
            None => (f64::NAN, f64::NAN, 0, f64::NAN),
        };
        Diagnosis {
            fault,
            score_db,
            frequency_hz,
            harmonics,
            series,
            band: self.band.unwrap_or((f64::NAN, f64::NAN)),
            band_kurtosis,
            frames: self.ses_frames,
            effective_frames: self.effective_frames(),
            shaft_hz: self.shaft_avg,
            margin_db,
            band_kurtosis_se,
            impulsive,
            note,
            peaks: self.top_peaks(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::bearing::{bearing_by_name, fault_orders};

    /// Deterministic pseudo-random noise (xorshift + Box-Muller), no extra crates.
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed | 1;
        let mut uniform = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (uniform().max(1e-300), uniform());
                (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
            })
            .collect()
    }

    fn impacts(fs: f64, fault_hz: f64, seconds: f64, amp: f64) -> Vec<f64> {
        let n = (fs * seconds) as usize;
        let mut x: Vec<f64> = noise(n, 7).iter().map(|v| 0.3 * v).collect();
        let f_res = 3000.0;
        let mut t_hit = 0.0;
        while t_hit < seconds {
            let k0 = (t_hit * fs) as usize;
            for (k, v) in x.iter_mut().enumerate().skip(k0).take(200) {
                let t = (k - k0) as f64 / fs;
                *v += amp
                    * (-0.05 * 2.0 * std::f64::consts::PI * f_res * t).exp()
                    * (2.0 * std::f64::consts::PI * f_res * t).sin();
            }
            t_hit += 1.0 / fault_hz;
        }
        x
    }

    fn analyzer(fs: f64) -> EnvelopeAnalyzer {
        let o = fault_orders(&bearing_by_name("6205").unwrap().geometry).unwrap();
        EnvelopeAnalyzer::new(EnvelopeConfig::new(fs, o, 30.0)).unwrap()
    }

    #[test]
    fn outer_race_impacts_are_found() {
        let fs = 12_000.0;
        let mut a = analyzer(fs);
        let bpfo = a.config().orders.bpfo * 30.0;
        a.feed(&impacts(fs, bpfo, 8.0, 1.5)).unwrap();
        let d = a.diagnose();
        assert_eq!(d.fault, FaultKind::OuterRace, "{d:?}");
        assert!((d.frequency_hz / bpfo - 1.0).abs() < 0.02);
        assert!(d.band.0 <= 3000.0 && 3000.0 <= d.band.1, "{:?}", d.band);
    }

    #[test]
    fn gaussian_noise_is_not_a_fault() {
        let mut a = analyzer(12_000.0);
        a.feed(&noise(120_000, 3)).unwrap();
        let d = a.diagnose();
        assert_eq!(d.fault, FaultKind::None, "{d:?}");
        assert!(d.band_kurtosis.abs() < 0.3, "{}", d.band_kurtosis);
    }

    #[test]
    fn chunking_gives_identical_frames() {
        let fs = 12_000.0;
        let x = impacts(fs, 107.0, 4.0, 1.0);
        let mut whole = analyzer(fs);
        let all = whole.feed(&x).unwrap();
        let mut parts = analyzer(fs);
        let mut got = Vec::new();
        for c in x.chunks(333) {
            got.extend(parts.feed(c).unwrap());
        }
        assert_eq!(all, got);
    }

    #[test]
    fn slow_sampling_still_picks_a_band() {
        // 2 kHz sampling, 3600 rpm: three BPFI harmonics cannot fit in any candidate band
        let o = fault_orders(&bearing_by_name("6205").unwrap().geometry).unwrap();
        let mut a = EnvelopeAnalyzer::new(EnvelopeConfig::new(2_000.0, o, 60.0)).unwrap();
        a.feed(&noise(40_000, 5)).unwrap();
        let d = a.diagnose();
        assert!(d.band.1 > d.band.0, "{d:?}");
        assert_eq!(d.fault, FaultKind::None);
    }

    #[test]
    fn bad_config_is_rejected() {
        let o = fault_orders(&bearing_by_name("6205").unwrap().geometry).unwrap();
        assert!(EnvelopeAnalyzer::new(EnvelopeConfig::new(12_000.0, o, 0.0)).is_err());
        let mut c = EnvelopeConfig::new(12_000.0, o, 30.0);
        c.frame = 1000;
        assert!(EnvelopeAnalyzer::new(c).is_err());
        let mut a = analyzer(12_000.0);
        assert!(a.feed(&[f64::NAN]).is_err());
    }
}
