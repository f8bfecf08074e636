//! The Fast backend's convolutions (im2col + gemm) against pcnet-core's portable direct
//! loops. Small-integer operands make every product and partial sum exact in f64 and
//! f32 whatever the summation order, so the two must agree exactly; NaN canaries past
//! each output catch writes out of bounds.

mod families;

use pcnet_core::{
    infer, infer_with, kernels::conv, Activation, Backend, Batch, Conv2d, ImageShape, Layer, Loss,
    NetworkSpec, Op, Pool2d, Settings, Targets,
};
use pcnet_std::fast::Fast;

fn integers<T: pcnet_core::Scalar>(len: usize, seed: usize) -> Vec<T> {
    (0..len)
        .map(|i| T::from_f64(((i * 7 + seed * 13) % 9) as f64 - 4.0))
        .collect()
}

fn shapes() -> Vec<Conv2d> {
    vec![
        Conv2d::new(ImageShape::new(1, 28, 28), 10, [3, 3]),
        Conv2d::new(ImageShape::new(3, 9, 8), 4, [3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1]),
        Conv2d::new(ImageShape::new(2, 7, 9), 3, [3, 2]).with_padding([1, 0]),
        Conv2d::new(ImageShape::new(4, 8, 8), 5, [3, 3]).with_padding([1, 1]),
        Conv2d::new(ImageShape::new(2, 5, 6), 2, [2, 4])
            .with_stride([3, 2])
            .with_padding([2, 3]),
        Conv2d::new(ImageShape::new(3, 4, 4), 2, [1, 1]),
        // Stride 1, padding k - 1 (the transposed path's widest padding).
        Conv2d::new(ImageShape::new(2, 6, 6), 3, [2, 2]).with_padding([1, 1]),
        // Stride 1, padding >= kernel: the col2im path.
        Conv2d::new(ImageShape::new(1, 4, 5), 2, [2, 3]).with_padding([2, 3]),
    ]
}

fn check_all<T: pcnet_core::Scalar>()
where
    Fast: Backend<T>,
{
    for backend in families::families() {
        check_all_on::<T>(backend);
    }
}

fn check_all_on<T: pcnet_core::Scalar>(backend: Fast)
where
    Fast: Backend<T>,
{
    let family = backend.isa();
    for (c, shape) in shapes().iter().enumerate() {
        for rows in [1, 3] {
            let (in_len, out_len) = (rows * shape.input.len(), rows * shape.output_shape().len());
            let x: Vec<T> = integers(in_len, c);
            let w: Vec<T> = integers(shape.weight_len(), c + 1);
            let b: Vec<T> = integers(shape.out_channels, c + 2);
            let g: Vec<T> = integers(out_len, c + 3);
            let canary = |len: usize| vec![T::nan(); len + 3];

            let (mut fast, mut portable) = (canary(out_len), canary(out_len));
            backend.conv2d_forward(pcnet_core::OpKey::NONE, shape, rows, &x, &w, &b, &mut fast);
            conv::forward(shape, rows, &x, &w, &b, &mut portable);
            assert_eq!(
                fast[..out_len],
                portable[..out_len],
                "{family} forward, conv {c}, rows {rows}"
            );
            assert!(
                fast[out_len..].iter().all(|v| v.is_nan()),
                "forward wrote past its output"
            );

            let (mut fast, mut portable) = (canary(in_len), canary(in_len));
            backend.conv2d_backward_input(pcnet_core::OpKey::NONE, shape, rows, &g, &w, &mut fast);
            conv::backward_input(shape, rows, &g, &w, &mut portable);
            assert_eq!(
                fast[..in_len],
                portable[..in_len],
                "{family} input VJP, conv {c}, rows {rows}"
            );
            assert!(fast[in_len..].iter().all(|v| v.is_nan()));

            let len = shape.weight_len();
            let (mut fast_w, mut portable_w) = (canary(len), canary(len));
            let (mut fast_b, mut portable_b) =
                (canary(shape.out_channels), canary(shape.out_channels));
            backend.conv2d_backward_parameters(
                pcnet_core::OpKey::NONE,
                shape,
                rows,
                &g,
                &x,
                &mut fast_w,
                &mut fast_b,
            );
            conv::backward_parameters(shape, rows, &g, &x, &mut portable_w, &mut portable_b);
            assert_eq!(
                fast_w[..len],
                portable_w[..len],
                "{family} weight VJP, conv {c}, rows {rows}"
            );
            assert_eq!(
                fast_b[..shape.out_channels],
                portable_b[..shape.out_channels]
            );
            assert!(fast_w[len..].iter().all(|v| v.is_nan()));
        }
    }
}

