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
//! - `from` and `to` take a CRS as users write it: an EPSG code (`4326`, `"4326"`,
//!   `"EPSG:4326"`, `"urn:ogc:def:crs:EPSG::4326"`,
//!   `"http://www.opengis.net/def/crs/EPSG/0/4326"`; `"OGC:CRS84"` is 4326 as sluice keeps
//!   longitude first), a WKT that names its EPSG code (`AUTHORITY["EPSG","2154"]` or
//!   `ID["EPSG",2154]`, the outermost one), or a PROJ string (`+proj=utm +zone=32
//!   +datum=WGS84`). Every EPSG code with a PROJ definition is known (from the
//!   `crs-definitions` tables: 4326, 3857 and its old alias 900913, the UTM zones, 2154, the
//!   Japanese plane rectangular systems 6669-6687, 27700, ...); datum shifts given as
//!   `+towgs84` parameters are applied, grid shifts (`+nadgrids` files) are not available and
//!   such a code is refused. The projections run in pure Rust (`proj4rs`); no PROJ install
//!   needed.
//! - `from` is the CRS the coordinates are in. When given it is used for every feature, whatever
//!   CRS the feature carries (for untagged or mis-tagged data); when absent, each feature's own
//!   CRS is used. The output geometry carries `to` as its CRS (no code when `to` is a PROJ
//!   string).
//! - An unknown or unusable CRS in `from` or `to` fails the build, naming it.
//! - Rejected, with the reason: a feature without a geometry; a feature with neither a CRS nor
//!   `from`; a feature whose own CRS is not known; a coordinate that cannot be projected
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
use crate::crs::{CrsDefinition, CrsParam, epsg};

/// Parameters of `reproject`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReprojectParams {
    /// The CRS of the input coordinates; default: each feature's own CRS.
    #[serde(default)]
    pub from: Option<CrsParam>,
    /// The CRS to transform to.
    pub to: CrsParam,
}

/// The `reproject` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "reproject",
    ActionKind::Processor,
    "Transforms geometries from one coordinate reference system to another (any EPSG code, a WKT with its code, or a PROJ string).",
    schema_of::<ReprojectParams>,
    build,
)
.per_feature()
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("from: 4326\nto: \"EPSG:32632\"\n");

/// The input, with geometries in the target CRS.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let params: ReprojectParams = ctx.params()?;
    let mut s = ctx.input(0);
    let to = params
        .to
        .resolve()
        .map_err(|m| ActionError::param("to", m))?;
    if let GeometryShape::Present { .. } = s.geometry {
        s.geometry = GeometryShape::Present { crs: to.code };
    }
    let rejected = ctx.input(0).rejected();
    Ok(vec![s, rejected])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: ReprojectParams = ctx.params()?;
    let crs = |p: &CrsParam| p.resolve().and_then(|d| Crs::new(&d));
    let to = crs(&params.to).map_err(|m| ActionError::param("to", m))?;
    let from = params
        .from
        .as_ref()
        .map(crs)
        .transpose()
        .map_err(|m| ActionError::param("from", m))?;
    Ok(PerFeature::build(Reproject { from, to }))
}

// ---------------------------------------------------------------------------------------------
// Coordinate reference systems
// ---------------------------------------------------------------------------------------------

/// A CRS ready to project with: its code (if it has one), a name for messages, its projection.
struct Crs {
    code: Option<u32>,
    name: String,
    proj: Proj,
}

impl Crs {
    /// Sets up the projection of `def`, or says why it cannot be.
    fn new(def: &CrsDefinition) -> Result<Crs, String> {
        let name = match def.code {
            Some(code) => format!("EPSG:{code}"),
            None => format!("\"{}\"", def.proj),
        };
        if def.proj.contains("+nadgrids=") && !def.proj.contains("+nadgrids=@null") {
            return Err(format!(
                "{name} needs a datum grid file ({}), which sluice does not carry",
                def.proj
            ));
        }
        let proj = Proj::from_proj_string(&def.proj)
            .map_err(|e| format!("cannot set up {name} ({}): {e}", def.proj))?;
        Ok(Crs {
            code: def.code,
            name,
            proj,
        })
    }

    /// The CRS of an EPSG code a feature carries.
    fn of_code(code: u32) -> Result<Crs, String> {
        epsg(code).and_then(|d| Crs::new(&d))
    }

    fn is_latlong(&self) -> bool {
        self.proj.is_latlong()
    }
}

