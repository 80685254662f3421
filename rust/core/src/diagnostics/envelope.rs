//! Streaming envelope analysis (squared-envelope spectrum, SES) with fault scoring.
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
//! Scores: each harmonic `h f0` of a fault frequency is searched within +/- `tolerance` (slip)
//! and compared with the median of the surrounding bins (the local noise floor), in dB.
//! A series scores the mean of its first three usable harmonics, so a series without its
//! fundamental cannot win on a coincident higher harmonic.

use super::bearing::FaultOrders;
use super::{param, DiagnosticsError};
use crate::spectrum::WindowKind;
use num_complex::Complex64;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

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
    pub tolerance: f64,
    /// A harmonic counts when it stands this far (dB) above its local floor.
    pub harmonic_threshold_db: f64,
    /// A series is a fault when its score reaches this (dB) with at least `min_harmonics`.
    pub fault_threshold_db: f64,
    pub min_harmonics: usize,
    /// Kurtosis excess (0 = Gaussian) of the squared envelope that marks the band as
    /// impulsive. A localized fault produces impacts; a series between `fault_threshold_db`
    /// (10 dB: ten times the local floor) and `strong_fault_db` (20 dB: a hundred times) only
    /// counts when the band is impulsive too, two independent signs of a fault, while a
    /// series at `strong_fault_db` stands on its own.
    pub min_band_kurtosis: f64,
    pub strong_fault_db: f64,
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
            harmonic_threshold_db: 6.0,
            fault_threshold_db: 10.0,
            min_harmonics: 2,
            min_band_kurtosis: 0.5,
            strong_fault_db: 20.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    None,
    OuterRace,
    InnerRace,
    Ball,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::None => "none",
            FaultKind::OuterRace => "outer_race",
            FaultKind::InnerRace => "inner_race",
            FaultKind::Ball => "ball",
        }
    }
}

