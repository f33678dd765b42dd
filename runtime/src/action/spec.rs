//! [`ActionSpec`]: every fact about an action in one place the registry can read.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::traits::{Processor, Sink, Source, Transform};
use crate::error::ActionError;

/// The role of an action in a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// Produces features; has no inputs.
    Source,
    /// Transforms features; has inputs and outputs.
    Processor,
    /// Consumes features; has no outputs.
    Sink,
}

/// The runtime object a factory builds: one of four flavours.
pub enum NodeImpl {
    /// Produces features on its node thread.
    Source(Box<dyn Source>),
    /// Stateless: batches may run in parallel on the shared pool, order kept.
    Transform(Arc<dyn Transform>),
    /// Stateful: runs on its node thread; may accumulate and drain in `finish`.
    Processor(Box<dyn Processor>),
    /// Consumes features and commits its output in `finish`.
    Sink(Box<dyn Sink>),
}

impl NodeImpl {
    /// The role this flavour plays in a graph (a transform is a processor).
    pub fn kind(&self) -> ActionKind {
        match self {
            NodeImpl::Source(_) => ActionKind::Source,
            NodeImpl::Transform(_) | NodeImpl::Processor(_) => ActionKind::Processor,
            NodeImpl::Sink(_) => ActionKind::Sink,
        }
    }

    /// The flavour's name, for messages.
    pub fn flavour(&self) -> &'static str {
        match self {
            NodeImpl::Source(_) => "source",
            NodeImpl::Transform(_) => "transform",
            NodeImpl::Processor(_) => "processor",
            NodeImpl::Sink(_) => "sink",
        }
    }
}

/// What a factory returns: the runtime object and, for actions whose output ports depend on
/// their parameters (filter), the actual port list.
pub struct BuiltAction {
    /// The runtime object.
    pub node: NodeImpl,
    /// Output ports, when they differ from the spec's.
    pub outputs: Option<Vec<String>>,
}

impl BuiltAction {
    /// A built action with the spec's ports.
    pub fn new(node: NodeImpl) -> BuiltAction {
        BuiltAction {
            node,
            outputs: None,
        }
    }

    /// Overrides the output ports.
    pub fn with_outputs(mut self, outputs: Vec<String>) -> BuiltAction {
        self.outputs = Some(outputs);
        self
    }
}

/// What a factory gets: the node's parameters (variables already substituted).
pub struct BuildContext<'a> {
    /// The node id.
    pub node_id: &'a str,
    /// The `with` block as JSON (an empty object when absent).
    pub params: &'a serde_json::Value,
}

impl BuildContext<'_> {
    /// Deserializes the parameters, naming the failing path on error.
    pub fn params<P: DeserializeOwned>(&self) -> Result<P, ActionError> {
        let de = self.params.clone();
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ActionError::Param {
                path,
                message: e.into_inner().to_string(),
            }
        })
    }
}

/// The factory signature.
pub type BuildFn = fn(&BuildContext) -> Result<BuiltAction, ActionError>;

/// An order of features: what a sorting action sorts by, as a comparison.
pub type FeatureOrdering =
    Box<dyn FnMut(&crate::feature::Feature, &crate::feature::Feature) -> std::cmp::Ordering + Send>;

/// The order a sorting action gives its output, from its parameters (see
/// [`ActionSpec::sorts_by`]).
pub type OrderFn = fn(&serde_json::Value) -> Result<FeatureOrdering, ActionError>;

/// A hash of the key a grouping action groups by: features that the action puts in one
/// group hash alike (the same in every process).
pub type FeatureHasher = Box<dyn FnMut(&crate::feature::Feature) -> u64 + Send>;

/// The key hash of a grouping action's input port `port`, from its parameters (see
/// [`ActionSpec::groups_by`]); `None` when it keeps everything in one group.
pub type HashFn = fn(&serde_json::Value, usize) -> Result<Option<FeatureHasher>, ActionError>;

