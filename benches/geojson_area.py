#!/usr/bin/env python3
"""GeoJSON polygons -> area -> GeoJSON: sluice (workflows/polygon_area.yaml) against ogr2ogr
(OGR SQL `OGR_GEOM_AREA`) and geopandas (read_file, `.area`, to_file) when they are
installed, on 20,000 generated polygons of 200 vertices. The cases run interleaved, once per
round (A B C, A B C, ...), so a slow moment of the machine falls on all of them alike.

    cargo build --release
    pip install geopandas            # optional
    python3 benches/geojson_area.py [--polygons 20000] [--vertices 200] [--runs 3]
"""
import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")


def generate(path, polygons, vertices):
    rnd = random.Random(42)
    with open(path, "w") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        for i in range(polygons):
            cx, cy = rnd.uniform(0, 100000), rnd.uniform(0, 100000)
            ring = []
            for k in range(vertices - 1):
                a = 2 * math.pi * k / (vertices - 1)
                r = rnd.uniform(50, 100)
                ring.append([round(cx + r * math.cos(a), 3), round(cy + r * math.sin(a), 3)])
            ring.append(ring[0])
            feat = {"type": "Feature", "properties": {"id": i, "name": f"p{i}"},
                    "geometry": {"type": "Polygon", "coordinates": [ring]}}
            f.write(json.dumps(feat, separators=(",", ":")))
            f.write(",\n" if i + 1 < polygons else "\n")
        f.write("]}\n")


GEOPANDAS = """
import sys, geopandas
gdf = geopandas.read_file(sys.argv[1])
gdf["area"] = gdf.geometry.area
gdf.to_file(sys.argv[2], driver="GeoJSON")
"""


def has_geopandas():
    return subprocess.run([sys.executable, "-c", "import geopandas"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def timed(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--polygons", type=int, default=20000)
    ap.add_argument("--vertices", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    work = tempfile.mkdtemp(prefix="area-")
    data = os.path.join(work, "polygons.geojson")
    generate(data, args.polygons, args.vertices)
    size = os.path.getsize(data) / 2**20
    cases = [("sluice", lambda out: [SLUICE, "run", os.path.join(ROOT, "workflows", "polygon_area.yaml"), "--quiet",
                                     "--var", f"input={data}", "--var", f"output={out}"])]
    if shutil.which("ogr2ogr"):
        cases.append(("ogr2ogr", lambda out: ["ogr2ogr", "-f", "GeoJSON", out, data, "-dialect", "OGRSQL", "-sql",
                                              "SELECT *, OGR_GEOM_AREA AS area FROM polygons"]))
    else:
        print("(ogr2ogr not installed: apt-get install gdal-bin)")
    if has_geopandas():
        script = os.path.join(work, "geopandas_area.py")
        with open(script, "w") as f:
            f.write(GEOPANDAS)
        cases.append(("geopandas", lambda out: [sys.executable, script, data, out]))
    else:
        print("(geopandas not installed: pip install geopandas)")
    walls = {name: [] for name, _ in cases}
    for i in range(args.runs):
        for name, cmd in cases:
            out = os.path.join(work, f"{name}-{i}.geojson")
            walls[name].append(timed(cmd(out)))
            os.remove(out)
    rows = [(name, sorted(w)[len(w) // 2]) for name, w in walls.items()]
    print(f"\n{args.polygons:,} polygons x {args.vertices} vertices ({size:.0f} MiB GeoJSON), "
          f"medians of {args.runs} interleaved runs\n")
    print("| tool | wall s | polygons/s | wall / sluice | sluice / tool |")
    print("|------|--------|------------|---------------|---------------|")
    for name, wall in rows:
        print(f"| {name} | {wall:.2f} | {args.polygons / wall:,.0f} | {wall / rows[0][1]:.2f} "
              f"| {rows[0][1] / wall:.2f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
