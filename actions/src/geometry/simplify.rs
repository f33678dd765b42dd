//! `simplify`: removes vertices that change a geometry's shape by less than a tolerance.
//!
//! ```yaml
//! - id: generalise
//!   action: simplify
//!   with:
//!     tolerance: 5.0
//!     preserve_topology: false
//! ```
//!
//! - By default the Ramer-Douglas-Peucker algorithm keeps every vertex farther than
//!   `tolerance` (CRS units) from the simplified line. A polygon ring keeps at least four
//!   coordinates (a triangle).
//! - `preserve_topology: true` uses the topology-preserving Visvalingam-Whyatt variant, which
//!   avoids creating self-intersections where it can. Its `tolerance` is an AREA, in squared
//!   CRS units: a vertex goes when the triangle it forms with its neighbours is smaller.
//! - Ring winding does not change the result: a polygon simplifies to the same shape whichever
//!   way its rings run, and each ring keeps its winding.
//! - Linestrings, polygons, their multi forms and the members of collections are simplified;
//!   points, lines, rectangles and triangles pass unchanged. The CRS is kept.
//! - A feature without a geometry, or with a non-finite coordinate, goes to `rejected` with
//!   the reason.

use geo::{Simplify, SimplifyVwPreserve, Winding};
use geo_types::{Geometry as G, GeometryCollection, LineString, MultiPolygon, Polygon};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, REJECTED_PORT, Value,
};

use super::non_finite;
use super::per_feature::{GeometryChange, GeometryStep, PerFeature};

/// Parameters of `simplify`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimplifyParams {
    /// How far (CRS units) a vertex may be from the simplified line and still go; with
    /// `preserve_topology`, the triangle area (squared CRS units) under which a vertex goes.
    /// Zero or more.
    pub tolerance: f64,
    /// Use the topology-preserving Visvalingam-Whyatt variant instead of Ramer-Douglas-Peucker.
    #[serde(default)]
    pub preserve_topology: bool,
}

