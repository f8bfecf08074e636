//! Training on the bundled handwritten digits and saving the weights as safetensors, in
//! PyTorch's `state_dict` layout.
//!
//! A 64-32-10 ReLU network learns the 1,500 training digits with predictive coding under
//! the fixed prediction assumption (eta 0.5, 8 iterations) and Adam, then reports its test
//! accuracy and writes two files into the directory given (default: a `pcnet-digits`
//! directory under the system's temporary directory):
//!
//! * `digits.safetensors`: the weights, tensors `0.0.weight`, `0.0.bias`, `1.0.weight`,
//!   `1.0.bias` (F32), which load into `nn.Sequential(nn.Sequential(nn.Linear(64, 32),
//!   nn.ReLU()), nn.Sequential(nn.Linear(32, 10)))`;
//! * `digits_check.safetensors`: the test inputs and this network's outputs for them, so
//!   `load_in_pytorch.py` (beside this file) can check PyTorch computes the same.
//!
//! ```text
//! cargo run -p pcnet-std --release --example train_digits -- /tmp/pcnet-digits
//! python3 pcnet-std/examples/load_in_pytorch.py /tmp/pcnet-digits
//! ```

use pcnet_core::{Activation, Adam, Loss, Settings};
use pcnet_std::network::Network;
use pcnet_std::train::{evaluate, train, TrainConfig};
use pcnet_std::{data, Error};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::PathBuf;

fn main() -> Result<(), Error> {
    let directory = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("pcnet-digits"));
    std::fs::create_dir_all(&directory).map_err(|source| Error::Io {
        path: directory.clone(),
        source,
    })?;

    let (train_set, test_set) = data::digits_split::<f32>()?;
    let mut net = Network::<f32>::mlp("64-32-10", Activation::Relu, Loss::CrossEntropy, 0)?;
    let before = evaluate(&net, &test_set)?;
    let config = TrainConfig::new(Settings::fixed_pred(0.5, 8), 10, 50)
        .with_seed(1)
        .with_progress(false);
    let history = train(
        &mut net,
        Adam::new(0.01),
        &train_set,
        Some(&test_set),
        &config,
    )
    .map_err(|stopped| stopped.error)?;
    for epoch in &history.epochs {
        println!(
            "epoch {:2}: train loss {:.4}, test accuracy {:.3}",
            epoch.epoch,
            epoch.train_loss.unwrap_or(f64::NAN),
            epoch.test_accuracy.unwrap_or(f64::NAN)
        );
    }
    let after = evaluate(&net, &test_set)?;
    println!(
        "test accuracy {:.3} before training, {:.3} after ({} test digits)",
        before.accuracy,
        after.accuracy,
        test_set.len()
    );
    assert!(after.accuracy > 0.85, "FixedPred learned the digits");

    let weights = directory.join("digits.safetensors");
    net.save_safetensors(&weights)?;
    // The check file: inputs and this network's outputs, for the PyTorch side to compare.
    let outputs = net.predict(test_set.inputs())?;
    let bytes =
        |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
    let (input_bytes, output_bytes) = (bytes(test_set.inputs()), bytes(&outputs));
    let rows = test_set.len();
    let format_error =
        |e: safetensors::SafeTensorError| Error::format("digits_check.safetensors", e.to_string());
    let input_view = TensorView::new(Dtype::F32, vec![rows, test_set.features()], &input_bytes)
        .map_err(format_error)?;
    let output_view = TensorView::new(Dtype::F32, vec![rows, net.output_len()], &output_bytes)
        .map_err(format_error)?;
    let check = safetensors::serialize([("inputs", input_view), ("outputs", output_view)], None)
        .map_err(format_error)?;
    let check_path = directory.join("digits_check.safetensors");
    std::fs::write(&check_path, check).map_err(|source| Error::Io {
        path: check_path.clone(),
        source,
    })?;
    println!("wrote {} and {}", weights.display(), check_path.display());
    Ok(())
}
