//! `convex_hull`: the smallest convex shape around each feature's geometry, or around every
//! geometry of a group.
//!
//! ```yaml
//! - id: territories
//!   action: convex_hull
//!   with:
//!     group_by: [species]
//! ```
//!
//! - Without `group_by`, each feature leaves at once with its geometry replaced by its hull.
//! - With `group_by`, one feature per distinct combination of the listed attributes leaves
//!   when the input is complete, in the order the groups were first seen. It has the group
//!   attributes only, the id and CRS of the group's first feature, and the hull of every
//!   coordinate of the group. Values group as [`Value::total_cmp`] compares them (so `1` and
//!   `1.0` are one group); a missing attribute counts as null.
//! - The hull is a polygon; when all its points are collinear it is a linestring between the
//!   two extremes, and when they coincide a point.
//! - Rejected, with the reason: a feature without a geometry, with an empty one, or with a
//!   non-finite coordinate; with `group_by`, a feature whose CRS differs from its group's.
//!
//! # Memory
//!
//! Grouping holds coordinates, not features (16 bytes each), reserved from the run's budget.
//! A group whose buffer doubles is reduced to its current hull (the hull of a hull plus new
//! points is the hull of all), so a group holds about twice its hull's vertices at most.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use geo::{ConvexHull, CoordsIter};
use geo_types::{Coord, Geometry as G, LineString, MultiPoint, Point};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::memory::Reservation;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, DEFAULT_PORT, Emitter,
    Feature, Geometry, NodeContext, NodeImpl, Processor, REJECTED_PORT, Schema, Value,
};

use super::{non_finite, type_name};
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};

/// Parameters of `convex_hull`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvexHullParams {
    /// Attributes whose values form the groups; absent or empty: one hull per feature.
    #[serde(default)]
    pub group_by: Vec<String>,
}

/// The `convex_hull` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "convex_hull",
    ActionKind::Processor,
    "Replaces each geometry by its convex hull, or emits one hull per group of features.",
    schema_of::<ConvexHullParams>,
    build,
)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.accumulates()
.shape(shape)
.example("group_by: [species]\n");

/// Without `group_by`: the input's attributes, each geometry replaced. With it: the group
/// attributes only, typed as the input has them, and the hull in the input's CRS.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let params: ConvexHullParams = ctx.params()?;
    let input = ctx.input(0);
    if params.group_by.is_empty() {
        return Ok(ctx.pass(input));
    }
    let attributes: Vec<(String, Type)> = params
        .group_by
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let ty = ctx
                .attribute(&format!("group_by[{i}]"), name, &input)
                .unwrap_or(Type::Any);
            (name.clone(), ty)
        })
        .collect();
    let geometry = match input.geometry {
        GeometryShape::Present { crs } => GeometryShape::Present { crs },
        _ => GeometryShape::Unknown,
    };
    Ok(vec![
        Shape::closed(attributes).with_geometry(geometry),
        input.rejected(),
    ])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: ConvexHullParams = ctx.params()?;
    for (i, name) in params.group_by.iter().enumerate() {
        if name.is_empty() {
            return Err(ActionError::param(
                format!("group_by[{i}]"),
                "the attribute name is empty",
            ));
        }
        if params.group_by[..i].contains(name) {
            return Err(ActionError::param(
                format!("group_by[{i}]"),
                format!("attribute \"{name}\" is listed twice"),
            ));
        }
    }
    let schema = Schema::new(params.group_by.iter().map(String::as_str));
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Hulls {
        group_by: params.group_by,
        schema,
        groups: Vec::new(),
        index: BTreeMap::new(),
        reservation: None,
    }))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// Bytes reserved per held coordinate.
const POINT_BYTES: usize = std::mem::size_of::<Point<f64>>();
/// A group's buffer is reduced to its hull when it reaches this many points, at least.
const MIN_COMPACT_AT: usize = 1024;
/// How often (in groups) the drain checks for cancellation.
const CANCEL_CHECK_EVERY: usize = 1024;

struct Hulls {
    group_by: Vec<String>,
    /// The output schema of group features: the `group_by` names.
    schema: Arc<Schema>,
    groups: Vec<Group>,
    index: BTreeMap<Key, usize>,
    reservation: Option<Reservation>,
}