/// The `simplify` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "simplify",
    ActionKind::Processor,
    "Simplifies lines and polygons (Ramer-Douglas-Peucker, or topology-preserving Visvalingam-Whyatt).",
    schema_of::<SimplifyParams>,
    build,
)
.per_feature()
.shape(super::per_feature::same_shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("tolerance: 5.0\npreserve_topology: false\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: SimplifyParams = ctx.params()?;
    if !(params.tolerance.is_finite() && params.tolerance >= 0.0) {
        return Err(ActionError::param(
            "tolerance",
            format!(
                "the tolerance must be a finite number, zero or more, got {}",
                params.tolerance
            ),
        ));
    }
    Ok(PerFeature::build(SimplifyTransform {
        tolerance: params.tolerance,
        preserve_topology: params.preserve_topology,
    }))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct SimplifyTransform {
    tolerance: f64,
    preserve_topology: bool,
}

impl SimplifyTransform {
    fn simplify(&self, geom: &G<f64>) -> G<f64> {
        let t = self.tolerance;
        if self.preserve_topology {
            match geom {
                G::LineString(l) => l.simplify_vw_preserve(t).into(),
                G::MultiLineString(m) => m.simplify_vw_preserve(t).into(),
                G::Polygon(p) => oriented(p, |q| q.simplify_vw_preserve(t)).into(),
                G::MultiPolygon(m) => MultiPolygon::from_iter(
                    m.iter().map(|p| oriented(p, |q| q.simplify_vw_preserve(t))),
                )
                .into(),
                G::GeometryCollection(c) => self.collection(c),
                G::Point(_) | G::MultiPoint(_) | G::Line(_) | G::Rect(_) | G::Triangle(_) => {
                    geom.clone()
                }
            }
        } else {
            match geom {
                G::LineString(l) => l.simplify(t).into(),
                G::MultiLineString(m) => m.simplify(t).into(),
                G::Polygon(p) => oriented(p, |q| q.simplify(t)).into(),
                G::MultiPolygon(m) => {
                    MultiPolygon::from_iter(m.iter().map(|p| oriented(p, |q| q.simplify(t)))).into()
                }
                G::GeometryCollection(c) => self.collection(c),
                G::Point(_) | G::MultiPoint(_) | G::Line(_) | G::Rect(_) | G::Triangle(_) => {
                    geom.clone()
                }
            }
        }
    }

    fn collection(&self, c: &GeometryCollection<f64>) -> G<f64> {
        G::GeometryCollection(GeometryCollection(
            c.iter().map(|g| self.simplify(g)).collect(),
        ))
    }
}

/// Simplifies `p` as if its exterior ran counter-clockwise and its holes clockwise, then gives
/// each ring back its own winding. Both algorithms walk a ring from its first vertex and break
/// ties (and keep a ring's minimum vertex count) in walking order, so without this a polygon
/// and its rewound copy could simplify to different shapes.
fn oriented(p: &Polygon<f64>, simplify: impl Fn(&Polygon<f64>) -> Polygon<f64>) -> Polygon<f64> {
    let flip_exterior = p.exterior().is_cw();
    let flip_holes: Vec<bool> = p.interiors().iter().map(|r| r.is_ccw()).collect();
    if !flip_exterior && !flip_holes.contains(&true) {
        return simplify(p);
    }
    let rewind = |q: &Polygon<f64>| {
        Polygon::new(
            turned(q.exterior(), flip_exterior),
            q.interiors()
                .iter()
                .zip(&flip_holes)
                .map(|(r, &flip)| turned(r, flip))
                .collect(),
        )
    };
    let simplified = simplify(&rewind(p));
    if simplified.interiors().len() == flip_holes.len() {
        rewind(&simplified)
    } else {
        simplified
    }
}

/// `ring`, reversed when `flip` (a closed ring keeps its first vertex).
fn turned(ring: &LineString<f64>, flip: bool) -> LineString<f64> {
    let mut coords = ring.0.clone();
    if flip {
        coords.reverse();
    }
    LineString(coords)
}

impl GeometryStep for SimplifyTransform {
    type Scratch = ();

    fn compute(
        &self,
        feature: &Feature,
        _: &mut (),
        _: &mut Vec<Value>,
    ) -> Result<GeometryChange, String> {
        let Some(g) = feature.geometry() else {
            return Err("simplify: the feature has no geometry".to_string());
        };
        if let Some(c) = non_finite(&g.geom) {
            return Err(format!(
                "simplify: coordinate ({}, {}) is not finite",
                c.x, c.y
            ));
        }
        Ok(GeometryChange::Set(Geometry::in_crs(
            self.simplify(&g.geom),
            g.crs,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, reason, run, transform};
    use geo::CoordsIter;
    use geo_types::{line_string, point, polygon};
    use serde_json::json;

    fn coords(f: &Feature) -> usize {
        f.geometry().unwrap().geom.coords_count()
    }

    #[test]
    fn example_parses_and_builds() {
        transform(&SPEC, example_params(&SPEC));
    }

    #[test]
    fn rdp_drops_vertices_within_tolerance() {
        let t = transform(&SPEC, json!({"tolerance": 0.5}));
        let wobbly: G<f64> =
            line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 0.1), (x: 2.0, y: -0.1), (x: 3.0, y: 5.0), (x: 4.0, y: 0.0)].into();
        let square_ish: G<f64> = polygon![
            (x: 0.0, y: 0.0), (x: 5.0, y: 0.1), (x: 10.0, y: 0.0),
            (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)
        ]
        .into();
        let input = vec![
            feature(1, wobbly, Some(3857)),
            feature(2, square_ish, None),
            feature(3, point!(x: 1.0, y: 1.0).into(), None),
        ];
        let out = run(t.as_ref(), 2, input);
        let expected: G<f64> =
            line_string![(x: 0.0, y: 0.0), (x: 2.0, y: -0.1), (x: 3.0, y: 5.0), (x: 4.0, y: 0.0)]
                .into();
        assert_eq!(out[0][0].geometry().unwrap().geom, expected);
        assert_eq!(out[0][0].geometry().unwrap().crs, Some(3857));
        assert_eq!(coords(&out[0][1]), 5); // four corners, closed
        assert_eq!(coords(&out[0][2]), 1);
    }

    #[test]
    fn preserve_topology_avoids_the_self_intersection() {
        let crossing: LineString<f64> = line_string![
            (x: 10., y: 60.), (x: 135., y: 68.), (x: 94., y: 48.), (x: 126., y: 31.),
            (x: 280., y: 19.), (x: 117., y: 48.), (x: 300., y: 40.), (x: 301., y: 10.)
        ];
        let t = transform(
            &SPEC,
            json!({"tolerance": 668.6, "preserve_topology": true}),
        );
        let out = run(t.as_ref(), 2, vec![feature(1, crossing.into(), None)]);
        let expected: G<f64> = line_string![
            (x: 10., y: 60.), (x: 126., y: 31.), (x: 280., y: 19.),
            (x: 117., y: 48.), (x: 300., y: 40.), (x: 301., y: 10.)
        ]
        .into();
        assert_eq!(out[0][0].geometry().unwrap().geom, expected);
    }

    #[test]
    fn bad_data_is_rejected_and_bad_params_located() {
        let t = transform(&SPEC, json!({"tolerance": 1.0}));
        let nan: G<f64> = line_string![(x: 0.0, y: f64::NAN), (x: 1.0, y: 0.0)].into();
        let out = run(
            t.as_ref(),
            2,
            vec![
                Feature::from_pairs(1, [("name", "x".into())]),
                feature(2, nan, None),
            ],
        );
        assert!(out[0].is_empty());
        assert!(reason(&out[1][0]).contains("no geometry"));
        assert!(reason(&out[1][1]).contains("not finite"));
        assert!(matches!(
            build(&SPEC, json!({"tolerance": -1.0})),
            Err(ActionError::Param { path, .. }) if path == "tolerance"
        ));
    }

    #[test]
    fn rings_simplify_the_same_whatever_their_winding() {
        use crate::geometry::test_util::windings;
        let frame = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 5.0, y: 0.1), (x: 10.0, y: 0.0), (x: 10.1, y: 5.0),
                (x: 10.0, y: 10.0), (x: 0.0, y: 10.0)],
            interiors: [[(x: 3.0, y: 3.0), (x: 5.0, y: 2.9), (x: 7.0, y: 3.0), (x: 7.0, y: 7.0),
                (x: 3.0, y: 7.0)]],
        );
        for params in [
            json!({"tolerance": 0.5}),
            json!({"tolerance": 1.0, "preserve_topology": true}),
        ] {
            let t = transform(&SPEC, params.clone());
            let mut results = Vec::new();
            for polygon in windings(&frame) {
                let out = run(
                    t.as_ref(),
                    2,
                    vec![feature(1, polygon.clone().into(), None)],
                );
                let G::Polygon(p) = out[0][0].geometry().unwrap().geom.clone() else {
                    panic!("not a polygon");
                };
                // Each ring keeps its winding.
                assert_eq!(p.exterior().is_cw(), polygon.exterior().is_cw());
                assert_eq!(p.interiors()[0].is_cw(), polygon.interiors()[0].is_cw());
                // Each ring as a sorted set of vertices: the winding may differ, not the shape.
                let ring = |r: &LineString<f64>| {
                    let mut c = r.0.clone();
                    c.pop();
                    c.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
                    c
                };
                let rings: Vec<_> = std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(ring)
                    .collect();
                results.push(rings);
            }
            assert!(
                results.windows(2).all(|w| w[0] == w[1]),
                "{params}: {results:?}"
            );
            // The near-collinear vertices went, the corners stayed.
            assert_eq!(results[0][0].len(), 4, "{params}");
            assert_eq!(results[0][1].len(), 4, "{params}");
        }
    }
}
