//! `wkt_to_geometry`: parses a WKT attribute into the feature's geometry.
//!
//! ```yaml
//! - id: parse_shapes
//!   action: wkt_to_geometry
//!   with:
//!     attribute: geom_wkt
//!     remove_attribute: true
//!     crs: 4326
//! ```
//!
//! - The attribute's text (`POINT (1 2)`, `MULTIPOLYGON (((...)))`, any 2D WKT type) becomes
//!   the geometry, replacing any geometry the feature had. Z and M values are dropped.
//! - An EWKT prefix `SRID=<code>;` sets the CRS; otherwise (or when `crs` is given, which
//!   wins) the CRS is `crs`, or unknown without it.
//! - `remove_attribute: true` (the default) drops the WKT attribute from the output.
//! - `POINT EMPTY` becomes an empty multipoint (a point cannot be empty in `geo-types`); the
//!   other empty types stay empty geometries of their type.
//! - A feature whose attribute is missing, null, not a string or not valid WKT goes to
//!   `rejected`, unchanged, with `_rejection_reason` naming the attribute and the parse error.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, REJECTED_PORT, Value,
};

use super::check_attribute_name;
use super::per_feature::{GeometryChange, GeometryStep, PerFeature, step_shape};

/// Parameters of `wkt_to_geometry`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WktToGeometryParams {
    /// The attribute holding the WKT text.
    #[serde(default = "default_attribute")]
    pub attribute: String,
    /// Drop the WKT attribute once parsed.
    #[serde(default = "default_true")]
    pub remove_attribute: bool,
    /// The CRS of the coordinates (overrides an EWKT `SRID=` prefix): an EPSG code (`2154`,
    /// `"EPSG:2154"`, `"urn:ogc:def:crs:EPSG::2154"`) or a WKT naming one.
    #[serde(default, deserialize_with = "crate::crs::code")]
    #[schemars(with = "Option<crate::crs::CrsParam>")]
    pub crs: Option<u32>,
}

fn default_attribute() -> String {
    "wkt".to_string()
}

fn default_true() -> bool {
    true
}

/// The `wkt_to_geometry` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "wkt_to_geometry",
    ActionKind::Processor,
    "Parses a WKT (or EWKT) attribute into the feature's geometry.",
    schema_of::<WktToGeometryParams>,
    build,
)
.per_feature()
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("attribute: geom_wkt\nremove_attribute: true\ncrs: 4326\n");

/// The input (without the WKT attribute with `remove_attribute`) with a geometry in `crs`.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let params: WktToGeometryParams = ctx.params()?;
    ctx.attribute("attribute", &params.attribute, &ctx.input(0));
    let crs = params.crs;
    let step = WktToGeometry {
        attribute: params.attribute,
        remove_attribute: params.remove_attribute,
        crs,
    };
    Ok(step_shape(ctx, &step, Type::Any, |_| {
        GeometryShape::Present { crs }
    }))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: WktToGeometryParams = ctx.params()?;
    check_attribute_name("attribute", &params.attribute)?;
    Ok(PerFeature::build(WktToGeometry {
        attribute: params.attribute,
        remove_attribute: params.remove_attribute,
        crs: params.crs,
    }))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// Deeper nesting than this is refused before parsing (the parser recurses).
const MAX_NESTING: usize = 64;

struct WktToGeometry {
    attribute: String,
    remove_attribute: bool,
    crs: Option<u32>,
}

impl WktToGeometry {
    fn parse(&self, feature: &Feature) -> Result<Geometry, String> {
        let text = match feature.get(&self.attribute) {
            Some(Value::String(s)) => s,
            Some(Value::Null) => return Err(self.reason("is null")),
            Some(other) => {
                return Err(self.reason(&format!(
                    "holds a value of type {}, not WKT text",
                    other.type_name()
                )));
            }
            None => return Err(self.reason("is missing")),
        };
        let (srid, body) = split_srid(text).map_err(|e| self.reason(&e))?;
        if nesting(body) > MAX_NESTING {
            return Err(self.reason(&format!(
                "nests parentheses deeper than {MAX_NESTING} levels"
            )));
        }
        let mut geometry = crate::wkt_geometry::read(body)
            .map_err(|e| self.reason(&format!("is not valid WKT: {}", lower_first(&e))))?;
        geometry.crs = self.crs.or(srid);
        Ok(geometry)
    }

    fn reason(&self, what: &str) -> String {
        format!("wkt_to_geometry: attribute \"{}\" {what}", self.attribute)
    }
}

/// Splits an EWKT `SRID=<code>;` prefix off.
fn split_srid(text: &str) -> Result<(Option<u32>, &str), String> {
    let trimmed = text.trim_start();
    let Some(head) = trimmed.get(..5) else {
        return Ok((None, text));
    };
    if !head.eq_ignore_ascii_case("srid=") {
        return Ok((None, text));
    }
    let rest = &trimmed[5..];
    let Some((code, body)) = rest.split_once(';') else {
        return Err("has an SRID= prefix without a `;`".to_string());
    };
    let code: u32 = code
        .trim()
        .parse()
        .map_err(|_| format!("has an invalid SRID \"{}\"", code.trim()))?;
    Ok((Some(code), body))
}

