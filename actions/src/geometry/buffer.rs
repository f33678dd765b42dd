//! `buffer`: replaces each feature's geometry by the area within a distance of it.
//!
//! ```yaml
//! - id: road_corridor
//!   action: buffer
//!   with:
//!     distance: 25.0
//!     cap: flat
//!     join: round
//! ```
//!
//! - `distance` is in CRS units: metres in a projected CRS, but degrees in longitude/latitude
//!   (reproject first for a buffer in metres). A negative distance shrinks polygons; on points
//!   and lines a distance of zero or less gives an empty result.
//! - The result is a polygon, or a multipolygon when the buffer has several parts; an empty
//!   result is an empty multipolygon. Curves are approximated by segments; the CRS is kept.
//! - `cap` shapes the ends of lines (`round`, `square`, `flat`); `join` the corners where two
//!   segments meet (`round`, `mitre`, `bevel`).
//! - Ring winding does not matter (rings are rewound before buffering). Empty rings (GeoJSON
//!   `"coordinates": []`) are left out; an empty polygon buffers to an empty result.
//! - A feature without a geometry, or with a non-finite coordinate, goes to `rejected` with
//!   the reason.

use geo::Buffer;
use geo::MultiPolygon;
use geo::algorithm::buffer::{BufferStyle, LineCap, LineJoin};
use geo_types::{Geometry as G, Polygon};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, REJECTED_PORT, Value,
};

use super::non_finite;
use super::per_feature::{GeometryChange, GeometryStep, PerFeature};

/// Parameters of `buffer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BufferParams {
    /// The buffer distance, in CRS units (negative shrinks polygons).
    pub distance: f64,
    /// The shape of line ends: `round` (default), `square` or `flat`.
    #[serde(default)]
    pub cap: CapStyle,
    /// The shape of corners: `round` (default), `mitre` or `bevel`.
    #[serde(default)]
    pub join: JoinStyle,
}

/// How line ends are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CapStyle {
    /// A half circle around the end point.
    #[default]
    Round,
    /// A half square around the end point.
    Square,
    /// Cut square at the end point.
    Flat,
}

/// How corners are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinStyle {
    /// An arc.
    #[default]
    Round,
    /// A sharp corner (cut off when very sharp).
    Mitre,
    /// A straight cut across the corner.
    Bevel,
}

