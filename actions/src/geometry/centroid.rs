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

use geo::Centroid;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, REJECTED_PORT, Value,
};

use super::per_feature::{GeometryChange, GeometryStep, PerFeature};
use super::type_name;

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
.per_feature()
.shape(super::per_feature::same_shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("{}\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let _params: CentroidParams = ctx.params()?;
    Ok(PerFeature::build(CentroidTransform))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct CentroidTransform;

impl GeometryStep for CentroidTransform {
    type Scratch = ();

    fn compute(
        &self,
        feature: &Feature,
        _: &mut (),
        _: &mut Vec<Value>,
    ) -> Result<GeometryChange, String> {
        let Some(g) = feature.geometry() else {
            return Err("centroid: the feature has no geometry".to_string());
        };
        match g.geom.centroid() {
            Some(p) => Ok(GeometryChange::Set(Geometry::in_crs(p.into(), g.crs))),
            None => Err(format!(
                "centroid: the geometry ({}) is empty",
                type_name(&g.geom)
            )),
        }
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

    #[test]
    fn centroids_ignore_ring_winding_and_subtract_holes() {
        use crate::geometry::test_util::windings;
        let t = transform(&SPEC, json!({}));
        // A 4 x 4 square less a unit hole near one corner: (16 * 2 - 1 * 1) / 15 on both axes.
        let square = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 4.0)],
            interiors: [[(x: 0.5, y: 0.5), (x: 1.5, y: 0.5), (x: 1.5, y: 1.5), (x: 0.5, y: 1.5)]],
        );
        let [a, b, c, d] = windings(&square);
        let input = vec![
            feature(1, a.into(), None),
            feature(2, b.into(), None),
            feature(3, c.into(), None),
            feature(4, d.clone().into(), None),
            // Two windings in one multipolygon: the same centroid as either part.
            feature(5, MultiPolygon(vec![d, square]).into(), None),
        ];
        let out = run(t.as_ref(), 2, input);
        let expected = 31.0 / 15.0;
        for f in &out[0] {
            let G::Point(p) = f.geometry().unwrap().geom else {
                panic!("not a point");
            };
            assert!((p.x() - expected).abs() < 1e-12, "{p:?}");
            assert!((p.y() - expected).abs() < 1e-12, "{p:?}");
        }
        assert_eq!(out[0].len(), 5);
    }

    #[test]
    fn degenerate_polygons_fall_back_to_their_outline() {
        let t = transform(&SPEC, json!({}));
        // Zero area: the centroid of the ring as a line (there and back: its middle).
        let collinear: G<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 2.0, y: 2.0)].into();
        let one_point: G<f64> =
            polygon![(x: 3.0, y: 3.0), (x: 3.0, y: 3.0), (x: 3.0, y: 3.0)].into();
        let out = run(
            t.as_ref(),
            2,
            vec![feature(1, collinear, None), feature(2, one_point, None)],
        );
        let points: Vec<G<f64>> = out[0]
            .iter()
            .map(|f| f.geometry().unwrap().geom.clone())
            .collect();
        assert_eq!(
            points,
            vec![point!(x: 1.0, y: 1.0).into(), point!(x: 3.0, y: 3.0).into()]
        );
    }
}
