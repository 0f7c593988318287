//! Host failures as the engine's errors: each converted once, here, where the operation and the
//! store path are known.

use std::io;

use crate::error::{Error, ErrorKind};
use crate::path::VPath;

/// A converter of host errors for `op` on `path`.
pub(super) fn io_error<'a>(op: &'static str, path: &'a VPath) -> impl Fn(io::Error) -> Error + 'a {
    move |e| Error::from_io(op, e).with_path(path)
}

pub(super) fn error(kind: ErrorKind, op: &'static str, path: &VPath) -> Error {
    Error::new(kind, op).with_path(path)
}

/// A failed blocking task: it panicked, or the runtime is shutting down.
pub(super) fn join_error(op: &'static str, path: &VPath, err: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Io, op)
        .with_path(path)
        .with_detail(format!("background task failed: {err}"))
}

/// A file that ended at byte `at` of the `size` it had when opened.
pub(super) fn truncated(path: &VPath, at: u64, size: u64) -> Error {
    // Commits replace files by rename, which never shortens an open file: someone truncated it
    // in place. A short file must be an error, never a short read.
    error(ErrorKind::Io, "read", path).with_detail(format!(
        "the file ended at byte {at} of {size}: it was truncated while being read"
    ))
}

/// The error of every file of a batch whose blocking job never reported.
pub(super) fn lost_batch(op: &'static str, why: &dyn std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, op).with_detail(format!("background task failed: {why}"))
}
