//! Spectral windows (cosine sums) with their gains and their exact frequency response.
//!
//! All windows here are sums of cosines, `w[n] = sum_k (-1)^k a_k cos(2 pi k n / M)`, which
//! gives their DTFT in closed form (a sum of shifted Dirichlet kernels). That closed form is
//! what makes amplitude-correct peak interpolation cheap: see [`WindowKernel`].

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use super::SpectrumError;

/// A window shape. Coefficients follow `scipy.signal.windows` exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Rectangular,
    Hann,
    Hamming,
    Blackman,
    /// scipy's flat top (5 terms): amplitude-accurate to about 0.01 dB anywhere between bins.
    Flattop,
}

impl WindowKind {
    /// All supported windows, in the order error messages list them.
    pub const ALL: [WindowKind; 5] = [
        WindowKind::Hann,
        WindowKind::Hamming,
        WindowKind::Blackman,
        WindowKind::Flattop,
        WindowKind::Rectangular,
    ];

    /// The name used in configuration (`"hann"`, `"flattop"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Rectangular => "rectangular",
            WindowKind::Hann => "hann",
            WindowKind::Hamming => "hamming",
            WindowKind::Blackman => "blackman",
            WindowKind::Flattop => "flattop",
        }
    }

    /// Cosine-sum coefficients `a_k` (scipy's `general_cosine` convention).
    pub fn cosine_coefficients(self) -> &'static [f64] {
        match self {
            WindowKind::Rectangular => &[1.0],
            WindowKind::Hann => &[0.5, 0.5],
            WindowKind::Hamming => &[0.54, 0.46],
            WindowKind::Blackman => &[0.42, 0.50, 0.08],
            WindowKind::Flattop => &[
                0.215_578_95,
                0.416_631_58,
                0.277_263_158,
                0.083_578_947,
                0.006_947_368,
            ],
        }
    }

    /// The window of length `len`. `periodic = true` is the "DFT-even" form that
    /// `scipy.signal.get_window` returns by default and `scipy.signal.welch` uses;
    /// `false` is the symmetric form for filter design.
    pub fn coefficients(self, len: usize, periodic: bool) -> Vec<f64> {
        if len == 0 {
            return Vec::new();
        }
        if len == 1 {
            return vec![1.0];
        }
        let period = if periodic { len } else { len - 1 } as f64;
        let a = self.cosine_coefficients();
        (0..len)
            .map(|n| {
                let phase = 2.0 * PI * n as f64 / period;
                a.iter()
                    .enumerate()
                    .map(|(k, &ak)| {
                        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
                        sign * ak * (k as f64 * phase).cos()
                    })
                    .sum()
            })
            .collect()
    }
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WindowKind {
    type Err = SpectrumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "hann" | "hanning" => Ok(WindowKind::Hann),
            "hamming" => Ok(WindowKind::Hamming),
            "blackman" => Ok(WindowKind::Blackman),
            "flattop" | "flat_top" | "flat-top" => Ok(WindowKind::Flattop),
            "rectangular" | "boxcar" | "rect" | "none" => Ok(WindowKind::Rectangular),
            _ => Err(SpectrumError::UnknownWindow {
                name: s.to_string(),
                known: WindowKind::ALL.map(WindowKind::name).join(", "),
            }),
        }
    }
}

/// A periodic window with the gains needed to turn an FFT into physical units.
#[derive(Debug, Clone)]
pub struct Window {
    kind: WindowKind,
    coefficients: Vec<f64>,
    sum: f64,
    sum_squares: f64,
}

impl Window {
    /// The periodic (DFT-even) window of length `len`.
    pub fn periodic(kind: WindowKind, len: usize) -> Self {
        let coefficients = kind.coefficients(len, true);
        let sum = coefficients.iter().sum();
        let sum_squares = coefficients.iter().map(|w| w * w).sum();
        Window {
            kind,
            coefficients,
            sum,
            sum_squares,
        }
    }

