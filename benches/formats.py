#!/usr/bin/env python3
"""Format conversions on 20,000 generated polygons of 200 vertices: sluice against ogr2ogr
(GDAL) and pyogrio (GDAL through Arrow, in Python), side by side in one run (the tools take
turns: A B C A B C ...), reporting median wall time and peak memory (RSS) and ratios
against ogr2ogr.

    cargo build --release
    python3 -m pip install pyogrio pyarrow   # optional: the pyogrio column
    python3 benches/formats.py [--polygons 20000] [--vertices 200] [--runs 3]

Cases (the issue's three):
  1. Shapefile -> GeoPackage          workflows/shp_to_gpkg.yaml
  2. GeoPackage -> FlatGeobuf         workflows/gpkg_to_fgb.yaml
  3. zipped Shapefile -> GeoParquet   workflows/zip_to_geoparquet.yaml
     (ogr2ogr only when its GDAL has the Parquet driver; Debian's 3.6 has not)

The inputs are made once with ogr2ogr from a generated GeoJSON file, so every tool reads
the same bytes. "sluice 48MB" is the same run with `--memory-limit 48MB`.
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
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, "target", "release", "sluice")
WORKFLOWS = os.path.join(ROOT, "workflows")


def generate(path, polygons, vertices):
    rnd = random.Random(42)
    with open(path, "w") as f:
        f.write('{"type":"FeatureCollection","features":[\n')
        for i in range(polygons):
            cx, cy = rnd.uniform(0, 100000), rnd.uniform(0, 100000)
            ring = []
            for k in range(vertices - 1):
                a = -2 * math.pi * k / (vertices - 1)
                r = rnd.uniform(50, 100)
                ring.append([round(cx + r * math.cos(a), 3), round(cy + r * math.sin(a), 3)])
            ring.append(ring[0])
            props = {"id": i, "name": f"parcel {i}", "value": round(rnd.uniform(0, 1e6), 2)}
            feat = {"type": "Feature", "properties": props,
                    "geometry": {"type": "Polygon", "coordinates": [ring]}}
            f.write(json.dumps(feat, separators=(",", ":")))
            f.write(",\n" if i + 1 < polygons else "\n")
        f.write("]}\n")


def measured(cmd):
    """(wall seconds, peak RSS MiB) of one command, by /usr/bin/time."""
    out = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, check=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, rss = out.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) / 1024


def pyogrio_cmd(src, dst, driver, layer=None):
    code = (
        "import pyogrio,sys\n"
        f"meta, table = pyogrio.read_arrow({src!r}{', layer=' + repr(layer) if layer else ''})\n"
        f"pyogrio.write_arrow(table, {dst!r}, driver={driver!r}, geometry_name=meta['geometry_name'] or 'geometry',"
        " geometry_type=meta['geometry_type'], crs=meta['crs'], encoding='UTF-8')\n"
        if driver != "Parquet" else
        "import pyogrio,pyarrow.parquet as pq\n"
        f"meta, table = pyogrio.read_arrow({src!r})\n"
        f"pq.write_table(table, {dst!r})\n"
    )
    return [sys.executable, "-c", code]


def have_pyogrio():
    try:
        subprocess.run([sys.executable, "-c", "import pyogrio, pyarrow; pyogrio.write_arrow"],
                       check=True, capture_output=True)
        return True
    except subprocess.CalledProcessError:
        return False


def ogr_has(driver):
    out = subprocess.run(["ogrinfo", "--formats"], capture_output=True, text=True).stdout
    return f"  {driver} " in out or f"  {driver} (" in out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--polygons", type=int, default=20000)
    ap.add_argument("--vertices", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(SLUICE):
        sys.exit("build first: cargo build --release")
    if not shutil.which("ogr2ogr"):
        sys.exit("ogr2ogr is needed to make the inputs: apt-get install gdal-bin")
    work = tempfile.mkdtemp(prefix="formats-")
    src = os.path.join(work, "parcels.geojson")
    generate(src, args.polygons, args.vertices)
    shp = os.path.join(work, "parcels.shp")
    gpkg = os.path.join(work, "parcels.gpkg")
    zipped = os.path.join(work, "parcels.zip")
    subprocess.run(["ogr2ogr", "-f", "ESRI Shapefile", "-a_srs", "EPSG:2154", shp, src], check=True)
    subprocess.run(["ogr2ogr", "-f", "GPKG", "-a_srs", "EPSG:2154", "-nln", "parcels", gpkg, src], check=True)
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        for ext in ["shp", "shx", "dbf", "prj", "cpg"]:
            p = os.path.join(work, f"parcels.{ext}")
            if os.path.exists(p):
                z.write(p, f"parcels.{ext}")
    pyogrio = have_pyogrio()
    if not pyogrio:
        print("(pyogrio or pyarrow missing: python3 -m pip install pyogrio pyarrow)")

    def sluice(workflow, inp, ext, limit=None):
        extra = ["--memory-limit", limit] if limit else []
        return lambda out: [SLUICE, "run", os.path.join(WORKFLOWS, workflow), "--quiet",
                            "--var", f"input={inp}", "--var", f"output={out}"] + extra

    cases = [
        ("Shapefile -> GeoPackage", "gpkg", [
            ("sluice", sluice("shp_to_gpkg.yaml", shp, "gpkg")),
            ("sluice 48MB", sluice("shp_to_gpkg.yaml", shp, "gpkg", "48MB")),
            ("ogr2ogr", lambda out: ["ogr2ogr", "-f", "GPKG", out, shp]),
            ("pyogrio", lambda out: pyogrio_cmd(shp, out, "GPKG")),
        ]),
        ("GeoPackage -> FlatGeobuf", "fgb", [
            ("sluice", sluice("gpkg_to_fgb.yaml", gpkg, "fgb")),
            ("sluice 48MB", sluice("gpkg_to_fgb.yaml", gpkg, "fgb", "48MB")),
            ("ogr2ogr", lambda out: ["ogr2ogr", "-f", "FlatGeobuf", out, gpkg]),
            ("pyogrio", lambda out: pyogrio_cmd(gpkg, out, "FlatGeobuf")),
        ]),
        ("zipped Shapefile -> GeoParquet", "parquet", [
            ("sluice", sluice("zip_to_geoparquet.yaml", zipped, "parquet")),
            ("sluice 48MB", sluice("zip_to_geoparquet.yaml", zipped, "parquet", "48MB")),
        ] + ([("ogr2ogr", lambda out: ["ogr2ogr", "-f", "Parquet", out, "/vsizip/" + zipped])]
             if ogr_has("Parquet") else [])
          + [("pyogrio", lambda out: pyogrio_cmd("/vsizip/" + zipped, out, "Parquet"))]),
    ]
    print(f"\n{args.polygons:,} polygons x {args.vertices} vertices; median of {args.runs} "
          f"interleaved runs; {os.cpu_count()} cores\n")
    print("| conversion | tool | wall s | peak MiB | wall / ogr2ogr | peak / ogr2ogr |")
    print("|---|---|---|---|---|---|")
    for title, ext, tools in cases:
        tools = [t for t in tools if t[0] != "pyogrio" or pyogrio]
        results = {name: [] for name, _ in tools}
        for i in range(args.runs):
            for name, cmd in tools:
                out = os.path.join(work, f"out-{name}-{i}.{ext}")
                results[name].append(measured(cmd(out)))
                if os.path.isdir(out):
                    shutil.rmtree(out)
                elif os.path.exists(out):
                    os.remove(out)
        med = {}
        for name, runs in results.items():
            walls = sorted(w for w, _ in runs)
            peaks = sorted(p for _, p in runs)
            med[name] = (walls[len(walls) // 2], peaks[len(peaks) // 2])
        base = med.get("ogr2ogr")
        for name, (wall, peak) in med.items():
            rw = f"{wall / base[0]:.2f}" if base else "-"
            rp = f"{peak / base[1]:.2f}" if base else "-"
            print(f"| {title} | {name} | {wall:.2f} | {peak:.0f} | {rw} | {rp} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
