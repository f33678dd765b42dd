//! The registry: action name → spec, with suggestions for unknown names.

use std::collections::BTreeMap;

use super::spec::ActionSpec;

/// Maps action names to specs. The actions crate supplies the list; embedders may add to it.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    specs: BTreeMap<&'static str, ActionSpec>,
    order: Vec<&'static str>,
}

impl Registry {
    /// A registry from a list of specs. A later spec with the same name replaces the earlier.
    pub fn from_specs(specs: impl IntoIterator<Item = ActionSpec>) -> Registry {
        let mut r = Registry::default();
        for s in specs {
            r.register(s);
        }
        r
    }

    /// Adds (or replaces) an action.
    pub fn register(&mut self, spec: ActionSpec) {
        if self.specs.insert(spec.name, spec).is_none() {
            self.order.push(spec.name);
        }
    }

    /// The spec of an action.
    pub fn get(&self, name: &str) -> Option<&ActionSpec> {
        self.specs.get(name)
    }

    /// All specs, in registration order.
    pub fn specs(&self) -> impl Iterator<Item = &ActionSpec> {
        self.order.iter().filter_map(|n| self.specs.get(n))
    }

    /// Up to three registered names closest to `name`, best first.
    pub fn suggest(&self, name: &str) -> Vec<&'static str> {
        let mut scored: Vec<(f64, &'static str)> = self
            .specs
            .keys()
            .map(|k| (strsim::jaro_winkler(name, k), *k))
            .filter(|(s, _)| *s > 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(3).map(|(_, k)| k).collect()
    }
}
