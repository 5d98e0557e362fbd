#!/usr/bin/env bash
# Runs what tools/gpu/pack.sh packed, on the GPU machine, from the repository root:
#   bash gpu-out/run.sh [tests] [bench] [llama] [torch]     (default: all four)
# Logs go to $OUT (or gpu-out/logs) as tests.log, bench.log, llama.log, torch.log.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/logs}
mkdir -p "$out" /tmp/lg-bin
export LAZY_GRAPH_CACHE_DIR=/tmp/lg-cache
for f in "$here"/*.xz; do n=$(basename "$f" .xz); [ -x /tmp/lg-bin/$n ] || { xz -dc "$f" > /tmp/lg-bin/$n && chmod +x /tmp/lg-bin/$n; }; done
what=${*:-tests bench llama torch}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/device.txt"
if [[ $what == *tests* ]]; then
  for t in cuda cuda_graph fused eager bind async special regressions grad backward llama random; do
    [ -x /tmp/lg-bin/$t ] || { echo "=== $t: not in this pack, not run"; continue; }
    echo "=== $t (cuda tests)"
    filter=cuda; case $t in cuda | cuda_graph | regressions) filter= ;; esac
    # A binary that stalls is cut off, and says so, so that the others still run.
    start=$SECONDS
    if [ $t = cuda_graph ]; then
      # One process per test: a fault in one capture poisons the CUDA context for the rest.
      rc=0
      for name in $(/tmp/lg-bin/$t --list 2>/dev/null | sed -n 's/: test$//p'); do
        timeout -k 10 ${TEST_TIMEOUT:-300} /tmp/lg-bin/$t --exact "$name" 2>&1 || rc=$?
      done
    else
      timeout -k 10 ${TEST_TIMEOUT:-300} /tmp/lg-bin/$t $filter --test-threads=8 2>&1
      rc=${PIPESTATUS[0]}
    fi
    echo "=== $t: exit $rc after $((SECONDS - start)) s$([ $rc = 124 ] && echo ' (cut off by timeout)')"
  done 2>&1 | tee "$out/tests.log"
fi
# One table against every peer: the bench reads the torch script's timings (and the script the
# bench's), from this run's logs or from a torch.json / lazy_graph.json carried in gpu-out/.
peer() { for f in "$out/$1" "$here/$1"; do [ -f "$f" ] && { echo "$f"; return; }; done; }
if [[ $what == *bench* ]]; then
  TORCH_REF=$(peer torch.json) LAZY_GRAPH_JSON=$out/lazy_graph.json LAZY_GRAPH_LOG_KERNELS=1 \
    /tmp/lg-bin/gpu 2>&1 | tee "$out/bench.log"
fi
if [[ $what == *llama* ]]; then
  # Llama 3.2 1B's shape in bf16 with random weights: prefill and greedy decode, ours vs Candle's.
  [ -x /tmp/lg-bin/llama_bench ] && LLAMA_BENCH=1b LLAMA_BENCH_RUNS=${LLAMA_BENCH_RUNS:-3} \
    timeout -k 10 ${LLAMA_TIMEOUT:-300} /tmp/lg-bin/llama_bench --bench 2>&1 | tee "$out/llama.log"
fi
if [[ $what == *torch* ]]; then
  LAZY_GRAPH_REF=$(peer lazy_graph.json) TORCH_JSON=$out/torch.json PYTHONUNBUFFERED=1 \
    python3 "$here/torch_ref.py" 2>&1 | grep -v Warning | tee "$out/torch.log"
fi
