//! The daemon's Unix socket: where it lives, how a daemon claims it, who may use it.
//!
//! This module owns the socket file, its directory and its lock file; what travels over the
//! socket belongs to the protocol. The rules (DESIGN.md section 8, STACK.md "Stale socket recipe"):
//!
//! - **Where.** `--socket PATH` or `MAVFS_SOCKET` ([`socket_from_env`]) when given, else
//!   `$XDG_RUNTIME_DIR/mavfs/mavfs.sock`, else `/tmp/mavfs-$UID/mavfs.sock` ([`default_socket_path`]).
//!   An empty or relative `$XDG_RUNTIME_DIR` counts as unset, as the XDG spec says.
//! - **Directory.** A missing directory is created mode 0700. An existing one is used only when it
//!   is a directory, belongs to us (or root) and is not writable by group or others; otherwise
//!   [`bind`] refuses and says which of these failed.
//! - **One daemon per socket.** [`bind`] takes an exclusive non-blocking `flock` on
//!   `<socket>.lock` and writes its pid there; when another process holds it, a daemon is running
//!   and the pid it wrote is reported. The lock file is never removed: unlinking it would let two
//!   daemons each lock a different file.
//! - **Stale sockets.** Whatever is at the socket path is `lstat`ed. Not a socket: refused and never
//!   deleted. A socket: probed with a non-blocking connect. Accepted: a live daemon (refused, its
//!   pid from `SO_PEERCRED`). `ECONNREFUSED`, and only that, proves it stale: it is removed. Any
//!   other error: refused, saying why, nothing removed.
//! - **Modes.** The socket is set to 0600 as soon as it is bound (the 0700 directory covers the
//!   moment before).
//! - **Cleanup.** Dropping (or [`Listening::close`]) removes the socket only while the path still
//!   holds the very socket it bound (same device and inode), then clears the pid and releases the
//!   lock.
//! - **Peers.** [`peer_allowed`]: the `SO_PEERCRED` uid must be ours (effective uid) or root.
//! - **Clients.** [`connect`] reports a missing daemon, a refused permission and anything else in
//!   the user's terms.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
use tokio::net::{UnixListener, UnixStream};

/// The environment variable naming the socket to attach to (or serve on).
pub const SOCKET_ENV: &str = "MAVFS_SOCKET";

const SOCKET_NAME: &str = "mavfs.sock";
const DIR_MODE: u32 = 0o700;
const SOCKET_MODE: u32 = 0o600;
const LOCK_MODE: u32 = 0o600;

/// The socket used when neither `--socket` nor `MAVFS_SOCKET` names one:
/// `$XDG_RUNTIME_DIR/mavfs/mavfs.sock`, else `/tmp/mavfs-$UID/mavfs.sock`.
pub fn default_socket_path() -> PathBuf {
    socket_path_from(
        std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
        rustix::process::getuid().as_raw(),
    )
}

/// [`default_socket_path`] without the environment: `xdg_runtime_dir` is used when it is an
/// absolute path; empty, relative or absent, the per-uid directory under `/tmp` is used.
pub fn socket_path_from(xdg_runtime_dir: Option<&OsStr>, uid: u32) -> PathBuf {
    match xdg_runtime_dir.map(Path::new) {
        Some(dir) if dir.is_absolute() => dir.join("mavfs").join(SOCKET_NAME),
        _ => PathBuf::from(format!("/tmp/mavfs-{uid}")).join(SOCKET_NAME),
    }
}

/// The socket named by `MAVFS_SOCKET`, when it is set and not empty.
pub fn socket_from_env() -> Option<PathBuf> {
    socket_from_var(std::env::var_os(SOCKET_ENV))
}

