//! `DiskStore`: the sandboxed host-directory tier.
//!
//! The store keeps three rules, the files below say where:
//!
//! - **The sandbox** (`sandbox`). The store holds one [`cap_std::fs::Dir`] opened on its root and
//!   reaches the host only through relative operations on it (store path `/a/b` is `a/b`, `/` is
//!   `.`), so cap-std (openat2 `RESOLVE_BENEATH` on Linux) refuses every resolution that would
//!   leave the root, whatever symlinks or races appear inside. The only ambient access is opening
//!   the root itself in [`DiskStore::open`]. Paths through relative symlinks that stay inside are
//!   followed; listings show every symlink as [`EntryKind::Symlink`], so no tree walk follows one
//!   (a link to an ancestor would never end). A symlink that leads outside or dangles is stat'ed as
//!   a symlink, removed and renamed as a link, and refused for reading and writing
//!   (`PermissionDenied` when it leads outside). FIFOs, sockets and devices are listed as
//!   [`EntryKind::Special`] and never opened in a way that could block. A regular file with
//!   more than one hard link is read like any other (the root's owner made the link), but never
//!   modified in place: `touch` of one is refused, since another link may lie outside the root.
//!   Every metadata operation first checks that the root is still the directory opened: one
//!   deleted, moved away or replaced under a running engine is an error naming it.
//! - **Staging** (`staging`, `session`). Every write and copy goes to a temp file in the store's
//!   own directory under `.mavfs-staging` at the root (on the same filesystem, so that commit is a
//!   rename). `open` sweeps whatever a killed process left there, and never what a live one is
//!   writing (`session`), so several processes may share a root. The name is reserved: hidden from
//!   `list` and `usage`, refused as a path.
//! - **Atomic commit** (`commit`). [`Store::start_commit`] renames the staged file onto its
//!   destination, which rename(2) does atomically: a reader sees the old file or the new one whole,
//!   and a reader that opened the old file keeps reading it. Writing onto a symlink that stays
//!   inside the root replaces its target, as `>` and `cp` do; the link itself stays.
//!
//! Short metadata syscalls run inline in the store's actor; directory walks and all file data
//! (reads, writes, copies, fsync) run on tokio's blocking pool, so that neither the actor's mailbox
//! nor the async runtime waits on the disk. A commit runs wholly outside the actor
//! ([`Store::start_commit`]): its checks, a small file's data and the rename take one blocking job
//! on the store's lane (`lane`), and so does an open for reading ([`Store::start_open_read`]), with
//! the whole of a small file read. A small file thus costs one trip to a blocking thread each way,
//! and the lane's thread lingers between jobs so that the next one does not wait for a wake-up.
//!
//! **Usage** (`usage`): `stats` answers from counters the store keeps, never from a walk: a first
//! count on a thread of its own when the store opens (open does not wait for it), then every
//! change the store makes itself, and a rescan every [`DiskOptions::rescan`] for changes made
//! outside MAVFS. The capacity figures are one statvfs of the root.
//!
//! A batch of small files ([`Store::start_read_files`], [`Store::start_write_files`]) is one job on
//! the lane: each file opened and read, or staged, written and renamed, as its one-file form would,
//! without a trip to a blocking thread per file. Read streams reuse their chunk buffers
//! (`buffers`).
//!
//! Files, one job each:
//!
//! - `disk.rs` (this file): [`DiskStore`], its [`DiskOptions`] and [`DiskStore::open`].
//! - `ops`: `impl Store for DiskStore`: each operation of the contract, and which part of it runs
//!   in the actor, on the lane or on the blocking pool.
//! - `sandbox`: store paths resolved inside the root: relative host paths, parents opened through
//!   cap-std, where a write lands, regular files opened without blocking.
//! - `reader`: opening for reading: chunk streams, small files read whole.
//! - `commit`: the store's side of a write: checking and opening it, and making a staged file
//!   visible by rename (and fsync).
//! - `staging`: temp files, the [`DiskWriter`] that fills them, the sealed [`DiskStaged`].
//! - `session`: the store's own staging directory, and the sweep of dead ones.
//! - `walk`: directory walks (`list`, and the counts of `usage`).
//! - `usage`: the usage counters, what keeps them exact, and the scanner thread that rescans.
//! - `lane`: the lingering blocking thread that runs opens and commits.
//! - `buffers`: the reused chunk buffers of read streams.
//! - `errors`: host failures as the engine's errors, with their path.
//!
//! [`EntryKind::Symlink`]: crate::store::EntryKind::Symlink
//! [`EntryKind::Special`]: crate::store::EntryKind::Special
//! [`Store::start_commit`]: crate::store::Store::start_commit
//! [`Store::start_open_read`]: crate::store::Store::start_open_read
//! [`Store::start_read_files`]: crate::store::Store::start_read_files
//! [`Store::start_write_files`]: crate::store::Store::start_write_files

mod buffers;
mod commit;
mod errors;
mod lane;
mod lister;
mod ops;
mod reader;
mod sandbox;
mod session;
mod staging;
mod usage;
mod walk;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cap_std::fs::{Dir, Metadata, MetadataExt as _};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::DEFAULT_CHUNK_SIZE;

use self::buffers::Buffers;
use self::lane::Lane;
use self::sandbox::file_id;
use self::session::Session;
pub use self::staging::{DiskStaged, DiskWriter};
pub use self::usage::RESCAN_EVERY;
use self::usage::{Counters, Scanner};

