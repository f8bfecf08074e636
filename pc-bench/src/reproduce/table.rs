//! The experiments' CSV files, written with the `csv` crate: a header and string records,
//! numbers formatted by the caller. [`Table::long`] is the long form every figure's data
//! uses, `series,metric,x,layer,value`, values printed with Rust's shortest round-trip
//! formatting, so equal bits give equal bytes.

use crate::Error;
use pcnet_std::train::History;
use std::fmt::Display;
use std::path::Path;

/// A CSV file's content.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    header: Vec<&'static str>,
    records: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            records: Vec::new(),
        }
    }

    /// An empty long-form table.
    pub fn long() -> Self {
        Table::new(&["series", "metric", "x", "layer", "value"])
    }

    /// Appends a record (as many fields as the header has columns).
    pub fn record(&mut self, fields: Vec<String>) {
        debug_assert_eq!(fields.len(), self.header.len());
        self.records.push(fields);
    }

    /// Appends a long-form row.
    pub fn row(
        &mut self,
        series: &str,
        metric: &str,
        x: impl Display,
        layer: Option<usize>,
        value: f64,
    ) {
        let layer = layer.map(|l| l.to_string()).unwrap_or_default();
        self.record(vec![
            series.to_string(),
            metric.to_string(),
            x.to_string(),
            layer,
            value.to_string(),
        ]);
    }

    /// Appends a training run's per-epoch metrics and per-step layer comparisons.
    pub fn history(&mut self, series: &str, history: &History) {
        for e in &history.epochs {
            let values = [
                ("mean_batch_loss", e.mean_batch_loss),
                ("train_loss", e.train_loss),
                ("train_accuracy", e.train_accuracy),
                ("test_loss", e.test_loss),
                ("test_accuracy", e.test_accuracy),
            ];
            for (metric, value) in values {
                if let Some(value) = value {
                    self.row(series, metric, e.epoch, None, value);
                }
            }
        }
        for s in &history.steps {
            self.row(series, "batch_loss", s.step, None, s.batch_loss);
            for (l, c) in s.layers.iter().enumerate() {
                let layer = Some(l + 1);
                self.row(series, "relative_error", s.step, layer, c.relative_error);
                self.row(series, "angle_degrees", s.step, layer, c.angle_degrees);
            }
        }
    }

    /// Writes the table to `dir/name`.
    ///
    /// # Errors
    /// [`Error::Csv`] naming the file.
    pub fn write(&self, dir: &Path, name: &str) -> Result<(), Error> {
        let path = dir.join(name);
        let failed = |error| Error::Csv {
            path: path.clone(),
            error,
        };
        let mut writer = csv::Writer::from_path(&path).map_err(failed)?;
        writer.write_record(&self.header).map_err(failed)?;
        for record in &self.records {
            writer.write_record(record).map_err(failed)?;
        }
        writer.flush().map_err(|error| Error::Io {
            path: path.clone(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_rows_print_shortest_round_trip_values_and_quote_commas() {
        let dir = std::env::temp_dir().join(format!("pc-bench-table-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut table = Table::long();
        table.row("a", "relative_error", 3, Some(1), 0.1 + 0.2);
        table.row("strict (0.1, 20)", "m", 0, None, 1.0);
        table.write(&dir, "t.csv").unwrap();
        let text = std::fs::read_to_string(dir.join("t.csv")).unwrap();
        assert_eq!(
            text,
            "series,metric,x,layer,value\na,relative_error,3,1,0.30000000000000004\n\"strict (0.1, 20)\",m,0,,1\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
