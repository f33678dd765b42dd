#!/usr/bin/env python3
"""Streaming scaling: workflows/w1_stream.yaml (read -> compute -> filter -> write, no sort) on
2 M and 20 M generated rows. Memory must stay flat and time grow at most ~10x.

    cargo build --release
    python3 benches/scaling.py [--small 2000000] [--large 20000000] [--dir DIR]

Prints wall time and peak RSS (from the run report) for both sizes and their ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")


def run(data, work, tag):
    report = os.path.join(work, f"{tag}.json")
    subprocess.run([SLUICE, "run", os.path.join(ROOT, "workflows", "w1_stream.yaml"), "--quiet",
                    "--var", f"input={data}", "--var", f"output={os.path.join(work, tag + '.csv')}",
                    "--report", report], check=True)
    r = json.load(open(report))
    os.remove(os.path.join(work, tag + ".csv"))
    return r["elapsed_ms"] / 1e3, r["peak_rss_bytes"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=2_000_000)
    ap.add_argument("--large", type=int, default=20_000_000)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    work = args.dir or tempfile.mkdtemp(prefix="scaling-")
    results = []
    for rows in (args.small, args.large):
        data = os.path.join(work, f"w1_{rows}.csv")
        if not os.path.exists(data):
            subprocess.run([SLUICE, "generate", "w1", "--rows", str(rows), "--out", data], check=True)
        wall, rss = run(data, work, f"run_{rows}")
        results.append((rows, wall, rss))
    print("\n| rows | wall s | peak RSS MB |")
    print("|------|--------|-------------|")
    for rows, wall, rss in results:
        print(f"| {rows:,} | {wall:.2f} | {rss / 2**20:.0f} |")
    (r0, w0, m0), (r1, w1, m1) = results
    print(f"\nrows x{r1 / r0:.0f}: time x{w1 / w0:.2f}, peak RSS x{m1 / m0:.2f}")


if __name__ == "__main__":
    main()
