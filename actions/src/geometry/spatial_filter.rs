//! `spatial_filter`: keeps the candidate features that meet a spatial predicate with at least
//! one filter feature, optionally copying the matching filter's attributes (a spatial join).
//!
//! ```yaml
//! - id: shops_in_districts
//!   action: spatial_filter
//!   with:
//!     predicate: within
//!     merge_attributes: true
//!     prefix: district_
//! edges:
//!   - from: shops
//!     to: shops_in_districts.candidate
//!   - from: districts
//!     to: shops_in_districts.filter
//! ```
//!
//! Inputs: `candidate` (the features tested) and `filter` (the features tested against).
//! Outputs, in order: `passed`, `failed` and `rejected`.
//!
//! - `predicate`: `intersects` (the default: the geometries share at least one point),
//!   `contains` (the candidate contains a filter geometry) or `within` (the candidate lies
//!   within a filter geometry). Geometries are compared in their coordinates as they are.
//! - `merge_attributes: true` copies every attribute of the first matching filter feature (in
//!   filter arrival order) onto the passed candidate, each name preceded by `prefix`; a copied
//!   attribute replaces a candidate attribute of the same name.
//! - Passed and failed candidates leave in their arrival order, when both inputs are complete.
//! - Rejected, with the reason, as they arrive: candidates and filter features without a
//!   geometry or with a non-finite coordinate. When the candidates are complete, a candidate
//!   whose CRS is known and differs from a known CRS of the filter features is rejected
//!   (reproject one side first).
//!
//! # Memory and algorithm
//!
//! 1. Candidates and filter features are held until both inputs close (the executor may
//!    deliver them interleaved), their [`Feature::mem_size`] reserved from the run's budget.
//! 2. In `finish`, the filter features' bounding boxes go into an R-tree (bulk loaded).
//! 3. Each candidate, in parallel on the shared pool, looks up the filter boxes its own box
//!    meets and tests the exact predicate against them in filter order; the first that holds
//!    is its match.
//! 4. The candidates are drained in order to `passed` or `failed`, giving their bytes back.

use std::collections::BTreeSet;
use std::sync::Arc;

use geo::{BoundingRect, Contains, Intersects, Within};
use rayon::prelude::*;
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::memory::Reservation;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Emitter, Feature,
    NodeContext, NodeImpl, Processor, REJECTED_PORT, Schema,
};

use super::{Reshaper, non_finite};
use sluice_runtime::shape::{Shape, ShapeContext, Type};

/// Parameters of `spatial_filter`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpatialFilterParams {
    /// `intersects` (default), `contains` (candidate contains a filter geometry) or `within`
    /// (candidate within a filter geometry).
    #[serde(default)]
    pub predicate: Predicate,
    /// Copy the attributes of the first matching filter feature onto each passed candidate.
    #[serde(default)]
    pub merge_attributes: bool,
    /// Put before the names of merged attributes.
    #[serde(default)]
    pub prefix: String,
}

/// The spatial relation a candidate must have with a filter geometry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Predicate {
    /// The two geometries share at least one point.
    #[default]
    Intersects,
    /// The candidate contains the filter geometry.
    Contains,
    /// The candidate lies within the filter geometry.
    Within,
}

/// The input of the features tested.
pub const CANDIDATE_PORT: &str = "candidate";
/// The input of the features tested against.
pub const FILTER_PORT: &str = "filter";
/// Candidates that meet the predicate with some filter feature.
pub const PASSED_PORT: &str = "passed";
/// Candidates that meet it with none.
pub const FAILED_PORT: &str = "failed";
/// The index of [`FAILED_PORT`] in the output list.
const FAILED: usize = 1;

/// The `spatial_filter` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "spatial_filter",
    ActionKind::Processor,
    "Passes candidates that intersect, contain or lie within a filter feature (R-tree); can merge the filter's attributes.",
    schema_of::<SpatialFilterParams>,
    build,
)
.inputs(&[CANDIDATE_PORT, FILTER_PORT])
.outputs(&[PASSED_PORT, FAILED_PORT, REJECTED_PORT])
.accumulates()
.heavy_finish()
.shape(shape)
.example("predicate: within\nmerge_attributes: true\nprefix: district_\n");

