//! Streaming anti-aliased decimation: Kaiser-windowed-sinc FIR low-pass, then keep
//! every `factor`-th sample. Output depends only on sample indices, never on chunking.

use super::{param, DiagnosticsError};

/// Stop-band attenuation of the anti-alias filter in dB.
const STOPBAND_DB: f64 = 80.0;
/// Pass band ends at this fraction of the output Nyquist frequency; the stop band
/// starts at the output Nyquist frequency, so nothing above it folds into the pass band.
const PASSBAND_FRACTION: f64 = 0.8;

#[derive(Debug, Clone)]
pub struct Decimator {
    factor: usize,
    taps: Vec<f64>,
    /// The last `taps.len() - 1` input samples (zeros before the first one).
    history: Vec<f64>,
    consumed: u64,
}

fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..200 {
        term *= q / (k as f64 * k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// Low-pass FIR taps (unit DC gain) for decimation by `factor` (Kaiser design formulas).
pub fn antialias_taps(factor: usize) -> Vec<f64> {
    let nyq_out = 0.5 / factor as f64; // cycles per input sample
    let f_pass = PASSBAND_FRACTION * nyq_out;
    let f_stop = nyq_out;
    let cutoff = 0.5 * (f_pass + f_stop);
    let width = 2.0 * std::f64::consts::PI * (f_stop - f_pass);
    let a = STOPBAND_DB;
    let beta = 0.1102 * (a - 8.7);
    let mut n = ((a - 8.0) / (2.285 * width)).ceil() as usize + 1;
    if n % 2 == 0 {
        n += 1;
    }
    let mid = (n - 1) as f64 / 2.0;
    let i0b = bessel_i0(beta);
    let mut taps: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 - mid;
            let sinc = if t == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * std::f64::consts::PI * cutoff * t).sin() / (std::f64::consts::PI * t)
            };
            let r = t / mid;
            sinc * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0b
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= sum);
    taps
}

impl Decimator {
    pub fn new(factor: usize) -> Result<Self, DiagnosticsError> {
        if !(1..=64).contains(&factor) {
            return Err(param("factor", format!("must be in 1..=64, got {factor}")));
        }
        let taps = if factor == 1 {
            vec![1.0]
        } else {
            antialias_taps(factor)
        };
        let history = vec![0.0; taps.len() - 1];
        Ok(Self {
            factor,
            taps,
            history,
            consumed: 0,
        })
    }

    pub fn factor(&self) -> usize {
        self.factor
    }

    pub fn taps(&self) -> &[f64] {
        &self.taps
    }

    /// Group delay in input samples (the filter is linear-phase).
    pub fn delay(&self) -> usize {
        (self.taps.len() - 1) / 2
    }

    /// Feed any number of input samples; returns the output samples they complete.
    pub fn process(&mut self, x: &[f64]) -> Vec<f64> {
        let l = self.taps.len();
        let mut buf = std::mem::take(&mut self.history);
        buf.extend_from_slice(x);
        // buf[j] holds input sample (consumed - (l - 1) + j).
        let q = self.factor as u64;
        let first = self.consumed.div_ceil(q) * q;
        let end = self.consumed + x.len() as u64;
        let mut out = Vec::with_capacity(x.len() / self.factor + 1);
        let mut n = first;
        while n < end {
            let j = (n - self.consumed) as usize + l - 1;
            // y[n] = sum_k h[k] x[n - k]; the window buf[j+1-l ..= j] read backwards.
            let window = &buf[j + 1 - l..=j];
            let acc: f64 = self
                .taps
                .iter()
                .zip(window.iter().rev())
                .map(|(h, v)| h * v)
                .sum();
            out.push(acc);
            n += q;
        }
        self.consumed = end;
        let keep_from = buf.len() - (l - 1);
        buf.drain(..keep_from);
        self.history = buf;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(f: f64, fs: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / fs).sin())
            .collect()
    }

    fn rms(x: &[f64]) -> f64 {
        (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn passes_low_tones_and_rejects_aliases() {
        let fs = 48_000.0;
        let mut d = Decimator::new(4).unwrap();
        let skip = d.taps().len();
        let y = d.process(&tone(1000.0, fs, 48_000));
        assert!((rms(&y[skip..]) - 0.5f64.sqrt()).abs() < 1e-3);
        let mut d = Decimator::new(4).unwrap();
        // 10 kHz would alias to 2 kHz at 12 kHz output.
        let y = d.process(&tone(10_000.0, fs, 48_000));
        assert!(rms(&y[skip..]) < 1e-3, "{}", rms(&y[skip..]));
    }

    #[test]
    fn chunking_does_not_change_output() {
        let x: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 101) as f64 - 50.0)
            .collect();
        let whole = Decimator::new(3).unwrap().process(&x);
        let mut d = Decimator::new(3).unwrap();
        let mut parts = Vec::new();
        for c in x.chunks(37) {
            parts.extend(d.process(c));
        }
        assert_eq!(whole.len(), parts.len());
        for (a, b) in whole.iter().zip(&parts) {
            assert!((a - b).abs() < 1e-9);
        }
    }
}
