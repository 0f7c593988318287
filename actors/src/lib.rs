//! The MAVFS engine: everything below the front ends.
//!
//! A request flows front end -> [`router`] -> [`backend`] actor -> [`store`]:
//!
//! - [`error_kind`], [`path`], [`error`]: errno-like kinds; virtual paths and their rules
//!   (normalisation, `..` stopping at mount roots, name limits); the one error type, with its
//!   kind, the operation and the path. `path` and `error` both build on `error_kind`, and only
//!   `error` names `path`.
//! - [`quote`]: how names are shown to people (GNU coreutils' quoting), for error messages and
//!   front ends' listings alike.
//! - [`limits`], [`redis_url`]: the limits, defaults and naming rules the engine and the config
//!   share, and the checking and redaction of Redis URLs: one definition each.
//! - [`store`]: the contract every backend keeps, and its implementations ([`store::memory`],
//!   [`store::disk`], [`store::redis`]).
//! - [`backend`]: one kameo actor per mount owning its store, behind a [`backend::BackendHandle`].
//! - [`mounts`]: the mount table, built once at start, and what front ends know of a mount.
//! - [`transfer`]: copies and moves of files and trees, streamed across mounts (small files whole,
//!   in batches), atomic per file, metered once in the stream.
//! - [`job`]: a transfer run as a job (ids, routes, states, events, the job table, foreground
//!   handles, the one way to cancel).
//! - [`events`]: the broadcast bus that carries every job's events to any subscribed front end.
//! - [`router`]: [`RouterHandle`], the engine's front door; it resolves paths, routes
//!   single-mount operations and runs transfers as jobs.
//!
//! Module dependencies point one way, with no cycles: `router` -> `job` -> `transfer` ->
//! `mounts` -> `backend` -> `store` -> `error` -> `path` -> `error_kind` (each may also use
//! those further along); `error_kind` uses `quote`; `events`, `limits`, `redis_url` and `quote`
//! depend on nothing.
//!
//! # The front-end seam
//!
//! Front ends (the shell, the dashboard, the daemon and its clients) use only what this root
//! exports: [`RouterHandle`] and plain data that serialises with serde, so the same values cross
//! a socket or print as `--json`: [`VPath`] (checked again when decoded), [`Meta`], [`DirEntry`],
//! [`Usage`], [`MountInfo`], [`MountStats`] (with its [`IoCounters`]), [`TransferRequest`],
//! [`TransferSummary`], [`JobId`], [`JobInfo`], [`JobOptions`], [`Progress`], [`JobEvent`] and the wire form of
//! [`Error`]. No actor, backend handle or store type reaches a front end; the wiring that builds
//! the engine uses [`Mount`] and the store types.
//!
//! The engine knows nothing of terminals, command lines or config files.

#![deny(missing_docs)]

pub mod backend;
pub mod error;
pub mod error_kind;
pub mod events;
pub mod job;
pub mod limits;
pub mod mounts;
pub mod path;
pub mod quote;
pub mod redis_url;
pub mod router;
pub mod store;
pub mod transfer;

pub use backend::{IoCounters, WriteHandle};
pub use error::{Error, ErrorKind, Result};
pub use job::table::OutcomeReceiver;
pub use job::{
    EventKind, ForegroundJob, JobControl, JobEvent, JobId, JobInfo, JobOptions, JobOutcome,
    JobRoute, JobState,
};
pub use limits::{
    DEFAULT_CHUNK_SIZE, DEFAULT_JOBS, DEFAULT_NAMESPACE, MAX_CHUNK_SIZE, MAX_JOBS,
    MAX_NAMESPACE_BYTES, MIN_CHUNK_SIZE, check_namespace,
};
pub use mounts::{Mount, MountInfo, MountStats, MountTable, Tier};
pub use path::{MAX_NAME_BYTES, MAX_PATH_BYTES, PathError, VPath};
pub use redis_url::redact_url;
pub use router::RouterHandle;
pub use store::{
    BackendKind, DirEntry, EntryKind, FileReader, LIST_PAGE_ENTRIES, ListCursor, ListPage, Meta,
    Usage, WriteMode,
};
pub use transfer::{Progress, TransferKind, TransferRequest, TransferSummary};

#[cfg(test)]
mod seam_tests;
