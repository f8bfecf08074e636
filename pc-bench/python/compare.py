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
    /work/venv/bin/python pc-bench/python/compare.py --repeat 3   # + median of 3 tables

With `--repeat N` the whole table runs N times, one after the other, and a summary
follows: per configuration the median of the N pc medians, the median of the N PyTorch
medians, their ratio, and each run's own ratio (on a shared machine one table run can
catch a busy minute; the median of several is the figure to quote).

Every table carries its own ceiling, measured in the same run on the same thread count:
`pc-bench peak` (pc's f32 1024 x 1024 x 1024 product, on the kernel family pc-bench runs:
PC_ISA, else the best detected) and `torch.mm` on the same product, printed with their
ratio `pc peak / torch.mm` before the table (and again after it). pc's kernel family is
named in the header; `PC_ISA=avx2 compare.py ...` measures another one.

Without PyTorch (`import torch` fails) it prints pc's times only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ALGORITHMS = [
    ("exact", 0.1, 20, "Exact vs loss.backward()"),
    ("fixed-pred", 1.0, 3, "FixedPred eta 1, n 3"),
    ("fixed-pred", 0.1, 20, "FixedPred eta 0.1, n 20"),
    ("strict", 0.1, 20, "Strict eta 0.1, n 20"),
]


TORCH_MM = """
import json, statistics, sys, time, torch
threads, size, calls = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
generator = torch.Generator().manual_seed(0)
a = torch.rand(size, size, generator=generator) * 2 - 1
b = torch.rand(size, size, generator=generator) * 2 - 1
c = torch.empty(size, size)
for _ in range(5):
    torch.mm(a, b, out=c)
seconds = []
for _ in range(calls):
    start = time.perf_counter()
    torch.mm(a, b, out=c)
    seconds.append(time.perf_counter() - start)
median = statistics.median(seconds)
print(json.dumps({"implementation": "torch.mm", "size": size, "threads": threads,
                  "median_s": median, "min_s": min(seconds),
                  "gflops": 2 * size ** 3 / median / 1e9, "torch": torch.__version__}))
"""


def ceiling(args, have_torch):
    """pc peak and torch.mm (f32, 1024^3) on the table's thread count, and their ratio."""
    peak = run([args.pcnet_bench, "peak", "--json"])
    if args.threads == 1:
        pc_gflops, pc_threads = peak["gflops_1_thread"], 1
    else:
        pc_gflops, pc_threads = peak["gflops_all_threads"], peak["threads"]
    text = (f"ceiling (f32 {peak['size']}^3, {pc_threads} thread(s)): pc peak "
            f"{pc_gflops:.1f} GFLOP/s ({peak.get('isa', '?')} kernels)")
    if pc_threads != args.threads:
        text += f" [pc peak runs 1 or all {pc_threads} threads, not {args.threads}]"
    torch = None
    if have_torch:
        torch = run([args.python, "-c", TORCH_MM, str(pc_threads), str(peak["size"]), "30"])
        text += (f", torch.mm {torch['gflops']:.1f} GFLOP/s (torch {torch['torch']}); "
                 f"pc peak / torch.mm = {pc_gflops / torch['gflops']:.2f}")
    return text, {"pc_peak": peak, "torch_mm": torch}


