//! The scalar types pcnet-core computes with.
//!
//! [`Scalar`] is sealed and implemented for `f32` and `f64` only: an unsupported type is a
//! compile error, never a runtime surprise. Transcendental functions go through `libm`
//! directly (not through `num_traits::Float`, whose backend switches to `std` when any crate
//! in the build turns on `num-traits/std`), so a host test computes exactly what a
//! microcontroller computes.

use core::fmt::{Debug, Display};
use num_traits::Float;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point type pcnet-core computes in: `f32` or `f64`.
///
/// # Example
/// ```
/// use pcnet_core::Scalar;
/// fn logistic<T: Scalar>(x: T) -> T {
///     T::one() / (T::one() + (-x).exp_libm())
/// }
/// assert_eq!(logistic(0.0_f64), 0.5);
/// ```
pub trait Scalar:
    Float + Copy + Default + Debug + Display + Send + Sync + 'static + sealed::Sealed
{
    /// Unit roundoff `u = 2^-p` (half the machine epsilon) of the type.
    const UNIT_ROUNDOFF: Self;
    /// `e^x` via libm.
    fn exp_libm(self) -> Self;
    /// `ln(1 + x)` via libm.
    fn ln_1p_libm(self) -> Self;
    /// Natural logarithm via libm.
    fn ln_libm(self) -> Self;
    /// Hyperbolic tangent via libm.
    fn tanh_libm(self) -> Self;
    /// Square root via libm.
    fn sqrt_libm(self) -> Self;
    /// `self^exponent` for an integer exponent via libm.
    fn powi_libm(self, exponent: i32) -> Self;
    /// Converts from `f64`, rounding to nearest (`f64` is exact).
    fn from_f64(value: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// Converts a count to the scalar type, rounding to nearest.
    fn from_usize(value: usize) -> Self;
    /// `values` as the concrete type it is, for code generic over `T: Scalar` that hands
    /// slices to per-type kernels (pcnet-std's fast backend does, so that it implements
    /// [`crate::Backend`] for every `T: Scalar` with no extra bound on the caller).
    ///
    /// # Example
    /// ```
    /// use pcnet_core::{Scalar, ScalarSlice};
    /// fn sum_in_f64<T: Scalar>(values: &[T]) -> f64 {
    ///     match T::as_typed(values) {
    ///         ScalarSlice::F32(values) => values.iter().map(|&v| f64::from(v)).sum(),
    ///         ScalarSlice::F64(values) => values.iter().sum(),
    ///     }
    /// }
    /// assert_eq!(sum_in_f64(&[1.5_f32, 2.0]), 3.5);
    /// ```
    fn as_typed(values: &[Self]) -> ScalarSlice<'_>;
    /// [`Scalar::as_typed`] for a mutable slice.
    ///
    /// # Example
    /// ```
    /// use pcnet_core::{Scalar, ScalarSliceMut};
    /// let mut values = [1.0_f64, 2.0];
    /// if let ScalarSliceMut::F64(values) = f64::as_typed_mut(&mut values) {
    ///     values[0] = 5.0;
    /// }
    /// assert_eq!(values, [5.0, 2.0]);
    /// ```
    fn as_typed_mut(values: &mut [Self]) -> ScalarSliceMut<'_>;
}

/// A slice of one of the two [`Scalar`] types ([`Scalar::as_typed`]).
#[derive(Debug)]
pub enum ScalarSlice<'a> {
    /// `f32` values.
    F32(&'a [f32]),
    /// `f64` values.
    F64(&'a [f64]),
}

/// A mutable slice of one of the two [`Scalar`] types ([`Scalar::as_typed_mut`]).
#[derive(Debug)]
pub enum ScalarSliceMut<'a> {
    /// `f32` values.
    F32(&'a mut [f32]),
    /// `f64` values.
    F64(&'a mut [f64]),
}

impl Scalar for f32 {
    const UNIT_ROUNDOFF: f32 = f32::EPSILON / 2.0;
    #[inline]
    fn exp_libm(self) -> f32 {
        libm::expf(self)
    }
    #[inline]
    fn ln_1p_libm(self) -> f32 {
        libm::log1pf(self)
    }
    #[inline]
    fn ln_libm(self) -> f32 {
        libm::logf(self)
    }
    #[inline]
    fn tanh_libm(self) -> f32 {
        libm::tanhf(self)
    }
    #[inline]
    fn sqrt_libm(self) -> f32 {
        libm::sqrtf(self)
    }
    #[inline]
    fn powi_libm(self, exponent: i32) -> f32 {
        libm::powf(self, exponent as f32)
    }
    #[inline]
    fn from_f64(value: f64) -> f32 {
        value as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn as_typed(values: &[f32]) -> ScalarSlice<'_> {
        ScalarSlice::F32(values)
    }
    #[inline]
    fn as_typed_mut(values: &mut [f32]) -> ScalarSliceMut<'_> {
        ScalarSliceMut::F32(values)
    }
    #[inline]
    fn from_usize(value: usize) -> f32 {
        value as f32
    }
}

impl Scalar for f64 {
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
    #[inline]
    fn exp_libm(self) -> f64 {
        libm::exp(self)
    }
    #[inline]
    fn ln_1p_libm(self) -> f64 {
        libm::log1p(self)
    }
    #[inline]
    fn ln_libm(self) -> f64 {
        libm::log(self)
    }
    #[inline]
    fn tanh_libm(self) -> f64 {
        libm::tanh(self)
    }
    #[inline]
    fn sqrt_libm(self) -> f64 {
        libm::sqrt(self)
    }
    #[inline]
    fn powi_libm(self, exponent: i32) -> f64 {
        libm::pow(self, exponent as f64)
    }
    #[inline]
    fn from_f64(value: f64) -> f64 {
        value
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn as_typed(values: &[f64]) -> ScalarSlice<'_> {
        ScalarSlice::F64(values)
    }
    #[inline]
    fn as_typed_mut(values: &mut [f64]) -> ScalarSliceMut<'_> {
        ScalarSliceMut::F64(values)
    }
    #[inline]
    fn from_usize(value: usize) -> f64 {
        value as f64
    }
}

/// Returns the first index whose value is not finite, if any.
///
/// Checks run on every parameter and update of every call, so they must not cost more
/// than the arithmetic: each chunk is scanned without a branch per element (an `or` of
/// comparisons, which vectorises),
/// and only a chunk that holds a non-finite value is searched element by element.
pub(crate) fn first_non_finite<T: Scalar>(values: &[T]) -> Option<usize> {
    const CHUNK: usize = 256;
    for (index, chunk) in values.chunks(CHUNK).enumerate() {
        let mut bad = false;
        for &value in chunk {
            bad |= !value.is_finite();
        }
        if bad {
            let within = chunk.iter().position(|value| !value.is_finite());
            return Some(index * CHUNK + within.unwrap_or(0));
        }
    }
    None
}

/// The larger of `current` and `candidate`, where a NaN candidate wins (so a residual
/// computed from NaN values is NaN, not silently ignored as `Float::max` would).
#[inline(always)]
#[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
pub(crate) fn max_or_nan<T: Scalar>(current: T, candidate: T) -> T {
    if candidate > current || candidate.is_nan() {
        candidate
    } else {
        current
    }
}

/// `max(current, max_i |a_i - b_i|)`, NaN when any difference (or `current`) is NaN:
/// what a loop of [`max_or_nan`] over the differences returns, bit for bit (a maximum
/// does not depend on the order it is taken in), but over eight independent lanes so
/// that it vectorises instead of running one dependent `max` per element.
#[cfg_attr(not(any(feature = "fixed-pred", feature = "strict")), allow(dead_code))]
pub(crate) fn max_abs_difference<T: Scalar>(current: T, a: &[T], b: &[T]) -> T {
    const LANES: usize = 8;
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut largest = [T::zero(); LANES];
    let mut nan = [false; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            let difference = (x[lane] - y[lane]).abs();
            nan[lane] |= difference.is_nan();
            largest[lane] = if difference > largest[lane] {
                difference
            } else {
                largest[lane]
            };
        }
    }
    let mut result = current;
    for lane in 0..LANES {
        result = max_or_nan(result, largest[lane]);
        if nan[lane] {
            result = T::nan();
        }
    }
    for (&x, &y) in a_rest.iter().zip(b_rest) {
        result = max_or_nan(result, (x - y).abs());
    }
    result
}

