//! `DiskStore`: the sandboxed host-directory tier.
//!
//! This module owns three things:
//!
//! - **The sandbox.** The store holds one [`cap_std::fs::Dir`] opened on its root and reaches the
//!   host only through relative operations on it (store path `/a/b` is `a/b`, `/` is `.`), so
//!   cap-std (openat2 `RESOLVE_BENEATH` on Linux) refuses every resolution that would leave the
//!   root, whatever symlinks or races appear inside. The only ambient access is opening the root
//!   itself in [`DiskStore::open`]. Paths through relative symlinks that stay inside are
//!   followed; listings show every symlink as [`EntryKind::Symlink`], so no tree walk follows one
//!   (a link to an ancestor would never end). A symlink that leads outside or dangles is stat'ed
//!   as a symlink, removed and renamed as a link, and refused for reading and writing
//!   (`PermissionDenied` when it leads outside).
//!   FIFOs, sockets and devices are listed as [`EntryKind::Special`] and never opened in a way
//!   that could block.
//! - **Staging.** Every write and copy goes to a temp file in `.mavfs-staging` at the root (on the
//!   same filesystem, so that commit is a rename). `open` sweeps whatever a killed process left
//!   there. The name is reserved: hidden from `list` and `usage`, refused as a path.
//! - **Atomic commit.** [`Store::commit`] renames the staged file onto its destination, which
//!   rename(2) does atomically: a reader sees the old file or the new one whole, and a reader that
//!   opened the old file keeps reading it. Writing onto a symlink that stays inside the root
//!   replaces its target, as `>` and `cp` do; the link itself stays.
//!
//! Short metadata syscalls run inline in the store's actor; directory walks and all file data
//! (reads, writes, copies, fsync) run on tokio's blocking pool, so that neither the actor's
//! mailbox nor the async runtime waits on the disk.

mod staging;
mod walk;

use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cap_fs_ext::{DirExt, OpenOptionsMaybeDirExt};
use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, OpenOptionsExt};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use rustix::fs::{AtFlags, OFlags, Timespec, Timestamps};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    Capability, DEFAULT_CHUNK_SIZE, DirEntry, EntryKind, FileReader, Meta, Store, Usage, WriteMode,
};

use self::staging::TempFile;
pub use self::staging::{DiskStaged, DiskWriter};

/// The staging directory at the store's root. Reserved: no store path may name it.
const STAGING: &str = ".mavfs-staging";

/// Options of a [`DiskStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskOptions {
    /// Flush staged data to the device before commit, and the destination directory after it,
    /// so that a committed file survives a power loss.
    pub fsync: bool,
    /// Bytes per chunk of a read stream.
    pub chunk_size: usize,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            fsync: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// A store over a host directory, sandboxed to it. Create it with [`DiskStore::open`] and give it
/// to a backend actor.
#[derive(Debug)]
pub struct DiskStore {
    root: Arc<Dir>,
    staging: Arc<Dir>,
    /// Device and inode of the root, to recognise it when reached through a symlink.
    root_id: (u64, u64),
    host_root: PathBuf,
    options: DiskOptions,
}

/// Where a write of a store path lands, as checked by [`DiskStore::write_target`].
struct Target {
    /// The path to rename onto: the store path itself, or where its symlink leads (inside the root).
    rel: PathBuf,
    /// The regular file that the write replaces, if any.
    existing: Option<Metadata>,
}

/// The relative host path of a store path. Errors: `PermissionDenied` for the staging directory.
///
/// A [`VPath`] has no `.`, `..` or empty components, so this is a plain string change; cap-std
/// refuses whatever its symlinks might try.
fn rel_path(op: &'static str, path: &VPath) -> Result<PathBuf> {
    match path.components().next() {
        None => Ok(PathBuf::from(".")),
        Some(STAGING) => Err(reserved(op, path)),
        Some(_) => Ok(PathBuf::from(&path.as_str()[1..])),
    }
}

fn reserved(op: &'static str, path: &VPath) -> Error {
    Error::new(ErrorKind::PermissionDenied, op)
        .with_path(path)
        .with_detail("reserved name")
}

/// A converter of host errors for `op` on `path`.
fn io_error<'a>(op: &'static str, path: &'a VPath) -> impl Fn(io::Error) -> Error + 'a {
    move |e| Error::from_io(op, e).with_path(path)
}

