//! Fuzz target `fast_kernels`: pcnet-std's [`Fast`] backend against pcnet-core's [`Portable`]
//! kernels on arbitrary shapes and bit patterns, and the safe strided [`gemm`] wrapper
//! against a naive loop, with NaN canaries around every output.
//!
//! The bound: both backends compute each output as a sum of `k` products (plus a bias),
//! each within `gamma_k * S` of the exact value, `S = sum |a_i b_i|` (+ `|bias|`),
//! `gamma_k = k u / (1 - k u)` (Higham, *Accuracy and Stability*, §3.1; it covers any
//! summation order and fused multiply-adds). So they differ by at most `2 gamma_k S`,
//! plus `2 k` times the smallest normal number for rounding in gradual underflow. The
//! bound is asserted when every input of an output is finite and `S` is far from
//! overflow; when a NaN enters a sum (a NaN input, or `inf * 0`) both must return NaN;
//! otherwise (infinities, sums that overflow in some order) no value is compared, but the
//! canaries and the absence of panics still are.
//!
//! Also: outputs are overwritten (they start as NaN garbage), and nothing outside an
//! output slice changes (`f64::MAX` canaries on both sides, checked bit for bit).

use super::input::Input;
use pcnet_core::kernels::portable;
use pcnet_core::{Backend, LinearDims, Portable, Scalar};
use pcnet_std::fast::{gemm, Accumulate, Fast, GemmScalar, MatMut, MatRef};

/// Elements of canary on each side of an output.
const GUARD: usize = 8;

/// Runs the `fast_kernels` target on arbitrary bytes; panics when an invariant fails.
pub fn fast_kernels(data: &[u8]) {
    let mut input = Input::new(data);
    match input.below(4) {
        0 => linear::<f32>(&mut input),
        1 => linear::<f64>(&mut input),
        2 => strided::<f32>(&mut input),
        _ => strided::<f64>(&mut input),
    }
}

/// How a case's values are drawn.
#[derive(Clone, Copy)]
enum Values {
    /// Small integers: every product and sum is exact, whatever the order.
    Integers,
    /// Multiples of 1/64 in `[-2, 2)`.
    Tame,
    /// Any bit pattern class (NaN, infinities, subnormals, huge values, raw bits).
    Wild,
}

fn draw<T: Scalar>(input: &mut Input<'_>, len: usize, values: Values) -> Vec<T> {
    (0..len)
        .map(|_| {
            T::from_f64(match values {
                Values::Integers => f64::from(input.byte() as i8 % 8),
                Values::Tame => input.tame(),
                Values::Wild => input.special(),
            })
        })
        .collect()
}

fn dimension(input: &mut Input<'_>) -> usize {
    match input.below(8) {
        0 => 0,
        1 => 1,
        2..=5 => input.below(9),
        6 => input.below(33),
        _ => 33 + input.below(48),
    }
}

/// A buffer of `len` outputs between canaries; the outputs start as NaN.
struct Guarded<T> {
    buffer: Vec<T>,
    len: usize,
}

impl<T: Scalar> Guarded<T> {
    fn new(len: usize) -> Self {
        let mut buffer = vec![T::max_value(); len + 2 * GUARD];
        buffer[GUARD..GUARD + len].fill(T::nan());
        Guarded { buffer, len }
    }

    fn out(&mut self) -> &mut [T] {
        &mut self.buffer[GUARD..GUARD + self.len]
    }

    fn values(&self) -> &[T] {
        &self.buffer[GUARD..GUARD + self.len]
    }

    fn check_canaries(&self, what: &str) {
        let intact =
            |v: &T| Scalar::to_f64(*v).to_bits() == Scalar::to_f64(T::max_value()).to_bits();
        assert!(
            self.buffer[..GUARD].iter().all(intact)
                && self.buffer[GUARD + self.len..].iter().all(intact),
            "{what}: wrote outside its output"
        );
    }
}