/// [`socket_from_env`] without the environment: an empty value counts as unset.
pub fn socket_from_var(value: Option<OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The lock file guarding `socket`: the same path with `.lock` appended.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Why [`bind`] did not give a listening socket. Displayed in the user's terms.
#[derive(Debug)]
pub enum BindError {
    /// Another daemon holds the lock or answers on the socket; `pid` when it could be learnt.
    Running {
        /// The socket path.
        path: PathBuf,
        /// The running daemon's pid, from the lock file or `SO_PEERCRED`.
        pid: Option<u32>,
    },
    /// Something other than a socket is at the path; it was left alone.
    NotASocket(PathBuf),
    /// The socket's directory is not a private directory of ours.
    UnsafeDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure: `what` says what was being done, in full.
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Running {
                path,
                pid: Some(pid),
            } => {
                write!(
                    f,
                    "a daemon is already running on {} (pid {pid})",
                    path.display()
                )
            }
            BindError::Running { path, pid: None } => {
                write!(f, "a daemon is already running on {}", path.display())
            }
            BindError::NotASocket(path) => {
                write!(
                    f,
                    "{} exists and is not a socket; not touching it",
                    path.display()
                )
            }
            BindError::UnsafeDir { dir, reason } => {
                write!(
                    f,
                    "refusing to put the socket in {}: {reason}",
                    dir.display()
                )
            }
            BindError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error(what: String, source: impl Into<io::Error>) -> BindError {
    BindError::Io {
        what,
        source: source.into(),
    }
}

/// A bound, listening daemon socket and the lock that makes it ours.
///
/// Dropping it (or [`Listening::close`]) removes the socket file, if the path still holds the
/// socket this bound, and releases the lock.
#[derive(Debug)]
pub struct Listening {
    /// Accept connections here; check each with [`peer_allowed`].
    pub listener: UnixListener,
    path: PathBuf,
    dev: u64,
    ino: u64,
    // Declared after `listener`, so the lock is released only once the socket is closed.
    lock: File,
    closed: bool,
}

impl Listening {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket and releases the lock now, reporting a failure to remove the socket
    /// (dropping does the same and logs it).
    pub fn close(mut self) -> io::Result<()> {
        self.cleanup()
    }

    fn cleanup(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        // The pid goes first: once the socket is gone, a reader of the lock file must not
        // believe this process still serves it.
        let _ = self.lock.set_len(0);
        match fs::symlink_metadata(&self.path) {
            Ok(meta)
                if meta.file_type().is_socket()
                    && meta.dev() == self.dev
                    && meta.ino() == self.ino =>
            {
                match fs::remove_file(&self.path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            // Gone, or replaced by someone else's file: not ours to remove.
            _ => Ok(()),
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!("cannot remove the socket {}: {e}", self.path.display());
        }
    }
}

/// Claims `path` for a daemon and listens on it, following the module's rules: private
/// directory (created 0700 when missing), exclusive lock on `<path>.lock` holding our pid, stale
/// socket removed only on `ECONNREFUSED`, socket mode 0600.
///
/// Must be called within a Tokio runtime (as [`UnixListener::bind`]).
///
/// # Errors
///
/// - [`BindError::Running`] when a daemon holds the lock or answers on the socket.
/// - [`BindError::NotASocket`] when something else is at `path` (left as it is).
/// - [`BindError::UnsafeDir`] when the directory exists but is not a directory, belongs to
///   another user or is writable by group or others.
/// - [`BindError::Io`] for anything else, including a socket that neither answers nor refuses.
pub fn bind(path: &Path) -> Result<Listening, BindError> {
    let dir = socket_dir(path)?;
    prepare_dir(&dir)?;
    let lock = take_lock(path)?;
    // Giving up from here, the lock file must not keep naming us once the lock is released.
    let give_up = |e: BindError| {
        let _ = lock.set_len(0);
        e
    };
    clear_stale(path).map_err(give_up)?;
    let listener = UnixListener::bind(path)
        .map_err(|e| give_up(io_error(format!("cannot listen on {}", path.display()), e)))?;
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            let _ = fs::remove_file(path);
            return Err(give_up(io_error(
                format!("cannot inspect the new socket {}", path.display()),
                e,
            )));
        }
    };
    let listening = Listening {
        listener,
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
        lock,
        closed: false,
    };
    // On failure `listening` drops here and takes the socket with it.
    fs::set_permissions(path, Permissions::from_mode(SOCKET_MODE)).map_err(|e| {
        io_error(
            format!("cannot set mode 0600 on the socket {}", path.display()),
            e,
        )
    })?;
    Ok(listening)
}

fn socket_dir(path: &Path) -> Result<PathBuf, BindError> {
    if path.file_name().is_none() {
        return Err(io_error(
            format!("{} does not name a socket file", path.display()),
            io::ErrorKind::InvalidInput,
        ));
    }
    Ok(match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

fn prepare_dir(dir: &Path) -> Result<(), BindError> {
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|e| {
                    io_error(
                        format!("cannot create the socket directory {}", dir.display()),
                        e,
                    )
                })?;
            // Checked like an existing one: another process may have made it first.
            fs::metadata(dir).map_err(|e| {
                io_error(
                    format!("cannot inspect the socket directory {}", dir.display()),
                    e,
                )
            })?
        }
        Err(e) => {
            return Err(io_error(
                format!("cannot inspect the socket directory {}", dir.display()),
                e,
            ));
        }
    };
    check_dir(dir, &meta)
}

fn check_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), BindError> {
    let refuse = |reason: String| {
        Err(BindError::UnsafeDir {
            dir: dir.to_path_buf(),
            reason,
        })
    };
    if !meta.is_dir() {
        return refuse("it is not a directory".to_string());
    }
    let ours = rustix::process::geteuid().as_raw();
    if meta.uid() != ours && meta.uid() != 0 {
        return refuse(format!(
            "it belongs to uid {}, not to us (uid {ours})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "group and others",
        (true, false) => "its group",
        (false, true) => "others",
        (false, false) => return Ok(()),
    };
    refuse(format!(
        "it is writable by {who} (mode {mode:04o}); use a directory only you can write to"
    ))
}

/// Locks `<path>.lock` and writes our pid into it; a held lock means a running daemon.
fn take_lock(path: &Path) -> Result<File, BindError> {
    let lock_path = lock_path(path);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(LOCK_MODE)
        .open(&lock_path)
        .map_err(|e| {
            io_error(
                format!("cannot open the lock file {}", lock_path.display()),
                e,
            )
        })?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == Errno::WOULDBLOCK => {
            return Err(BindError::Running {
                path: path.to_path_buf(),
                pid: read_pid(&mut file),
            });
        }
        Err(e) => {
            return Err(io_error(format!("cannot lock {}", lock_path.display()), e));
        }
    }
    file.set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(|e| {
            io_error(
                format!("cannot write our pid to {}", lock_path.display()),
                e,
            )
        })?;
    Ok(file)
}

/// The pid a lock holder wrote, if it has written one yet.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Makes way for a new socket at `path`, holding the lock: nothing there, or a stale socket
/// (removed). A live socket, a non-socket or an unclear answer is refused.
fn clear_stale(path: &Path) -> Result<(), BindError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(io_error(format!("cannot inspect {}", path.display()), e));
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(path.to_path_buf()));
    }
    match probe(path) {
        Ok(pid) => Err(BindError::Running {
            path: path.to_path_buf(),
            pid,
        }),
        Err(e) if e == Errno::CONNREFUSED => match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(
                format!("cannot remove the stale socket {}", path.display()),
                e,
            )),
            _ => Ok(()),
        },
        Err(e) if e == Errno::AGAIN => Err(io_error(
            format!(
                "a daemon on {} is not accepting connections (its queue is full); not touching it",
                path.display()
            ),
            e,
        )),
        Err(e) => Err(io_error(
            format!(
                "cannot tell whether a daemon is listening on {}; not touching it",
                path.display()
            ),
            e,
        )),
    }
}

