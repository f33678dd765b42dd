//! `feature_creator`: emits features written in the workflow itself.
//!
//! ```yaml
//! - id: seed
//!   action: feature_creator
//!   with:
//!     features:
//!       - { name: Paris, population: 2102650 }
//!       - name: Lyon
//!         population: 522250
//!         geometry: { type: Point, coordinates: [4.8357, 45.764] }
//!     repeat: 2
//! ```
//!
//! Each entry of `features` is an object of attributes (JSON values: numbers that are whole
//! become ints, objects become maps). The key `geometry`, when present, holds a GeoJSON
//! geometry object (or null) and becomes the feature's geometry, not an attribute. Entries
//! with the same attribute names (in any order) share one schema, in the order of the first
//! such entry. The list is emitted `repeat` times; ids run 0, 1, 2... in emission order.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type, widen};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, Feature, Geometry,
    NodeContext, NodeImpl, Schema, Source, Value,
};

/// Parameters of `feature_creator`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureCreatorParams {
    /// The features, each an object of attribute values; the key `geometry` holds a GeoJSON
    /// geometry object.
    pub features: Vec<serde_json::Value>,
    /// How many times to emit the whole list.
    #[serde(default = "one")]
    pub repeat: u64,
    /// EPSG code of the geometries' coordinates.
    #[serde(default)]
    pub crs: Option<u32>,
}

fn one() -> u64 {
    1
}

/// The `feature_creator` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "feature_creator",
    ActionKind::Source,
    "Emits features given in the parameters, optionally repeated.",
    schema_of::<FeatureCreatorParams>,
    build,
)
.shape(shape)
.example(
    "features:\n  - { name: Paris, population: 2102650 }\n  - name: Lyon\n    population: 522250\n    geometry: { type: Point, coordinates: [4.8357, 45.764] }\nrepeat: 2\n",
);

/// The attributes of the written entries (an entry without one has it null), typed by their
/// values as the run converts them; the geometry when an entry has one.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: FeatureCreatorParams = ctx.params()?;
    let mut shape = Shape::closed(Vec::<(String, Type)>::new());
    let mut geometry = GeometryShape::Absent;
    for entry in &p.features {
        let Some(object) = entry.as_object() else {
            continue;
        };
        for (k, v) in object {
            if k == "geometry" {
                if !v.is_null() {
                    geometry = GeometryShape::Present { crs: p.crs };
                }
                continue;
            }
            let t = Type::of(&Value::from_json(v));
            let t = shape.get(k).map_or(t, |before| widen(before, t));
            shape.set(k, t);
        }
    }
    Ok(vec![shape.with_geometry(geometry)])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: FeatureCreatorParams = ctx.params()?;
    let mut schemas: HashMap<BTreeSet<&str>, Arc<Schema>> = HashMap::new();
    let mut templates = Vec::with_capacity(p.features.len());
    for (i, entry) in p.features.iter().enumerate() {
        let Some(object) = entry.as_object() else {
            return Err(ActionError::param(
                format!("features[{i}]"),
                format!("expected an object of attributes, found {entry}"),
            ));
        };
        let names: Vec<&str> = object
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "geometry")
            .collect();
        let schema = schemas
            .entry(names.iter().copied().collect())
            .or_insert_with(|| Schema::new(names.iter().copied()))
            .clone();
        let mut values = vec![Value::Null; schema.len()];
        for (k, v) in object {
            if let Some(slot) = schema.index_of(k) {
                values[slot] = Value::from_json(v);
            }
        }
        let geometry = match object.get("geometry") {
            None | Some(serde_json::Value::Null) => None,
            Some(g) => crate::geojson_geometry::read(g)
                .map_err(|m| ActionError::param(format!("features[{i}].geometry"), m))?
                .map(|mut g| {
                    g.crs = p.crs;
                    Arc::new(g)
                }),
        };
        templates.push(Template {
            schema,
            values,
            geometry,
        });
    }
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FeatureCreator {
            templates,
            repeat: p.repeat,
        },
    ))))
}

struct Template {
    schema: Arc<Schema>,
    values: Vec<Value>,
    geometry: Option<Arc<Geometry>>,
}

struct FeatureCreator {
    templates: Vec<Template>,
    repeat: u64,
}

impl Source for FeatureCreator {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let mut id = 0u64;
        for _ in 0..self.repeat {
            ctx.check_cancelled()?;
            for t in &self.templates {
                let mut f = Feature::new(id, t.schema.clone(), t.values.clone());
                f.set_shared_geometry(t.geometry.clone());
                out.emit(f)?;
                id += 1;
                if id.is_multiple_of(8192) {
                    ctx.check_cancelled()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn example_parses_and_runs() {
        let params = sluice_runtime::workflow::yaml::parse(SPEC.example)
            .unwrap()
            .to_json();
        let got = run(params).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].get("name"), Some(&Value::from("Lyon")));
        assert!(got[3].geometry().is_some());
    }

    #[test]
    fn repeats_with_sequential_ids_and_shared_schemas() {
        let got = run(serde_json::json!({
            "features": [
                {"a": 1, "b": "x"},
                {"b": "y", "a": 2.5},
                {"c": true, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}
            ],
            "repeat": 3,
            "crs": 3857
        }))
        .unwrap();
        assert_eq!(got.len(), 9);
        assert_eq!(
            got.iter().map(Feature::id).collect::<Vec<_>>(),
            (0..9).collect::<Vec<_>>()
        );
        assert!(Arc::ptr_eq(got[0].schema(), got[1].schema()));
        assert!(Arc::ptr_eq(got[0].schema(), got[4].schema()));
        assert!(!Arc::ptr_eq(got[0].schema(), got[2].schema()));
        assert_eq!(got[1].get("a"), Some(&Value::Float(2.5)));
        assert_eq!(
            got[1].values()[1],
            Value::from("y"),
            "schema order of the first entry"
        );
        assert_eq!(
            got[2].schema().names().len(),
            1,
            "geometry is not an attribute"
        );
        let g = got[2].geometry().unwrap();
        assert_eq!(g.crs, Some(3857));
        assert!(matches!(g.geom, geo_types::Geometry::LineString(_)));
        assert!(
            run(serde_json::json!({"features": [{"a": 1}], "repeat": 0}))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_entries_are_located_param_errors() {
        let err = run(serde_json::json!({"features": [{"a": 1}, 5]})).unwrap_err();
        assert!(
            matches!(err, ActionError::Param { ref path, .. } if path == "features[1]"),
            "{err:?}"
        );
        let err = run(serde_json::json!({
            "features": [{"geometry": {"type": "Point", "coordinates": "nope"}}]
        }))
        .unwrap_err();
        assert!(
            matches!(err, ActionError::Param { ref path, .. } if path == "features[0].geometry"),
            "{err:?}"
        );
        let err = run(serde_json::json!({"features": [], "repeat": -1})).unwrap_err();
        assert!(
            matches!(err, ActionError::Param { ref path, .. } if path == "repeat"),
            "{err:?}"
        );
    }
}
