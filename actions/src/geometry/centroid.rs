//! `centroid`: replaces each feature's geometry by its centroid (a point).
//!
//! ```yaml
//! - id: parcel_centres
//!   action: centroid
//! ```
//!
//! - The centroid is the planar centre of mass of the geometry's highest dimension: of the
//!   area for polygons, of the length for lines, the mean of the points for points. It may lie
//!   outside a concave polygon. The CRS is kept; coordinates are treated as planar even in
//!   longitude/latitude (a fair approximation for small shapes).
//! - A feature without a geometry, or with an empty one, goes to `rejected` with the reason.
//! - The attributes are untouched.

use std::sync::Arc;

use geo::Centroid;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, Feature,
    Geometry, NodeImpl, REJECTED_PORT, Transform,
};

use super::{reject, type_name};

/// Parameters of `centroid` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CentroidParams {}

/// The `centroid` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "centroid",
    ActionKind::Processor,
    "Replaces each feature's geometry by its centroid point.",
    schema_of::<CentroidParams>,
    build,
)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("{}\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let _params: CentroidParams = ctx.params()?;
    Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(
        CentroidTransform,
    ))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct CentroidTransform;

impl Transform for CentroidTransform {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        for mut feature in features {
            let centroid = match feature.geometry() {
                None => Err("centroid: the feature has no geometry".to_string()),
                Some(g) => match g.geom.centroid() {
                    Some(p) => Ok(Geometry {
                        geom: p.into(),
                        crs: g.crs,
                    }),
                    None => Err(format!(
                        "centroid: the geometry ({}) is empty",
                        type_name(&g.geom)
                    )),
                },
            };
            match centroid {
                Ok(g) => {
                    feature.set_geometry(Some(g));
                    out.emit(feature)?;
                }
                Err(reason) => out.emit_to(1, reject(feature, reason))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, reason, run, transform};
    use geo_types::{Geometry as G, MultiPolygon, Point, line_string, point, polygon};
    use serde_json::json;

    #[test]
    fn example_parses_and_builds() {
        transform(&SPEC, example_params(&SPEC));
        assert!(matches!(
            build(&SPEC, json!({"keep": true})),
            Err(ActionError::Param { .. })
        ));
    }

    #[test]
    fn centroids_of_known_shapes_keep_crs_and_attributes() {
        let t = transform(&SPEC, json!({}));
        let square: G<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 2.0, y: 0.0), (x: 2.0, y: 2.0), (x: 0.0, y: 2.0)].into();
        let line: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 4.0, y: 0.0)].into();
        let pt: G<f64> = point!(x: 3.0, y: -1.0).into();
        let input = vec![
            feature(1, square, Some(3857)),
            feature(2, line, None),
            feature(3, pt, None),
        ];
        let out = run(t.as_ref(), 2, input);
        let got: Vec<(G<f64>, Option<u32>)> = out[0]
            .iter()
            .map(|f| {
                (
                    f.geometry().unwrap().geom.clone(),
                    f.geometry().unwrap().crs,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Point::new(1.0, 1.0).into(), Some(3857)),
                (Point::new(2.0, 0.0).into(), None),
                (Point::new(3.0, -1.0).into(), None),
            ]
        );
        assert_eq!(out[0][0].get("name").and_then(|v| v.as_str()), Some("f1"));
    }

    #[test]
    fn missing_and_empty_geometries_are_rejected() {
        let t = transform(&SPEC, json!({}));
        let empty: G<f64> = MultiPolygon::<f64>(vec![]).into();
        let input = vec![
            Feature::from_pairs(1, [("name", "none".into())]),
            feature(2, empty, None),
        ];
        let out = run(t.as_ref(), 2, input);
        assert!(out[0].is_empty());
        assert!(reason(&out[1][0]).contains("no geometry"));
        assert!(reason(&out[1][1]).contains("(multipolygon) is empty"));
    }
}