/// Connects to the socket at `path` without blocking (a Unix socket connect either completes at
/// once, is refused, or reports a full queue) and returns the listener's pid when known.
fn probe(path: &Path) -> rustix::io::Result<Option<u32>> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    rustix::net::connect(&fd, &addr)?;
    Ok(rustix::net::sockopt::socket_peercred(&fd)
        .ok()
        .and_then(|cred| u32::try_from(cred.pid.as_raw_pid()).ok()))
}

/// Whether the peer of an accepted connection may use the daemon: its `SO_PEERCRED` uid must be
/// our effective uid, or root.
///
/// # Errors
///
/// A message naming the peer's uid when it is someone else, or saying that its credentials could
/// not be read; the caller sends it in an error frame and closes the connection.
pub fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    let cred = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the credentials of the peer: {e}"))?;
    uid_allowed(cred.uid(), rustix::process::geteuid().as_raw())
}

fn uid_allowed(peer: u32, ours: u32) -> Result<(), String> {
    if peer == ours || peer == 0 {
        Ok(())
    } else {
        Err(format!(
            "uid {peer} may not use this daemon: it serves uid {ours} (and root) only"
        ))
    }
}

/// Why [`connect`] failed. Displayed in the user's terms.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing at the path, or nothing listening there (`ENOENT`, `ECONNREFUSED`).
    NoDaemon(PathBuf),
    /// The socket or its directory is not ours to use (`EACCES`, `EPERM`).
    PermissionDenied(PathBuf),
    /// Anything else.
    Io {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NoDaemon(path) => write!(
                f,
                "no daemon is listening on {} (is `mavfs serve` running?)",
                path.display()
            ),
            ConnectError::PermissionDenied(path) => write!(
                f,
                "permission denied connecting to {}: the socket or its directory belongs to another user",
                path.display()
            ),
            ConnectError::Io { path, source } => {
                write!(
                    f,
                    "cannot connect to the daemon on {}: {source}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Connects to the daemon's socket at `path`.
///
/// # Errors
///
/// [`ConnectError::NoDaemon`] when nothing is there or nothing listens,
/// [`ConnectError::PermissionDenied`] when the socket is not ours to use, [`ConnectError::Io`]
/// otherwise.
pub async fn connect(path: &Path) -> Result<UnixStream, ConnectError> {
    UnixStream::connect(path).await.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            ConnectError::NoDaemon(path.to_path_buf())
        }
        io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied(path.to_path_buf()),
        _ => ConnectError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn is_socket(path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
    }

    #[test]
    fn socket_path_is_under_xdg_runtime_dir_when_set() {
        assert_eq!(
            socket_path_from(Some(OsStr::new("/run/user/1000")), 1000),
            PathBuf::from("/run/user/1000/mavfs/mavfs.sock")
        );
    }

    #[test]
    fn socket_path_falls_back_to_tmp_per_uid() {
        let fallback = PathBuf::from("/tmp/mavfs-1000/mavfs.sock");
        assert_eq!(socket_path_from(None, 1000), fallback);
        assert_eq!(socket_path_from(Some(OsStr::new("")), 1000), fallback);
        assert_eq!(socket_path_from(Some(OsStr::new("run")), 1000), fallback);
    }

    #[test]
    fn socket_env_counts_only_when_not_empty() {
        assert_eq!(socket_from_var(None), None);
        assert_eq!(socket_from_var(Some(OsString::new())), None);
        assert_eq!(
            socket_from_var(Some(OsString::from("/x/d.sock"))),
            Some(PathBuf::from("/x/d.sock"))
        );
        assert_eq!(
            lock_path(Path::new("/x/d.sock")),
            PathBuf::from("/x/d.sock.lock")
        );
    }

    #[test]
    fn only_our_uid_and_root_are_allowed() {
        assert!(uid_allowed(1000, 1000).is_ok());
        assert!(uid_allowed(0, 1000).is_ok());
        let err = uid_allowed(1001, 1000).unwrap_err();
        assert!(err.contains("uid 1001"), "{err}");
    }

    #[tokio::test]
    async fn bind_creates_a_private_dir_and_socket_and_records_our_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/mavfs/mavfs.sock");
        let listening = bind(&path).unwrap();
        assert_eq!(listening.path(), path);
        assert_eq!(mode(&tmp.path().join("run")), 0o700);
        assert_eq!(mode(&tmp.path().join("run/mavfs")), 0o700);
        assert!(is_socket(&path));
        assert_eq!(mode(&path), 0o600);
        let pid = fs::read_to_string(lock_path(&path)).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
    }

    #[tokio::test]
    async fn a_second_bind_on_a_live_socket_names_the_running_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        let _first = bind(&path).unwrap();
        let err = bind(&path).unwrap_err();
        assert!(
            matches!(&err, BindError::Running { pid: Some(pid), .. } if *pid == std::process::id()),
            "{err:?}"
        );
        let shown = err.to_string();
        assert!(
            shown.starts_with("a daemon is already running on"),
            "{shown}"
        );
        assert!(
            shown.ends_with(&format!("(pid {})", std::process::id())),
            "{shown}"
        );
        assert!(is_socket(&path), "the live socket stays");
    }

    #[tokio::test]
    async fn a_live_socket_without_the_lock_is_not_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = bind(&path).unwrap_err();
        assert!(
            matches!(&err, BindError::Running { pid: Some(pid), .. } if *pid == std::process::id()),
            "{err:?}"
        );
        assert!(is_socket(&path));
    }

    #[tokio::test]
    async fn a_stale_socket_is_recovered() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(is_socket(&path), "the dead listener leaves its file behind");
        assert!(matches!(
            connect(&path).await,
            Err(ConnectError::NoDaemon(_))
        ));
        let listening = bind(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        let (client, accepted) = tokio::join!(connect(&path), listening.listener.accept());
        client.unwrap();
        accepted.unwrap();
    }

    #[tokio::test]
    async fn a_regular_file_at_the_path_is_refused_and_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        fs::write(&path, "precious").unwrap();
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, BindError::NotASocket(_)), "{err:?}");
        assert_eq!(fs::read_to_string(lock_path(&path)).unwrap(), "");
        assert_eq!(
            err.to_string(),
            format!(
                "{} exists and is not a socket; not touching it",
                path.display()
            )
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
    }

    #[tokio::test]
    async fn dropping_removes_the_socket_and_releases_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        drop(bind(&path).unwrap());
        assert!(!path.exists());
        assert_eq!(fs::read_to_string(lock_path(&path)).unwrap(), "");
        bind(&path).unwrap().close().unwrap();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn dropping_leaves_a_socket_that_replaced_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        let listening = bind(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(listening);
        assert!(is_socket(&path));
    }

    #[tokio::test]
    async fn a_group_writable_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o770)).unwrap();
        let path = dir.join("mavfs.sock");
        let err = bind(&path).unwrap_err();
        assert!(matches!(err, BindError::UnsafeDir { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("writable by its group (mode 0770)"),
            "{shown}"
        );
        assert!(!path.exists() && !lock_path(&path).exists());
    }

    #[tokio::test]
    async fn a_file_where_the_dir_should_be_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("notadir");
        fs::write(&dir, "").unwrap();
        let err = bind(&dir.join("mavfs.sock")).unwrap_err();
        assert!(err.to_string().contains("it is not a directory"), "{err}");
    }

    #[tokio::test]
    async fn a_connection_from_our_own_process_is_allowed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        let listening = bind(&path).unwrap();
        let (client, accepted) = tokio::join!(connect(&path), listening.listener.accept());
        let (server_side, _) = accepted.unwrap();
        peer_allowed(&server_side).unwrap();
        peer_allowed(&client.unwrap()).unwrap();
    }

    #[tokio::test]
    async fn connecting_without_a_daemon_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("mavfs.sock");
        let err = connect(&path).await.unwrap_err();
        assert!(matches!(err, ConnectError::NoDaemon(_)), "{err:?}");
        assert!(
            err.to_string().starts_with("no daemon is listening on"),
            "{err}"
        );
    }
}
