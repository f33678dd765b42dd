//! Cross-checks: for each family of actions, a small run whose emitted attributes and types
//! must be exactly what the action's schema function predicts, so the two cannot drift.

use serde_json::json;
use sluice_runtime::shape::{GeometryShape, Shape, Type};
use sluice_runtime::testing::assert_shapes_match;
use sluice_runtime::{Feature, Geometry, Value};

use crate::{geometry, processors, sources};

/// Orders with ids, names, amounts, cities and dates, some values null.
fn orders() -> Vec<Feature> {
    let row = |id: i64, name: &str, amount: Value, city: &str, tags: Value| {
        Feature::from_pairs(
            id as u64,
            [
                ("id", Value::Int(id)),
                ("name", Value::from(name)),
                ("amount", amount),
                ("city", Value::from(city)),
                ("date", Value::Date(19_800 + id as i32)),
                ("tags", tags),
            ],
        )
    };
    let tags = |t: &[&str]| Value::Array(t.iter().map(|s| Value::from(*s)).collect());
    vec![
        row(
            1,
            "Harbour Park",
            Value::Float(120.0),
            "Oslo",
            tags(&["a", "b"]),
        ),
        row(2, "Old Mill", Value::Float(14.5), "Bergen", tags(&["c"])),
        row(3, "Library", Value::Null, "Oslo", tags(&[])),
        row(
            4,
            "Kiosk",
            Value::Float(6.2),
            "Stavanger",
            tags(&["d", "e"]),
        ),
    ]
}

fn squares() -> Vec<Feature> {
    (0..3)
        .map(|i| {
            let x = i as f64;
            let poly = geo_types::Rect::new((x, 0.0), (x + 1.0, 1.0)).to_polygon();
            Feature::from_pairs(
                i,
                [("id", Value::Int(i as i64)), ("kind", Value::from("lot"))],
            )
            .with_geometry(Some(Geometry::in_crs(poly.into(), Some(3857))))
        })
        .collect()
}

#[test]
fn pass_through_processors_keep_the_input_shape() {
    let s = assert_shapes_match(
        &processors::filter::SPEC,
        json!({"conditions": [{"port": "big", "expression": "amount > 10"}]}),
        vec![orders()],
    );
    assert_eq!(s[0].get("amount"), Some(Type::Float));
    assert_eq!(s[2].get("_rejection_reason"), Some(Type::String));
    assert_shapes_match(
        &processors::sort::SPEC,
        json!({"by": [{"attribute": "city"}]}),
        vec![orders()],
    );
    assert_shapes_match(
        &processors::dedup::SPEC,
        json!({"by": ["city"]}),
        vec![orders()],
    );
    assert_shapes_match(
        &processors::sample::SPEC,
        json!({"mode": "every", "n": 2}),
        vec![orders()],
    );
}

#[test]
fn attribute_manager_and_mapper_shapes_follow_each_operation() {
    let s = assert_shapes_match(
        &processors::attribute_manager::SPEC,
        json!({"operations": [
            {"op": "set", "attribute": "label", "expression": "upper(name) + '!'"},
            {"op": "rename", "from": "amount", "to": "total"},
            {"op": "convert", "attribute": "id", "to": "string"},
            {"op": "set", "attribute": "big", "expression": "total > 100"},
            {"op": "remove", "attributes": ["tags"]},
        ]}),
        vec![orders()],
    );
    let names: Vec<&str> = s[0].names().collect();
    assert_eq!(
        names,
        ["id", "name", "total", "city", "date", "label", "big"]
    );
    assert_eq!(s[0].get("id"), Some(Type::String));
    assert_eq!(s[0].get("big"), Some(Type::Bool));
    assert_shapes_match(
        &processors::attribute_mapper::SPEC,
        json!({"attributes": [
            {"name": "who", "expression": "lower(name)"},
            {"name": "year", "expression": "year(date)"},
            {"name": "half", "expression": "amount / 2"},
        ]}),
        vec![orders()],
    );
}

