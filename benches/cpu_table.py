#!/usr/bin/env python3
"""Prints the CPU benchmark table (median µs and ratios) from the last `cargo bench --bench cpu`.

    cargo bench --bench cpu && python3 benches/cpu_table.py
"""
import json
import os
import sys
from pathlib import Path

target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
root = target / "criterion"
if not root.is_dir():
    sys.exit(f"no criterion results under {root}: run `cargo bench --bench cpu` first")


def median_us(group: Path, impl: str):
    f = group / impl / "new" / "estimates.json"
    if not f.exists():
        return None
    return json.loads(f.read_text())["median"]["point_estimate"] / 1000.0


def fmt(v):
    return "—" if v is None else (f"{v:,.1f}" if v >= 10 else f"{v:.2f}")


print("| kernel | dtype | lazy_graph µs | composed µs | candle fused µs | vs composed | vs candle fused |")
print("|---|---|---|---|---|---|---|")
for group in sorted(root.iterdir()):
    if not group.is_dir() or group.name == "report":
        continue
    name, _, dtype = group.name.rpartition("_")
    lazy, comp, fused = (median_us(group, i) for i in ("lazy_graph", "composed", "candle_fused"))
    if lazy is None:
        continue
    ratio = lambda other: "—" if other is None else f"{other / lazy:.2f}x"
    print(f"| {name} | {dtype} | {fmt(lazy)} | {fmt(comp)} | {fmt(fused)} | {ratio(comp)} | {ratio(fused)} |")
