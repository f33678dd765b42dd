//! Tests of `json_reader`.

use super::*;
use crate::sources::test_support::{put, read_pair};

fn reasons(rejected: &[Feature]) -> Vec<String> {
    rejected
        .iter()
        .map(|f| f.get(REJECTION_REASON).unwrap().to_string())
        .collect()
}

#[test]
fn lines_and_arrays_give_the_same_features() {
    let objects = [
        r#"{"id": 1, "name": "a", "tags": ["x", 2], "meta": {"k": 1.5}, "g": {"type": "Point", "coordinates": [1, 2]}}"#,
        r#"{"id": 2, "name": null, "tags": [], "meta": {}, "g": null}"#,
        r#"{"id": 3, "name": "c", "tags": null, "meta": null, "g": {"type": "Point", "coordinates": [3.5, -4]}}"#,
    ];
    put(
        "memory://json_reader/same.jsonl",
        format!("{}\n\n{}\r\n{}", objects[0], objects[1], objects[2]).as_bytes(),
    );
    put(
        "memory://json_reader/same.json",
        format!("\u{feff}  [\n{}]\n", objects.join(",\n")).as_bytes(),
    );
    let mut all = Vec::new();
    for path in [
        "memory://json_reader/same.jsonl",
        "memory://json_reader/same.json",
    ] {
        let (ok, rejected) = read_pair(
            &SPEC,
            serde_json::json!({"path": path, "geometry_field": "g", "crs": 4326}),
        )
        .unwrap();
        assert!(rejected.is_empty(), "{:?}", reasons(&rejected));
        assert_eq!(ok.len(), 3);
        assert!(Arc::ptr_eq(ok[0].schema(), ok[2].schema()));
        assert_eq!(ok[0].schema().names().len(), 4, "g is not an attribute");
        assert_eq!(ok[0].get("tags").unwrap().to_string(), "[\"x\",2]");
        assert_eq!(ok[1].get("name"), Some(&Value::Null));
        assert!(ok[1].geometry().is_none());
        let g = ok[2].geometry().unwrap();
        assert_eq!(g.geom, geo_types::Point::new(3.5, -4.0).into());
        assert_eq!(g.crs, Some(4326));
        all.push(ok);
    }
    let key = |f: &Feature| (f.id(), f.values().to_vec(), f.geometry().cloned());
    assert_eq!(
        all[0].iter().map(key).collect::<Vec<_>>(),
        all[1].iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn bad_lines_elements_and_geometries_are_rejected() {
    put(
        "memory://json_reader/bad.jsonl",
        b"{\"a\": 1}\n{\"a\": 2,,}\n[1, 2]\n{\"a\": 3, \"g\": {\"type\": \"Point\"}}\n\xff\xfe\n{\"a\": 4}\n",
    );
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://json_reader/bad.jsonl",
            "geometry_field": "g"
        }),
    )
    .unwrap();
    assert_eq!(
        ok.iter()
            .map(|f| f.get("a").unwrap().clone())
            .collect::<Vec<_>>(),
        vec![Value::Int(1), Value::Int(4)]
    );
    let r = reasons(&rejected);
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(
        r[0].starts_with("memory://json_reader/bad.jsonl:2: column 9: "),
        "{}",
        r[0]
    );
    assert_eq!(rejected[0].get("_raw"), Some(&Value::from("{\"a\": 2,,}")));
    assert!(
        r[1].ends_with(":3: expected an object, found an array"),
        "{}",
        r[1]
    );
    assert!(
        r[2].contains(":4: field \"g\": not a GeoJSON geometry"),
        "{}",
        r[2]
    );
    assert_eq!(rejected[2].get("a"), Some(&Value::Int(3)));
    assert!(r[3].contains(":5: "), "{}", r[3]);
    // Ids run over both ports in file order.
    let mut ids: Vec<u64> = ok.iter().chain(&rejected).map(Feature::id).collect();
    ids.sort();
    assert_eq!(ids, (0..6).collect::<Vec<_>>());

    put(
        "memory://json_reader/bad.json",
        b"[{\"a\": 1}, 7, {\"a\": 2}, {\"a\": oops}]",
    );
    let err = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://json_reader/bad.json"}),
    )
    .unwrap_err();
    match err {
        ActionError::Data { location, message } => {
            assert_eq!(
                location.as_deref(),
                Some("memory://json_reader/bad.json:1:31")
            );
            assert!(message.contains("expected value"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    put("memory://json_reader/obj.json", b"{\"a\": 1}");
    let err = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://json_reader/obj.json",
            "format": "array"
        }),
    )
    .unwrap_err();
    assert!(
        matches!(err, ActionError::Data { ref message, .. } if message.contains("array")),
        "{err:?}"
    );
    // Leading blank lines count in line numbers, in both layouts.
    put("memory://json_reader/blank.jsonl", b"\n\n  \n{\"a\": }\n");
    let (_, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://json_reader/blank.jsonl"}),
    )
    .unwrap();
    assert!(reasons(&rejected)[0].starts_with("memory://json_reader/blank.jsonl:4: "));
    put("memory://json_reader/blank.json", b"\n\n[{\"a\": }]");
    let err = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://json_reader/blank.json"}),
    )
    .unwrap_err();
    assert!(
        matches!(err, ActionError::Data { ref location, .. } if location.as_deref() == Some("memory://json_reader/blank.json:3:8")),
        "{err:?}"
    );
    put("memory://json_reader/elem.json", b"[{\"a\": 1}, 7]");
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://json_reader/elem.json"}),
    )
    .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(
        reasons(&rejected),
        vec!["memory://json_reader/elem.json: element 1: expected an object, found a number"]
    );
}

