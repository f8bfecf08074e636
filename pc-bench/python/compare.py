#!/usr/bin/env python3
"""Runs `pc-bench speed` and the Torch2PC-style PyTorch baseline side by side.

For each configuration of a table (the issue's target table by default: 784-256-256-10,
relu, cross-entropy, f32; batches 1, 64, 1024; exact vs loss.backward(), FixedPred eta 1
n 3, FixedPred eta 0.1 n 20, Strict eta 0.1 n 20) it runs both programs with the same
flags and `--json`, and prints both medians and the ratio PyTorch time / pc time, and the
same for the processor time per call (the figure to trust on a machine shared with other
work, where wall-clock times include waiting for a core).

    /work/venv/bin/python pc-bench/python/compare.py --pc-bench target/release/pc-bench
    /work/venv/bin/python pc-bench/python/compare.py --batches 256 1024 --threads 2

Without PyTorch (`import torch` fails) it prints pc's times only.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ALGORITHMS = [
    ("exact", 0.1, 20, "Exact vs loss.backward()"),
    ("fixed-pred", 1.0, 3, "FixedPred eta 1, n 3"),
    ("fixed-pred", 0.1, 20, "FixedPred eta 0.1, n 20"),
    ("strict", 0.1, 20, "Strict eta 0.1, n 20"),
]


def run(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_bin = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "pc-bench")
    p.add_argument("--pc-bench", default=default_bin, help="path of the pc-bench binary")
    p.add_argument("--python", default=sys.executable, help="python with torch installed")
    p.add_argument("--model", default="784-256-256-10")
    p.add_argument("--hidden", default="relu")
    p.add_argument("--loss", default="cross-entropy")
    p.add_argument("--dtype", default="f32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    p.add_argument("--json", action="store_true", help="also print every result as JSON")
    args = p.parse_args()
    try:
        subprocess.run([args.python, "-c", "import torch"], check=True, capture_output=True)
        have_torch = True
    except (subprocess.CalledProcessError, FileNotFoundError):
        have_torch = False
        print("PyTorch not found: printing pc's times only", file=sys.stderr)
    print(f"model {args.model} {args.hidden} {args.loss} {args.dtype}, {args.threads} thread(s); "
          "ratio = PyTorch median / pc median")
    print(f"{'batch':>5}  {'configuration':<26} {'pc median':>11} {'pc min':>11} "
          f"{'pc GFLOP/s':>10} {'torch median':>12} {'ratio':>7} "
          f"{'pc cpu':>10} {'torch cpu':>10} {'cpu ratio':>9}")
    for batch in args.batches:
        for algorithm, eta, n, label in ALGORITHMS:
            flags = ["--model", args.model, "--hidden", args.hidden, "--loss", args.loss,
                     "--algorithm", algorithm, "--eta", str(eta), "--n", str(n),
                     "--batch", str(batch), "--threads", str(args.threads),
                     "--dtype", args.dtype, "--json"]
            pc = run([args.pc_bench, "speed", *flags])
            torch = None
            if have_torch:
                torch = run([args.python, os.path.join(HERE, "torch2pc_baseline.py"), *flags])
            torch_text = f"{torch['median_s']:12.3e}" if torch else f"{'-':>12}"
            ratio = f"{torch['median_s'] / pc['median_s']:7.1f}" if torch else f"{'-':>7}"
            pc_cpu, torch_cpu = pc.get("cpu_mean_s"), torch and torch.get("cpu_mean_s")
            cpu_text = f"{pc_cpu:10.3e}" if pc_cpu else f"{'-':>10}"
            torch_cpu_text = f"{torch_cpu:10.3e}" if torch_cpu else f"{'-':>10}"
            cpu_ratio = f"{torch_cpu / pc_cpu:9.1f}" if (pc_cpu and torch_cpu) else f"{'-':>9}"
            print(f"{batch:>5}  {label:<26} {pc['median_s']:11.3e} {pc['min_s']:11.3e} "
                  f"{pc['gflops']:10.1f} {torch_text} {ratio} {cpu_text} {torch_cpu_text} "
                  f"{cpu_ratio}", flush=True)
            if args.json:
                print(json.dumps({"pc": pc, "torch": torch}))


if __name__ == "__main__":
    main()
