"""pc_kernels: pc's predictive-coding kernels from Python.

Three ways to compute a feedforward network's learning signal, as in R. Rosenbaum, "On the
relationship between predictive coding and backpropagation" (PLoS ONE, 2022) and its
PyTorch code Torch2PC: ``"Exact"`` (backpropagation), ``"FixedPred"`` (predictive coding
under the fixed prediction assumption) and ``"Strict"`` (strict predictive coding).

Two APIs:

* :func:`infer` (numpy, no torch needed): a network described op by op, parameters in
  PyTorch's layout, float32 or float64.
* :func:`pc_kernels.torch.PCInfer`: a drop-in for Torch2PC's ``PCInfer`` (imports torch).

Example::

    >>> import numpy as np, pc_kernels
    >>> layers = [[{"op": "linear", "in": 4, "out": 8}, "tanh"], [{"op": "linear", "in": 8, "out": 3}]]
    >>> rng = np.random.default_rng(0)
    >>> params = [rng.normal(size=s) * 0.3 for s in pc_kernels.Network(layers, (4,)).parameter_shapes]
    >>> x, y = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    >>> result = pc_kernels.infer(layers, params, x, y, algorithm="Strict", eta=0.1, n=20)
    >>> result.report.iterations, result.updates[0].shape
    (20, (8, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native

__version__: str = _native.__version__

__all__ = [
    "Inference",
    "Network",
    "Report",
    "StepSize",
    "__version__",
    "infer",
    "safe_step_size",
]

#: One op: a name (``"relu"``, ``"flatten"``) or a dict with an ``"op"`` key.
Op = Union[str, Mapping[str, Any]]
#: One PC layer: an op, or a list of ops applied in order.
LayerSpec = Union[Op, Sequence[Op]]

_ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid", "softplus")
_LOSSES = {
    "mse": "mse",
    "mse_sum": "mse_sum",
    "cross_entropy": "cross_entropy",
    "cross-entropy": "cross_entropy",
    "ce": "cross_entropy",
}
_ALGORITHMS = ("FixedPred", "Strict", "Exact")


def _pair(value: Any, what: str) -> List[int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return [int(value), int(value)]
    try:
        first, second = value
        return [int(first), int(second)]
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}") from None


def _count(op: Mapping[str, Any], key: str, where: str) -> int:
    if key not in op:
        raise ValueError(f"{where}: `{op.get('op')}` needs the key {key!r}")
    value = op[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: {key} must be a non-negative int, got {value!r}")
    return int(value)


def _normalise_op(op: Op, where: str) -> Tuple[str, List[int], float]:
    if isinstance(op, str):
        op = {"op": op}
    if not isinstance(op, Mapping):
        raise TypeError(f"{where}: an op is a name or a dict with an 'op' key, got {type(op).__name__}")
    kind = str(op.get("op", "")).lower().replace("-", "_")
    if kind == "activation":
        kind = str(op.get("activation", "")).lower().replace("-", "_")
    if kind == "linear":
        return ("linear", [_count(op, "in", where), _count(op, "out", where)], 0.0)
    if kind == "conv2d":
        kernel = _pair(op.get("kernel"), f"{where}: kernel")
        stride = _pair(op.get("stride", 1), f"{where}: stride")
        padding = _pair(op.get("padding", 0), f"{where}: padding")
        channels = [_count(op, "in_channels", where), _count(op, "out_channels", where)]
        return ("conv2d", channels + kernel + stride + padding, 0.0)
    if kind in ("maxpool2d", "avgpool2d"):
        kernel = _pair(op.get("kernel"), f"{where}: kernel")
        stride = _pair(op.get("stride", kernel), f"{where}: stride")
        return (kind, kernel + stride, 0.0)
    if kind == "flatten":
        return ("flatten", [], 0.0)
    if kind == "leaky_relu":
        slope = op.get("negative_slope", op.get("slope", 0.01))
        return ("leaky_relu", [], float(slope))
    if kind in _ACTIVATIONS:
        return (kind, [], 0.0)
    raise ValueError(
        f"{where}: unknown op {op.get('op')!r} (known: linear, conv2d, maxpool2d, avgpool2d, "
        f"flatten, {', '.join(_ACTIVATIONS)})"
    )


def _normalise_layers(layers: Sequence[LayerSpec]) -> List[List[Tuple[str, List[int], float]]]:
    if isinstance(layers, (str, Mapping)) or not isinstance(layers, Sequence):
        raise TypeError("layers must be a list of layers (each an op or a list of ops)")
    normalised = []
    for index, layer in enumerate(layers):
        ops = [layer] if isinstance(layer, (str, Mapping)) else layer
        if not isinstance(ops, Sequence):
            raise TypeError(f"layer {index + 1} (index {index}): a layer is an op or a list of ops")
        normalised.append(
            [_normalise_op(op, f"layer {index + 1} (index {index}), op {k}") for k, op in enumerate(ops)]
        )
    return normalised


def _loss_name(loss: str) -> str:
    try:
        return _LOSSES[loss]
    except (KeyError, TypeError):
        raise ValueError(f'loss must be "mse", "mse_sum" or "cross_entropy", not {loss!r}') from None


@dataclass(frozen=True)
class Report:
    """What a relaxation reports about itself.

    Attributes:
        iterations: Iterations carried out (0 for Exact).
        residual: The last iteration's largest ``|epsilon_l - J^T epsilon_{l+1}|`` over the
            moving beliefs.
        energy: Strict only: the energy at the last computed errors (``None`` otherwise).
        converged: Whether the residual met the tolerance (none is set here, so ``False``
            unless the residual is exactly 0).
    """

    iterations: int
    residual: float
    energy: Optional[float]
    converged: bool


@dataclass(frozen=True)
class Inference:
    """The result of :func:`infer`. Every array is a view of one buffer allocated for this
    call (rows first; image layers in NCHW).

    Attributes:
        vhat: Feedforward values ``vhat[0..L]`` (``vhat[0]`` is the input).
        v: Beliefs after the relaxation, ``v[0..L]``.
        epsilon: Prediction errors of the last iteration, ``epsilon[0..L]`` (``epsilon[L]``
            is dLoss/dy; ``epsilon[0]`` is zero unless the input belief is free).
        loss: The loss at the feedforward output.
        dldy: dLoss/dy at the feedforward output.
        updates: The parameter updates (what Torch2PC writes into ``.grad``), one array per
            parameter array, shaped like it.
        report: The relaxation report.
    """

    vhat: List[np.ndarray]
    v: List[np.ndarray]
    epsilon: List[np.ndarray]
    loss: float
    dldy: np.ndarray
    updates: List[np.ndarray]
    report: Report


@dataclass(frozen=True)
class StepSize:
    """What :func:`safe_step_size` found.

    Attributes:
        step_size: ``margin * 2 / max(lambda_max, 1)``, a step size Strict is stable at.
        lambda_max: The largest curvature of the Strict energy in the hidden beliefs (the
            largest over the samples).
        iterations: Power iterations carried out.
    """

    step_size: float
    lambda_max: float
    iterations: int


class Network:
    """A checked network: its layers, its per-sample input shape and its loss.

    Build it once and pass it to :func:`infer` in place of the layer list to skip the
    description's parsing and checks on every call.

    Args:
        layers: One entry per PC layer; each an op or a list of ops. Ops are names
            (``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"softplus"``, ``"identity"``,
            ``"leaky_relu"``, ``"flatten"``) or dicts:
            ``{"op": "linear", "in": 784, "out": 256}``,
            ``{"op": "conv2d", "in_channels": 1, "out_channels": 8, "kernel": 3, "stride": 1, "padding": 0}``,
            ``{"op": "maxpool2d", "kernel": 2, "stride": 2}`` (``"avgpool2d"`` likewise;
            stride defaults to the kernel), ``{"op": "leaky_relu", "negative_slope": 0.01}``.
            Linear and conv2d ops have a bias, as PyTorch's defaults.
        input_shape: Shape of one input sample: ``(features,)`` or ``(channels, height, width)``.
        loss: ``"mse"`` (mean over every element, ``nn.MSELoss()``), ``"mse_sum"``
            (``nn.MSELoss(reduction="sum")``) or ``"cross_entropy"`` (``nn.CrossEntropyLoss()``,
            class-index targets).

    Raises:
        ValueError: for an op that does not fit its input, naming the layer and op.
        TypeError: for a description that is not a list of ops.
    """

    def __init__(self, layers: Sequence[LayerSpec], input_shape: Sequence[int], loss: str = "mse") -> None:
        self._native = _native.Network(_normalise_layers(layers), [int(d) for d in input_shape], _loss_name(loss))
        self.parameter_shapes: List[Tuple[int, ...]] = [tuple(s) for s in self._native.parameter_shapes]
        self.activation_shapes: List[Tuple[int, ...]] = [tuple(s) for s in self._native.activation_shapes]
        self.parameter_len: int = self._native.parameter_len
        self.depth: int = self._native.depth
        self.loss: str = self._native.loss
        sizes = [int(np.prod(s)) for s in self.parameter_shapes]
        self._parameter_offsets: List[int] = [int(o) for o in np.cumsum([0] + sizes)]
        self._widths: List[int] = [int(np.prod(s)) for s in self.activation_shapes]

    def __repr__(self) -> str:
        return f"Network(depth={self.depth}, activation_shapes={self.activation_shapes}, loss={self.loss!r})"

    def flatten_parameters(self, params: Sequence[np.ndarray], dtype: Any = None) -> np.ndarray:
        """Concatenates parameter arrays (PyTorch's layout, weight then bias per op) into the
        one flat array :func:`infer` reads in place.

        Raises:
            ValueError: when the count or a shape does not match :attr:`parameter_shapes`.
        """
        params = list(params)
        if len(params) != len(self.parameter_shapes):
            raise ValueError(
                f"params has {len(params)} arrays; the network has {len(self.parameter_shapes)} "
                f"(weight then bias per linear/conv2d op): shapes {self.parameter_shapes}"
            )
        for index, (array, shape) in enumerate(zip(params, self.parameter_shapes)):
            if tuple(np.shape(array)) != shape:
                raise ValueError(f"params[{index}] has shape {tuple(np.shape(array))}, expected {shape}")
        if dtype is None:
            dtype = np.result_type(*params)
        return np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in params])

    def _flat(self, params: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
        if isinstance(params, np.ndarray):
            if params.ndim != 1 or params.shape[0] != self.parameter_len:
                raise ValueError(
                    f"params as one array must be flat with {self.parameter_len} values, got shape "
                    f"{params.shape}; or pass the list of arrays, shapes {self.parameter_shapes}"
                )
            return params
        if not isinstance(params, Sequence):
            raise TypeError(f"params must be a list of numpy arrays or one flat array, got {type(params).__name__}")
        dtypes = {np.asarray(p).dtype for p in params}
        if len(dtypes) > 1:
            raise TypeError(f"the parameter arrays mix dtypes {sorted(str(d) for d in dtypes)}; use one of float32, float64")
        dtype = dtypes.pop() if dtypes else np.float64
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"the parameters have dtype {dtype}; pc_kernels computes in float32 or float64")
        return self.flatten_parameters(params, dtype)

    def _run(
        self,
        flat: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        algorithm: str,
        eta: float,
        n: int,
        free_input: bool,
        vinit: Optional[np.ndarray],
        threads: int,
    ) -> Tuple[np.ndarray, np.ndarray, Tuple[float, int, float, Optional[float], bool]]:
        """:meth:`_run_into` on two buffers allocated for this call."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
        if x.ndim < 1:
            raise ValueError("x must have a leading rows dimension")
        results = _line_aligned(self._native.results_len(x.shape[0]), flat.dtype)
        updates = _line_aligned(self.parameter_len, flat.dtype)
        outcome = self._run_into(flat, x, y, algorithm, eta, n, free_input, vinit, threads, results, updates)
        return results, updates, outcome

    def _run_into(
        self,
        flat: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        algorithm: str,
        eta: float,
        n: int,
        free_input: bool,
        vinit: Optional[np.ndarray],
        threads: int,
        results: np.ndarray,
        updates: np.ndarray,
    ) -> Tuple[float, int, float, Optional[float], bool]:
        """One relaxation written into `results` and `updates` (caller-owned, C-contiguous,
        of the parameters' dtype, lengths ``_native.results_len(rows)`` and
        :attr:`parameter_len`); returns ``(loss, iterations, residual, energy, converged)``."""
        if isinstance(eta, bool) or not isinstance(eta, (int, float, np.floating, np.integer)):
            raise TypeError(f"eta must be a number, got {type(eta).__name__}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 0:
            raise ValueError(f"threads must be a non-negative int (0: every core), got {threads!r}")
        return self._native.infer_into(
            flat, x, y, algorithm, float(eta), int(n), free_input, vinit, int(threads), results, updates
        )

    def _sections(self, results: np.ndarray, rows: int) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray], np.ndarray]:
        out: List[List[np.ndarray]] = [[], [], []]
        offset = 0
        for kind in range(3):
            for width, shape in zip(self._widths, self.activation_shapes):
                out[kind].append(results[offset : offset + rows * width].reshape((rows,) + shape))
                offset += rows * width
        dldy = results[offset:].reshape((rows,) + self.activation_shapes[-1])
        return out[0], out[1], out[2], dldy

    def _updates(self, updates: np.ndarray) -> List[np.ndarray]:
        offsets = self._parameter_offsets
        return [updates[offsets[i] : offsets[i + 1]].reshape(shape) for i, shape in enumerate(self.parameter_shapes)]

    def infer(
        self,
        params: Union[np.ndarray, Sequence[np.ndarray]],
        x: np.ndarray,
        y: np.ndarray,
        algorithm: str = "FixedPred",
        eta: float = 0.1,
        n: int = 20,
        vinit: Optional[Sequence[np.ndarray]] = None,
        threads: int = 1,
        free_input: bool = False,
    ) -> Inference:
        """:func:`infer` on this network (see there)."""
        flat = self._flat(params)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
        if algorithm not in _ALGORITHMS:
            raise ValueError(f'algorithm must be "FixedPred", "Strict" or "Exact", not {algorithm!r}')
        rows = x.shape[0] if x.ndim else 0
        beliefs = None
        if vinit is not None:
            if algorithm != "Strict":
                raise ValueError("vinit (initial beliefs) is Strict's; FixedPred and Exact start from vhat")
            beliefs = _hidden_beliefs(vinit, self, rows, flat.dtype)
        results, updates, outcome = self._run(flat, x, y, algorithm, eta, n, free_input, beliefs, threads)
        vhat, v, epsilon, dldy = self._sections(results, rows)
        loss, iterations, residual, energy, converged = outcome
        return Inference(
            vhat=vhat,
            v=v,
            epsilon=epsilon,
            loss=loss,
            dldy=dldy,
            updates=self._updates(updates),
            report=Report(iterations, residual, energy, converged),
        )

    def safe_step_size(
        self,
        params: Union[np.ndarray, Sequence[np.ndarray]],
        x: np.ndarray,
        y: np.ndarray,
        margin: float = 0.9,
        iterations: int = 200,
        tolerance: float = 1e-8,
        loss_curvature: bool = True,
    ) -> StepSize:
        """:func:`safe_step_size` on this network (see there)."""
        flat = self._flat(params)
        step, lambda_max, count = self._native.safe_step_size(
            flat, x, y, float(margin), int(iterations), float(tolerance), bool(loss_curvature)
        )
        return StepSize(step, lambda_max, count)


