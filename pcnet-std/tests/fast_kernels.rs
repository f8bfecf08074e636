//! The fast kernels against pcnet-core's portable ones, on every shape class.
//!
//! Tolerance: each output element is a sum of `k` products (plus the bias for the forward
//! pass). Any summation order is within `gamma_k * sum |a_i b_i|` of the exact value
//! (Higham, Accuracy and Stability, §3.1), `gamma_k = k u / (1 - k u)`, so two orders differ
//! by at most `2 gamma_k sum |a_i b_i|`. The absolute sums are computed in f64.
//! NaN canaries around every output catch writes out of bounds, and outputs are
//! pre-filled with NaN to catch reads of stale output.
//!
//! Every test runs once per kernel family this machine has (`families`), the families it
//! lacks reported as skipped; each family is checked against pcnet-core's portable
//! kernels and against the fast `portable` family, within the same bound.

mod families;

use families::families;
use pcnet_core::{kernels::portable, Backend, LinearDims, Scalar};
use pcnet_std::fast::{gemm, Accumulate, Fast, Isa, MatMut, MatRef};

const CANARY: usize = 17;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn vec<T: Scalar>(&mut self, len: usize) -> Vec<T> {
        (0..len).map(|_| T::from_f64(self.next())).collect()
    }
}

fn gamma<T: Scalar>(k: usize) -> f64 {
    let ku = k as f64 * T::UNIT_ROUNDOFF.to_f64();
    ku / (1.0 - ku)
}

/// A buffer of `len` NaNs with `CANARY` NaN canaries on each side.
fn guarded<T: Scalar>(len: usize) -> Vec<T> {
    vec![T::nan(); len + 2 * CANARY]
}

fn check_canaries<T: Scalar>(buffer: &[T], what: &str) {
    let len = buffer.len();
    for (index, value) in buffer[..CANARY]
        .iter()
        .chain(&buffer[len - CANARY..])
        .enumerate()
    {
        assert!(value.is_nan(), "{what}: canary {index} overwritten");
    }
}

fn within<T: Scalar>(fast: &[T], slow: &[T], bounds: &[f64], what: &str) {
    assert_eq!(fast.len(), slow.len());
    for (index, ((&a, &b), &bound)) in fast.iter().zip(slow).zip(bounds).enumerate() {
        let diff = (a.to_f64() - b.to_f64()).abs();
        assert!(
            diff <= bound,
            "{what}[{index}]: fast {a}, portable {b}, diff {diff:e} > bound {bound:e}"
        );
    }
}

fn shapes() -> Vec<LinearDims> {
    let mut shapes = Vec::new();
    // 1 x N, N x 1, tall, wide, odd sizes, sizes around SIMD widths and blocks, empty-ish.
    let sizes = [0usize, 1, 2, 3, 7, 15, 16, 17, 33, 64, 65, 130];
    for &rows in &[1usize, 2, 3, 5, 16, 64, 67, 129] {
        for &inputs in &sizes {
            // (No zero outputs: no network has a zero-width layer, and the portable
            // reference does not take one.)
            for &outputs in &[1usize, 3, 16, 17, 40, 65] {
                if rows * inputs * outputs <= 400_000 {
                    shapes.push(LinearDims {
                        rows,
                        inputs,
                        outputs,
                    });
                }
            }
        }
    }
    shapes.push(LinearDims {
        rows: 1,
        inputs: 784,
        outputs: 256,
    });
    shapes.push(LinearDims {
        rows: 64,
        inputs: 784,
        outputs: 256,
    });
    shapes.push(LinearDims {
        rows: 300,
        inputs: 1,
        outputs: 1,
    });
    shapes.push(LinearDims {
        rows: 0,
        inputs: 5,
        outputs: 5,
    });
    shapes
}

