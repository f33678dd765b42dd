//! `file_lister`: one feature per file that a path, folder or glob names.
//!
//! ```yaml
//! - id: inputs
//!   action: file_lister
//!   with:
//!     path: data/**/*.csv
//! ```
//!
//! Each feature has the attributes `path` (the location, as it would be given to a reader),
//! `name` (the last part of the path), `extension` (after the last `.` of the name, without
//! it; null when the name has none), `size` (bytes, int) and `modified` (a datetime; null
//! when the storage does not say). Files come in location order; folders are not entered
//! except by a `**` glob; hidden files (a name starting with `.`) are skipped. A folder or
//! file that does not exist fails the run; a glob that matches nothing gives no feature.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{Shape, ShapeContext, Type};
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, Feature, NodeContext,
    NodeImpl, Schema, Source, Value,
};

/// Parameters of `file_lister`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileListerParams {
    /// A file, a folder (the files directly in it) or a glob pattern such as `data/*.csv`
    /// (`**` crosses folders).
    pub path: String,
}

/// The `file_lister` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "file_lister",
    ActionKind::Source,
    "Emits one feature per file of a path, folder or glob: path, name, extension, size, modified.",
    schema_of::<FileListerParams>,
    build,
)
.reads_from("path")
.shape(shape)
.example("path: data/**/*.csv\n");

/// The five attributes every listed file gets.
fn shape(_: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    Ok(vec![Shape::closed([
        ("path", Type::String),
        ("name", Type::String),
        ("extension", Type::String),
        ("size", Type::Int),
        ("modified", Type::DateTime),
    ])])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: FileListerParams = ctx.params()?;
    super::file_input::check_path(&p.path)?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(FileLister {
        path: p.path,
    }))))
}

struct FileLister {
    path: String,
}

impl Source for FileLister {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let schema = Schema::new(["path", "name", "extension", "size", "modified"]);
        for (id, file) in store::list(&self.path)?.into_iter().enumerate() {
            if id % 8192 == 0 {
                ctx.check_cancelled()?;
            }
            let name = file
                .location
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or_default()
                .to_string();
            let extension = match name.rfind('.') {
                Some(i) if i > 0 && i + 1 < name.len() => Value::from(&name[i + 1..]),
                _ => Value::Null,
            };
            let values = vec![
                Value::from(file.location),
                Value::from(name),
                extension,
                Value::Int(i64::try_from(file.size).unwrap_or(i64::MAX)),
                file.modified.map_or(Value::Null, Value::DateTime),
            ];
            out.emit(Feature::new(id as u64, schema.clone(), values))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn run(params: serde_json::Value) -> Result<Vec<Feature>, ActionError> {
        let built = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })?;
        let NodeImpl::Source(mut src) = built.node else {
            panic!("not a source")
        };
        let mut out = Emitter::buffer(1);
        src.run(&NodeContext::standalone("t"), &mut out)?;
        Ok(out.into_buffers().remove(0))
    }

    #[test]
    fn lists_files_with_their_attributes() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("b.csv", "12345"),
            ("a.tar.gz", ""),
            ("noext", "x"),
            (".hidden", "h"),
        ] {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let base = dir.path().to_string_lossy().into_owned();
        let got = run(serde_json::json!({ "path": base })).unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|f| f.get("name").unwrap().to_string())
            .collect();
        assert_eq!(names, vec!["a.tar.gz", "b.csv", "noext"]);
        assert_eq!(got[0].get("extension"), Some(&Value::from("gz")));
        assert_eq!(got[2].get("extension"), Some(&Value::Null));
        assert_eq!(got[1].get("size"), Some(&Value::Int(5)));
        assert_eq!(
            got[1].get("path"),
            Some(&Value::from(format!("{base}/b.csv")))
        );
        assert!(matches!(got[1].get("modified"), Some(Value::DateTime(_))));
        assert!(Arc::ptr_eq(got[0].schema(), got[2].schema()));
        assert_eq!(
            got.iter().map(Feature::id).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let csv = run(serde_json::json!({ "path": format!("{base}/*.csv") })).unwrap();
        assert_eq!(csv.len(), 1);
        assert!(
            run(serde_json::json!({ "path": format!("{base}/*.none") }))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn missing_folder_and_bad_glob_are_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope").to_string_lossy().into_owned();
        match run(serde_json::json!({ "path": missing })) {
            Err(ActionError::Io { context, source }) => {
                assert!(context.contains("nope"), "{context}");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("unexpected {:?}", other.map(|v| v.len())),
        }
        let bad = format!("{}/[.csv", dir.path().to_string_lossy());
        assert!(matches!(
            run(serde_json::json!({ "path": bad })),
            Err(ActionError::Io { .. })
        ));
        assert!(matches!(
            run(serde_json::json!({ "path": "x", "recursive": true })),
            Err(ActionError::Param { .. })
        ));
    }
}
