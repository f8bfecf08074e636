//! A Torch2PC-style model written as a PyTorch `state_dict` in safetensors loads into a
//! `Network`, and Exact mode gives the gradients the file's generator computed
//! independently (`tests/data/make_torch_model.py`: hand-written numpy backpropagation,
//! cross-checked against torch.autograd when torch is installed).
// Reads safetensors files: only with the `safetensors` feature (a default).
#![cfg(feature = "safetensors")]

use pcnet_core::{Activation, Loss, Settings, Targets};
use pcnet_std::network::Network;
use safetensors::{Dtype, SafeTensors};

const MODEL: &[u8] = include_bytes!("data/torch_model.safetensors");
const EXPECTED: &[u8] = include_bytes!("data/torch_expected.safetensors");
/// Written by PyTorch itself (`tests/data/make_pytorch_model.py`): `nn.Sequential`'s
/// state_dict through `safetensors.torch.save_file`, gradients from `loss.backward()`.
const PYTORCH_MODEL: &[u8] = include_bytes!("data/pytorch_model.safetensors");
const PYTORCH_EXPECTED: &[u8] = include_bytes!("data/pytorch_expected.safetensors");

fn f64s(file: &SafeTensors<'_>, name: &str) -> Vec<f64> {
    let tensor = file.tensor(name).unwrap();
    assert_eq!(tensor.dtype(), Dtype::F64, "{name}");
    tensor
        .data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn torch_like_network(loss: Loss) -> Network<f64> {
    Network::<f64>::builder(4)
        .dense(5, Activation::Tanh)
        .dense(3, Activation::Relu)
        .dense(2, Activation::Identity)
        .loss(loss)
        .build()
        .unwrap()
}

#[test]
fn exact_mode_on_the_imported_model_gives_the_reference_gradients() {
    check_exact_gradients(MODEL, EXPECTED, "torch_model.safetensors");
}

/// The same on a model PyTorch wrote, against torch.autograd's gradients in float64.
#[test]
fn exact_mode_on_a_pytorch_written_model_gives_autograd_gradients() {
    check_exact_gradients(PYTORCH_MODEL, PYTORCH_EXPECTED, "pytorch_model.safetensors");
}

fn check_exact_gradients(model: &[u8], expected: &[u8], model_name: &str) {
    let expected = SafeTensors::deserialize(expected).unwrap();
    let inputs = f64s(&expected, "inputs");
    let onehot = f64s(&expected, "onehot");
    let labels_tensor = expected.tensor("labels").unwrap();
    assert_eq!(labels_tensor.dtype(), Dtype::I64);
    let labels: Vec<usize> = labels_tensor
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();

    for (loss, name, targets) in [
        (
            Loss::CrossEntropy,
            "cross_entropy",
            Targets::Classes(&labels),
        ),
        (Loss::Mse, "mse", Targets::Values(&onehot)),
    ] {
        let mut net = torch_like_network(loss);
        net.load_safetensors(model, model_name).unwrap();
        let result = net.updates(&inputs, targets, &Settings::exact()).unwrap();
        for at in net.weight_ops() {
            let prefix = at.torch_prefix();
            for (suffix, range) in [("weight", at.weight_range()), ("bias", at.bias_range())] {
                let reference = f64s(&expected, &format!("{name}.{prefix}.{suffix}"));
                let ours = &result.updates[range];
                // Both sides compute from the same f32-exact parameters in f64 with sums of
                // at most 6 terms per product and depth 3: a few ulps of the largest terms.
                let scale = reference.iter().fold(0.0_f64, |m, g| m.max(g.abs()));
                for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-13 * scale.max(1e-300),
                        "{name} {prefix}.{suffix}[{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_imported_model_exports_the_same_tensors() {
    let mut net = torch_like_network(Loss::Mse).cast::<f32>();
    net.load_safetensors(MODEL, "torch_model.safetensors")
        .unwrap();
    let exported = net.to_safetensors().unwrap();
    let (a, b) = (
        SafeTensors::deserialize(MODEL).unwrap(),
        SafeTensors::deserialize(&exported).unwrap(),
    );
    let mut names = a.names();
    names.sort_unstable();
    let mut exported_names = b.names();
    exported_names.sort_unstable();
    assert_eq!(names, exported_names);
    for name in names {
        let (x, y) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
        assert_eq!(
            (x.dtype(), x.shape(), x.data()),
            (y.dtype(), y.shape(), y.data()),
            "{name}"
        );
    }
}
