//! `geometry_filter`: routes features by the type of their geometry.
//!
//! ```yaml
//! - id: by_type
//!   action: geometry_filter
//! ```
//!
//! Output ports, in order:
//!
//! | port         | geometries                                   |
//! |--------------|----------------------------------------------|
//! | `point`      | point, multipoint                            |
//! | `line`       | line, linestring, multilinestring            |
//! | `polygon`    | polygon, multipolygon, rectangle, triangle   |
//! | `collection` | geometry collection (even an empty one)      |
//! | `none`       | features without a geometry                  |
//!
//! Every feature goes to exactly one port, unchanged. Empty multi-geometries go to the port of
//! their type.

use std::sync::Arc;

use geo_types::Geometry as G;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, Feature, NodeImpl,
    Transform,
};

/// Parameters of `geometry_filter` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeometryFilterParams {}

/// Port of points and multipoints.
pub const POINT_PORT: &str = "point";
/// Port of lines, linestrings and multilinestrings.
pub const LINE_PORT: &str = "line";
/// Port of polygons, multipolygons, rectangles and triangles.
pub const POLYGON_PORT: &str = "polygon";
/// Port of geometry collections.
pub const COLLECTION_PORT: &str = "collection";
/// Port of features without a geometry.
pub const NONE_PORT: &str = "none";

/// The `geometry_filter` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "geometry_filter",
    ActionKind::Processor,
    "Routes features by geometry type to the point, line, polygon, collection or none port.",
    schema_of::<GeometryFilterParams>,
    build,
)
.per_feature()
.outputs(&[
    POINT_PORT,
    LINE_PORT,
    POLYGON_PORT,
    COLLECTION_PORT,
    NONE_PORT,
])
.shape(super::per_feature::same_shape)
.example("{}\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let _params: GeometryFilterParams = ctx.params()?;
    Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(
        GeometryFilter,
    ))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct GeometryFilter;

/// The output port index of a feature (in the order of [`SPEC`]'s outputs).
fn port_of(feature: &Feature) -> usize {
    match feature.geometry().map(|g| &g.geom) {
        Some(G::Point(_) | G::MultiPoint(_)) => 0,
        Some(G::Line(_) | G::LineString(_) | G::MultiLineString(_)) => 1,
        Some(G::Polygon(_) | G::MultiPolygon(_) | G::Rect(_) | G::Triangle(_)) => 2,
        Some(G::GeometryCollection(_)) => 3,
        None => 4,
    }
}

impl Transform for GeometryFilter {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        for feature in features {
            out.emit_to(port_of(&feature), feature)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, run, transform};
    use geo_types::{
        GeometryCollection, Line, MultiPoint, MultiPolygon, Rect, coord, line_string, point,
        polygon,
    };
    use serde_json::json;

    #[test]
    fn example_parses_and_builds() {
        transform(&SPEC, example_params(&SPEC));
        assert!(matches!(
            build(&SPEC, json!({"types": ["point"]})),
            Err(ActionError::Param { .. })
        ));
    }

    #[test]
    fn routes_every_type_and_missing_geometries() {
        let t = transform(&SPEC, json!({}));
        let c = |x| coord! {x: x, y: 0.0};
        let geoms: Vec<G<f64>> = vec![
            point!(x: 0.0, y: 0.0).into(),                           // 1 point
            MultiPoint::<f64>(vec![]).into(),                        // 2 point (empty)
            Line::new(c(0.0), c(1.0)).into(),                        // 3 line
            line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0)].into(), // 4 line
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0)].into(), // 5 polygon
            MultiPolygon::<f64>(vec![]).into(),                      // 6 polygon
            Rect::new(c(0.0), c(1.0)).into(),                        // 7 polygon
            G::GeometryCollection(GeometryCollection(vec![])),       // 8 collection
        ];
        let mut input: Vec<Feature> = geoms
            .into_iter()
            .enumerate()
            .map(|(i, g)| feature(i as u64 + 1, g, None))
            .collect();
        input.push(Feature::from_pairs(9, [("name", "none".into())]));
        let out = run(t.as_ref(), 5, input);
        let ids: Vec<Vec<u64>> = out
            .iter()
            .map(|p| p.iter().map(Feature::id).collect())
            .collect();
        assert_eq!(
            ids,
            vec![vec![1, 2], vec![3, 4], vec![5, 6, 7], vec![8], vec![9]]
        );
    }
}