struct Group {
    key: Vec<Value>,
    id: u64,
    crs: Option<u32>,
    points: Vec<Point<f64>>,
    compact_at: usize,
}

/// A group key ordered with [`Value::total_cmp`].
struct Key(Vec<Value>);

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            let o = a.total_cmp(b);
            if o != Ordering::Equal {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Key {}

/// The geometry's coordinates, or the reason to reject the feature.
fn checked(feature: &Feature) -> Result<&Geometry, String> {
    let g = feature
        .geometry()
        .ok_or_else(|| "convex_hull: the feature has no geometry".to_string())?;
    if let Some(c) = non_finite(&g.geom) {
        return Err(format!(
            "convex_hull: coordinate ({}, {}) is not finite",
            c.x, c.y
        ));
    }
    if g.geom.coords_count() == 0 {
        return Err(format!(
            "convex_hull: the geometry ({}) is empty",
            type_name(&g.geom)
        ));
    }
    Ok(g)
}

/// The hull of a non-empty set of points as the simplest geometry: polygon, line or point.
fn hull_geometry(points: Vec<Point<f64>>) -> G<f64> {
    let ring = MultiPoint(points).convex_hull().into_inner().0;
    let mut distinct: Vec<Coord<f64>> = ring.0;
    distinct.dedup();
    if distinct.len() > 1 && distinct.first() == distinct.last() {
        distinct.pop();
    }
    match distinct.len() {
        0 => G::MultiPoint(MultiPoint(vec![])),
        1 => G::Point(Point(distinct[0])),
        2 => G::LineString(LineString(distinct)),
        _ => {
            distinct.push(distinct[0]);
            G::Polygon(geo_types::Polygon::new(LineString(distinct), vec![]))
        }
    }
}

impl Hulls {
    fn grow(&mut self, ctx: &NodeContext, bytes: usize) -> Result<(), ActionError> {
        self.reservation
            .get_or_insert_with(|| ctx.budget.register(&ctx.node_id))
            .grow(bytes)
    }

    fn shrink(&mut self, bytes: usize) {
        if let Some(r) = self.reservation.as_mut() {
            r.shrink(bytes);
        }
    }

    /// Adds a feature's coordinates to its group, or returns the reason to reject it.
    fn add(
        &mut self,
        feature: &Feature,
        ctx: &NodeContext,
    ) -> Result<Result<(), String>, ActionError> {
        let g = match checked(feature) {
            Ok(g) => g,
            Err(reason) => return Ok(Err(reason)),
        };
        let key: Vec<Value> = self
            .group_by
            .iter()
            .map(|n| feature.get(n).cloned().unwrap_or_default())
            .collect();
        let n = g.geom.coords_count();
        let key = Key(key);
        let i = match self.index.get(&key) {
            Some(&i) => {
                if self.groups[i].crs != g.crs {
                    let show =
                        |c: Option<u32>| c.map_or("no CRS".to_string(), |c| format!("EPSG:{c}"));
                    return Ok(Err(format!(
                        "convex_hull: the geometry is in {}, its group's first geometry in {}",
                        show(g.crs),
                        show(self.groups[i].crs)
                    )));
                }
                i
            }
            None => {
                let bytes: usize = key.0.iter().map(|v| 24 + v.heap_size()).sum::<usize>() * 2;
                self.grow(ctx, bytes + std::mem::size_of::<Group>())?;
                let i = self.groups.len();
                self.groups.push(Group {
                    key: key.0.clone(),
                    id: feature.id(),
                    crs: g.crs,
                    points: Vec::new(),
                    compact_at: MIN_COMPACT_AT,
                });
                self.index.insert(key, i);
                i
            }
        };
        self.grow(ctx, n * POINT_BYTES)?;
        let group = &mut self.groups[i];
        group.points.extend(g.geom.coords_iter().map(Point));
        if group.points.len() >= group.compact_at {
            let before = group.points.len();
            let hull = MultiPoint(std::mem::take(&mut group.points)).convex_hull();
            group.points = hull.exterior().0.iter().map(|c| Point(*c)).collect();
            group.compact_at = (group.points.len() * 2).max(MIN_COMPACT_AT);
            let freed = before.saturating_sub(group.points.len()) * POINT_BYTES;
            self.shrink(freed);
        }
        Ok(Ok(()))
    }
}

impl Processor for Hulls {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        for mut feature in batch {
            if self.group_by.is_empty() {
                let hull = checked(&feature).map(|g| {
                    Geometry::in_crs(
                        hull_geometry(g.geom.coords_iter().map(Point).collect()),
                        g.crs,
                    )
                });
                match hull {
                    Ok(g) => {
                        feature.set_geometry(Some(g));
                        out.emit(feature)?;
                    }
                    Err(reason) => out.reject(feature, reason)?,
                }
            } else if let Err(reason) = self.add(&feature, ctx)? {
                out.reject(feature, reason)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        self.index.clear();
        let groups = std::mem::take(&mut self.groups);
        for (n, group) in groups.into_iter().enumerate() {
            if n % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            let held = group.points.len() * POINT_BYTES;
            let feature = Feature::new(group.id, self.schema.clone(), group.key).with_geometry(
                Some(Geometry::in_crs(hull_geometry(group.points), group.crs)),
            );
            self.shrink(held);
            out.emit(feature)?;
        }
        self.reservation = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, feature, processor, reason};
    use geo::Area;
    use geo_types::{line_string, point, polygon};
    use serde_json::json;

    fn animal(id: u64, species: &str, x: f64, y: f64) -> Feature {
        Feature::from_pairs(
            id,
            [("species", species.into()), ("n", Value::Int(id as i64))],
        )
        .with_geometry(Some(Geometry::in_crs(
            point!(x: x, y: y).into(),
            Some(32632),
        )))
    }

    #[test]
    fn example_parses_and_builds() {
        processor(&SPEC, example_params(&SPEC));
    }

    #[test]
    fn one_hull_per_group_in_first_seen_order_and_memory_returned() {
        let mut p = processor(&SPEC, json!({"group_by": ["species"]}));
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::for_outputs(SPEC.outputs);
        let batch = vec![
            animal(1, "owl", 0.0, 0.0),
            animal(2, "fox", 10.0, 10.0),
            animal(3, "owl", 4.0, 0.0),
            animal(4, "owl", 4.0, 3.0),
            animal(5, "owl", 3.0, 1.0), // inside
            animal(6, "fox", 12.0, 10.0),
            animal(7, "bat", 5.0, 5.0),
        ];
        p.process(0, batch, &ctx, &mut out).unwrap();
        assert!(ctx.budget.reserved() > 0);
        assert!(out.take_buffers().iter().all(|b| b.is_empty()));
        p.finish(&ctx, &mut out).unwrap();
        assert_eq!(ctx.budget.reserved(), 0);
        let out = out.into_buffers();
        let species: Vec<&str> = out[0]
            .iter()
            .map(|f| f.get("species").and_then(Value::as_str).unwrap())
            .collect();
        assert_eq!(species, ["owl", "fox", "bat"]);
        assert_eq!(
            out[0].iter().map(Feature::id).collect::<Vec<_>>(),
            [1, 2, 7]
        );
        assert!(out[0][0].get("n").is_none());
        let owl = out[0][0].geometry().unwrap();
        assert_eq!(owl.crs, Some(32632));
        assert!(matches!(owl.geom, G::Polygon(_)));
        assert_eq!(owl.geom.unsigned_area(), 6.0);
        let fox = &out[0][1].geometry().unwrap().geom;
        let a = line_string![(x: 10.0, y: 10.0), (x: 12.0, y: 10.0)];
        let b = line_string![(x: 12.0, y: 10.0), (x: 10.0, y: 10.0)];
        assert!(
            *fox == G::LineString(a) || *fox == G::LineString(b),
            "{fox:?}"
        );
        assert_eq!(
            out[0][2].geometry().unwrap().geom,
            G::Point(point!(x: 5.0, y: 5.0))
        );
    }

    #[test]
    fn large_groups_are_compacted_without_changing_the_hull() {
        let mut p = processor(&SPEC, json!({"group_by": ["species"]}));
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::for_outputs(SPEC.outputs);
        // 5000 points on a 50 x 100 grid: the hull is the rectangle (0,0)-(49,99).
        let batch: Vec<Feature> = (0..5000u64)
            .map(|i| animal(i, "ant", (i % 50) as f64, (i / 50) as f64))
            .collect();
        p.process(0, batch, &ctx, &mut out).unwrap();
        assert!(ctx.budget.reserved() < 5000 * POINT_BYTES);
        p.finish(&ctx, &mut out).unwrap();
        let out = out.into_buffers();
        assert_eq!(out[0].len(), 1);
        assert_eq!(
            out[0][0].geometry().unwrap().geom.unsigned_area(),
            49.0 * 99.0
        );
        assert_eq!(ctx.budget.reserved(), 0);
    }

    #[test]
    fn per_feature_hulls_and_bad_data() {
        let mut p = processor(&SPEC, json!({}));
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::for_outputs(SPEC.outputs);
        let l: G<f64> = polygon![
            (x: 0.0, y: 0.0), (x: 2.0, y: 0.0), (x: 2.0, y: 1.0), (x: 1.0, y: 1.0),
            (x: 1.0, y: 2.0), (x: 0.0, y: 2.0)
        ]
        .into();
        let nan: G<f64> = point!(x: f64::NAN, y: 0.0).into();
        let batch = vec![
            feature(1, l, None),
            Feature::from_pairs(2, [("name", "none".into())]),
            feature(3, nan, None),
            feature(4, G::MultiPoint(MultiPoint(vec![])), None),
        ];
        p.process(0, batch, &ctx, &mut out).unwrap();
        p.finish(&ctx, &mut out).unwrap();
        let out = out.into_buffers();
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[0][0].geometry().unwrap().geom.unsigned_area(), 3.5);
        assert_eq!(out[0][0].get("name").and_then(Value::as_str), Some("f1"));
        let reasons: Vec<String> = out[1].iter().map(reason).collect();
        assert!(reasons[0].contains("no geometry"));
        assert!(reasons[1].contains("not finite"));
        assert!(reasons[2].contains("(multipoint) is empty"));
    }

    #[test]
    fn crs_mismatch_in_a_group_is_rejected_and_bad_params_located() {
        let mut p = processor(&SPEC, json!({"group_by": ["species"]}));
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::for_outputs(SPEC.outputs);
        let mut other = animal(2, "owl", 1.0, 1.0);
        other.set_geometry(Some(Geometry::in_crs(
            point!(x: 1.0, y: 1.0).into(),
            Some(4326),
        )));
        p.process(0, vec![animal(1, "owl", 0.0, 0.0), other], &ctx, &mut out)
            .unwrap();
        p.finish(&ctx, &mut out).unwrap();
        let out = out.into_buffers();
        assert_eq!(out[0].len(), 1);
        assert!(reason(&out[1][0]).contains("EPSG:4326, its group's first geometry in EPSG:32632"));
        assert!(matches!(
            build(&SPEC, json!({"group_by": ["a", "a"]})),
            Err(ActionError::Param { path, .. }) if path == "group_by[1]"
        ));
    }

    #[test]
    fn hulls_ignore_ring_winding() {
        use crate::geometry::test_util::windings;
        use geo::Winding;
        // An L with a hole: the hull is the L's outline less its notch.
        let l_shape = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 1.0), (x: 1.0, y: 1.0),
                (x: 1.0, y: 4.0), (x: 0.0, y: 4.0)],
            interiors: [[(x: 0.2, y: 0.2), (x: 0.8, y: 0.2), (x: 0.8, y: 0.8)]],
        );
        let mut hulls = Vec::new();
        for polygon in windings(&l_shape) {
            let mut p = processor(&SPEC, json!({}));
            let ctx = NodeContext::standalone("t");
            let mut out = Emitter::for_outputs(SPEC.outputs);
            let f = Feature::from_pairs(1, [("n", Value::Int(1))])
                .with_geometry(Some(Geometry::new(polygon.into())));
            p.process(0, vec![f], &ctx, &mut out).unwrap();
            p.finish(&ctx, &mut out).unwrap();
            let out = out.into_buffers();
            let G::Polygon(hull) = out[0][0].geometry().unwrap().geom.clone() else {
                panic!("not a polygon");
            };
            assert!(hull.exterior().is_ccw());
            assert_eq!(hull.unsigned_area(), 4.0 * 4.0 - 3.0 * 3.0 / 2.0);
            let mut vertices = hull.exterior().0.clone();
            vertices.pop();
            vertices.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
            hulls.push(vertices);
        }
        assert!(hulls.windows(2).all(|w| w[0] == w[1]), "{hulls:?}");
        assert_eq!(hulls[0].len(), 5);
    }
}