/// The `buffer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "buffer",
    ActionKind::Processor,
    "Replaces each feature's geometry by the area within a distance (in CRS units) of it.",
    schema_of::<BufferParams>,
    build,
)
.per_feature()
.shape(super::per_feature::same_shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("distance: 25.0\ncap: flat\njoin: round\n");

/// Segment angle of round caps and joins, in radians (about 31 segments per full circle).
const ROUND_ANGLE: f64 = 0.2;
/// Sharpest corner angle a mitre keeps, in radians; sharper corners are cut.
const MITRE_MIN_ANGLE: f64 = 0.5;

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: BufferParams = ctx.params()?;
    if !params.distance.is_finite() {
        return Err(ActionError::param(
            "distance",
            format!(
                "the distance must be a finite number, got {}",
                params.distance
            ),
        ));
    }
    Ok(PerFeature::build(BufferTransform {
        distance: params.distance,
        cap: params.cap,
        join: params.join,
    }))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct BufferTransform {
    distance: f64,
    cap: CapStyle,
    join: JoinStyle,
}

impl BufferTransform {
    /// The style (built per use: `LineCap` is not `Sync`).
    fn style(&self) -> BufferStyle<f64> {
        let cap = match self.cap {
            CapStyle::Round => LineCap::Round(ROUND_ANGLE),
            CapStyle::Square => LineCap::Square,
            CapStyle::Flat => LineCap::Butt,
        };
        let join = match self.join {
            JoinStyle::Round => LineJoin::Round(ROUND_ANGLE),
            JoinStyle::Mitre => LineJoin::Miter(MITRE_MIN_ANGLE),
            JoinStyle::Bevel => LineJoin::Bevel,
        };
        BufferStyle::new(self.distance)
            .line_cap(cap)
            .line_join(join)
    }

    fn buffer(&self, feature: &Feature) -> Result<Geometry, String> {
        let g = feature
            .geometry()
            .ok_or_else(|| "buffer: the feature has no geometry".to_string())?;
        if let Some(c) = non_finite(&g.geom) {
            return Err(format!(
                "buffer: coordinate ({}, {}) is not finite",
                c.x, c.y
            ));
        }
        let mut result: MultiPolygon<f64> = if has_empty_ring(&g.geom) {
            without_empty_rings(&g.geom).buffer_with_style(self.style())
        } else {
            g.geom.buffer_with_style(self.style())
        };
        let geom: G<f64> = if result.0.len() == 1 {
            result.0.remove(0).into()
        } else {
            result.into()
        };
        Ok(Geometry::in_crs(geom, g.crs))
    }
}

/// Whether a polygon of `geom` has an empty ring (GeoJSON `"coordinates": []`), which the
/// buffer algorithm cannot take (it underflows measuring the ring).
fn has_empty_ring(geom: &G<f64>) -> bool {
    let polygon = |p: &Polygon<f64>| {
        p.exterior().0.is_empty() || p.interiors().iter().any(|r| r.0.is_empty())
    };
    match geom {
        G::Polygon(p) => polygon(p),
        G::MultiPolygon(m) => m.iter().any(polygon),
        G::GeometryCollection(c) => c.iter().any(has_empty_ring),
        _ => false,
    }
}

/// `geom` without its empty rings, and without the polygons whose exterior is empty (they
/// cover nothing).
fn without_empty_rings(geom: &G<f64>) -> G<f64> {
    let polygons = |ps: &mut dyn Iterator<Item = &Polygon<f64>>| -> Vec<Polygon<f64>> {
        ps.filter(|p| !p.exterior().0.is_empty())
            .map(|p| {
                let holes = p.interiors().iter().filter(|r| !r.0.is_empty());
                Polygon::new(p.exterior().clone(), holes.cloned().collect())
            })
            .collect()
    };
    match geom {
        G::Polygon(p) => match polygons(&mut std::iter::once(p)).pop() {
            Some(p) => p.into(),
            None => MultiPolygon::<f64>::new(vec![]).into(),
        },
        G::MultiPolygon(m) => MultiPolygon::new(polygons(&mut m.iter())).into(),
        G::GeometryCollection(c) => {
            G::GeometryCollection(c.iter().map(without_empty_rings).collect())
        }
        other => other.clone(),
    }
}

impl GeometryStep for BufferTransform {
    type Scratch = ();

    fn compute(
        &self,
        feature: &Feature,
        _: &mut (),
        _: &mut Vec<Value>,
    ) -> Result<GeometryChange, String> {
        self.buffer(feature).map(GeometryChange::Set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, reason, run, transform};
    use geo::{Area, Contains};
    use geo_types::{LineString, Point, line_string, point, polygon};
    use serde_json::json;

    fn area(f: &Feature) -> f64 {
        f.geometry().unwrap().geom.unsigned_area()
    }

    #[test]
    fn example_parses_and_builds() {
        let t = transform(&SPEC, example_params(&SPEC));
        let line: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 100.0, y: 0.0)].into();
        let out = run(t.as_ref(), 2, vec![feature(1, line, Some(32632))]);
        // A flat-capped 100 m segment buffered by 25 m is a 100 x 50 rectangle.
        assert!(
            (area(&out[0][0]) - 5000.0).abs() < 1e-6,
            "{}",
            area(&out[0][0])
        );
        assert_eq!(out[0][0].geometry().unwrap().crs, Some(32632));
    }

    #[test]
    fn point_buffer_is_a_disc_and_polygons_grow_and_shrink() {
        let disc = transform(&SPEC, json!({"distance": 10.0}));
        let out = run(
            disc.as_ref(),
            2,
            vec![feature(1, point!(x: 5.0, y: 5.0).into(), None)],
        );
        let a = area(&out[0][0]);
        let circle = std::f64::consts::PI * 100.0;
        assert!((a - circle).abs() / circle < 0.01, "{a}");
        assert!(matches!(out[0][0].geometry().unwrap().geom, G::Polygon(_)));
        assert!(
            out[0][0]
                .geometry()
                .unwrap()
                .geom
                .contains(&Point::new(14.0, 5.0))
        );

        let square: G<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)]
                .into();
        let grow = transform(&SPEC, json!({"distance": 1.0, "join": "mitre"}));
        let shrink = transform(&SPEC, json!({"distance": -2.0}));
        let grown = area(&run(grow.as_ref(), 2, vec![feature(1, square.clone(), None)])[0][0]);
        let shrunk = area(&run(shrink.as_ref(), 2, vec![feature(1, square, None)])[0][0]);
        assert!((grown - 144.0).abs() < 1e-6, "{grown}");
        assert!((shrunk - 36.0).abs() < 1e-6, "{shrunk}");
    }

    #[test]
    fn bad_data_is_rejected_and_bad_params_located() {
        let t = transform(&SPEC, json!({"distance": 1.0}));
        let bad: G<f64> = line_string![(x: 0.0, y: 0.0), (x: f64::INFINITY, y: 0.0)].into();
        let input = vec![
            Feature::from_pairs(1, [("name", "none".into())]),
            feature(2, bad, None),
        ];
        let out = run(t.as_ref(), 2, input);
        assert!(out[0].is_empty());
        assert!(reason(&out[1][0]).contains("no geometry"));
        assert!(
            reason(&out[1][1]).contains("not finite"),
            "{}",
            reason(&out[1][1])
        );
        for (params, path) in [
            (json!({}), ""),
            (json!({"distance": "far"}), "distance"),
            (json!({"distance": 1.0, "cap": "pointy"}), "cap"),
        ] {
            match build(&SPEC, params) {
                Err(ActionError::Param { path: p, .. }) => assert_eq!(p, path),
                _ => panic!("expected a parameter error at {path:?}"),
            }
        }
    }

    #[test]
    fn polygons_grow_and_shrink_the_same_whatever_their_winding() {
        use crate::geometry::test_util::windings;
        let frame = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)],
            interiors: [[(x: 3.0, y: 3.0), (x: 7.0, y: 3.0), (x: 7.0, y: 7.0), (x: 3.0, y: 7.0)]],
        );
        let grow = transform(&SPEC, json!({"distance": 1.0, "join": "mitre"}));
        let shrink = transform(&SPEC, json!({"distance": -1.0, "join": "mitre"}));
        for polygon in windings(&frame) {
            let input = || vec![feature(1, polygon.clone().into(), None)];
            // 12 x 12 less a 2 x 2 hole; 8 x 8 less a 6 x 6 hole.
            let grown = area(&run(grow.as_ref(), 2, input())[0][0]);
            let shrunk = area(&run(shrink.as_ref(), 2, input())[0][0]);
            assert!((grown - 140.0).abs() < 1e-9, "{grown}");
            assert!((shrunk - 28.0).abs() < 1e-9, "{shrunk}");
        }
    }

    #[test]
    fn empty_polygons_and_rings_buffer_to_what_is_left() {
        let t = transform(&SPEC, json!({"distance": 1.0, "join": "mitre"}));
        let square =
            polygon![(x: 0.0, y: 0.0), (x: 2.0, y: 0.0), (x: 2.0, y: 2.0), (x: 0.0, y: 2.0)];
        let empty = Polygon::new(LineString(vec![]), vec![]);
        let empty_hole = Polygon::new(square.exterior().clone(), vec![LineString(vec![])]);
        let input = vec![
            feature(1, empty.clone().into(), None),
            feature(2, empty_hole.into(), None),
            feature(
                3,
                MultiPolygon(vec![empty.clone(), square.clone()]).into(),
                None,
            ),
            feature(
                4,
                G::GeometryCollection(vec![G::from(empty), square.into()].into()),
                None,
            ),
            feature(5, MultiPolygon::<f64>(vec![]).into(), None),
        ];
        let out = run(t.as_ref(), 2, input);
        assert!(out[1].is_empty());
        let areas: Vec<f64> = out[0].iter().map(area).collect();
        assert_eq!(areas, [0.0, 16.0, 16.0, 16.0, 0.0]);
        assert_eq!(
            out[0][0].geometry().unwrap().geom,
            MultiPolygon::<f64>(vec![]).into()
        );
    }
}
