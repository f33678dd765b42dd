//! What an action is: its spec (name, ports, parameter schema, factory) and the four runtime
//! flavours the executor drives.

mod emit;
mod registry;
mod slice;
mod spec;
mod tap;
pub mod traits;

pub use emit::Emitter;
pub(crate) use emit::{EdgeOut, EdgeTarget, LocalEdge, PortDrops};
pub use registry::Registry;
pub use slice::{BadSlice, Partitioning, Slice};
pub use spec::{
    ActionKind, ActionSpec, BuildContext, BuiltAction, FeatureHasher, FeatureOrdering, HashFn,
    NodeImpl, OrderFn, schema_of,
};
pub(crate) use tap::{EdgeTap, TapMsg};
pub use traits::{NodeContext, Processor, Sink, Source, Transform};

/// The name of the default port, used when an edge names no port.
pub const DEFAULT_PORT: &str = "default";
/// The port that receives features an action could not handle, with the reason attached.
pub const REJECTED_PORT: &str = "rejected";
/// The attribute that carries the reason on a rejected feature.
pub const REJECTION_REASON: &str = "_rejection_reason";