fn compare_on_every_shape<T: Scalar>(fast_backend: Fast)
where
    Fast: Backend<T>,
{
    let reference = Fast::with_isa(Isa::Portable).unwrap();
    let mut rng = Lcg(0x5eed);
    for dims in shapes() {
        let LinearDims {
            rows,
            inputs,
            outputs,
        } = dims;
        let input: Vec<T> = rng.vec(rows * inputs);
        let weight: Vec<T> = rng.vec(outputs * inputs);
        let bias: Vec<T> = rng.vec(outputs);
        let grad_output: Vec<T> = rng.vec(rows * outputs);
        let abs = |v: &[T], i: usize| v[i].to_f64().abs();
        let what = format!("{} {dims:?}", fast_backend.isa());

        // Forward: out[r][o] = b[o] + sum_i x[r][i] w[o][i]
        let (mut fast, mut slow) = (
            guarded::<T>(rows * outputs),
            vec![T::zero(); rows * outputs],
        );
        let out = &mut fast[CANARY..CANARY + rows * outputs];
        fast_backend.linear_forward(pcnet_core::OpKey::NONE, dims, &input, &weight, &bias, out);
        portable::linear_forward(dims, &input, &weight, &bias, &mut slow);
        check_canaries(&fast, &what);
        let mut family_portable = vec![T::nan(); rows * outputs];
        reference.linear_forward(
            pcnet_core::OpKey::NONE,
            dims,
            &input,
            &weight,
            &bias,
            &mut family_portable,
        );
        let bounds: Vec<f64> = (0..rows * outputs)
            .map(|ro| {
                let (r, o) = (ro / outputs.max(1), ro % outputs.max(1));
                let sum: f64 = (0..inputs)
                    .map(|i| abs(&input, r * inputs + i) * abs(&weight, o * inputs + i))
                    .sum::<f64>()
                    + abs(&bias, o);
                2.0 * gamma::<T>(inputs + 1) * sum
            })
            .collect();
        within(
            &fast[CANARY..CANARY + rows * outputs],
            &slow,
            &bounds,
            &format!("forward {what}"),
        );
        within(
            &fast[CANARY..CANARY + rows * outputs],
            &family_portable,
            &bounds,
            &format!("forward against the portable family {what}"),
        );

        // Input VJP: g_in[r][i] = sum_o g[r][o] w[o][i]
        let (mut fast, mut slow) = (guarded::<T>(rows * inputs), vec![T::zero(); rows * inputs]);
        fast_backend.linear_backward_input(
            pcnet_core::OpKey::NONE,
            dims,
            &grad_output,
            &weight,
            &mut fast[CANARY..CANARY + rows * inputs],
        );
        portable::linear_backward_input(dims, &grad_output, &weight, &mut slow);
        let mut family_portable = vec![T::nan(); rows * inputs];
        reference.linear_backward_input(
            pcnet_core::OpKey::NONE,
            dims,
            &grad_output,
            &weight,
            &mut family_portable,
        );
        check_canaries(&fast, &what);
        let bounds: Vec<f64> = (0..rows * inputs)
            .map(|ri| {
                let (r, i) = (ri / inputs.max(1), ri % inputs.max(1));
                let sum: f64 = (0..outputs)
                    .map(|o| abs(&grad_output, r * outputs + o) * abs(&weight, o * inputs + i))
                    .sum();
                2.0 * gamma::<T>(outputs) * sum
            })
            .collect();
        within(
            &fast[CANARY..CANARY + rows * inputs],
            &slow,
            &bounds,
            &format!("input vjp {what}"),
        );
        within(
            &fast[CANARY..CANARY + rows * inputs],
            &family_portable,
            &bounds,
            &format!("input vjp against the portable family {what}"),
        );

        // Parameter VJP: g_w[o][i] = sum_r g[r][o] x[r][i], g_b[o] = sum_r g[r][o]
        let (mut fast_w, mut slow_w) = (
            guarded::<T>(outputs * inputs),
            vec![T::zero(); outputs * inputs],
        );
        let (mut fast_b, mut slow_b) = (guarded::<T>(outputs), vec![T::zero(); outputs]);
        fast_backend.linear_backward_parameters(
            pcnet_core::OpKey::NONE,
            dims,
            &grad_output,
            &input,
            &mut fast_w[CANARY..CANARY + outputs * inputs],
            &mut fast_b[CANARY..CANARY + outputs],
        );
        portable::linear_backward_parameters(dims, &grad_output, &input, &mut slow_w, &mut slow_b);
        check_canaries(&fast_w, &what);
        check_canaries(&fast_b, &what);
        let bounds: Vec<f64> = (0..outputs * inputs)
            .map(|oi| {
                let (o, i) = (oi / inputs.max(1), oi % inputs.max(1));
                let sum: f64 = (0..rows)
                    .map(|r| abs(&grad_output, r * outputs + o) * abs(&input, r * inputs + i))
                    .sum();
                2.0 * gamma::<T>(rows) * sum
            })
            .collect();
        within(
            &fast_w[CANARY..CANARY + outputs * inputs],
            &slow_w,
            &bounds,
            &format!("weight vjp {what}"),
        );
        // The bias sums run in the same order in both kernels: equal bits.
        let same = fast_b[CANARY..CANARY + outputs]
            .iter()
            .zip(&slow_b)
            .all(|(&a, &b)| a.to_f64().to_bits() == b.to_f64().to_bits());
        assert!(same, "bias vjp {what}");
    }
}

#[test]
fn fast_f32_kernels_match_portable_on_every_shape_class() {
    for fast in families() {
        compare_on_every_shape::<f32>(fast);
    }
}