fn error(kind: ErrorKind, op: &'static str, path: &VPath) -> Error {
    Error::new(kind, op).with_path(path)
}

/// A failed blocking task: it panicked, or the runtime is shutting down.
fn join_error(op: &'static str, path: &VPath, err: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Io, op)
        .with_path(path)
        .with_detail(format!("background task failed: {err}"))
}

/// `name` below the relative directory `rel` (`.` stays out of the result).
fn child(rel: &Path, name: impl AsRef<Path>) -> PathBuf {
    if rel == Path::new(".") {
        name.as_ref().to_path_buf()
    } else {
        rel.join(name)
    }
}

/// The parent directory and the last name of a relative path (`.` for both at the root).
fn split_parent(rel: &Path) -> (&Path, &OsStr) {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) if parent.as_os_str().is_empty() => (Path::new("."), name),
        (Some(parent), Some(name)) => (parent, name),
        _ => (Path::new("."), OsStr::new(".")),
    }
}

fn file_id(md: &Metadata) -> (u64, u64) {
    (md.dev(), md.ino())
}

/// The store's view of host metadata. `md` comes from a stat that followed symlinks, except for
/// a link that could not be followed, which stays a [`EntryKind::Symlink`].
fn meta_of(md: &Metadata) -> Meta {
    let kind = if md.is_dir() {
        EntryKind::Dir
    } else if md.is_file() {
        EntryKind::File
    } else if md.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Special
    };
    Meta {
        kind,
        size: if kind == EntryKind::File { md.len() } else { 0 },
        modified: md
            .modified()
            .map_or(SystemTime::UNIX_EPOCH, |t| t.into_std()),
    }
}

/// Refuses anything but a regular file as the source of a read: a directory is `IsADirectory`,
/// anything else (FIFO, socket, device) `Unsupported`.
fn check_regular(op: &'static str, path: &VPath, md: &Metadata) -> Result<()> {
    if md.is_file() {
        Ok(())
    } else if md.is_dir() {
        Err(error(ErrorKind::IsADirectory, op, path))
    } else {
        Err(error(ErrorKind::Unsupported, op, path)
            .with_detail("not a regular file (FIFO, socket or device)"))
    }
}

/// Reads the next `want` bytes, fewer only at end of file.
fn read_chunk(file: &mut std::fs::File, want: usize) -> io::Result<Bytes> {
    // `read_to_end` into reserved capacity fills it without zeroing it first, and the Vec becomes
    // the Bytes without a copy.
    let mut buf = Vec::with_capacity(want);
    file.take(want as u64).read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// The chunks of an open file: exactly `size` bytes, each chunk read on the blocking pool.
fn chunk_stream(
    file: std::fs::File,
    size: u64,
    chunk_size: usize,
    path: VPath,
) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::try_unfold((file, 0u64), move |(mut file, done)| {
        let path = path.clone();
        async move {
            if done >= size {
                return Ok(None);
            }
            let want = (size - done).min(chunk_size as u64) as usize;
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = read_chunk(&mut file, want);
                (file, chunk)
            })
            .await
            .map_err(|e| join_error("read", &path, e))?;
            let chunk = chunk.map_err(|e| Error::from_io("read", e).with_path(&path))?;
            if chunk.len() < want {
                // Commits replace files by rename, which never shortens an open file: someone
                // truncated it in place. A short file must be an error, never a short read.
                let at = done + chunk.len() as u64;
                return Err(error(ErrorKind::Io, "read", &path).with_detail(format!(
                    "the file ended at byte {at} of {size}: it was truncated while being read"
                )));
            }
            Ok(Some((chunk, (file, done + want as u64))))
        }
    })
    .boxed()
}

/// Syncs directory `rel` so that a rename into it survives a power loss.
fn fsync_dir(root: &Dir, rel: &Path) -> io::Result<()> {
    // Not `open_dir`: it may hand out an O_PATH descriptor, which fsync refuses (EBADF).
    let mut options = OpenOptions::new();
    options
        .read(true)
        .maybe_dir(true)
        .custom_flags(OFlags::DIRECTORY.bits() as i32);
    root.open_with(rel, &options)?.sync_all()
}

