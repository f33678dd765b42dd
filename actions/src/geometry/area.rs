//! `area`: writes the area of each feature's polygonal geometry into an attribute.
//!
//! ```yaml
//! - id: parcel_area
//!   action: area
//!   with:
//!     attribute: area_m2
//!     method: geodesic
//! ```
//!
//! - `method: planar` is the area in squared CRS units (the shoelace formula, holes
//!   subtracted); `method: geodesic` is the area on the WGS 84 ellipsoid in square metres
//!   (Karney's algorithm), for longitude/latitude coordinates. Without `method`, features in a
//!   geographic CRS (EPSG:4326 and the other [`GEOGRAPHIC_CRS`](super::GEOGRAPHIC_CRS) codes)
//!   get the geodesic area and every other feature (projected or unknown CRS) the planar one.
//! - Ring orientation does not matter: a polygon's area is its exterior ring's area less the
//!   area of each hole, whichever way each ring runs (clockwise exteriors, as Shapefiles and
//!   much GDAL-written GeoJSON have them, measure the same as counter-clockwise ones). A
//!   geodesic ring bounds two regions of the ellipsoid; its area is the smaller one (as
//!   pyproj's `Geod.polygon_area_perimeter` gives it, up to sign), so a ring around a pole is
//!   the polar cap it encloses and a ring across the antimeridian is the region its shortest
//!   edges enclose. A polygon larger than half the Earth cannot be written this way.
//! - Polygonal geometries are polygons, multipolygons, rectangles and triangles; a geometry
//!   collection measures its polygonal members.
//! - A feature without a polygonal geometry (no geometry, a point, a line, a collection with
//!   no polygon) gets a null area, or goes to `rejected` with `require_geometry: true`.
//! - Rejected in every case: `method: geodesic` on a feature whose CRS is known and is not
//!   geographic, and geodesic input with a latitude beyond ±90° or a non-finite coordinate.

use geo::GeodesicArea;
use geo_types::{Geometry as G, LineString, Polygon};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    REJECTED_PORT, Value,
};

use super::per_feature::{GeometryChange, GeometryStep, PerFeature, step_shape};
use super::{bad_lonlat, check_attribute_name, is_geographic, type_name};

/// Parameters of `area`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaParams {
    /// The attribute that receives the area (a float, or null without a polygonal geometry).
    #[serde(default = "default_attribute")]
    pub attribute: String,
    /// `planar` (squared CRS units) or `geodesic` (square metres on WGS 84, for
    /// longitude/latitude). Default: geodesic for geographic CRS codes, planar otherwise.
    #[serde(default)]
    pub method: Option<AreaMethod>,
    /// Send features without a polygonal geometry to `rejected` instead of writing null.
    #[serde(default)]
    pub require_geometry: bool,
}

fn default_attribute() -> String {
    "area".to_string()
}

/// How an area is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AreaMethod {
    /// In the plane of the coordinates: squared CRS units.
    Planar,
    /// On the WGS 84 ellipsoid: square metres (coordinates in degrees).
    Geodesic,
}

/// The `area` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "area",
    ActionKind::Processor,
    "Writes the area of each feature's polygonal geometry (planar or geodesic) into an attribute.",
    schema_of::<AreaParams>,
    build,
)
.per_feature()
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("attribute: area_m2\nmethod: geodesic\n");

/// The input with the measure (a float) set.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let step = AreaTransform::from(ctx.params::<AreaParams>()?);
    Ok(step_shape(ctx, &step, Type::Float, |g| g))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: AreaParams = ctx.params()?;
    check_attribute_name("attribute", &params.attribute)?;
    Ok(PerFeature::build(AreaTransform::from(params)))
}

