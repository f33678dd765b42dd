//! `length`: writes the length of each feature's linear geometry into an attribute.
//!
//! ```yaml
//! - id: road_length
//!   action: length
//!   with:
//!     attribute: length_m
//!     method: geodesic
//! ```
//!
//! - `method: planar` is the Euclidean length in CRS units; `method: geodesic` the length on
//!   the WGS 84 ellipsoid in metres (Karney's algorithm); `method: haversine` the length on a
//!   sphere of mean Earth radius in metres (faster, within about 0.5 % of geodesic). The last
//!   two expect longitude/latitude coordinates. Without `method`, features in a geographic CRS
//!   (EPSG:4326 and the other [`GEOGRAPHIC_CRS`](super::GEOGRAPHIC_CRS) codes) get the geodesic
//!   length and every other feature (projected or unknown CRS) the planar one.
//! - Linear geometries are lines, linestrings and multilinestrings; a geometry collection
//!   measures its linear members. Polygon outlines are not lengths here.
//! - A feature without a linear geometry (no geometry, a point, a polygon, a collection with no
//!   line) gets a null length, or goes to `rejected` with `require_geometry: true`.
//! - Rejected in every case: a geodesic or haversine length of a feature whose CRS is known and
//!   is not geographic, and such input with a latitude beyond ±90° or a non-finite coordinate.

use geo::{Euclidean, Geodesic, Haversine, Length};
use geo_types::{Geometry as G, LineString};
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

/// Parameters of `length`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LengthParams {
    /// The attribute that receives the length (a float, or null without a linear geometry).
    #[serde(default = "default_attribute")]
    pub attribute: String,
    /// `planar` (CRS units), `geodesic` (metres on WGS 84) or `haversine` (metres on a
    /// sphere). Default: geodesic for geographic CRS codes, planar otherwise.
    #[serde(default)]
    pub method: Option<LengthMethod>,
    /// Send features without a linear geometry to `rejected` instead of writing null.
    #[serde(default)]
    pub require_geometry: bool,
}

fn default_attribute() -> String {
    "length".to_string()
}

/// How a length is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LengthMethod {
    /// Euclidean, in CRS units.
    Planar,
    /// On the WGS 84 ellipsoid, in metres (coordinates in degrees).
    Geodesic,
    /// On a sphere of mean Earth radius, in metres (coordinates in degrees).
    Haversine,
}

/// The `length` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "length",
    ActionKind::Processor,
    "Writes the length of each feature's linear geometry (planar, geodesic or haversine) into an attribute.",
    schema_of::<LengthParams>,
    build,
)
.per_feature()
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("attribute: length_m\nmethod: geodesic\n");

/// The input with the measure (a float) set.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let step = LengthTransform::from(ctx.params::<LengthParams>()?);
    Ok(step_shape(ctx, &step, Type::Float, |g| g))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: LengthParams = ctx.params()?;
    check_attribute_name("attribute", &params.attribute)?;
    Ok(PerFeature::build(LengthTransform::from(params)))
}

