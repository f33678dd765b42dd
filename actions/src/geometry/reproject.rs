//! `reproject`: transforms coordinates from one coordinate reference system to another.
//!
//! ```yaml
//! - id: to_utm
//!   action: reproject
//!   with:
//!     from: 4326
//!     to: 32632
//! ```
//!
//! - Supported EPSG codes: 4326 (WGS 84 longitude/latitude, degrees), 3857 (Web Mercator,
//!   also under its old alias 900913), 32601-32660 (WGS 84 / UTM zones 1-60 north) and
//!   32701-32760 (WGS 84 / UTM zones 1-60 south). All share the WGS 84 datum, so no datum
//!   shift is involved. The projections run in pure Rust (`proj4rs`); no PROJ install needed.
//! - `from` is the CRS the coordinates are in. When given it is used for every feature, whatever
//!   CRS the feature carries (for untagged or mis-tagged data); when absent, each feature's own
//!   CRS is used. The output geometry carries `to` as its CRS.
//! - An unknown code in `from` or `to` fails the build, naming the code and the supported ones.
//! - Rejected, with the reason: a feature without a geometry; a feature with neither a CRS nor
//!   `from`; a feature whose own CRS is not supported; a coordinate that cannot be projected
//!   (a latitude beyond ±90°, a pole in Web Mercator, a non-finite value).

use geo::MapCoords;
use geo_types::Coord;
use proj4rs::Proj;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, REJECTED_PORT, Value,
};

use super::per_feature::{GeometryChange, GeometryStep, PerFeature};

/// Parameters of `reproject`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReprojectParams {
    /// EPSG code of the input coordinates; default: each feature's own CRS.
    #[serde(default)]
    pub from: Option<u32>,
    /// EPSG code to transform to (4326, 3857, 326xx or 327xx).
    pub to: u32,
}

/// The supported codes, for messages.
pub const SUPPORTED: &str = "EPSG:4326, EPSG:3857 (or 900913), EPSG:32601-32660 (UTM north) and EPSG:32701-32760 (UTM south)";

/// The `reproject` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "reproject",
    ActionKind::Processor,
    "Transforms geometries between EPSG:4326, EPSG:3857 and the WGS 84 UTM zones.",
    schema_of::<ReprojectParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("from: 4326\nto: 32632\n");

/// The input, with geometries in the target CRS.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let params: ReprojectParams = ctx.params()?;
    let mut s = ctx.input(0);
    if let GeometryShape::Present { .. } = s.geometry {
        s.geometry = GeometryShape::Present {
            crs: Some(params.to),
        };
    }
    let rejected = ctx.input(0).rejected();
    Ok(vec![s, rejected])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: ReprojectParams = ctx.params()?;
    let to = Crs::new(params.to).map_err(|m| ActionError::param("to", m))?;
    let from = params
        .from
        .map(Crs::new)
        .transpose()
        .map_err(|m| ActionError::param("from", m))?;
    Ok(PerFeature::build(Reproject { from, to }))
}

// ---------------------------------------------------------------------------------------------
// Coordinate reference systems
// ---------------------------------------------------------------------------------------------

/// A supported CRS: its code and its projection.
struct Crs {
    code: u32,
    proj: Proj,
}

impl Crs {
    /// The CRS of an EPSG code, or a message naming the supported ones.
    fn new(code: u32) -> Result<Crs, String> {
        let definition = match code {
            4326 => "+proj=longlat +datum=WGS84 +no_defs".to_string(),
            3857 | 900913 => "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +no_defs".to_string(),
            32601..=32660 => format!("+proj=utm +zone={} +datum=WGS84 +units=m +no_defs", code - 32600),
            32701..=32760 => format!("+proj=utm +zone={} +south +datum=WGS84 +units=m +no_defs", code - 32700),
            _ => return Err(format!("unsupported CRS EPSG:{code}; supported: {SUPPORTED}")),
        };
        let proj = Proj::from_proj_string(&definition)
            .map_err(|e| format!("cannot set up EPSG:{code}: {e}"))?;
        Ok(Crs { code, proj })
    }

    fn is_latlong(&self) -> bool {
        self.proj.is_latlong()
    }
}