/// The deepest parenthesis nesting of a text.
fn nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The message with its first letter in lowercase (the parser capitalises its messages).
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl GeometryStep for WktToGeometry {
    type Scratch = ();

    fn removes(&self) -> Vec<&str> {
        if self.remove_attribute {
            vec![&self.attribute]
        } else {
            Vec::new()
        }
    }

    fn compute(
        &self,
        feature: &Feature,
        _: &mut (),
        _: &mut Vec<Value>,
    ) -> Result<GeometryChange, String> {
        self.parse(feature).map(GeometryChange::Set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, reason, run, transform};
    use geo_types::Geometry as G;
    use geo_types::{point, polygon};
    use serde_json::json;
    use sluice_runtime::Schema;
    use std::sync::Arc;

    fn rows(texts: &[Value]) -> Vec<Feature> {
        let schema = Schema::new(["id", "wkt"]);
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Feature::new(
                    i as u64,
                    schema.clone(),
                    vec![Value::Int(i as i64), t.clone()],
                )
            })
            .collect()
    }

    #[test]
    fn example_parses_and_builds() {
        let t = transform(&SPEC, example_params(&SPEC));
        let f = Feature::from_pairs(1, [("geom_wkt", "POINT (1 2)".into())]);
        let out = run(t.as_ref(), 2, vec![f]);
        assert_eq!(out[0][0].geometry().unwrap().crs, Some(4326));
        assert!(out[0][0].get("geom_wkt").is_none());
    }

    #[test]
    fn parses_wkt_and_ewkt_and_drops_the_attribute() {
        let t = transform(&SPEC, json!({}));
        let input = rows(&[
            "POINT (1 2)".into(),
            "SRID=3857;POLYGON ((0 0, 1 0, 1 1, 0 0))".into(),
        ]);
        let out = run(t.as_ref(), 2, input);
        assert_eq!(out[1].len(), 0);
        let g0 = out[0][0].geometry().unwrap();
        assert_eq!(g0.geom, G::from(point!(x: 1.0, y: 2.0)));
        assert_eq!(g0.crs, None);
        let g1 = out[0][1].geometry().unwrap();
        let tri: G<f64> = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0)].into();
        assert_eq!(g1.geom, tri);
        assert_eq!(g1.crs, Some(3857));
        let names: Vec<&str> = out[0][0]
            .schema()
            .names()
            .iter()
            .map(|n| n.as_ref())
            .collect();
        assert_eq!(names, ["id"]);
        assert!(Arc::ptr_eq(out[0][0].schema(), out[0][1].schema()));
    }

    #[test]
    fn keeps_the_attribute_and_crs_param_wins() {
        let t = transform(&SPEC, json!({"remove_attribute": false, "crs": 4326}));
        let out = run(t.as_ref(), 2, rows(&["SRID=3857;POINT (1 2)".into()]));
        assert_eq!(out[0][0].geometry().unwrap().crs, Some(4326));
        assert!(out[0][0].get("wkt").is_some());
    }

    #[test]
    fn bad_wkt_is_rejected_with_a_reason() {
        let t = transform(&SPEC, json!({}));
        let deep = format!("GEOMETRYCOLLECTION {}", "(".repeat(10_000));
        let input = rows(&[
            "POINT (1".into(),
            "CIRCLE (1 2)".into(),
            Value::Null,
            Value::Int(3),
            "SRID=x;POINT (1 2)".into(),
            deep.into(),
            "POINT EMPTY".into(),
        ]);
        let out = run(t.as_ref(), 2, input);
        assert_eq!(out[0].len(), 1);
        assert_eq!(
            out[0][0].geometry().unwrap().geom,
            G::MultiPoint(geo_types::MultiPoint(vec![]))
        );
        assert_eq!(out[1].len(), 6);
        let reasons: Vec<String> = out[1].iter().map(reason).collect();
        assert!(
            reasons[0].starts_with("wkt_to_geometry: attribute \"wkt\" is not valid WKT: "),
            "{}",
            reasons[0]
        );
        assert!(reasons[1].contains("is not valid WKT"), "{}", reasons[1]);
        assert!(reasons[2].ends_with("is null"));
        assert!(reasons[3].contains("of type int"));
        assert!(reasons[4].contains("invalid SRID \"x\""));
        assert!(reasons[5].contains("deeper than 64"));
        // Rejected features keep their attribute.
        assert!(out[1][0].get("wkt").is_some());
        let missing = run(
            t.as_ref(),
            2,
            vec![Feature::from_pairs(1, [("other", "x".into())])],
        );
        assert!(reason(&missing[1][0]).ends_with("is missing"));
    }

    #[test]
    fn bad_parameters_are_located() {
        // "EPSG:4326" is a CRS as users write it; an unknown code is located.
        assert!(build(&SPEC, json!({"crs": "EPSG:4326"})).is_ok());
        assert!(matches!(
            build(&SPEC, json!({"crs": "EPSG:99999"})),
            Err(ActionError::Param { path, message }) if path == "crs" && message.contains("unknown CRS EPSG:99999")
        ));
        assert!(matches!(
            build(&SPEC, json!({"attribute": ""})),
            Err(ActionError::Param { path, .. }) if path == "attribute"
        ));
    }
}