#[test]
fn fast_conv_equals_portable_exactly_on_integers_f64() {
    check_all::<f64>();
}

#[test]
fn fast_conv_equals_portable_exactly_on_integers_f32() {
    check_all::<f32>();
}

/// A whole CNN relaxation through Fast equals the portable one to 1e-12 relative (f64):
/// the kernels differ by summation order only, each product within `gamma_k sum |a b|`
/// (`k <= 605`, `gamma_k < 1e-13`), and the network is well conditioned.
#[test]
fn fast_cnn_relaxation_matches_portable() {
    const IMAGE: ImageShape = ImageShape::new(1, 12, 12);
    const CONV1: Conv2d = Conv2d::new(IMAGE, 4, [3, 3]);
    const POOL: Pool2d = Pool2d::new(CONV1.output_shape(), [2, 2]);
    const CONV2: Conv2d = Conv2d::new(POOL.output_shape(), 3, [3, 3]).with_padding([1, 1]);
    let layers = [
        Layer::from_ops(&[
            Op::Conv2d(CONV1),
            Op::Activation(Activation::Relu),
            Op::MaxPool2d(POOL),
        ])
        .unwrap(),
        Layer::from_ops(&[
            Op::Conv2d(CONV2),
            Op::Activation(Activation::Tanh),
            Op::Flatten,
        ])
        .unwrap(),
        Layer::dense(CONV2.output_shape().len(), 5, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
    let rows = 3;
    let params: Vec<f64> = (0..spec.parameter_len())
        .map(|i| (((i * 2654435761) % 1000) as f64 / 1000.0 - 0.5) * 0.6)
        .collect();
    let inputs: Vec<f64> = (0..rows * IMAGE.len())
        .map(|i| ((i * 37) % 17) as f64 / 17.0)
        .collect();
    let classes = [1, 4, 0];
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    for settings in [
        Settings::exact(),
        Settings::fixed_pred(0.5, 6),
        Settings::strict(0.1, 20),
    ] {
        let mut workspace = vec![0.0; spec.workspace_len(rows)];
        let (mut fast, mut portable) = (
            vec![0.0; spec.parameter_len()],
            vec![0.0; spec.parameter_len()],
        );
        infer_with(
            &Fast::default(),
            &spec,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut fast,
        )
        .unwrap();
        infer(
            &spec,
            &params,
            batch,
            &settings,
            &mut workspace,
            &mut portable,
        )
        .unwrap();
        let scale = portable.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0);
        for (a, b) in fast.iter().zip(&portable) {
            assert!(
                (a - b).abs() <= 1e-12 * scale,
                "{:?}: {a} vs {b}",
                settings.algorithm
            );
        }
    }
}

/// A CNN batch split into 64-row blocks gives bit-identical updates on 1 and 2 threads
/// (the blocks, not the threads, fix every summation order).
#[test]
fn cnn_batches_are_bit_identical_for_any_thread_count() {
    use pcnet_std::batch::{BatchRunner, Par};
    const IMAGE: ImageShape = ImageShape::new(1, 10, 10);
    const CONV: Conv2d = Conv2d::new(IMAGE, 3, [3, 3]);
    const POOL: Pool2d = Pool2d::new(CONV.output_shape(), [2, 2]);
    let layers = [
        Layer::from_ops(&[
            Op::Conv2d(CONV),
            Op::Activation(Activation::Relu),
            Op::MaxPool2d(POOL),
            Op::Flatten,
        ])
        .unwrap(),
        Layer::dense(POOL.output_shape().len(), 4, Activation::Identity),
    ];
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy);
    let rows = 150;
    let params: Vec<f32> = (0..spec.parameter_len())
        .map(|i| (((i * 2654435761) % 1000) as f32 / 1000.0 - 0.5) * 0.6)
        .collect();
    let inputs: Vec<f32> = (0..rows * IMAGE.len())
        .map(|i| ((i * 37) % 17) as f32 / 17.0)
        .collect();
    let classes: Vec<usize> = (0..rows).map(|r| r % 4).collect();
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    for settings in [Settings::exact(), Settings::strict(0.1, 5)] {
        let mut runner = BatchRunner::<f32>::new();
        let one = runner
            .run(Par::Seq, &spec, &params, batch, &settings)
            .unwrap()
            .updates()
            .to_vec();
        let two = runner
            .run(Par::Rayon(2), &spec, &params, batch, &settings)
            .unwrap()
            .updates()
            .to_vec();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two), "{:?}", settings.algorithm);
    }
}