/// Transforms one coordinate (degrees in and out for longitude/latitude systems).
fn transform(from: &Crs, to: &Crs, c: Coord<f64>) -> Result<Coord<f64>, String> {
    let fail = |why: &str| {
        format!(
            "reproject: coordinate ({}, {}) cannot be transformed from EPSG:{} to EPSG:{}: {why}",
            c.x, c.y, from.code, to.code
        )
    };
    if !(c.x.is_finite() && c.y.is_finite()) {
        return Err(fail("it is not finite"));
    }
    let input = if from.is_latlong() {
        if c.y.abs() > 90.0 {
            return Err(fail("the latitude is beyond ±90°"));
        }
        (c.x.to_radians(), c.y.to_radians())
    } else {
        (c.x, c.y)
    };
    let (x, y) = proj4rs::adaptors::transform_vertex_2d(&from.proj, &to.proj, input)
        .map_err(|e| fail(&e.to_string()))?;
    let (x, y) = if to.is_latlong() {
        (x.to_degrees(), y.to_degrees())
    } else {
        (x, y)
    };
    if x.is_finite() && y.is_finite() {
        Ok(Coord { x, y })
    } else {
        Err(fail("the result is not finite"))
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct Reproject {
    from: Option<Crs>,
    to: Crs,
}

impl Reproject {
    /// The reprojected geometry, or the reason to reject. `sources` caches the projections of
    /// features' own CRS codes for this call.
    fn reproject(&self, feature: &Feature, sources: &mut Vec<Crs>) -> Result<Geometry, String> {
        let g = feature
            .geometry()
            .ok_or_else(|| "reproject: the feature has no geometry".to_string())?;
        let from: &Crs = match (&self.from, g.crs) {
            (Some(from), _) => from,
            (None, None) => {
                return Err(
                    "reproject: the geometry has no CRS and the `from` parameter is not set"
                        .to_string(),
                );
            }
            (None, Some(code)) => match sources.iter().position(|c| c.code == code) {
                Some(i) => &sources[i],
                None => {
                    let crs =
                        Crs::new(code).map_err(|m| format!("reproject: the geometry's {m}"))?;
                    sources.push(crs);
                    &sources[sources.len() - 1]
                }
            },
        };
        let geom = if from.code == self.to.code
            || (matches!(from.code, 3857 | 900913) && matches!(self.to.code, 3857 | 900913))
        {
            g.geom.clone()
        } else {
            g.geom.try_map_coords(|c| transform(from, &self.to, c))?
        };
        Ok(Geometry {
            geom,
            crs: Some(self.to.code),
        })
    }
}

impl GeometryStep for Reproject {
    /// The projections of features' own CRS codes met in this batch.
    type Scratch = Vec<Crs>;

    fn compute(
        &self,
        feature: &Feature,
        sources: &mut Vec<Crs>,
        _: &mut Vec<Value>,
    ) -> Result<GeometryChange, String> {
        self.reproject(feature, sources).map(GeometryChange::Set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, reason, run, transform};
    use geo_types::{Geometry as G, Point, line_string, point};
    use serde_json::json;

    fn point_of(f: &Feature) -> Point<f64> {
        match &f.geometry().unwrap().geom {
            G::Point(p) => *p,
            other => panic!("expected a point, got {other:?}"),
        }
    }

    fn project(params: serde_json::Value, p: Point<f64>, crs: Option<u32>) -> Feature {
        let t = transform(&SPEC, params);
        let mut out = run(t.as_ref(), 2, vec![feature(1, p.into(), crs)]);
        assert!(
            out[1].is_empty(),
            "rejected: {}",
            out[1].first().map(reason).unwrap_or_default()
        );
        out[0].remove(0)
    }

    #[test]
    fn example_parses_and_builds() {
        transform(&SPEC, example_params(&SPEC));
    }

    #[test]
    fn wgs84_to_web_mercator() {
        let f = project(json!({"to": 3857}), point!(x: 10.0, y: 60.0), Some(4326));
        let p = point_of(&f);
        assert!((p.x() - 1_113_194.9).abs() < 0.1, "{p:?}");
        assert!((p.y() - 8_399_737.9).abs() < 0.1, "{p:?}");
        assert_eq!(f.geometry().unwrap().crs, Some(3857));
    }

    #[test]
    fn wgs84_to_utm_north_and_south() {
        let f = project(
            json!({"from": 4326, "to": 32632}),
            point!(x: 9.0, y: 60.0),
            None,
        );
        let p = point_of(&f);
        assert!((p.x() - 500_000.0).abs() < 1.0, "{p:?}");
        assert!((p.y() - 6_651_411.0).abs() < 1.0, "{p:?}");
        // Southern hemisphere: 10 000 km false northing; (21, -30) is on zone 34's meridian.
        let s = point_of(&project(
            json!({"to": 32734}),
            point!(x: 21.0, y: -30.0),
            Some(4326),
        ));
        assert!((s.x() - 500_000.0).abs() < 1.0, "{s:?}");
        assert!((s.y() - 6_681_214.6).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn round_trips_within_a_micro_degree() {
        let t_utm = transform(&SPEC, json!({"to": 32633}));
        let t_merc = transform(&SPEC, json!({"to": 3857}));
        let back = transform(&SPEC, json!({"to": 4326}));
        let line: G<f64> =
            line_string![(x: 14.2, y: 50.1), (x: 15.9, y: 48.7), (x: 12.05, y: 53.3)].into();
        for t in [&t_utm, &t_merc] {
            let there = run(t.as_ref(), 2, vec![feature(1, line.clone(), Some(4326))]);
            let home = run(back.as_ref(), 2, there[0].clone());
            let g = home[0][0].geometry().unwrap();
            assert_eq!(g.crs, Some(4326));
            let (G::LineString(a), G::LineString(b)) = (&g.geom, &line) else {
                panic!("expected linestrings");
            };
            for (p, q) in a.0.iter().zip(b.0.iter()) {
                assert!(
                    (p.x - q.x).abs() < 1e-6 && (p.y - q.y).abs() < 1e-6,
                    "{p:?} vs {q:?}"
                );
            }
        }
    }

    #[test]
    fn unknown_codes_are_parameter_errors_naming_them() {
        for (params, path) in [
            (json!({"to": 2154}), "to"),
            (json!({"from": 27700, "to": 4326}), "from"),
            (json!({"to": 32661}), "to"),
        ] {
            match build(&SPEC, params) {
                Err(ActionError::Param { path: p, message }) => {
                    assert_eq!(p, path);
                    assert!(message.contains("unsupported CRS EPSG:"), "{message}");
                    assert!(message.contains("EPSG:32601-32660"), "{message}");
                }
                _ => panic!("expected a parameter error at {path}"),
            }
        }
        assert!(matches!(
            build(&SPEC, json!({})),
            Err(ActionError::Param { .. })
        ));
    }

    #[test]
    fn bad_data_is_rejected_with_a_reason() {
        let t = transform(&SPEC, json!({"to": 3857}));
        let input = vec![
            Feature::from_pairs(1, [("name", "none".into())]),
            feature(2, point!(x: 1.0, y: 1.0).into(), None),
            feature(3, point!(x: 1.0, y: 1.0).into(), Some(2154)),
            feature(4, point!(x: 1.0, y: 91.0).into(), Some(4326)),
            feature(5, point!(x: 1.0, y: f64::NAN).into(), Some(4326)),
            feature(6, point!(x: 1.0, y: 1.0).into(), Some(4326)),
            feature(7, point!(x: 0.0, y: 90.0).into(), Some(4326)),
        ];
        let out = run(t.as_ref(), 2, input);
        assert_eq!(out[0].len(), 1);
        let reasons: Vec<String> = out[1].iter().map(reason).collect();
        assert!(reasons[0].contains("no geometry"));
        assert!(reasons[1].contains("no CRS"));
        assert!(
            reasons[2].contains("unsupported CRS EPSG:2154"),
            "{}",
            reasons[2]
        );
        assert!(reasons[3].contains("beyond ±90°"), "{}", reasons[3]);
        assert!(reasons[4].contains("not finite"), "{}", reasons[4]);
        // The pole has no Web Mercator coordinate.
        assert!(
            reasons[5].contains("(0, 90) cannot be transformed from EPSG:4326 to EPSG:3857"),
            "{}",
            reasons[5]
        );
    }
}
