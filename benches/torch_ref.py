#!/usr/bin/env python3
"""Times torch eager and torch.compile on the GPU benchmark's kernels and shapes (benches/gpu.rs),
with the same method: warm-up, then calls back to back between two synchronisations for at least
BENCH_MS milliseconds, best of 3, inputs rotating among copies that together exceed the L2.
The `train ...` rows time forward plus backward (every input requiring grad, `y.backward` with a
tensor of ones made per call, as Candle's `backward` makes one), torch.compile's through
AOTAutograd; their bytes are the pair's least traffic, as in gpu.rs.

    python3 benches/torch_ref.py            # BENCH_FILTER=softmax to select rows

The timings are written as JSON to TORCH_JSON (default $OUT/torch.json where OUT is set), which
the GPU bench reads from TORCH_REF to print one table against every peer. Given the bench's own
file in LAZY_GRAPH_REF (its LAZY_GRAPH_JSON), this script prints that table too.
"""
import json
import math
import os
import time

import torch
import torch.nn.functional as F

BUDGET = float(os.environ.get("BENCH_MS", "300")) / 1e3
FILTER = os.environ.get("BENCH_FILTER", "")
dev = "cuda"


def gelu(x):
    return F.gelu(x, approximate="tanh")


def softmax(x):
    return torch.softmax(x, dim=-1)


def rms_norm(x, w):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w


def layer_norm(x, w, b):
    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)


def swiglu(g, u):
    return F.silu(g) * u


def rope(x, cos, sin):
    c = torch.cat([cos, cos], -1)
    s = torch.cat([sin, sin], -1)
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return x * c + torch.cat([-x2, x1], -1) * s


# The rows whose forward plus backward gpu.rs times too.
TRAINED = (
    "gelu_tanh 8192x8192",
    "softmax 4096x4096",
    "rms_norm 8192x4096",
    "layer_norm 8192x4096",
    "silu(g)*u 8192x11008",
    "rope 8x32x2048x128",
)


def step(f):
    """Forward plus backward of `f`, the inputs' gradients dropped first (not accumulated)."""

    def run(*inputs):
        for t in inputs:
            t.grad = None
        y = f(*inputs)
        y.backward(torch.ones_like(y))
        return y

    return run


def timed(f, sets):
    for s in sets * 3:
        f(*s)
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < BUDGET / 10:
        f(*sets[n % len(sets)])
        n += 1
    torch.cuda.synchronize()
    per = (time.perf_counter() - t0) / n
    count = max(3, min(1_000_000, int(BUDGET / per)))
    best = math.inf
    for _ in range(3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(count):
            f(*sets[i % len(sets)])
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / count)
    return best


def main():
    rows = []
    for dtype in (torch.bfloat16, torch.float32):
        size = torch.tensor([], dtype=dtype).element_size()
        cases = [(f"gelu_tanh 8192x8192", gelu, [(8192, 8192)], 8192 * 8192)]
        for n, d in [(4096, 4096), (32768, 1024), (8192, 32000)]:
            cases.append((f"softmax {n}x{d}", softmax, [(n, d)], n * d))
        for n, d in [(8192, 4096), (1, 4096)]:
            cases.append((f"rms_norm {n}x{d}", rms_norm, [(n, d), (d,)], n * d))
        cases.append(("layer_norm 8192x4096", layer_norm, [(8192, 4096), (4096,), (4096,)], 8192 * 4096))
        cases.append(("silu(g)*u 8192x11008", swiglu, [(8192, 11008), (8192, 11008)], 8192 * 11008))
        cases.append(("rope 8x32x2048x128", rope, [(8, 32, 2048, 128), (2048, 64), (2048, 64)], 8 * 32 * 2048 * 128))
        train = [(f"train {name}", f, shapes, out) for name, f, shapes, out in cases if name in TRAINED]
        for name, f, shapes, out in cases + train:
            if FILTER not in name:
                continue
            trained = name.startswith("train ")
            ins = sum(math.prod(s) for s in shapes)
            nbytes = ((3 * ins + 2 * out) if trained else (ins + out)) * size
            copies = max(1, min(8, -(-(256 << 20) // nbytes)))
            sets = [[torch.randn(s, device=dev, dtype=dtype, requires_grad=trained) for s in shapes] for _ in range(copies)]
            run = step(f) if trained else f
            eager = timed(run, sets)
            compiled = torch.compile(f, dynamic=False)
            comp = timed(step(compiled) if trained else compiled, sets)
            rows.append((name, str(dtype).replace("torch.", ""), eager, comp, nbytes))
            print(f"{name:<24} {rows[-1][1]}: eager {eager * 1e6:9.1f} µs, torch.compile {comp * 1e6:9.1f} µs", flush=True)
    print()
    print("| kernel | dtype | MB | torch eager µs | GB/s | torch.compile µs | GB/s |")
    print("|---|---|---|---|---|---|---|")
    for name, dt, eager, comp, nbytes in rows:
        print(f"| {name} | {dt} | {nbytes / 1e6:.1f} | {eager * 1e6:.1f} | {nbytes / eager / 1e9:.0f} "
              f"| {comp * 1e6:.1f} | {nbytes / comp / 1e9:.0f} |")
    dtypes = {"bfloat16": "BF16", "float32": "F32"}
    measured = [
        {"way": way, "kernel": name, "dtype": dtypes[dt], "bytes": nbytes, "seconds": t}
        for name, dt, eager, comp, nbytes in rows
        for way, t in (("torch eager", eager), ("torch.compile", comp))
    ]
    path = os.environ.get("TORCH_JSON") or (os.environ.get("OUT") and os.path.join(os.environ["OUT"], "torch.json"))
    if path:
        with open(path, "w") as f:
            json.dump(measured, f, indent=1)
        print(f"timings written to {path}")
    if os.environ.get("LAZY_GRAPH_REF"):
        with open(os.environ["LAZY_GRAPH_REF"]) as f:
            one_table(json.load(f) + measured)


def work(kernel):
    """The key peers are matched on: an `explicit` row does the work of the `train` row."""
    return "train " + kernel[len("explicit "):] if kernel.startswith("explicit ") else kernel


def one_table(measured):
    """The GPU bench's closing table (benches/gpu.rs, `one_table`): per row of ours, the best peer."""
    print()
    print("| kernel | dtype | MB | lazy_graph µs | GB/s | best peer | peer µs | peer GB/s | peer / ours | % of best GB/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in (m for m in measured if m["way"] == "lazy_graph"):
        peers = [p for p in measured if p["way"] != "lazy_graph" and p["dtype"] == m["dtype"]
                 and work(p["kernel"]) == work(m["kernel"])]
        best = min(peers, key=lambda p: p["seconds"], default=None)
        ours, peer = m["seconds"], best["seconds"] if best else math.nan
        fastest = min(ours, peer) if best else ours
        gbs = lambda t: m["bytes"] / t / 1e9
        print(f"| {m['kernel']} | {m['dtype']} | {m['bytes'] / 1e6:.1f} | {ours * 1e6:.1f} | {gbs(ours):.0f} "
              f"| {best['way'] if best else '—'} | {peer * 1e6:.1f} | {gbs(peer):.0f} | {peer / ours:.2f}x "
              f"| {100 * fastest / ours:.0f}% |")


if __name__ == "__main__":
    main()
