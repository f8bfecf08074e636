//! The portable image kernels against naive loops that follow PyTorch's definitions
//! literally (padding by bounds tests). Inputs are small integers, so every product and
//! sum is exact in f64 whatever the summation order, and results must match exactly.

use crate::kernels::{conv, pool};
use crate::{Conv2d, ImageShape, Pool2d};
use std::vec::Vec;

fn values(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 11) as f64 - 5.0)
        .collect()
}

/// `input[r][i][oh*s + ki - p][ow*s + kj - p]`, or 0 outside the image.
fn padded(conv: &Conv2d, x: &[f64], r: usize, i: usize, ih: isize, iw: isize) -> Option<usize> {
    let s = conv.input;
    if ih < 0 || iw < 0 || ih >= s.height as isize || iw >= s.width as isize {
        return None;
    }
    let _ = x;
    Some(r * s.len() + i * s.plane() + ih as usize * s.width + iw as usize)
}

fn naive_forward(conv: &Conv2d, rows: usize, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let out = conv.output_shape();
    let [kh, kw] = conv.kernel;
    let mut y = std::vec![0.0; rows * out.len()];
    for r in 0..rows {
        for o in 0..out.channels {
            for oh in 0..out.height {
                for ow in 0..out.width {
                    let mut sum = b[o];
                    for i in 0..conv.input.channels {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih =
                                    (oh * conv.stride[0] + ki) as isize - conv.padding[0] as isize;
                                let iw =
                                    (ow * conv.stride[1] + kj) as isize - conv.padding[1] as isize;
                                if let Some(index) = padded(conv, x, r, i, ih, iw) {
                                    sum += w[((o * conv.input.channels + i) * kh + ki) * kw + kj]
                                        * x[index];
                                }
                            }
                        }
                    }
                    y[r * out.len() + (o * out.height + oh) * out.width + ow] = sum;
                }
            }
        }
    }
    y
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn convs() -> [Conv2d; 5] {
    [
        Conv2d::new(ImageShape::new(1, 10, 10), 3, [3, 3]),
        Conv2d::new(ImageShape::new(3, 9, 8), 4, [3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1]),
        Conv2d::new(ImageShape::new(2, 7, 9), 3, [3, 2]).with_padding([1, 0]),
        Conv2d::new(ImageShape::new(2, 8, 8), 4, [3, 3])
            .with_stride([2, 1])
            .with_padding([1, 0]),
        Conv2d::new(ImageShape::new(2, 5, 6), 2, [2, 4])
            .with_stride([3, 2])
            .with_padding([2, 3]),
    ]
}

#[test]
fn conv_forward_matches_naive_loops_exactly() {
    for (c, conv) in convs().iter().enumerate() {
        let rows = 2;
        let x = values(rows * conv.input.len(), c);
        let w = values(conv.weight_len(), c + 1);
        let b = values(conv.out_channels, c + 2);
        let mut y = std::vec![f64::NAN; rows * conv.output_shape().len()];
        conv::forward(conv, rows, &x, &w, &b, &mut y);
        assert_eq!(y, naive_forward(conv, rows, &x, &w, &b), "conv {c}");
    }
}

/// The input VJP is the adjoint of the linear part: `<conv(x) - b, g> = <x, conv^T g>`,
/// and `conv::jvp` is that linear part.
#[test]
fn conv_backward_input_is_the_adjoint_exactly() {
    for (c, conv) in convs().iter().enumerate() {
        let rows = 2;
        let x = values(rows * conv.input.len(), c + 3);
        let w = values(conv.weight_len(), c + 4);
        let zero = std::vec![0.0; conv.out_channels];
        let g = values(rows * conv.output_shape().len(), c + 5);
        let linear = naive_forward(conv, rows, &x, &w, &zero);
        let mut tangent = std::vec![f64::NAN; linear.len()];
        conv::jvp(conv, rows, &x, &w, &mut tangent);
        assert_eq!(tangent, linear, "conv {c}");
        let mut gx = std::vec![f64::NAN; x.len()];
        conv::backward_input(conv, rows, &g, &w, &mut gx);
        assert_eq!(dot(&linear, &g), dot(&x, &gx), "conv {c}");
        // Every input entry, one at a time: gx[q] = <conv(e_q), g>.
        for q in 0..x.len() {
            let mut unit = std::vec![0.0; x.len()];
            unit[q] = 1.0;
            let column = naive_forward(conv, rows, &unit, &w, &zero);
            assert_eq!(gx[q], dot(&column, &g), "conv {c} input {q}");
        }
    }
}

