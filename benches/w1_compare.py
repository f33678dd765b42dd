#!/usr/bin/env python3
"""W1 on sluice (unlimited and --memory-limit 64MB) and, when installed, DuckDB and Polars.

W1: 2,000,000 generated rows (id,name,category,x,y,value,ts) -> value2 = value * 2 ->
keep value > 500 -> sort by value desc, id -> CSV.

    cargo build --release
    python3 benches/w1_compare.py [--rows 2000000] [--runs 3]

Prints one table: median wall time, peak RSS, and the ratio of each to sluice (unlimited),
all measured in this run on this machine. Peak RSS is the child's ru_maxrss.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")

DUCKDB = """
import duckdb, sys
con = duckdb.connect()
lim = sys.argv[3]
if lim != "none":
    con.execute(f"SET memory_limit='{lim}'")
con.execute(f\"\"\"COPY (SELECT *, value * 2 AS value2 FROM read_csv_auto('{sys.argv[1]}')
 WHERE value > 500 ORDER BY value DESC, id) TO '{sys.argv[2]}' (HEADER)\"\"\")
"""

POLARS = """
import polars as pl, sys
(pl.scan_csv(sys.argv[1]).with_columns((pl.col("value") * 2).alias("value2"))
   .filter(pl.col("value") > 500).sort(["value", "id"], descending=[True, False])
   .sink_csv(sys.argv[2]))
"""


def timed(cmd):
    wrapper = [sys.executable, "-c",
               "import resource,subprocess,sys;"
               "r=subprocess.run(sys.argv[1:]).returncode;"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
               "sys.exit(r)"] + cmd
    t0 = time.perf_counter()
    proc = subprocess.run(wrapper, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    rss = int(lines[-1]) * 1024 if lines and lines[-1].isdigit() else 0
    return wall, rss, proc.returncode == 0, "\n".join(lines[-4:-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="w1-")
    data = args.data or os.path.join(work, "w1.csv")
    if not os.path.exists(data):
        subprocess.run([SLUICE, "generate", "w1", "--rows", str(args.rows), "--out", data], check=True)
    wf = os.path.join(ROOT, "workflows", "w1.yaml")
    out = os.path.join(work, "out.csv")
    cases = [
        ("sluice (no limit)", [SLUICE, "run", wf, "--quiet", "--var", f"input={data}", "--var", f"output={out}"]),
        ("sluice --memory-limit 64MB", [SLUICE, "run", wf, "--quiet", "--memory-limit", "64MB",
                                        "--var", f"input={data}", "--var", f"output={out}.64"]),
    ]
    for mod, script, extra in [("duckdb", DUCKDB, ["none"]), ("duckdb", DUCKDB, ["64MB"]), ("polars", POLARS, [])]:
        try:
            __import__(mod)
        except ImportError:
            print(f"({mod} not installed: pip install {mod})")
            continue
        label = mod + (f" memory_limit={extra[0]}" if extra and extra[0] != "none" else "")
        cases.append((label, [sys.executable, "-c", script, data, os.path.join(work, f"{mod}.csv")] + extra))
    rows = []
    for label, cmd in cases:
        walls, rsss, ok, err = [], [], True, ""
        for _ in range(args.runs):
            w, r, good, e = timed(cmd)
            walls.append(w)
            rsss.append(r)
            ok &= good
            err = e or err
        walls.sort()
        rows.append((label, walls[len(walls) // 2], max(rsss), ok, err))
    base_wall, base_rss = rows[0][1], rows[0][2]
    print(f"\nW1, {args.rows:,} rows, median of {args.runs} runs\n")
    print(f"| {'engine':<30} | {'wall s':>7} | {'peak RSS MB':>11} | {'wall / sluice':>13} | {'RSS / sluice':>12} |")
    print(f"|{'-'*32}|{'-'*9}|{'-'*13}|{'-'*15}|{'-'*14}|")
    for label, wall, rss, ok, err in rows:
        if not ok:
            print(f"| {label:<30} | {'failed':>7} | {'':>11} | {'':>13} | {'':>12} |  {err.splitlines()[-1] if err else ''}")
            continue
        print(f"| {label:<30} | {wall:7.2f} | {rss / 2**20:11.0f} | {wall / base_wall:13.2f} | {rss / base_rss:12.2f} |")
    if os.path.exists(out) and os.path.exists(out + ".64"):
        same = open(out, "rb").read() == open(out + ".64", "rb").read()
        print(f"\nsluice output identical with and without the limit: {same}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
