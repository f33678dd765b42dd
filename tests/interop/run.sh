#!/usr/bin/env bash
# Interoperability with pyarrow, both ways (called by .ci/run):
#   1. sluice reads places.geojson and writes GeoParquet; pyarrow reads it back and
#      check_geoparquet.py checks rows, columns, the `geo` metadata and the WKB;
#   2. pyarrow writes a Parquet file (ints, floats, strings, timestamps, dates, nulls);
#      sluice reads it and writes CSV; the script checks the CSV byte for byte.
# Skipped (exit 0) when python3 has no pyarrow. Builds nothing unless target/debug/sluice
# is missing (set SLUICE_BIN to use another binary). Everything is written under a
# temporary folder that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! python3 -c "import pyarrow" >/dev/null 2>&1; then
  echo "interop: skipped (python3 cannot import pyarrow)"
  exit 0
fi

sluice="${SLUICE_BIN:-target/debug/sluice}"
if [ ! -x "$sluice" ]; then
  echo "interop: building $sluice"
  cargo build --quiet
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
here=tests/interop

"$sluice" run --quiet "$here/to_geoparquet.yaml" \
  --var "input=$here/places.geojson" --var "output=$work/places.parquet"
python3 "$here/check_geoparquet.py" check-geoparquet "$work/places.parquet"

python3 "$here/check_geoparquet.py" write-parquet "$work/pyarrow.parquet"
"$sluice" run --quiet "$here/from_parquet.yaml" \
  --var "input=$work/pyarrow.parquet" --var "output=$work/pyarrow.csv"
python3 "$here/check_geoparquet.py" check-csv "$work/pyarrow.csv"

echo "interop: ok"