/// `grad_weight[k] = <d conv / d w_k, g>` with the derivative from the naive forward pass
/// applied to a unit weight; `grad_bias[o]` is the sum of channel `o` of `g`.
#[test]
fn conv_backward_parameters_match_naive_loops_exactly() {
    for (c, conv) in convs().iter().enumerate() {
        let rows = 3;
        let x = values(rows * conv.input.len(), c + 6);
        let g = values(rows * conv.output_shape().len(), c + 7);
        let mut gw = std::vec![f64::NAN; conv.weight_len()];
        let mut gb = std::vec![f64::NAN; conv.out_channels];
        conv::backward_parameters(conv, rows, &g, &x, &mut gw, &mut gb);
        let zero = std::vec![0.0; conv.out_channels];
        for k in 0..conv.weight_len() {
            let mut unit = std::vec![0.0; conv.weight_len()];
            unit[k] = 1.0;
            let column = naive_forward(conv, rows, &x, &unit, &zero);
            assert_eq!(gw[k], dot(&column, &g), "conv {c} weight {k}");
        }
        let plane = conv.output_shape().plane();
        for (o, &value) in gb.iter().enumerate() {
            let expected: f64 = (0..rows)
                .flat_map(|r| {
                    let start = r * conv.output_shape().len() + o * plane;
                    g[start..start + plane].iter().copied()
                })
                .sum();
            assert_eq!(value, expected, "conv {c} bias {o}");
        }
    }
}

fn pools() -> [Pool2d; 4] {
    [
        Pool2d::new(ImageShape::new(3, 8, 8), [2, 2]),
        Pool2d::new(ImageShape::new(2, 7, 7), [3, 3]).with_stride([2, 2]),
        Pool2d::new(ImageShape::new(3, 5, 4), [2, 2]).with_stride([1, 1]),
        Pool2d::new(ImageShape::new(2, 7, 9), [2, 3]).with_stride([2, 1]),
    ]
}

/// Distinct values (a permutation), so every window has one maximum.
fn distinct(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 37 + seed * 11) % len) as f64 - (len / 2) as f64)
        .collect()
}

#[test]
fn max_pool_routes_to_the_window_maximum() {
    for (p, pool_op) in pools().iter().enumerate() {
        let rows = 2;
        let (input, output) = (pool_op.input, pool_op.output_shape());
        let x = distinct(rows * input.len(), p);
        let mut y = std::vec![f64::NAN; rows * output.len()];
        pool::max_forward(pool_op, rows, &x, &mut y);
        let g = values(y.len(), p);
        let mut gx = std::vec![f64::NAN; x.len()];
        pool::max_backward(pool_op, rows, &x, &g, &mut gx);
        let t = values(x.len(), p + 1);
        let mut ty = std::vec![f64::NAN; y.len()];
        pool::max_jvp(pool_op, rows, &x, &y, &t, &mut ty);
        let mut expected_gx = std::vec![0.0; x.len()];
        for r in 0..rows {
            for c in 0..output.channels {
                for oh in 0..output.height {
                    for ow in 0..output.width {
                        let mut best = (f64::NEG_INFINITY, 0);
                        for i in 0..pool_op.kernel[0] {
                            for j in 0..pool_op.kernel[1] {
                                let index = r * input.len()
                                    + c * input.plane()
                                    + (oh * pool_op.stride[0] + i) * input.width
                                    + ow * pool_op.stride[1]
                                    + j;
                                if x[index] > best.0 {
                                    best = (x[index], index);
                                }
                            }
                        }
                        let o = r * output.len() + (c * output.height + oh) * output.width + ow;
                        assert_eq!(y[o], best.0);
                        assert_eq!(ty[o], t[best.1]);
                        expected_gx[best.1] += g[o];
                    }
                }
            }
        }
        assert_eq!(gx, expected_gx, "pool {p}");
    }
}

#[test]
fn max_pool_takes_the_first_of_tied_maxima() {
    let pool_op = Pool2d::new(ImageShape::new(1, 2, 2), [2, 2]);
    let x = [1.0, 3.0, 3.0, 2.0];
    let mut y = [0.0];
    pool::max_forward(&pool_op, 1, &x, &mut y);
    let mut gx = [f64::NAN; 4];
    pool::max_backward(&pool_op, 1, &x, &[5.0], &mut gx);
    assert_eq!(gx, [0.0, 5.0, 0.0, 0.0]);
}

/// Average pooling is linear: `<avg(x), g> = <x, avg^T g>` on every unit input.
#[test]
fn avg_pool_backward_is_the_adjoint_exactly() {
    for (p, pool_op) in pools().iter().enumerate() {
        let rows = 2;
        let (input, output) = (pool_op.input, pool_op.output_shape());
        let divisor = (pool_op.kernel[0] * pool_op.kernel[1]) as f64;
        // Multiples of the divisor, so each window's share is an exact integer.
        let g: Vec<f64> = values(rows * output.len(), p)
            .iter()
            .map(|v| v * divisor)
            .collect();
        let mut gx = std::vec![f64::NAN; rows * input.len()];
        pool::avg_backward(pool_op, rows, &g, &mut gx);
        for q in 0..gx.len() {
            let mut unit = std::vec![0.0; gx.len()];
            unit[q] = divisor; // avg of a window holding `divisor` is exactly 1
            let mut y = std::vec![0.0; g.len()];
            pool::avg_forward(pool_op, rows, &unit, &mut y);
            assert_eq!(gx[q], dot(&y, &g) / divisor, "pool {p} input {q}");
        }
    }
}
