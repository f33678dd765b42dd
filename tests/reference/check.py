#!/usr/bin/env python3
"""Reference check of sluice's geometry actions against pyproj and shapely (called by run.sh).

  check.py [OUT_DIR]

Runs `$SLUICE_BIN run geometry.yaml` (default binary: target/debug/sluice) over corpus.geojson
and probes.geojson, writing its results to OUT_DIR (default: a temporary folder), and compares
each feature's results with:

  geodesic area, length   pyproj Geod(ellps="WGS84"), relative error <= GEODESIC_REL (absolute
                          below 1e-3 m or m2: degenerate rings enclose next to nothing);
  planar area, length,    shapely (GEOS), |error| <= PLANAR_REL * max(|reference|, 1): that is
  centroid, bounds,       relative for values beyond 1 (coordinates are degrees, areas square
  convex hull             degrees) and absolute near zero;
  buffer                  shapely buffer (quad_segs=8, round caps and joins), area within
                          BUFFER_REL; only for geometries GEOS deems valid (the buffer of an
                          invalid polygon is not defined the same way by both libraries);
  spatial_filter          shapely contains: the first probe point each geometry contains.

Also checks that the features of one `pair` in the corpus (the same shape, rings wound
either way) get the same results from every action, simplify included, and that features
with empty or missing geometries go to `rejected` where the action's documentation says so
(bounds, centroid and convex_hull reject empty geometries; every action but the measures
rejects a missing one).

The geodesic area of a polygon is |exterior| - sum |hole|, each ring measured with
`Geod.polygon_area_perimeter` (signed: negative for clockwise rings). `geometry_area_perimeter`
itself adds the holes' signed areas, which is right only when holes run clockwise; the check
confirms the two agree on the polygons wound that way.

Exit status 0 when everything matches, 1 with a table of the mismatches otherwise.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

import shapely
from pyproj import Geod
from shapely.geometry import shape

GEODESIC_REL = 1e-9
PLANAR_REL = 1e-12
BUFFER_REL = 0.005
# The buffer distance passed to geometry.yaml, in degrees.
BUFFER_DISTANCE = 0.05
# Pairs must agree with each other at least this well (summation order differs with winding).
PAIR_REL = 1e-12

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GEOD = Geod(ellps="WGS84")


def run_sluice(out_dir):
    binary = os.path.abspath(
        os.environ.get("SLUICE_BIN", os.path.join(ROOT, "target", "debug", "sluice")))
    subprocess.run(
        [binary, "run", "--quiet", os.path.join(HERE, "geometry.yaml"),
         "--var", f"input={os.path.join(HERE, 'corpus.geojson')}",
         "--var", f"probes={os.path.join(HERE, 'probes.geojson')}",
         "--var", f"out={out_dir}",
         "--var", f"buffer_distance={BUFFER_DISTANCE}"],
        check=True, cwd=ROOT)


def read_features(path):
    with open(path) as f:
        return json.load(f)["features"]


def by_name(features):
    return {f["properties"]["name"]: f for f in features}


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------

def parts(geom, kinds):
    """The members of a shapely geometry of the given types, collections and multis opened."""
    if geom.geom_type in kinds:
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in parts(g, kinds)]
    return []


def ring_area(ring):
    lons, lats = ring.xy
    if len(lons) == 0:
        return 0.0
    area, _ = GEOD.polygon_area_perimeter(lons, lats)
    return abs(area)


def geodesic_area(geom):
    if not polygonal_type(geom):
        return None
    return sum(ring_area(p.exterior) - sum(ring_area(h) for h in p.interiors)
               for p in parts(geom, ("Polygon",)))


def polygonal_type(geom):
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return True
    return geom.geom_type == "GeometryCollection" and any(polygonal_type(g) for g in geom.geoms)


def linear_type(geom):
    if geom.geom_type in ("LineString", "MultiLineString"):
        return True
    return geom.geom_type == "GeometryCollection" and any(linear_type(g) for g in geom.geoms)


def planar_area(geom):
    if not polygonal_type(geom):
        return None
    return sum(p.area for p in parts(geom, ("Polygon",)))


def geodesic_length(geom):
    if not linear_type(geom):
        return None
    total = 0.0
    for line in parts(geom, ("LineString",)):
        lons, lats = line.xy
        if len(lons) >= 2:
            total += GEOD.line_length(lons, lats)
    return total


def planar_length(geom):
    if not linear_type(geom):
        return None
    return sum(p.length for p in parts(geom, ("LineString",)))


def pyproj_wound(geom):
    """Whether every ring is wound as geometry_area_perimeter expects: exteriors with a
    positive signed area, holes with a negative one. (Planar winding is not enough: a ring
    whose longitudes wrap at the antimeridian, or that circles a pole, can be
    counter-clockwise in the plane and clockwise on the ellipsoid.)"""
    def signed(ring):
        lons, lats = ring.xy
        return GEOD.polygon_area_perimeter(lons, lats)[0] if len(lons) else 0.0
    return all(signed(p.exterior) > 0 and all(signed(h) < 0 for h in p.interiors)
               for p in parts(geom, ("Polygon",)) if not p.is_empty)


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.failures = []
        self.worst = {}
        self.counts = {}

    def compare(self, check, name, got, want, tol, rel_floor=0.0):
        """got vs want within tol * max(|want|, rel_floor); None must match None."""
        self.counts[check] = self.counts.get(check, 0) + 1
        if want is None or got is None:
            if want is not got:
                self.fail(check, name, got, want, "null on one side", tol)
            return
        scale = max(abs(want), rel_floor)
        err = abs(got - want) / scale if scale > 0 else abs(got - want)
        if not math.isfinite(got) or err > tol:
            self.fail(check, name, got, want, err, tol)
        self.worst[check] = max(self.worst.get(check, 0.0), err)

    def expect(self, check, name, ok, got, want):
        self.counts[check] = self.counts.get(check, 0) + 1
        if not ok:
            self.fail(check, name, got, want, "-", "-")

    def fail(self, check, name, got, want, err, tol):
        self.failures.append((check, name, got, want, err, tol))

    def print(self):
        print(f"{'check':<24} {'compared':>8} {'max error':>10}")
        for check in sorted(self.counts):
            worst = self.worst.get(check)
            shown = f"{worst:10.1e}" if worst is not None else f"{'-':>10}"
            print(f"{check:<24} {self.counts[check]:>8} {shown}")
        if self.failures:
            print(f"\n{len(self.failures)} mismatch(es):")
            width = max(len("feature"), *(len(f[1]) for f in self.failures))
            print(f"{'check':<24} {'feature':<{width}} {'sluice':>24} {'reference':>24} "
                  f"{'error':>9} {'allowed':>8}")
            for check, name, got, want, err, tol in self.failures:
                print(f"{check:<24} {name:<{width}} {fmt(got):>24} {fmt(want):>24} "
                      f"{fmt(err, 2):>9} {fmt(tol, 1):>8}")


def fmt(v, digits=17):
    if isinstance(v, float):
        return f"{v:.{digits}g}" if digits < 17 else repr(v)
    return str(v)


def close_coords(a, b):
    return all(abs(x - y) <= PLANAR_REL * max(abs(y), 1.0) for x, y in zip(a, b))


def vertex_set(geom):
    """The distinct vertices of a geometry, sorted (winding and start point do not matter)."""
    return sorted({tuple(c) for c in shapely.get_coordinates(geom).tolist()})


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

def main():
    if len(sys.argv) > 1:
        out_dir = sys.argv[1]
        os.makedirs(out_dir, exist_ok=True)
        return check(out_dir)
    with tempfile.TemporaryDirectory() as out_dir:
        return check(out_dir)


def check(out_dir):
    run_sluice(out_dir)
    corpus = read_features(os.path.join(HERE, "corpus.geojson"))
    probes = [(q["properties"]["probe"], shape(q["geometry"]))
              for q in read_features(os.path.join(HERE, "probes.geojson"))]
    out = {kind: by_name(read_features(os.path.join(out_dir, f"{kind}.geojson")))
           for kind in OUTPUTS}
    with open(os.path.join(out_dir, "rejected.jsonl")) as f:
        rejected = [json.loads(line) for line in f if line.strip()]
    r = Report()
    for feature in corpus:
        check_feature(feature, out, rejected, probes, r)
    check_pairs(corpus, out, r)
    r.print()
    if r.failures:
        print("\nreference: FAILED", file=sys.stderr)
        return 1
    print("reference: ok")
    return 0


OUTPUTS = ("measures", "bounds", "centroids", "hulls", "buffers", "simplified", "contains")


def check_feature(feature, out, rejected, probes, r):
    name = feature["properties"]["name"]
    geom = shape(feature["geometry"]) if feature["geometry"] is not None else None
    reasons = [x["_rejection_reason"] for x in rejected if x.get("name") == name]

    def expect_rejected(action, why):
        mine = [x for x in reasons if x.startswith(action + ":")]
        r.expect(f"{action} rejects", name, len(mine) == 1 and why in mine[0],
                 mine, f"{action}: ... {why}")

    # Measures: every feature, null where there is nothing to measure.
    m = out["measures"].get(name)
    if m is None:
        r.fail("measures", name, "missing", "a feature", "-", "-")
    else:
        p = m["properties"]
        none = geom is None
        r.compare("area geodesic", name, p["area_geodesic"],
                  None if none else geodesic_area(geom), GEODESIC_REL, 1e-3)
        r.compare("area planar", name, p["area_planar"],
                  None if none else planar_area(geom), PLANAR_REL, 1.0)
        r.compare("length geodesic", name, p["length_geodesic"],
                  None if none else geodesic_length(geom), GEODESIC_REL, 1e-3)
        r.compare("length planar", name, p["length_planar"],
                  None if none else planar_length(geom), PLANAR_REL, 1.0)
        # The reference formula agrees with pyproj's own where pyproj's holds.
        if not none and geom.geom_type in ("Polygon", "MultiPolygon") and pyproj_wound(geom):
            direct, _ = GEOD.geometry_area_perimeter(geom)
            r.compare("pyproj self-check", name, geodesic_area(geom), direct, 1e-12, 1e-3)

    if geom is None:
        for action in ("bounds", "centroid", "convex_hull", "buffer", "simplify",
                       "spatial_filter"):
            expect_rejected(action, "no geometry")
        return
    if geom.is_empty:
        for action in ("bounds", "centroid", "convex_hull"):
            expect_rejected(action, "is empty")
    else:
        r.expect("not rejected", name, not reasons, reasons, "[]")
        check_constructions(name, geom, out, r)

    b = out["buffers"].get(name)
    if b is None:
        r.fail("buffer", name, "missing", "a feature", "-", "-")
    elif geom.is_valid:
        got = shape(b["geometry"])
        want = geom.buffer(BUFFER_DISTANCE, quad_segs=8)
        r.compare("buffer area", name, got.area, want.area, BUFFER_REL, 1e-9)

    first = next((probe for probe, point in probes if geom.contains(point)), None)
    c = out["contains"].get(name)
    got = c["properties"]["probe_probe"] if c else None
    r.expect("spatial_filter contains", name, got == first, got, first)


def check_constructions(name, geom, out, r):
    """Bounds, centroid and convex hull of a non-empty geometry."""
    b = out["bounds"].get(name)
    if b is None:
        r.fail("bounds", name, "missing", geom.bounds, "-", "-")
    else:
        for key, want in zip(("xmin", "ymin", "xmax", "ymax"), geom.bounds):
            r.compare("bounds", name, b["properties"]["bbox_" + key], want, PLANAR_REL, 1.0)

    c = out["centroids"].get(name)
    want = geom.centroid
    if c is None:
        r.fail("centroid", name, "missing", want.wkt, "-", "-")
    else:
        x, y = c["geometry"]["coordinates"]
        r.compare("centroid x", name, x, want.x, PLANAR_REL, 1.0)
        r.compare("centroid y", name, y, want.y, PLANAR_REL, 1.0)

    h = out["hulls"].get(name)
    want = geom.convex_hull
    if h is None:
        r.fail("convex hull", name, "missing", want.wkt, "-", "-")
    else:
        got = shape(h["geometry"])
        same = got.geom_type == want.geom_type and vertex_set(got) == vertex_set(want)
        r.expect("convex hull vertices", name, same, got.wkt[:60], want.wkt[:60])
        r.compare("convex hull area", name, got.area, want.area, PLANAR_REL, 1.0)


def check_pairs(corpus, out, r):
    """Every action gives the same results for every member of a pair (windings differ)."""
    pairs = {}
    for f in corpus:
        pairs.setdefault(f["properties"]["pair"], []).append(f["properties"]["name"])
    for pair, names in pairs.items():
        if len(names) < 2:
            continue
        first, others = names[0], names[1:]
        for name in others:
            label = f"{name} ~ {first}"
            for kind, keys in (("measures", ("area_geodesic", "area_planar", "length_geodesic",
                                             "length_planar")),
                               ("bounds", ("bbox_xmin", "bbox_ymin", "bbox_xmax", "bbox_ymax"))):
                a, b = out[kind].get(name), out[kind].get(first)
                if a and b:
                    for key in keys:
                        r.compare(f"pair {key}", label, a["properties"][key],
                                  b["properties"][key], PAIR_REL, 1.0)
            for kind in ("centroids", "hulls", "simplified"):
                a, b = out[kind].get(name), out[kind].get(first)
                if a and b:
                    ga, gb = shape(a["geometry"]), shape(b["geometry"])
                    r.expect(f"pair {kind}", label,
                             ga.geom_type == gb.geom_type
                             and len(vertex_set(ga)) == len(vertex_set(gb))
                             and all(close_coords(x, y)
                                     for x, y in zip(vertex_set(ga), vertex_set(gb))),
                             ga.wkt[:60], gb.wkt[:60])
            a, b = out["buffers"].get(name), out["buffers"].get(first)
            if a and b:
                r.compare("pair buffer area", label, shape(a["geometry"]).area,
                          shape(b["geometry"]).area, 1e-9, 1e-9)
            a, b = out["contains"].get(name), out["contains"].get(first)
            r.expect("pair spatial_filter", label,
                     (a and a["properties"]["probe_probe"]) == (b and b["properties"]["probe_probe"]),
                     a and a["properties"]["probe_probe"], b and b["properties"]["probe_probe"])


if __name__ == "__main__":
    sys.exit(main())
