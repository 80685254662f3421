//! Hand-vectorised AVX versions of the per-frame loops.
//!
//! The compiler does not vectorise these multi-accumulator reductions on its own. Each
//! kernel keeps exactly the lane layout of its portable twin (lane `l` of the lane arrays
//! is element `l` of the vector registers, concatenated), and performs the same operations
//! in the same order, so both give bit-identical results; a test checks it.

use std::arch::x86_64::*;

use num_complex::Complex;

/// Whether this CPU runs the kernels (std caches the detection).
#[inline]
pub fn detected() -> bool {
    std::arch::is_x86_feature_detected!("avx")
}

/// `acc[l] += x[16 j + l]` over the full 16-sample chunks of `x`; returns how many samples
/// it consumed.
///
/// # Safety
/// The CPU must support AVX ([`detected`]).
#[target_feature(enable = "avx")]
pub unsafe fn sum_f64(x: &[f64], acc: &mut [f64; 16]) -> usize {
    let body = x.len() - x.len() % 16;
    let p = acc.as_mut_ptr();
    let mut a = [
        _mm256_loadu_pd(p),
        _mm256_loadu_pd(p.add(4)),
        _mm256_loadu_pd(p.add(8)),
        _mm256_loadu_pd(p.add(12)),
    ];
    for c in x[..body].chunks_exact(16) {
        let q = c.as_ptr();
        for (k, lane) in a.iter_mut().enumerate() {
            *lane = _mm256_add_pd(*lane, _mm256_loadu_pd(q.add(4 * k)));
        }
    }
    for (k, lane) in a.iter().enumerate() {
        _mm256_storeu_pd(p.add(4 * k), *lane);
    }
    body
}

/// `acc[l] += x[16 j + l] as f64` over the full 16-sample chunks of `x`; returns how many
/// samples it consumed.
///
/// # Safety
/// The CPU must support AVX ([`detected`]).
#[target_feature(enable = "avx")]
pub unsafe fn sum_widened(x: &[f32], acc: &mut [f64; 16]) -> usize {
    let body = x.len() - x.len() % 16;
    let p = acc.as_mut_ptr();
    let mut a = [
        _mm256_loadu_pd(p),
        _mm256_loadu_pd(p.add(4)),
        _mm256_loadu_pd(p.add(8)),
        _mm256_loadu_pd(p.add(12)),
    ];
    for c in x[..body].chunks_exact(16) {
        let q = c.as_ptr();
        for (k, lane) in a.iter_mut().enumerate() {
            *lane = _mm256_add_pd(*lane, _mm256_cvtps_pd(_mm_loadu_ps(q.add(4 * k))));
        }
    }
    for (k, lane) in a.iter().enumerate() {
        _mm256_storeu_pd(p.add(4 * k), *lane);
    }
    body
}

/// Lane accumulators of [`central_sums_f32`]: sums of d^2, d^3, d^4 and extremes of d.
pub type CentralLanes = [[f32; 16]; 5];