impl DiskStore {
    /// Opens the host directory `root` as a store, creates its staging directory and sweeps
    /// whatever a killed process left in it.
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
        let staging = Self::sweep_staging(&dir).map_err(host_error)?;
        Ok(DiskStore {
            root: Arc::new(dir),
            staging: Arc::new(staging),
            root_id,
            host_root: root.to_path_buf(),
            options: DiskOptions {
                chunk_size: options.chunk_size.max(1),
                ..options
            },
        })
    }

    /// Empties (or creates) the staging directory and opens it.
    fn sweep_staging(root: &Dir) -> io::Result<Dir> {
        match root.symlink_metadata(STAGING) {
            Ok(md) if md.is_dir() => root.remove_dir_all(STAGING)?,
            // Not ours (a file, or a symlink that could lead anywhere): remove the entry itself.
            Ok(_) => root.remove_file(STAGING)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match root.create_dir(STAGING) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        root.open_dir_nofollow(STAGING)
    }

    /// The host directory this store serves.
    pub fn host_root(&self) -> &Path {
        &self.host_root
    }

    /// Checks that the parent of `rel` is a directory. Errors: `NotFound`, `NotADirectory`,
    /// `PermissionDenied` when it leads outside.
    fn check_parent(&self, op: &'static str, path: &VPath, rel: &Path) -> Result<()> {
        let (parent, _) = split_parent(rel);
        match self.root.metadata(parent) {
            Ok(md) if md.is_dir() => Ok(()),
            Ok(_) => Err(error(ErrorKind::NotADirectory, op, path)),
            Err(e) => Err(Error::from_io(op, e).with_path(path)),
        }
    }

    /// Checks that `path` can receive a file, as `open_write` and `commit` require, and says
    /// where the file goes.
    ///
    /// Errors: `IsADirectory` for a directory (and the root), `Unsupported` for a special file,
    /// `NotFound`/`NotADirectory` for a bad parent, `PermissionDenied` for a symlink that leads
    /// outside the root. A dangling symlink that stays inside is replaced by the file.
    fn write_target(&self, op: &'static str, path: &VPath) -> Result<Target> {
        if path.is_root() {
            return Err(error(ErrorKind::IsADirectory, op, path));
        }
        let rel = rel_path(op, path)?;
        self.check_parent(op, path, &rel)?;
        let to_error = io_error(op, path);
        let md = match self.root.symlink_metadata(&rel) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Target {
                    rel,
                    existing: None,
                });
            }
            Err(e) => return Err(to_error(e)),
        };
        let (rel, md) = if md.is_symlink() {
            match self.root.metadata(&rel) {
                Ok(target) => {
                    // Write through the link, as `>` and `cp` do. canonicalize resolves inside
                    // the sandbox (O_PATH: it never opens the target for real).
                    let canonical = self.root.canonicalize(&rel).map_err(&to_error)?;
                    if canonical.components().next()
                        == Some(std::path::Component::Normal(STAGING.as_ref()))
                    {
                        return Err(reserved(op, path));
                    }
                    (canonical, target)
                }
                // Dangling, yet inside: renaming onto the link replaces the link itself and
                // touches nothing else.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(Target {
                        rel,
                        existing: None,
                    });
                }
                Err(e) => return Err(to_error(e)),
            }
        } else {
            (rel, md)
        };
        if md.is_dir() {
            Err(error(ErrorKind::IsADirectory, op, path))
        } else if md.is_file() {
            Ok(Target {
                rel,
                existing: Some(md),
            })
        } else {
            Err(error(ErrorKind::Unsupported, op, path)
                .with_detail("not a regular file (FIFO, socket or device)"))
        }
    }

    /// Opens regular file `rel` for reading, never blocking on a FIFO or device, and returns it
    /// with its size.
    fn open_regular(
        &self,
        op: &'static str,
        path: &VPath,
        rel: &Path,
    ) -> Result<(std::fs::File, u64)> {
        // Stat first, so that a special file is refused without being opened at all (opening a
        // device can have effects of its own).
        let md = self.root.metadata(rel).map_err(io_error(op, path))?;
        check_regular(op, path, &md)?;
        self.open_checked(op, path, rel)
    }

    /// Opens `rel` for reading and checks that what was opened is a regular file.
    ///
    /// The entry may have been swapped since any earlier stat: O_NONBLOCK keeps the open of a
    /// FIFO from waiting for a writer, O_NOCTTY keeps a terminal from becoming ours, and the
    /// fstat judges what was actually opened.
    fn open_checked(
        &self,
        op: &'static str,
        path: &VPath,
        rel: &Path,
    ) -> Result<(std::fs::File, u64)> {
        let to_error = io_error(op, path);
        let mut options = OpenOptions::new();
        options
            .read(true)
            .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32);
        let file = self.root.open_with(rel, &options).map_err(&to_error)?;
        let md = file.metadata().map_err(&to_error)?;
        check_regular(op, path, &md)?;
        let file = file.into_std();
        // A regular file: restore blocking mode, which some filesystems (FUSE) would honour.
        let flags = rustix::fs::fcntl_getfl(&file).map_err(|e| to_error(e.into()))?;
        rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK).map_err(|e| to_error(e.into()))?;
        Ok((file, md.len()))
    }

    /// Sets the access and modification times of existing `rel` to now.
    ///
    /// Not cap-fs-ext's `set_times`: it opens the file for writing, which blocks on a FIFO.
    /// utimensat on the parent directory never opens the file; a symlink is first resolved
    /// inside the sandbox, so the kernel never follows one.
    fn set_times_now(&self, rel: &Path) -> io::Result<()> {
        let target = if self.root.symlink_metadata(rel)?.is_symlink() {
            self.root.canonicalize(rel)?
        } else {
            rel.to_path_buf()
        };
        let (parent, name) = split_parent(&target);
        let dir = self.root.open_dir(parent)?;
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        };
        let times = Timestamps {
            last_access: now,
            last_modification: now,
        };
        rustix::fs::utimensat(&dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)?;
        Ok(())
    }
}

