#!/usr/bin/env python3
"""Interop checks between sluice and pyarrow (called by run.sh).

  check_geoparquet.py check-geoparquet FILE   FILE (written by sluice from places.geojson)
                                              reads in pyarrow as valid GeoParquet
  check_geoparquet.py write-parquet FILE      writes a Parquet file with pyarrow
  check_geoparquet.py check-csv FILE          FILE (sluice's CSV of that Parquet file)
                                              holds exactly the expected text

WKB is decoded with shapely when it is installed, otherwise with the small decoder below.
"""

import datetime
import json
import struct
import sys

import pyarrow as pa
import pyarrow.parquet as pq

# What places.geojson holds, in order: name, population, area, open, geometry (GeoJSON-like).
EXPECTED_ROWS = [
    ("Jardin", 0, 22.5, True,
     ("Polygon", [[(2.3371, 48.8462), (2.3405, 48.8462), (2.3405, 48.8490), (2.3371, 48.8462)]])),
    ("Lyon", 522250, 47.87, False, ("Point", (4.8357, 45.764))),
    ("Rhône", None, None, None, ("LineString", [(4.8, 45.7), (4.85, 45.75), (4.9, 45.8)])),
    ("nowhere", -1, 0.1, True, None),
]


def fail(message):
    print(f"interop: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def expect(cond, message):
    if not cond:
        fail(message)


def decode_wkb(data):
    """A minimal ISO WKB reader (2D): returns (type name, coordinates) like GeoJSON."""
    names = {1: "Point", 2: "LineString", 3: "Polygon", 4: "MultiPoint",
             5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}
    pos = 0

    def take(fmt, order):
        nonlocal pos
        size = struct.calcsize(order + fmt)
        expect(pos + size <= len(data), "truncated WKB")
        values = struct.unpack_from(order + fmt, data, pos)
        pos += size
        return values

    def points(n, order):
        return [tuple(take("dd", order)) for _ in range(n)]

    def geometry():
        (flag,) = take("B", "<")
        order = "<" if flag == 1 else ">"
        (code,) = take("I", order)
        kind = names.get(code)
        expect(kind is not None, f"unknown WKB type {code}")
        if kind == "Point":
            return kind, tuple(take("dd", order))
        (n,) = take("I", order)
        if kind == "LineString":
            return kind, points(n, order)
        if kind == "Polygon":
            return kind, [points(take("I", order)[0], order) for _ in range(n)]
        return kind, [geometry() for _ in range(n)]

    result = geometry()
    expect(pos == len(data), f"{len(data) - pos} bytes left after the WKB geometry")
    return result


def shape_of(wkb):
    try:
        import shapely.wkb  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return decode_wkb(wkb)
    geom = shapely.wkb.loads(wkb)
    mapping = shapely.geometry.mapping(geom)
    coords = mapping["coordinates"]

    def tuples(c):
        return tuple(c) if isinstance(c[0], float) else [tuples(x) for x in c]

    return mapping["type"], tuples(coords)


def check_geoparquet(path):
    table = pq.read_table(path)
    expect(table.num_rows == len(EXPECTED_ROWS), f"{table.num_rows} rows, expected 4")
    expect(table.column_names == ["name", "population", "area", "open", "id", "geometry"],
           f"columns {table.column_names}")
    expect(table.schema.field("population").type == pa.int64(), "population is not int64")
    expect(table.schema.field("area").type == pa.float64(), "area is not float64")
    expect(table.schema.field("geometry").type == pa.binary(), "geometry is not binary")
    meta = table.schema.metadata or {}
    expect(b"geo" in meta, "no geo metadata")
    geo = json.loads(meta[b"geo"])
    expect(geo["version"] == "1.1.0", f"version {geo['version']}")
    expect(geo["primary_column"] == "geometry", "primary column")
    column = geo["columns"]["geometry"]
    expect(column["encoding"] == "WKB", "encoding")
    expect(column["geometry_types"] == ["LineString", "Point", "Polygon"],
           f"geometry_types {column['geometry_types']}")
    expect(column["bbox"] == [2.3371, 45.7, 4.9, 48.849], f"bbox {column['bbox']}")
    expect("crs" not in column, "EPSG:4326 is the default: no crs expected")

    rows = table.to_pylist()
    for row, (name, population, area, is_open, shape) in zip(rows, EXPECTED_ROWS):
        expect(row["name"] == name, f"name {row['name']!r}")
        expect(row["population"] == population, f"{name}: population {row['population']}")
        expect(row["area"] == area, f"{name}: area {row['area']}")
        expect(row["open"] == is_open, f"{name}: open {row['open']}")
        if shape is None:
            expect(row["geometry"] is None, f"{name}: geometry should be null")
        else:
            got = shape_of(row["geometry"])
            expect(got == shape, f"{name}: geometry {got} != {shape}")
    print(f"interop: {path}: GeoParquet read by pyarrow {pa.__version__}: ok")


def write_parquet(path):
    utc = datetime.timezone.utc
    table = pa.table({
        "i64": pa.array([1, None, -9223372036854775808], pa.int64()),
        "i32": pa.array([7, 8, None], pa.int32()),
        "u8": pa.array([255, 0, 1], pa.uint8()),
        "f64": pa.array([1.5, None, 0.1], pa.float64()),
        "f32": pa.array([2.0, -0.5, None], pa.float32()),
        "s": pa.array(["plain", "with, comma", None], pa.string()),
        "ts_ms_utc": pa.array([datetime.datetime(2024, 2, 29, 10, 11, 12, tzinfo=utc), None,
                               datetime.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=utc)],
                              pa.timestamp("ms", tz="UTC")),
        "ts_us": pa.array([datetime.datetime(2000, 1, 1, 0, 0, 0, 1), None, None],
                          pa.timestamp("us")),
        "day": pa.array([datetime.date(2024, 2, 29), None, datetime.date(1970, 1, 1)],
                        pa.date32()),
        "ok": pa.array([True, False, None], pa.bool_()),
        "nothing": pa.array([None, None, None], pa.null()),
    })
    pq.write_table(table, path, row_group_size=2)
    print(f"interop: {path}: Parquet written by pyarrow")


EXPECTED_CSV = (
    "i64,i32,u8,f64,f32,s,ts_ms_utc,ts_us,day,ok,nothing\n"
    "1,7,255,1.5,2.0,plain,2024-02-29T10:11:12Z,2000-01-01T00:00:00.000001,2024-02-29,true,\n"
    ",8,0,,-0.5,\"with, comma\",,,,false,\n"
    "-9223372036854775808,,1,0.1,,,1969-12-31T23:59:59.500000Z,,1970-01-01,,\n"
)


def check_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if text != EXPECTED_CSV:
        fail(f"{path} differs:\n--- got\n{text}--- expected\n{EXPECTED_CSV}")
    print(f"interop: {path}: pyarrow's Parquet read back by sluice: ok")


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    command, path = sys.argv[1], sys.argv[2]
    {
        "check-geoparquet": check_geoparquet,
        "write-parquet": write_parquet,
        "check-csv": check_csv,
    }.get(command, lambda _: fail(f"unknown command {command}"))(path)


if __name__ == "__main__":
    main()
