#!/usr/bin/env python3
"""Times pc_kernels.torch.PCInfer against Torch2PC's PCInfer and `pc-bench speed`.

The issue's configuration: 784-256-256-10, ReLU hidden layers, cross-entropy, float32, one
thread (torch.set_num_threads(1), pc threads=1), batches 1, 64 and 1024, FixedPred
(eta 0.1, n 20) and Strict (eta 0.1, n 20). Every time is the median wall-clock time of
one call, conversions and Python overhead included, after warm-up; all rows come from one
run of this script, so they were measured side by side.

Rows per configuration:

* `pc-bench speed`: the Rust batch runner alone (input clamped, as pc's default);
* `PCInfer clamped`: pc_kernels.torch.PCInfer(..., free_input=False), the same work as
  `pc-bench speed` (so the ratio pc-bench / this is what the binding keeps; target >= 0.8,
  and at batch 1 the difference is the binding's overhead per call; target < 20 us);
* `PCInfer drop-in`: pc_kernels.torch.PCInfer as a Torch2PC user calls it (FixedPred
  relaxes the input belief v[0] as Torch2PC does, one more input VJP of layer 1 per
  iteration; for Strict the same call as `clamped`);
* `Torch2PC`: Torch2PC's own PCInfer (needs its source: --torch2pc or TORCH2PC).

    /work/venv/bin/python pc-bench/python/bench_pcinfer.py --pc-bench target/release/pc-bench \
        --torch2pc /tmp/torch2pc
"""
import argparse
import importlib.util
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time


def median_seconds(call, min_calls, min_seconds, max_seconds=60.0):
    """Median seconds per call: at least `min_calls` calls and `min_seconds`, after warm-up
    (3 calls or 0.2 s)."""
    start = time.perf_counter()
    warm = 0
    while warm < 3 or (time.perf_counter() - start < 0.2 and warm < 1000):
        call()
        warm += 1
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or (
        time.perf_counter() - start < min_seconds and time.perf_counter() - start < max_seconds
    ):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return statistics.median(times), len(times)


def load_torch2pc(location):
    if not location:
        return None
    path = pathlib.Path(location)
    if path.is_dir():
        path = path / "TorchSeq2PC.py"
    spec = importlib.util.spec_from_file_location("TorchSeq2PC", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pc_bench_speed(binary, algorithm, eta, n, batch):
    command = [
        binary, "speed", "--model", "784-256-256-10", "--hidden", "relu", "--loss", "cross-entropy",
        "--algorithm", algorithm, "--eta", str(eta), "--n", str(n), "--batch", str(batch),
        "--threads", "1", "--dtype", "f32", "--json",
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_bin = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "pc-bench")
    parser.add_argument("--pc-bench", default=default_bin, help="path of the pc-bench binary")
    parser.add_argument("--torch2pc", default=os.environ.get("TORCH2PC"),
                        help="folder holding Torch2PC's TorchSeq2PC.py (default: $TORCH2PC)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time each row at least this long")
    parser.add_argument("--json", action="store_true", help="print one JSON object per row too")
    args = parser.parse_args()

    import torch
    from torch import nn

    from pc_kernels.torch import PCInfer

    torch.set_num_threads(1)
    torch2pc = load_torch2pc(args.torch2pc)
    cpu = "unknown processor"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"processor: {cpu}; torch {torch.__version__}, 1 thread; f32; 784-256-256-10 relu cross-entropy")

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Linear(784, 256), nn.ReLU()),
        nn.Sequential(nn.Linear(256, 256), nn.ReLU()),
        nn.Linear(256, 10),
    )
    loss_fun = nn.CrossEntropyLoss()
    configs = [("FixedPred", "fixed-pred", 0.1, 20), ("Strict", "strict", 0.1, 20)]
    header = f"{'batch':>5}  {'algorithm':<22} {'pc-bench':>10} {'clamped':>10} {'drop-in':>10} {'Torch2PC':>10}  {'keep':>5} {'overhead':>9} {'vs T2PC':>8}"
    print(header)
    print("-" * len(header))
    families = set()
    for batch in args.batches:
        X = torch.rand(batch, 784)
        Y = torch.tensor([(r * 7) % 10 for r in range(batch)])
        for err_type, flag, eta, n in configs:
            measured = pc_bench_speed(args.pc_bench, flag, eta, n, batch)
            native = measured["median_s"]
            families.add(measured.get("isa", "unknown"))
            clamped, _ = median_seconds(
                lambda: PCInfer(model, loss_fun, X, Y, err_type, eta, n, free_input=False), 30, args.min_seconds
            )
            drop_in, _ = median_seconds(lambda: PCInfer(model, loss_fun, X, Y, err_type, eta, n), 30, args.min_seconds)
            reference = None
            if torch2pc is not None:
                reference, _ = median_seconds(
                    lambda: torch2pc.PCInfer(model, loss_fun, X, Y, err_type, eta, n), 3, args.min_seconds
                )
            keep = native / clamped
            overhead = clamped - native
            speedup = reference / drop_in if reference is not None else None
            print(
                f"{batch:>5}  {err_type + f' {eta}, {n}':<22} {native * 1e6:>8.1f}us {clamped * 1e6:>8.1f}us "
                f"{drop_in * 1e6:>8.1f}us "
                + (f"{reference * 1e6:>8.0f}us" if reference is not None else f"{'-':>10}")
                + f"  {keep:>5.2f} {overhead * 1e6:>7.1f}us "
                + (f"{speedup:>7.1f}x" if speedup is not None else f"{'-':>8}")
            )
            if args.json:
                print(json.dumps({
                    "batch": batch, "algorithm": err_type, "eta": eta, "n": n, "pc_bench_s": native,
                    "pcinfer_clamped_s": clamped, "pcinfer_drop_in_s": drop_in, "torch2pc_s": reference,
                    "processor": cpu,
                }))
            sys.stdout.flush()
    print(f"kernel family (pc-bench speed's, and PCInfer's in this process): {', '.join(sorted(families))}")
    print("keep = pc-bench / PCInfer clamped (target >= 0.8); overhead = PCInfer clamped - pc-bench "
          "(target < 20 us at batch 1); vs T2PC = Torch2PC / PCInfer drop-in")


if __name__ == "__main__":
    main()