/// The step a node runs, and its schema function predicts, from the parameters.
impl From<AreaParams> for AreaTransform {
    fn from(params: AreaParams) -> AreaTransform {
        AreaTransform {
            attribute: params.attribute,
            method: params.method,
            require_geometry: params.require_geometry,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct AreaTransform {
    attribute: String,
    method: Option<AreaMethod>,
    require_geometry: bool,
}

impl AreaTransform {
    /// The area, null when the geometry is not polygonal, or the reason to reject.
    fn measure(&self, feature: &Feature) -> Result<Value, String> {
        let Some(g) = feature.geometry() else {
            return self.missing("the feature has no geometry".to_string());
        };
        let geographic = is_geographic(g.crs);
        let method = self.method.unwrap_or(if geographic {
            AreaMethod::Geodesic
        } else {
            AreaMethod::Planar
        });
        let area = match method {
            AreaMethod::Planar => polygonal_area(&g.geom, &planar_polygon_area),
            AreaMethod::Geodesic => {
                if let (Some(crs), false) = (g.crs, geographic) {
                    return Err(format!(
                        "area: geodesic area needs longitude/latitude coordinates, the geometry is in EPSG:{crs}; use method: planar or reproject first"
                    ));
                }
                if let Some(c) = bad_lonlat(&g.geom) {
                    return Err(format!(
                        "area: coordinate ({}, {}) is not a longitude/latitude pair",
                        c.x, c.y
                    ));
                }
                polygonal_area(&g.geom, &geodesic_polygon_area)
            }
        };
        match area {
            Some(a) => Ok(Value::Float(a)),
            None => self.missing(format!(
                "the geometry ({}) is not polygonal",
                type_name(&g.geom)
            )),
        }
    }

    fn missing(&self, what: String) -> Result<Value, String> {
        if self.require_geometry {
            Err(format!("area: {what} and require_geometry is set"))
        } else {
            Ok(Value::Null)
        }
    }
}

/// A polygon's planar area: its exterior ring's area less its holes', whatever their winding.
/// (An invalid polygon whose holes outweigh its exterior gets a negative area, as in GEOS.)
fn planar_polygon_area(p: &Polygon<f64>) -> f64 {
    let holes: f64 = p.interiors().iter().map(planar_ring_area).sum();
    planar_ring_area(p.exterior()) - holes
}

/// The unsigned shoelace area of a ring, computed relative to its first coordinate (which
/// keeps precision for coordinates far from the origin).
fn planar_ring_area(ring: &LineString<f64>) -> f64 {
    let Some(&origin) = ring.0.first() else {
        return 0.0;
    };
    let twice: f64 = ring
        .0
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0] - origin, w[1] - origin);
            a.x * b.y - b.x * a.y
        })
        .sum();
    // The closing edge, back to the origin, adds nothing: an open ring measures as closed.
    twice.abs() / 2.0
}

/// A polygon's geodesic area: its exterior ring's area less its holes', whatever their
/// winding. (An invalid polygon whose holes outweigh its exterior gets a negative area.)
fn geodesic_polygon_area(p: &Polygon<f64>) -> f64 {
    if p.interiors().is_empty() {
        // The signed area, reduced by Karney's algorithm to (-A/2, A/2] with A the Earth's
        // area, is minus the area for a clockwise ring: its magnitude is the smaller region.
        return p.geodesic_area_signed().abs();
    }
    let holes: f64 = p.interiors().iter().map(geodesic_ring_area).sum();
    geodesic_ring_area(p.exterior()) - holes
}

/// The geodesic area of the smaller region a ring bounds, whatever its winding.
fn geodesic_ring_area(ring: &LineString<f64>) -> f64 {
    Polygon::new(ring.clone(), vec![])
        .geodesic_area_signed()
        .abs()
}

/// The summed area of the polygonal parts, `None` when there are none.
fn polygonal_area(geom: &G<f64>, area: &dyn Fn(&Polygon<f64>) -> f64) -> Option<f64> {
    match geom {
        G::Polygon(p) => Some(area(p)),
        G::MultiPolygon(m) => Some(m.iter().map(area).sum()),
        G::Rect(r) => Some(area(&r.to_polygon())),
        G::Triangle(t) => Some(area(&t.to_polygon())),
        G::GeometryCollection(c) => c
            .iter()
            .filter_map(|g| polygonal_area(g, area))
            .reduce(|a, b| a + b),
        G::Point(_) | G::Line(_) | G::LineString(_) | G::MultiPoint(_) | G::MultiLineString(_) => {
            None
        }
    }
}