/// The staging directory at the store's root. Reserved: no store path may name it.
const STAGING: &str = ".mavfs-staging";

/// Threads of the store's lane (see [`lane`]). One: the commits of a store serialise in the
/// kernel on its staging directory anyway, and a second thread only contends for it, while a
/// single lingering thread takes the next job without a wake-up.
const LANE_WIDTH: usize = 1;

/// Options of a [`DiskStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskOptions {
    /// Flush staged data to the device before commit, and the destination directory after it,
    /// so that a committed file survives a power loss.
    pub fsync: bool,
    /// Bytes per chunk of a read stream.
    pub chunk_size: usize,
    /// How often the usage counters are counted again from the tree, to pick up changes made
    /// outside MAVFS (the store's own changes count at once); `None`: never after the first
    /// count. Default [`RESCAN_EVERY`]; tests make it short.
    pub rescan: Option<Duration>,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            fsync: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            rescan: Some(RESCAN_EVERY),
        }
    }
}

/// A store over a host directory, sandboxed to it. Create it with [`DiskStore::open`] and give it
/// to a backend actor.
#[derive(Debug)]
pub struct DiskStore {
    root: Arc<Dir>,
    /// This store's own staging directory (see [`session`]).
    staging: Arc<Session>,
    /// Device and inode of the root, to recognise it when reached through a symlink.
    root_id: (u64, u64),
    host_root: PathBuf,
    /// `host_root` made absolute at open, so that the check of the root ([`Self::check_root`])
    /// finds it whatever the process's directory is later.
    root_path: PathBuf,
    options: DiskOptions,
    lane: Lane,
    /// Buffers of chunk size for read streams, reused (see [`buffers`]).
    buffers: Buffers,
    /// The usage counters and the thread that rescans them (see [`usage`]); dropped with the
    /// store, it stops the thread.
    scanner: Scanner,
}

impl DiskStore {
    /// Opens the host directory `root` as a store, creates its staging directory, sweeps
    /// whatever a killed process left in it, and starts counting its usage in the background.
    ///
    /// Errors: `NotFound` when `root` is missing, `NotADirectory` when it is not a directory,
    /// as the host reports otherwise; the detail names the host path.
    pub fn open(root: &Path, options: DiskOptions) -> Result<DiskStore> {
        const OP: &str = "open";
        let host_error = |e: io::Error| {
            let err = Error::from_io(OP, e);
            // The kind's reason already says what is wrong, except for an unclassified failure.
            let detail = match err.detail() {
                Some(d) if err.kind() == ErrorKind::Io => {
                    format!("disk root {}: {d}", root.display())
                }
                _ => format!("disk root {}", root.display()),
            };
            err.with_detail(detail)
        };
        let md = std::fs::metadata(root).map_err(host_error)?;
        if !md.is_dir() {
            return Err(Error::new(ErrorKind::NotADirectory, OP)
                .with_detail(format!("disk root {} is not a directory", root.display())));
        }
        let dir = Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(host_error)?;
        let root_id = file_id(&dir.dir_metadata().map_err(host_error)?);
        let staging = Session::open(&dir).map_err(host_error)?;
        let dir = Arc::new(dir);
        let scanner = Scanner::start(dir.clone(), options.rescan).map_err(host_error)?;
        Ok(DiskStore {
            root: dir,
            scanner,
            staging: Arc::new(staging),
            root_id,
            host_root: root.to_path_buf(),
            root_path: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
            lane: Lane::new(LANE_WIDTH),
            buffers: Buffers::new(options.chunk_size.max(1)),
            options: DiskOptions {
                chunk_size: options.chunk_size.max(1),
                ..options
            },
        })
    }

    /// The host directory this store serves.
    pub fn host_root(&self) -> &Path {
        &self.host_root
    }

    /// Checks that the root is still there and still the directory the store opened, so that a
    /// root deleted, moved away or replaced under a running engine is reported as such, naming
    /// it, rather than shown as an empty mount (the store's handle on a deleted directory lists
    /// nothing and takes no new entries) or written into out of sight. Errors: `NotFound` when it
    /// is gone, `Unavailable` when another directory took its place. Two metadata calls: the
    /// metadata operations pay them, the data paths (reads, commits, batches) do not.
    fn check_root(&self, op: &'static str, path: &VPath) -> Result<()> {
        let shown = self.host_root.display();
        let gone = || {
            Error::new(ErrorKind::NotFound, op)
                .with_path(path)
                .with_detail(format!(
                    "the disk root {shown} was deleted or moved away while MAVFS was running"
                ))
        };
        // A deleted directory keeps its handle, with no links left.
        if self.root.dir_metadata().is_ok_and(|md| md.nlink() == 0) {
            return Err(gone());
        }
        match std::fs::metadata(&self.root_path).map(Metadata::from_just_metadata) {
            Ok(md) if file_id(&md) == self.root_id => Ok(()),
            Ok(_) => Err(Error::new(ErrorKind::Unavailable, op)
                .with_path(path)
                .with_detail(format!(
                    "the disk root {shown} was replaced by another directory while MAVFS was \
                     running; restart MAVFS to use the new one"
                ))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(gone()),
            // Unreadable for another reason: the operation itself says what is wrong.
            Err(_) => Ok(()),
        }
    }

    /// The usage counters, which every operation that changes the tree keeps current.
    fn counters(&self) -> &Arc<Counters> {
        self.scanner.counters()
    }
}
