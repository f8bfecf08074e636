"""pc_kernels.torch: a drop-in for Torch2PC's ``PCInfer`` on pc's kernels.

Replace ``from TorchSeq2PC import PCInfer`` with ``from pc_kernels.torch import PCInfer``:
the signature, the return values ``(vhat, Loss, dLdy, v, epsilon)`` and the side effect
(every parameter's ``.grad`` is written with the predictive-coding update) are
Torch2PC's. This is the only module of the package that imports torch.

    >>> import torch, torch.nn as nn
    >>> from pc_kernels.torch import PCInfer
    >>> model = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.Tanh()), nn.Linear(8, 3))
    >>> X, Y = torch.randn(5, 4), torch.tensor([0, 2, 1, 1, 0])
    >>> vhat, Loss, dLdy, v, epsilon = PCInfer(model, nn.CrossEntropyLoss(), X, Y, "Strict")
    >>> model[0][0].weight.grad.shape
    torch.Size([8, 4])

What differs from Torch2PC:

* The returned tensors carry no autograd graph (``Loss.backward()`` is not needed: the
  ``.grad`` are written, as Torch2PC writes them).
* Strict starts from ``vinit`` when one is given (Torch2PC accepts it and ignores it).
* On the first call with a model, its parameters are moved (same values, same
  ``Parameter`` objects) into one contiguous buffer, so later calls read them in place.
* The returned tensors and the ``.grad`` are views of two buffers the model keeps per
  input shape (allocated on the first call with that shape, for the last four shapes):
  the next call with the same model and shape overwrites them in place, so ``clone()``
  what must outlive it, or take ``Loss.item()`` (Torch2PC returns fresh tensors).
* Keyword-only extras: ``threads`` (row blocks of 128 on that many threads; the same bits
  for any count) and ``free_input`` (FixedPred's input belief relaxes as in Torch2PC by
  default; ``False`` clamps it, which skips layer 1's input VJP in every iteration).
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from . import Network, _hidden_beliefs, _line_aligned

__all__ = ["PCInfer", "network_of"]

_ERR_TYPES = ("FixedPred", "Strict", "Exact")
_ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.Identity: "identity"}
_SUPPORTED = (
    "Linear, Conv2d, MaxPool2d, AvgPool2d, Flatten, ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, "
    "Identity, and nn.Sequential of them"
)


def _pair(value: Any) -> List[int]:
    if isinstance(value, int):
        return [value, value]
    return [int(value[0]), int(value[1])]


def _describe(module: nn.Module, where: str, ops: List[Any], params: List[nn.Parameter]) -> None:
    kind = type(module)
    if kind is nn.Sequential:
        for index, child in enumerate(module):
            _describe(child, f"{where}[{index}]", ops, params)
        return
    if kind is nn.Linear:
        if module.bias is None:
            raise ValueError(f"{where}: Linear without bias is not supported (pc's linear ops have a bias)")
        ops.append({"op": "linear", "in": module.in_features, "out": module.out_features})
        params += [module.weight, module.bias]
    elif kind is nn.Conv2d:
        if module.bias is None:
            raise ValueError(f"{where}: Conv2d without bias is not supported")
        if isinstance(module.padding, str):
            raise ValueError(f"{where}: Conv2d padding={module.padding!r} is not supported; give it in pixels")
        for name, value, default in (
            ("groups", module.groups, 1),
            ("dilation", tuple(module.dilation), (1, 1)),
            ("padding_mode", module.padding_mode, "zeros"),
        ):
            if value != default:
                raise ValueError(f"{where}: Conv2d with {name}={value!r} is not supported (only {default!r})")
        ops.append(
            {
                "op": "conv2d",
                "in_channels": module.in_channels,
                "out_channels": module.out_channels,
                "kernel": _pair(module.kernel_size),
                "stride": _pair(module.stride),
                "padding": _pair(module.padding),
            }
        )
        params += [module.weight, module.bias]
    elif kind in (nn.MaxPool2d, nn.AvgPool2d):
        name = kind.__name__
        unsupported = [("padding", module.padding, 0), ("ceil_mode", module.ceil_mode, False)]
        if kind is nn.MaxPool2d:
            unsupported += [("dilation", module.dilation, 1), ("return_indices", module.return_indices, False)]
        else:
            unsupported += [("divisor_override", module.divisor_override, None)]
        for attribute, value, default in unsupported:
            if (_pair(value) != _pair(default)) if attribute in ("padding", "dilation") else (value != default):
                raise ValueError(f"{where}: {name} with {attribute}={value!r} is not supported")
        stride = module.stride if module.stride is not None else module.kernel_size
        ops.append({"op": name.lower(), "kernel": _pair(module.kernel_size), "stride": _pair(stride)})
    elif kind is nn.Flatten:
        if (module.start_dim, module.end_dim) != (1, -1):
            raise ValueError(f"{where}: Flatten(start_dim={module.start_dim}, end_dim={module.end_dim}) is not supported")
        ops.append("flatten")
    elif kind is nn.LeakyReLU:
        ops.append({"op": "leaky_relu", "negative_slope": float(module.negative_slope)})
    elif kind is nn.Softplus:
        if (module.beta, module.threshold) != (1, 20):
            raise ValueError(f"{where}: Softplus(beta={module.beta}, threshold={module.threshold}) is not supported")
        ops.append("softplus")
    elif kind in _ACTIVATIONS:
        ops.append(_ACTIVATIONS[kind])
    else:
        raise TypeError(f"{where}: {kind.__name__} is not supported by pc_kernels (supported: {_SUPPORTED})")


def _loss_name(LossFun: Any) -> str:
    if isinstance(LossFun, nn.MSELoss):
        if LossFun.reduction == "mean":
            return "mse"
        if LossFun.reduction == "sum":
            return "mse_sum"
        raise ValueError(f"MSELoss(reduction={LossFun.reduction!r}) is not supported (mean or sum)")
    if isinstance(LossFun, nn.CrossEntropyLoss):
        # The class weights are a buffer: read from _buffers, not through Module.__getattr__.
        weight = LossFun._buffers.get("weight") if "_buffers" in LossFun.__dict__ else LossFun.weight
        if LossFun.reduction != "mean" or weight is not None or LossFun.label_smoothing != 0.0:
            raise ValueError(
                "only CrossEntropyLoss() with reduction='mean', no class weights and no label smoothing is supported"
            )
        return "cross_entropy"
    raise TypeError(f"LossFun {type(LossFun).__name__} is not supported (nn.MSELoss() or nn.CrossEntropyLoss())")


class _Plan:
    """What one model needs across calls: its description, its parameters in order, the
    networks built for each input shape and loss, and the flat parameter buffer."""

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"model must be an nn.Sequential of layers (as Torch2PC expects), got {type(model).__name__}")
        if len(model) == 0:
            raise ValueError("model has no layers")
        self.modules: Tuple[nn.Module, ...] = tuple(model)
        self.layers: List[List[Any]] = []
        self.params: List[nn.Parameter] = []
        for index, layer in enumerate(model):
            ops: List[Any] = []
            _describe(layer, f"model[{index}]", ops, self.params)
            self.layers.append(ops)
        self.networks: Dict[Tuple[Any, ...], Network] = {}
        self.outputs: Dict[Tuple[Any, ...], _Outputs] = {}
        self.flat: Optional[torch.Tensor] = None
        self.flat_numpy: Optional[np.ndarray] = None
        self.pointers: List[int] = []
        self.shared = len({id(p) for p in self.params}) != len(self.params)
        self.grad_layout: List[Tuple[Tuple[int, ...], Tuple[int, ...], int]] = []
        offset = 0
        for p in self.params:
            self.grad_layout.append(_contiguous(tuple(p.shape), offset))
            offset += p.numel()

    def network(self, input_shape: Tuple[int, ...], loss: str) -> Network:
        key = (input_shape, loss)
        network = self.networks.get(key)
        if network is None:
            network = Network(self.layers, input_shape, loss)
            self.networks[key] = network
        return network

    def outputs_for(self, network: Network, rows: int, dtype: Any) -> "_Outputs":
        """The buffers and tensors of this model for `network`, `rows` and `dtype`, made
        on first use and kept (the last :data:`_KEPT_SHAPES` of them)."""
        key = (network, rows, dtype)
        outputs = self.outputs.get(key)
        if outputs is None:
            if len(self.outputs) >= _KEPT_SHAPES:
                del self.outputs[next(iter(self.outputs))]
            outputs = _Outputs(network, rows, dtype, self.grad_layout)
            self.outputs[key] = outputs
        return outputs

    def flat_parameters(self) -> np.ndarray:
        """The parameters as one flat array, read in place after the first call."""
        params = self.params
        if self.flat_numpy is not None:
            pointers = self.pointers
            for index, p in enumerate(params):
                if p.data_ptr() != pointers[index]:
                    break
            else:
                return self.flat_numpy
        if not params:
            return np.empty(0, dtype=np.float32)
        dtype = params[0].dtype
        for index, p in enumerate(params):
            if p.device.type != "cpu":
                raise ValueError(f"the model's parameters are on {p.device}; pc_kernels computes on the CPU (model.cpu())")
            if p.dtype != dtype:
                raise TypeError(f"the model mixes parameter dtypes {dtype} and {p.dtype}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"the model's parameters are {dtype}; pc_kernels computes in float32 or float64")
        if self.shared:
            # A parameter used twice cannot be one slice of the buffer: copy every call.
            return np.concatenate([p.detach().reshape(-1).numpy() for p in params])
        total = sum(p.numel() for p in params)
        flat = torch.empty(total, dtype=dtype)
        offset = 0
        with torch.no_grad():
            for p in params:
                count = p.numel()
                piece = flat[offset : offset + count]
                piece.copy_(p.detach().reshape(-1))
                p.data = piece.view_as(p)
                offset += count
        self.flat = flat
        self.flat_numpy = flat.numpy()
        self.pointers = [p.data_ptr() for p in params]
        return self.flat_numpy


#: The plan of each live model, by id(model), with a weak reference that drops the entry
#: when the model goes (a dict lookup by id is cheaper per call than a WeakKeyDictionary).
_PLANS: Dict[int, Tuple["weakref.ref[nn.Module]", _Plan]] = {}


def _plan(model: nn.Module) -> _Plan:
    key = id(model)
    entry = _PLANS.get(key)
    if entry is not None and entry[0]() is model:
        plan = entry[1]
        if plan.modules == tuple(model._modules.values()):
            return plan
    plan = _Plan(model)
    _PLANS[key] = (weakref.ref(model, lambda _, key=key: _PLANS.pop(key, None)), plan)
    return plan


def _contiguous(size: Tuple[int, ...], offset: int) -> Tuple[Tuple[int, ...], Tuple[int, ...], int]:
    """`(size, stride, offset)` of a C-contiguous view (one `as_strided`, the cheapest view)."""
    stride = []
    step = 1
    for extent in reversed(size):
        stride.append(step)
        step *= extent
    return tuple(size), tuple(reversed(stride)), offset


#: Row counts (with their networks and dtypes) whose buffers a model keeps: a training
#: loop's batch size and its last, shorter batch, with room for an evaluation batch.
_KEPT_SHAPES = 4


class _Outputs:
    """The two arrays one model's calls for one network, row count and dtype write into,
    allocated once, and the tensors :func:`PCInfer` hands out over them (made once too):
    a call then allocates nothing and creates no tensor."""

    __slots__ = ("results", "updates", "loss", "loss_tensor", "vhat_hidden", "v", "epsilon", "dldy", "grads")

    def __init__(
        self,
        network: Network,
        rows: int,
        dtype: Any,
        grad_layout: Sequence[Tuple[Tuple[int, ...], Tuple[int, ...], int]],
    ) -> None:
        self.results = _line_aligned(network._native.results_len(rows), dtype)
        self.updates = _line_aligned(network.parameter_len, dtype)
        self.loss = np.zeros((), dtype=dtype)
        self.loss_tensor = torch.from_numpy(self.loss)
        results = torch.from_numpy(self.results)
        base = results.storage_offset()
        views = []
        offset = 0
        # The results buffer: vhat_0..L, v_0..L, epsilon_0..L (rows x width each), dLoss/dy.
        for _ in range(3):
            for width, shape in zip(network._widths, network.activation_shapes):
                size, stride, _ = _contiguous((rows,) + shape, 0)
                views.append(results.as_strided(size, stride, base + offset))
                offset += rows * width
        size, stride, _ = _contiguous((rows,) + network.activation_shapes[-1], 0)
        self.dldy = results.as_strided(size, stride, base + offset)
        depth = network.depth
        self.vhat_hidden: List[torch.Tensor] = views[1 : depth + 1]
        self.v: List[torch.Tensor] = views[depth + 1 : 2 * depth + 2]
        self.epsilon: List[torch.Tensor] = views[2 * depth + 2 :]
        updates = torch.from_numpy(self.updates)
        base = updates.storage_offset()
        self.grads: List[torch.Tensor] = [
            updates.as_strided(size, stride, base + offset) for size, stride, offset in grad_layout
        ]


def network_of(model: nn.Module, X: torch.Tensor, LossFun: Any) -> Network:
    """The :class:`pc_kernels.Network` that :func:`PCInfer` runs for this model, input
    shape and loss (for :func:`pc_kernels.infer` or :func:`pc_kernels.safe_step_size`)."""
    return _plan(model).network(tuple(X.shape[1:]), _loss_name(LossFun))


def _explain(tensor: torch.Tensor, name: str, dtype: Optional[torch.dtype]) -> None:
    """Raises the named error for a tensor that is off the CPU, of another dtype than
    `dtype` or not contiguous; returns for one that is fine."""
    if not tensor.is_cpu:
        raise ValueError(f"{name} is on {tensor.device}; pc_kernels computes on the CPU ({name}.cpu())")
    if dtype is not None and tensor.dtype != dtype:
        raise TypeError(f"{name} is {tensor.dtype}; the model's parameters are {dtype}")
    if not tensor.is_contiguous():
        raise ValueError(f"{name} is not contiguous (a transposed or strided view?); pass {name}.contiguous()")


def _check_tensor(tensor: Any, name: str, dtype: Optional[torch.dtype], array_dtype: Any) -> np.ndarray:
    """The numpy view of a contiguous CPU tensor (`array_dtype`: the numpy dtype it must
    have, or None). Each torch call costs microseconds when the previous relaxation has
    evicted torch's code and data from the core's caches, so the fine case makes one,
    ``numpy()``, and checks the rest on the array; the checks that name the problem run
    only when something is off."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    try:
        array = tensor.numpy()
    except (TypeError, RuntimeError):
        _explain(tensor, name, dtype)
        # A CPU tensor of a numpy dtype that refused: it requires grad.
        array = tensor.detach().numpy()
    if (array_dtype is not None and array.dtype != array_dtype) or not array.flags.c_contiguous:
        _explain(tensor, name, dtype)
    return array


