#!/usr/bin/env bash
# Installs a pinned CUDA 13.0 toolchain from PyPI wheels (no system CUDA, no GPU needed) and prints
# the environment that builds the workspace with `--features cuda`.
#
#   eval "$(tools/cuda-toolchain.sh)"        # then: cargo build --features cuda ...
#
# 13.0 matches the driver of the GPU machines (580.x, CUDA 13.0): PTX from a newer nvcc does not load there.
# The link folder holds unversioned symlinks and a stub libcuda (every driver call answers
# CUDA_ERROR_NO_DEVICE), so binaries link and start on a machine without a GPU: GPU tests there must
# detect "no device" and skip, while NVRTC compiles kernels for real. Never carry the link folder to the
# GPU machine; there use: export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${LAZY_GRAPH_CUDA_HOME:-$HOME/.cache/lazy-graph-cuda-13.0}
pins=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-cccl==13.0.85
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cublas==13.0.2.14 nvidia-curand==10.4.0.35)
if ! ls "$root"/venv/lib/python3*/site-packages/nvidia/cu13/lib/libcurand.so.10 >/dev/null 2>&1; then
  python3 -m venv "$root/venv" >&2
  "$root/venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}" >&2
fi
cu=$(echo "$root"/venv/lib/python3*/site-packages/nvidia/cu13)
link=$root/link
mkdir -p "$link"
for n in cublas cublasLt cudart nvrtc; do ln -sf "$cu/lib/lib$n.so.13" "$link/lib$n.so"; done
ln -sf "$cu/lib/libcurand.so.10" "$link/libcurand.so"
# The stub's symbols: the bundled list plus every driver function any cudarc in the cargo registry
# declares, so a newer cudarc still links.
syms=$(mktemp)
{ cat "$here/libcuda-symbols.txt"
  cat "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-*/src/driver/sys/mod.rs 2>/dev/null |
    grep -o 'pub \(unsafe \)\?fn cu[A-Za-z0-9_]*' | sed 's/.*fn //'
} | sort -u > "$syms"
if [ ! -f "$link/libcuda.so" ] || ! cmp -s "$syms" "$link/libcuda-symbols.txt"; then
  awk '{print "int " $1 "(void) { return 100; }"}' "$syms" > "$link/libcuda-stub.c"
  gcc -shared -fPIC -o "$link/libcuda.so" "$link/libcuda-stub.c" -Wl,-soname,libcuda.so.1 >&2
  ln -sf libcuda.so "$link/libcuda.so.1"
  cp "$syms" "$link/libcuda-symbols.txt"
fi
rm -f "$syms"
cat <<ENV
export CUDA_ROOT=$cu CUDA_PATH=$cu CUDA_HOME=$cu
export PATH=$cu/bin:\$PATH
export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$link\${LIBRARY_PATH:+:\$LIBRARY_PATH}
export LD_LIBRARY_PATH=$cu/lib:$link\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
ENV