/// One output element as a sum of products: its terms, for the bound.
struct Sum {
    /// Whether any input of the sum is NaN or a product is `inf * 0`.
    nan: bool,
    /// Whether every input is finite and `S` is far from overflow.
    finite: bool,
    /// `S = sum |a_i b_i|` (+ `|bias|`), in f64.
    magnitude: f64,
    /// Number of roundings (`k`, plus one for a bias).
    terms: usize,
}

impl Sum {
    fn of<T: Scalar>(pairs: impl Iterator<Item = (T, T)>, bias: Option<T>) -> Sum {
        let mut sum = Sum {
            nan: false,
            finite: true,
            magnitude: 0.0,
            terms: 0,
        };
        let mut add = |value: f64, product: f64| {
            sum.nan |= product.is_nan();
            sum.finite &= value.is_finite();
            sum.magnitude += product.abs();
            sum.terms += 1;
        };
        for (a, b) in pairs {
            let (a, b) = (Scalar::to_f64(a), Scalar::to_f64(b));
            let product = a * b;
            add(
                if a.is_finite() && b.is_finite() {
                    product
                } else {
                    f64::INFINITY
                },
                product,
            );
        }
        if let Some(bias) = bias {
            let bias = Scalar::to_f64(bias);
            add(bias, bias);
        }
        // Far from overflow in T: no partial sum in any order can reach it.
        let limit = Scalar::to_f64(T::max_value()) / (2.0 * (sum.terms as f64 + 1.0));
        sum.finite &= sum.magnitude.is_finite() && sum.magnitude <= limit;
        sum
    }

    /// Checks `fast` against `reference` under the bound of the module docs.
    fn check<T: Scalar>(&self, fast: T, reference: T, what: &str, index: usize) {
        if self.finite {
            let u = Scalar::to_f64(T::UNIT_ROUNDOFF);
            let k = self.terms as f64;
            let gamma = k * u / (1.0 - k * u);
            let tiny = Scalar::to_f64(T::min_positive_value());
            let bound = 2.0 * gamma * self.magnitude + 2.0 * k * tiny;
            let (f, r) = (Scalar::to_f64(fast), Scalar::to_f64(reference));
            assert!(
                f.is_finite() && r.is_finite() && (f - r).abs() <= bound,
                "{what}[{index}]: fast {f:e} and portable {r:e} differ by more than {bound:e}"
            );
        } else if self.nan {
            assert!(
                fast.is_nan() && reference.is_nan(),
                "{what}[{index}]: a NaN entered the sum but fast gives {fast} and portable {reference}"
            );
        }
    }
}

