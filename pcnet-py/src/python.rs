//! The extension module `pc_kernels._native`: a checked network ([`Network`]) whose
//! `infer_into` reads numpy arrays in place, releases the GIL, and writes into arrays the
//! Python side allocated. The user-facing API (`pc_kernels.infer`,
//! `pc_kernels.torch.PCInfer`) is Python code on top of it.

use crate::model::{Model, OpDesc};
use crate::runner::{Request, Runner};
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pcnet_core::stability::safe_step_size_with;
use pcnet_core::{
    Activation, Algorithm, Batch, Loss, PcError, SafeStep, Scalar, Settings, Targets,
};
use pcnet_std::batch::RunnerBackend;
use pcnet_std::fast::Fast;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Mutex, MutexGuard};

/// pcnet-core's error text as a `ValueError`.
fn value_error(error: PcError) -> PyErr {
    PyValueError::new_err(error.to_string())
}

fn lock<R>(mutex: &Mutex<R>) -> MutexGuard<'_, R> {
    // A panic cannot leave a runner half-updated in a way that matters: every call
    // resizes and overwrites what it reads.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One op as the Python side normalises it: `(kind, integers, slope)`.
type RawOp = (String, Vec<usize>, f64);

fn pair(ints: &[usize], at: usize) -> [usize; 2] {
    [ints[at], ints[at + 1]]
}

fn parse_op(kind: &str, ints: &[usize], slope: f64, where_: &str) -> PyResult<OpDesc> {
    let need = |count: usize| -> PyResult<()> {
        if ints.len() == count {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!(
                "{where_}: `{kind}` takes {count} integers, got {}",
                ints.len()
            )))
        }
    };
    Ok(match kind {
        "linear" => {
            need(2)?;
            OpDesc::Linear {
                inputs: ints[0],
                outputs: ints[1],
            }
        }
        "conv2d" => {
            need(8)?;
            OpDesc::Conv2d {
                in_channels: ints[0],
                out_channels: ints[1],
                kernel: pair(ints, 2),
                stride: pair(ints, 4),
                padding: pair(ints, 6),
            }
        }
        "maxpool2d" | "avgpool2d" => {
            need(4)?;
            let (kernel, stride) = (pair(ints, 0), pair(ints, 2));
            if kind == "maxpool2d" {
                OpDesc::MaxPool2d { kernel, stride }
            } else {
                OpDesc::AvgPool2d { kernel, stride }
            }
        }
        "flatten" => OpDesc::Flatten,
        "leaky_relu" => {
            if !slope.is_finite() {
                return Err(PyValueError::new_err(format!(
                    "{where_}: leaky_relu's negative slope must be finite, got {slope}"
                )));
            }
            OpDesc::Activation(Activation::LeakyRelu { slope })
        }
        other => match Activation::from_name(other) {
            Some(activation) => OpDesc::Activation(activation),
            None => {
                return Err(PyValueError::new_err(format!(
                    "{where_}: unknown op `{other}` (known: linear, conv2d, maxpool2d, avgpool2d, \
                     flatten, identity, relu, leaky_relu, tanh, sigmoid, softplus)"
                )))
            }
        },
    })
}

/// Looks `obj` up as a C-contiguous numpy array of `T`, naming `name` in every error.
fn array<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a numpy array, got {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "an object".to_string(), |n| n.to_string())
        ))
    })?;
    let expected = numpy::dtype::<T>(obj.py());
    if !untyped.dtype().is_equiv_to(&expected) {
        return Err(PyTypeError::new_err(format!(
            "{name} has dtype {}, expected {} (the dtype of the parameters)",
            untyped.dtype(),
            expected
        )));
    }
    if !untyped.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{name} is not C-contiguous (a transposed or strided view?); pass \
             numpy.ascontiguousarray({name}) or tensor.contiguous()"
        )));
    }
    obj.cast::<PyArrayDyn<T>>()
        .cloned()
        .map_err(|_| PyTypeError::new_err(format!("{name}: unexpected array type")))
}

fn readonly<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    array::<T>(obj, name)?
        .try_readonly()
        .map_err(|error| PyValueError::new_err(format!("{name}: {error}")))
}

fn readwrite<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    name: &str,
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    array::<T>(obj, name)?
        .try_readwrite()
        .map_err(|error| PyValueError::new_err(format!("{name}: {error} (is it read-only?)")))
}