/// Over the full 16-sample chunks: `d = x - mean`, `windowed = (d + offset) * window`, and
/// lane sums of d^2, d^3, d^4, lane max and min of d. Returns the samples consumed.
///
/// # Safety
/// The CPU must support AVX; `window` and `windowed` as long as `x`.
#[target_feature(enable = "avx")]
pub unsafe fn central_sums_f32(
    x: &[f32],
    mean: f32,
    offset: f32,
    window: &[f32],
    windowed: &mut [f32],
    lanes: &mut CentralLanes,
) -> usize {
    assert!(window.len() == x.len() && windowed.len() == x.len());
    let body = x.len() - x.len() % 16;
    let load = |a: &[f32; 16]| {
        [
            _mm256_loadu_ps(a.as_ptr()),
            _mm256_loadu_ps(a.as_ptr().add(8)),
        ]
    };
    let [mut s2, mut s3, mut s4, mut hi, mut lo] = [
        load(&lanes[0]),
        load(&lanes[1]),
        load(&lanes[2]),
        load(&lanes[3]),
        load(&lanes[4]),
    ];
    let mean = _mm256_set1_ps(mean);
    let offset = _mm256_set1_ps(offset);
    let (xp, wp, op) = (x.as_ptr(), window.as_ptr(), windowed.as_mut_ptr());
    let mut i = 0;
    while i < body {
        for h in 0..2 {
            let at = i + 8 * h;
            let d = _mm256_sub_ps(_mm256_loadu_ps(xp.add(at)), mean);
            let w = _mm256_loadu_ps(wp.add(at));
            _mm256_storeu_ps(op.add(at), _mm256_mul_ps(_mm256_add_ps(d, offset), w));
            let d2 = _mm256_mul_ps(d, d);
            s2[h] = _mm256_add_ps(s2[h], d2);
            s3[h] = _mm256_add_ps(s3[h], _mm256_mul_ps(d2, d));
            s4[h] = _mm256_add_ps(s4[h], _mm256_mul_ps(d2, d2));
            // max_ps(a, b) is `a > b ? a : b`, as the portable loop writes it.
            hi[h] = _mm256_max_ps(d, hi[h]);
            lo[h] = _mm256_min_ps(d, lo[h]);
        }
        i += 16;
    }
    for (k, v) in [s2, s3, s4, hi, lo].iter().enumerate() {
        _mm256_storeu_ps(lanes[k].as_mut_ptr(), v[0]);
        _mm256_storeu_ps(lanes[k].as_mut_ptr().add(8), v[1]);
    }
    body
}

/// Lane accumulators of [`central_sums_f64`].
pub type CentralLanesF64 = [[f64; 8]; 5];

/// [`central_sums_f32`] for f64 frames, in 8 lanes (two vectors).
///
/// # Safety
/// The CPU must support AVX; `window` and `windowed` as long as `x`.
#[target_feature(enable = "avx")]
pub unsafe fn central_sums_f64(
    x: &[f64],
    mean: f64,
    offset: f64,
    window: &[f64],
    windowed: &mut [f64],
    lanes: &mut CentralLanesF64,
) -> usize {
    assert!(window.len() == x.len() && windowed.len() == x.len());
    let body = x.len() - x.len() % 8;
    let load = |a: &[f64; 8]| {
        [
            _mm256_loadu_pd(a.as_ptr()),
            _mm256_loadu_pd(a.as_ptr().add(4)),
        ]
    };
    let [mut s2, mut s3, mut s4, mut hi, mut lo] = [
        load(&lanes[0]),
        load(&lanes[1]),
        load(&lanes[2]),
        load(&lanes[3]),
        load(&lanes[4]),
    ];
    let mean = _mm256_set1_pd(mean);
    let offset = _mm256_set1_pd(offset);
    let (xp, wp, op) = (x.as_ptr(), window.as_ptr(), windowed.as_mut_ptr());
    let mut i = 0;
    while i < body {
        for h in 0..2 {
            let at = i + 4 * h;
            let d = _mm256_sub_pd(_mm256_loadu_pd(xp.add(at)), mean);
            let w = _mm256_loadu_pd(wp.add(at));
            _mm256_storeu_pd(op.add(at), _mm256_mul_pd(_mm256_add_pd(d, offset), w));
            let d2 = _mm256_mul_pd(d, d);
            s2[h] = _mm256_add_pd(s2[h], d2);
            s3[h] = _mm256_add_pd(s3[h], _mm256_mul_pd(d2, d));
            s4[h] = _mm256_add_pd(s4[h], _mm256_mul_pd(d2, d2));
            hi[h] = _mm256_max_pd(d, hi[h]);
            lo[h] = _mm256_min_pd(d, lo[h]);
        }
        i += 8;
    }
    for (k, v) in [s2, s3, s4, hi, lo].iter().enumerate() {
        _mm256_storeu_pd(lanes[k].as_mut_ptr(), v[0]);
        _mm256_storeu_pd(lanes[k].as_mut_ptr().add(4), v[1]);
    }
    body
}

