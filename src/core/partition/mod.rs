//! Model partitioning: which node runs which layers of a model, across satellites and
//! ground sites that differ in memory, compute and links.
//!
//! - [`model`]: layers ([`Profile`], the transformer builder), nodes ([`Node`],
//!   [`NodeKind`]), links ([`Link`], [`LinkModel`] with its documented defaults) and the
//!   endpoints of a request ([`Endpoints`]).
//! - [`cost`]: the cost of any placement ([`evaluate`]): compute, transfers, memory,
//!   latency, pipeline period and the bytes crossing the space–ground boundary.
//! - [`solve`]: the optimal placement for an [`Objective`] ([`optimize`]): an exact
//!   search over (layer prefix, last node class, nodes used per class), where identical
//!   nodes form one class with a count.
//!
//! The model: layers run in order; each stage is one node running a contiguous run of
//! layers; a node runs at most one stage; a node's memory holds the parameters (plus
//! workspace) of its layers; time is compute (flops ÷ node speed) plus the transfer of
//! activations between consecutive stages (propagation latency + size ÷ bandwidth).

mod bounds;
pub mod cost;
mod front;
pub mod model;
mod period;
pub mod solve;

#[cfg(test)]
mod tests;

pub use cost::{evaluate, PlanCost, StageCost};
pub use model::{
    Endpoints, Layer, LayerSpec, Link, LinkModel, Node, NodeKind, Problem, Profile, RoundTrip,
    Sink, TransformerSpec,
};
pub use solve::{
    optimize, optimize_with_limit, optimize_with_limits, Objective, Plan, MAX_STATES,
    TIE_BREAK_STATES,
};