    pub fn kind(&self) -> WindowKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.coefficients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.coefficients.is_empty()
    }

    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// `sum(w)`: a sine of amplitude A gives a bin magnitude `A * sum(w) / 2` at its frequency.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `sum(w^2)`: the energy normalisation (Parseval) of a windowed spectrum.
    pub fn sum_squares(&self) -> f64 {
        self.sum_squares
    }

    /// Coherent gain `sum(w) / N` (1 for rectangular, 0.5 for Hann).
    pub fn coherent_gain(&self) -> f64 {
        self.sum / self.len() as f64
    }

    /// Energy (incoherent power) gain `sum(w^2) / N` (1 for rectangular, 0.375 for Hann).
    pub fn energy_gain(&self) -> f64 {
        self.sum_squares / self.len() as f64
    }

    /// Equivalent noise bandwidth in bins: `N sum(w^2) / sum(w)^2` (1.5 for Hann).
    pub fn enbw_bins(&self) -> f64 {
        self.len() as f64 * self.sum_squares / (self.sum * self.sum)
    }

    /// Complex DTFT of the window at `x` bins (x may be fractional), from the closed form.
    pub fn dtft(&self, x: f64) -> (f64, f64) {
        dtft_cosine_sum(self.kind.cosine_coefficients(), self.len(), x)
    }
}

/// `sum_{n<len} exp(-2 pi i y n / len)`, the Dirichlet kernel, as (re, im).
fn dirichlet(len: usize, y: f64) -> (f64, f64) {
    let n = len as f64;
    let denominator = (PI * y / n).sin();
    let magnitude = if denominator.abs() < 1e-300 {
        // y is a multiple of len: every term is 1 (only y = 0 occurs for |y| < len).
        n
    } else {
        (PI * y).sin() / denominator
    };
    let phase = -PI * y * (n - 1.0) / n;
    (magnitude * phase.cos(), magnitude * phase.sin())
}

/// DTFT of the periodic cosine-sum window with coefficients `a` at `x` bins.
fn dtft_cosine_sum(a: &[f64], len: usize, x: f64) -> (f64, f64) {
    let mut re = 0.0;
    let mut im = 0.0;
    for (k, &ak) in a.iter().enumerate() {
        let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
        if k == 0 {
            let (r, i) = dirichlet(len, x);
            re += ak * r;
            im += ak * i;
        } else {
            let c = 0.5 * sign * ak;
            let (r1, i1) = dirichlet(len, x - k as f64);
            let (r2, i2) = dirichlet(len, x + k as f64);
            re += c * (r1 + r2);
            im += c * (i1 + i2);
        }
    }
    (re, im)
}

/// Tabulated main lobe of a window's frequency response, for interpolating spectral peaks.
///
/// For a sine at `k + d` bins (|d| <= 0.5) the bin magnitudes are
/// `|X[k + j]| = A sum(w) / 2 * G(|j - d|)` with `G(x) = |W(x)| / W(0)` (negative-frequency
/// leakage aside). The ratio of the larger neighbour to the peak, `G(1 - |d|) / G(|d|)`, rises
/// monotonically with `|d|` for every window here, so it is inverted for `d`, and the
/// amplitude follows as `2 |X[k]| / (sum(w) G(d))`. Exact for all five windows (unlike a
/// parabola, whose bias depends on the window).
#[derive(Debug, Clone)]
pub struct WindowKernel {
    /// `ratio[i] = G(1 - d_i) / G(d_i)` for `d_i = i / STEPS * 0.5`.
    ratio: Vec<f64>,
    /// `gain[i] = G(d_i)`.
    gain: Vec<f64>,
}

const KERNEL_STEPS: usize = 1024;

impl WindowKernel {
    pub fn new(window: &Window) -> Self {
        let a = window.kind().cosine_coefficients();
        let len = window.len().max(2);
        let w0 = dtft_cosine_sum(a, len, 0.0).0;
        let g = |x: f64| {
            let (re, im) = dtft_cosine_sum(a, len, x);
            re.hypot(im) / w0
        };
        let mut ratio = Vec::with_capacity(KERNEL_STEPS + 1);
        let mut gain = Vec::with_capacity(KERNEL_STEPS + 1);
        for i in 0..=KERNEL_STEPS {
            let d = 0.5 * i as f64 / KERNEL_STEPS as f64;
            let gd = g(d);
            gain.push(gd);
            ratio.push(g(1.0 - d) / gd);
        }
        // Guard monotonicity against rounding so that the inversion below is well defined.
        for i in 1..ratio.len() {
            if ratio[i] < ratio[i - 1] {
                ratio[i] = ratio[i - 1];
            }
        }
        WindowKernel { ratio, gain }
    }

