#!/usr/bin/env python3
"""Heavy-finish gate benchmark: four branches each ending in a sort (workflows/four_sorts.yaml),
run with the gate ungated, as a fixed semaphore(1) (the baseline to beat) and adaptive; and
one sort of the same input (workflows/one_sort.yaml), the baseline of the memory target
(four sorts peak at most 1.3x one sort: the features are shared, only keys and references
multiply).

    cargo build --release
    python3 benches/heavy_finish.py [--rows 2000000] [--runs 3] [--memory-limit 8GB]

Prints median wall time, peak RSS (from the run report) and gate wait, with ratios to the
semaphore(1) baseline and peak RSS over one sort's, all measured in this run, the cases
interleaved (A B C D, A B C D, ...).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory-limit", default=None)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="heavy-")
    data = args.data or os.path.join(work, "w1.csv")
    if not os.path.exists(data):
        subprocess.run([SLUICE, "generate", "w1", "--rows", str(args.rows), "--out", data], check=True)
    cases = [("semaphore:1", "four_sorts"), ("ungated", "four_sorts"),
             ("adaptive", "four_sorts"), ("adaptive", "one_sort")]
    results = {case: [] for case in cases}
    for i in range(args.runs):
        for gate, workflow in cases:
            report = os.path.join(work, f"{workflow}-{gate.replace(':', '')}-{i}.json")
            cmd = [SLUICE, "run", os.path.join(ROOT, "workflows", f"{workflow}.yaml"), "--quiet",
                   "--gate", gate, "--var", f"input={data}", "--report", report]
            if args.memory_limit:
                cmd += ["--memory-limit", args.memory_limit]
            subprocess.run(cmd, check=True)
            r = json.load(open(report))
            results[(gate, workflow)].append(
                (r["elapsed_ms"] / 1e3, r["peak_rss_bytes"], r["gate_wait_ms"] / 1e3))
    rows = []
    for (gate, workflow), runs in results.items():
        runs.sort()
        wall, _, wait = runs[len(runs) // 2]
        rss = sorted(x[1] for x in runs)[len(runs) // 2]
        label = gate if workflow == "four_sorts" else f"one sort ({gate})"
        rows.append((label, wall, rss, wait))
    base = rows[0]
    one = rows[-1]
    print(f"\nfour sorts of {args.rows:,} rows each, medians of {args.runs} runs\n")
    print("| case                 | wall s | peak RSS MB | gate wait s | wall / sem(1) | RSS / sem(1) | RSS / one sort |")
    print("|----------------------|--------|-------------|-------------|---------------|--------------|----------------|")
    for label, wall, rss, wait in rows:
        print(f"| {label:<20} | {wall:6.2f} | {rss / 2**20:11.0f} | {wait:11.2f} | {wall / base[1]:13.2f} "
              f"| {rss / base[2]:12.2f} | {rss / one[2]:14.2f} |")

if __name__ == "__main__":
    main()