#[test]
fn many_files_keep_file_order_and_share_schemas() {
    for i in 0..12 {
        let mut text = String::new();
        for r in 0..(i * 300) {
            text.push_str(&format!("{{\"file\": {i}, \"row\": {r}}}\n"));
        }
        put(
            &format!("memory://json_reader/many/f{i:02}.jsonl"),
            text.as_bytes(),
        );
    }
    let (seq, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://json_reader/many/*.jsonl", "read_ahead": 1}),
    )
    .unwrap();
    let (par, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://json_reader/many/*.jsonl"}),
    )
    .unwrap();
    assert_eq!(seq.len(), (0..12).map(|i| i * 300).sum::<usize>());
    let key = |f: &Feature| (f.id(), f.values().to_vec());
    assert_eq!(
        seq.iter().map(key).collect::<Vec<_>>(),
        par.iter().map(key).collect::<Vec<_>>()
    );
    assert!(Arc::ptr_eq(par[0].schema(), par[par.len() - 1].schema()));
}

#[test]
fn bad_params_are_located() {
    for (params, path) in [
        (
            serde_json::json!({"path": "x.json", "format": "xml"}),
            "format",
        ),
        (serde_json::json!({"path": ""}), "path"),
        (
            serde_json::json!({"path": "x", "read_ahead": 0}),
            "read_ahead",
        ),
    ] {
        let err = read_pair(&SPEC, params).unwrap_err();
        assert!(
            matches!(err, ActionError::Param { path: ref p, .. } if p == path),
            "{err:?}"
        );
    }
}

#[test]
fn a_rejected_line_keeps_all_its_text_or_bytes() {
    let long = format!("{{\"a\": \"{}\",}}", "x".repeat(500));
    let mut text = format!("{{\"a\": 1}}\n{long}\n").into_bytes();
    text.extend_from_slice(b"{\"a\": \"caf\xe9\"}\n");
    put("memory://json_reader/keep.jsonl", &text);
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://json_reader/keep.jsonl"}),
    )
    .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].get("_raw"), Some(&Value::from(long.as_str())));
    assert_eq!(
        rejected[1].get("_raw"),
        Some(&Value::Bytes(b"{\"a\": \"caf\xe9\"}".to_vec().into()))
    );
}