impl GeometryStep for AreaTransform {
    type Scratch = ();

    fn writes(&self) -> Vec<&str> {
        vec![&self.attribute]
    }

    fn compute(
        &self,
        feature: &Feature,
        _: &mut (),
        values: &mut Vec<Value>,
    ) -> Result<GeometryChange, String> {
        values.push(self.measure(feature)?);
        Ok(GeometryChange::Keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{
        cell_with_hole, example_params, feature, reason, rewound, run, transform, windings,
    };
    use geo_types::{MultiPolygon, Rect, coord, line_string, point, polygon};
    use serde_json::json;
    use std::sync::Arc;

    fn area_of(out: &[Feature], attribute: &str) -> Vec<Option<f64>> {
        out.iter()
            .map(|f| f.get(attribute).and_then(Value::as_f64))
            .collect()
    }

    fn unit_square() -> G<f64> {
        polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0)].into()
    }

    #[test]
    fn example_parses_and_builds() {
        let t = transform(&SPEC, example_params(&SPEC));
        let out = run(t.as_ref(), 2, vec![feature(1, unit_square(), Some(4326))]);
        assert!(out[0][0].get("area_m2").is_some());
    }

    #[test]
    fn planar_area_of_shapes_with_holes_and_collections() {
        let t = transform(&SPEC, json!({}));
        let with_hole: G<f64> = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 4.0)],
            interiors: [[(x: 1.0, y: 1.0), (x: 2.0, y: 1.0), (x: 2.0, y: 2.0), (x: 1.0, y: 2.0)]],
        )
        .into();
        let rect: G<f64> = Rect::new(coord! {x: 0.0, y: 0.0}, coord! {x: 2.0, y: 3.0}).into();
        let collection: G<f64> = G::GeometryCollection(geo_types::GeometryCollection(vec![
            unit_square(),
            point!(x: 5.0, y: 5.0).into(),
        ]));
        let input = vec![
            feature(1, unit_square(), None),
            feature(2, with_hole, Some(3857)),
            feature(3, rect, None),
            feature(4, collection, None),
        ];
        let out = run(t.as_ref(), 2, input);
        assert_eq!(
            area_of(&out[0], "area"),
            vec![Some(1.0), Some(15.0), Some(6.0), Some(1.0)]
        );
        // One output schema for the whole batch.
        assert!(Arc::ptr_eq(out[0][0].schema(), out[0][3].schema()));
    }

    #[test]
    fn geodesic_area_of_a_one_degree_cell_at_the_equator() {
        let cell: G<f64> = Rect::new(coord! {x: 0.0, y: 0.0}, coord! {x: 1.0, y: 1.0}).into();
        // Default for EPSG:4326 is geodesic; explicit geodesic on an untagged geometry too.
        let by_default = transform(&SPEC, json!({}));
        let explicit = transform(&SPEC, json!({"method": "geodesic", "attribute": "a"}));
        let a = area_of(
            &run(
                by_default.as_ref(),
                2,
                vec![feature(1, cell.clone(), Some(4326))],
            )[0],
            "area",
        )[0]
        .unwrap();
        let b = area_of(
            &run(explicit.as_ref(), 2, vec![feature(1, cell, None)])[0],
            "a",
        )[0]
        .unwrap();
        let expected = 1.2308e10;
        assert!((a - expected).abs() / expected < 0.005, "{a}");
        assert_eq!(a, b);
    }

    #[test]
    fn non_polygonal_geometries_get_null_or_are_rejected() {
        let line: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0)].into();
        let input = || {
            vec![
                feature(1, point!(x: 1.0, y: 1.0).into(), None),
                feature(2, line.clone(), None),
                Feature::from_pairs(3, [("name", "none".into())]),
            ]
        };
        let lenient = transform(&SPEC, json!({}));
        let out = run(lenient.as_ref(), 2, input());
        assert_eq!(area_of(&out[0], "area"), vec![None, None, None]);
        assert!(out[0].iter().all(|f| f.get("area") == Some(&Value::Null)));

        let strict = transform(&SPEC, json!({"require_geometry": true}));
        let out = run(strict.as_ref(), 2, input());
        assert!(out[0].is_empty());
        assert_eq!(out[1].len(), 3);
        assert!(
            reason(&out[1][0]).contains("(point) is not polygonal"),
            "{}",
            reason(&out[1][0])
        );
        assert!(reason(&out[1][2]).contains("no geometry"));
    }

    #[test]
    fn bad_data_is_rejected_with_a_reason() {
        let t = transform(&SPEC, json!({"method": "geodesic"}));
        let bad_lat: G<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 95.0), (x: 1.0, y: 0.0)].into();
        let input = vec![
            feature(1, unit_square(), Some(3857)),
            feature(2, bad_lat, Some(4326)),
            feature(3, unit_square(), Some(4326)),
        ];
        let out = run(t.as_ref(), 2, input);
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[1].len(), 2);
        assert!(reason(&out[1][0]).contains("EPSG:3857"));
        assert!(
            reason(&out[1][1]).contains("(1, 95)"),
            "{}",
            reason(&out[1][1])
        );
    }

    #[test]
    fn bad_parameters_are_located() {
        for (params, path) in [
            (json!({"attribute": ""}), "attribute"),
            (json!({"method": "spherical"}), "method"),
            (json!({"unknown": 1}), "unknown"),
        ] {
            match crate::geometry::test_util::build(&SPEC, params) {
                Err(ActionError::Param { path: p, .. }) => assert_eq!(p, path),
                _ => panic!("expected a parameter error at {path:?}"),
            }
        }
    }

    /// Geodesic and planar areas of one feature per geometry, in input order.
    fn areas(method: &str, geoms: Vec<G<f64>>) -> Vec<f64> {
        let t = transform(&SPEC, json!({ "method": method }));
        let input = geoms
            .into_iter()
            .enumerate()
            .map(|(i, g)| feature(i as u64, g, Some(4326)))
            .collect();
        let out = run(t.as_ref(), 2, input);
        assert!(out[1].is_empty(), "{}", reason(&out[1][0]));
        area_of(&out[0], "area")
            .into_iter()
            .map(Option::unwrap)
            .collect()
    }

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= rel * expected.abs(),
            "{actual} != {expected} (relative error {:e})",
            (actual - expected).abs() / expected.abs()
        );
    }

    // Reference values: pyproj 3.7 `Geod(ellps="WGS84").polygon_area_perimeter`, absolute
    // value of the signed area of each ring.
    const CELL_M2: f64 = 12_308_778_361.469_452;
    const CELL_HOLE_M2: f64 = 3_077_164_136.654_58;
    const NORTH_CAP_80_M2: f64 = 2_507_270_031_169.875;
    const ANTIMERIDIAN_BOX_M2: f64 = 4_948_480_469_169.516;
    /// The ring (0 0, 1 1, 2 2, 0 0).
    const COLLINEAR_SLIVER_M2: f64 = 5_649_973.260_229_111;

    #[test]
    fn clockwise_rings_measure_like_counter_clockwise_ones() {
        let cell: Polygon<f64> =
            Rect::new(coord! {x: 0.0, y: 0.0}, coord! {x: 1.0, y: 1.0}).to_polygon();
        let geoms: Vec<G<f64>> = windings(&cell).into_iter().map(G::from).collect();
        for a in areas("geodesic", geoms.clone()) {
            // Before: a clockwise ring measured the rest of the Earth, 5.1e14 m².
            assert_close(a, CELL_M2, 1e-12);
        }
        assert_eq!(areas("planar", geoms), vec![1.0; 4]);
    }

    #[test]
    fn holes_are_subtracted_whatever_their_winding() {
        let geoms: Vec<G<f64>> = windings(&cell_with_hole())
            .into_iter()
            .map(G::from)
            .collect();
        for a in areas("geodesic", geoms.clone()) {
            assert_close(a, CELL_M2 - CELL_HOLE_M2, 1e-12);
        }
        assert_eq!(areas("planar", geoms), vec![0.75; 4]);
    }

    #[test]
    fn multipolygons_with_mixed_windings_sum_their_parts() {
        let [a, b, c, d] = windings(&cell_with_hole());
        let shifted = |p: Polygon<f64>| {
            use geo::Translate;
            p.translate(2.0, 0.0)
        };
        let mixed: G<f64> = MultiPolygon(vec![a, shifted(d)]).into();
        let other: G<f64> = MultiPolygon(vec![b, shifted(c)]).into();
        for area in areas("geodesic", vec![mixed.clone(), other.clone()]) {
            // The shifted copy lies at the same latitudes: the same area.
            assert_close(area, 2.0 * (CELL_M2 - CELL_HOLE_M2), 1e-12);
        }
        assert_eq!(areas("planar", vec![mixed, other]), vec![1.5; 2]);
    }

    #[test]
    fn polar_caps_and_antimeridian_crossings_measure_the_smaller_region() {
        let north: Polygon<f64> = polygon![
            (x: 0.0, y: 80.0), (x: 90.0, y: 80.0), (x: 180.0, y: 80.0), (x: -90.0, y: 80.0)
        ];
        // Eastwards around the south pole: the same cap by symmetry.
        let south: Polygon<f64> = polygon![
            (x: 0.0, y: -80.0), (x: 90.0, y: -80.0), (x: 180.0, y: -80.0), (x: -90.0, y: -80.0)
        ];
        let caps: Vec<G<f64>> = [&north, &south]
            .into_iter()
            .flat_map(|p| [p.clone(), rewound(p, true, false)])
            .map(G::from)
            .collect();
        for a in areas("geodesic", caps) {
            assert_close(a, NORTH_CAP_80_M2, 1e-12);
        }
        // 170°E to 170°W across the antimeridian, written with wrapped and unwrapped
        // longitudes, both ways round.
        let wrapped: Polygon<f64> = polygon![
            (x: 170.0, y: -10.0), (x: -170.0, y: -10.0), (x: -170.0, y: 10.0), (x: 170.0, y: 10.0)
        ];
        let unwrapped: Polygon<f64> = polygon![
            (x: 170.0, y: -10.0), (x: 190.0, y: -10.0), (x: 190.0, y: 10.0), (x: 170.0, y: 10.0)
        ];
        let boxes: Vec<G<f64>> = [&wrapped, &unwrapped]
            .into_iter()
            .flat_map(|p| [p.clone(), rewound(p, true, false)])
            .map(G::from)
            .collect();
        for a in areas("geodesic", boxes) {
            assert_close(a, ANTIMERIDIAN_BOX_M2, 1e-12);
        }
    }

    #[test]
    fn empty_and_degenerate_polygons_have_no_planar_area() {
        let empty: G<f64> = Polygon::new(LineString(vec![]), vec![]).into();
        let no_parts: G<f64> = MultiPolygon::<f64>(vec![]).into();
        let collinear: G<f64> =
            polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0), (x: 2.0, y: 2.0)].into();
        let one_point: G<f64> =
            polygon![(x: 1.0, y: 1.0), (x: 1.0, y: 1.0), (x: 1.0, y: 1.0)].into();
        let two_points: G<f64> = polygon![(x: 1.0, y: 1.0), (x: 2.0, y: 1.0)].into();
        let geoms = vec![empty, no_parts, collinear, one_point, two_points];
        assert_eq!(areas("planar", geoms.clone()), vec![0.0; 5]);
        let geodesic = areas("geodesic", geoms);
        // Collinear in degrees is not along one geodesic: the ring encloses a sliver.
        assert_close(geodesic[2], COLLINEAR_SLIVER_M2, 1e-9);
        assert_eq!(
            [geodesic[0], geodesic[1], geodesic[3], geodesic[4]],
            [0.0; 4]
        );
    }
}
