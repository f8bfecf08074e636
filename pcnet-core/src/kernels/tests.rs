//! Unit tests of the portable kernels against naive loops.

use super::*;

/// Small integers make every product and sum exact, whatever the order.
#[test]
fn kernels_match_naive_loops_exactly() {
    let dims = LinearDims {
        rows: 3,
        inputs: 7,
        outputs: 5,
    };
    let input: [f64; 21] = core::array::from_fn(|i| ((i * 7) % 11) as f64 - 5.0);
    let weight: [f64; 35] = core::array::from_fn(|i| ((i * 3) % 13) as f64 - 6.0);
    let bias: [f64; 5] = core::array::from_fn(|i| i as f64 - 2.0);
    let mut out = [0.0; 15];
    Portable.linear_forward(OpKey::NONE, dims, &input, &weight, &bias, &mut out);
    for r in 0..3 {
        for o in 0..5 {
            let mut s = bias[o];
            for i in 0..7 {
                s += input[r * 7 + i] * weight[o * 7 + i];
            }
            assert_eq!(out[r * 5 + o], s);
        }
    }
    let grad_out: [f64; 15] = core::array::from_fn(|i| (i % 4) as f64 - 1.0);
    let mut gin = [f64::NAN; 21];
    Portable.linear_backward_input(OpKey::NONE, dims, &grad_out, &weight, &mut gin);
    for r in 0..3 {
        for i in 0..7 {
            let s: f64 = (0..5)
                .map(|o| grad_out[r * 5 + o] * weight[o * 7 + i])
                .sum();
            assert_eq!(gin[r * 7 + i], s);
        }
    }
    let mut gw = [f64::NAN; 35];
    let mut gb = [f64::NAN; 5];
    Portable.linear_backward_parameters(OpKey::NONE, dims, &grad_out, &input, &mut gw, &mut gb);
    for o in 0..5 {
        assert_eq!(gb[o], (0..3).map(|r| grad_out[r * 5 + o]).sum::<f64>());
        for i in 0..7 {
            let s: f64 = (0..3).map(|r| grad_out[r * 5 + o] * input[r * 7 + i]).sum();
            assert_eq!(gw[o * 7 + i], s);
        }
    }
}

#[cfg(feature = "conv")]
mod image;
