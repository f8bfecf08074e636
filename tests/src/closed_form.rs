//! Closed forms of the theory: binomial and Poisson tails, and the bound on FixedPred's
//! remainder, summed term by term in f64.
//!
//! ```
//! use pcnet_tests::closed_form::{binomial_tail, poisson_tail, remainder_bound};
//!
//! // P[Bin(2, 0.5) >= 1] = 3/4; the tail and the remainder add up to one for eta in [0, 1].
//! assert!((binomial_tail(2, 0.5, 1) - 0.75).abs() < 1e-15);
//! assert!((binomial_tail(5, 0.3, 2) + remainder_bound(5, 0.3, 2) - 1.0).abs() < 1e-15);
//! assert!((poisson_tail(1.0, 1) - (1.0 - (-1.0_f64).exp())).abs() < 1e-15);
//! ```

/// `sum_{j >= d} C(k, j) eta^j (1 - eta)^(k - j)`: `P[Binomial(k, eta) >= d]` for eta in
/// [0, 1], the same polynomial outside.
pub fn binomial_tail(k: usize, eta: f64, d: usize) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0; // C(k, j)
    for j in 0..=k {
        if j >= d {
            total += choose * eta.powi(j as i32) * (1.0 - eta).powi((k - j) as i32);
        }
        choose = choose * (k - j) as f64 / (j + 1) as f64;
    }
    total
}

/// `sum_{j < d} C(k, j) |eta|^j |1 - eta|^(k - j)`: a bound on `|1 - c|` for any `eta`.
pub fn remainder_bound(k: usize, eta: f64, d: usize) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for j in 0..d.min(k + 1) {
        total += choose * eta.abs().powi(j as i32) * (1.0 - eta).abs().powi((k - j) as i32);
        choose = choose * (k - j) as f64 / (j + 1) as f64;
    }
    total
}

/// `P[Poisson(t) >= d]`.
pub fn poisson_tail(t: f64, d: usize) -> f64 {
    let mut term = (-t).exp();
    let mut below = 0.0;
    for k in 0..d {
        below += term;
        term *= t / (k + 1) as f64;
    }
    1.0 - below
}