#[test]
fn counting_exploding_and_statistics_add_typed_attributes() {
    let s = assert_shapes_match(
        &processors::counter::SPEC,
        json!({"attribute": "n", "group_by": ["city"]}),
        vec![orders()],
    );
    assert_eq!(s[0].get("n"), Some(Type::Int));
    assert_shapes_match(
        &processors::list_exploder::SPEC,
        json!({"attribute": "tags"}),
        vec![orders()],
    );
    let s = assert_shapes_match(
        &processors::statistics::SPEC,
        json!({"group_by": ["city"], "aggregates": [
            {"op": "count"},
            {"op": "sum", "attribute": "amount", "as": "total"},
            {"op": "sum", "attribute": "id"},
            {"op": "mean", "attribute": "amount"},
            {"op": "min", "attribute": "date"},
            {"op": "max", "attribute": "name"},
            {"op": "median", "attribute": "amount"},
            {"op": "percentile", "attribute": "id", "p": 0.9},
            {"op": "stddev", "attribute": "amount"},
            {"op": "count_distinct", "attribute": "city"},
            {"op": "first", "attribute": "date"},
            {"op": "last", "attribute": "name"},
        ]}),
        vec![orders()],
    );
    let names: Vec<&str> = s[0].names().collect();
    assert_eq!(
        names,
        [
            "city",
            "count",
            "total",
            "sum_id",
            "mean_amount",
            "min_date",
            "max_name",
            "median_amount",
            "percentile_id",
            "stddev_amount",
            "count_distinct_city",
            "first_date",
            "last_name"
        ]
    );
    assert_eq!(s[0].get("sum_id"), Some(Type::Int));
    assert_eq!(s[0].geometry, GeometryShape::Absent);
}

#[test]
fn join_names_supplier_attributes_as_the_run_does() {
    let cities = vec![
        Feature::from_pairs(
            0,
            [
                ("city", "Oslo".into()),
                ("name", "Norway's capital".into()),
                ("pop", Value::Int(709_000)),
            ],
        ),
        Feature::from_pairs(
            1,
            [
                ("city", "Bergen".into()),
                ("name", "West coast".into()),
                ("pop", Value::Int(286_000)),
            ],
        ),
    ];
    for mode in ["inner", "left", "full"] {
        let s = assert_shapes_match(
            &processors::join::SPEC,
            json!({"requestor_key": ["city"], "supplier_key": ["city"], "mode": mode}),
            vec![orders(), cities.clone()],
        );
        let names: Vec<&str> = s[0].names().collect();
        assert_eq!(
            names,
            [
                "id",
                "name",
                "amount",
                "city",
                "date",
                "tags",
                "supplier_name",
                "pop"
            ],
            "{mode}"
        );
    }
}

