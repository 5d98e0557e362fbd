#!/usr/bin/env python3
"""Compares two builds of the CPU bench on the same rows, alternating them, on a noisy machine.

    python3 benches/ab.py BASE [OTHER] [--rounds N] [--time S] -- FILTER

BASE and OTHER are git revisions (OTHER defaults to the working tree, `.`); FILTER is a criterion
filter, e.g. 'rms_norm 1x4096/f32'. Each revision's `cpu` bench is built once: `.` in the checkout
with its usual target folder, a revision in a detached git worktree with a target folder of its
own (`ab-target` inside the usual one), removed once built. Cargo names a path crate's build by
its path within the workspace, so a worktree sharing the checkout's target folder would share its
build records too, and later builds of the checkout would take the worktree's sources as theirs.
Then the two binaries run one after the other, N rounds (default 4), S seconds of measurement per
row (default 3). For each row and build it prints every round's median, the median of those, and
the fastest single sample of all rounds.

Why alternate: on a shared VM the speed of a whole run drifts by tens of percent with the
neighbours' load, so two runs taken minutes apart compare the machine, not the code. Rounds
interleaved a few seconds apart see the same drift, and the fastest sample is the least disturbed
measurement of each build.
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def build(rev, out):
    """Builds the `cpu` bench of `rev` and copies it to `out`."""
    if rev == ".":
        return cargo_bench(rev, ROOT, target_dir(), out)
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.strip()
    src = Path(tempfile.mkdtemp(prefix="lazy-graph-ab-src-")) / sha[:12]
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(src), sha],
        cwd=ROOT, check=True, capture_output=True,
    )
    try:
        # Its own target folder (see the module's doc); the worktree is new each time, so its
        # files are newer than any earlier build there and nothing stale is reused.
        return cargo_bench(rev, src, target_dir() / "ab-target", out)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(src)], cwd=ROOT, check=False)
        shutil.rmtree(src.parent, ignore_errors=True)


def cargo_bench(rev, src, target, out):
    cmd = ["cargo", "bench", "--bench", "cpu", "--no-run", "--message-format=json"]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    res = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"building the bench at {rev} failed:\n{res.stderr[-4000:]}")
    exe = None
    for line in res.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "cpu":
            exe = msg.get("executable") or exe
    if exe is None:
        sys.exit(f"cargo built no `cpu` bench at {rev}")
    shutil.copy2(exe, out)
    return out


def measure(exe, filt, seconds, home):
    """{row: (median ns, fastest sample ns)} from one criterion run of `exe`."""
    shutil.rmtree(home, ignore_errors=True)
    env = dict(os.environ, CRITERION_HOME=str(home))
    cmd = [str(exe), "--bench", filt, "--measurement-time", str(seconds)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{exe} failed:\n{res.stderr[-4000:]}")
    rows = {}
    for est in glob.glob(f"{home}/*/*/new/estimates.json"):
        parts = Path(est).parts
        sample = json.loads(Path(est).with_name("sample.json").read_text())
        fastest = min(t / i for t, i in zip(sample["times"], sample["iters"]))
        median = json.loads(Path(est).read_text())["median"]["point_estimate"]
        rows[f"{parts[-4]} {parts[-3]}"] = (median, fastest)
    return rows


def fmt(ns):
    return f"{ns / 1000:.2f}" if ns < 10_000 else f"{ns / 1000:.1f}"


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit(__doc__)
    cut = argv.index("--")
    filt = " ".join(argv[cut + 1:])
    p = argparse.ArgumentParser(usage=__doc__)
    p.add_argument("base")
    p.add_argument("other", nargs="?", default=".")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--time", type=float, default=3.0)
    a = p.parse_args(argv[:cut])
    if not filt or a.rounds < 1 or a.time <= 0:
        sys.exit(__doc__)

    work = Path(tempfile.mkdtemp(prefix="lazy-graph-ab-"))
    builds = [(rev, build(rev, work / f"bench-{i}")) for i, rev in enumerate([a.base, a.other])]
    # {row: {rev: [(median, fastest) per round]}}
    results = {}
    for r in range(a.rounds):
        for i, (rev, exe) in enumerate(builds):
            for row, m in measure(exe, filt, a.time, work / f"criterion-{i}").items():
                results.setdefault(row, {}).setdefault(rev, []).append(m)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)
    if not results:
        sys.exit(f"no benchmark matched {filt!r}")
    print("| row | build | µs per round (median) | median of rounds | fastest sample |")
    print("|---|---|---|---|---|")
    for row in sorted(results):
        for rev, _ in builds:
            ms = results[row].get(rev, [])
            if not ms:
                continue
            rounds = " ".join(fmt(m) for m, _ in ms)
            med = statistics.median(m for m, _ in ms)
            fast = min(f for _, f in ms)
            print(f"| {row} | {rev} | {rounds} | {fmt(med)} | {fmt(fast)} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
