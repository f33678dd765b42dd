//! Hidden columns that ride along with features through a spill run.

use std::sync::Arc;

use sluice_runtime::{ActionError, Feature, Schema, Value};

use super::SchemaCache;

/// Extra columns appended to features written to a spill run and removed when they come
/// back. Input features that already have one of these names are refused.
pub(crate) struct Hidden<const N: usize> {
    names: [&'static str; N],
    /// Input schema -> schema with the hidden names appended.
    added: SchemaCache<Arc<Schema>>,
    /// Spilled schema -> schema without them.
    stripped: SchemaCache<Option<Arc<Schema>>>,
}

impl<const N: usize> Hidden<N> {
    /// Hidden columns with these names.
    pub(crate) fn new(names: [&'static str; N]) -> Hidden<N> {
        Hidden {
            names,
            added: SchemaCache::default(),
            stripped: SchemaCache::default(),
        }
    }

    /// The first hidden name `schema` already has (its values would be lost), if any.
    pub(crate) fn clash(&self, schema: &Schema) -> Option<&'static str> {
        self.names
            .iter()
            .find(|n| schema.index_of(n).is_some())
            .copied()
    }

    /// Appends the hidden values (moving the feature's own values when nothing else shares
    /// them). The caller checked the schema with [`Hidden::clash`].
    pub(crate) fn attach(&mut self, mut feature: Feature, hidden: [Value; N]) -> Feature {
        let names = self.names;
        let schema = self
            .added
            .get(feature.schema(), |s| {
                Schema::new(s.names().iter().cloned().chain(names.map(Arc::from)))
            })
            .clone();
        let mut values = Vec::with_capacity(schema.len());
        values.extend(feature.values_mut().iter_mut().map(std::mem::take));
        values.extend(hidden);
        feature.reshape(schema, values);
        feature
    }

    /// Removes the hidden values and returns them.
    pub(crate) fn detach(
        &mut self,
        mut feature: Feature,
    ) -> Result<(Feature, [Value; N]), ActionError> {
        let names = self.names;
        let schema = self
            .stripped
            .get(feature.schema(), |s| {
                let n = s.len().checked_sub(N)?;
                let tail = &s.names()[n..];
                let ours = tail.iter().zip(names).all(|(a, b)| **a == *b);
                ours.then(|| Schema::new(s.names()[..n].iter().cloned()))
            })
            .clone();
        let Some(schema) = schema else {
            return Err(ActionError::data(
                None,
                format!(
                    "feature {}: a spilled feature came back without its hidden columns",
                    feature.id()
                ),
            ));
        };
        let n = schema.len();
        let values = feature.values_mut();
        let hidden: [Value; N] = std::array::from_fn(|i| std::mem::take(&mut values[n + i]));
        let kept: Vec<Value> = values[..n].iter_mut().map(std::mem::take).collect();
        feature.reshape(schema, kept);
        Ok((feature, hidden))
    }
}

/// Reads a hidden sequence number back.
pub(crate) fn hidden_int(v: &Value) -> Result<i64, ActionError> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(ActionError::data(
            None,
            format!(
                "a spilled feature's hidden column holds a {} instead of an int",
                other.type_name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_columns_round_trip_and_reserved_names_are_refused() {
        let mut hidden = Hidden::new(["__h"]);
        let f = Feature::from_pairs(4, [("a", Value::Int(1))]);
        let with = hidden.attach(f, [Value::Int(9)]);
        assert_eq!(with.get("__h"), Some(&Value::Int(9)));
        let (back, [h]) = hidden.detach(with).unwrap();
        assert_eq!(h, Value::Int(9));
        assert_eq!(back.schema().names().len(), 1);
        assert_eq!(back.get("a"), Some(&Value::Int(1)));
        let clash = Feature::from_pairs(5, [("__h", Value::Null)]);
        assert_eq!(hidden.clash(clash.schema()), Some("__h"));
        assert!(hidden.detach(Feature::empty(1)).is_err());
    }
}
