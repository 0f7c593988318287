//! Turning Redis failures into the engine's errors, in the user's terms.
//!
//! Two sources: fred's errors (connection, timeout, server replies such as `OOM` or `WRONGTYPE`)
//! and the `{'err', code, key}` replies of the scripts. Each becomes one [`Error`] with an
//! errno-like kind; the detail names the server (its URL without password) and, for a key of
//! the wrong type, the key.

use std::time::Duration;

use fred::error::{Error as FredError, ErrorKind as FredKind};

use crate::error::{Error, ErrorKind};

/// The detail of a script's `CHANGED` refusal: the file is not the version the caller expected
/// (callers turn it into their own error).
pub(crate) const CHANGED: &str = "the file changed";

/// Where the store's server is, for messages.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The URL or cluster, password masked.
    pub shown: String,
    pub timeout: Duration,
}

impl Origin {
    /// The engine's error for a failed Redis command of operation `op`; `key` names the key the
    /// command was about, if one.
    pub(crate) fn error(&self, op: &'static str, err: &FredError, key: Option<&str>) -> Error {
        let details = &plain_details(err);
        let shown = &self.shown;
        let first = details.split_whitespace().next().unwrap_or("");
        let (kind, detail) = match (err.kind(), first) {
            _ if acl_refusal(details) => (
                ErrorKind::PermissionDenied,
                format!("Redis at {shown} refused the command: {details}"),
            ),
            (_, "OOM") => (
                ErrorKind::NoSpace,
                format!("Redis at {shown} reached its maxmemory limit"),
            ),
            (_, "WRONGTYPE") => (ErrorKind::Io, wrong_type(key)),
            (_, "READONLY") => (
                ErrorKind::Unavailable,
                format!("Redis at {shown} is a read-only replica"),
            ),
            (_, "LOADING" | "BUSY" | "MASTERDOWN" | "CLUSTERDOWN" | "TRYAGAIN") => (
                ErrorKind::Unavailable,
                format!("Redis at {shown} is not ready: {details}"),
            ),
            (FredKind::Timeout, _) => (
                ErrorKind::Unavailable,
                format!(
                    "Redis at {shown} did not answer within {}",
                    secs(self.timeout)
                ),
            ),
            (FredKind::IO | FredKind::Canceled | FredKind::Routing | FredKind::Cluster, _) => (
                ErrorKind::Unavailable,
                format!("lost the connection to Redis at {shown}: {details}"),
            ),
            (FredKind::Auth, _) => (
                ErrorKind::PermissionDenied,
                format!("Redis at {shown} refused the credentials: {details}"),
            ),
            _ => (ErrorKind::Io, format!("Redis at {shown}: {details}")),
        };
        Error::new(kind, op).with_detail(detail)
    }

    /// The engine's error for a script's `{'err', code, key}` reply.
    pub(crate) fn script_error(&self, op: &'static str, code: &str, key: &str) -> Error {
        let kind = match code {
            "ENOENT" => ErrorKind::NotFound,
            "EEXIST" => ErrorKind::AlreadyExists,
            "EISDIR" => ErrorKind::IsADirectory,
            "ENOTDIR" => ErrorKind::NotADirectory,
            "ENOTEMPTY" => ErrorKind::DirectoryNotEmpty,
            "EBUSY" => ErrorKind::Busy,
            "EINVAL" => ErrorKind::InvalidInput,
            "WRONGTYPE" => {
                return Error::new(ErrorKind::Io, op).with_detail(wrong_type(Some(key)));
            }
            "CORRUPT" => {
                return Error::new(ErrorKind::Io, op).with_detail(format!(
                    "Redis key {key} holds an entry MAVFS cannot read; was it written by hand?"
                ));
            }
            "CHANGED" => return Error::new(ErrorKind::Io, op).with_detail(CHANGED),
            "EXPIRED" => {
                return Error::new(ErrorKind::Io, op).with_detail(
                    "the staged data was swept as abandoned before it could be committed",
                );
            }
            other => {
                return Error::new(ErrorKind::Io, op).with_detail(format!(
                    "unexpected reply {other:?} from Redis at {}",
                    self.shown
                ));
            }
        };
        Error::new(kind, op)
    }

    /// An error for a reply that does not have the shape the scripts give.
    pub(crate) fn bad_reply(&self, op: &'static str, what: &str) -> Error {
        Error::new(ErrorKind::Io, op).with_detail(format!(
            "unexpected reply from Redis at {}: {what}",
            self.shown
        ))
    }
}

/// fred's details in plain words: an I/O error arrives as its `Debug` form
/// (`Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }`), of which only the
/// message is for users.
pub(crate) fn plain_details(err: &FredError) -> String {
    let details = err.details();
    if let Some(start) = details.find("message: \"") {
        let rest = &details[start + "message: \"".len()..];
        if let Some(end) = rest.find('"') {
            return rest[..end].to_string();
        }
    }
    if let Some(start) = details.find("kind: ") {
        let rest = &details[start + "kind: ".len()..];
        let end = rest.find([',', ' ', '}', ')']).unwrap_or(rest.len());
        return rest[..end].to_string();
    }
    details.to_string()
}

/// Whether a reply is an ACL refusal: `NOPERM` from a command, or, from inside a script, the
/// `ERR` Redis 6 and 7 give instead (`The user executing the script can't run this command`):
/// either way the user lacks a permission, which is `Permission denied`, not an I/O error.
fn acl_refusal(details: &str) -> bool {
    details.split_whitespace().next() == Some("NOPERM")
        || details.contains("NOPERM")
        || details.contains("The user executing the script can't")
        || details.contains("has no permissions to")
}

/// Whether the outcome of a command that failed this way is unknown: it may have run.
pub(crate) fn is_ambiguous(err: &Error) -> bool {
    err.kind() == ErrorKind::Unavailable
}

fn wrong_type(key: Option<&str>) -> String {
    match key {
        Some(key) => format!(
            "Redis key {key} holds a value of the wrong type: it is in the MAVFS namespace \
             but was not written by MAVFS"
        ),
        None => "a Redis key of the namespace holds a value of the wrong type".to_string(),
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