/// Score of one fault-frequency series in the averaged squared-envelope spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesScore {
    pub kind: FaultKind,
    /// Theoretical fundamental in Hz (for ball faults: BSF or 2 x BSF, whichever scored).
    pub expected_hz: f64,
    /// Frequency of the fundamental's peak found inside the search window (Hz).
    pub frequency_hz: f64,
    /// Mean over the first three usable harmonics of peak-over-floor (dB).
    pub score_db: f64,
    /// Harmonics (of the usable ones) above the harmonic threshold.
    pub harmonics: usize,
    /// Sidebands (shaft speed for inner race, FTF for ball) above the harmonic threshold.
    pub sidebands: usize,
    /// Peak-over-floor of each usable harmonic, dB.
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
    pub shaft_hz: f64,
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
        Ok(Self {
            frame,
            hop: frame / 2,
            shaft_hz: cfg.shaft_hz,
            pending: Vec::with_capacity(2 * frame),
            consumed_frames: 0,
            fwd,
            inv,
            hann: hann(frame),
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
        for (a, c) in self.ses.iter_mut().zip(&self.spec) {
            *a += alpha * (c.norm_sqr() - *a);
        }
        let half = (n / 2) as f64;
        self.env_m2 += alpha * (m2 / half - self.env_m2);
        self.env_m4 += alpha * (m4 / half - self.env_m4);
        self.shaft_avg += alpha * (self.shaft_hz - self.shaft_avg);
    }

    /// Kurtosis excess of the squared envelope: E[e^2] / E[e]^2 - 2 (0 for Gaussian noise).
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

    fn peak_in(&self, fc: f64, half_width: f64) -> Option<(usize, f64)> {
        let df = self.cfg.sample_rate / self.frame as f64;
        let len = self.ses.len();
        let mut lo = ((fc - half_width) / df).floor().max(1.0) as usize;
        let mut hi = ((fc + half_width) / df).ceil() as usize;
        let c = (fc / df).round() as usize;
        lo = lo.min(c.saturating_sub(1)).max(1);
        hi = hi.max(c + 1);
        if hi >= len {
            return None;
        }
        let (mut bi, mut bv) = (lo, self.ses[lo]);
        for k in lo..=hi {
            if self.ses[k] > bv {
                bi = k;
                bv = self.ses[k];
            }
        }
        Some((bi, bv))
    }

    fn floor_around(&self, fc: f64, exclude_half: f64) -> f64 {
        let df = self.cfg.sample_rate / self.frame as f64;
        let half = self.shaft_avg.max(12.0 * df);
        let lo = ((fc - half) / df).floor().max(1.0) as usize;
        let hi = (((fc + half) / df).ceil() as usize).min(self.ses.len() - 1);
        let (xlo, xhi) = (fc - exclude_half - df, fc + exclude_half + df);
        let mut v: Vec<f64> = (lo..=hi)
            .filter(|&k| {
                let f = k as f64 * df;
                f < xlo || f > xhi
            })
            .map(|k| self.ses[k])
            .collect();
        median(&mut v)
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

    fn score_series(&self, kind: FaultKind, f0: f64, sideband: f64) -> SeriesScore {
        let df = self.cfg.sample_rate / self.frame as f64;
        let tol = self.cfg.tolerance;
        let limit = match self.band {
            Some((lo, hi)) => 0.8 * (hi - lo),
            None => 0.0,
        }
        .min(self.cfg.sample_rate / 2.0);
        let thr = self.cfg.harmonic_threshold_db;
        let mut harmonic_db = Vec::new();
        let mut frequency_hz = f64::NAN;
        let mut sidebands = 0;
        for h in 1..=self.cfg.harmonics {
            let fc = h as f64 * f0;
            let floor_half = self.shaft_avg.max(12.0 * df);
            if fc * (1.0 + tol) + floor_half > limit {
                break;
            }
            let Some((k, peak)) = self.peak_in(fc, tol * fc) else {
                break;
            };
            let floor = self.floor_around(fc, tol * fc);
            let db = 10.0 * (peak / floor).log10();
            let db = if db.is_finite() { db } else { 0.0 };
            if h == 1 {
                frequency_hz = self.refine(k);
            }
            if sideband > 0.0 {
                let fk = k as f64 * df;
                for s in [fk - sideband, fk + sideband] {
                    if let Some((_, p)) = self.peak_in(s, 2.0 * df) {
                        if 10.0 * (p / floor).log10() >= thr {
                            sidebands += 1;
                        }
                    }
                }
            }
            harmonic_db.push(db);
        }
        let used = harmonic_db.len().min(3);
        let score_db = if used == 0 {
            f64::NAN
        } else {
            harmonic_db[..used].iter().sum::<f64>() / used as f64
        };
        SeriesScore {
            kind,
            expected_hz: f0,
            frequency_hz,
            score_db,
            harmonics: harmonic_db.iter().filter(|&&d| d >= thr).count(),
            sidebands,
            harmonic_db,
        }
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

    /// Diagnose from the current average.
    pub fn diagnose(&self) -> Diagnosis {
        let o = self.cfg.orders.at(self.shaft_avg);
        let outer = self.score_series(FaultKind::OuterRace, o.bpfo, 0.0);
        let inner = self.score_series(FaultKind::InnerRace, o.bpfi, self.shaft_avg);
        let ball1 = self.score_series(FaultKind::Ball, o.bsf, o.ftf);
        let ball2 = self.score_series(FaultKind::Ball, 2.0 * o.bsf, o.ftf);
        let ball = if ball2.score_db.is_nan() || ball1.score_db >= ball2.score_db {
            ball1
        } else {
            ball2
        };
        let band_kurtosis = self.band_kurtosis();
        let impulsive = band_kurtosis >= self.cfg.min_band_kurtosis;
        let series = vec![outer, inner, ball];
        let winner = series
            .iter()
            .filter(|s| {
                s.harmonics >= self.cfg.min_harmonics
                    && ((impulsive && s.score_db >= self.cfg.fault_threshold_db)
                        || s.score_db >= self.cfg.strong_fault_db)
            })
            .max_by(|a, b| a.score_db.total_cmp(&b.score_db));
        let (fault, score_db, frequency_hz, harmonics) = match winner {
            Some(s) => (s.kind, s.score_db, s.frequency_hz, s.harmonics),
            None => {
                // report the strongest candidate's score so "how close" stays visible
                let best = series
                    .iter()
                    .filter(|s| s.score_db.is_finite())
                    .max_by(|a, b| a.score_db.total_cmp(&b.score_db));
                match best {
                    Some(s) => (FaultKind::None, s.score_db, s.frequency_hz, s.harmonics),
                    None => (FaultKind::None, f64::NAN, f64::NAN, 0),
                }
            }
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
            shaft_hz: self.shaft_avg,
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