/// [`power_sums_f32`] for f64 spectra.
///
/// # Safety
/// The CPU must support AVX; `power` as long as `spectrum`.
#[target_feature(enable = "avx")]
pub unsafe fn power_sums_f64(
    spectrum: &[Complex<f64>],
    power: &mut [f64],
    total: &mut [f64; 8],
    moment: &mut [f64; 8],
) -> usize {
    assert_eq!(spectrum.len(), power.len());
    let body = spectrum.len() - spectrum.len() % 8;
    let sp = spectrum.as_ptr() as *const f64;
    let pp = power.as_mut_ptr();
    let mut t = [
        _mm256_loadu_pd(total.as_ptr()),
        _mm256_loadu_pd(total.as_ptr().add(4)),
    ];
    let mut m = [
        _mm256_loadu_pd(moment.as_ptr()),
        _mm256_loadu_pd(moment.as_ptr().add(4)),
    ];
    let mut k = [
        _mm256_setr_pd(0.0, 1.0, 2.0, 3.0),
        _mm256_setr_pd(4.0, 5.0, 6.0, 7.0),
    ];
    let step = _mm256_set1_pd(8.0);
    let mut i = 0;
    while i < body {
        for h in 0..2 {
            let bin = i + 4 * h;
            let a = _mm256_loadu_pd(sp.add(2 * bin)); // re0 im0 re1 im1
            let b = _mm256_loadu_pd(sp.add(2 * bin + 4)); // re2 im2 re3 im3
                                                          // hadd: [a0+a1, b0+b1 | a2+a3, b2+b3] = [p0 p2 | p1 p3]; reorder the middle.
            let h2 = _mm256_hadd_pd(_mm256_mul_pd(a, a), _mm256_mul_pd(b, b));
            let swapped = _mm256_permute2f128_pd(h2, h2, 0x01); // [p1 p3 | p0 p2]
            let lo = _mm256_unpacklo_pd(h2, swapped); // [p0 p1 | p1 p0]
            let hi = _mm256_unpackhi_pd(h2, swapped); // [p2 p3 | p3 p2]
            let p = _mm256_permute2f128_pd(lo, hi, 0x20); // [p0 p1 | p2 p3]
            _mm256_storeu_pd(pp.add(bin), p);
            t[h] = _mm256_add_pd(t[h], p);
            m[h] = _mm256_add_pd(m[h], _mm256_mul_pd(k[h], p));
            k[h] = _mm256_add_pd(k[h], step);
        }
        i += 8;
    }
    for h in 0..2 {
        _mm256_storeu_pd(total.as_mut_ptr().add(4 * h), t[h]);
        _mm256_storeu_pd(moment.as_mut_ptr().add(4 * h), m[h]);
    }
    body
}

