#!/usr/bin/env python3
"""Prints the CPU benchmark table (median µs and ratios) from `cargo bench --bench cpu`.

    cargo bench --bench cpu && python3 benches/cpu_table.py     # the last run

On a shared machine one run can catch another process's work. To see how much that moves the
numbers, record several runs and print them together:

    for i in 1 2 3; do
        cargo bench --bench cpu && python3 benches/cpu_table.py --record runs/
    done
    python3 benches/cpu_table.py --runs runs/

With --runs, each time is the median over the runs of each run's median, each ratio the median
over the runs of the ratio measured within one run, and the range column gives the lowest and
highest of those per-run ratios against composed Candle.
"""
import json
import os
import statistics
import sys
import time
from pathlib import Path

IMPLS = ("lazy_graph", "composed", "candle_fused")


def last_run():
    """{(kernel, dtype): {impl: median µs}} from criterion's latest estimates."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    root = target / "criterion"
    if not root.is_dir():
        sys.exit(f"no criterion results under {root}: run `cargo bench --bench cpu` first")
    run = {}
    for group in sorted(root.iterdir()):
        if not group.is_dir() or group.name == "report":
            continue
        name, _, dtype = group.name.rpartition("_")
        times = {}
        for impl in IMPLS:
            f = group / impl / "new" / "estimates.json"
            if f.exists():
                times[impl] = json.loads(f.read_text())["median"]["point_estimate"] / 1000.0
        if "lazy_graph" in times:
            run[(name, dtype)] = times
    return run


def fmt(v):
    return "—" if v is None else (f"{v:,.1f}" if v >= 10 else f"{v:.2f}")


def ratio(r):
    return "—" if r is None else f"{r:.2f}x"


def table(runs):
    many = len(runs) > 1
    head = "| kernel | dtype | lazy_graph µs | composed µs | candle fused µs | vs composed | vs candle fused |"
    rule = "|---|---|---|---|---|---|---|"
    if many:
        head += " vs composed, range |"
        rule += "---|"
    print(head)
    print(rule)
    for key in sorted(set().union(*runs)):
        present = [r[key] for r in runs if key in r]
        med = lambda impl: (
            statistics.median([t[impl] for t in present if impl in t])
            if any(impl in t for t in present)
            else None
        )
        per_run = lambda impl: [t[impl] / t["lazy_graph"] for t in present if impl in t]
        vs = lambda impl: statistics.median(per_run(impl)) if per_run(impl) else None
        row = (
            f"| {key[0]} | {key[1]} | {fmt(med('lazy_graph'))} | {fmt(med('composed'))} | "
            f"{fmt(med('candle_fused'))} | {ratio(vs('composed'))} | {ratio(vs('candle_fused'))} |"
        )
        if many:
            c = per_run("composed")
            row += f" {min(c):.2f}–{max(c):.2f}x |" if c else " — |"
        print(row)
    if many:
        print(f"\n{len(runs)} runs")


def main(args):
    if args[:1] == ["--record"] and len(args) == 2:
        out = Path(args[1])
        out.mkdir(parents=True, exist_ok=True)
        run = {f"{k[0]}|{k[1]}": v for k, v in last_run().items()}
        path = out / f"run-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(run, indent=1))
        print(f"recorded {path}")
    elif args[:1] == ["--runs"] and len(args) == 2:
        files = sorted(Path(args[1]).glob("run-*.json"))
        if not files:
            sys.exit(f"no recorded runs in {args[1]}")
        runs = [
            {tuple(k.split("|")): v for k, v in json.loads(f.read_text()).items()} for f in files
        ]
        table(runs)
    elif not args:
        table([last_run()])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
