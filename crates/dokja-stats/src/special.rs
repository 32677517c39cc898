//! Special functions needed for p-values in log space.
//!
//! Why our own: Rust's std has no `erfc`, and p-values of strongly related model pairs are
//! far below f64's smallest positive number (1e-308), so every tail is computed as a natural
//! logarithm from a *scaled* function that never underflows.
//!
//! `erfcx(x) = exp(x^2) erfc(x)` uses W. J. Cody's rational Chebyshev approximations
//! ("Rational Chebyshev approximations for the error function", Math. Comp. 23, 1969; the
//! `CALERF` routine of SPECFUN/SLATEC, also behind scipy's `erfcx`): relative error about
//! 1e-16 on each of its three intervals. On (4, inf) the approximation is a rational function
//! of 1/x^2 that refines the asymptotic expansion
//! `erfcx(x) ~ 1/(x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - ...)`, so
//! `ln erfc(x) = ln erfcx(x) - x^2` is accurate for arbitrarily large x (e.g. p = 1e-3000 at
//! z ~ 104.8 is ln p ~ -6907.76, computed to ~1e-16 relative).

#![allow(clippy::excessive_precision)]

use std::f64::consts::{LN_2, PI};

const ONE_OVER_SQRT_PI: f64 = 5.6418958354775628695e-1;
/// ln(2 pi) / 2.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_741_780_329_736_4;

// Cody (1969) coefficients, as published in CALERF.
const A: [f64; 5] = [
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
];
const B: [f64; 4] = [
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
];
const C: [f64; 9] = [
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
];
const D: [f64; 8] = [
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
];
const P: [f64; 6] = [
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
];
const Q: [f64; 5] = [
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
];

/// erf(x) for |x| <= 0.46875 (Cody's first interval).
fn erf_small(x: f64) -> f64 {
    let z = x * x;
    let mut num = A[4] * z;
    let mut den = z;
    for i in 0..3 {
        num = (num + A[i]) * z;
        den = (den + B[i]) * z;
    }
    x * (num + A[3]) / (den + B[3])
}

/// Scaled complementary error function `exp(x^2) erfc(x)` for `x >= 0`; never overflows or
/// underflows (it decreases from 1 to 0 like `1/(x sqrt(pi))`). NaN for NaN or negative x.
pub fn erfcx(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x <= 0.46875 {
        (x * x).exp() * (1.0 - erf_small(x))
    } else if x <= 4.0 {
        let mut num = C[8] * x;
        let mut den = x;
        for i in 0..7 {
            num = (num + C[i]) * x;
            den = (den + D[i]) * x;
        }
        (num + C[7]) / (den + D[7])
    } else if x >= 6.71e7 {
        // Beyond this the rational correction is below f64 resolution.
        ONE_OVER_SQRT_PI / x
    } else {
        let z = 1.0 / (x * x);
        let mut num = P[5] * z;
        let mut den = z;
        for i in 0..4 {
            num = (num + P[i]) * z;
            den = (den + Q[i]) * z;
        }
        let r = z * (num + P[4]) / (den + Q[4]);
        (ONE_OVER_SQRT_PI - r) / x
    }
}

/// Complementary error function (underflows to 0 beyond x ~ 26.5: use [`log_erfc`] there).
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    let upper = if y == f64::INFINITY {
        0.0
    } else if y <= 0.46875 {
        1.0 - erf_small(y)
    } else {
        // exp(-y^2) split as in CALERF so the rounding of y^2 does not cost digits.
        let ysq = (y * 16.0).trunc() / 16.0;
        let del = (y - ysq) * (y + ysq);
        (-ysq * ysq).exp() * (-del).exp() * erfcx(y)
    };
    if x < 0.0 { 2.0 - upper } else { upper }
}

/// Natural log of erfc(x), finite for every finite x (down to about -1e308, i.e.
/// x up to ~1e154).
pub fn log_erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x >= 0.0 {
        erfcx(x).ln() - x * x
    } else {
        (2.0 - erfc(-x)).ln()
    }
}

/// ln P(Z > z) for a standard normal Z, accurate in both tails and never underflowing.
pub fn log_normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z == f64::INFINITY {
        return f64::NEG_INFINITY;
    }
    if z >= 0.0 {
        // Q(z) = erfc(z / sqrt 2) / 2 = erfcx(z / sqrt 2) exp(-z^2 / 2) / 2.
        (0.5 * erfcx(z * std::f64::consts::FRAC_1_SQRT_2)).ln() - 0.5 * z * z
    } else {
        // Q(z) = 1 - erfc(|z| / sqrt 2) / 2; ln_1p keeps the digits near Q = 1.
        (-0.5 * erfc(-z * std::f64::consts::FRAC_1_SQRT_2)).ln_1p()
    }
}