/// Class indices of a 1-d integer array, checked non-negative.
fn classes(obj: &Bound<'_, PyAny>, rows: usize) -> PyResult<Vec<usize>> {
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err("y must be a numpy array of class indices for cross-entropy")
    })?;
    if untyped.ndim() != 1 || untyped.shape()[0] != rows {
        return Err(PyValueError::new_err(format!(
            "y has shape {:?}; cross-entropy takes one class index per row, shape ({rows},)",
            untyped.shape()
        )));
    }
    let convert = |values: Vec<i64>| -> PyResult<Vec<usize>> {
        values
            .iter()
            .enumerate()
            .map(|(row, &value)| {
                usize::try_from(value).map_err(|_| {
                    PyValueError::new_err(format!("y[{row}] = {value} is not a class index"))
                })
            })
            .collect()
    };
    if let Ok(array) = obj.cast::<PyArrayDyn<i64>>() {
        return convert(
            array
                .to_vec()
                .map_err(|e| PyValueError::new_err(format!("y: {e}")))?,
        );
    }
    if let Ok(array) = obj.cast::<PyArrayDyn<i32>>() {
        let values = array
            .to_vec()
            .map_err(|e| PyValueError::new_err(format!("y: {e}")))?;
        return convert(values.into_iter().map(i64::from).collect());
    }
    Err(PyTypeError::new_err(format!(
        "y has dtype {}; cross-entropy takes integer class indices (int64 or int32)",
        untyped.dtype()
    )))
}

/// A checked network with its reusable buffers (one runner per dtype).
///
/// `Network(layers, input_shape, loss)`: `layers` is a list of layers, each a list of
/// ops `(kind, integers, slope)` as `pc_kernels` normalises them; `input_shape` the
/// per-sample input shape; `loss` `"mse"`, `"mse_sum"` or `"cross_entropy"`.
#[pyclass(frozen, module = "pc_kernels._native")]
pub struct Network {
    model: Model,
    runner_f32: Mutex<Runner<f32>>,
    runner_f64: Mutex<Runner<f64>>,
}

/// What `infer_into` returns: `(loss, iterations, residual, energy, converged)`.
type Outcome = (f64, usize, f64, Option<f64>, bool);

