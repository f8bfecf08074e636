//! The portable kernels at their edges: every zero dimension (found by the `fast_kernels`
//! fuzz target).

/// `portable::linear_forward` with zero outputs writes nothing and does not panic (it
/// called `chunks_exact_mut(0)`; found by the `fast_kernels` fuzz target).
#[test]
fn portable_forward_with_zero_outputs_is_a_no_op() {
    let dims = pcnet_core::LinearDims {
        rows: 2,
        inputs: 3,
        outputs: 0,
    };
    let mut output: [f64; 0] = [];
    pcnet_core::kernels::portable::linear_forward(dims, &[1.0; 6], &[], &[], &mut output);
}

/// The portable kernels accept every zero dimension (rows, inputs or outputs): outputs of
/// length zero stay as they are, the others are exact sums (bias, or zero gradients).
#[test]
fn portable_kernels_accept_zero_dimensions() {
    use pcnet_core::kernels::portable;
    use pcnet_core::LinearDims;
    for (rows, inputs, outputs) in [(0, 2, 3), (2, 0, 3), (2, 3, 0), (0, 0, 0), (1, 0, 0)] {
        let dims = LinearDims {
            rows,
            inputs,
            outputs,
        };
        let x = vec![1.5; rows * inputs];
        let weight = vec![0.5; outputs * inputs];
        let bias: Vec<f64> = (0..outputs).map(|o| o as f64 - 1.0).collect();
        let mut out = vec![f64::NAN; rows * outputs];
        portable::linear_forward(dims, &x, &weight, &bias, &mut out);
        for (i, &value) in out.iter().enumerate() {
            assert_eq!(value, bias[i % outputs] + inputs as f64 * 0.75, "{dims:?}");
        }
        let grad_output = vec![2.0; rows * outputs];
        let mut grad_input = vec![f64::NAN; rows * inputs];
        portable::linear_backward_input(dims, &grad_output, &weight, &mut grad_input);
        assert!(grad_input.iter().all(|&g| g == outputs as f64), "{dims:?}");
        let mut grad_weight = vec![f64::NAN; outputs * inputs];
        let mut grad_bias = vec![f64::NAN; outputs];
        portable::linear_backward_parameters(
            dims,
            &grad_output,
            &x,
            &mut grad_weight,
            &mut grad_bias,
        );
        assert!(
            grad_weight.iter().all(|&g| g == 3.0 * rows as f64),
            "{dims:?}"
        );
        assert!(
            grad_bias.iter().all(|&g| g == 2.0 * rows as f64),
            "{dims:?}"
        );
    }
}