/// The step a node runs, and its schema function predicts, from the parameters.
impl From<LengthParams> for LengthTransform {
    fn from(params: LengthParams) -> LengthTransform {
        LengthTransform {
            attribute: params.attribute,
            method: params.method,
            require_geometry: params.require_geometry,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct LengthTransform {
    attribute: String,
    method: Option<LengthMethod>,
    require_geometry: bool,
}

impl LengthTransform {
    /// The length, null when the geometry is not linear, or the reason to reject.
    fn measure(&self, feature: &Feature) -> Result<Value, String> {
        let Some(g) = feature.geometry() else {
            return self.missing("the feature has no geometry".to_string());
        };
        let geographic = is_geographic(g.crs);
        let method = self.method.unwrap_or(if geographic {
            LengthMethod::Geodesic
        } else {
            LengthMethod::Planar
        });
        if method != LengthMethod::Planar {
            if let (Some(crs), false) = (g.crs, geographic) {
                let name = if method == LengthMethod::Geodesic {
                    "geodesic"
                } else {
                    "haversine"
                };
                return Err(format!(
                    "length: {name} length needs longitude/latitude coordinates, the geometry is in EPSG:{crs}; use method: planar or reproject first"
                ));
            }
            if let Some(c) = bad_lonlat(&g.geom) {
                return Err(format!(
                    "length: coordinate ({}, {}) is not a longitude/latitude pair",
                    c.x, c.y
                ));
            }
        }
        let length = match method {
            LengthMethod::Planar => linear_length(&g.geom, &|l| Euclidean.length(l)),
            LengthMethod::Geodesic => linear_length(&g.geom, &|l| Geodesic.length(l)),
            LengthMethod::Haversine => linear_length(&g.geom, &|l| Haversine.length(l)),
        };
        match length {
            Some(l) => Ok(Value::Float(l)),
            None => self.missing(format!(
                "the geometry ({}) is not linear",
                type_name(&g.geom)
            )),
        }
    }

    fn missing(&self, what: String) -> Result<Value, String> {
        if self.require_geometry {
            Err(format!("length: {what} and require_geometry is set"))
        } else {
            Ok(Value::Null)
        }
    }
}

/// The summed length of the linear parts, `None` when there are none.
fn linear_length(geom: &G<f64>, length: &dyn Fn(&LineString<f64>) -> f64) -> Option<f64> {
    match geom {
        G::Line(l) => Some(length(&LineString::new(vec![l.start, l.end]))),
        G::LineString(l) => Some(length(l)),
        G::MultiLineString(m) => Some(m.iter().map(length).sum()),
        G::GeometryCollection(c) => c
            .iter()
            .filter_map(|g| linear_length(g, length))
            .reduce(|a, b| a + b),
        G::Point(_)
        | G::MultiPoint(_)
        | G::Polygon(_)
        | G::MultiPolygon(_)
        | G::Rect(_)
        | G::Triangle(_) => None,
    }
}

impl GeometryStep for LengthTransform {
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
    use crate::geometry::test_util::{build, example_params, feature, reason, run, transform};
    use geo_types::{Line, coord, line_string, point, polygon};
    use serde_json::json;

    fn lengths(out: &[Feature], attribute: &str) -> Vec<Option<f64>> {
        out.iter()
            .map(|f| f.get(attribute).and_then(Value::as_f64))
            .collect()
    }

    #[test]
    fn example_parses_and_builds() {
        let t = transform(&SPEC, example_params(&SPEC));
        let line: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 0.0, y: 1.0)].into();
        let out = run(t.as_ref(), 2, vec![feature(1, line, Some(4326))]);
        assert!(out[0][0].get("length_m").and_then(Value::as_f64).is_some());
    }

    #[test]
    fn planar_lengths_of_lines_and_collections() {
        let t = transform(&SPEC, json!({}));
        let ls: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 3.0, y: 4.0), (x: 3.0, y: 5.0)].into();
        let line: G<f64> = Line::new(coord! {x: 0.0, y: 0.0}, coord! {x: 0.0, y: 2.0}).into();
        let multi: G<f64> = geo_types::MultiLineString(vec![
            line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0)],
            line_string![(x: 0.0, y: 0.0), (x: 0.0, y: 2.0)],
        ])
        .into();
        let collection = G::GeometryCollection(geo_types::GeometryCollection(vec![
            ls.clone(),
            point!(x: 1.0, y: 1.0).into(),
        ]));
        let input = vec![
            feature(1, ls, Some(3857)),
            feature(2, line, None),
            feature(3, multi, None),
            feature(4, collection, None),
        ];
        let out = run(t.as_ref(), 2, input);
        assert_eq!(
            lengths(&out[0], "length"),
            vec![Some(6.0), Some(2.0), Some(3.0), Some(6.0)]
        );
    }

    #[test]
    fn geodesic_and_haversine_lengths_of_a_degree_of_meridian() {
        let line: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 0.0, y: 1.0)].into();
        let geodesic = transform(&SPEC, json!({}));
        let haversine = transform(&SPEC, json!({"method": "haversine"}));
        let g = lengths(
            &run(
                geodesic.as_ref(),
                2,
                vec![feature(1, line.clone(), Some(4326))],
            )[0],
            "length",
        )[0]
        .unwrap();
        let h = lengths(
            &run(haversine.as_ref(), 2, vec![feature(1, line, None)])[0],
            "length",
        )[0]
        .unwrap();
        // A degree of latitude at the equator is 110 574 m on WGS 84; 111 195 m on the sphere.
        assert!((g - 110_574.0).abs() < 1.0, "{g}");
        assert!((h - 111_195.0).abs() < 1.0, "{h}");
    }

    #[test]
    fn non_linear_geometries_get_null_or_are_rejected() {
        let square: G<f64> = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0)].into();
        let input = || {
            vec![
                feature(1, square.clone(), None),
                Feature::from_pairs(2, [("name", "none".into())]),
            ]
        };
        let out = run(transform(&SPEC, json!({})).as_ref(), 2, input());
        assert_eq!(lengths(&out[0], "length"), vec![None, None]);
        let out = run(
            transform(&SPEC, json!({"require_geometry": true})).as_ref(),
            2,
            input(),
        );
        assert_eq!(out[1].len(), 2);
        assert!(reason(&out[1][0]).contains("(polygon) is not linear"));
    }

    #[test]
    fn bad_data_is_rejected_with_a_reason() {
        let t = transform(&SPEC, json!({"method": "haversine"}));
        let line: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 1.0, y: f64::NAN)].into();
        let ok: G<f64> = line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0)].into();
        let out = run(
            t.as_ref(),
            2,
            vec![
                feature(1, line, None),
                feature(2, ok.clone(), Some(32632)),
                feature(3, ok, None),
            ],
        );
        assert_eq!(out[0].len(), 1);
        assert!(reason(&out[1][0]).contains("not a longitude/latitude pair"));
        assert!(reason(&out[1][1]).contains("haversine length needs longitude/latitude"));
        assert!(matches!(
            build(&SPEC, json!({"method": "vincenty"})),
            Err(ActionError::Param { path, .. }) if path == "method"
        ));
    }
}
