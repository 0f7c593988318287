//! The engine's integration tests: one test binary, linked once, with one module per area.
//!
//! - [`architecture`]: the import graph between the engine's modules has no cycles.
//! - [`chaos`]: a store wrapper that delays, shortens reads and fails random steps.
//! - [`conformance`]: one set of store cases, run against every store.
//! - [`disk_sandbox`]: what only the disk store does: its sandbox, staging and atomic commit.
//! - [`disk_usage`]: the disk store's usage counters equal a fresh walk, and rescans see outside
//!   changes.
//! - [`io_counters`]: the per-mount read and write byte counters move by exactly the bytes moved.
//! - [`model`]: random operation sequences against a reference model of a file tree, per store
//!   pair.
//! - [`path_props`]: properties of the path parser over arbitrary text.
//! - [`redis_faults`]: the Redis store under faults and sharing, on private `redis-server`s.
//! - [`redis_packs`]: small files packed in Redis, and every operation on a packed file.
//! - [`responsiveness`]: backends answer while a large transfer runs through them.
//! - [`throttle`]: every pair of stores obeys a limit, small files included, on a real clock.
//! - [`transfers`]: transfers and jobs through the router, over every pair of stores.
//!
//! What the modules share with the root crate's tests (private Redis servers, staging leftovers)
//! lives in the `mavfs-test-support` crate.

mod architecture;
mod chaos;
mod conformance;
mod disk_sandbox;
mod disk_usage;
mod io_counters;
mod model;
mod path_props;
mod redis_faults;
mod redis_packs;
mod responsiveness;
mod throttle;
mod transfers;
