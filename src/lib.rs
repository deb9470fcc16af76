//! `@rotastellar/distributed`: the Rust core (`core`) and its thin napi binding (`js`).
#![deny(clippy::all)]

pub mod core;
#[cfg(feature = "binding")]
mod js;