/// ln P(Z <= z) for a standard normal Z.
pub fn log_normal_cdf(z: f64) -> f64 {
    log_normal_sf(-z)
}

/// ln(n!) exactly rounded for small n, by Stirling's series (error < 1e-17 relative) above.
pub fn ln_factorial(n: u64) -> f64 {
    if n < 20 {
        let mut f = 1.0f64;
        for k in 2..=n {
            f *= k as f64;
        }
        return f.ln();
    }
    // ln Gamma(x) with x = n + 1 >= 21.
    let x = n as f64 + 1.0;
    let x2 = x * x;
    let series = 1.0 / (12.0 * x) - 1.0 / (360.0 * x * x2) + 1.0 / (1260.0 * x * x2 * x2)
        - 1.0 / (1680.0 * x * x2 * x2 * x2);
    (x - 0.5) * x.ln() - x + HALF_LN_2PI + series
}

/// ln of the binomial coefficient C(n, k) (`-inf` if k > n).
pub fn ln_binomial(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// ln(sum exp(x_i)) without overflow; `-inf` for an empty slice or all `-inf`.
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY || max.is_nan() {
        return max;
    }
    if max == f64::INFINITY {
        return f64::INFINITY;
    }
    max + xs.iter().map(|&x| (x - max).exp()).sum::<f64>().ln()
}

/// ln(1 - exp(a)) for a <= 0 (Maechler's recipe: expm1 near 0, ln_1p far from it).
pub fn log1m_exp(a: f64) -> f64 {
    if a > -LN_2 {
        (-a.exp_m1()).ln()
    } else {
        (-a.exp()).ln_1p()
    }
}

/// ln P(C > t) for a standard Cauchy C, given t directly.
pub fn log_cauchy_sf(t: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t > 0.0 {
        // P = atan(1/t)/pi: no cancellation for large t (1/t underflows only past 1e308).
        ((1.0 / t).atan() / PI).ln()
    } else {
        // P = 1/2 + atan(-t)/pi in [1/2, 1].
        (0.5 + (-t).atan() / PI).ln()
    }
}

/// ln P(C > t) for a standard Cauchy C, given ln t (t > 0 astronomically large).
pub fn log_cauchy_sf_from_ln(ln_t: f64) -> f64 {
    if ln_t < 700.0 {
        return log_cauchy_sf(ln_t.exp());
    }
    // atan(1/t) = 1/t to f64 precision when 1/t < 1e-150.
    -ln_t - PI.ln()
}

