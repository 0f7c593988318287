//! Code the integration tests of both crates share, as a crate instead of `#[path]` includes.
//!
//! - [`redis`]: private `redis-server`s and clusters on free ports, skipped (or, with
//!   `MAVFS_REQUIRE_REDIS=1`, failing) when Redis is not installed.
//! - [`staging`]: what a disk store left in its staging directory.
//! - [`modules`]: a crate's import graph between top-level modules, to keep it free of cycles.
//!
//! Nothing here depends on MAVFS itself, so building it never waits for the engine.

pub mod modules;
pub mod redis;
pub mod staging;
