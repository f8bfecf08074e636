//! A CSV reader for numeric classification data: one sample per line, comma-separated
//! numbers, one column the integer class label. A first line that is not numeric is taken
//! as a header and skipped; blank lines are skipped.
//!
//! Written by hand on purpose: the format is numbers only (no quoting, no escapes) and every
//! error names the line and the field; the `csv` crate would add a dependency for neither.

use super::Dataset;
use crate::Error;
use pcnet_core::Scalar;
use std::io::{BufRead, BufReader, Read};

/// Which column holds the class label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The first column (MNIST's CSV exports).
    First,
    /// The last column (scikit-learn's `digits.csv`).
    Last,
}

/// Reads a CSV data set from `reader`; `name` appears in error messages. Every feature is
/// multiplied by `scale` (e.g. `1/255` for 8-bit pixels). The number of classes is the
/// largest label plus one.
///
/// # Errors
/// [`Error::Format`] with the line number for a field that is not a number, a label that
/// is not a non-negative integer, a line with a different number of fields than the first,
/// or no data; [`Error::Io`] when reading fails.
///
/// # Example
/// ```
/// use pcnet_std::data::{read_csv, LabelColumn};
/// let text = "x1,x2,label\n0.5,1.0,1\n0.0,2.0,0\n";
/// let data = read_csv::<f64>(text.as_bytes(), "inline", LabelColumn::Last, 1.0)?;
/// assert_eq!(data.inputs(), &[0.5, 1.0, 0.0, 2.0]);
/// assert_eq!(data.labels(), &[1, 0]);
/// assert!(read_csv::<f64>("1,2\n3\n".as_bytes(), "bad", LabelColumn::Last, 1.0).is_err());
/// # Ok::<(), pcnet_std::Error>(())
/// ```
pub fn read_csv<T: Scalar>(
    reader: impl Read,
    name: &str,
    label: LabelColumn,
    scale: f64,
) -> Result<Dataset<T>, Error> {
    let mut inputs = Vec::new();
    let mut labels = Vec::new();
    let mut columns: Option<usize> = None;
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| Error::format(name, format!("line {number}: {e}")))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed: Result<Vec<f64>, _> = fields.iter().map(|f| f.parse::<f64>()).collect();
        let values = match parsed {
            Ok(values) => values,
            Err(_) if columns.is_none() && labels.is_empty() && index == 0 => continue, // header
            Err(_) => {
                let bad = fields
                    .iter()
                    .find(|f| f.parse::<f64>().is_err())
                    .unwrap_or(&"");
                return Err(Error::format(
                    name,
                    format!("line {number}: `{bad}` is not a number"),
                ));
            }
        };
        if values.len() < 2 {
            return Err(Error::format(
                name,
                format!(
                    "line {number}: {} field(s); a label and at least one feature are needed",
                    values.len()
                ),
            ));
        }
        match columns {
            None => columns = Some(values.len()),
            Some(expected) if expected != values.len() => {
                return Err(Error::format(
                    name,
                    format!(
                        "line {number}: {} fields, the first data line has {expected}",
                        values.len()
                    ),
                ))
            }
            Some(_) => {}
        }
        let (label_value, features) = match label {
            LabelColumn::First => (values[0], &values[1..]),
            LabelColumn::Last => (values[values.len() - 1], &values[..values.len() - 1]),
        };
        if !(label_value >= 0.0 && label_value.fract() == 0.0 && label_value < 1e9) {
            return Err(Error::format(
                name,
                format!("line {number}: label {label_value} is not a non-negative integer"),
            ));
        }
        if let Some(bad) = features.iter().find(|v| !v.is_finite()) {
            return Err(Error::format(
                name,
                format!("line {number}: feature {bad} is not finite"),
            ));
        }
        labels.push(label_value as usize);
        inputs.extend(features.iter().map(|&v| T::from_f64(v * scale)));
    }
    let Some(columns) = columns else {
        return Err(Error::format(name, "no data lines"));
    };
    let classes = labels.iter().copied().max().unwrap_or(0) + 1;
    Dataset::new(inputs, labels, columns - 1, classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_csv_gives_line_numbered_errors() {
        let cases = [
            ("1,2,0\n1,x,1\n", "line 2"),
            ("1,2,0\n1,2\n", "line 2"),
            ("1,2,0.5\n", "label"),
            ("1,2,-1\n", "label"),
            ("", "no data"),
            ("a,b\n", "no data"),
            ("7\n", "line 1"),
        ];
        for (text, needle) in cases {
            let err =
                read_csv::<f32>(text.as_bytes(), "t.csv", LabelColumn::Last, 1.0).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(needle) && message.contains("t.csv"),
                "{text:?}: {message}"
            );
        }
    }

    #[test]
    fn label_first_and_scale() {
        let data = read_csv::<f32>(
            "3,255,0\n\n1,0,51\n".as_bytes(),
            "m",
            LabelColumn::First,
            1.0 / 255.0,
        )
        .unwrap();
        assert_eq!(data.labels(), &[3, 1]);
        assert_eq!(data.classes(), 4);
        assert_eq!(data.inputs(), &[1.0, 0.0, 0.0, 0.2]);
    }
}