def run(command):
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_bin = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "pc-bench")
    p.add_argument("--pc-bench", dest="pcnet_bench", default=default_bin,
                   help="path of the pc-bench binary")
    p.add_argument("--python", default=sys.executable, help="python with torch installed")
    p.add_argument("--model", default="784-256-256-10")
    p.add_argument("--hidden", default="relu")
    p.add_argument("--loss", default="cross-entropy")
    p.add_argument("--dtype", default="f32")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    p.add_argument("--json", action="store_true", help="also print every result as JSON")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the whole table this many times and summarise (median of medians)")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    try:
        subprocess.run([args.python, "-c", "import torch"], check=True, capture_output=True)
        have_torch = True
    except (subprocess.CalledProcessError, FileNotFoundError):
        have_torch = False
        print("PyTorch not found: printing pc's times only", file=sys.stderr)
    ceiling_text, ceiling_json = ceiling(args, have_torch)
    print(ceiling_text, flush=True)
    if args.json:
        print(json.dumps(ceiling_json))
    family = run([args.pcnet_bench, "speed", "--model", "4-2", "--batch", "1", "--json"]).get("isa", "?")
    print(f"model {args.model} {args.hidden} {args.loss} {args.dtype}, {args.threads} thread(s), "
          f"pc on the {family} kernels; ratio = PyTorch median / pc median")
    print(f"{'batch':>5}  {'configuration':<26} {'pc median':>11} {'pc min':>11} "
          f"{'pc GFLOP/s':>10} {'torch median':>12} {'ratio':>7} "
          f"{'pc cpu':>10} {'torch cpu':>10} {'cpu ratio':>9}")
    results = {}
    for repetition in range(args.repeat):
        if args.repeat > 1:
            print(f"run {repetition + 1} of {args.repeat}", flush=True)
        for batch in args.batches:
            for algorithm, eta, n, label in ALGORITHMS:
                flags = ["--model", args.model, "--hidden", args.hidden, "--loss", args.loss,
                         "--algorithm", algorithm, "--eta", str(eta), "--n", str(n),
                         "--batch", str(batch), "--threads", str(args.threads),
                         "--dtype", args.dtype, "--json"]
                pc = run([args.pcnet_bench, "speed", *flags])
                torch = None
                if have_torch:
                    torch = run([args.python, os.path.join(HERE, "torch2pc_baseline.py"), *flags])
                results.setdefault((batch, label), []).append((pc, torch))
                torch_text = f"{torch['median_s']:12.3e}" if torch else f"{'-':>12}"
                ratio = f"{torch['median_s'] / pc['median_s']:7.1f}" if torch else f"{'-':>7}"
                pc_cpu, torch_cpu = pc.get("cpu_mean_s"), torch and torch.get("cpu_mean_s")
                cpu_text = f"{pc_cpu:10.3e}" if pc_cpu else f"{'-':>10}"
                torch_cpu_text = f"{torch_cpu:10.3e}" if torch_cpu else f"{'-':>10}"
                cpu_ratio = (f"{torch_cpu / pc_cpu:9.1f}" if (pc_cpu and torch_cpu)
                             else f"{'-':>9}")
                print(f"{batch:>5}  {label:<26} {pc['median_s']:11.3e} {pc['min_s']:11.3e} "
                      f"{pc['gflops']:10.1f} {torch_text} {ratio} {cpu_text} {torch_cpu_text} "
                      f"{cpu_ratio}", flush=True)
                if args.json:
                    print(json.dumps({"pc": pc, "torch": torch}))
    if args.repeat > 1:
        print(f"summary of {args.repeat} runs: median of the pc medians, of the PyTorch "
              "medians, their ratio; each run's ratio")
        for (batch, label), runs in results.items():
            pc_median = statistics.median(pc["median_s"] for pc, _ in runs)
            pc_min = min(pc["min_s"] for pc, _ in runs)
            if all(torch for _, torch in runs):
                torch_median = statistics.median(torch["median_s"] for _, torch in runs)
                per_run = " ".join(f"{torch['median_s'] / pc['median_s']:.2f}"
                                   for pc, torch in runs)
                torch_text = f"{torch_median:12.3e} {torch_median / pc_median:7.2f}  ({per_run})"
            else:
                torch_text = f"{'-':>12} {'-':>7}"
            print(f"{batch:>5}  {label:<26} {pc_median:11.3e} {pc_min:11.3e} {torch_text}",
                  flush=True)

    # The ceiling again, after the table: a busy machine shows up as two different lines.
    print(ceiling(args, have_torch)[0], flush=True)


if __name__ == "__main__":
    main()
