//! Spectral peak picking and interpolation between bins.

use super::window::WindowKernel;

/// One spectral peak, located between bins and amplitude-corrected for the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectralPeak {
    /// The local-maximum bin.
    pub bin: usize,
    /// Refined position in bins (`bin + offset`, offset in [-0.5, 0.5]).
    pub position: f64,
    /// Amplitude of the sine that would produce this peak (signal units, 0-peak).
    pub amplitude: f64,
}

/// Indices of the `count` largest strict local maxima of `power` (bins 1 ..= len-2),
/// largest first, written into `out` (cleared first; no allocation once it has capacity).
/// A maximum must exceed its left neighbour and be at least its right one, so a flat top
/// counts once. Equal powers rank by bin, lower first, so the result does not depend on
/// the order bins are visited in.
pub fn top_local_maxima(power: &[f64], count: usize, out: &mut Vec<usize>) {
    out.clear();
    if count == 0 || power.len() < 3 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::avx::detected() {
        // SAFETY: AVX is available, checked just above; power.len() >= 3, count >= 1.
        unsafe { super::avx::scan_local_maxima(power, count, out) };
        return;
    }
    scan_in_order(power, count, out);
}

/// The portable scan, in ascending order. Once `out` is full, blocks whose largest bin is
/// below the weakest kept one are skipped with one pass, which is most of a spectrum.
fn scan_in_order(power: &[f64], count: usize, out: &mut Vec<usize>) {
    const BLOCK: usize = 16;
    let last = power.len() - 1;
    let mut needed = f64::NEG_INFINITY;
    let mut start = 1;
    while start < last {
        let end = (start + BLOCK).min(last);
        if power[start..end].iter().any(|&p| p >= needed) {
            for k in start..end {
                if is_local_maximum(power, k) && outranks_kept(power, k, count, out) {
                    needed = keep(power, k, count, out);
                }
            }
        }
        start = end;
    }
}

/// [`top_local_maxima`] through the portable scan only.
#[cfg(test)]
pub(crate) fn top_local_maxima_portable_for_tests(
    power: &[f64],
    count: usize,
    out: &mut Vec<usize>,
) {
    out.clear();
    if count > 0 && power.len() >= 3 {
        scan_in_order(power, count, out);
    }
}

/// Whether bin `k` (1 ..= len-2) exceeds its left neighbour and is at least its right one.
#[inline(always)]
pub(crate) fn is_local_maximum(power: &[f64], k: usize) -> bool {
    power[k] > power[k - 1] && power[k] >= power[k + 1]
}

/// Whether bin `a` ranks before bin `b`: more power, or equal power and a lower bin.
#[inline(always)]
fn ranks_before(power: &[f64], a: usize, b: usize) -> bool {
    power[a] > power[b] || (power[a] == power[b] && a < b)
}

/// Whether bin `k` belongs among the `count` kept so far (`out`, best first).
#[inline(always)]
pub(crate) fn outranks_kept(power: &[f64], k: usize, count: usize, out: &[usize]) -> bool {
    match out.last() {
        Some(&worst) if out.len() == count => ranks_before(power, k, worst),
        _ => true,
    }
}

/// Inserts bin `k` into `out` in rank order, dropping the worst beyond `count`. Returns the
/// power a bin needs to be kept from now on (NEG_INFINITY until `out` is full).
#[inline(always)]
pub(crate) fn keep(power: &[f64], k: usize, count: usize, out: &mut Vec<usize>) -> f64 {
    let pos = out.partition_point(|&j| ranks_before(power, j, k));
    if out.len() == count {
        out.pop();
    }
    out.insert(pos, k);
    if out.len() == count {
        power[out[count - 1]]
    } else {
        f64::NEG_INFINITY
    }
}

/// Refines the peak at `bin` of a power spectrum `|X|^2` taken with a window of sum
/// `window_sum` whose main lobe is `kernel`.
pub fn refine_peak(
    power: &[f64],
    bin: usize,
    kernel: &WindowKernel,
    window_sum: f64,
) -> SpectralPeak {
    let centre = power[bin].sqrt();
    let left = if bin > 0 { power[bin - 1].sqrt() } else { 0.0 };
    let right = power.get(bin + 1).map_or(0.0, |p| p.sqrt());
    let offset = kernel.offset(left, centre, right);
    // A sine of amplitude A gives |X| = A * sum(w) / 2 * G(offset).
    let amplitude = 2.0 * centre / (window_sum * kernel.gain(offset));
    SpectralPeak {
        bin,
        position: bin as f64 + offset,
        amplitude,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fft::PlannedRealFft;
    use super::super::window::{Window, WindowKind};
    use super::*;

    #[test]
    fn picks_the_largest_maxima_in_order() {
        let p = [0.0, 5.0, 1.0, 3.0, 3.0, 0.5, 9.0, 2.0, 4.0, 1.0];
        let mut out = Vec::new();
        top_local_maxima(&p, 3, &mut out);
        assert_eq!(out, vec![6, 1, 8]);
        top_local_maxima(&p, 10, &mut out);
        assert_eq!(out, vec![6, 1, 8, 3]);
        top_local_maxima(&p, 0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn recovers_frequency_and_amplitude_of_a_sine_for_every_window() {
        let n = 1024;
        for kind in WindowKind::ALL {
            let window = Window::periodic(kind, n);
            let kernel = WindowKernel::new(&window);
            let mut fft = PlannedRealFft::new(n);
            for &(cycles, amp) in &[(100.0, 1.0), (200.37, 2.5), (333.5, 0.1)] {
                let x: Vec<f64> = (0..n)
                    .map(|i| {
                        let t = i as f64 / n as f64;
                        amp * (2.0 * std::f64::consts::PI * cycles * t + 0.3).sin()
                            * window.coefficients()[i]
                    })
                    .collect();
                let power: Vec<f64> = fft.forward(&x).iter().map(|c| c.norm_sqr()).collect();
                let mut out = Vec::new();
                top_local_maxima(&power, 1, &mut out);
                let peak = refine_peak(&power, out[0], &kernel, window.sum());
                assert!(
                    (peak.position - cycles).abs() < 2e-3,
                    "{kind} {cycles}: {peak:?}"
                );
                assert!(
                    (peak.amplitude / amp - 1.0).abs() < 2e-3,
                    "{kind} {cycles}: {peak:?}"
                );
            }
        }
    }
}
