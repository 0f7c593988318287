//! The engine's one error type.
//!
//! Every failure is an [`Error`]: an errno-like [`ErrorKind`], the operation that failed, the virtual
//! path it failed on, an optional detail in the user's terms and an optional source. Errors are built
//! where the operation and the path are known; there is deliberately no blanket `From<io::Error>`,
//! because it would drop the path. Stores convert host errors with [`Error::from_io`].

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::path::VPath;

/// What went wrong, in the vocabulary of errno. The `Display` of each kind is the reason the shell
/// prints (`mavfs: cat: /vram/x: No such file or directory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// A failed operation: kind, operation, virtual path, detail and source.
///
/// `Display` prints `path: reason (detail)`, the part of the shell's error line after the command.
/// Cloning is cheap: a job's failure reaches every waiter and subscriber.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    op: &'static str,
    path: Option<VPath>,
    detail: Option<String>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` raised by operation `op`.
    pub fn new(kind: ErrorKind, op: &'static str) -> Self {
        Error {
            kind,
            op,
            path: None,
            detail: None,
            source: None,
        }
    }

    /// Converts a host I/O error, keeping its message as the source.
    pub fn from_io(op: &'static str, err: io::Error) -> Self {
        let kind = kind_of_io(&err);
        let detail = match kind {
            // A cap-std sandbox escape arrives as PermissionDenied with this text; say it plainly.
            ErrorKind::PermissionDenied
                if err.to_string().contains("outside of the filesystem") =>
            {
                Some("the path leads outside the disk root".to_string())
            }
            ErrorKind::Io => Some(err.to_string()),
            _ => None,
        };
        Error {
            kind,
            op,
            path: None,
            detail,
            source: Some(Arc::new(err)),
        }
    }

    /// Sets the virtual path the error is about.
    pub fn with_path(mut self, path: &VPath) -> Self {
        self.path = Some(path.clone());
        self
    }

    /// Sets the path only if none is set yet (inner layers know better).
    pub fn or_path(mut self, path: &VPath) -> Self {
        if self.path.is_none() {
            self.path = Some(path.clone());
        }
        self
    }

    /// Rewrites the path, if any (a store's local path into the full virtual path).
    pub fn map_path(mut self, f: impl FnOnce(&VPath) -> VPath) -> Self {
        self.path = self.path.as_ref().map(f);
        self
    }

    /// Adds a human explanation shown after the reason.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn op(&self) -> &'static str {
        self.op
    }

    pub fn path(&self) -> Option<&VPath> {
        self.path.as_ref()
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The reason with its detail, without the path: `No such file or directory (detail)`.
    pub fn reason(&self) -> String {
        match &self.detail {
            Some(d) => format!("{} ({d})", self.kind.reason()),
            None => self.kind.reason().to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        f.write_str(&self.reason())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn kind_of_io(err: &io::Error) -> ErrorKind {
    use io::ErrorKind as K;
    use rustix::io::Errno;
    if let Some(code) = err.raw_os_error() {
        let errno = Errno::from_raw_os_error(code);
        // Opening a FIFO with no peer or a device with no driver: the entry's type is the problem.
        if errno == Errno::NXIO || errno == Errno::NODEV {
            return ErrorKind::Unsupported;
        }
        // A symlink met where none may be followed: report it as a sandbox refusal.
        if errno == Errno::LOOP {
            return ErrorKind::PermissionDenied;
        }
        if errno == Errno::PERM {
            return ErrorKind::PermissionDenied;
        }
    }
    match err.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::AlreadyExists => ErrorKind::AlreadyExists,
        K::PermissionDenied => ErrorKind::PermissionDenied,
        K::IsADirectory => ErrorKind::IsADirectory,
        K::NotADirectory => ErrorKind::NotADirectory,
        K::DirectoryNotEmpty => ErrorKind::DirectoryNotEmpty,
        K::StorageFull | K::QuotaExceeded => ErrorKind::NoSpace,
        K::InvalidFilename => ErrorKind::NameTooLong,
        K::InvalidInput => ErrorKind::InvalidInput,
        K::ResourceBusy => ErrorKind::Busy,
        K::CrossesDevices => ErrorKind::CrossesMounts,
        K::Unsupported => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    }
}
