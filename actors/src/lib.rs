//! The MAVFS engine: everything below the front ends.
//!
//! A request flows front end -> [`router`] -> [`backend`] actor -> [`store`]:
//!
//! - [`path`]: virtual paths and their rules (normalisation, `..` stopping at mount roots, name
//!   limits).
//! - [`error`]: the one error type, with errno-like kinds, the operation and the path.
//! - [`store`]: the contract every backend keeps, and its implementations ([`store::memory`],
//!   [`store::disk`], [`store::redis`]).
//! - [`backend`]: one kameo actor per mount owning its store, behind a [`backend::BackendHandle`].
//! - [`mounts`]: the mount table, built once at start.
//! - [`router`]: [`router::RouterHandle`], the only API the front ends use; it resolves paths,
//!   routes single-mount operations and hands transfers to the router actor.
//! - [`transfer`]: copies and moves of files and trees, streamed across mounts (small files whole,
//!   in batches), atomic per file; each runs as a job, in a transfer actor of its own.
//! - [`events`]: progress metering and the event bus that carries every job's events to any
//!   subscribed front end.
//!
//! The engine knows nothing of terminals, command lines or config files.

pub mod backend;
pub mod error;
pub mod events;
pub mod mounts;
pub mod path;
pub mod router;
pub mod store;
pub mod transfer;

pub use error::{Error, ErrorKind, Result};
pub use path::VPath;
pub use router::RouterHandle;
