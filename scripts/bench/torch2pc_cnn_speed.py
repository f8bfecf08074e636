#!/usr/bin/env python3
"""Times Torch2PC's loops on the paper's MNIST CNN (paper-mnist-cnn), for comparison with
`pc-bench speed --model paper-mnist-cnn`.

The loops follow Torch2PC's PCInfer (Rosenbaum 2022): FixedPred and Strict relax with
`torch.autograd.functional.vjp` per layer and iteration, then write every layer's
parameter gradient (the VJP with its error) into `.grad`; Exact is the forward pass plus
`loss.backward()`. Written from the algorithm's description (DESIGN.md section 2), not
copied. Prints one JSON object per configuration: median and minimum seconds over the
timed calls after a warm-up.

usage: torch2pc_cnn_speed.py [--batch 300] [--threads 1] [--calls 30]
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def mnist_cnn():
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 10, 3), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(10, 5, 3), nn.ReLU(), nn.Flatten()),
        nn.Sequential(nn.Linear(605, 50), nn.ReLU()),
        nn.Sequential(nn.Linear(50, 30), nn.ReLU()),
        nn.Sequential(nn.Linear(30, 10)),
    )


def forward_values(model, x):
    vhat = [x]
    with torch.no_grad():
        for layer in model:
            vhat.append(layer(vhat[-1]))
    return vhat


def output_gradient(loss_fn, output, y):
    output = output.detach().requires_grad_(True)
    loss = loss_fn(output, y)
    (grad,) = torch.autograd.grad(loss, output)
    return loss.detach(), grad


def set_parameter_grads(model, inputs, errors):
    """`.grad` of layer l = VJP of f_l w.r.t. its parameters at `inputs[l]` with `errors[l+1]`."""
    for l, layer in enumerate(model):
        params = list(layer.parameters())
        if not params:
            continue
        out = layer(inputs[l].detach())
        grads = torch.autograd.grad(out, params, errors[l + 1])
        for p, g in zip(params, grads):
            p.grad = g


def fixed_pred(model, loss_fn, x, y, eta, n):
    depth = len(model)
    vhat = forward_values(model, x)
    loss, dldy = output_gradient(loss_fn, vhat[-1], y)
    v = [t.clone() for t in vhat]
    eps = [torch.zeros_like(t) for t in vhat]
    eps[-1] = dldy
    for _ in range(n):
        for l in reversed(range(depth)):
            eps[l] = vhat[l] - v[l]
            _, pulled = torch.autograd.functional.vjp(model[l], vhat[l], eps[l + 1])
            v[l] = v[l] + eta * (eps[l] - pulled)
    set_parameter_grads(model, vhat, eps)
    return loss


def strict(model, loss_fn, x, y, eta, n):
    depth = len(model)
    vhat = forward_values(model, x)
    loss, _ = output_gradient(loss_fn, vhat[-1], y)
    v = [t.clone() for t in vhat]
    eps = [torch.zeros_like(t) for t in vhat]
    for _ in range(n):
        with torch.no_grad():
            predictions = [None] + [model[l](v[l]) for l in range(depth)]
        _, eps[-1] = output_gradient(loss_fn, predictions[-1], y)
        for l in range(1, depth):
            eps[l] = predictions[l] - v[l]
        for l in range(1, depth):
            _, pulled = torch.autograd.functional.vjp(model[l], v[l], eps[l + 1])
            v[l] = v[l] + eta * (eps[l] - pulled)
    set_parameter_grads(model, v, eps)
    return loss


def exact(model, loss_fn, x, y):
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss.detach()


def time_calls(call, calls):
    start = time.perf_counter()
    warm = 0
    while warm < 3 or (time.perf_counter() - start < 0.2 and warm < 1000):
        call()
        warm += 1
    seconds = []
    start = time.perf_counter()
    while len(seconds) < calls or (time.perf_counter() - start < 0.5 and len(seconds) < 10000):
        begin = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - begin)
    return statistics.median(seconds), min(seconds), len(seconds)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = mnist_cnn().float()
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    depth = len(model)
    configs = [
        ("fixed_pred", 1.0, depth, lambda: fixed_pred(model, loss_fn, x, y, 1.0, depth)),
        ("strict", 0.1, 20, lambda: strict(model, loss_fn, x, y, 0.1, 20)),
        ("exact", None, 0, lambda: exact(model, loss_fn, x, y)),
    ]
    for name, eta, n, call in configs:
        median, fastest, calls = time_calls(call, args.calls)
        print(json.dumps({
            "implementation": "torch " + torch.__version__,
            "model": "paper-mnist-cnn",
            "algorithm": name, "eta": eta, "n": n,
            "batch": args.batch, "threads": args.threads, "dtype": "f32",
            "calls": calls, "median_s": median, "min_s": fastest,
        }))


if __name__ == "__main__":
    main()