def _line_aligned(length: int, dtype: Any) -> np.ndarray:
    """An uninitialised array of `length` values starting on a 64-byte boundary (the
    kernels' 32-byte vector stores then never straddle two cache lines)."""
    itemsize = np.dtype(dtype).itemsize
    storage = np.empty(length + 64 // itemsize, dtype=dtype)
    offset = (-storage.ctypes.data % 64) // itemsize
    return storage[offset : offset + length]


def _hidden_beliefs(vinit: Sequence[np.ndarray], network: Network, rows: int, dtype: Any) -> np.ndarray:
    """Torch2PC's ``vinit`` (``v[0..L]``) as the flat hidden beliefs ``v[1..L-1]``."""
    vinit = list(vinit)
    depth = network.depth
    if len(vinit) != depth + 1:
        raise ValueError(f"vinit has {len(vinit)} entries; it lists v[0..L], {depth + 1} for this network")
    pieces = []
    for layer in range(1, depth):
        array = np.asarray(vinit[layer])
        expected = (rows,) + network.activation_shapes[layer]
        if array.shape != expected:
            raise ValueError(f"vinit[{layer}] has shape {array.shape}, expected {expected}")
        pieces.append(array.astype(dtype, copy=False).reshape(-1))
    if not pieces:
        return np.empty(0, dtype=dtype)
    return np.concatenate(pieces)


def _network(layers: Union[Network, Sequence[LayerSpec]], x: Any, loss: str) -> Network:
    if isinstance(layers, Network):
        return layers
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    if x.ndim not in (2, 4):
        raise ValueError(f"x has shape {x.shape}; inputs are (rows, features) or (rows, channels, height, width)")
    return Network(layers, x.shape[1:], loss)


def infer(
    layers: Union[Network, Sequence[LayerSpec]],
    params: Union[np.ndarray, Sequence[np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    algorithm: str = "FixedPred",
    eta: float = 0.1,
    n: int = 20,
    vinit: Optional[Sequence[np.ndarray]] = None,
    loss: str = "mse",
    threads: int = 1,
    free_input: bool = False,
) -> Inference:
    """One predictive-coding inference step (Torch2PC's ``PCInfer``) on numpy arrays.

    Runs the forward pass, the relaxation (``algorithm``, step size ``eta``, ``n``
    iterations; none for Exact) and the parameter updates, on pc's own SIMD kernels, with
    the GIL released.

    Args:
        layers: A :class:`Network`, or its description (see :class:`Network`).
        params: The parameter arrays in PyTorch's layout, weight (``out x in``, or
            ``out x in x kh x kw``) then bias for every linear/conv2d op in order; or one flat
            float array of all of them in that order (read in place, no copy; see
            :meth:`Network.flatten_parameters`). Their dtype, float32 or float64, is the
            computation's.
        x: Inputs, ``(rows, features)`` or ``(rows, channels, height, width)``, C-contiguous,
            the parameters' dtype (read in place).
        y: Targets: for MSE ``(rows, outputs)`` in the parameters' dtype; for cross-entropy
            ``(rows,)`` integer class indices.
        algorithm: ``"FixedPred"``, ``"Strict"`` or ``"Exact"``.
        eta: Step size, in ``(0, 2)`` (unused by Exact).
        n: Iterations (unused by Exact).
        vinit: Strict only: beliefs ``v[0..L]`` to start from (Torch2PC's ``vinit``; only the
            hidden ones ``v[1..L-1]`` are read). Default: the feedforward values.
        loss: ``"mse"``, ``"mse_sum"`` or ``"cross_entropy"`` (ignored when ``layers`` is a
            :class:`Network`, which has its own).
        threads: Threads for the batch's row blocks (128 rows each): 1 runs on the calling
            thread, 0 uses every core. Results are the same bits for any count.
        free_input: FixedPred only: let the input belief ``v[0]`` relax too, as Torch2PC's
            FixedPred does (``epsilon[0]`` then tends to dLoss/dx; costs layer 1's input
            VJP every iteration). Default: clamped, ``v[0] = x``.

    Returns:
        An :class:`Inference`: ``vhat``, ``v``, ``epsilon``, ``loss``, ``dldy``, ``updates``
        and the ``report``.

    Raises:
        TypeError: an argument of the wrong type or dtype (a list for ``x``, float64 ``x``
            with float32 parameters, float class labels, ...).
        ValueError: shapes that do not fit the network, non-contiguous arrays, NaN or
            infinite values, hyperparameters out of range, a diverged Strict relaxation
            (pc's own error text).
    """
    network = _network(layers, x, loss)
    return network.infer(params, x, y, algorithm, eta, n, vinit, threads, free_input)


def safe_step_size(
    layers: Union[Network, Sequence[LayerSpec]],
    params: Union[np.ndarray, Sequence[np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    loss: str = "mse",
    margin: float = 0.9,
    iterations: int = 200,
    tolerance: float = 1e-8,
    loss_curvature: bool = True,
) -> StepSize:
    """A step size at which Strict relaxation is stable for this batch.

    Estimates, by power iteration on Hessian-vector products, the largest curvature
    ``lambda_max`` of the Strict energy in the hidden beliefs at the feedforward values
    (input clamped; the largest over the samples) and returns
    ``margin * 2 / max(lambda_max, 1)``.

    Args:
        layers, params, x, y, loss: as for :func:`infer`.
        margin: In ``(0, 1)``.
        iterations: Most power iterations (at least 1).
        tolerance: Stop once the estimate changes by at most this fraction.
        loss_curvature: Include the loss's own curvature in the last block.

    Returns:
        A :class:`StepSize` (``step_size``, ``lambda_max``, ``iterations``).

    Raises:
        TypeError, ValueError: as :func:`infer`.
    """
    network = _network(layers, x, loss)
    return network.safe_step_size(params, x, y, margin, iterations, tolerance, loss_curvature)
