#!/usr/bin/env python3
"""Torch2PC-style PyTorch baseline for `pc-bench speed`.

Times one PCInfer-equivalent call (forward pass, relaxation, parameter gradients written
into .grad; no optimizer step) the way Torch2PC's loops compute it: one
`torch.autograd.functional.vjp` per layer and iteration, as in DESIGN.md section 2 and
tests/data/torch2pc/FORMAT.md. `--algorithm exact` times a plain `loss.backward()`
(the backprop baseline). Same flags and the same JSON keys as `pc-bench speed`.

This is an independent re-implementation written for timing, not Torch2PC itself:
  * fixed-pred: n iterations; each computes epsilon_L = dLoss/dy and, for every layer from
    the top down, epsilon_l = vhat_l - v_l and a VJP of layer l+1 at vhat_l, then moves
    v_l += eta (epsilon_l - vjp). As Torch2PC, the input belief v_0 moves too (so layer 1's
    input VJP is computed every iteration).
  * strict: n iterations; each computes epsilon_L = dLoss/dy at f_L(v_{L-1}),
    epsilon_l = f_l(v_{l-1}) - v_l, then moves the hidden beliefs with VJPs at the current
    beliefs; the input stays clamped.
  * parameter gradients: for each layer, f_l(input).backward(epsilon_l) with input vhat_{l-1}
    (fixed-pred) or the final belief v_{l-1} (strict).

Install PyTorch in a virtual environment outside the repository:
    python3 -m venv /work/venv && /work/venv/bin/pip install torch
and run with /work/venv/bin/python.
"""
import argparse
import json
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402
from torch import nn  # noqa: E402

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="784-256-256-10")
    p.add_argument("--hidden", default="relu", choices=sorted(ACTIVATIONS))
    p.add_argument("--loss", default="cross-entropy", choices=["cross-entropy", "mse"])
    p.add_argument("--algorithm", default="fixed-pred",
                   choices=["exact", "fixed-pred", "fixed_pred", "strict"])
    p.add_argument("--eta", type=float, default=0.1)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="f32", choices=["f32", "f64"])
    p.add_argument("--calls", type=int, default=30)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    args.algorithm = args.algorithm.replace("_", "-")
    args.calls = max(args.calls, 30)
    return args


def build(args, dtype):
    widths = [int(w) for w in args.model.split("-")]
    torch.manual_seed(0)
    layers = []
    for l in range(len(widths) - 1):
        act = ACTIVATIONS[args.hidden]() if l + 2 < len(widths) else nn.Identity()
        layers.append(nn.Sequential(nn.Linear(widths[l], widths[l + 1]), act))
    model = nn.Sequential(*layers).to(dtype)
    x = torch.rand(args.batch, widths[0], dtype=dtype)
    if args.loss == "cross-entropy":
        y = torch.arange(args.batch) * 7 % widths[-1]
        loss_fn = nn.CrossEntropyLoss()
    else:
        y = torch.rand(args.batch, widths[-1], dtype=dtype) * 2 - 1
        loss_fn = nn.MSELoss()
    return widths, model, x, y, loss_fn


def backprop(model, x, y, loss_fn):
    model.zero_grad(set_to_none=False)
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss


def output_gradient(loss_fn, out, y):
    out = out.detach().requires_grad_(True)
    loss = loss_fn(out, y)
    (grad,) = torch.autograd.grad(loss, out)
    return loss.detach(), grad


def parameter_gradients(model, inputs, epsilon):
    """What Torch2PC writes into .grad: the VJP of each layer w.r.t. its parameters."""
    model.zero_grad(set_to_none=False)
    for layer, module in enumerate(model):
        out = module(inputs[layer].detach())
        out.backward(epsilon[layer + 1])


def fixed_pred(model, x, y, loss_fn, eta, n):
    depth = len(model)
    with torch.no_grad():
        vhat = [x]
        for module in model:
            vhat.append(module(vhat[-1]))
    loss, dldy = output_gradient(loss_fn, vhat[-1], y)
    v = [t.clone() for t in vhat]
    epsilon = [torch.zeros_like(t) for t in vhat]
    for _ in range(n):
        epsilon[depth] = dldy
        for layer in reversed(range(depth)):
            epsilon[layer] = vhat[layer] - v[layer]
            _, pulled = torch.autograd.functional.vjp(model[layer], vhat[layer], epsilon[layer + 1])
            v[layer] = v[layer] + eta * (epsilon[layer] - pulled)
    parameter_gradients(model, vhat, epsilon)
    return loss