#[test]
fn geometry_actions_measure_and_move_geometries() {
    let s = assert_shapes_match(
        &geometry::area::SPEC,
        json!({"attribute": "m2"}),
        vec![squares()],
    );
    assert_eq!(s[0].get("m2"), Some(Type::Float));
    assert_shapes_match(&geometry::length::SPEC, json!({}), vec![squares()]);
    assert_shapes_match(&geometry::centroid::SPEC, json!({}), vec![squares()]);
    assert_shapes_match(&geometry::convex_hull::SPEC, json!({}), vec![squares()]);
    let districts: Vec<Feature> = squares()
        .into_iter()
        .map(|f| {
            let g = f.geometry().cloned();
            Feature::from_pairs(
                f.id(),
                [("id", Value::Int(7)), ("district", Value::from("north"))],
            )
            .with_geometry(g)
        })
        .collect();
    for params in [
        json!({}),
        json!({"merge_attributes": true, "prefix": "d_"}),
        json!({"merge_attributes": true}),
    ] {
        assert_shapes_match(
            &geometry::spatial_filter::SPEC,
            params,
            vec![squares(), districts.clone()],
        );
    }
    let s = assert_shapes_match(
        &geometry::convex_hull::SPEC,
        json!({"group_by": ["kind"]}),
        vec![squares()],
    );
    assert_eq!(s[0].names().collect::<Vec<_>>(), ["kind"]);
    assert_eq!(s[0].get("kind"), Some(Type::String));
    let s = assert_shapes_match(
        &geometry::reproject::SPEC,
        json!({"to": 4326}),
        vec![squares()],
    );
    assert_eq!(s[0].geometry, GeometryShape::Present { crs: Some(4326) });
    let s = assert_shapes_match(
        &geometry::geometry_to_wkt::SPEC,
        json!({"attribute": "wkt", "remove_geometry": true}),
        vec![squares()],
    );
    assert_eq!(s[0].geometry, GeometryShape::Absent);
    assert_shapes_match(&geometry::geometry_filter::SPEC, json!({}), vec![squares()]);
    assert_shapes_match(
        &geometry::bounds::SPEC,
        json!({"prefix": "b_"}),
        vec![squares()],
    );
    let wkt: Vec<Feature> = ["POINT (1 2)", "LINESTRING (0 0, 1 1)"]
        .iter()
        .enumerate()
        .map(|(i, w)| {
            Feature::from_pairs(
                i as u64,
                [("id", Value::Int(i as i64)), ("wkt", Value::from(*w))],
            )
        })
        .collect();
    let s = assert_shapes_match(
        &geometry::wkt_to_geometry::SPEC,
        json!({"attribute": "wkt", "remove_attribute": true, "crs": 4326}),
        vec![wkt],
    );
    assert_eq!(s[0].names().collect::<Vec<_>>(), ["id"]);
}

#[test]
fn sources_know_their_schema_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(
        &csv,
        "id,name,value,ok,day,at,zip\n1,Harbour Park,640.5,true,2024-03-01,2024-03-01T10:00:00Z,0150\n2,Old Mill,85,false,2024-03-02,2024-03-02T11:30:00Z,5003\n",
    )
    .unwrap();
    let path = csv.display().to_string();
    let s = assert_shapes_match(
        &sources::csv_reader::SPEC,
        json!({"path": path, "columns": {"id": "float"}}),
        vec![],
    );
    let expected = Shape::closed([
        ("id", Type::Float),
        ("name", Type::String),
        ("value", Type::Float),
        ("ok", Type::Bool),
        ("day", Type::Date),
        ("at", Type::DateTime),
        ("zip", Type::String),
    ]);
    assert_eq!(s[0], expected);
    let s = assert_shapes_match(
        &sources::feature_creator::SPEC,
        json!({"features": [{"a": 1, "b": "x"}, {"a": 2.5, "geometry": {"type": "Point", "coordinates": [1, 2]}}], "crs": 4326}),
        vec![],
    );
    assert_eq!(s[0].get("a"), Some(Type::Float));
    assert_eq!(s[0].geometry, GeometryShape::Present { crs: Some(4326) });
    let s = assert_shapes_match(
        &sources::file_lister::SPEC,
        json!({"path": dir.path().display().to_string()}),
        vec![],
    );
    assert_eq!(s[0].get("size"), Some(Type::Int));
}

#[test]
fn parquet_reader_types_come_from_the_file_footer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet").display().to_string();
    sluice_runtime::testing::run_sink(
        &crate::sinks::parquet_writer::SPEC,
        json!({"path": path}),
        vec![orders()],
    )
    .unwrap();
    let s = assert_shapes_match(
        &sources::parquet_reader::SPEC,
        json!({"path": path}),
        vec![],
    );
    assert_eq!(s[0].get("date"), Some(Type::Date));
    // Arrays are written as JSON text by the portable policy, and read back as text.
    assert_eq!(s[0].get("tags"), Some(Type::String));
}
