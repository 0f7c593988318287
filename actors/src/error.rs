//! The engine's one error type.
//!
//! Every failure is an [`Error`]: an errno-like [`ErrorKind`], the operation that failed, the virtual
//! path it failed on, an optional detail in the user's terms and an optional source. Errors are built
//! where the operation and the path are known; there is deliberately no blanket `From<io::Error>`,
//! because it would drop the path. Stores convert host errors with [`Error::from_io`].
//!
//! An `Error` crosses process boundaries (the daemon's socket, `--json`) in its wire form: kind,
//! operation, path, detail and the source as text ([`Error`]'s serde implementation). A decoded
//! error prints exactly as the original did.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::error_kind::ErrorKind;
use crate::path::{PathError, VPath};

/// A failed operation: kind, operation, virtual path, detail and source.
///
/// `Display` prints `path: reason (detail)`, the part of the shell's error line after the command.
/// Cloning is cheap: a job's failure reaches every waiter and subscriber.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    /// The operation, such as `read`; owned only when decoded from the wire.
    op: Cow<'static, str>,
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
            op: Cow::Borrowed(op),
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
            op: Cow::Borrowed(op),
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

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed (`read`, `mkdir`, ...).
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The virtual path the error is about, if any.
    pub fn path(&self) -> Option<&VPath> {
        self.path.as_ref()
    }

    /// The explanation shown after the reason, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The reason with its detail, without the path: `No such file or directory (detail)`.
    pub fn reason(&self) -> String {
        self.kind.describe(self.detail.as_deref())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.as_ref().map(VPath::as_str);
        self.kind.write_error(f, path, self.detail.as_deref())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The wire form of an [`Error`]: plain data, the source reduced to its text.
#[derive(Serialize, Deserialize)]
struct WireError {
    kind: ErrorKind,
    op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<VPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

/// A source error that arrived as text.
#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

impl Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireError {
            kind: self.kind,
            op: self.op.to_string(),
            path: self.path.clone(),
            detail: self.detail.clone(),
            source: self.source.as_ref().map(|s| s.to_string()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireError::deserialize(deserializer)?;
        Ok(Error {
            kind: wire.kind,
            op: Cow::Owned(wire.op),
            path: wire.path,
            detail: wire.detail,
            source: wire
                .source
                .map(|s| Arc::new(SourceText(s)) as Arc<dyn std::error::Error + Send + Sync>),
        })
    }
}

/// A path that failed its checks, as an engine error of the same kind and detail.
impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        let mut err = Error::new(e.kind(), e.op());
        if let Some(path) = e.path() {
            err = err.with_path(path);
        }
        if let Some(detail) = e.detail() {
            err = err.with_detail(detail);
        }
        err
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
