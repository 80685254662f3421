//! The few distribution functions the bearing-fault test needs, in log space where tails
//! are tiny: gamma (chi-square) and F survival functions, and the median of a gamma variable.
//!
//! Under healthy (noise-only) conditions a bin of the squared-envelope spectrum averaged over
//! K independent frames is a scaled chi-square variable with 2K degrees of freedom; divided by
//! a floor estimated from N neighbouring bins it is F(2K, 2KN) distributed. Those two facts
//! set every detection threshold in `envelope.rs`.

use std::f64::consts::LN_10;

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, n = 9; relative error below 1e-14).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // reflection
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized lower incomplete gamma P(a, x).
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let front = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // series
        let (mut ap, mut sum, mut del) = (a, 1.0 / a, 1.0 / a);
        for _ in 0..1000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        (sum.ln() + front).exp().min(1.0)
    } else {
        // continued fraction for Q, Lentz
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        1.0 - (front + h.ln()).exp()
    }
}

/// Median of Gamma(shape k, scale 1/k) (mean 1): ln 2 for k = 1, towards 1 as k grows.
pub fn gamma_median(k: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 2.0);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if gamma_p(k, k * mid) < 0.5 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Density of Gamma(shape k, scale 1/k) at x.
pub fn gamma_pdf(k: f64, x: f64) -> f64 {
    (k * k.ln() + (k - 1.0) * x.ln() - k * x - ln_gamma(k)).exp()
}

/// Continued fraction of the incomplete beta function (Numerical Recipes `betacf`).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..3000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-14 {
            break;
        }
    }
    h
}

/// ln I_x(a, b), the log of the regularized incomplete beta function, accurate in the tail.
pub fn ln_beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front + beta_cf(a, b, x).ln() - a.ln()
    } else {
        let upper = (ln_front + beta_cf(b, a, 1.0 - x).ln() - b.ln()).exp();
        (1.0 - upper).max(f64::MIN_POSITIVE).ln()
    }
}

/// ln P(F > x) for F ~ F(d1, d2).
pub fn ln_f_sf(x: f64, d1: f64, d2: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    ln_beta_inc(0.5 * d2, 0.5 * d1, d2 / (d2 + d1 * x))
}

/// ln P(chi2(2h) > t): the null distribution of Fisher's combination of h p-values.
pub fn ln_chi2_sf_even(t: f64, h: usize) -> f64 {
    if t <= 0.0 || h == 0 {
        return 0.0;
    }
    let y = 0.5 * t;
    // ln sum_{j<h} y^j / j!, by log-sum-exp
    let terms: Vec<f64> = (0..h)
        .map(|j| j as f64 * y.ln() - ln_gamma(j as f64 + 1.0))
        .collect();
    let m = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let s: f64 = terms.iter().map(|v| (v - m).exp()).sum();
    (-y + m + s.ln()).min(0.0)
}

/// log10 from ln.
pub fn log10_of_ln(ln_p: f64) -> f64 {
    ln_p / LN_10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_function_values() {
        assert!((ln_gamma(1.0)).abs() < 1e-13);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        // exponential: P(1, x) = 1 - e^-x
        for x in [0.1f64, 1.0, 3.0, 20.0] {
            assert!((gamma_p(1.0, x) - (1.0 - (-x).exp())).abs() < 1e-12, "{x}");
        }
        assert!((gamma_median(1.0) - 2f64.ln()).abs() < 1e-9);
        assert!((gamma_median(50.0) - 1.0).abs() < 0.01);
    }

    #[test]
    fn f_and_chi2_tails() {
        // F(2, d2) has the closed form P(F > x) = (1 + 2x/d2)^(-d2/2)
        for (x, d2) in [(1.0f64, 10.0f64), (5.0, 40.0), (30.0, 200.0)] {
            let exact = -0.5 * d2 * (1.0 + 2.0 * x / d2).ln();
            assert!((ln_f_sf(x, 2.0, d2) - exact).abs() < 1e-9, "{x} {d2}");
        }
        // chi2 with 2 dof: exp(-t/2)
        assert!((ln_chi2_sf_even(7.0, 1) + 3.5).abs() < 1e-12);
        // 4 dof: exp(-t/2)(1 + t/2)
        let t: f64 = 9.0;
        assert!((ln_chi2_sf_even(t, 2) - (-(t / 2.0) + (1.0 + t / 2.0).ln())).abs() < 1e-12);
        assert!(ln_chi2_sf_even(5000.0, 5).is_finite());
    }
}