def PCInfer(
    model: nn.Sequential,
    LossFun: Any,
    X: torch.Tensor,
    Y: torch.Tensor,
    ErrType: str,
    eta: float = 0.1,
    n: Optional[int] = 20,
    vinit: Optional[Sequence[torch.Tensor]] = None,
    *,
    threads: int = 1,
    free_input: Optional[bool] = None,
) -> Tuple[List[torch.Tensor], torch.Tensor, torch.Tensor, List[Optional[torch.Tensor]], List[Optional[torch.Tensor]]]:
    """One predictive-coding inference step, as Torch2PC's ``PCInfer``.

    Args:
        model: An ``nn.Sequential`` of PC layers, each a module or an ``nn.Sequential`` of
            ``Linear``, ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten``, ``ReLU``,
            ``LeakyReLU``, ``Tanh``, ``Sigmoid``, ``Softplus``, ``Identity``; CPU,
            float32 or float64.
        LossFun: ``nn.MSELoss()`` (mean or sum) or ``nn.CrossEntropyLoss()``.
        X: Inputs, a contiguous CPU tensor of the parameters' dtype, ``(rows, features)`` or
            ``(rows, C, H, W)``; read in place.
        Y: Targets: for MSE like the output; for cross-entropy int64 class indices.
        ErrType: ``"FixedPred"``, ``"Strict"`` or ``"Exact"``.
        eta: Step size in ``(0, 2)``.
        n: Iterations (``None``: the depth, as Torch2PC's FixedPred).
        vinit: Strict only: beliefs ``v[0..L]`` to start from.
        threads: Threads for the row blocks (keyword only; 0: every core).
        free_input: FixedPred only: relax the input belief as Torch2PC does (default) or
            clamp it (``False``).

    Returns:
        ``(vhat, Loss, dLdy, v, epsilon)`` as Torch2PC: lists over layers ``0..L`` (``None``
        where Torch2PC leaves an entry undefined: ``v[0]`` and ``epsilon[0]`` for Exact,
        ``epsilon[0]`` for Strict), the loss as a 0-d tensor, and dLoss/dy. The tensors
        (all but ``vhat[0]``, which is ``X``; ``Loss`` too) and the ``.grad`` are views of
        buffers kept per model and input shape: the next call with the same model and
        shape overwrites them, so clone what must outlive it.

    Raises:
        TypeError: an unsupported module (named) or loss, a wrong dtype.
        ValueError: a CUDA or non-contiguous tensor, shapes that do not fit, NaN or infinite
            values, hyperparameters out of range (pc's own error text).
    """
    if ErrType not in _ERR_TYPES:
        raise ValueError('ErrType must be "FixedPred", "Strict", or "Exact"')
    plan = _plan(model)
    loss = _loss_name(LossFun)
    flat = plan.flat_parameters()
    dtype = plan.params[0].dtype if plan.params else X.dtype
    x = _check_tensor(X, "X", dtype, flat.dtype)
    if loss == "cross_entropy":
        y = _check_tensor(Y, "Y", None, None)
        if y.dtype.kind == "f":
            raise TypeError("Y must hold int64 class indices for CrossEntropyLoss (class probabilities are not supported)")
    else:
        y = _check_tensor(Y, "Y", dtype, flat.dtype)
    if x.ndim not in (2, 4):
        raise ValueError(f"X has shape {tuple(X.shape)}; inputs are (rows, features) or (rows, C, H, W)")
    network = plan.network(x.shape[1:], loss)
    if n is None:
        n = network.depth
    if free_input is None:
        free_input = ErrType == "FixedPred"
    rows = x.shape[0]
    beliefs = None
    if vinit is not None and ErrType == "Strict":
        beliefs = _hidden_beliefs([t.detach().cpu().numpy() for t in vinit], network, rows, flat.dtype)
    outputs = plan.outputs_for(network, rows, flat.dtype)
    outcome = network._run_into(
        flat, x, y, ErrType, eta, n, free_input, beliefs, threads, outputs.results, outputs.updates
    )
    depth = network.depth
    vhat: List[torch.Tensor] = [X] + outputs.vhat_hidden
    v: List[Optional[torch.Tensor]] = list(outputs.v)
    epsilon: List[Optional[torch.Tensor]] = list(outputs.epsilon)
    if ErrType == "Exact":
        v[0] = None
        epsilon[0] = None
    elif ErrType == "Strict":
        epsilon[0] = None
    elif n == 0:
        # Torch2PC's FixedPred computes no error below the output when it does not iterate.
        epsilon[:depth] = [None] * depth
    for p, grad in zip(plan.params, outputs.grads):
        if p.grad is not grad:
            p.grad = grad
    outputs.loss[()] = outcome[0]
    return vhat, outputs.loss_tensor, outputs.dldy, v, epsilon
