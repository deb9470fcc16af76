//! The pure-Rust core: every algorithm of the package, with no napi import, tested
//! with `cargo test`.

pub mod error;
pub mod geo;

// Federated learning.
pub mod rng;
pub mod half;
pub mod compression;
pub mod wire;
pub mod aggregation;
pub mod metrics;

// Orbits and contact windows.
pub mod orbit;
pub mod sync;
pub mod planner;

// Inter-satellite mesh routing.
pub mod mesh;

// Model partitioning.
pub mod partition;
