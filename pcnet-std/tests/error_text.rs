//! The text of pcnet-std's errors: complete when printed with `{}` alone, and never repeated
//! by a reporter that walks the `source()` chain (the convention documented on
//! `pcnet_std::Error`: the message includes the inner error, `source()` is `None`).

use pcnet_core::PcError;
use pcnet_std::train::{History, Stopped};
use pcnet_std::Error;
use std::error::Error as _;

/// What a chain-walking reporter prints (anyhow's `{:#}` style): each error's text,
/// then its source's, joined by ": ".
fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(inner) = next {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        next = inner.source();
    }
    text
}

#[test]
fn core_error_is_printed_once() {
    let error = Error::from(PcError::EmptyBatch);
    assert_eq!(error.to_string(), "the batch has no rows");
    assert!(error.source().is_none());
    assert_eq!(report(&error), "the batch has no rows");
}

#[cfg(feature = "safetensors")]
#[test]
fn io_error_names_the_path_and_is_printed_once() {
    use pcnet_core::Activation;
    use pcnet_std::network::Network;
    let path = std::path::Path::new("/nonexistent-pcnet-std-error-text/model.safetensors");
    let mut network = Network::<f64>::builder(2)
        .dense(1, Activation::Identity)
        .build()
        .expect("a valid network");
    let error = network.open_safetensors(path).unwrap_err();
    let os_text = match &error {
        Error::Io { source, .. } => source.to_string(),
        other => panic!("expected an I/O error, got {other:?}"),
    };
    assert_eq!(error.to_string(), format!("{}: {os_text}", path.display()));
    assert!(error.source().is_none());
    assert_eq!(report(&error).matches(&os_text).count(), 1);
}

#[test]
fn stopped_training_prints_the_cause_once() {
    let stopped = Stopped {
        epoch: 2,
        step: 7,
        error: Error::from(PcError::EmptyBatch),
        history: History::default(),
    };
    assert_eq!(
        stopped.to_string(),
        "training stopped at epoch 2, step 7: the batch has no rows; \
         the network keeps the parameters after step 6"
    );
    assert!(stopped.source().is_none());
    assert_eq!(report(&stopped).matches("the batch has no rows").count(), 1);
}

#[test]
fn hyperparameter_error_reads_through_pcnet_std() {
    let error = pcnet_std::batch::BatchRunner::<f32>::new()
        .with_block_rows(0)
        .expect_err("zero block rows are refused");
    assert_eq!(
        Error::from(error).to_string(),
        "block rows must be at least 1, given 0"
    );
}
