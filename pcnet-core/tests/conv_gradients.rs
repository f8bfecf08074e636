//! Gradients through the image ops: Exact's parameter updates of a small CNN equal
//! central differences of its loss.

#![cfg(all(
    feature = "conv",
    feature = "exact",
    feature = "cross-entropy",
    feature = "safe-step"
))]

use pcnet_core::{infer, Activation, Batch, Layer, Loss, NetworkSpec, Settings, Targets};

/// The loss of `spec` at `params` on one batch, by `infer` (the feedforward loss).
fn loss_at(spec: &NetworkSpec<'_>, params: &[f64], batch: Batch<'_, f64>, rows: usize) -> f64 {
    let mut workspace = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    infer(
        spec,
        params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .unwrap()
    .loss()
}

/// A small CNN (conv with padding and stride, ReLU, max-pool, average-pool, flatten,
/// linear) runs through the layer interface: Exact's parameter updates equal central
/// differences of the loss (h = 1e-6: truncation O(h^2) and rounding O(u / h) are far
/// below the 1e-6 relative tolerance for O(1) values; the max-pool winners are distinct,
/// so the loss is smooth at the point).
#[test]
fn exact_updates_of_a_cnn_match_finite_differences() {
    use pcnet_core::{Conv2d, ImageShape, Op, Pool2d};
    let conv = Conv2d::new(ImageShape::new(2, 5, 5), 3, [3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1]);
    let max_pool = Pool2d::new(ImageShape::new(3, 5, 5), [2, 2]).with_stride([1, 1]);
    let avg_pool = Pool2d::new(ImageShape::new(3, 4, 4), [2, 2]);
    let first = Layer::from_ops(&[
        Op::Conv2d(conv),
        Op::Activation(Activation::Tanh),
        Op::MaxPool2d(max_pool),
        Op::AvgPool2d(avg_pool),
        Op::Flatten,
    ])
    .unwrap();
    let layers = [first, Layer::dense(12, 3, Activation::Identity)];
    let spec = NetworkSpec::new(&layers, Loss::CrossEntropy).with_input_len(50);
    spec.validate().unwrap();
    let rows = 2;
    let params: Vec<f64> = (0..spec.parameter_len())
        .map(|i| (((i * 37 + 11) % 29) as f64 - 14.0) / 20.0)
        .collect();
    let inputs: Vec<f64> = (0..rows * 50)
        .map(|i| (((i * 53 + 7) % 41) as f64 - 20.0) / 10.0)
        .collect();
    let classes = [2, 0];
    let batch = Batch::new(&inputs, Targets::Classes(&classes));
    let mut workspace = vec![0.0; spec.workspace_len(rows)];
    let mut updates = vec![0.0; spec.parameter_len()];
    infer(
        &spec,
        &params,
        batch,
        &Settings::exact(),
        &mut workspace,
        &mut updates,
    )
    .unwrap();
    let h = 1e-6;
    for (i, &update) in updates.iter().enumerate() {
        let (mut plus, mut minus) = (params.clone(), params.clone());
        plus[i] += h;
        minus[i] -= h;
        let numeric =
            (loss_at(&spec, &plus, batch, rows) - loss_at(&spec, &minus, batch, rows)) / (2.0 * h);
        assert!(
            (update - numeric).abs() <= 1e-6 * numeric.abs().max(1e-3),
            "parameter {i}: {update} vs {numeric}"
        );
    }
    // Strict with the safe step size relaxes the same network without diverging.
    let settings = Settings::strict(1.0, 10).with_safe_step_size();
    let strict = infer(
        &spec,
        &params,
        batch,
        &settings,
        &mut workspace,
        &mut updates,
    )
    .unwrap();
    assert!(strict.step_size() > 0.0 && strict.step_size() < 2.0);
}
