//! [`ErrorKind`]: what went wrong, in errno's vocabulary, with the reason users read.
//!
//! A module of its own, depending on nothing but [`crate::quote`], so that both [`crate::path`] (whose checks fail
//! with a kind) and [`crate::error`] (whose errors name a path) can use it without depending on
//! each other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong, in the vocabulary of errno. The `Display` of each kind is the reason the shell
/// prints (`mavfs: cat: /vram/x: No such file or directory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// ENOENT: the path, or one of its parents, does not exist.
    NotFound,
    /// EEXIST: the destination exists and the operation does not replace it.
    AlreadyExists,
    /// EISDIR: a file operation met a directory.
    IsADirectory,
    /// ENOTDIR: a directory operation, or a path's parent, met a file.
    NotADirectory,
    /// ENOTEMPTY: a directory still has entries.
    DirectoryNotEmpty,
    /// EACCES: the host refused, or the path leads outside a sandbox.
    PermissionDenied,
    /// ENOSPC: a capacity limit, a full disk or a full Redis.
    NoSpace,
    /// ENAMETOOLONG: a component over 255 bytes or a path over 4096 bytes.
    NameTooLong,
    /// EINVAL: a malformed name or an impossible request (a directory into itself).
    InvalidInput,
    /// EBUSY: the target is in use, such as a mount root.
    Busy,
    /// EXDEV-like: the operation needs one store but was given two.
    CrossesMounts,
    /// ENOTSUP: the entry's type (FIFO, socket, device) or the operation is not supported.
    Unsupported,
    /// ECANCELED: the operation was cancelled before it finished.
    Cancelled,
    /// EIO-like: the backend is unreachable or stopped.
    Unavailable,
    /// EIO: any other failure of the host or backend.
    Io,
}

impl ErrorKind {
    /// The errno-like reason shown to users.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "No such file or directory",
            ErrorKind::AlreadyExists => "File exists",
            ErrorKind::IsADirectory => "Is a directory",
            ErrorKind::NotADirectory => "Not a directory",
            ErrorKind::DirectoryNotEmpty => "Directory not empty",
            ErrorKind::PermissionDenied => "Permission denied",
            ErrorKind::NoSpace => "No space left on device",
            ErrorKind::NameTooLong => "File name too long",
            ErrorKind::InvalidInput => "Invalid argument",
            ErrorKind::Busy => "Device or resource busy",
            ErrorKind::CrossesMounts => "Invalid cross-device link",
            ErrorKind::Unsupported => "Operation not supported",
            ErrorKind::Cancelled => "Operation canceled",
            ErrorKind::Unavailable => "Backend unavailable",
            ErrorKind::Io => "Input/output error",
        }
    }
}

impl ErrorKind {
    /// The reason with an optional detail, as every engine error prints it after its path:
    /// `No such file or directory (detail)`. Control characters in the detail are shown as C
    /// escapes ([`crate::quote::prose`]): it may quote a name or a host's message.
    pub fn describe(self, detail: Option<&str>) -> String {
        match detail {
            Some(d) => format!("{} ({})", self.reason(), crate::quote::prose(d)),
            None => self.reason().to_string(),
        }
    }

    /// Writes `path: reason (detail)`, leaving out what is missing: the `Display` of every
    /// engine error. The path is quoted as coreutils quotes names in its diagnostics
    /// ([`crate::quote::diagnostic`]), whatever the output: a name with control characters or
    /// blanks in single quotes (`'/vram/a'$'\n''b'`), any other as is.
    pub fn write_error(
        self,
        f: &mut fmt::Formatter<'_>,
        path: Option<&str>,
        detail: Option<&str>,
    ) -> fmt::Result {
        if let Some(p) = path {
            write!(f, "{}: ", crate::quote::diagnostic(p))?;
        }
        f.write_str(&self.describe(detail))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}