#[test]
fn fast_f64_kernels_match_portable_on_every_shape_class() {
    for fast in families() {
        compare_on_every_shape::<f64>(fast);
    }
}

/// `PC_ISA`, when set, names a family this machine runs, and the default backend runs it;
/// unset, the default backend runs the best family detected, which is among the
/// available ones.
#[test]
fn the_default_family_is_pc_isa_or_the_detected_one() {
    let default = Fast::default().isa();
    assert!(Isa::available().contains(&default), "{default}");
    assert!(Isa::available().contains(&Isa::Portable));
    match std::env::var("PC_ISA") {
        Ok(value) => {
            let named: Isa = value.parse().unwrap();
            assert_eq!(Fast::new().unwrap().isa(), named, "PC_ISA={value}");
            assert_eq!(default, named, "PC_ISA={value}");
        }
        Err(_) => assert_eq!(default, Isa::detected()),
    }
    for isa in Isa::ALL {
        assert_eq!(isa.to_string().parse::<Isa>().unwrap(), isa);
        match Fast::with_isa(isa) {
            Ok(fast) => assert!(isa.is_available() && fast.isa() == isa),
            Err(error) => {
                assert!(!isa.is_available(), "{isa}: {error}");
                assert!(
                    matches!(error, pcnet_std::Error::UnavailableIsa { isa: named, .. } if named == isa)
                );
            }
        }
    }
    assert!(matches!(
        "sse2".parse::<Isa>(),
        Err(pcnet_std::Error::UnknownIsa { .. })
    ));
}

/// Small integers make every product and partial sum exact, so any order gives the exact
/// result: strided and transposed views must match a naive triple loop bit for bit.
#[test]
fn gemm_with_strides_and_transposes_is_exact_on_small_integers() {
    for fast in families() {
        exact_with_strides_and_transposes(fast);
    }
}

fn exact_with_strides_and_transposes(fast: Fast) {
    let (m, n, k) = (5, 7, 9);
    let a: Vec<f64> = (0..m * k).map(|i| ((i * 7) % 11) as f64 - 5.0).collect(); // m x k row-major
    let b: Vec<f64> = (0..n * k).map(|i| ((i * 3) % 13) as f64 - 6.0).collect(); // n x k row-major = (k x n)^T
    let naive = |i: usize, j: usize| (0..k).map(|p| a[i * k + p] * b[j * k + p]).sum::<f64>();
    // Row-major destination with padding between rows, canaries in the padding.
    let stride = n + 3;
    let mut c = vec![f64::NAN; m * stride];
    fast.gemm(
        MatMut::row_major_strided(&mut c, m, n, stride).unwrap(),
        MatRef::row_major(&a, m, k).unwrap(),
        MatRef::row_major(&b, n, k).unwrap().transpose(),
        Accumulate::Overwrite,
    )
    .unwrap();
    for i in 0..m {
        for j in 0..stride {
            if j < n {
                assert_eq!(c[i * stride + j], naive(i, j));
            } else {
                assert!(c[i * stride + j].is_nan(), "padding written at ({i}, {j})");
            }
        }
    }
    // Column-major destination, accumulating twice: 2x the product.
    let mut d = vec![0.0; m * n];
    for _ in 0..2 {
        fast.gemm(
            MatMut::column_major(&mut d, m, n).unwrap(),
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&b, n, k).unwrap().transpose(),
            Accumulate::Add,
        )
        .unwrap();
    }
    for i in 0..m {
        for j in 0..n {
            assert_eq!(d[i + j * m], 2.0 * naive(i, j));
        }
    }
    // k = 0 overwrites with zeros.
    let mut z = vec![f64::NAN; 4];
    fast.gemm(
        MatMut::row_major(&mut z, 2, 2).unwrap(),
        MatRef::row_major(&[], 2, 0).unwrap(),
        MatRef::row_major(&[], 0, 2).unwrap(),
        Accumulate::Overwrite,
    )
    .unwrap();
    assert_eq!(z, [0.0; 4]);
}

#[test]
fn views_and_shapes_are_checked() {
    let data = [0.0_f32; 6];
    assert!(MatRef::row_major(&data, 2, 4).is_err());
    assert!(MatRef::new(&data, 2, 3, 3, 1).is_ok());
    assert!(MatRef::new(&data, 2, 3, usize::MAX, 1).is_err());
    let mut out = [0.0_f32; 6];
    assert!(MatMut::row_major_strided(&mut out, 2, 3, 2).is_err()); // rows would overlap
    let a = MatRef::row_major(&data, 2, 3).unwrap();
    let err = gemm(
        MatMut::row_major(&mut out, 2, 3).unwrap(),
        a,
        a,
        Accumulate::Overwrite,
    );
    assert!(matches!(
        err,
        Err(pcnet_core::PcError::ShapeMismatch {
            expected: 3,
            given: 2,
            ..
        })
    ));
}

