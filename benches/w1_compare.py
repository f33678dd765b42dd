#!/usr/bin/env python3
"""sluice against DuckDB and Polars (when installed) on the tabular workloads of the speed targets.

- W1: 2,000,000 generated rows (id,name,category,x,y,value,ts) -> value2 = value * 2 ->
  keep value > 500 -> sort by value desc, id -> CSV; sluice also at --memory-limit 64MB.
- CSV -> noop: read the file, discard it (DuckDB: count(*) over read_csv).
- CSV -> CSV: read the file, write it back (DuckDB: COPY (SELECT * FROM read_csv(..)) TO ..).

    cargo build --release
    python3 benches/w1_compare.py [--rows 2000000] [--runs 3] [--before OLD_SLUICE_BINARY]

Every case of a workload runs once per round, rounds repeated --runs times (A B C, A B C, ...),
so a slow moment of the machine falls on every case alike. Prints per workload the median
wall time, the median peak RSS (the child's ru_maxrss), and each one's ratio to DuckDB's,
all measured in this run. --before adds the same sluice cases run by another binary.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")

DUCKDB_W1 = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET threads=2")
lim = sys.argv[3]
if lim != "none":
    con.execute(f"SET memory_limit='{lim}'")
con.execute(f\"\"\"COPY (SELECT *, value * 2 AS value2 FROM read_csv_auto('{sys.argv[1]}')
 WHERE value > 500 ORDER BY value DESC, id) TO '{sys.argv[2]}' (HEADER)\"\"\")
"""

DUCKDB_COUNT = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET threads=2")
con.execute(f"SELECT count(*) FROM read_csv('{sys.argv[1]}')").fetchone()
"""

DUCKDB_COPY = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET threads=2")
con.execute(f"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) TO '{sys.argv[2]}' (HEADER)")
"""

POLARS_W1 = """
import polars as pl, sys
(pl.scan_csv(sys.argv[1]).with_columns((pl.col("value") * 2).alias("value2"))
   .filter(pl.col("value") > 500).sort(["value", "id"], descending=[True, False])
   .sink_csv(sys.argv[2]))
"""

NOOP_WF = """name: csv_noop
variables:
  input: {{ default: x }}
nodes:
  - {{ id: read, action: csv_reader, with: {{ path: "${{input}}" }} }}
  - {{ id: sink, action: noop_sink }}
edges:
  - read -> sink
"""

COPY_WF = """name: csv_copy
variables:
  input: {{ default: x }}
  output: {{ default: y }}
nodes:
  - {{ id: read, action: csv_reader, with: {{ path: "${{input}}" }} }}
  - {{ id: write, action: csv_writer, with: {{ path: "${{output}}" }} }}
edges:
  - read -> write
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


def installed(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        print(f"({mod} not installed: pip install {mod})")
        return False


def workloads(args, work, data):
    """(title, [(label, command)], output files that must be identical)"""
    binaries = [("sluice", SLUICE)] + ([("sluice (before)", args.before)] if args.before else [])
    py = sys.executable
    have_duckdb, have_polars = installed("duckdb"), installed("polars")
    wf = os.path.join(ROOT, "workflows", "w1.yaml")
    noop = os.path.join(work, "noop.yaml")
    copy = os.path.join(work, "copy.yaml")
    open(noop, "w").write(NOOP_WF.format())
    open(copy, "w").write(COPY_WF.format())

    w1, w1_outs = [], []
    for name, binary in binaries:
        for limit in [None, "64MB"]:
            out = os.path.join(work, f"w1-{len(w1)}.csv")
            cmd = [binary, "run", wf, "--quiet", "--var", f"input={data}", "--var", f"output={out}"]
            if limit:
                cmd[4:4] = ["--memory-limit", limit]
            w1.append((name + (f" --memory-limit {limit}" if limit else ""), cmd))
            w1_outs.append(out)
    if have_duckdb:
        w1.append(("duckdb", [py, "-c", DUCKDB_W1, data, os.path.join(work, "d.csv"), "none"]))
        w1.append(("duckdb memory_limit=64MB", [py, "-c", DUCKDB_W1, data, os.path.join(work, "d64.csv"), "64MB"]))
    if have_polars:
        w1.append(("polars", [py, "-c", POLARS_W1, data, os.path.join(work, "p.csv")]))

    reads = [(name, [binary, "run", noop, "--quiet", "--var", f"input={data}"]) for name, binary in binaries]
    if have_duckdb:
        reads.append(("duckdb count(*)", [py, "-c", DUCKDB_COUNT, data]))

    copies, copy_outs = [], []
    for name, binary in binaries:
        out = os.path.join(work, f"copy-{len(copies)}.csv")
        copies.append((name, [binary, "run", copy, "--quiet", "--var", f"input={data}", "--var", f"output={out}"]))
        copy_outs.append(out)
    if have_duckdb:
        copies.append(("duckdb COPY", [py, "-c", DUCKDB_COPY, data, os.path.join(work, "dcopy.csv")]))

    return [
        ("W1", w1, w1_outs),
        ("CSV -> noop", reads, []),
        ("CSV -> CSV", copies, copy_outs + [data]),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--before", default=None, help="another sluice binary to run beside this one")
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="w1-")
    data = args.data or os.path.join(work, "w1.csv")
    if not os.path.exists(data):
        subprocess.run([SLUICE, "generate", "w1", "--rows", str(args.rows), "--out", data], check=True)
    for title, cases, outs in workloads(args, work, data):
        results = {label: [] for label, _ in cases}
        for _ in range(args.runs):
            for label, cmd in cases:
                results[label].append(timed(cmd))
        base = next((label for label, _ in cases if label.startswith("duckdb")), cases[0][0])
        med = {label: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                       all(r[2] for r in runs), next((r[3] for r in runs if r[3]), ""))
               for label, runs in results.items()}
        bw, brss = med[base][0], med[base][1] or 1
        print(f"\n{title}, {args.rows:,} rows, medians of {args.runs} interleaved runs\n")
        print(f"| {'case':<34} | {'wall s':>7} | {'peak RSS MB':>11} | {'wall / ' + base:>24} | {'RSS / ' + base:>23} |")
        print(f"|{'-'*36}|{'-'*9}|{'-'*13}|{'-'*26}|{'-'*25}|")
        for label, (wall, rss, ok, err) in med.items():
            if not ok:
                print(f"| {label:<34} | {'failed':>7} | {'':>11} | {'':>24} | {'':>23} |  "
                      f"{err.splitlines()[-1] if err else ''}")
                continue
            print(f"| {label:<34} | {wall:7.2f} | {rss / 2**20:11.0f} | {wall / bw:24.2f} | {rss / brss:23.2f} |")
        present = [o for o in outs if os.path.exists(o)]
        if len(present) > 1:
            same = len({open(o, "rb").read() for o in present}) == 1
            print(f"\nsluice outputs identical{' to the input' if title == 'CSV -> CSV' else ''}: {same}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
