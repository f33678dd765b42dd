#!/usr/bin/env python3
"""STAC item search ingest: sluice's stac_reader at concurrency 1 and 8 against
pystac-client's sequential paging, all reading the same test STAC API
(tests/http/stac_server.py: 10,000 items, 100 per page, 50 ms per request), side by side
in one run (the tools take turns), reporting median wall time and peak memory (RSS).

    cargo build --release
    python3 -m pip install pystac-client     # optional: the pystac-client rows
    python3 benches/stac_ingest.py [--items 10000] [--page-size 100] [--latency-ms 50] [--runs 3]

sluice searches the year in 16 datetime slices (the issue's request splitting), each a
chain of pages followed in order; concurrency 1 fetches one request at a time, 8 up to
eight. Its features go to `noop_sink`. pystac-client pages one request after another
through the `next` links (POST, as it does by default when the API conforms to item
search); both `items_as_dicts()` (no objects built) and `items()` (pystac Items) are timed.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
SERVER = os.path.join(ROOT, "tests", "http", "stac_server.py")
DATETIME = "2024-01-01T00:00:00Z/2025-01-01T00:00:00Z"

WORKFLOW = """nodes:
  - id: search
    action: stac_reader
    with:
      url: "{url}"
      collections: [sentinel-2-l2a]
      datetime: {datetime}
      chunks: {chunks}
      limit: {limit}
      concurrency: {concurrency}
  - {{ id: count, action: noop_sink }}
edges: [ search -> count ]
"""

PYSTAC = r"""
import sys
from pystac_client import Client
url, limit, mode, datetime = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
search = Client.open(url).search(collections=["sentinel-2-l2a"], datetime=datetime, limit=limit)
it = search.items_as_dicts() if mode == "dicts" else search.items()
n = sum(1 for _ in it)
print(n)
"""


def run(cmd):
    """Runs cmd; returns (seconds, peak RSS in MiB, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{cmd[0]} failed ({status}): {err.decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024.0, out.decode().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10000)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--latency-ms", type=float, default=50)
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    try:
        import pystac_client  # noqa: F401
        have_pystac = True
    except ImportError:
        have_pystac = False
        print("pystac-client is not installed (python3 -m pip install pystac-client): "
              "its rows are skipped", file=sys.stderr)
    server = subprocess.Popen(
        [sys.executable, SERVER, "--items", str(args.items), "--page-size", str(args.page_size),
         "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE)
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        work = tempfile.mkdtemp(prefix="stac-bench-")
        cases = []
        for c in (1, 8):
            wf = os.path.join(work, f"c{c}.yaml")
            with open(wf, "w") as f:
                f.write(WORKFLOW.format(url=url, datetime=DATETIME, chunks=args.chunks,
                                        limit=args.page_size, concurrency=c))
            cases.append((f"sluice stac_reader, concurrency {c}",
                          [SLUICE, "run", wf, "--quiet"]))
        if have_pystac:
            for mode in ("dicts", "items"):
                label = "items_as_dicts()" if mode == "dicts" else "items()"
                cases.append((f"pystac-client {label}, sequential",
                              [sys.executable, "-c", PYSTAC, url, str(args.page_size), mode,
                               DATETIME]))
        times = {name: [] for name, _ in cases}
        rss = {name: [] for name, _ in cases}
        for r in range(args.runs):
            for name, cmd in cases:
                t, m, out = run(cmd)
                if name.startswith("pystac") and out != str(args.items):
                    sys.exit(f"{name} read {out} items, not {args.items}")
                times[name].append(t)
                rss[name].append(m)
                print(f"run {r + 1}: {name}: {t:.2f} s, {m:.0f} MiB", file=sys.stderr)
        base = statistics.median(times[cases[0][0]])
        print(f"\n{args.items} items, {args.page_size} per page, {args.latency_ms:g} ms per "
              f"request; sluice in {args.chunks} datetime slices; median of {args.runs}\n")
        print("| reader | wall time | items/s | peak RSS | vs sluice c1 |")
        print("|---|---:|---:|---:|---:|")
        for name, _ in cases:
            t = statistics.median(times[name])
            m = max(rss[name])
            print(f"| {name} | {t:.2f} s | {args.items / t:,.0f} | {m:.0f} MiB | "
                  f"{base / t:.1f}x |")
        c8 = statistics.median(times[cases[1][0]])
        for name, _ in cases[2:]:
            print(f"\nsluice concurrency 8 vs {name}: "
                  f"{statistics.median(times[name]) / c8:.1f}x faster")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
