//! `bounds`: the bounding box of each feature's geometry, as attributes or as the geometry.
//!
//! ```yaml
//! - id: extents
//!   action: bounds
//!   with:
//!     mode: attributes
//!     prefix: bbox_
//! ```
//!
//! - `mode: attributes` (the default) writes four float attributes, `<prefix>xmin`,
//!   `<prefix>ymin`, `<prefix>xmax` and `<prefix>ymax`, and keeps the geometry.
//! - `mode: geometry` replaces the geometry by the bounding rectangle, as a polygon (a
//!   degenerate one, with zero area, for a point or an axis-parallel line). The CRS is kept.
//! - A feature without a geometry, or with an empty one, goes to `rejected` with the reason.

use geo::BoundingRect;
use geo_types::Rect;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, REJECTED_PORT, Value,
};

use super::per_feature::{GeometryChange, GeometryStep, PerFeature, step_shape};
use super::type_name;

/// Parameters of `bounds`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundsParams {
    /// `attributes`: write `xmin`, `ymin`, `xmax`, `ymax`; `geometry`: replace the geometry by
    /// the bounding rectangle.
    #[serde(default)]
    pub mode: BoundsMode,
    /// Put before the four attribute names (`bbox_` gives `bbox_xmin`...). Attributes mode only.
    #[serde(default)]
    pub prefix: String,
}

/// Where the bounding box goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BoundsMode {
    /// Four float attributes; the geometry is kept.
    #[default]
    Attributes,
    /// The geometry becomes the bounding rectangle (a polygon).
    Geometry,
}

/// The `bounds` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "bounds",
    ActionKind::Processor,
    "Writes each geometry's bounding box as xmin/ymin/xmax/ymax attributes, or replaces the geometry by it.",
    schema_of::<BoundsParams>,
    build,
)
.per_feature()
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("mode: attributes\nprefix: bbox_\n");

/// Four float attributes (`mode: attributes`) or the bounding rectangle as the geometry.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let params: BoundsParams = ctx.params()?;
    let names = ["xmin", "ymin", "xmax", "ymax"].map(|n| format!("{}{n}", params.prefix));
    let step = BoundsTransform {
        mode: params.mode,
        names,
    };
    Ok(step_shape(ctx, &step, Type::Float, |g| g))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: BoundsParams = ctx.params()?;
    if params.mode == BoundsMode::Geometry && !params.prefix.is_empty() {
        return Err(ActionError::param(
            "prefix",
            "prefix names attributes, which mode: geometry does not write",
        ));
    }
    let names = ["xmin", "ymin", "xmax", "ymax"].map(|n| format!("{}{n}", params.prefix));
    Ok(PerFeature::build(BoundsTransform {
        mode: params.mode,
        names,
    }))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct BoundsTransform {
    mode: BoundsMode,
    names: [String; 4],
}

/// The bounding rectangle, or the reason to reject.
fn bounding_rect(feature: &Feature) -> Result<(Rect<f64>, Option<u32>), String> {
    let g = feature
        .geometry()
        .ok_or_else(|| "bounds: the feature has no geometry".to_string())?;
    let rect = g
        .geom
        .bounding_rect()
        .ok_or_else(|| format!("bounds: the geometry ({}) is empty", type_name(&g.geom)))?;
    Ok((rect, g.crs))
}

impl GeometryStep for BoundsTransform {
    type Scratch = ();

    fn writes(&self) -> Vec<&str> {
        match self.mode {
            BoundsMode::Attributes => self.names.iter().map(String::as_str).collect(),
            BoundsMode::Geometry => Vec::new(),
        }
    }