/// Transforms one coordinate (degrees in and out for longitude/latitude systems).
fn transform(from: &Crs, to: &Crs, c: Coord<f64>) -> Result<Coord<f64>, String> {
    let fail = |why: &str| {
        format!(
            "reproject: coordinate ({}, {}) cannot be transformed from {} to {}: {why}",
            c.x, c.y, from.name, to.name
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
            (None, Some(code)) => match sources.iter().position(|c| c.code == Some(code)) {
                Some(i) => &sources[i],
                None => {
                    let crs =
                        Crs::of_code(code).map_err(|m| format!("reproject: the geometry's {m}"))?;
                    sources.push(crs);
                    &sources[sources.len() - 1]
                }
            },
        };
        let geom = if from.code.is_some() && from.code == self.to.code {
            g.geom.clone()
        } else {
            g.geom.try_map_coords(|c| transform(from, &self.to, c))?
        };
        // Z and M ride along unchanged: the projections here are horizontal.
        let mut out = g.with_shape(geom);
        out.crs = self.to.code;
        Ok(out)
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
    fn unknown_or_unusable_crs_are_parameter_errors_naming_them() {
        for (params, path, says) in [
            (json!({"to": 99999}), "to", "unknown CRS EPSG:99999"),
            (
                json!({"from": "EPSG:123456", "to": 4326}),
                "from",
                "unknown CRS EPSG:123456",
            ),
            (json!({"to": "Lambert"}), "to", "\"Lambert\" names no CRS"),
            (
                json!({"to": "GEOGCS[\"x\",DATUM[\"y\"]]"}),
                "to",
                "names no CRS",
            ),
            (json!({"to": "+proj=nonsense"}), "to", "cannot set up"),
        ] {
            match build(&SPEC, params.clone()) {
                Err(ActionError::Param { path: p, message }) => {
                    assert_eq!(p, path, "{params}");
                    assert!(message.contains(says), "{params}: {message}");
                }
                _ => panic!("expected a parameter error at {path} for {params}"),
            }
        }
        assert!(matches!(
            build(&SPEC, json!({})),
            Err(ActionError::Param { .. })
        ));
    }

    #[test]
    fn a_crs_is_taken_as_users_write_it() {
        let wkt = r#"PROJCS["RGF93 v1 / Lambert-93",GEOGCS["RGF93 v1",AUTHORITY["EPSG","4171"]],PROJECTION["Lambert_Conformal_Conic_2SP"],AUTHORITY["EPSG","2154"]]"#;
        let wkt2 = r#"PROJCRS["JGD2011 / Japan Plane Rectangular CS IX",BASEGEOGCRS["JGD2011",ID["EPSG",6668]],ID["EPSG",6677]]"#;
        for (param, code) in [
            (json!(4326), 4326),
            (json!("4326"), 4326),
            (json!("EPSG:3857"), 3857),
            (json!("epsg:2154"), 2154),
            (json!("urn:ogc:def:crs:EPSG::6677"), 6677),
            (json!("urn:ogc:def:crs:EPSG:9.8.15:27700"), 27700),
            (json!("http://www.opengis.net/def/crs/EPSG/0/3035"), 3035),
            (json!("OGC:CRS84"), 4326),
            (json!(900913), 3857),
            (json!(wkt), 2154),
            (json!(wkt2), 6677),
        ] {
            let p: CrsParam = serde_json::from_value(param.clone()).unwrap();
            assert_eq!(p.resolve().map(|d| d.code), Ok(Some(code)), "{param}");
        }
        let proj: CrsParam =
            serde_json::from_value(json!("+proj=utm +zone=32 +datum=WGS84")).unwrap();
        assert_eq!(proj.resolve().unwrap().code, None);
    }

    #[test]
    fn national_grids_agree_with_pyproj() {
        // pyproj 3.7 (PROJ), always_xy, from EPSG:4326; the same points in each system.
        for (to, (lon, lat), (x, y), tolerance) in [
            (
                json!("EPSG:2154"),
                (2.35, 48.85),
                (652_301.564_830_528, 6_861_302.725_899_576),
                0.01,
            ),
            (
                json!(6677),
                (139.76, 35.68),
                (-6_637.949_198_869, -35_499.904_013_956),
                0.01,
            ),
            (json!(3035), (10.0, 52.0), (4_321_000.0, 3_210_000.0), 0.01),
            // OSGB36 through a seven-parameter shift (PROJ's default without its grid file).
            (
                json!(27700),
                (-0.1276, 51.5072),
                (530_043.194_981_407, 180_358.208_620_003),
                5.0,
            ),
        ] {
            let f = project(
                json!({"to": to.clone()}),
                point!(x: lon, y: lat),
                Some(4326),
            );
            let p = point_of(&f);
            assert!(
                (p.x() - x).abs() < tolerance && (p.y() - y).abs() < tolerance,
                "{to}: {p:?} vs ({x}, {y})"
            );
        }
        // And back, with the code a reader would tag.
        let back = project(
            json!({"to": 4326}),
            point!(x: 652_301.564_830_528, y: 6_861_302.725_899_576),
            Some(2154),
        );
        let p = point_of(&back);
        assert!(
            (p.x() - 2.35).abs() < 1e-8 && (p.y() - 48.85).abs() < 1e-8,
            "{p:?}"
        );
    }

    #[test]
    fn a_proj_string_target_leaves_the_geometry_without_a_code() {
        let f = project(
            json!({"to": "+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs"}),
            point!(x: 9.0, y: 60.0),
            Some(4326),
        );
        assert!((point_of(&f).x() - 500_000.0).abs() < 1.0);
        assert_eq!(f.geometry().unwrap().crs, None);
    }

    #[test]
    fn bad_data_is_rejected_with_a_reason() {
        let t = transform(&SPEC, json!({"to": 3857}));
        let input = vec![
            Feature::from_pairs(1, [("name", "none".into())]),
            feature(2, point!(x: 1.0, y: 1.0).into(), None),
            feature(3, point!(x: 1.0, y: 1.0).into(), Some(99999)),
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
            reasons[2].contains("unknown CRS EPSG:99999"),
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