fn linear<T: GemmScalar>(input: &mut Input<'_>)
where
    Fast: Backend<T>,
{
    let dims = LinearDims {
        rows: dimension(input),
        inputs: dimension(input),
        outputs: dimension(input),
    };
    let LinearDims {
        rows,
        inputs,
        outputs,
    } = dims;
    let values = [Values::Integers, Values::Tame, Values::Wild][input.below(3)];
    let x: Vec<T> = draw(input, rows * inputs, values);
    let weight: Vec<T> = draw(input, outputs * inputs, values);
    let bias: Vec<T> = draw(input, outputs, values);
    let grad_output: Vec<T> = draw(input, rows * outputs, values);

    // Forward.
    let (mut fast, mut reference) = (Guarded::new(rows * outputs), Guarded::new(rows * outputs));
    Fast::default().linear_forward(
        pcnet_core::OpKey::NONE,
        dims,
        &x,
        &weight,
        &bias,
        fast.out(),
    );
    Portable.linear_forward(
        pcnet_core::OpKey::NONE,
        dims,
        &x,
        &weight,
        &bias,
        reference.out(),
    );
    fast.check_canaries("fast linear_forward");
    reference.check_canaries("portable linear_forward");
    for r in 0..rows {
        for o in 0..outputs {
            let pairs = (0..inputs).map(|i| (x[r * inputs + i], weight[o * inputs + i]));
            let index = r * outputs + o;
            Sum::of(pairs, Some(bias[o])).check(
                fast.values()[index],
                reference.values()[index],
                "forward",
                index,
            );
        }
    }

    // Input gradient.
    let (mut fast, mut reference) = (Guarded::new(rows * inputs), Guarded::new(rows * inputs));
    Fast::default().linear_backward_input(
        pcnet_core::OpKey::NONE,
        dims,
        &grad_output,
        &weight,
        fast.out(),
    );
    Portable.linear_backward_input(
        pcnet_core::OpKey::NONE,
        dims,
        &grad_output,
        &weight,
        reference.out(),
    );
    fast.check_canaries("fast linear_backward_input");
    reference.check_canaries("portable linear_backward_input");
    for r in 0..rows {
        for i in 0..inputs {
            let pairs =
                (0..outputs).map(|o| (grad_output[r * outputs + o], weight[o * inputs + i]));
            let index = r * inputs + i;
            Sum::of(pairs, None).check(
                fast.values()[index],
                reference.values()[index],
                "backward_input",
                index,
            );
        }
    }

    // Parameter gradients.
    let (mut fast_w, mut reference_w) = (
        Guarded::new(outputs * inputs),
        Guarded::new(outputs * inputs),
    );
    let (mut fast_b, mut reference_b) = (Guarded::new(outputs), Guarded::new(outputs));
    Fast::default().linear_backward_parameters(
        pcnet_core::OpKey::NONE,
        dims,
        &grad_output,
        &x,
        fast_w.out(),
        fast_b.out(),
    );
    Portable.linear_backward_parameters(
        pcnet_core::OpKey::NONE,
        dims,
        &grad_output,
        &x,
        reference_w.out(),
        reference_b.out(),
    );
    for (guarded, what) in [
        (&fast_w, "fast grad_weight"),
        (&reference_w, "portable grad_weight"),
        (&fast_b, "fast grad_bias"),
        (&reference_b, "portable grad_bias"),
    ] {
        guarded.check_canaries(what);
    }
    for o in 0..outputs {
        for i in 0..inputs {
            let pairs = (0..rows).map(|r| (grad_output[r * outputs + o], x[r * inputs + i]));
            let index = o * inputs + i;
            Sum::of(pairs, None).check(
                fast_w.values()[index],
                reference_w.values()[index],
                "grad_weight",
                index,
            );
        }
        let pairs = (0..rows).map(|r| (grad_output[r * outputs + o], T::one()));
        Sum::of(pairs, None).check(fast_b.values()[o], reference_b.values()[o], "grad_bias", o);
    }
    // The portable kernels are pcnet-core's reference: on small integers they are exact.
    if let Values::Integers = values {
        let mut exact = vec![T::zero(); rows * outputs];
        portable::linear_forward(dims, &x, &weight, &bias, &mut exact);
        for r in 0..rows {
            for o in 0..outputs {
                let naive = (0..inputs).fold(Scalar::to_f64(bias[o]), |s, i| {
                    s + Scalar::to_f64(x[r * inputs + i]) * Scalar::to_f64(weight[o * inputs + i])
                });
                assert_eq!(
                    Scalar::to_f64(exact[r * outputs + o]),
                    naive,
                    "portable forward on integers"
                );
            }
        }
    }
}

/// The strides of a view: row-major, column-major, padded, broadcasting (stride 0),
/// overflowing, or arbitrary.
fn view_shape(input: &mut Input<'_>, rows: usize, columns: usize) -> (usize, usize) {
    let (row_stride, column_stride) = match input.below(6) {
        0 => (columns, 1),
        1 => (1, rows),
        2 => (columns + input.below(4), 1),
        3 => (0, input.below(3)),
        4 => (input.below(3), 0),
        _ => match input.below(3) {
            0 => (usize::MAX / 2, 1),
            1 => (input.u32() as usize, input.u32() as usize),
            _ => (input.below(9), input.below(9)),
        },
    };
    (row_stride, column_stride)
}

fn span(rows: usize, columns: usize, row_stride: usize, column_stride: usize) -> Option<usize> {
    if rows == 0 || columns == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((columns - 1).checked_mul(column_stride)?)?
        .checked_add(1)
}

fn strided<T: GemmScalar>(input: &mut Input<'_>) {
    let (m, n, k) = (dimension(input), dimension(input), dimension(input));
    let values = [Values::Integers, Values::Tame, Values::Wild][input.below(3)];
    let accumulate = if input.one_in(2) {
        Accumulate::Overwrite
    } else {
        Accumulate::Add
    };
    // Operands: strided views over slices of about the length they need.
    let operand = |input: &mut Input<'_>, rows: usize, columns: usize| {
        let (row_stride, column_stride) = view_shape(input, rows, columns);
        let needed = span(rows, columns, row_stride, column_stride);
        let len = match needed {
            Some(needed) if needed <= 1 << 14 => needed.saturating_add_signed(input.delta()),
            _ => input.below(64),
        };
        let data: Vec<T> = draw(input, len, values);
        (
            data,
            row_stride,
            column_stride,
            needed.is_some_and(|needed| needed <= len),
        )
    };
    let (a, a_rs, a_cs, a_ok) = operand(input, m, k);
    let (b, b_rs, b_cs, b_ok) = operand(input, k, n);
    let lhs = MatRef::new(&a, m, k, a_rs, a_cs);
    let rhs = MatRef::new(&b, k, n, b_rs, b_cs);
    let strides_fit = |s: usize| isize::try_from(s).is_ok();
    assert_eq!(
        lhs.is_ok(),
        a_ok && strides_fit(a_rs) && strides_fit(a_cs),
        "MatRef::new({m} x {k}, strides {a_rs}, {a_cs}, len {})",
        a.len()
    );
    assert_eq!(
        rhs.is_ok(),
        b_ok && strides_fit(b_rs) && strides_fit(b_cs),
        "MatRef::new({k} x {n}, strides {b_rs}, {b_cs}, len {})",
        b.len()
    );
    let (Ok(lhs), Ok(rhs)) = (lhs, rhs) else {
        return;
    };
    // Views read what the naive definition says.
    for i in 0..m {
        for p in 0..k {
            assert_eq!(
                lhs.get(i, p).map(|v| Scalar::to_f64(v).to_bits()),
                Some(Scalar::to_f64(a[i * a_rs + p * a_cs]).to_bits())
            );
        }
    }
    let column_major = input.one_in(2);
    let start: Vec<T> = draw(input, m * n, values);
    let mut out = Guarded::new(m * n);
    out.out().copy_from_slice(&start);
    {
        let dst = if column_major {
            MatMut::column_major(out.out(), m, n)
        } else {
            MatMut::row_major(out.out(), m, n)
        }
        .expect("an exact-length output view");
        gemm(dst, lhs, rhs, accumulate).expect("shapes that chain");
    }
    out.check_canaries("gemm");
    for i in 0..m {
        for j in 0..n {
            let index = if column_major { i + j * m } else { i * n + j };
            let pairs = (0..k).map(|p| (a[i * a_rs + p * a_cs], b[p * b_rs + j * b_cs]));
            let bias = match accumulate {
                Accumulate::Add => Some(start[index]),
                Accumulate::Overwrite => None,
            };
            let naive = (0..k).fold(bias.map_or(0.0, |b| Scalar::to_f64(b)), |s, p| {
                s + Scalar::to_f64(a[i * a_rs + p * a_cs]) * Scalar::to_f64(b[p * b_rs + j * b_cs])
            });
            // The naive sum is in f64: within gamma_k S of exact for f64, exact-ish for f32.
            Sum::of(pairs, bias).check(out.values()[index], T::from_f64(naive), "gemm", index);
        }
    }
    // Shapes that do not chain are refused, and nothing is written.
    if k > 0 {
        let mut other = Guarded::new((m + 1) * n);
        let dst = MatMut::row_major(other.out(), m + 1, n).expect("an exact-length output view");
        assert!(
            gemm(dst, lhs, rhs, accumulate).is_err(),
            "gemm accepted an output of the wrong height"
        );
        assert!(
            other.values().iter().all(|v| v.is_nan()),
            "a refused gemm wrote"
        );
        other.check_canaries("refused gemm");
    }
}
