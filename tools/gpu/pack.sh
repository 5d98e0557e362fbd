#!/usr/bin/env bash
# Builds the CUDA test and benchmark binaries here (no GPU needed) and packs them, compressed,
# into gpu-out/ for a machine with a GPU and no cargo; tools/gpu/run.sh runs them there.
#
#   tools/gpu/pack.sh            # then carry gpu-out/ and run: bash gpu-out/run.sh
#   BENCH_FEATURES=profile-host tools/gpu/pack.sh   # the benchmark also prints host time per phase
#   BENCH_FEATURES=tune-launch tools/gpu/pack.sh    # then LAZY_GRAPH_TUNE_ROW_GROUP=256 forces row kernels' threads per row
#   PACK_TESTS="cuda_graph grad" tools/gpu/pack.sh  # only these test binaries
#   PACK_BENCH=0 tools/gpu/pack.sh                  # no benchmark binaries
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo fetch -q
eval "$(tools/cuda-toolchain.sh)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/lazy-graph-cuda-target}
# The random-graph test is compiled with 1,000 functions (LAZY_GRAPH_RANDOM_COUNT) for the GPU.
# PACK_TESTS names the test binaries to pack (default: all that run on a GPU).
tests=${PACK_TESTS:-fused eager bind async cuda cuda_graph special random regressions grad backward llama}
msgs=$(LAZY_GRAPH_RANDOM_COUNT=${LAZY_GRAPH_RANDOM_COUNT:-1000} cargo test --release --features cuda --no-run --message-format=json \
  $(printf -- '--test %s ' $tests) 2>/dev/null)
# The kernel bench (gpu) and the Llama model bench, packed as llama_bench (beside the llama test).
bench=
[ "${PACK_BENCH:-1}" = 0 ] || bench=$(cargo bench --features "cuda ${BENCH_FEATURES:-}" --bench gpu --bench llama --no-run --message-format=json 2>/dev/null)
example=$(cargo build --release --features cuda --example decode_graph --message-format=json 2>/dev/null)
rm -rf gpu-out && mkdir -p gpu-out
for line in $(printf '%s\n%s\n%s\n' "$msgs" "$bench" "$example" | python3 -c '
import json, sys
for l in sys.stdin:
    try: m = json.loads(l)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        t = m["target"]
        bench = "bench" in t["kind"] and t["name"] != "gpu"
        print(t["name"] + ("_bench" if bench else "") + "=" + m["executable"])'); do
  name=${line%%=*}; exe=${line#*=}
  strip -o "gpu-out/$name" "$exe"
  xz -T2 -6 "gpu-out/$name"
done
cp tools/gpu/run.sh benches/torch_ref.py gpu-out/
ls -la gpu-out