    /// `G(|d|)`, the window's normalised response `d` bins off its centre (|d| <= 0.5).
    pub fn gain(&self, d: f64) -> f64 {
        let pos = (d.abs().min(0.5) * 2.0 * KERNEL_STEPS as f64).min(KERNEL_STEPS as f64);
        let i = (pos as usize).min(KERNEL_STEPS - 1);
        let t = pos - i as f64;
        self.gain[i] + t * (self.gain[i + 1] - self.gain[i])
    }

    /// Fractional offset `d` in [-0.5, 0.5] of a peak at bin k from the magnitudes of
    /// bins k-1, k, k+1 (the centre must be a local maximum).
    pub fn offset(&self, left: f64, centre: f64, right: f64) -> f64 {
        if centre <= 0.0 {
            return 0.0;
        }
        let (neighbour, sign) = if right >= left {
            (right, 1.0)
        } else {
            (left, -1.0)
        };
        let r = (neighbour / centre).min(1.0);
        let table = &self.ratio;
        if r <= table[0] {
            return 0.0;
        }
        if r >= table[KERNEL_STEPS] {
            return sign * 0.5;
        }
        // First index whose ratio exceeds r; the table is non-decreasing.
        let hi = table.partition_point(|&v| v <= r).clamp(1, KERNEL_STEPS);
        let lo = hi - 1;
        let span = table[hi] - table[lo];
        let t = if span > 0.0 {
            (r - table[lo]) / span
        } else {
            0.0
        };
        sign * 0.5 * (lo as f64 + t) / KERNEL_STEPS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hann_matches_the_textbook_periodic_form() {
        let w = WindowKind::Hann.coefficients(8, true);
        for (n, v) in w.iter().enumerate() {
            let expected = 0.5 - 0.5 * (2.0 * PI * n as f64 / 8.0).cos();
            assert!((v - expected).abs() < 1e-15);
        }
        let sym = WindowKind::Hann.coefficients(9, false);
        assert!(sym[0].abs() < 1e-15 && sym[8].abs() < 1e-15 && (sym[4] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn gains_of_known_windows() {
        let hann = Window::periodic(WindowKind::Hann, 4096);
        assert!((hann.coherent_gain() - 0.5).abs() < 1e-12);
        assert!((hann.energy_gain() - 0.375).abs() < 1e-12);
        assert!((hann.enbw_bins() - 1.5).abs() < 1e-12);
        let rect = Window::periodic(WindowKind::Rectangular, 100);
        assert_eq!(rect.sum(), 100.0);
        assert_eq!(rect.enbw_bins(), 1.0);
        let flat = Window::periodic(WindowKind::Flattop, 4096);
        assert!((flat.enbw_bins() - 3.77).abs() < 0.01);
    }

    #[test]
    fn closed_form_dtft_matches_direct_sum() {
        for kind in WindowKind::ALL {
            let w = Window::periodic(kind, 64);
            for &x in &[0.0, 0.3, 1.0, 1.7, 2.5, 5.25] {
                let (re, im) = w.dtft(x);
                let (mut dre, mut dim) = (0.0, 0.0);
                for (n, &c) in w.coefficients().iter().enumerate() {
                    let ph = -2.0 * PI * x * n as f64 / 64.0;
                    dre += c * ph.cos();
                    dim += c * ph.sin();
                }
                assert!(
                    (re - dre).abs() < 1e-9 && (im - dim).abs() < 1e-9,
                    "{kind} {x}"
                );
            }
        }
    }

    #[test]
    fn kernel_inverts_its_own_ratio() {
        for kind in WindowKind::ALL {
            let w = Window::periodic(kind, 1024);
            let kernel = WindowKernel::new(&w);
            for &d in &[-0.45, -0.2, 0.0, 0.1, 0.33, 0.49] {
                let g = |x: f64| {
                    let (re, im) = w.dtft(x);
                    re.hypot(im)
                };
                let (left, centre, right) = (g(-1.0 - d), g(-d), g(1.0 - d));
                let est = kernel.offset(left, centre, right);
                assert!((est - d).abs() < 1e-4, "{kind}: {est} vs {d}");
                assert!((kernel.gain(d) * w.sum() - centre).abs() < 1e-6 * centre);
            }
        }
    }

    #[test]
    fn unknown_window_names_the_choices() {
        let err = "kaiser".parse::<WindowKind>().unwrap_err().to_string();
        assert!(err.contains("kaiser") && err.contains("flattop"), "{err}");
    }
}
