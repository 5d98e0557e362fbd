#!/usr/bin/env bash
# Runs COUNT random functions (default 10,000) through tests/random.rs, in batches of BATCH
# (default 500) so that each build stays small: fused, eager and the f64 reference, every dtype.
#
#   tools/random-graphs.sh                  # 10,000 functions of seed 1, on the CPU
#   tools/random-graphs.sh 2000 7           # 2,000 functions of seed 7
#   FEATURES=cuda tools/random-graphs.sh    # also on CUDA (needs a GPU; see tools/gpu/ otherwise)
#
# A failing batch prints each failure with its seed, the function and the commands that rerun
# and minimise it; the script goes on with the next batch and exits non-zero at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
seed=${2:-1}
batch=${BATCH:-500}
failed=0
for ((first = 0; first < count; first += batch)); do
  n=$((count - first < batch ? count - first : batch))
  echo "== functions $first..$((first + n)) of seed $seed"
  if ! LAZY_GRAPH_RANDOM_SEED=$seed LAZY_GRAPH_RANDOM_FIRST=$first LAZY_GRAPH_RANDOM_COUNT=$n \
      cargo test ${FEATURES:+--features "$FEATURES"} --test random -- --nocapture 2>&1 | grep -v '^\s*$'; then
    failed=$((failed + 1))
  fi
done
if ((failed)); then
  echo "**** $failed of $(((count + batch - 1) / batch)) batches failed ****"
  exit 1
fi
echo "all $count functions passed"