/// `passed`: the candidates' attributes, then (with `merge_attributes`) the filter's, each
/// named with `prefix` and replacing a candidate attribute of that name; `failed`: the
/// candidates'; `rejected`: either input's features.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let params: SpatialFilterParams = ctx.params()?;
    let (candidates, filters) = (ctx.input(0), ctx.input(1));
    let mut passed = candidates.clone();
    if params.merge_attributes {
        if filters.open {
            passed = Shape::unknown().with_geometry(candidates.geometry);
        } else {
            for name in filters.names() {
                let ty = filters.get(name).unwrap_or(Type::Any);
                passed.set(&format!("{}{name}", params.prefix), ty);
            }
        }
    }
    Ok(vec![
        passed,
        candidates.clone(),
        candidates.rejected().merge(&filters.rejected()),
    ])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: SpatialFilterParams = ctx.params()?;
    if !params.merge_attributes && !params.prefix.is_empty() {
        return Err(ActionError::param(
            "prefix",
            "prefix names merged attributes; set merge_attributes: true or drop it",
        ));
    }
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(
        SpatialFilter {
            predicate: params.predicate,
            merge: params.merge_attributes,
            prefix: params.prefix,
            candidates: Vec::new(),
            filters: Vec::new(),
            reservation: None,
        },
    ))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// Bytes reserved per R-tree entry (box, index and node overhead).
const TREE_ENTRY_BYTES: usize = 64;
/// How often (in candidates) the drain checks for cancellation.
const CANCEL_CHECK_EVERY: usize = 4096;

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

struct SpatialFilter {
    predicate: Predicate,
    merge: bool,
    prefix: String,
    candidates: Vec<Feature>,
    filters: Vec<Feature>,
    reservation: Option<Reservation>,
}

/// Why a feature cannot be used, if it cannot.
fn unusable(feature: &Feature, role: &str) -> Option<String> {
    match feature.geometry() {
        None => Some(format!(
            "spatial_filter: the {role} feature has no geometry"
        )),
        Some(g) => non_finite(&g.geom).map(|c| {
            format!(
                "spatial_filter: the {role} feature has a non-finite coordinate ({}, {})",
                c.x, c.y
            )
        }),
    }
}

impl SpatialFilter {
    fn hold(&mut self, ctx: &NodeContext, bytes: usize) -> Result<(), ActionError> {
        self.reservation
            .get_or_insert_with(|| ctx.budget.register(&ctx.node_id))
            .grow(bytes)
    }

    fn release(&mut self, bytes: usize) {
        if let Some(r) = self.reservation.as_mut() {
            r.shrink(bytes);
        }
    }

    /// The index of the first filter feature the candidate matches, or none.
    fn first_match(&self, candidate: &Feature, tree: &RTree<Entry>) -> Option<usize> {
        let g = &candidate.geometry()?.geom;
        let rect = g.bounding_rect()?;
        let envelope =
            AABB::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]);
        let mut hits: Vec<usize> = tree
            .locate_in_envelope_intersecting(&envelope)
            .map(|e| e.data)
            .collect();
        hits.sort_unstable();
        hits.into_iter().find(|&i| {
            let Some(f) = self.filters[i].geometry() else {
                return false;
            };
            match self.predicate {
                Predicate::Intersects => g.intersects(&f.geom),
                Predicate::Contains => g.contains(&f.geom),
                Predicate::Within => g.is_within(&f.geom),
            }
        })
    }
}