    fn compute(
        &self,
        feature: &Feature,
        _: &mut (),
        values: &mut Vec<Value>,
    ) -> Result<GeometryChange, String> {
        let (rect, crs) = bounding_rect(feature)?;
        Ok(match self.mode {
            BoundsMode::Attributes => {
                let (min, max) = (rect.min(), rect.max());
                values.extend([min.x, min.y, max.x, max.y].map(Value::Float));
                GeometryChange::Keep
            }
            BoundsMode::Geometry => {
                GeometryChange::Set(Geometry::in_crs(rect.to_polygon().into(), crs))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, reason, run, transform};
    use geo_types::{Geometry as G, GeometryCollection, coord, line_string};
    use serde_json::json;

    fn zigzag() -> G<f64> {
        line_string![(x: 1.0, y: 5.0), (x: 3.0, y: -2.0), (x: 4.0, y: 7.0)].into()
    }

    #[test]
    fn example_parses_and_builds() {
        let t = transform(&SPEC, example_params(&SPEC));
        let out = run(t.as_ref(), 2, vec![feature(1, zigzag(), None)]);
        assert_eq!(out[0][0].get("bbox_xmax"), Some(&Value::Float(4.0)));
    }

    #[test]
    fn attributes_mode_writes_the_four_bounds() {
        let t = transform(&SPEC, json!({}));
        let out = run(t.as_ref(), 2, vec![feature(1, zigzag(), None)]);
        let f = &out[0][0];
        let got: Vec<_> = ["name", "xmin", "ymin", "xmax", "ymax"]
            .iter()
            .map(|n| f.get(n).cloned().unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                Value::from("f1"),
                Value::Float(1.0),
                Value::Float(-2.0),
                Value::Float(4.0),
                Value::Float(7.0)
            ]
        );
        assert!(f.geometry().is_some());
    }

    #[test]
    fn geometry_mode_replaces_the_geometry_by_the_rectangle() {
        let t = transform(&SPEC, json!({"mode": "geometry"}));
        let out = run(t.as_ref(), 2, vec![feature(1, zigzag(), Some(3857))]);
        let g = out[0][0].geometry().unwrap();
        let expected: G<f64> = Rect::new(coord! {x: 1.0, y: -2.0}, coord! {x: 4.0, y: 7.0})
            .to_polygon()
            .into();
        assert_eq!(g.geom, expected);
        assert_eq!(g.crs, Some(3857));
        assert_eq!(out[0][0].schema().len(), 1);
    }

    #[test]
    fn missing_and_empty_geometries_are_rejected_and_bad_params_located() {
        let t = transform(&SPEC, json!({}));
        let empty = G::GeometryCollection(GeometryCollection::<f64>(vec![]));
        let input = vec![
            Feature::from_pairs(1, [("name", "none".into())]),
            feature(2, empty, None),
        ];
        let out = run(t.as_ref(), 2, input);
        assert!(out[0].is_empty());
        assert!(reason(&out[1][0]).contains("no geometry"));
        assert!(reason(&out[1][1]).contains("(geometrycollection) is empty"));
        assert!(matches!(
            build(&SPEC, json!({"mode": "geometry", "prefix": "b_"})),
            Err(ActionError::Param { path, .. }) if path == "prefix"
        ));
    }

    #[test]
    fn bounds_ignore_winding_and_empty_polygons_are_rejected() {
        use crate::geometry::test_util::{cell_with_hole, windings};
        let t = transform(&SPEC, json!({}));
        let mut input: Vec<Feature> = windings(&cell_with_hole())
            .into_iter()
            .map(|p| feature(1, p.into(), None))
            .collect();
        let empty: G<f64> = geo_types::Polygon::new(geo_types::LineString(vec![]), vec![]).into();
        input.push(feature(2, empty, None));
        let out = run(t.as_ref(), 2, input);
        assert_eq!(out[0].len(), 4);
        for f in &out[0] {
            let got: Vec<_> = ["xmin", "ymin", "xmax", "ymax"]
                .iter()
                .map(|n| f.get(n).and_then(Value::as_f64).unwrap())
                .collect();
            assert_eq!(got, [0.0, 0.0, 1.0, 1.0]);
        }
        assert!(
            reason(&out[1][0]).contains("(polygon) is empty"),
            "{}",
            reason(&out[1][0])
        );
    }
}
