//! `geometry_to_wkt`: writes each feature's geometry as WKT text into an attribute.
//!
//! ```yaml
//! - id: as_text
//!   action: geometry_to_wkt
//!   with:
//!     attribute: geom_wkt
//!     remove_geometry: true
//! ```
//!
//! - The text is plain 2D WKT (`POINT(1 2)`, `POLYGON((0 0,1 0,1 1,0 0))`); a rectangle or a
//!   triangle is written as a polygon. The CRS is not written.
//! - A feature without a geometry gets a null attribute (nothing is rejected).
//! - `remove_geometry: true` drops the geometry once written (for writers without geometry).

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Feature, Value,
};

use super::check_attribute_name;
use super::per_feature::{GeometryChange, GeometryStep, PerFeature, step_shape};

/// Parameters of `geometry_to_wkt`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeometryToWktParams {
    /// The attribute that receives the WKT text (null for a feature without a geometry).
    #[serde(default = "default_attribute")]
    pub attribute: String,
    /// Drop the geometry once written.
    #[serde(default)]
    pub remove_geometry: bool,
}

fn default_attribute() -> String {
    "wkt".to_string()
}

/// The `geometry_to_wkt` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "geometry_to_wkt",
    ActionKind::Processor,
    "Writes each feature's geometry as WKT text into an attribute.",
    schema_of::<GeometryToWktParams>,
    build,
)
.per_feature()
.shape(shape)
.example("attribute: geom_wkt\nremove_geometry: true\n");

/// The input with the WKT text set (and no geometry with `remove_geometry`).
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let params: GeometryToWktParams = ctx.params()?;
    let remove = params.remove_geometry;
    let step = GeometryToWkt {
        attribute: params.attribute,
        remove_geometry: remove,
    };
    Ok(step_shape(ctx, &step, Type::String, |g| {
        if remove { GeometryShape::Absent } else { g }
    }))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: GeometryToWktParams = ctx.params()?;
    check_attribute_name("attribute", &params.attribute)?;
    Ok(PerFeature::build(GeometryToWkt {
        attribute: params.attribute,
        remove_geometry: params.remove_geometry,
    }))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct GeometryToWkt {
    attribute: String,
    remove_geometry: bool,
}

impl GeometryStep for GeometryToWkt {
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
        values.push(
            feature
                .geometry()
                .map_or(Value::Null, |g| Value::from(crate::wkt_geometry::write(g))),
        );
        Ok(if self.remove_geometry {
            GeometryChange::Remove
        } else {
            GeometryChange::Keep
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, run, transform};
    use geo_types::{Geometry as G, Rect, coord, point};
    use serde_json::json;
    use wkt::TryFromWkt;

    #[test]
    fn example_parses_and_builds() {
        let t = transform(&SPEC, example_params(&SPEC));
        let out = run(
            t.as_ref(),
            1,
            vec![feature(1, point!(x: 1.0, y: 2.0).into(), None)],
        );
        assert!(out[0][0].geometry().is_none());
        assert_eq!(
            out[0][0].get("geom_wkt").and_then(Value::as_str),
            Some("POINT(1 2)")
        );
    }

    #[test]
    fn writes_wkt_that_parses_back_and_null_without_geometry() {
        let t = transform(&SPEC, json!({}));
        let rect: G<f64> = Rect::new(coord! {x: 0.0, y: 0.0}, coord! {x: 2.0, y: 1.5}).into();
        let input = vec![
            feature(1, rect.clone(), None),
            Feature::from_pairs(2, [("name", "none".into())]),
        ];
        let out = run(t.as_ref(), 1, input);
        let text = out[0][0].get("wkt").and_then(Value::as_str).unwrap();
        assert!(text.starts_with("POLYGON"), "{text}");
        let back = G::<f64>::try_from_wkt_str(text).unwrap();
        assert_eq!(
            back,
            G::Polygon(match rect {
                G::Rect(r) => r.to_polygon(),
                _ => unreachable!(),
            })
        );
        assert!(out[0][0].geometry().is_some());
        assert_eq!(out[0][1].get("wkt"), Some(&Value::Null));
    }

    #[test]
    fn bad_parameters_are_located() {
        assert!(matches!(
            build(&SPEC, json!({"attribute": ""})),
            Err(ActionError::Param { path, .. }) if path == "attribute"
        ));
        assert!(matches!(
            build(&SPEC, json!({"remove_geometry": "yes"})),
            Err(ActionError::Param { path, .. }) if path == "remove_geometry"
        ));
    }
}