/// Every path of [`gemm`] (dot-product tiles, broadcast tiles read in place or from packed
/// panels, strided operands packed first; one and several `k` blocks; row, column and
/// panel remainders), every operand layout, both destinations and both accumulation
/// modes, in f32 and f64. Small integers keep every partial sum exact (|sum| <= 30 k <
/// 2^24), so whatever order a kernel sums in, the result must equal a naive loop bit for
/// bit; canaries around and between the destination's rows must survive.
#[test]
fn gemm_is_exact_on_small_integers_on_every_path() {
    fn run<T: pcnet_std::fast::GemmScalar>(fast: Fast) {
        let value = |x: usize| T::from_f64(x as f64);
        let mut shapes = Vec::new();
        for m in [1usize, 6, 7, 24, 31] {
            for n in [1usize, 8, 17, 33] {
                for k in [1usize, 9, 300] {
                    shapes.push((m, n, k));
                }
            }
        }
        shapes.extend([(3, 5, 2050), (1, 70, 2050), (100, 40, 300), (2, 3, 600)]);
        for (m, n, k) in shapes {
            // lhs: m x k, rhs: k x n, each stored row-major or as the transpose of a
            // row-major matrix.
            let a: Vec<T> = (0..m * k).map(|i| value((i * 7) % 11) - value(5)).collect();
            let b: Vec<T> = (0..k * n).map(|i| value((i * 3) % 13) - value(6)).collect();
            let start: Vec<T> = (0..m * n).map(|i| value(i % 5)).collect();
            for lhs_transposed in [false, true] {
                for rhs_transposed in [false, true] {
                    let lhs = if lhs_transposed {
                        MatRef::row_major(&a, k, m).unwrap().transpose()
                    } else {
                        MatRef::row_major(&a, m, k).unwrap()
                    };
                    let rhs = if rhs_transposed {
                        MatRef::row_major(&b, n, k).unwrap().transpose()
                    } else {
                        MatRef::row_major(&b, k, n).unwrap()
                    };
                    let naive = |i: usize, j: usize| {
                        let mut sum = 0.0;
                        for p in 0..k {
                            sum += Scalar::to_f64(lhs.get(i, p).unwrap())
                                * Scalar::to_f64(rhs.get(p, j).unwrap());
                        }
                        sum
                    };
                    let product: Vec<f64> = (0..m * n).map(|e| naive(e / n, e % n)).collect();
                    for accumulate in [Accumulate::Overwrite, Accumulate::Add] {
                        let base = |i: usize, j: usize| match accumulate {
                            Accumulate::Overwrite => 0.0,
                            Accumulate::Add => Scalar::to_f64(start[i * n + j]),
                        };
                        let what = format!(
                            "{} {m}x{n}x{k} lhs^T {lhs_transposed} rhs^T {rhs_transposed} {accumulate:?}",
                            fast.isa()
                        );
                        // Row-major destination with two canaries after every row.
                        let stride = n + 2;
                        let mut c = vec![T::nan(); m * stride];
                        for i in 0..m {
                            for j in 0..n {
                                if accumulate == Accumulate::Add {
                                    c[i * stride + j] = start[i * n + j];
                                }
                            }
                        }
                        let view = MatMut::row_major_strided(&mut c, m, n, stride).unwrap();
                        fast.gemm(view, lhs, rhs, accumulate).unwrap();
                        for i in 0..m {
                            for j in 0..stride {
                                let got = Scalar::to_f64(c[i * stride + j]);
                                if j < n {
                                    assert_eq!(
                                        got,
                                        base(i, j) + product[i * n + j],
                                        "{what} ({i}, {j})"
                                    );
                                } else {
                                    assert!(got.is_nan(), "{what}: padding written at ({i}, {j})");
                                }
                            }
                        }
                        // Column-major destination.
                        let mut d = vec![T::nan(); m * n];
                        if accumulate == Accumulate::Add {
                            for i in 0..m {
                                for j in 0..n {
                                    d[i + j * m] = start[i * n + j];
                                }
                            }
                        }
                        let view = MatMut::column_major(&mut d, m, n).unwrap();
                        fast.gemm(view, lhs, rhs, accumulate).unwrap();
                        for i in 0..m {
                            for j in 0..n {
                                let got = Scalar::to_f64(d[i + j * m]);
                                assert_eq!(
                                    got,
                                    base(i, j) + product[i * n + j],
                                    "{what} column-major ({i}, {j})"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    for fast in families() {
        run::<f32>(fast);
        run::<f64>(fast);
    }
}
