#!/usr/bin/env bash
# What a block of 20 kernels adds to a user's build, measured as a new user would: a crate whose
# 20 `lazy_graph!` functions (one fused kernel each: the norms, softmaxes, activations and rope)
# sit behind a feature, rebuilt after touching its source, with and without the feature. The
# difference is the kernels' cost; its dependencies are built once before timing.
#
#   tools/build-cost.sh            # cargo check, debug and release, 3 runs each: medians of the
#                                  # wall time and of the CPU time (user + system)
#   RUNS=5 tools/build-cost.sh
#   BACKWARD=0 tools/build-cost.sh # graph-runtime without its default `backward` feature
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-3}
dir=${BUILD_COST_DIR:-$HOME/.cache/lazy-graph-build-cost}
features=""
[ "${BACKWARD:-1}" = 0 ] && features=", default-features = false"
mkdir -p "$dir/src"
cp "$repo/Cargo.lock" "$dir/Cargo.lock"
cat >"$dir/Cargo.toml" <<EOF
[package]
name = "build-cost"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[features]
kernels = []

[dependencies]
graph-runtime = { path = "$repo/graph-runtime"$features }
candle-core = "0.11"
EOF
cat >"$dir/src/lib.rs" <<'EOF'
//! 20 fused kernels behind the `kernels` feature.
pub use candle_core::Tensor;

#[cfg(feature = "kernels")]
graph_runtime::lazy_graph! {
    pub fn gelu(x: Tensor[N, D]) -> Tensor[N, D] { gelu(x) }
    pub fn gelu_erf(x: Tensor[N, D]) -> Tensor[N, D] { gelu_erf(x) }
    pub fn silu(x: Tensor[N, D]) -> Tensor[N, D] { silu(x) }
    pub fn swiglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] { silu(g) * u }
    pub fn geglu(g: Tensor[N, F], u: Tensor[N, F]) -> Tensor[N, F] { gelu(g) * u }
    pub fn bias_relu(x: Tensor[N, D], b: Tensor[D]) -> Tensor[N, D] { relu(x + b) }
    pub fn scaled_tanh(x: Tensor[N, D], s: f32) -> Tensor[N, D] { tanh(x * s) * s }
    pub fn softmax(x: Tensor[N, D]) -> Tensor[N, D] { softmax(x, -1) }
    pub fn log_softmax(x: Tensor[N, D]) -> Tensor[N, D] { log_softmax(x, -1) }
    pub fn masked_softmax(x: Tensor[N, D], mask: Tensor[N, D], scale: f32) -> Tensor[N, D] {
        softmax(x * scale + mask, -1)
    }
    pub fn logsumexp(x: Tensor[N, D]) -> Tensor[N, 1] { logsumexp(x, -1) }
    pub fn rms_norm(x: Tensor[N, D], w: Tensor[D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(x * x, -1) + eps) * w
    }
    pub fn rms_norm_plain(x: Tensor[N, D], eps: f32) -> Tensor[N, D] {
        x * rsqrt(mean(x * x, -1) + eps)
    }
    pub fn add_rms_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], eps: f32) -> (Tensor[N, D], Tensor[N, D]) {
        let h = x + r;
        (h, h * rsqrt(mean(h * h, -1) + eps) * w)
    }
    pub fn layer_norm(x: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
        let c = x - mean(x, -1);
        c * rsqrt(mean(c * c, -1) + eps) * w + b
    }
    pub fn layer_norm_plain(x: Tensor[N, D], eps: f32) -> Tensor[N, D] {
        let c = x - mean(x, -1);
        c * rsqrt(mean(c * c, -1) + eps)
    }
    pub fn add_layer_norm(x: Tensor[N, D], r: Tensor[N, D], w: Tensor[D], b: Tensor[D], eps: f32) -> Tensor[N, D] {
        let h = x + r;
        let c = h - mean(h, -1);
        c * rsqrt(mean(c * c, -1) + eps) * w + b
    }
    pub fn var(x: Tensor[N, D]) -> Tensor[N, 1] { var(x, -1) }
    pub fn rope(x: Tensor[B, H, S, D], cos: Tensor[S, D / 2], sin: Tensor[S, D / 2]) -> Tensor[B, H, S, D] {
        let x1 = narrow(x, -1, 0, D / 2);
        let x2 = narrow(x, -1, D / 2, D / 2);
        x * cat([cos, cos], -1) + cat([-x2, x1], -1) * cat([sin, sin], -1)
    }
    pub fn rope_full(x: Tensor[B, H, S, D], cos: Tensor[S, D], sin: Tensor[S, D]) -> Tensor[B, H, S, D] {
        let x1 = narrow(x, -1, 0, D / 2);
        let x2 = narrow(x, -1, D / 2, D / 2);
        x * cos + cat([-x2, x1], -1) * sin
    }
}
EOF
cd "$dir"
export CARGO_TARGET_DIR="$dir/target"
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# "wall cpu" seconds of one rebuild of this crate after a touch (cpu: user + system, which a
# busy machine inflates less than the wall time).
rebuild() {
  touch src/lib.rs
  /usr/bin/time -f '%e %U %S' -o "$dir/time.txt" cargo "$@" -q >/dev/null 2>&1
  awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$dir/time.txt"
}
for cmd in "check" "build" "build --release"; do
  # shellcheck disable=SC2086
  cargo $cmd -q --features kernels # dependencies, once
  # shellcheck disable=SC2086
  cargo $cmd -q
  without=() with=()
  for _ in $(seq "$runs"); do
    # shellcheck disable=SC2086
    without+=("$(rebuild $cmd)")
    # shellcheck disable=SC2086
    with+=("$(rebuild $cmd --features kernels)")
  done
  col() { printf '%s\n' "$@" | awk -v c="$col" '{print $c}' | median; }
  col=1 w0=$(col "${without[@]}"); col=1 w1=$(col "${with[@]}")
  col=2 c0=$(col "${without[@]}"); col=2 c1=$(col "${with[@]}")
  printf 'cargo %-16s added by 20 kernels: %5.2f s wall (%5.2f -> %5.2f), %5.2f s cpu (%5.2f -> %5.2f)\n' \
    "$cmd" "$(echo "$w1 - $w0" | bc)" "$w0" "$w1" "$(echo "$c1 - $c0" | bc)" "$c0" "$c1"
done
