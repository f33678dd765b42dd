#!/usr/bin/env python3
"""Does --memory-limit hold? Peak RSS against the limit for W1 and a 200-filter chain.

Cases (the inputs are generated into the work folder once and reused):
  w1-2M-64     W1 (read -> compute -> filter -> sort -> CSV), 2,000,000 rows, 64 MB
  w1-2M-16     the same at 16 MB
  w1-20M-64    W1 on 20,000,000 rows at 64 MB (about a hundred spill runs to merge)
  chain-200    read -> 200 x filter "value > -1" -> noop_sink, 200,000 rows, 64 MB
               (the workflow is written into the work folder)
  wide-parquet one feature with 25,000 attributes -> parquet_writer, 64 MB

    cargo build --release
    python3 benches/memory_limit.py [--runs 3] [--cases w1-2M-64,chain-200] [--sluice PATH]

Prints, per case, the limit, the median peak RSS (the child's ru_maxrss, from wait4), the
peak RSS over the limit, the peak the run report gives (sampled every 20 ms) and the median
wall time. The target: peak RSS <= limit + 24 MB for limits of 64 MB and more. A run that
refuses to start (limit below the workflow's minimum) shows its message instead.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
MB = 1 << 20
SLACK = 24 * MB


def chain_yaml(n):
    nodes = ['  - { id: read, action: csv_reader, with: { path: "${input}" } }']
    edges = []
    prev = "read"
    for i in range(n):
        nodes.append(f'  - {{ id: f{i}, action: filter, with: {{ expression: "value > -1" }} }}')
        edges.append(f"  - {prev} -> f{i}" if i == 0 else f"  - {prev}.passed -> f{i}")
        prev = f"f{i}"
    nodes.append("  - { id: sink, action: noop_sink }")
    edges.append(f"  - {prev}.passed -> sink")
    return ("name: chain\nvariables:\n  input: { description: the CSV }\nnodes:\n"
            + "\n".join(nodes) + "\nedges:\n" + "\n".join(edges) + "\n")


WIDE_YAML = """name: wide
variables:
  input: { description: the JSON file }
  output: { description: the Parquet file }
nodes:
  - { id: read, action: json_reader, with: { path: "${input}" } }
  - { id: write, action: parquet_writer, with: { path: "${output}" } }
edges:
  - read -> write
"""


def generate_w1(sluice, path, rows):
    if not os.path.exists(path):
        subprocess.run([sluice, "generate", "w1", "--rows", str(rows), "--out", path], check=True)


def generate_wide(path, columns):
    if not os.path.exists(path):
        with open(path, "w") as f:
            row = {f"c{i}": (i if i % 3 == 0 else f"v{i}" if i % 3 == 1 else i + 0.5)
                   for i in range(columns)}
            f.write(json.dumps(row) + "\n")


def run_once(sluice, workflow, limit_mb, variables, work):
    report = os.path.join(work, "report.json")
    if os.path.exists(report):
        os.remove(report)
    cmd = [sluice, "run", workflow, "--quiet", "--memory-limit", f"{limit_mb}MB",
           "--report", report]
    for k, v in variables.items():
        cmd += ["--var", f"{k}={v}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    sampled = 0
    if os.path.exists(report):
        sampled = json.load(open(report)).get("peak_rss_bytes", 0)
    return {"ok": proc.returncode == 0, "code": proc.returncode, "rss": usage.ru_maxrss * 1024,
            "sampled": sampled, "wall": wall, "err": err.strip().splitlines()[-1:] or [""]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default="w1-2M-64,w1-2M-16,w1-20M-64,chain-200,wide-parquet")
    ap.add_argument("--sluice", default=SLUICE, help="the binary to measure")
    ap.add_argument("--dir", default=None, help="work folder (inputs are kept there)")
    args = ap.parse_args()
    if not os.path.exists(args.sluice):
        sys.exit("build first: cargo build --release")
    work = args.dir or tempfile.mkdtemp(prefix="memory-limit-")
    os.makedirs(work, exist_ok=True)
    w1 = os.path.join(ROOT, "workflows", "w1.yaml")
    chain = os.path.join(work, "chain200.yaml")
    with open(chain, "w") as f:
        f.write(chain_yaml(200))
    wide = os.path.join(work, "wide.yaml")
    with open(wide, "w") as f:
        f.write(WIDE_YAML)
    out = os.path.join(work, "out")
    cases = {
        "w1-2M-64": (w1, 64, 2_000_000, "w1"),
        "w1-2M-16": (w1, 16, 2_000_000, "w1"),
        "w1-20M-64": (w1, 64, 20_000_000, "w1"),
        "chain-200": (chain, 64, 200_000, "w1"),
        "wide-parquet": (wide, 64, 25_000, "wide"),
    }
    rows = []
    for name in args.cases.split(","):
        workflow, limit, n, kind = cases[name]
        if kind == "w1":
            data = os.path.join(work, f"w1_{n}.csv")
            generate_w1(args.sluice, data, n)
            variables = {"input": data}
            if workflow == w1:
                variables["output"] = out + ".csv"
        else:
            data = os.path.join(work, f"wide_{n}.jsonl")
            generate_wide(data, n)
            variables = {"input": data, "output": out + ".parquet"}
        results = [run_once(args.sluice, workflow, limit, variables, work)
                   for _ in range(args.runs)]
        good = [r for r in results if r["ok"]]
        if not good:
            rows.append((name, limit, None, None, None, None, results[0]["err"][0]))
            continue
        rss = statistics.median(r["rss"] for r in good)
        sampled = statistics.median(r["sampled"] for r in good)
        wall = statistics.median(r["wall"] for r in good)
        over = rss - limit * MB
        verdict = "ok" if limit < 64 or rss <= limit * MB + SLACK else "OVER"
        rows.append((name, limit, rss, over, sampled, wall, verdict))
        for p in (out + ".csv", out + ".parquet"):
            if os.path.exists(p):
                os.remove(p)
    print(f"\nbinary: {args.sluice}; runs per case: {args.runs} (medians)\n")
    print("| case | limit MB | peak RSS MB | over limit MB | report peak MB | wall s | target |")
    print("|------|----------|-------------|---------------|----------------|--------|--------|")
    for name, limit, rss, over, sampled, wall, verdict in rows:
        if rss is None:
            print(f"| {name} | {limit} | refused: {verdict} | | | | |")
        else:
            print(f"| {name} | {limit} | {rss / MB:.0f} | {over / MB:+.0f} | {sampled / MB:.0f}"
                  f" | {wall:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