/// Every fact about an action: name, kind, ports, flags, parameter schema and factory.
#[derive(Clone, Copy)]
pub struct ActionSpec {
    /// The name used in workflows (`csv_reader`).
    pub name: &'static str,
    /// Source, processor or sink.
    pub kind: ActionKind,
    /// One line for users.
    pub description: &'static str,
    /// Input port names (the first is the default).
    pub inputs: &'static [&'static str],
    /// Output port names (the first is the default). Actions with parameter-dependent ports
    /// list their fixed ones here and return the full list from `build`.
    pub outputs: &'static [&'static str],
    /// Output ports depend on parameters.
    pub dynamic_outputs: bool,
    /// Holds its whole input (sort, join...) and drains it in `finish`.
    pub accumulates: bool,
    /// Its `finish` is expensive: the executor admits it through the heavy-finish gate.
    pub heavy_finish: bool,
    /// The parameter that names the file the action writes (`path`), for sinks that write
    /// one. Validation refuses two nodes writing the same output.
    pub output_path: Option<&'static str>,
    /// Whether [`ActionSpec::output_path`] may hold `{attribute}` placeholders (`{{` and `}}`
    /// are literal braces): the loader then escapes the braces of the folder it puts in front
    /// of a relative path.
    pub output_placeholders: bool,
    /// The parameter that names what the action reads (a file, a folder or a glob), for
    /// sources that read files. The loader resolves a relative path against the workflow's
    /// folder and checks, before the run, that a plain local path exists.
    pub input_path: Option<&'static str>,
    /// A YAML `with:` block that must parse (tested for every action).
    pub example: &'static str,
    /// The JSON Schema of the parameters.
    pub schema: fn() -> schemars::Schema,
    /// The static schema of the output ports, from the parameters and the inputs' schemas
    /// (see [`crate::shape`]); `None` gives unknown outputs, which stops checking downstream.
    pub shape: Option<crate::shape::ShapeFn>,
    /// How the action runs when the workflow is run in partitions (`sluice plan`). Default:
    /// sources are read whole by the first task, processors and sinks are
    /// [`Partitioning::Global`](super::Partitioning::Global); an action declares itself sliced or per-feature.
    pub partitioning: super::Partitioning,
    /// For an action whose output is its input stably sorted by an order (`sort`): that
    /// order. A partitioned run then sorts each task's part in the parallel stage and
    /// merges the sorted parts by it in the next, instead of sorting everything in one task.
    pub sorted_by: Option<OrderFn>,
    /// For an action that handles the features of each key on their own, in arrival order
    /// (`dedup`, grouped `statistics`): the key's hash per input port. A partitioned run may
    /// then split its input by the hash, each task taking the keys of its bucket.
    pub hashed_by: Option<HashFn>,
    /// The factory.
    pub build: BuildFn,
}

/// The JSON Schema of a parameter struct (for [`ActionSpec::schema`]).
pub fn schema_of<P: schemars::JsonSchema>() -> schemars::Schema {
    schemars::schema_for!(P)
}

impl ActionSpec {
    /// A spec with one `default` port on each side the kind has, and no flags.
    pub const fn new(
        name: &'static str,
        kind: ActionKind,
        description: &'static str,
        schema: fn() -> schemars::Schema,
        build: BuildFn,
    ) -> ActionSpec {
        const DEFAULT: &[&str] = &[super::DEFAULT_PORT];
        ActionSpec {
            name,
            kind,
            description,
            inputs: match kind {
                ActionKind::Source => &[],
                _ => DEFAULT,
            },
            outputs: match kind {
                ActionKind::Sink => &[],
                _ => DEFAULT,
            },
            dynamic_outputs: false,
            accumulates: false,
            heavy_finish: false,
            output_path: None,
            output_placeholders: false,
            input_path: None,
            example: "",
            schema,
            shape: None,
            partitioning: match kind {
                ActionKind::Source => super::Partitioning::Whole,
                _ => super::Partitioning::Global,
            },
            sorted_by: None,
            hashed_by: None,
            build,
        }
    }

    /// Declares a source that reads only its slice of the input in a partitioned run;
    /// `how` says how it splits (for `sluice plan`).
    pub const fn sliced(mut self, how: &'static str) -> ActionSpec {
        self.partitioning = super::Partitioning::Sliced(how);
        self
    }

    /// Declares a processor whose output is its input, stably sorted by the order `order`
    /// builds from the parameters (see [`ActionSpec::sorted_by`]).
    pub const fn sorts_by(mut self, order: OrderFn) -> ActionSpec {
        self.sorted_by = Some(order);
        self
    }

    /// Declares a processor that handles the features of each key on their own, in arrival
    /// order, with the key's hash (see [`ActionSpec::hashed_by`]).
    pub const fn groups_by(mut self, hash: HashFn) -> ActionSpec {
        self.hashed_by = Some(hash);
        self
    }

    /// Declares a processor whose output for a feature depends on that feature only, so a
    /// partitioned run runs it in every task.
    pub const fn per_feature(mut self) -> ActionSpec {
        self.partitioning = super::Partitioning::PerFeature;
        self
    }

