//! The napi binding: thin classes that convert JS values, validate them, call the core
//! and map its errors. No algorithm lives here.

mod errors;
pub use errors::*;
pub mod arrays;
pub mod options;
pub mod position;
pub mod task;

pub mod aggregation;
pub mod compression;
pub mod mesh;
pub mod metrics;
pub mod partition;
pub mod planner;
pub mod sync;