/// Over the full 8-bin chunks: `power[k] = (re^2 + im^2) as f64` (summed in f32), lane
/// sums of power and of `k * power`. Returns the bins consumed.
///
/// # Safety
/// The CPU must support AVX; `power` as long as `spectrum`.
#[target_feature(enable = "avx")]
pub unsafe fn power_sums_f32(
    spectrum: &[Complex<f32>],
    power: &mut [f64],
    total: &mut [f64; 8],
    moment: &mut [f64; 8],
) -> usize {
    assert_eq!(spectrum.len(), power.len());
    let body = spectrum.len() - spectrum.len() % 8;
    // Complex<f32> is repr(C) {re, im}: the spectrum is re, im, re, im, ... in memory.
    let sp = spectrum.as_ptr() as *const f32;
    let pp = power.as_mut_ptr();
    let mut t = [
        _mm256_loadu_pd(total.as_ptr()),
        _mm256_loadu_pd(total.as_ptr().add(4)),
    ];
    let mut m = [
        _mm256_loadu_pd(moment.as_ptr()),
        _mm256_loadu_pd(moment.as_ptr().add(4)),
    ];
    let mut k = [
        _mm256_setr_pd(0.0, 1.0, 2.0, 3.0),
        _mm256_setr_pd(4.0, 5.0, 6.0, 7.0),
    ];
    let step = _mm256_set1_pd(8.0);
    let mut i = 0;
    while i < body {
        let a = _mm256_loadu_ps(sp.add(2 * i)); // bins i .. i+3
        let b = _mm256_loadu_ps(sp.add(2 * i + 8)); // bins i+4 .. i+7
        let (a, b) = (_mm256_mul_ps(a, a), _mm256_mul_ps(b, b));
        // hadd pairs within 128-bit halves: [p0 p1 p4 p5 | p2 p3 p6 p7].
        let h = _mm256_hadd_ps(a, b);
        let (lo, hi) = (_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        let first = _mm_shuffle_ps(lo, hi, 0b01_00_01_00); // p0 p1 p2 p3
        let second = _mm_shuffle_ps(lo, hi, 0b11_10_11_10); // p4 p5 p6 p7
        for (h, half) in [first, second].into_iter().enumerate() {
            let p = _mm256_cvtps_pd(half);
            _mm256_storeu_pd(pp.add(i + 4 * h), p);
            t[h] = _mm256_add_pd(t[h], p);
            m[h] = _mm256_add_pd(m[h], _mm256_mul_pd(k[h], p));
            k[h] = _mm256_add_pd(k[h], step);
        }
        i += 8;
    }
    for h in 0..2 {
        _mm256_storeu_pd(total.as_mut_ptr().add(4 * h), t[h]);
        _mm256_storeu_pd(moment.as_mut_ptr().add(4 * h), m[h]);
    }
    body
}

/// `X[k]` for the 4 bins k .. k+3 of an even-length real frame, from the half-length
/// complex FFT `z` (M values) of its sample pairs: `X[k] = E[k] + W^k O[k]` with
/// `E = (z[k] + conj z[M-k]) / 2`, `O = (z[k] - conj z[M-k]) / 2i`. Reads z[k .. k+4] and
/// z[M-k-3 .. M-k+1]; `twiddles[k] = -(cos, sin)(2 pi k / N) / 2`, that is `(-c, s)` with
/// `W^k = c + i s` halved.
#[inline]
#[target_feature(enable = "avx")]
unsafe fn untangle4(zp: *const f32, wp: *const f32, m: usize, k: usize) -> __m256 {
    let a = _mm256_loadu_ps(zp.add(2 * k));
    // z[M-k-3 .. M-k+1] reversed: halves swapped as they are loaded (a cross-lane permute
    // is far slower here), then the two complex values in each half.
    let base = zp.add(2 * (m - k - 3));
    let r = _mm256_insertf128_ps(
        _mm256_castps128_ps256(_mm_loadu_ps(base.add(4))),
        _mm_loadu_ps(base),
        1,
    );
    let r = _mm256_castpd_ps(_mm256_permute_pd(_mm256_castps_pd(r), 0b0101));
    let conj = _mm256_setr_ps(0.0, -0.0, 0.0, -0.0, 0.0, -0.0, 0.0, -0.0);
    let b = _mm256_xor_ps(r, conj);
    let even = _mm256_mul_ps(_mm256_add_ps(a, b), _mm256_set1_ps(0.5));
    let d = _mm256_sub_ps(a, b);
    let w = _mm256_loadu_ps(wp.add(2 * k));
    let (neg_c, s) = (_mm256_moveldup_ps(w), _mm256_movehdup_ps(w));
    let d_swapped = _mm256_permute_ps(d, 0b10_11_00_01);
    // W^k O[k] with W^k = c + i s and O = -i d / 2: (s d.re + c d.im, s d.im - c d.re) / 2.
    let odd = _mm256_addsub_ps(_mm256_mul_ps(s, d), _mm256_mul_ps(neg_c, d_swapped));
    _mm256_add_ps(even, odd)
}

/// The power spectrum `power[k] = |X[k]|^2` (k = 0 ..= M, summed in f32) of an even-length
/// real frame from the half-length complex FFT `z` of its sample pairs
/// (`z[n] = x[2n] + i x[2n+1]`), untangled and squared in one pass; returns the plain sums
/// of power and of `k * power`. `twiddles` as for [`untangle4`].
///
/// # Safety
/// The CPU must support AVX; `twiddles.len() == z.len() >= 1`, `power.len() == z.len() + 1`.
#[target_feature(enable = "avx")]
pub unsafe fn untangled_power(
    z: &[Complex<f32>],
    twiddles: &[Complex<f32>],
    power: &mut [f64],
) -> (f64, f64) {
    let m = z.len();
    assert!(m >= 1 && twiddles.len() == m && power.len() == m + 1);
    let zp = z.as_ptr() as *const f32;
    let wp = twiddles.as_ptr() as *const f32;
    let pp = power.as_mut_ptr();
    let mut t = [_mm256_setzero_pd(); 2];
    let mut mo = [_mm256_setzero_pd(); 2];
    let mut kv = [
        _mm256_setr_pd(1.0, 2.0, 3.0, 4.0),
        _mm256_setr_pd(5.0, 6.0, 7.0, 8.0),
    ];
    let step = _mm256_set1_pd(8.0);
    let mut k = 1;
    // Bins k .. k+7 read z[M-k-7 ..], in range while k + 8 <= M.
    while k + 8 <= m {
        let (a, b) = (untangle4(zp, wp, m, k), untangle4(zp, wp, m, k + 4));
        // hadd pairs within 128-bit halves: [p0 p1 p4 p5 | p2 p3 p6 p7].
        let h = _mm256_hadd_ps(_mm256_mul_ps(a, a), _mm256_mul_ps(b, b));
        let (lo, hi) = (_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
        let first = _mm_shuffle_ps(lo, hi, 0b01_00_01_00); // p0 p1 p2 p3
        let second = _mm_shuffle_ps(lo, hi, 0b11_10_11_10); // p4 p5 p6 p7
        for (h, quarter) in [first, second].into_iter().enumerate() {
            let p = _mm256_cvtps_pd(quarter);
            _mm256_storeu_pd(pp.add(k + 4 * h), p);
            t[h] = _mm256_add_pd(t[h], p);
            mo[h] = _mm256_add_pd(mo[h], _mm256_mul_pd(kv[h], p));
            kv[h] = _mm256_add_pd(kv[h], step);
        }
        k += 8;
    }
    let mut lanes = [0.0f64; 8];
    _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(t[0], t[1]));
    _mm256_storeu_pd(lanes.as_mut_ptr().add(4), _mm256_add_pd(mo[0], mo[1]));
    let mut total = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
    let mut moment = (lanes[4] + lanes[6]) + (lanes[5] + lanes[7]);
    let mut add = |bin: usize, p: f64| {
        power[bin] = p;
        total += p;
        moment += bin as f64 * p;
    };
    let z0 = z[0];
    add(0, ((z0.re + z0.im) * (z0.re + z0.im)) as f64);
    add(m, ((z0.re - z0.im) * (z0.re - z0.im)) as f64);
    for bin in k..m {
        let (a, b) = (z[bin], z[m - bin].conj());
        let (w, d) = (twiddles[bin], a - b);
        let re = 0.5 * (a.re + b.re) + (w.im * d.re - w.re * d.im);
        let im = 0.5 * (a.im + b.im) + (w.im * d.im + w.re * d.re);
        add(bin, (re * re + im * im) as f64);
    }
    (total, moment)
}

/// [`super::peaks::top_local_maxima`], visiting blocks of bins in descending order of
/// their largest bin and stopping once no block can hold a bin that ranks among those
/// kept: the largest peaks come first, so few bins are ever inserted, and most blocks are
/// never scanned. Within a block, four bins are tested at a time.
///
/// # Safety
/// The CPU must support AVX; `power.len() >= 3`, `count >= 1`.
#[target_feature(enable = "avx")]
pub unsafe fn scan_local_maxima(power: &[f64], count: usize, out: &mut Vec<usize>) {
    use super::peaks::{is_local_maximum, keep, outranks_kept};
    const MAX_BLOCKS: usize = 64;
    let last = power.len() - 1; // candidates are the bins 1 .. last
    let candidates = last - 1;
    let block = candidates.div_ceil(MAX_BLOCKS).next_multiple_of(4).max(16);
    let blocks = candidates.div_ceil(block);
    let mut block_max = [f64::NEG_INFINITY; MAX_BLOCKS];
    for (b, m) in block_max.iter_mut().enumerate().take(blocks) {
        *m = max(&power[1 + b * block..(1 + (b + 1) * block).min(last)]);
    }
    let p = power.as_ptr();
    let mut needed = f64::NEG_INFINITY; // a kept bin has at least this power
    loop {
        let mut best = 0;
        for b in 1..blocks {
            if block_max[b] > block_max[best] {
                best = b;
            }
        }
        // Ties rank by bin, so a block whose maximum equals `needed` may still hold one.
        if block_max[best] < needed || block_max[best] == f64::NEG_INFINITY {
            return;
        }
        block_max[best] = f64::NEG_INFINITY;
        let (start, end) = (1 + best * block, (1 + (best + 1) * block).min(last));
        let mut k = start;
        // Bins k .. k+3 compare with k-1 .. k+4, all within the spectrum while k + 4 <= last.
        while k + 4 <= end {
            let centre = _mm256_loadu_pd(p.add(k));
            let candidate = _mm256_and_pd(
                _mm256_and_pd(
                    _mm256_cmp_pd(centre, _mm256_loadu_pd(p.add(k - 1)), _CMP_GT_OQ),
                    _mm256_cmp_pd(centre, _mm256_loadu_pd(p.add(k + 1)), _CMP_GE_OQ),
                ),
                _mm256_cmp_pd(centre, _mm256_set1_pd(needed), _CMP_GE_OQ),
            );
            let mut bits = _mm256_movemask_pd(candidate);
            while bits != 0 {
                let bin = k + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if outranks_kept(power, bin, count, out) {
                    needed = keep(power, bin, count, out);
                }
            }
            k += 4;
        }
        for bin in k..end {
            if is_local_maximum(power, bin) && outranks_kept(power, bin, count, out) {
                needed = keep(power, bin, count, out);
            }
        }
    }
}

/// The largest value of `x` (NEG_INFINITY if empty; `x` holds no NaN).
#[inline]
#[target_feature(enable = "avx")]
unsafe fn max(x: &[f64]) -> f64 {
    let body = x.len() - x.len() % 8;
    let p = x.as_ptr();
    let mut a = [_mm256_set1_pd(f64::NEG_INFINITY); 2];
    let mut i = 0;
    while i < body {
        a[0] = _mm256_max_pd(_mm256_loadu_pd(p.add(i)), a[0]);
        a[1] = _mm256_max_pd(_mm256_loadu_pd(p.add(i + 4)), a[1]);
        i += 8;
    }
    let mut lanes = [0.0f64; 8];
    _mm256_storeu_pd(lanes.as_mut_ptr(), a[0]);
    _mm256_storeu_pd(lanes.as_mut_ptr().add(4), a[1]);
    lanes
        .iter()
        .chain(&x[body..])
        .fold(f64::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

#[cfg(test)]
mod tests;
