//! Data sets for classification: the bundled handwritten digits, MNIST's IDX files, CSV.
//!
//! A [`Dataset`] holds rows of features (row-major, one sample per row) and one class
//! label per row. Every reader returns an [`Error`] naming the file and what is wrong with
//! it; none panics on a corrupt file.
//!
//! ```
//! let (train, test) = pcnet_std::data::digits_split::<f64>()?;
//! assert_eq!((train.len(), test.len()), (1500, 297));
//! assert_eq!(train.features(), 64);
//! assert_eq!(train.classes(), 10);
//! # Ok::<(), pcnet_std::Error>(())
//! ```

mod csv;
mod idx;

pub use csv::{read_csv, LabelColumn};
pub use idx::{mnist, read_idx, IdxArray};

use crate::{rng::SplitMix64, Error};
use pcnet_core::Scalar;
#[cfg(feature = "gzip")]
use std::io::Read;

/// Labelled samples: `len()` rows of `features()` values and a class label per row.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T> {
    inputs: Vec<T>,
    labels: Vec<usize>,
    features: usize,
    classes: usize,
}

impl<T: Scalar> Dataset<T> {
    /// A data set from row-major inputs and labels; `classes` must exceed every label.
    ///
    /// # Errors
    /// [`Error::Format`] when the lengths do not fit together, a value is not finite, or a
    /// label is not below `classes`.
    pub fn new(
        inputs: Vec<T>,
        labels: Vec<usize>,
        features: usize,
        classes: usize,
    ) -> Result<Self, Error> {
        if features == 0 || inputs.len() != labels.len() * features {
            return Err(Error::format(
                "data set",
                format!(
                    "{} input values do not make {} rows of {features} features",
                    inputs.len(),
                    labels.len()
                ),
            ));
        }
        if let Some(index) = inputs.iter().position(|v| !v.is_finite()) {
            return Err(Error::format(
                "data set",
                format!(
                    "non-finite input at row {}, feature {}",
                    index / features,
                    index % features
                ),
            ));
        }
        if let Some(row) = labels.iter().position(|&label| label >= classes) {
            return Err(Error::format(
                "data set",
                format!(
                    "row {row}: label {} is not below {classes} classes",
                    labels[row]
                ),
            ));
        }
        Ok(Dataset {
            inputs,
            labels,
            features,
            classes,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per sample.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// All inputs, row-major.
    pub fn inputs(&self) -> &[T] {
        &self.inputs
    }

    /// All labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The features of sample `row`.
    pub fn row(&self, row: usize) -> &[T] {
        &self.inputs[row * self.features..(row + 1) * self.features]
    }

    /// The samples at `indices`, in that order (indices past the end are skipped).
    pub fn subset(&self, indices: &[usize]) -> Dataset<T> {
        let mut inputs = Vec::with_capacity(indices.len() * self.features);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices.iter().filter(|&&i| i < self.len()) {
            inputs.extend_from_slice(self.row(index));
            labels.push(self.labels[index]);
        }
        Dataset {
            inputs,
            labels,
            features: self.features,
            classes: self.classes,
        }
    }

    /// Copies rows `indices` into `inputs` and `labels` (cleared first), for minibatches
    /// without allocation.
    pub fn gather_into(&self, indices: &[usize], inputs: &mut Vec<T>, labels: &mut Vec<usize>) {
        inputs.clear();
        labels.clear();
        for &index in indices.iter().filter(|&&i| i < self.len()) {
            inputs.extend_from_slice(self.row(index));
            labels.push(self.labels[index]);
        }
    }

    /// A seeded random split into `(train, test)` with `test_len` test samples (at most
    /// all of them): the same seed always gives the same split.
    pub fn split(&self, test_len: usize, seed: u64) -> (Dataset<T>, Dataset<T>) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        SplitMix64::new(seed).shuffle(&mut order);
        let test_len = test_len.min(self.len());
        let (test, train) = order.split_at(test_len);
        (self.subset(train), self.subset(test))
    }

    /// The first `len` samples (for quick runs).
    pub fn truncated(&self, len: usize) -> Dataset<T> {
        let len = len.min(self.len());
        Dataset {
            inputs: self.inputs[..len * self.features].to_vec(),
            labels: self.labels[..len].to_vec(),
            features: self.features,
            classes: self.classes,
        }
    }

    /// The same data in another precision.
    pub fn cast<U: Scalar>(&self) -> Dataset<U> {
        Dataset {
            inputs: self
                .inputs
                .iter()
                .map(|v| U::from_f64(Scalar::to_f64(*v)))
                .collect(),
            labels: self.labels.clone(),
            features: self.features,
            classes: self.classes,
        }
    }
}

#[cfg(feature = "gzip")]
/// The bundled digits file (see `pcnet-std/data/DIGITS_LICENSE.md`: UCI "Optical Recognition
/// of Handwritten Digits", E. Alpaydin and C. Kaynak, CC BY 4.0, as shipped by scikit-learn).
const DIGITS_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Seed of the fixed train/test split of [`digits_split`].
pub const DIGITS_SPLIT_SEED: u64 = 2022;

/// Test samples in [`digits_split`].
pub const DIGITS_TEST_LEN: usize = 297;

#[cfg(feature = "gzip")]
/// The 1,797 handwritten digits bundled with pcnet-std: 8x8 images (64 features, pixel
/// values 0..16 divided by 16, so in `[0, 1]`), classes 0..9.
///
/// Data: E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI
/// Machine Learning Repository (1998), CC BY 4.0; the copy scikit-learn distributes.
///
/// # Errors
/// None in practice (the file is compiled in); the reader's errors are passed on.
pub fn digits<T: Scalar>() -> Result<Dataset<T>, Error> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .map_err(|e| Error::format("digits.csv.gz", format!("cannot decompress: {e}")))?;
    read_csv(
        text.as_bytes(),
        "digits.csv.gz",
        LabelColumn::Last,
        1.0 / 16.0,
    )
}

#[cfg(feature = "gzip")]
/// The digits split into 1,500 training and 297 test samples, by a seeded shuffle with
/// [`DIGITS_SPLIT_SEED`]: the same split on every machine.
///
/// # Errors
/// As [`digits`].
pub fn digits_split<T: Scalar>() -> Result<(Dataset<T>, Dataset<T>), Error> {
    Ok(digits::<T>()?.split(DIGITS_TEST_LEN, DIGITS_SPLIT_SEED))
}

#[cfg(all(test, feature = "gzip"))]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_digits_have_the_documented_shape_and_classes() {
        let digits = digits::<f32>().unwrap();
        assert_eq!(digits.len(), 1797);
        assert_eq!(digits.features(), 64);
        assert_eq!(digits.classes(), 10);
        assert!(digits.inputs().iter().all(|&v| (0.0..=1.0).contains(&v)));
        // Every class is present with 174 to 183 samples (scikit-learn's documented counts).
        let mut counts = [0usize; 10];
        for &label in digits.labels() {
            counts[label] += 1;
        }
        assert!(
            counts.iter().all(|&c| (174..=183).contains(&c)),
            "{counts:?}"
        );
        // The first image of the file is a 0 whose first row is 0,0,5,13,9,1,0,0 / 16.
        assert_eq!(digits.labels()[0], 0);
        let first: Vec<f32> = [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]
            .iter()
            .map(|v| v / 16.0)
            .collect();
        assert_eq!(&digits.row(0)[..8], first.as_slice());
    }

    #[test]
    fn the_split_is_a_fixed_partition() {
        let (train, test) = digits_split::<f64>().unwrap();
        let (train2, test2) = digits_split::<f64>().unwrap();
        assert_eq!((train.len(), test.len()), (1500, 297));
        assert_eq!(train, train2);
        assert_eq!(test, test2);
        let all = digits::<f64>().unwrap();
        // Partition: the label multisets add up to the whole set's.
        let mut counts = [0i64; 10];
        for &l in all.labels() {
            counts[l] += 1;
        }
        for &l in train.labels().iter().chain(test.labels()) {
            counts[l] -= 1;
        }
        assert_eq!(counts, [0; 10]);
    }

    #[test]
    fn datasets_reject_inconsistent_parts() {
        assert!(Dataset::new(vec![0.0_f64; 5], vec![0, 1], 2, 2).is_err());
        assert!(Dataset::new(vec![0.0_f64; 4], vec![0, 2], 2, 2).is_err());
        assert!(Dataset::new(vec![f64::NAN, 0.0], vec![0], 2, 1).is_err());
        let ok = Dataset::new(vec![1.0_f64, 2.0, 3.0, 4.0], vec![1, 0], 2, 2).unwrap();
        assert_eq!(ok.subset(&[1, 0, 7]).inputs(), &[3.0, 4.0, 1.0, 2.0]);
    }
}
