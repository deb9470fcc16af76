//! The pure-Rust core: every algorithm of the package, with no napi import, tested
//! with `cargo test`.

pub mod alloc;
pub mod error;
pub mod geo;

// Federated learning.
pub mod aggregation;
pub mod compression;
pub mod half;
pub mod metrics;
pub mod rng;
pub mod wire;

// Orbits and contact windows.
pub mod orbit;
pub mod planner;
pub mod sync;

// Inter-satellite mesh routing.
pub mod mesh;

// Model partitioning.
pub mod partition;
