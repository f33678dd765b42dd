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

// ---------------------------------------------------------------------------------------------
// Slices of one file (partitioned runs)
// ---------------------------------------------------------------------------------------------

use crate::sources::test_support::{assert_slices_make_the_whole, read_slice};
use sluice_runtime::Slice;
use std::io::Write;

/// JSON objects with every kind of line: good ones, blank ones, CRLF ends, bad JSON, a
/// non-object, invalid UTF-8, bad geometries, values of several types.
fn json_rows(n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| match i % 9 {
            0 => format!(
                "{{\"i\": {i}, \"g\": {{\"type\": \"Point\", \"coordinates\": [{i}, 1.5]}}}}"
            )
            .into_bytes(),
            1 => format!("{{\"i\": {i}, \"s\": \"a\\nb \\\"{i}\\\"\", \"f\": {i}.5}}").into_bytes(),
            2 => format!("{{\"i\": {i}, \"nested\": {{\"k\": [1, \"x\", null]}}}}").into_bytes(),
            3 => format!("{{\"i\": {i},, }}").into_bytes(),
            4 => b"[1, 2]".to_vec(),
            5 => format!("{{\"i\": {i}, \"g\": {{\"type\": \"Point\"}}}}").into_bytes(),
            6 => b"{\"s\": \"caf\xe9\"}".to_vec(),
            _ => format!("{{\"other\": true, \"i\": {i}}}").into_bytes(),
        })
        .collect()
}

#[test]
fn slices_of_json_lines_are_the_whole_read() {
    let mut text = b"\xef\xbb\xbf\n  \n".to_vec();
    for (k, row) in json_rows(300).iter().enumerate() {
        text.extend_from_slice(row);
        text.extend_from_slice(match k % 4 {
            0 => b"\r\n",
            1 => b"\n\n",
            _ => b"\n",
        });
    }
    text.extend_from_slice(b"{\"last\": 1}");
    put("memory://json_reader/slices/rows.jsonl", &text);
    let params = serde_json::json!({
        "path": "memory://json_reader/slices/rows.jsonl",
        "geometry_field": "g",
    });
    let (ok, rejected) = assert_slices_make_the_whole(&SPEC, params, 1..=7);
    assert!(
        ok.len() > 150 && rejected.len() > 100,
        "{} {}",
        ok.len(),
        rejected.len()
    );
    assert!(reasons(&rejected)[0].starts_with("memory://json_reader/slices/rows.jsonl:7: "));
}

#[test]
fn slices_of_a_json_array_are_the_whole_read() {
    let rows = json_rows(300);
    // Elements only: invalid JSON cannot be in an array that reads.
    let elements: Vec<String> = rows
        .iter()
        .enumerate()
        .filter(|(k, _)| k % 9 != 3 && k % 9 != 6)
        .map(|(_, r)| String::from_utf8(r.clone()).unwrap())
        .collect();
    let text = format!("\u{feff} \n[\n{}\n]\n", elements.join(",\n  "));
    put("memory://json_reader/slices/rows.json", text.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    put(
        "memory://json_reader/slices/rows.json.gz",
        &gz.finish().unwrap(),
    );
    for path in ["rows.json", "rows.json.gz"] {
        let params = serde_json::json!({
            "path": format!("memory://json_reader/slices/{path}"),
            "geometry_field": "g",
        });
        let (ok, rejected) = assert_slices_make_the_whole(&SPEC, params, 1..=7);
        assert!(
            ok.len() > 150 && rejected.len() > 50,
            "{} {}",
            ok.len(),
            rejected.len()
        );
        assert!(
            reasons(&rejected)[0]
                .ends_with("rows.json: element 3: expected an object, found an array")
                || reasons(&rejected)[0]
                    .ends_with("rows.json.gz: element 3: expected an object, found an array"),
            "{:?}",
            reasons(&rejected)[0]
        );
    }
}

#[test]
fn every_slice_of_small_json_files_is_exact() {
    let files: &[(&str, &[u8])] = &[
        ("bom.jsonl", b"\xef\xbb\xbf{\"a\": 1}\n{\"a\": 2}"),
        (
            "bad-first.jsonl",
            b"\xef\xbb\xbf{\"a\": }\r\n\r\n{\"a\": 2}\n",
        ),
        ("blank.jsonl", b"\n \n\r\n"),
        ("empty.jsonl", b""),
        ("crlf.jsonl", b"{\"a\": 1}\r\n7\r\n{\"a\": 3}\r\n"),
        (
            "array.json",
            b"\xef\xbb\xbf [{\"a\": 1}, 7, {\"a\": 3}, null]",
        ),
        ("empty-array.json", b"[ ]"),
        ("one.json", b"[{\"a\": 1}]\n"),
    ];
    for (name, text) in files {
        let path = format!("memory://json_reader/small/{name}");
        put(&path, text);
        let params = serde_json::json!({ "path": path });
        assert_slices_make_the_whole(&SPEC, params, 1..=text.len() as u64 + 2);
    }
}

#[test]
fn a_json_lines_gzip_file_is_read_whole_by_the_first_slice() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n")
        .unwrap();
    put(
        "memory://json_reader/slices/z.jsonl.gz",
        &gz.finish().unwrap(),
    );
    let params = serde_json::json!({"path": "memory://json_reader/slices/z.jsonl.gz"});
    for n in 1..=4 {
        for i in 0..n {
            let (ok, _) = read_slice(&SPEC, params.clone(), Slice::new(i, n).unwrap()).unwrap();
            assert_eq!(ok.len(), if i == 0 { 3 } else { 0 }, "slice {i}/{n}");
        }
    }
}

#[test]
fn every_slice_of_a_broken_array_fails_like_the_whole_read() {
    put(
        "memory://json_reader/slices/broken.json",
        b"[{\"a\": 1}, 7, {\"a\": 2},\n {\"a\": oops}, {\"a\": 5}]",
    );
    let params = serde_json::json!({"path": "memory://json_reader/slices/broken.json"});
    let whole = read_pair(&SPEC, params.clone()).unwrap_err().to_string();
    assert!(whole.contains("broken.json:2:"), "{whole}");
    for n in 1..=6 {
        for i in 0..n {
            let e = read_slice(&SPEC, params.clone(), Slice::new(i, n).unwrap()).unwrap_err();
            assert_eq!(e.to_string(), whole, "slice {i}/{n}");
        }
    }
}

#[test]
fn several_json_files_are_shared_out_whole() {
    put(
        "memory://json_reader/shared/a.jsonl",
        b"{\"v\": 1}\n{\"v\": 2}\n",
    );
    put("memory://json_reader/shared/b.json", b"[{\"v\": 3}]");
    put("memory://json_reader/shared/c.jsonl", b"{\"v\": 4}\n");
    let params = serde_json::json!({"path": "memory://json_reader/shared/*"});
    assert_slices_make_the_whole(&SPEC, params.clone(), 1..=5);
    let (ok, _) = read_slice(&SPEC, params, Slice::new(1, 3).unwrap()).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].get("v"), Some(&Value::Int(3)));
}