    /// Sets the input ports.
    pub const fn inputs(mut self, inputs: &'static [&'static str]) -> ActionSpec {
        self.inputs = inputs;
        self
    }

    /// Sets the output ports.
    pub const fn outputs(mut self, outputs: &'static [&'static str]) -> ActionSpec {
        self.outputs = outputs;
        self
    }

    /// Marks the output ports as parameter-dependent.
    pub const fn dynamic_outputs(mut self) -> ActionSpec {
        self.dynamic_outputs = true;
        self
    }

    /// Marks the action as accumulating.
    pub const fn accumulates(mut self) -> ActionSpec {
        self.accumulates = true;
        self
    }

    /// Marks the finish as heavy.
    pub const fn heavy_finish(mut self) -> ActionSpec {
        self.heavy_finish = true;
        self
    }

    /// Names the parameter that holds the output location (a string; it may hold
    /// `{attribute}` placeholders, which are compared as written).
    pub const fn writes_to(mut self, param: &'static str) -> ActionSpec {
        self.output_path = Some(param);
        self
    }

    /// Like [`ActionSpec::writes_to`], for a writer whose path may hold `{attribute}`
    /// placeholders (one file per value).
    pub const fn writes_partitions_to(mut self, param: &'static str) -> ActionSpec {
        self.output_path = Some(param);
        self.output_placeholders = true;
        self
    }

    /// Names the parameter that holds the location the action reads (a string: a file, a
    /// folder or a glob).
    pub const fn reads_from(mut self, param: &'static str) -> ActionSpec {
        self.input_path = Some(param);
        self
    }

    /// Sets the YAML example of the `with:` block.
    pub const fn example(mut self, example: &'static str) -> ActionSpec {
        self.example = example;
        self
    }

    /// Sets the schema function: how the action's output schemas follow from its
    /// parameters and input schemas ([`crate::shape`]).
    pub const fn shape(mut self, shape: crate::shape::ShapeFn) -> ActionSpec {
        self.shape = Some(shape);
        self
    }

    /// Checks that a factory's result agrees with this spec: its flavour plays the declared
    /// [`ActionKind`], and it overrides the output ports only when the spec says they depend
    /// on the parameters (keeping the spec's fixed ports). Validation runs this on every
    /// built node, so the plan, the executor and the run report never disagree on a role.
    pub fn check_built(&self, built: &BuiltAction) -> Result<(), String> {
        if built.node.kind() != self.kind {
            return Err(format!(
                "is declared a {:?} but its factory built a {}",
                self.kind,
                built.node.flavour()
            )
            .to_lowercase());
        }
        match &built.outputs {
            Some(_) if !self.dynamic_outputs => {
                Err("returned its own output ports, but its spec does not mark them dynamic".into())
            }
            Some(ports) => match self.outputs.iter().find(|p| !ports.iter().any(|q| q == *p)) {
                Some(missing) => Err(format!(
                    "returned output ports without its fixed port \"{missing}\""
                )),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The spec as JSON, for `sluice actions --json` and UI palettes.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "dynamic_outputs": self.dynamic_outputs,
            "accumulates": self.accumulates,
            "heavy_finish": self.heavy_finish,
            "output_path": self.output_path,
            "input_path": self.input_path,
            "partitioning": self.partitioning.name(),
            "example": self.example,
            "parameters": (self.schema)(),
        })
    }
}

impl std::fmt::Debug for ActionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GEN, NoParams, test_registry};
    use crate::workflow::{self, VarSources};

    /// Claims to be a sink but builds the `gen` source.
    const LIAR: ActionSpec = ActionSpec::new(
        "liar",
        ActionKind::Sink,
        "declares one kind, builds another",
        schema_of::<NoParams>,
        |c| {
            (GEN.build)(&BuildContext {
                node_id: c.node_id,
                params: &serde_json::json!({"count": 1}),
            })
        },
    );

    #[test]
    fn a_factory_that_builds_another_kind_fails_validation_with_the_node_named() {
        let mut registry = test_registry();
        registry.register(LIAR);
        let yaml = "name: t\nnodes:\n  - id: g\n    action: gen\n    with: {count: 1}\n  - id: l\n    action: liar\nedges:\n  - g -> l\n";
        let Err(err) = workflow::load("wf.yaml", yaml, &registry, &VarSources::default()) else {
            panic!("a lying factory passed validation");
        };
        let text = err.to_string();
        assert!(
            text.contains("node \"l\"")
                && text.contains("declared a sink but its factory built a source"),
            "{text}"
        );
    }

    #[test]
    fn dynamic_outputs_must_be_declared_and_keep_the_fixed_ports() {
        let built = (GEN.build)(&BuildContext {
            node_id: "g",
            params: &serde_json::json!({"count": 1}),
        })
        .unwrap()
        .with_outputs(vec!["default".into(), "extra".into()]);
        let err = GEN.check_built(&built).unwrap_err();
        assert!(err.contains("does not mark them dynamic"), "{err}");
        let dynamic = GEN.outputs(&["default", "rejected"]).dynamic_outputs();
        let err = dynamic.check_built(&built).unwrap_err();
        assert!(err.contains("\"rejected\""), "{err}");
        assert_eq!(GEN.dynamic_outputs().check_built(&built), Ok(()));
    }
}
