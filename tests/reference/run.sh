#!/usr/bin/env bash
# Reference check of the geometry actions (called by .ci/run): sluice runs geometry.yaml over
# corpus.geojson (both ring windings, holes, multipolygons, the antimeridian, polar caps,
# degenerate and empty geometries) and check.py compares its results with pyproj (geodesic
# area and length) and shapely/GEOS (planar measures, centroid, bounds, convex hull, buffer,
# spatial predicates). check.py states the tolerances and prints a table of mismatches.
# Skipped (exit 0) when python3 has no pyproj or no shapely 2. Builds nothing unless
# target/debug/sluice is missing (set SLUICE_BIN to use another binary). Everything is
# written under a temporary folder that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! python3 -c "import pyproj" >/dev/null 2>&1; then
  echo "reference: skipped (python3 cannot import pyproj)"
  exit 0
fi
if ! python3 -c "import shapely, sys; sys.exit(int(shapely.__version__.split('.')[0]) < 2)" \
    >/dev/null 2>&1; then
  echo "reference: skipped (python3 cannot import shapely 2)"
  exit 0
fi

export SLUICE_BIN="${SLUICE_BIN:-target/debug/sluice}"
if [ ! -x "$SLUICE_BIN" ]; then
  echo "reference: building $SLUICE_BIN"
  cargo build --quiet
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 tests/reference/check.py "$work"