impl Network {
    fn settings<T: Scalar>(
        algorithm: &str,
        eta: f64,
        n: usize,
        free_input: bool,
    ) -> PyResult<Settings<'static, T>> {
        let algorithm = Algorithm::from_name(algorithm).ok_or_else(|| {
            PyValueError::new_err(format!(
                "algorithm must be \"FixedPred\", \"Strict\" or \"Exact\", not {algorithm:?}"
            ))
        })?;
        let settings = Settings::for_algorithm(algorithm, T::from_f64(eta), n);
        Ok(if free_input {
            if algorithm != Algorithm::FixedPred {
                return Err(PyValueError::new_err(
                    "a free input belief is FixedPred's (Torch2PC's FixedPred moves v[0]); \
                     Strict and Exact clamp it",
                ));
            }
            settings.with_free_input()
        } else {
            settings
        })
    }

    /// Checks x against the network and returns its rows.
    fn rows(&self, shape: &[usize]) -> PyResult<usize> {
        let input = &self.model.activation_shapes()[0];
        if shape.len() != input.len() + 1 || &shape[1..] != input.as_slice() {
            return Err(PyValueError::new_err(format!(
                "x has shape {shape:?}; the network takes (rows, {}) inputs",
                input
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok(shape[0])
    }

    #[allow(clippy::too_many_arguments)]
    fn run<T: Scalar + Element>(
        &self,
        runner: &Mutex<Runner<T>>,
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        settings: Settings<'static, T>,
        vinit: Option<&Bound<'_, PyAny>>,
        threads: usize,
        results: &Bound<'_, PyAny>,
        updates: &Bound<'_, PyAny>,
    ) -> PyResult<Outcome>
    where
        Fast: RunnerBackend<T>,
    {
        let params = readonly::<T>(params, "params")?;
        let x = readonly::<T>(x, "x")?;
        let rows = self.rows(x.shape())?;
        let mut results = readwrite::<T>(results, "results")?;
        let mut updates = readwrite::<T>(updates, "updates")?;
        let output_len = self.model.spec().output_len();
        let (values, class_list);
        let targets = if self.model.loss() == Loss::CrossEntropy {
            class_list = classes(y, rows)?;
            Targets::Classes(class_list.as_slice())
        } else {
            values = readonly::<T>(y, "y")?;
            let shape = values.shape();
            if shape.is_empty()
                || shape[0] != rows
                || shape[1..].iter().product::<usize>() != output_len
            {
                return Err(PyValueError::new_err(format!(
                    "y has shape {shape:?}; the network's targets are (rows, {output_len}) = ({rows}, {output_len}) \
                     (or the output's own shape)"
                )));
            }
            Targets::Values(
                values
                    .as_slice()
                    .map_err(|e| PyValueError::new_err(format!("y: {e}")))?,
            )
        };
        let beliefs = match vinit {
            Some(obj) => Some(readonly::<T>(obj, "vinit")?),
            None => None,
        };
        fn not_contiguous(name: &'static str) -> impl Fn(numpy::NotContiguousError) -> PyErr {
            move |e| PyValueError::new_err(format!("{name}: {e}"))
        }
        let request = Request {
            params: params.as_slice().map_err(not_contiguous("params"))?,
            inputs: x.as_slice().map_err(not_contiguous("x"))?,
            targets,
            settings,
            initial_beliefs: match &beliefs {
                Some(b) => Some(b.as_slice().map_err(not_contiguous("vinit"))?),
                None => None,
            },
            threads,
        };
        let results = results.as_slice_mut().map_err(not_contiguous("results"))?;
        let updates = updates.as_slice_mut().map_err(not_contiguous("updates"))?;
        let model = &self.model;
        let summary = py
            .detach(|| lock(runner).run(model, &request, results, updates))
            .map_err(value_error)?;
        let report = summary.report;
        Ok((
            summary.loss.to_f64(),
            report.iterations,
            report.residual.to_f64(),
            report.energy.map(|e| e.to_f64()),
            report.converged,
        ))
    }

    fn safe_step<T: Scalar + Element>(
        &self,
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        rule: SafeStep,
    ) -> PyResult<(f64, f64, usize)>
    where
        Fast: pcnet_core::Backend<T>,
    {
        let params = readonly::<T>(params, "params")?;
        let x = readonly::<T>(x, "x")?;
        let rows = self.rows(x.shape())?;
        let output_len = self.model.spec().output_len();
        let (values, class_list);
        let targets = if self.model.loss() == Loss::CrossEntropy {
            class_list = classes(y, rows)?;
            Targets::Classes(class_list.as_slice())
        } else {
            values = readonly::<T>(y, "y")?;
            if values.len() != rows * output_len {
                return Err(PyValueError::new_err(format!(
                    "y has shape {:?}; the network's targets are ({rows}, {output_len})",
                    values.shape()
                )));
            }
            Targets::Values(
                values
                    .as_slice()
                    .map_err(|e| PyValueError::new_err(format!("y: {e}")))?,
            )
        };
        let params = params
            .as_slice()
            .map_err(|e| PyValueError::new_err(format!("params: {e}")))?;
        let inputs = x
            .as_slice()
            .map_err(|e| PyValueError::new_err(format!("x: {e}")))?;
        let spec = self.model.spec();
        let curvature = py
            .detach(|| {
                let mut workspace = vec![T::zero(); spec.workspace_len(rows)];
                safe_step_size_with(
                    &Fast::default(),
                    &spec,
                    params,
                    Batch::new(inputs, targets),
                    &rule,
                    &mut workspace,
                )
            })
            .map_err(value_error)?;
        Ok((
            curvature.step_size.to_f64(),
            curvature.lambda_max.to_f64(),
            curvature.iterations,
        ))
    }
}

/// `"float32"` or `"float64"`: the dtype of `params`, which every other array must share.
fn float_kind(params: &Bound<'_, PyAny>) -> PyResult<bool> {
    let untyped = params.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "params must be a numpy array, got {}",
            params
                .get_type()
                .name()
                .map_or_else(|_| "an object".to_string(), |n| n.to_string())
        ))
    })?;
    let dtype = untyped.dtype();
    if dtype.is_equiv_to(&numpy::dtype::<f32>(params.py())) {
        Ok(false)
    } else if dtype.is_equiv_to(&numpy::dtype::<f64>(params.py())) {
        Ok(true)
    } else {
        Err(PyTypeError::new_err(format!(
            "the parameters have dtype {dtype}; pc_kernels computes in float32 or float64"
        )))
    }
}

