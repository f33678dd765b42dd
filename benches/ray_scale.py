#!/usr/bin/env python3
"""W1 through the Ray driver (N partitions) against one `sluice run`, A B A B in one run.

    cargo build --release && python3 -m pip install ray
    python3 benches/ray_scale.py --rows 20000000 --partitions 2 --runs 2

Prints each run's whole-process wall time (the Ray run includes starting Ray locally), the
stages' own time from the driver's report, the ratios (medians), the bytes that crossed the
cut against the input written as Parquet, and checks that the outputs are byte-identical.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    t = time.monotonic()
    subprocess.run(cmd, check=True, **kw)
    return time.monotonic() - t


def du(path):
    total = 0
    for base, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(base, f))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sluice", default=os.path.join(ROOT, "target/release/sluice"))
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    a = ap.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        sys.exit("ray is not installed: python3 -m pip install ray")
    scratch = a.dir or tempfile.mkdtemp(prefix="sluice-ray-bench-")
    os.makedirs(scratch, exist_ok=True)
    data = os.path.join(scratch, "w1.csv")
    if not os.path.exists(data):
        run([a.sluice, "generate", "w1", "--rows", str(a.rows), "--out", data],
            stdout=subprocess.DEVNULL)
    wf = os.path.join(ROOT, "workflows/w1.yaml")
    single_out = os.path.join(scratch, "single.csv")
    ray_out = os.path.join(scratch, "ray.csv")
    job = os.path.join(scratch, "job")
    singles, rays, stages = [], [], []
    for i in range(a.runs):
        singles.append(run([a.sluice, "run", wf, "-q", "--var", f"input={data}",
                            "--var", f"output={single_out}"]))
        shutil.rmtree(job, ignore_errors=True)
        rays.append(run([sys.executable, os.path.join(ROOT, "scale/ray_driver.py"), wf,
                         "--partitions", str(a.partitions), "--job", job, "--quiet",
                         "--sluice", a.sluice, "--var", f"input={data}",
                         "--var", f"output={ray_out}"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with open(os.path.join(job, "report.json")) as f:
            stages.append(json.load(f)["elapsed_ms"] / 1000)
        print(f"run {i + 1}: single {singles[-1]:.2f} s, ray N={a.partitions} "
              f"{rays[-1]:.2f} s (stages {stages[-1]:.2f} s)")
    with open(single_out, "rb") as x, open(ray_out, "rb") as y:
        identical = x.read() == y.read()
    cut = du(os.path.join(job, "stage-0"))
    parquet = os.path.join(scratch, "w1.parquet")
    if not os.path.exists(parquet):
        wf_pq = os.path.join(scratch, "to_parquet.yaml")
        with open(wf_pq, "w") as f:
            f.write("name: to_parquet\nnodes:\n"
                    f"  - {{ id: read, action: csv_reader, with: {{ path: {data} }} }}\n"
                    f"  - {{ id: write, action: parquet_writer, with: {{ path: {parquet} }} }}\n"
                    "edges:\n  - read -> write\n")
        run([a.sluice, "run", wf_pq, "-q"])
    s, r, st = (statistics.median(v) for v in (singles, rays, stages))
    print(f"\nW1 {a.rows:,} rows, medians of {a.runs}: single {s:.2f} s, "
          f"ray N={a.partitions} {r:.2f} s ({r / s:.2f}x; stages alone {st:.2f} s, {st / s:.2f}x)")
    print(f"cut: {cut / 1e6:.1f} MB, {cut / os.path.getsize(parquet):.2f}x the input as Parquet "
          f"({os.path.getsize(parquet) / 1e6:.1f} MB)")
    print("outputs byte-identical:", "yes" if identical else "NO")
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
