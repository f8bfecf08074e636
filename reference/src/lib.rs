//! Torch2PC reference cases (format: `tests/data/torch2pc/FORMAT.md`): parsing, running
//! and comparing. The `pc-bench reference` command and the test suite (package
//! `pcnet-tests`) both run them through this crate.
//!
//! A case passes when every expected array matches to a relative tolerance of `1e-9`
//! (absolute `1e-12` near zero) in f64. Errors name the file and the field.
//!
//! ```no_run
//! use pcnet_reference::{load_case, Outcome};
//! let case = load_case(std::path::Path::new("tests/data/torch2pc/v01_exact_mse_mixed4.json")).unwrap();
//! match case.run() {
//!     Outcome::Pass { worst } => println!("pass, worst relative error {worst:e}"),
//!     other => println!("{other:?}"),
//! }
//! ```
//!
//! Why one file of ~900 lines: the case format is one grammar (header, dense body, op
//! chains, expected arrays) read by one `Reader` that names the field of every error;
//! split across files, each part would need the reader's internals.

use pcnet_core::{
    infer, Activation, Algorithm, Batch, Conv2d, ImageShape, Layer, Loss, NetworkSpec, Op, Pool2d,
    Settings, Targets,
};
use serde_json::Value;
use std::{
    ops::Range,
    path::{Path, PathBuf},
};

/// Relative tolerance of a reference comparison.
pub const RELATIVE_TOLERANCE: f64 = 1e-9;
/// Absolute tolerance near zero.
pub const ABSOLUTE_TOLERANCE: f64 = 1e-12;

/// A problem with a case file, naming the file and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {}{message}", file.display(), field_prefix(field))]
pub struct CaseError {
    /// The file.
    pub file: PathBuf,
    /// The JSON path of the field (`expected.v[2]`), or empty for the whole file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// `field `NAME`: ` before a message about one field, nothing for the whole file.
fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}

/// What a case file asks the library to do.
#[derive(Debug, Clone)]
pub enum CaseKind {
    /// A dense network the library runs.
    Dense(Box<DenseCase>),
    /// A network of op-chain layers (convolution, pooling, flatten, linear, activations),
    /// the `conv/` cases; parsed into the same form as a dense case.
    OpChain(Box<DenseCase>),
    /// A case the library cannot run yet (convolutional op chains), with the reason.
    Unsupported(String),
}

/// One loaded case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The file it came from.
    pub file: PathBuf,
    /// Its `name` field.
    pub name: String,
    /// What it asks for.
    pub kind: CaseKind,
}

/// A parsed case, dense or op-chain: the network in pcnet-core's form and every expected
/// array, flattened row-major (NCHW for images).
#[derive(Debug, Clone)]
pub struct DenseCase {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Step size (1 for exact).
    pub eta: f64,
    /// Iterations (0 for exact).
    pub n: usize,
    /// Loss.
    pub loss: Loss,
    /// Layers.
    pub layers: Vec<Layer>,
    /// Flat parameters in pcnet-core's layout.
    pub params: Vec<f64>,
    /// Features per input sample.
    pub input_len: usize,
    /// The range of the update slice each expected gradient field compares against, in
    /// the order of the gradient fields at the end of `expected`.
    pub update_ranges: Vec<Range<usize>>,
    /// Inputs, rows x width.
    pub x: Vec<f64>,
    /// Rows.
    pub rows: usize,
    /// MSE targets.
    pub y_values: Vec<f64>,
    /// Cross-entropy classes.
    pub y_classes: Vec<usize>,
    /// Expected values, each with its field name.
    pub expected: Vec<(String, Option<Vec<f64>>)>,
}

/// The result of running a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every field within tolerance; `worst` is the largest scaled error (pass iff <= 1e-9).
    Pass {
        /// Largest `|actual - expected| / max(|expected|, 1e-3)`.
        worst: f64,
    },
    /// Some field out of tolerance.
    Fail {
        /// Largest scaled error.
        worst: f64,
        /// The field where it occurred.
        field: String,
        /// Index within the field.
        index: usize,
        /// Expected value there.
        expected: f64,
        /// Computed value there.
        actual: f64,
    },
    /// The library cannot run this case yet.
    Skip {
        /// Why.
        reason: String,
    },
    /// The library returned an error.
    Error {
        /// The error.
        message: String,
    },
}

