#!/usr/bin/env python3
"""What capture costs on W1, all measured in this run on this machine (paired, medians).

    cargo build --release
    python3 benches/capture.py [--rows 2000000] [--runs 3] [--base OLD_SLUICE_BINARY]

Rows of the table:
- W1 without capture (and, with --base, the same with another build: "off is free");
- W1 with --capture all (every edge) and with one edge (keep.passed->order);
- the same at --memory-limit 64MB;
- `sluice inspect` of the first 100 features of the 2 M-feature edge read->value2;
- `run --from order` (fed from the captured keep.passed->order) against the full run;
- the job's bytes against what pyarrow writes of the same rows (when pyarrow is installed).

Ratios are against W1 without capture at the same memory limit. Peak RSS is ru_maxrss.
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
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
W1 = os.path.join(ROOT, "workflows", "w1.yaml")


def timed(cmd):
    wrapper = [sys.executable, "-c",
               "import resource,subprocess,sys;"
               "r=subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode;"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
               "sys.exit(r)"] + cmd
    t0 = time.perf_counter()
    proc = subprocess.run(wrapper, stdout=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return wall, int(proc.stdout.decode().strip() or 0) * 1024


def pyarrow_bytes(job):
    """Bytes pyarrow (default settings) writes for the rows of each capture file."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    total = 0
    m = json.load(open(os.path.join(job, "manifest.json")))
    with tempfile.TemporaryDirectory() as tmp:
        for e in m["edges"]:
            for f in e["files"]:
                t = pq.read_table(os.path.join(job, f["path"]))
                t = t.select([c for c in t.column_names if not c.startswith("__")])
                out = os.path.join(tmp, "f.parquet")
                pq.write_table(t, out)
                total += os.path.getsize(out)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--base", help="another sluice binary to compare 'no capture' with")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sluice-capture-bench-")
    try:
        data = os.path.join(work, "w1.csv")
        subprocess.run([SLUICE, "generate", "w1", "--rows", str(args.rows), "--out", data],
                       check=True, stderr=subprocess.DEVNULL)
        out = os.path.join(work, "out.csv")
        job = os.path.join(work, "job")

        def w1(binary=SLUICE, extra=()):
            shutil.rmtree(job, ignore_errors=True)
            return timed([binary, "run", W1, "-q", "--var", f"input={data}",
                          "--var", f"output={out}", *extra])

        cap_all = ["--capture", "all", "--job-dir", job]
        cap_one = ["--capture", "keep.passed->order", "--job-dir", job]
        configs = []
        for limit in ([], ["--memory-limit", "64MB"]):
            tag = " (64MB)" if limit else ""
            if args.base:
                configs.append((f"base build, no capture{tag}", args.base, limit, tag))
            configs.append((f"no capture{tag}", SLUICE, limit, tag))
            configs.append((f"--capture all{tag}", SLUICE, limit + cap_all, tag))
            configs.append((f"--capture keep.passed->order{tag}", SLUICE, limit + cap_one, tag))
        results = {name: [] for name, *_ in configs}
        for _ in range(args.runs):  # A B A B: every config once per round
            for name, binary, extra, _ in configs:
                results[name].append(w1(binary, extra))

        # A job with every edge, for inspect, --from and the sizes.
        w1(SLUICE, cap_all)
        job_bytes = sum(e["bytes"] for e in json.load(open(os.path.join(job, "manifest.json")))["edges"])
        inspect = []
        for _ in range(max(args.runs, 5)):
            t0 = time.perf_counter()
            subprocess.run([SLUICE, "inspect", job, "read->value2", "--limit", "100"],
                           stdout=subprocess.DEVNULL, check=True)
            inspect.append(time.perf_counter() - t0)
        full, rerun = [], []
        for _ in range(args.runs):
            full.append(timed([SLUICE, "run", W1, "-q", "--var", f"input={data}",
                               "--var", f"output={out}"])[0])
            rerun.append(timed([SLUICE, "run", W1, "-q", "--var", f"input={data}",
                                "--var", f"output={out}.from", "--from", "order",
                                "--job-dir", job])[0])
        same = open(out, "rb").read() == open(out + ".from", "rb").read()

        print(f"W1, {args.rows:,} rows, medians of {args.runs} paired runs")
        print(f"{'configuration':<44} {'wall s':>8} {'ratio':>6} {'peak MiB':>9} {'ratio':>6}")
        for name, _, _, tag in configs:
            wall = statistics.median(w for w, _ in results[name])
            rss = statistics.median(r for _, r in results[name])
            ref = results[f"no capture{tag}"]
            rw = statistics.median(w for w, _ in ref)
            rr = statistics.median(r for _, r in ref)
            print(f"{name:<44} {wall:>8.2f} {wall / rw:>6.2f} {rss / 2**20:>9.1f} {rss / rr:>6.2f}")
        print(f"inspect, first 100 of read->value2: {statistics.median(inspect) * 1000:.0f} ms")
        f, r = statistics.median(full), statistics.median(rerun)
        print(f"--from order: {r:.2f} s against the full run's {f:.2f} s ({f / r:.2f}x faster); "
              f"output {'byte-identical' if same else 'DIFFERENT'}")
        theirs = pyarrow_bytes(job)
        if theirs:
            print(f"job bytes {job_bytes:,}; pyarrow writes {theirs:,} for the same rows "
                  f"({job_bytes / theirs:.2f}x)")
        else:
            print(f"job bytes {job_bytes:,} (install pyarrow to compare)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