def strict(model, x, y, loss_fn, eta, n):
    depth = len(model)
    with torch.no_grad():
        vhat = [x]
        for module in model:
            vhat.append(module(vhat[-1]))
    loss, _ = output_gradient(loss_fn, vhat[-1], y)
    v = [t.clone() for t in vhat]
    epsilon = [torch.zeros_like(t) for t in vhat]
    for _ in range(n):
        with torch.no_grad():
            top = model[depth - 1](v[depth - 1])
        _, epsilon[depth] = output_gradient(loss_fn, top, y)
        with torch.no_grad():
            for layer in range(1, depth):
                epsilon[layer] = model[layer - 1](v[layer - 1]) - v[layer]
        for layer in range(1, depth):
            _, pulled = torch.autograd.functional.vjp(model[layer], v[layer], epsilon[layer + 1])
            v[layer] = v[layer] + eta * (epsilon[layer] - pulled)
    parameter_gradients(model, v, epsilon)
    return loss


def time_calls(calls, call):
    start = time.perf_counter()
    warm = 0
    while warm < 3 or (time.perf_counter() - start < 0.2 and warm < 1000):
        call()
        warm += 1
    seconds = []
    start, cpu_start = time.perf_counter(), time.process_time()
    # As pc-bench speed: at least `calls` calls and 0.5 s of wall-clock and processor time.
    while len(seconds) < calls or (
        (time.perf_counter() - start < 0.5 or time.process_time() - cpu_start < 0.5)
        and len(seconds) < 10000 and time.perf_counter() - start < 60
    ):
        begin = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - begin)
    cpu_mean = (time.process_time() - cpu_start) / len(seconds)
    return statistics.median(seconds), min(seconds), len(seconds), cpu_mean


def useful_flops(widths, batch, algorithm, n):
    """The same count as `pc-bench speed` (see pc-bench/src/speed.rs)."""
    products = [2.0 * batch * a * b for a, b in zip(widths, widths[1:])]
    total, above_first = sum(products), sum(products) - products[0]
    if algorithm == "exact":
        return 3 * total - products[0]
    if algorithm == "fixed-pred":
        return total + n * above_first + total
    return total + n * 2 * above_first + total


def main():
    args = parse()
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.dtype == "f64" else torch.float32
    widths, model, x, y, loss_fn = build(args, dtype)
    if args.algorithm == "exact":
        call = lambda: backprop(model, x, y, loss_fn)
    elif args.algorithm == "fixed-pred":
        call = lambda: fixed_pred(model, x, y, loss_fn, args.eta, args.n)
    else:
        call = lambda: strict(model, x, y, loss_fn, args.eta, args.n)
    median_s, min_s, calls, cpu_mean_s = time_calls(args.calls, call)
    flops = useful_flops(widths, args.batch, args.algorithm, args.n)
    result = {
        "implementation": "torch2pc-style pytorch " + torch.__version__,
        "model": args.model, "hidden": args.hidden, "loss": args.loss.replace("-", "_"),
        "algorithm": args.algorithm.replace("-", "_"), "eta": args.eta, "n": args.n,
        "batch": args.batch, "threads": args.threads, "dtype": args.dtype, "calls": calls,
        "median_s": median_s, "min_s": min_s,
        "samples_per_s": args.batch / median_s, "gflops": flops / median_s / 1e9,
        "cpu_mean_s": cpu_mean_s,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"torch2pc-style: {args.model} {args.hidden} {args.loss} {args.algorithm} "
              f"eta {args.eta} n {args.n} batch {args.batch} threads {args.threads} {args.dtype}")
        print(f"  median {median_s:.3e} s  min {min_s:.3e} s  ({calls} calls)  "
              f"{result['samples_per_s']:.0f} samples/s  {result['gflops']:.1f} useful GFLOP/s")
        print(f"  processor time per call {cpu_mean_s:.3e} s")


if __name__ == "__main__":
    sys.exit(main())