struct Reader<'a> {
    file: &'a Path,
}

impl Reader<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> CaseError {
        CaseError {
            file: self.file.to_path_buf(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn get<'v>(&self, value: &'v Value, key: &str, field: &str) -> Result<&'v Value, CaseError> {
        value
            .get(key)
            .ok_or_else(|| self.err(field, format!("missing key `{key}`")))
    }

    fn number(&self, value: &Value, field: &str) -> Result<f64, CaseError> {
        value
            .as_f64()
            .ok_or_else(|| self.err(field, "expected a number"))
    }

    fn count(&self, value: &Value, field: &str) -> Result<usize, CaseError> {
        value
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| self.err(field, "expected a non-negative integer"))
    }

    fn string<'v>(&self, value: &'v Value, field: &str) -> Result<&'v str, CaseError> {
        value
            .as_str()
            .ok_or_else(|| self.err(field, "expected a string"))
    }

    /// Flattens a nested array of numbers, checking it is rectangular with `shape`.
    fn tensor(&self, value: &Value, shape: &[usize], field: &str) -> Result<Vec<f64>, CaseError> {
        // The declared shape is not trusted for the allocation: a case claiming a huge
        // kernel must fail on its arrays, not abort on a terabyte `with_capacity` (found by
        // fuzzing). The vector grows with what the arrays really hold.
        let declared = element_count(self, shape, field).unwrap_or(0);
        let mut out = Vec::with_capacity(declared.min(1 << 16));
        self.flatten(value, shape, field, &mut out)?;
        Ok(out)
    }

    fn flatten(
        &self,
        value: &Value,
        shape: &[usize],
        field: &str,
        out: &mut Vec<f64>,
    ) -> Result<(), CaseError> {
        match shape.split_first() {
            None => {
                out.push(self.number(value, field)?);
                Ok(())
            }
            Some((&len, rest)) => {
                let items = value
                    .as_array()
                    .ok_or_else(|| self.err(field, "expected an array"))?;
                if items.len() != len {
                    return Err(self.err(
                        field,
                        format!("expected {len} entries, found {}", items.len()),
                    ));
                }
                for (i, item) in items.iter().enumerate() {
                    self.flatten(item, rest, &format!("{field}[{i}]"), out)?;
                }
                Ok(())
            }
        }
    }
}