#[pymethods]
impl Network {
    #[new]
    fn new(layers: Vec<Vec<RawOp>>, input_shape: Vec<usize>, loss: &str) -> PyResult<Self> {
        let loss = Loss::from_name(loss).ok_or_else(|| {
            PyValueError::new_err(format!(
                "loss must be \"mse\", \"mse_sum\" or \"cross_entropy\", not {loss:?}"
            ))
        })?;
        let mut described = Vec::with_capacity(layers.len());
        for (l, ops) in layers.iter().enumerate() {
            let mut chain = Vec::with_capacity(ops.len());
            for (k, (kind, ints, slope)) in ops.iter().enumerate() {
                let where_ = format!("layer {} (index {l}), op {k}", l + 1);
                chain.push(parse_op(kind, ints, *slope, &where_)?);
            }
            described.push(chain);
        }
        let model = Model::new(&described, &input_shape, loss).map_err(PyValueError::new_err)?;
        Ok(Network {
            model,
            runner_f32: Mutex::new(Runner::new()),
            runner_f64: Mutex::new(Runner::new()),
        })
    }

    /// Depth `L` (number of PC layers).
    #[getter]
    fn depth(&self) -> usize {
        self.model.depth()
    }

    /// The loss name.
    #[getter]
    fn loss(&self) -> &'static str {
        self.model.loss().name()
    }

    /// Per-sample shapes of `v_0..v_L`.
    #[getter]
    fn activation_shapes(&self) -> Vec<Vec<usize>> {
        self.model.activation_shapes().to_vec()
    }

    /// Shapes of the parameter arrays (weight, bias per op that has parameters).
    #[getter]
    fn parameter_shapes(&self) -> Vec<Vec<usize>> {
        self.model.parameter_shapes().to_vec()
    }

    /// Number of parameters.
    #[getter]
    fn parameter_len(&self) -> usize {
        self.model.spec().parameter_len()
    }

    /// Length of the results buffer for `rows` rows.
    fn results_len(&self, rows: usize) -> usize {
        self.model.results_len(rows)
    }

    /// Runs one relaxation; see `pc_kernels.infer`. Reads `params`, `x`, `y` (and
    /// `vinit`) in place, writes `results` and `updates`, with the GIL released.
    #[pyo3(signature = (params, x, y, algorithm, eta, n, free_input, vinit, threads, results, updates))]
    #[allow(clippy::too_many_arguments)]
    fn infer_into(
        &self,
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        algorithm: &str,
        eta: f64,
        n: usize,
        free_input: bool,
        vinit: Option<&Bound<'_, PyAny>>,
        threads: usize,
        results: &Bound<'_, PyAny>,
        updates: &Bound<'_, PyAny>,
    ) -> PyResult<Outcome> {
        if float_kind(params)? {
            let settings = Self::settings::<f64>(algorithm, eta, n, free_input)?;
            self.run(
                &self.runner_f64,
                py,
                params,
                x,
                y,
                settings,
                vinit,
                threads,
                results,
                updates,
            )
        } else {
            let settings = Self::settings::<f32>(algorithm, eta, n, free_input)?;
            self.run(
                &self.runner_f32,
                py,
                params,
                x,
                y,
                settings,
                vinit,
                threads,
                results,
                updates,
            )
        }
    }

    /// Strict's safe step size; see `pc_kernels.safe_step_size`. Returns
    /// `(step_size, lambda_max, iterations)`.
    #[pyo3(signature = (params, x, y, margin, iterations, tolerance, loss_curvature))]
    #[allow(clippy::too_many_arguments)]
    fn safe_step_size(
        &self,
        py: Python<'_>,
        params: &Bound<'_, PyAny>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        margin: f64,
        iterations: usize,
        tolerance: f64,
        loss_curvature: bool,
    ) -> PyResult<(f64, f64, usize)> {
        let rule = SafeStep {
            margin,
            iterations,
            tolerance,
            loss_curvature,
        };
        if float_kind(params)? {
            self.safe_step::<f64>(py, params, x, y, rule)
        } else {
            self.safe_step::<f32>(py, params, x, y, rule)
        }
    }
}

/// The extension module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Network>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