impl Processor for SpatialFilter {
    fn process(
        &mut self,
        input: usize,
        batch: Batch,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        let role = if input == 0 { "candidate" } else { "filter" };
        for feature in batch {
            if let Some(reason) = unusable(&feature, role) {
                out.reject(feature, reason)?;
                continue;
            }
            let mut bytes = feature.mem_size();
            if input != 0 {
                bytes += TREE_ENTRY_BYTES;
            }
            self.hold(ctx, bytes)?;
            if input == 0 {
                self.candidates.push(feature);
            } else {
                self.filters.push(feature);
            }
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        // 2. Index the filter boxes; note the filter CRS codes.
        let entries: Vec<Entry> = self
            .filters
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let r = f.geometry()?.geom.bounding_rect()?;
                let rect = Rectangle::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]);
                Some(GeomWithData::new(rect, i))
            })
            .collect();
        let tree = RTree::bulk_load(entries);
        let filter_crs: BTreeSet<u32> = self
            .filters
            .iter()
            .filter_map(|f| f.geometry()?.crs)
            .collect();
        ctx.check_cancelled()?;

        // 3. Match the candidates in parallel.
        let this = &*self;
        let matches: Vec<Result<Option<usize>, String>> = ctx.install(|| {
            this.candidates
                .par_iter()
                .map(|c| {
                    let crs = c.geometry().and_then(|g| g.crs);
                    if let Some(code) = crs
                        && let Some(other) = filter_crs.iter().find(|&&f| f != code)
                    {
                        return Err(format!(
                            "spatial_filter: the candidate is in EPSG:{code}, filter features in EPSG:{other}; reproject one side first"
                        ));
                    }
                    Ok(this.first_match(c, &tree))
                })
                .collect()
        });
        drop(tree);

        // 4. Drain in order.
        let candidates = std::mem::take(&mut self.candidates);
        let mut merged: Vec<(Arc<Schema>, Reshaper)> = Vec::new();
        for (n, (mut candidate, matched)) in candidates.into_iter().zip(matches).enumerate() {
            if n % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            self.release(candidate.mem_size());
            match matched {
                Err(reason) => out.reject(candidate, reason)?,
                Ok(None) => out.emit_to(FAILED, candidate)?,
                Ok(Some(i)) => {
                    if self.merge {
                        let filter = &self.filters[i];
                        let k = match merged
                            .iter()
                            .position(|(s, _)| Arc::ptr_eq(s, filter.schema()))
                        {
                            Some(k) => k,
                            None => {
                                let names = filter
                                    .schema()
                                    .names()
                                    .iter()
                                    .map(|n| format!("{}{n}", self.prefix));
                                let reshaper = Reshaper::new(names, Vec::<&str>::new());
                                merged.push((filter.schema().clone(), reshaper));
                                merged.len() - 1
                            }
                        };
                        let mut values = filter.values().to_vec();
                        merged[k].1.write(&mut candidate, &mut values);
                    }
                    out.emit_to(0, candidate)?;
                }
            }
        }
        self.filters = Vec::new();
        self.reservation = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::test_util::{build, example_params, processor, reason};
    use geo_types::{Geometry as G, point, polygon};
    use serde_json::json;
    use sluice_runtime::{Geometry, Value};
    use std::sync::LazyLock;

    fn district(id: u64, name: &str, x0: f64, y0: f64, size: f64) -> Feature {
        let square: G<f64> = polygon![
            (x: x0, y: y0), (x: x0 + size, y: y0), (x: x0 + size, y: y0 + size), (x: x0, y: y0 + size)
        ]
        .into();
        static SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| Schema::new(["name", "code"]));
        Feature::new(id, SCHEMA.clone(), vec![name.into(), Value::Int(id as i64)])
            .with_geometry(Some(Geometry::new(square)))
    }

    fn shop(id: u64, x: f64, y: f64) -> Feature {
        static SCHEMA: LazyLock<Arc<Schema>> = LazyLock::new(|| Schema::new(["shop"]));
        Feature::new(id, SCHEMA.clone(), vec![Value::Int(id as i64)])
            .with_geometry(Some(Geometry::new(point!(x: x, y: y).into())))
    }

    /// Three districts (two overlapping) and ten shops.
    fn run_join(params: serde_json::Value) -> (Vec<Vec<Feature>>, NodeContext) {
        let mut p = processor(&SPEC, params);
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::for_outputs(SPEC.outputs);
        let shops: Vec<Feature> = [
            (0.5, 0.5),   // 0: A
            (1.5, 0.5),   // 1: A and B (overlap): first is A
            (2.5, 2.5),   // 2: B
            (5.0, 5.0),   // 3: none
            (10.5, 10.5), // 4: C
            (10.0, 10.0), // 5: C (corner: intersects, within fails)
            (-1.0, 0.5),  // 6: none
            (3.5, 1.0),   // 7: B
            (11.9, 11.9), // 8: C
            (4.5, 4.5),   // 9: none
        ]
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| shop(i as u64, x, y))
        .collect();
        // Interleave the inputs as the executor may.
        p.process(0, shops[..4].to_vec(), &ctx, &mut out).unwrap();
        p.process(1, vec![district(100, "A", 0.0, 0.0, 2.0)], &ctx, &mut out)
            .unwrap();
        p.process(0, shops[4..].to_vec(), &ctx, &mut out).unwrap();
        p.process(
            1,
            vec![
                district(101, "B", 1.0, 0.0, 3.0),
                district(102, "C", 10.0, 10.0, 2.0),
            ],
            &ctx,
            &mut out,
        )
        .unwrap();
        assert!(ctx.budget.reserved() > 0);
        p.finish(&ctx, &mut out).unwrap();
        (out.into_buffers(), ctx)
    }

    fn ids(features: &[Feature]) -> Vec<u64> {
        features.iter().map(Feature::id).collect()
    }

    #[test]
    fn example_parses_and_builds() {
        processor(&SPEC, example_params(&SPEC));
    }

    #[test]
    fn intersects_splits_passed_and_failed_and_returns_memory() {
        let (out, ctx) = run_join(json!({}));
        assert_eq!(ids(&out[0]), [0, 1, 2, 4, 5, 7, 8]);
        assert_eq!(ids(&out[1]), [3, 6, 9]);
        assert!(out[2].is_empty());
        assert!(out[0][0].get("name").is_none());
        assert_eq!(ctx.budget.reserved(), 0);
    }

    #[test]
    fn within_with_merged_attributes_is_a_spatial_join() {
        let (out, ctx) =
            run_join(json!({"predicate": "within", "merge_attributes": true, "prefix": "d_"}));
        assert_eq!(ids(&out[0]), [0, 1, 2, 4, 7, 8]);
        assert_eq!(ids(&out[1]), [3, 5, 6, 9]);
        let district: Vec<&str> = out[0]
            .iter()
            .map(|f| f.get("d_name").and_then(Value::as_str).unwrap())
            .collect();
        assert_eq!(district, ["A", "A", "B", "C", "B", "C"]);
        assert_eq!(out[0][2].get("d_code"), Some(&Value::Int(101)));
        assert_eq!(out[0][2].get("shop"), Some(&Value::Int(2)));
        // One output schema for every candidate joined to the same filter schema.
        assert!(Arc::ptr_eq(out[0][0].schema(), out[0][5].schema()));
        assert!(out[1][0].get("d_name").is_none());
        assert_eq!(ctx.budget.reserved(), 0);
    }

    #[test]
    fn contains_tests_the_candidate_around_the_filter() {
        let mut p = processor(&SPEC, json!({"predicate": "contains"}));
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::for_outputs(SPEC.outputs);
        let big = district(1, "big", 0.0, 0.0, 10.0);
        let small = district(2, "small", 20.0, 20.0, 1.0);
        p.process(0, vec![big, small], &ctx, &mut out).unwrap();
        p.process(1, vec![shop(9, 5.0, 5.0)], &ctx, &mut out)
            .unwrap();
        p.finish(&ctx, &mut out).unwrap();
        let out = out.into_buffers();
        assert_eq!(ids(&out[0]), [1]);
        assert_eq!(ids(&out[1]), [2]);
    }

    #[test]
    fn bad_data_is_rejected_and_bad_params_located() {
        let mut p = processor(&SPEC, json!({}));
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::for_outputs(SPEC.outputs);
        let mut tagged = shop(3, 0.5, 0.5);
        tagged.set_geometry(Some(Geometry::in_crs(
            point!(x: 0.5, y: 0.5).into(),
            Some(4326),
        )));
        let mut filter = district(100, "A", 0.0, 0.0, 2.0);
        let mut moved = filter.geometry().unwrap().clone();
        moved.crs = Some(3857);
        filter.set_geometry(Some(moved));
        let batch = vec![
            Feature::from_pairs(1, [("shop", Value::Int(1))]),
            shop(2, f64::NAN, 0.0),
            tagged,
            shop(4, 0.5, 0.5),
        ];
        p.process(0, batch, &ctx, &mut out).unwrap();
        p.process(
            1,
            vec![Feature::from_pairs(7, [("name", "x".into())]), filter],
            &ctx,
            &mut out,
        )
        .unwrap();
        p.finish(&ctx, &mut out).unwrap();
        let out = out.into_buffers();
        assert_eq!(ids(&out[0]), [4]);
        let reasons: Vec<String> = out[2].iter().map(reason).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("candidate feature has no geometry"));
        assert!(reasons[1].contains("non-finite"));
        assert!(reasons[2].contains("filter feature has no geometry"));
        assert!(reasons[3].contains("EPSG:4326, filter features in EPSG:3857"));
        assert_eq!(ctx.budget.reserved(), 0);
        assert!(matches!(
            build(&SPEC, json!({"prefix": "d_"})),
            Err(ActionError::Param { path, .. }) if path == "prefix"
        ));
        assert!(matches!(
            build(&SPEC, json!({"predicate": "touches"})),
            Err(ActionError::Param { path, .. }) if path == "predicate"
        ));
    }

    /// Candidates tested against one filter polygon with a hole, in each of its four
    /// windings: the same points pass, none in the hole.
    #[test]
    fn predicates_ignore_ring_winding_and_respect_holes() {
        use crate::geometry::test_util::windings;
        let frame = polygon!(
            exterior: [(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 4.0)],
            interiors: [[(x: 1.0, y: 1.0), (x: 3.0, y: 1.0), (x: 3.0, y: 3.0), (x: 1.0, y: 3.0)]],
        );
        // In the frame, in the hole, outside, on the hole's edge.
        let points = [(0.5, 0.5), (2.0, 2.0), (5.0, 5.0), (3.5, 2.0), (1.0, 2.0)];
        for (predicate, expected) in [("within", [0, 3]), ("intersects", [0, 3])] {
            for polygon in windings(&frame) {
                let mut p = processor(&SPEC, json!({ "predicate": predicate }));
                let ctx = NodeContext::standalone("t");
                let mut out = Emitter::for_outputs(SPEC.outputs);
                let candidates = points
                    .iter()
                    .enumerate()
                    .map(|(i, &(x, y))| shop(i as u64, x, y))
                    .collect();
                let filter = Feature::new(100, Schema::new(["name"]), vec!["f".into()])
                    .with_geometry(Some(Geometry::new(polygon.into())));
                p.process(0, candidates, &ctx, &mut out).unwrap();
                p.process(1, vec![filter], &ctx, &mut out).unwrap();
                p.finish(&ctx, &mut out).unwrap();
                let out = out.into_buffers();
                let mut passed = ids(&out[0]);
                if predicate == "intersects" {
                    // The point on the hole's edge touches the polygon.
                    assert_eq!(passed.pop(), Some(4));
                }
                assert_eq!(passed, expected, "{predicate}");
            }
        }
        // contains: the polygon around a candidate point, whatever its winding.
        for polygon in windings(&frame) {
            let mut p = processor(&SPEC, json!({"predicate": "contains"}));
            let ctx = NodeContext::standalone("t");
            let mut out = Emitter::for_outputs(SPEC.outputs);
            let candidate = Feature::new(1, Schema::new(["name"]), vec!["c".into()])
                .with_geometry(Some(Geometry::new(polygon.into())));
            p.process(0, vec![candidate], &ctx, &mut out).unwrap();
            p.process(
                1,
                vec![shop(7, 2.0, 2.0), shop(8, 0.5, 3.5)],
                &ctx,
                &mut out,
            )
            .unwrap();
            p.finish(&ctx, &mut out).unwrap();
            let out = out.into_buffers();
            assert_eq!(ids(&out[0]), [1]);
        }
    }
}