/// Lists every `*.json` file under `dir`, recursively, sorted.
pub fn find_cases(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads and parses one case file.
///
/// # Errors
/// A [`CaseError`] naming the file and field for unreadable files, malformed JSON, missing
/// keys, wrong shapes and unknown names.
pub fn load_case(file: &Path) -> Result<Case, CaseError> {
    let reader = Reader { file };
    let text =
        std::fs::read_to_string(file).map_err(|e| reader.err("", format!("cannot read: {e}")))?;
    parse_case(file, &text)
}

/// Parses one case from its JSON text (`file` names it in errors).
///
/// # Errors
/// As [`load_case`].
pub fn parse_case(file: &Path, text: &str) -> Result<Case, CaseError> {
    let reader = Reader { file };
    let root: Value =
        serde_json::from_str(text).map_err(|e| reader.err("", format!("invalid JSON: {e}")))?;
    let name = reader
        .string(reader.get(&root, "name", "name")?, "name")?
        .to_string();
    let layers_json = reader
        .get(&root, "layers", "layers")?
        .as_array()
        .ok_or_else(|| reader.err("layers", "expected an array"))?;
    if layers_json.iter().any(|layer| layer.get("ops").is_some()) {
        let case = parse_op_chain(&reader, &root, layers_json)?;
        return Ok(Case {
            file: file.to_path_buf(),
            name,
            kind: CaseKind::OpChain(Box::new(case)),
        });
    }
    let dense = parse_dense(&reader, &root, layers_json)?;
    Ok(Case {
        file: file.to_path_buf(),
        name,
        kind: CaseKind::Dense(Box::new(dense)),
    })
}

fn parse_dense(
    reader: &Reader<'_>,
    root: &Value,
    layers_json: &[Value],
) -> Result<DenseCase, CaseError> {
    let header = parse_header(reader, root)?;
    if layers_json.is_empty() {
        return Err(reader.err("layers", "no layers"));
    }
    let mut layers = Vec::new();
    let mut params = Vec::new();
    let mut widths = Vec::new();
    for (l, layer) in layers_json.iter().enumerate() {
        let field = format!("layers[{l}]");
        let inputs = reader.count(reader.get(layer, "in", &field)?, &format!("{field}.in"))?;
        let outputs = reader.count(reader.get(layer, "out", &field)?, &format!("{field}.out"))?;
        let act_field = format!("{field}.activation");
        let act_name = reader.string(reader.get(layer, "activation", &field)?, &act_field)?;
        let activation = Activation::from_name(act_name)
            .ok_or_else(|| reader.err(&act_field, format!("unknown activation `{act_name}`")))?;
        if l == 0 {
            widths.push(inputs);
        } else if widths[l] != inputs {
            return Err(reader.err(
                &format!("{field}.in"),
                format!("expected {} (the previous layer's out)", widths[l]),
            ));
        }
        widths.push(outputs);
        let weight_field = format!("{field}.weight");
        params.extend(reader.tensor(
            reader.get(layer, "weight", &field)?,
            &[outputs, inputs],
            &weight_field,
        )?);
        let bias_field = format!("{field}.bias");
        params.extend(reader.tensor(
            reader.get(layer, "bias", &field)?,
            &[outputs],
            &bias_field,
        )?);
        layers.push(Layer::dense(inputs, outputs, activation));
    }
    let shapes: Vec<Vec<usize>> = widths.iter().map(|&w| vec![w]).collect();
    let mut case = parse_body(reader, root, &header, layers, params, &shapes)?;
    // Dense gradients: every layer's weight, then every layer's bias.
    let spec = NetworkSpec::new(&case.layers, case.loss);
    let expected_json = reader.get(root, "expected", "expected")?;
    let depth = case.layers.len();
    let mut weight_fields = Vec::new();
    let mut bias_fields = Vec::new();
    for (key, is_weight) in [("grad_weight", true), ("grad_bias", false)] {
        let field = format!("expected.{key}");
        let items = reader
            .get(expected_json, key, "expected")?
            .as_array()
            .ok_or_else(|| reader.err(&field, "expected an array"))?;
        if items.len() != depth {
            return Err(reader.err(
                &field,
                format!("expected {depth} entries, found {}", items.len()),
            ));
        }
        for (l, item) in items.iter().enumerate() {
            let name = format!("{field}[{l}]");
            let (inputs, outputs) = (widths[l], widths[l + 1]);
            let offset = spec.parameter_offset(l + 1);
            let (shape, range): (&[usize], _) = if is_weight {
                (&[outputs, inputs], offset..offset + outputs * inputs)
            } else {
                (
                    &[outputs],
                    offset + outputs * inputs..offset + outputs * inputs + outputs,
                )
            };
            let entry = (
                name.clone(),
                Some(reader.tensor(item, shape, &name)?),
                range,
            );
            if is_weight {
                weight_fields.push(entry);
            } else {
                bias_fields.push(entry);
            }
        }
    }
    for (name, values, range) in weight_fields.into_iter().chain(bias_fields) {
        case.expected.push((name, values));
        case.update_ranges.push(range);
    }
    Ok(case)
}

/// Algorithm, step size, iterations and loss of a case.
struct Header {
    algorithm: Algorithm,
    eta: f64,
    n: usize,
    loss: Loss,
}

fn parse_header(reader: &Reader<'_>, root: &Value) -> Result<Header, CaseError> {
    let algorithm_name = reader.string(reader.get(root, "algorithm", "algorithm")?, "algorithm")?;
    let algorithm = Algorithm::from_name(algorithm_name)
        .ok_or_else(|| reader.err("algorithm", format!("unknown algorithm `{algorithm_name}`")))?;
    let (eta, n) = if algorithm == Algorithm::Exact {
        (1.0, 0)
    } else {
        (
            reader.number(reader.get(root, "eta", "eta")?, "eta")?,
            reader.count(reader.get(root, "n", "n")?, "n")?,
        )
    };
    let loss_name = reader.string(reader.get(root, "loss", "loss")?, "loss")?;
    let loss = Loss::from_name(loss_name)
        .ok_or_else(|| reader.err("loss", format!("unknown loss `{loss_name}`")))?;
    Ok(Header {
        algorithm,
        eta,
        n,
        loss,
    })
}

/// The shape of a nested JSON array, following first elements (`[]` for a number).
fn nested_shape(value: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut current = value;
    while let Some(items) = current.as_array() {
        shape.push(items.len());
        match items.first() {
            Some(first) => current = first,
            None => break,
        }
    }
    shape
}

/// A pair `[a, b]` of counts.
fn pair(reader: &Reader<'_>, op: &Value, key: &str, field: &str) -> Result<[usize; 2], CaseError> {
    let field = format!("{field}.{key}");
    let items = reader
        .get(op, key, &field)?
        .as_array()
        .ok_or_else(|| reader.err(&field, "expected an array [a, b]"))?;
    if items.len() != 2 {
        return Err(reader.err(&field, "expected two entries"));
    }
    Ok([
        reader.count(&items[0], &format!("{field}[0]"))?,
        reader.count(&items[1], &format!("{field}[1]"))?,
    ])
}

/// Per-sample shape flowing through an op chain.
#[derive(Clone, Copy)]
enum Flow {
    Image(ImageShape),
    Flat(usize),
}

impl Flow {
    fn dims(&self) -> Vec<usize> {
        match *self {
            Flow::Image(shape) => vec![shape.channels, shape.height, shape.width],
            Flow::Flat(width) => vec![width],
        }
    }

    /// The number of values, or an error naming `field` when it overflows `usize`.
    fn len(&self, reader: &Reader<'_>, field: &str) -> Result<usize, CaseError> {
        element_count(reader, &self.dims(), field)
    }
}

/// The number of values of a tensor of shape `dims`, or an error naming `field` when it
/// overflows `usize`.
fn element_count(reader: &Reader<'_>, dims: &[usize], field: &str) -> Result<usize, CaseError> {
    dims.iter()
        .try_fold(1_usize, |total, &len| total.checked_mul(len))
        .ok_or_else(|| reader.err(field, "the shape has more values than fit in memory"))
}

/// Reads an op's `weight` (of `weight_shape`, output channels or features first) and
/// `bias` (one per output) onto `params`; returns their ranges there.
fn read_weight_and_bias(
    reader: &Reader<'_>,
    op: &Value,
    field: &str,
    weight_shape: &[usize],
    params: &mut Vec<f64>,
) -> Result<(Range<usize>, Range<usize>), CaseError> {
    let start = params.len();
    params.extend(reader.tensor(
        reader.get(op, "weight", field)?,
        weight_shape,
        &format!("{field}.weight"),
    )?);
    let middle = params.len();
    params.extend(reader.tensor(
        reader.get(op, "bias", field)?,
        &weight_shape[..1],
        &format!("{field}.bias"),
    )?);
    Ok((start..middle, middle..params.len()))
}

fn parse_op_chain(
    reader: &Reader<'_>,
    root: &Value,
    layers_json: &[Value],
) -> Result<DenseCase, CaseError> {
    let header = parse_header(reader, root)?;
    if layers_json.is_empty() {
        return Err(reader.err("layers", "no layers"));
    }
    let x_shape = nested_shape(reader.get(root, "x", "x")?);
    let mut flow = match x_shape.as_slice() {
        [_, channels, height, width] => Flow::Image(ImageShape::new(*channels, *height, *width)),
        [_, width] => Flow::Flat(*width),
        _ => return Err(reader.err("x", "expected batch x C x H x W or batch x features")),
    };
    let mut shapes = vec![flow.dims()];
    let mut layers = Vec::new();
    let mut params = Vec::new();
    // (json layer, json op index, parameter range of its weight, of its bias, shapes)
    let mut parametrised = Vec::new();
    for (l, layer) in layers_json.iter().enumerate() {
        let field = format!("layers[{l}]");
        let ops_json = reader
            .get(layer, "ops", &field)?
            .as_array()
            .ok_or_else(|| reader.err(&format!("{field}.ops"), "expected an array"))?;
        let mut ops = Vec::new();
        let mut param_index = 0;
        for (k, op) in ops_json.iter().enumerate() {
            let field = format!("{field}.ops[{k}]");
            let kind = reader.string(reader.get(op, "op", &field)?, &format!("{field}.op"))?;
            let image = |flow: Flow| match flow {
                Flow::Image(shape) => Ok(shape),
                Flow::Flat(_) => Err(reader.err(&field, format!("`{kind}` needs an image input"))),
            };
            let parsed = match kind {
                "conv2d" => {
                    let input = image(flow)?;
                    let in_channels = reader.count(
                        reader.get(op, "in_channels", &field)?,
                        &format!("{field}.in_channels"),
                    )?;
                    if in_channels != input.channels {
                        return Err(reader.err(
                            &format!("{field}.in_channels"),
                            format!("expected {} (the input's channels)", input.channels),
                        ));
                    }
                    let out_channels = reader.count(
                        reader.get(op, "out_channels", &field)?,
                        &format!("{field}.out_channels"),
                    )?;
                    let conv =
                        Conv2d::new(input, out_channels, pair(reader, op, "kernel", &field)?)
                            .with_stride(pair(reader, op, "stride", &field)?)
                            .with_padding(pair(reader, op, "padding", &field)?);
                    let [kh, kw] = conv.kernel;
                    let weight_shape = vec![out_channels, in_channels, kh, kw];
                    let (weight, bias) =
                        read_weight_and_bias(reader, op, &field, &weight_shape, &mut params)?;
                    parametrised.push((
                        l,
                        param_index,
                        weight,
                        bias,
                        weight_shape,
                        vec![out_channels],
                    ));
                    param_index += 1;
                    flow = Flow::Image(conv.output_shape());
                    Op::Conv2d(conv)
                }
                "linear" => {
                    let width = match flow {
                        Flow::Flat(width) => width,
                        Flow::Image(_) => {
                            return Err(
                                reader.err(&field, "`linear` needs a flat input (add a flatten)")
                            )
                        }
                    };
                    let inputs =
                        reader.count(reader.get(op, "in", &field)?, &format!("{field}.in"))?;
                    let outputs =
                        reader.count(reader.get(op, "out", &field)?, &format!("{field}.out"))?;
                    if inputs != width {
                        return Err(reader.err(
                            &format!("{field}.in"),
                            format!("expected {width} (the input's features)"),
                        ));
                    }
                    let weight_shape = vec![outputs, inputs];
                    let (weight, bias) =
                        read_weight_and_bias(reader, op, &field, &weight_shape, &mut params)?;
                    parametrised.push((l, param_index, weight, bias, weight_shape, vec![outputs]));
                    param_index += 1;
                    flow = Flow::Flat(outputs);
                    Op::Linear { inputs, outputs }
                }
                "activation" => {
                    let act_field = format!("{field}.activation");
                    let name = reader.string(reader.get(op, "activation", &field)?, &act_field)?;
                    let activation = Activation::from_name(name).ok_or_else(|| {
                        reader.err(&act_field, format!("unknown activation `{name}`"))
                    })?;
                    Op::Activation(activation)
                }
                "maxpool2d" | "avgpool2d" => {
                    let pool = Pool2d::new(image(flow)?, pair(reader, op, "kernel", &field)?)
                        .with_stride(pair(reader, op, "stride", &field)?);
                    flow = Flow::Image(pool.output_shape());
                    if kind == "maxpool2d" {
                        Op::MaxPool2d(pool)
                    } else {
                        Op::AvgPool2d(pool)
                    }
                }
                "flatten" => {
                    flow = Flow::Flat(flow.len(reader, &field)?);
                    Op::Flatten
                }
                other => {
                    return Err(reader.err(&format!("{field}.op"), format!("unknown op `{other}`")))
                }
            };
            ops.push(parsed);
        }
        let layer = Layer::from_ops(&ops)
            .map_err(|error| reader.err(&format!("{field}.ops"), error.to_string()))?;
        layers.push(layer);
        shapes.push(flow.dims());
    }
    let input_len = element_count(reader, &shapes[0], "x")?;
    let spec = NetworkSpec::new(&layers, header.loss).with_input_len(input_len);
    spec.validate()
        .map_err(|error| reader.err("layers", error.to_string()))?;
    let mut case = parse_body(reader, root, &header, layers, params, &shapes)?;
    let expected_json = reader.get(root, "expected", "expected")?;
    let grads = reader
        .get(expected_json, "grads", "expected")?
        .as_array()
        .ok_or_else(|| reader.err("expected.grads", "expected an array"))?;
    if grads.len() != case.layers.len() {
        return Err(reader.err(
            "expected.grads",
            format!(
                "expected {} entries, found {}",
                case.layers.len(),
                grads.len()
            ),
        ));
    }
    for (l, k, weight_range, bias_range, weight_shape, bias_shape) in parametrised {
        let field = format!("expected.grads[{l}][{k}]");
        let entry = grads[l]
            .as_array()
            .and_then(|ops| ops.get(k))
            .ok_or_else(|| reader.err(&field, "missing entry for a parametrised op"))?;
        for (key, range, shape) in [
            ("weight", weight_range, weight_shape),
            ("bias", bias_range, bias_shape),
        ] {
            let name = format!("{field}.{key}");
            let values = reader.tensor(reader.get(entry, key, &field)?, &shape, &name)?;
            case.expected.push((name, Some(values)));
            case.update_ranges.push(range);
        }
    }
    Ok(case)
}

/// Parses `x`, `y` and the per-layer expected arrays (`loss`, `dldy`, `vhat`, `v`,
/// `epsilon`) of a network whose activation `l` has per-sample shape `shapes[l]`.
fn parse_body(
    reader: &Reader<'_>,
    root: &Value,
    header: &Header,
    layers: Vec<Layer>,
    params: Vec<f64>,
    shapes: &[Vec<usize>],
) -> Result<DenseCase, CaseError> {
    let Header {
        algorithm,
        eta,
        n,
        loss,
    } = *header;
    let with_rows = |rows: usize, shape: &[usize]| -> Vec<usize> {
        let mut full = vec![rows];
        full.extend_from_slice(shape);
        full
    };
    let x_json = reader.get(root, "x", "x")?;
    let rows = x_json
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| reader.err("x", "expected an array"))?;
    let x = reader.tensor(x_json, &with_rows(rows, &shapes[0]), "x")?;
    let out_shape = with_rows(rows, shapes.last().map_or(&[][..], Vec::as_slice));
    let y_json = reader.get(root, "y", "y")?;
    let (y_values, y_classes) = match loss {
        Loss::CrossEntropy => {
            let items = y_json
                .as_array()
                .ok_or_else(|| reader.err("y", "expected an array"))?;
            if items.len() != rows {
                return Err(reader.err(
                    "y",
                    format!("expected {rows} class indices, found {}", items.len()),
                ));
            }
            let classes = items
                .iter()
                .enumerate()
                .map(|(i, v)| reader.count(v, &format!("y[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            (Vec::new(), classes)
        }
        _ => (reader.tensor(y_json, &out_shape, "y")?, Vec::new()),
    };
    let expected_json = reader.get(root, "expected", "expected")?;
    let mut expected = Vec::new();
    let depth = layers.len();
    expected.push((
        "expected.loss".to_string(),
        Some(vec![reader.number(
            reader.get(expected_json, "loss", "expected")?,
            "expected.loss",
        )?]),
    ));
    expected.push((
        "expected.dldy".to_string(),
        Some(reader.tensor(
            reader.get(expected_json, "dldy", "expected")?,
            &out_shape,
            "expected.dldy",
        )?),
    ));
    for key in ["vhat", "v", "epsilon"] {
        let field = format!("expected.{key}");
        let items = reader
            .get(expected_json, key, "expected")?
            .as_array()
            .ok_or_else(|| reader.err(&field, "expected an array"))?;
        if items.len() != depth + 1 {
            return Err(reader.err(
                &field,
                format!(
                    "expected {} entries (layers 0..=L), found {}",
                    depth + 1,
                    items.len()
                ),
            ));
        }
        for (l, item) in items.iter().enumerate() {
            let name = format!("{field}[{l}]");
            let value = if item.is_null() {
                None
            } else {
                Some(reader.tensor(item, &with_rows(rows, &shapes[l]), &name)?)
            };
            expected.push((name, value));
        }
    }
    let input_len = element_count(reader, &shapes[0], "x")?;
    Ok(DenseCase {
        algorithm,
        eta,
        n,
        loss,
        layers,
        params,
        input_len,
        update_ranges: Vec::new(),
        x,
        rows,
        y_values,
        y_classes,
        expected,
    })
}

/// Scaled error: `|actual - expected| / max(|expected|, ABSOLUTE / RELATIVE)`; a value
/// passes when this is at most [`RELATIVE_TOLERANCE`].
pub fn scaled_error(actual: f64, expected: f64) -> f64 {
    let floor = ABSOLUTE_TOLERANCE / RELATIVE_TOLERANCE;
    if actual.is_nan() || expected.is_nan() {
        return f64::INFINITY;
    }
    (actual - expected).abs() / expected.abs().max(floor)
}

impl DenseCase {
    /// Runs the case with pcnet-core in f64 and returns every computed field, in the order of
    /// `expected`. FixedPred runs with a free input belief, as Torch2PC does.
    pub fn compute(&self) -> Result<Vec<Vec<f64>>, pcnet_core::PcError> {
        let spec = NetworkSpec::new(&self.layers, self.loss).with_input_len(self.input_len);
        let targets = match self.loss {
            Loss::CrossEntropy => Targets::Classes(&self.y_classes),
            _ => Targets::Values(&self.y_values),
        };
        let batch = Batch::new(&self.x, targets);
        let settings = Settings::for_algorithm(self.algorithm, self.eta, self.n);
        let settings = if self.algorithm == Algorithm::FixedPred {
            settings.with_free_input()
        } else {
            settings
        };
        let mut workspace = vec![0.0; spec.workspace_len(self.rows)];
        let mut updates = vec![0.0; spec.parameter_len()];
        let result = infer(
            &spec,
            &self.params,
            batch,
            &settings,
            &mut workspace,
            &mut updates,
        )?;
        let depth = self.layers.len();
        let mut computed = vec![vec![result.loss()], result.output_gradient().to_vec()];
        computed.extend((0..=depth).map(|l| result.feedforward(l).to_vec()));
        computed.extend((0..=depth).map(|l| result.beliefs(l).to_vec()));
        computed.extend((0..=depth).map(|l| result.errors(l).to_vec()));
        for range in &self.update_ranges {
            computed.push(updates[range.clone()].to_vec());
        }
        Ok(computed)
    }
}

impl Case {
    /// Runs the case and compares every expected field.
    pub fn run(&self) -> Outcome {
        let dense = match &self.kind {
            CaseKind::Unsupported(reason) => {
                return Outcome::Skip {
                    reason: reason.clone(),
                }
            }
            CaseKind::Dense(dense) | CaseKind::OpChain(dense) => dense,
        };
        let computed = match dense.compute() {
            Ok(computed) => computed,
            Err(error) => {
                return Outcome::Error {
                    message: error.to_string(),
                }
            }
        };
        let mut worst = 0.0_f64;
        let mut failure = None;
        for ((field, expected), actual) in dense.expected.iter().zip(&computed) {
            let Some(expected) = expected else { continue };
            for (index, (&e, &a)) in expected.iter().zip(actual).enumerate() {
                let error = scaled_error(a, e);
                if error > worst || error.is_nan() {
                    worst = error;
                    if error > RELATIVE_TOLERANCE {
                        failure = Some((field.clone(), index, e, a));
                    }
                }
            }
            if expected.len() != actual.len() {
                return Outcome::Error {
                    message: format!(
                        "{field}: computed {} values, expected {}",
                        actual.len(),
                        expected.len()
                    ),
                };
            }
        }
        match failure {
            None => Outcome::Pass { worst },
            Some((field, index, expected, actual)) => Outcome::Fail {
                worst,
                field,
                index,
                expected,
                actual,
            },
        }
    }
}