/// `max_i |a_i|` (zero for an empty slice), NaN when any value is NaN; eight independent
/// lanes, as [`max_abs_difference`], so that it vectorises.
pub(crate) fn max_abs<T: Scalar>(values: &[T]) -> T {
    const LANES: usize = 8;
    let mut largest = [T::zero(); LANES];
    let mut nan = [false; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for lane in 0..LANES {
            let magnitude = chunk[lane].abs();
            nan[lane] |= magnitude.is_nan();
            largest[lane] = if magnitude > largest[lane] {
                magnitude
            } else {
                largest[lane]
            };
        }
    }
    let mut result = T::zero();
    for lane in 0..LANES {
        result = max_or_nan(result, largest[lane]);
        if nan[lane] {
            result = T::nan();
        }
    }
    for &value in rest {
        result = max_or_nan(result, value.abs());
    }
    result
}

/// Whether every sum of at most `terms` products `a_i b_j`, and every sum of at most
/// `terms` values `a_i`, is finite however it is computed: a proof from magnitudes, which
/// lets the schedule skip scanning a parameter gradient it has just written (the
/// gradient has as many values as the parameters; `a` and `b` are a block's activations).
///
/// In floating point a sum of `n` terms, in any order and with or without fused
/// multiply-adds, has every partial sum within `(1 + u)^(n + 1) sum |terms| <= e^2 sum
/// |terms|` when `n u <= 1`, `u` the unit roundoff; so `n max|a| max(|b|, 1) <= MAX / 8`
/// keeps every partial sum finite. `false` (the caller then scans what it wrote) when
/// that does not hold, including when any value is non-finite.
///
/// Always `false` without the `finiteness-proofs` feature (the caller scans instead).
pub(crate) fn sums_of_products_stay_finite<T: Scalar>(a: &[T], b: &[T], terms: usize) -> bool {
    if !cfg!(feature = "finiteness-proofs") {
        return false;
    }
    let count = T::from_usize(terms);
    let bound = count * max_abs(a) * max_or_nan(T::one(), max_abs(b));
    count * T::UNIT_ROUNDOFF <= T::one() && bound <= T::max_value() / T::from_f64(8.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_finite_finds_the_first_bad_value_in_any_chunk() {
        let mut values = std::vec![1.0_f32; 1000];
        assert_eq!(first_non_finite(&values), None);
        for (index, bad) in [
            (0, f32::NAN),
            (255, f32::INFINITY),
            (256, f32::NEG_INFINITY),
            (999, f32::NAN),
        ] {
            values[index] = bad;
            assert_eq!(first_non_finite(&values), Some(index));
            values[index] = f32::MAX;
        }
        values[700] = f64::NAN as f32;
        values[701] = f32::NAN;
        assert_eq!(first_non_finite(&values), Some(700));
        assert_eq!(first_non_finite::<f64>(&[]), None);
    }

    #[test]
    fn max_abs_is_the_largest_magnitude_and_nan_wins() {
        let values: std::vec::Vec<f32> = (0..37).map(|i| (i as f32 - 20.0) / 3.0).collect();
        assert_eq!(max_abs(&values), 20.0 / 3.0);
        assert_eq!(max_abs::<f64>(&[]), 0.0);
        for index in [0, 7, 8, 36] {
            let mut with_nan = values.clone();
            with_nan[index] = f32::NAN;
            assert!(max_abs(&with_nan).is_nan(), "NaN at {index}");
            with_nan[index] = f32::NEG_INFINITY;
            assert_eq!(max_abs(&with_nan), f32::INFINITY, "-inf at {index}");
        }
    }

    /// The proof holds exactly up to the stated bound: `n max|a| max(|b|, 1) <= MAX / 8`
    /// and `n u <= 1`; beyond it, or with a non-finite value, it says nothing.
    #[test]
    #[cfg(feature = "finiteness-proofs")]
    fn sums_of_products_stay_finite_up_to_the_bound() {
        let limit = f32::MAX / 8.0;
        assert!(sums_of_products_stay_finite(&[limit / 4.0], &[0.5], 4));
        assert!(!sums_of_products_stay_finite(&[limit / 2.0], &[0.5], 4));
        // |b| below 1 still leaves the sum of the a's themselves (a bias gradient).
        assert!(!sums_of_products_stay_finite(&[limit], &[1e-30], 2));
        assert!(sums_of_products_stay_finite(
            &[1.0_f32, -3.0],
            &[2.0, -5.0],
            1000
        ));
        assert!(!sums_of_products_stay_finite(&[1.0, f32::NAN], &[2.0], 1));
        assert!(!sums_of_products_stay_finite(&[1.0], &[f32::INFINITY], 1));
        assert!(!sums_of_products_stay_finite(&[f32::MAX], &[f32::MAX], 1));
        // n u <= 1: 2^24 terms is the most f32 allows.
        assert!(sums_of_products_stay_finite(&[1.0_f32], &[1.0], 1 << 24));
        assert!(!sums_of_products_stay_finite(
            &[1.0_f32],
            &[1.0],
            (1 << 24) + 2
        ));
        assert!(sums_of_products_stay_finite(
            &[1.0_f64],
            &[1.0],
            (1 << 24) + 2
        ));
        // What it proves: the worst case at the bound, summed naively, stays finite.
        let terms = 1 << 12;
        let a = std::vec![limit / terms as f32; terms];
        assert!(sums_of_products_stay_finite(&a, &[1.0], terms));
        let sum: f32 = a.iter().sum();
        assert!(sum.is_finite());
    }

    /// The lane-wise maximum equals the element-by-element loop it replaces, bit for bit,
    /// including NaN anywhere (a chunk or the tail) and an already-NaN start.
    #[test]
    fn max_abs_difference_equals_the_sequential_loop() {
        let a: std::vec::Vec<f64> = (0..37)
            .map(|i| ((i * 17 % 23) as f64 - 11.0) / 3.0)
            .collect();
        let b: std::vec::Vec<f64> = (0..37).map(|i| ((i * 5 % 19) as f64 - 9.0) / 7.0).collect();
        let sequential = |current: f64, a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .fold(current, |m, (x, y)| max_or_nan(m, (x - y).abs()))
        };
        for len in [0, 1, 7, 8, 9, 16, 37] {
            for start in [0.0, 0.5, 100.0] {
                let expected = sequential(start, &a[..len], &b[..len]);
                let got = max_abs_difference(start, &a[..len], &b[..len]);
                assert_eq!(
                    got.to_bits(),
                    expected.to_bits(),
                    "len {len}, start {start}"
                );
            }
        }
        for bad in [3, 36] {
            let mut a = a.clone();
            a[bad] = f64::NAN;
            assert!(max_abs_difference(0.0, &a, &b).is_nan());
        }
        assert!(max_abs_difference(f64::NAN, &a, &b).is_nan());
    }
}
