//! The one transform body of the per-feature geometry actions (`area`, `length`, `bounds`,
//! `centroid`, `buffer`, `simplify`, `reproject`, `wkt_to_geometry`, `geometry_to_wkt`).
//!
//! Each of those reads one feature, computes something from its geometry, and either writes
//! the result (attributes, the geometry, or both) or rejects the feature with a reason. An
//! action says only what it computes, as a [`GeometryStep`]; [`PerFeature`] does the rest
//! for every batch: it computes the output schema once per input schema ([`Reshaper`]),
//! writes the attributes and the geometry, and sends a rejected feature to the `rejected`
//! port with its `_rejection_reason` ([`Emitter::reject`]).

use std::sync::Arc;

use sluice_runtime::{
    ActionError, BuiltAction, Emitter, Feature, Geometry, NodeImpl, Transform, Value,
};

use super::Reshaper;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};

/// The output shapes of a per-feature step: what [`Reshaper`] does to a schema (written
/// attributes, of type `ty`, set in place or appended; removed ones dropped) and the
/// geometry `geometry` gives; `rejected` carries the input with the reason.
pub(crate) fn step_shape<S: GeometryStep>(
    ctx: &ShapeContext,
    step: &S,
    ty: Type,
    geometry: impl FnOnce(GeometryShape) -> GeometryShape,
) -> Vec<Shape> {
    let input = ctx.input(0);
    let mut s = input.clone();
    let writes = step.writes();
    for r in step.removes() {
        if !writes.contains(&r) {
            s.remove(r);
        }
    }
    for w in writes {
        s.set(w, ty);
    }
    s.geometry = geometry(s.geometry);
    vec![s, input.rejected()]
}

/// The schema function of an action that changes only geometries: every port carries its
/// input's attributes.
pub(crate) fn same_shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    Ok(ctx.pass(ctx.input(0)))
}

/// What a step does to the geometry of a feature it accepts.
pub(crate) enum GeometryChange {
    /// The geometry stays as it is.
    Keep,
    /// The geometry is replaced.
    Set(Geometry),
    /// The geometry is removed.
    Remove,
}

/// The computation of one per-feature geometry action.
pub(crate) trait GeometryStep: Send + Sync + 'static {
    /// Scratch state kept for one batch (`reproject` caches projections in it).
    type Scratch: Default;

    /// The attributes every accepted feature receives, in the order [`GeometryStep::compute`]
    /// pushes their values (none by default).
    fn writes(&self) -> Vec<&str> {
        Vec::new()
    }

    /// The attributes every accepted feature loses (none by default).
    fn removes(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Computes the result for `feature` (with this batch's `scratch`): pushes one value per attribute of
    /// [`GeometryStep::writes`] onto `values` and says what becomes of the geometry, or
    /// gives the reason to reject the feature.
    fn compute(
        &self,
        feature: &Feature,
        scratch: &mut Self::Scratch,
        values: &mut Vec<Value>,
    ) -> Result<GeometryChange, String>;
}

/// A [`Transform`] that applies a [`GeometryStep`] to each feature.
pub(crate) struct PerFeature<S>(pub(crate) S);

impl<S: GeometryStep> PerFeature<S> {
    /// The built action of `step`.
    pub(crate) fn build(step: S) -> BuiltAction {
        BuiltAction::new(NodeImpl::Transform(Arc::new(PerFeature(step))))
    }
}

impl<S: GeometryStep> Transform for PerFeature<S> {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        let (writes, removes) = (self.0.writes(), self.0.removes());
        let reshape = !(writes.is_empty() && removes.is_empty());
        let mut reshaper = Reshaper::new(writes, removes);
        let mut values = Vec::new();
        let mut scratch = S::Scratch::default();
        for mut feature in features {
            values.clear();
            match self.0.compute(&feature, &mut scratch, &mut values) {
                Ok(change) => {
                    if reshape {
                        reshaper.write(&mut feature, &mut values);
                    }
                    match change {
                        GeometryChange::Keep => {}
                        GeometryChange::Set(g) => feature.set_geometry(Some(g)),
                        GeometryChange::Remove => feature.set_geometry(None),
                    }
                    out.emit(feature)?;
                }
                Err(reason) => out.reject(feature, reason)?,
            }
        }
        Ok(())
    }
}
