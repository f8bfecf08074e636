# Smoke run of `pc-bench reproduce --quick` (a few seconds once built): every CSV, figure and
# report.md is written, text renders into the PNGs' font, and two runs give the same CSV
# bytes (runtime.csv holds wall-clock times and is excluded from that check).
set -euo pipefail
cargo build --release -p pcnet-bench
bin="${CARGO_TARGET_DIR:-target}/release/pc-bench"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" reproduce --quick --out "$out/a" > "$out/a.txt"
"$bin" reproduce --quick --out "$out/b" > "$out/b.txt"
for stem in fig1_strict fig2_strict_vs_n fig3_fixed_pred fig4_fixed_pred_vs_n fig6_fixed_pred_exact runtime; do
    for ext in csv svg png; do
        test -s "$out/a/$stem.$ext" || { echo "missing $stem.$ext"; exit 1; }
    done
done
test -s "$out/a/report.md" || { echo "missing report.md"; exit 1; }
grep -q "= binomial to 3 decimals" "$out/a.txt" || { echo "FixedPred (0.1, 20) errors are not the binomial constants"; cat "$out/a.txt"; exit 1; }
grep -q "curves identical to 6 digits" "$out/a.txt" || { echo "FixedPred (1, L) and backprop curves differ"; cat "$out/a.txt"; exit 1; }
for f in "$out"/a/*.csv; do
    name=$(basename "$f")
    [ "$name" = runtime.csv ] && continue
    cmp "$f" "$out/b/$name" || { echo "$name differs between two runs with the same seed"; exit 1; }
done
echo "reproduce --quick: all files written, CSVs identical across runs"
