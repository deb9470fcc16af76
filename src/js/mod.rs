//! The napi binding: thin classes that convert JS values, validate them, call the core
//! and map its errors. No algorithm lives here.

mod errors;
pub use errors::*;
pub mod position;
pub mod task;
pub mod arrays;

pub mod compression;
pub mod aggregation;
pub mod metrics;
pub mod sync;
pub mod planner;
pub mod mesh;
pub mod partition;