#[cfg(test)]
#[allow(
    clippy::excessive_precision,
    clippy::needless_range_loop,
    clippy::too_many_arguments,
    clippy::manual_is_multiple_of
)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    // Reference values computed with mpmath at 50 significant digits.
    #[test]
    fn erfc_reference() {
        let cases = [
            (0.0, 1.0),
            (0.1, 0.8875370839817151078),
            (0.3, 0.67137324054087257236),
            (0.46875, 0.50738652678206200841),
            (0.5, 0.47950012218695346232),
            (1.0, 0.15729920705028513066),
            (2.0, 0.0046777349810472658379),
            (3.5, 7.4309837234141274552e-7),
            (4.0, 1.5417257900280018852e-8),
            (5.0, 1.5374597944280348502e-12),
            (10.0, 2.088487583762544757e-45),
            (26.0, 5.6631924088561428465e-296),
            (-1.0, 1.8427007929497148693),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(rel(got, want) < 2e-15, "erfc({x}) = {got:e}, want {want:e}");
        }
    }

    #[test]
    fn erfcx_reference() {
        let cases = [
            (0.25, 0.77034654773099674392),
            (2.0, 0.25539567631050574387),
            (5.0, 0.11070463773306862637),
            (100.0, 0.0056416137829894329036),
            (1e10, 5.6418958354775628695e-11),
        ];
        for (x, want) in cases {
            let got = erfcx(x);
            assert!(
                rel(got, want) < 2e-15,
                "erfcx({x}) = {got:e}, want {want:e}"
            );
        }
        assert!(erfcx(-1.0).is_nan());
    }

    #[test]
    fn log_normal_sf_reference() {
        // mpmath: log(ncdf(-z)) at 50 digits.
        let cases = [
            (-8.0, -6.2209605742717860585e-16),
            (-5.0, -2.8665161296376359338e-7),
            (-1.0, -0.17275377902344988953),
            (-0.1, -0.61650501011502629282),
            (0.0, -LN_2),
            (0.5, -1.1759117615936186089),
            (1.0, -1.8410216450092635058),
            (3.0, -6.6077262215103495433),
            (8.0, -35.013437159914549896),
            (10.0, -53.231285150512470578),
            (38.0, -726.5572160188201301),
            (40.0, -804.60844201375378817),
            (100.0, -5005.5242086942050886),
            (104.8, -5497.091083333848543),
            (1000.0, -500007.82669481218431),
            (1e5, -5000000012.4318639983),
        ];
        for (z, want) in cases {
            let got = log_normal_sf(z);
            assert!(rel(got, want) < 1e-14, "ln Q({z}) = {got}, want {want}");
        }
        assert_eq!(log_normal_sf(f64::INFINITY), f64::NEG_INFINITY);
        assert_eq!(log_normal_sf(f64::NEG_INFINITY), 0.0);
        assert!(log_normal_sf(1e200).is_infinite());
    }

    #[test]
    fn log_normal_sf_matches_asymptotic_series() {
        // ln Q(z) = -z^2/2 - ln(z sqrt(2 pi)) + ln(1 - 1/z^2 + 3/z^4 - 15/z^6 + 105/z^8 - ...)
        for z in [30.0f64, 50.0, 75.0, 120.0, 500.0, 3000.0] {
            let z2 = z * z;
            let series = 1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2)
                + 105.0 / (z2 * z2 * z2 * z2);
            let asym = -0.5 * z2 - (z * (2.0 * PI).sqrt()).ln() + series.ln();
            // Truncation error of the series ~ 945 / z^10, plus f64 rounding.
            let tol = 945.0 / z2.powi(5) + 4e-16 * asym.abs();
            let got = log_normal_sf(z);
            assert!((got - asym).abs() < tol, "z = {z}: {got} vs {asym}");
        }
    }

    #[test]
    fn log_normal_sf_monotone_and_continuous_across_intervals() {
        let mut prev = 0.0;
        let mut z = -40.0;
        while z < 200.0 {
            let v = log_normal_sf(z);
            assert!(v <= prev, "not monotone at {z}");
            assert!(v.is_finite());
            prev = v;
            z += 0.013;
        }
        // Around the Cody interval boundaries (|x| = 0.46875, 4 in erfc units).
        for x in [0.46875f64, 4.0] {
            let z = x * std::f64::consts::SQRT_2;
            let lo = log_normal_sf(z - 1e-12);
            let hi = log_normal_sf(z + 1e-12);
            assert!((lo - hi).abs() < 1e-10);
        }
    }

    #[test]
    fn ln_factorial_values() {
        assert_eq!(ln_factorial(0), 0.0);
        assert_eq!(ln_factorial(1), 0.0);
        assert!(rel(ln_factorial(10), 15.104412573075515) < 1e-15);
        // mpmath: log(factorial(20)), log(factorial(100)), log(factorial(18432)).
        assert!(rel(ln_factorial(20), 42.33561646075348503) < 1e-15);
        assert!(rel(ln_factorial(100), 363.73937555556349014) < 1e-15);
        assert!(rel(ln_factorial(18432), 162_610.050_427_187_3) < 1e-15);
        assert!(rel(ln_binomial(10, 3), 120f64.ln()) < 1e-14);
    }

    #[test]
    fn log_helpers() {
        assert!((log_sum_exp(&[-1000.0, -1000.0]) - (-1000.0 + LN_2)).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[]), f64::NEG_INFINITY);
        assert!((log1m_exp(-1e-20) - (1e-20f64).ln()).abs() < 1e-12);
        assert!((log1m_exp(-50.0) - (-(-50.0f64).exp())).abs() < 1e-30);
        // Cauchy sf: P(C > 1) = 1/4, P(C > -1) = 3/4, P(C > 1e20) ~ 1/(pi 1e20).
        assert!((log_cauchy_sf(1.0) - 0.25f64.ln()).abs() < 1e-15);
        assert!((log_cauchy_sf(-1.0) - 0.75f64.ln()).abs() < 1e-15);
        assert!(rel(log_cauchy_sf(1e20), -(1e20 * PI).ln()) < 1e-15);
        assert!(rel(log_cauchy_sf_from_ln(5000.0), -5000.0 - PI.ln()) < 1e-15);
    }
}