impl Store for DiskStore {
    type Writer = DiskWriter;

    fn capability(&self) -> Capability {
        Capability {
            fast_copy: true,
            capacity: false,
        }
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        const OP: &str = "stat";
        let rel = rel_path(OP, path)?;
        match self.root.metadata(&rel) {
            Ok(md) => Ok(meta_of(&md)),
            // A final symlink that cannot be followed is still an entry: report the link.
            Err(e) => match self.root.symlink_metadata(&rel) {
                Ok(link) if link.is_symlink() => Ok(meta_of(&link)),
                _ => Err(Error::from_io(OP, e).with_path(path)),
            },
        }
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        const OP: &str = "list";
        let rel = rel_path(OP, path)?;
        let root = self.root.clone();
        let root_id = self.root_id;
        tokio::task::spawn_blocking(move || walk::list(&root, &rel, root_id))
            .await
            .map_err(|e| join_error(OP, path, e))?
            .map_err(io_error(OP, path))
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        const OP: &str = "mkdir";
        let rel = rel_path(OP, path)?;
        if path.is_root() {
            return if parents {
                Ok(())
            } else {
                Err(error(ErrorKind::AlreadyExists, OP, path))
            };
        }
        if !parents {
            return self.root.create_dir(&rel).map_err(io_error(OP, path));
        }
        // create_dir_all by hand, to tell an ancestor that is a file (NotADirectory) from the
        // path itself being one (AlreadyExists).
        let names: Vec<&str> = path.components().collect();
        let mut partial = PathBuf::new();
        for (i, name) in names.iter().enumerate() {
            partial.push(name);
            let last = i + 1 == names.len();
            match self.root.create_dir(&partial) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    match self.root.metadata(&partial) {
                        Ok(md) if md.is_dir() => {}
                        Ok(_) if last => return Err(error(ErrorKind::AlreadyExists, OP, path)),
                        Ok(_) => return Err(error(ErrorKind::NotADirectory, OP, path)),
                        // A dangling symlink has the name: it exists, yet is no directory.
                        Err(e) if last && e.kind() == io::ErrorKind::NotFound => {
                            return Err(error(ErrorKind::AlreadyExists, OP, path));
                        }
                        Err(e) => return Err(Error::from_io(OP, e).with_path(path)),
                    }
                }
                Err(e) => return Err(Error::from_io(OP, e).with_path(path)),
            }
        }
        Ok(())
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "touch";
        let rel = rel_path(OP, path)?;
        if !path.is_root() {
            self.check_parent(OP, path, &rel)?;
            let mut options = OpenOptions::new();
            // create_new never opens an existing entry (nor follows a final symlink), so it
            // cannot block on a FIFO or write through a link that leads outside.
            options.write(true).create_new(true);
            match self.root.open_with(&rel, &options) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::from_io(OP, e).with_path(path)),
            }
        }
        self.set_times_now(&rel).map_err(io_error(OP, path))
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rm";
        if path.is_root() {
            return Err(error(ErrorKind::IsADirectory, OP, path));
        }
        let rel = rel_path(OP, path)?;
        // symlink_metadata: a link is removed itself, whatever it points at.
        let md = self
            .root
            .symlink_metadata(&rel)
            .map_err(io_error(OP, path))?;
        if md.is_dir() {
            return Err(error(ErrorKind::IsADirectory, OP, path));
        }
        self.root.remove_file(&rel).map_err(io_error(OP, path))
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rmdir";
        if path.is_root() {
            return Err(error(ErrorKind::Busy, OP, path));
        }
        let rel = rel_path(OP, path)?;
        let md = self
            .root
            .symlink_metadata(&rel)
            .map_err(io_error(OP, path))?;
        if !md.is_dir() {
            return Err(error(ErrorKind::NotADirectory, OP, path));
        }
        self.root.remove_dir(&rel).map_err(io_error(OP, path))
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rm";
        if path.is_root() {
            return Err(error(ErrorKind::Busy, OP, path));
        }
        let rel = rel_path(OP, path)?;
        let md = self
            .root
            .symlink_metadata(&rel)
            .map_err(io_error(OP, path))?;
        if md.is_symlink() {
            // The link goes, never what it points at.
            return self.root.remove_file(&rel).map_err(io_error(OP, path));
        }
        if !md.is_dir() {
            return Err(error(ErrorKind::NotADirectory, OP, path));
        }
        let root = self.root.clone();
        // cap-std's remove_dir_all never follows symlinks below the directory either.
        tokio::task::spawn_blocking(move || root.remove_dir_all(&rel))
            .await
            .map_err(|e| join_error(OP, path, e))?
            .map_err(io_error(OP, path))
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        const OP: &str = "mv";
        if from.is_root() || to.is_root() {
            let busy = if from.is_root() { from } else { to };
            return Err(error(ErrorKind::Busy, OP, busy));
        }
        let from_rel = rel_path(OP, from)?;
        let to_rel = rel_path(OP, to)?;
        // symlink_metadata: a link is moved itself.
        let from_md = self
            .root
            .symlink_metadata(&from_rel)
            .map_err(io_error(OP, from))?;
        if from == to {
            return Ok(());
        }
        let from_is_dir = from_md.is_dir();
        if from_is_dir && to.starts_with(from) {
            return Err(error(ErrorKind::InvalidInput, OP, to)
                .with_detail(format!("cannot move {from} into itself")));
        }
        self.check_parent(OP, to, &to_rel)?;
        match self.root.symlink_metadata(&to_rel) {
            Ok(md) if md.is_dir() && !from_is_dir => {
                return Err(error(ErrorKind::IsADirectory, OP, to));
            }
            Ok(md) if !md.is_dir() && from_is_dir => {
                return Err(error(ErrorKind::NotADirectory, OP, to));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::from_io(OP, e).with_path(to)),
        }
        self.root
            .rename(&from_rel, &self.root, &to_rel)
            .map_err(|e| {
                let err = Error::from_io(OP, e).with_path(to);
                // rename(2) may say EEXIST instead of ENOTEMPTY for a non-empty directory.
                if err.kind() == ErrorKind::AlreadyExists {
                    error(ErrorKind::DirectoryNotEmpty, OP, to)
                } else {
                    err
                }
            })
    }

    async fn open_read(&mut self, path: &VPath) -> Result<FileReader> {
        const OP: &str = "read";
        if path.is_root() {
            return Err(error(ErrorKind::IsADirectory, OP, path));
        }
        let rel = rel_path(OP, path)?;
        let (file, size) = self.open_regular(OP, path, &rel)?;
        Ok(FileReader {
            size,
            chunks: chunk_stream(file, size, self.options.chunk_size, path.clone()),
        })
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<DiskWriter> {
        const OP: &str = "write";
        let target = self.write_target(OP, path)?;
        let prefix = match (mode, &target.existing) {
            (WriteMode::Append, Some(_)) => Some(self.open_regular(OP, path, &target.rel)?.0),
            _ => None,
        };
        let (temp, file) = TempFile::create(&self.staging).map_err(io_error(OP, path))?;
        Ok(DiskWriter::new(
            file,
            prefix,
            temp,
            self.options.fsync,
            path.clone(),
        ))
    }

    async fn commit(&mut self, path: &VPath, mut staged: DiskStaged) -> Result<()> {
        const OP: &str = "write";
        // On any error below, `staged` drops and its temp file goes; the old file is untouched.
        let target = self.write_target(OP, path)?;
        if let Some(old) = &target.existing {
            // Replacing a file keeps its permission bits, as writing into it would. Best effort:
            // a failure only leaves the default mode.
            let _ = self
                .staging
                .set_permissions(staged.temp.name(), old.permissions());
        }
        self.staging
            .rename(staged.temp.name(), &self.root, &target.rel)
            .map_err(io_error(OP, path))?;
        staged.temp.set_committed();
        if self.options.fsync {
            let root = self.root.clone();
            let parent = split_parent(&target.rel).0.to_path_buf();
            tokio::task::spawn_blocking(move || fsync_dir(&root, &parent))
                .await
                .map_err(|e| join_error(OP, path, e))?
                .map_err(io_error(OP, path))?;
        }
        Ok(())
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<DiskStaged>>> {
        const OP: &str = "cp";
        if from.is_root() {
            return Err(error(ErrorKind::IsADirectory, OP, from));
        }
        let from_rel = rel_path(OP, from)?;
        let (mut source, _) = self.open_regular(OP, from, &from_rel)?;
        self.write_target(OP, to)?;
        let (temp, mut dest) = TempFile::create(&self.staging).map_err(io_error(OP, to))?;
        let fsync = self.options.fsync;
        let to = to.clone();
        Ok(async move {
            tokio::task::spawn_blocking(move || {
                // Between two std Files, std::io::copy uses copy_file_range: the kernel copies
                // (or reflinks) without the data passing through user space, nor whole in memory.
                io::copy(&mut source, &mut dest)?;
                if fsync {
                    dest.sync_all()?;
                }
                // On an error above, `temp` drops here and the partial copy goes with it.
                Ok(DiskStaged { temp })
            })
            .await
            .map_err(|e| join_error(OP, &to, e))?
            .map_err(|e| Error::from_io(OP, e).with_path(&to))
        }
        .boxed())
    }

    async fn usage(&mut self) -> Result<Usage> {
        const OP: &str = "stats";
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || walk::usage(&root))
            .await
            .map_err(|e| join_error(OP, &VPath::root(), e))?
            .map_err(io_error(OP, &VPath::root()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A FIFO swapped in after the stat: the open itself must neither block nor accept it.
    #[tokio::test]
    async fn open_checked_refuses_a_fifo_without_blocking() {
        let tmp = tempfile::TempDir::new().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            tmp.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let store = DiskStore::open(tmp.path(), DiskOptions::default()).unwrap();
        let path = VPath::parse("/fifo").unwrap();
        let opened = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::task::spawn_blocking(move || {
                store
                    .open_checked("read", &path, Path::new("fifo"))
                    .map(|_| ())
            }),
        )
        .await
        .expect("opening a FIFO blocked")
        .unwrap();
        assert_eq!(opened.unwrap_err().kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn store_paths_map_to_relative_host_paths() {
        let rel = |s: &str| rel_path("stat", &VPath::parse(s).unwrap());
        assert_eq!(rel("/").unwrap(), Path::new("."));
        assert_eq!(rel("/a/b").unwrap(), Path::new("a/b"));
        assert_eq!(
            rel("/a/.mavfs-staging").unwrap(),
            Path::new("a/.mavfs-staging")
        );
        let err = rel("/.mavfs-staging/x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied);
        assert_eq!(err.detail(), Some("reserved name"));
        assert_eq!(
            split_parent(Path::new(".")),
            (Path::new("."), OsStr::new("."))
        );
        assert_eq!(
            split_parent(Path::new("a")),
            (Path::new("."), OsStr::new("a"))
        );
        assert_eq!(
            split_parent(Path::new("a/b")),
            (Path::new("a"), OsStr::new("b"))
        );
    }
}
