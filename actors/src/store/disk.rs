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
//! - **Staging.** Every write and copy goes to a temp file in the store's own directory under
//!   `.mavfs-staging` at the root (on the same filesystem, so that commit is a rename). `open`
//!   sweeps whatever a killed process left there, and never what a live one is writing
//!   ([`session`]), so several processes may share a root. The name is reserved: hidden from
//!   `list` and `usage`, refused as a path.
//! - **Atomic commit.** [`Store::start_commit`] renames the staged file onto its destination,
//!   which rename(2) does atomically: a reader sees the old file or the new one whole, and a
//!   reader that opened the old file keeps reading it. Writing onto a symlink that stays inside
//!   the root replaces its target, as `>` and `cp` do; the link itself stays.
//!
//! Short metadata syscalls run inline in the store's actor; directory walks and all file data
//! (reads, writes, copies, fsync) run on tokio's blocking pool, so that neither the actor's
//! mailbox nor the async runtime waits on the disk. A commit runs wholly outside the actor
//! ([`Store::start_commit`]): its checks, a small file's data and the rename take one blocking
//! job on the store's lane ([`lane`]), and so does an open for reading
//! ([`Store::start_open_read`]), with the whole of a small file read. A small file thus costs one
//! trip to a blocking thread each way, and the lane's thread lingers between jobs so that the
//! next one does not wait for a wake-up.
//!
//! A batch of small files ([`Store::start_read_files`], [`Store::start_write_files`]) is one job
//! on the lane: each file opened and read, or staged, written and renamed, as its one-file form
//! would, without a trip to a blocking thread per file. Read streams reuse their chunk buffers
//! ([`buffers`]).
//!
//! Each operation resolves a path through the sandbox once: it opens the parent directory with
//! cap-std, then looks at the entry by its single name without following it (one `statx`),
//! creates, opens and renames relative to that directory. Only a final symlink takes the longer
//! way through [`Dir::metadata`] and [`Dir::canonicalize`].

mod buffers;
mod lane;
mod session;
mod staging;
mod walk;

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cap_fs_ext::OpenOptionsMaybeDirExt;
use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, OpenOptionsExt};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use rustix::fs::{AtFlags, OFlags, Timespec, Timestamps};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    BatchFuture, Capability, DEFAULT_CHUNK_SIZE, DirEntry, EntryKind, FileReader, Meta, Store,
    Usage, WholeFile, WholeRead, WriteMode,
};

use self::buffers::Buffers;
use self::lane::Lane;
use self::session::Session;
pub use self::staging::{DiskStaged, DiskWriter};
use self::staging::{SMALL_FILE, TempFile};

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
    /// This store's own staging directory (see [`session`]).
    staging: Arc<Session>,
    /// Device and inode of the root, to recognise it when reached through a symlink.
    root_id: (u64, u64),
    host_root: PathBuf,
    options: DiskOptions,
    lane: Lane,
    /// Buffers of chunk size for read streams, reused (see [`buffers`]).
    buffers: Buffers,
}

/// A directory opened through the sandbox, or the root itself (which needs no opening).
enum OpenDir<'a> {
    Root(&'a Dir),
    Opened(Dir),
}

impl Deref for OpenDir<'_> {
    type Target = Dir;

    fn deref(&self) -> &Dir {
        match self {
            OpenDir::Root(dir) => dir,
            OpenDir::Opened(dir) => dir,
        }
    }
}

/// Opens directory `rel` below `root` (following symlinks that stay inside). Errors:
/// `NotFound`, `NotADirectory` (also for a FIFO or device, which is never opened for real: the
/// descriptor is O_PATH), `PermissionDenied` when it leads outside.
fn open_dir<'a>(root: &'a Dir, rel: &Path) -> io::Result<OpenDir<'a>> {
    if rel == Path::new(".") {
        Ok(OpenDir::Root(root))
    } else {
        root.open_dir(rel).map(OpenDir::Opened)
    }
}

/// Where a write of a store path lands, as checked by [`write_target`].
struct Target<'a> {
    /// The directory to rename into, opened through the sandbox.
    dir: OpenDir<'a>,
    /// The name in `dir`: the store path's own, or that of where its symlink leads (inside the
    /// root). Never a symlink that could be followed out, never `.` or `..`.
    name: OsString,
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
    buffers: Buffers,
    chunk_size: usize,
    path: VPath,
) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::try_unfold((file, 0u64), move |(mut file, done)| {
        let path = path.clone();
        let buffers = buffers.clone();
        async move {
            if done >= size {
                return Ok(None);
            }
            let want = (size - done).min(chunk_size as u64) as usize;
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = buffers.read(&mut file, want);
                (file, chunk)
            })
            .await
            .map_err(|e| join_error("read", &path, e))?;
            let chunk = chunk.map_err(|e| Error::from_io("read", e).with_path(&path))?;
            if chunk.len() < want {
                return Err(truncated(&path, done + chunk.len() as u64, size));
            }
            Ok(Some((chunk, (file, done + want as u64))))
        }
    })
    .boxed()
}

/// Syncs directory `dir` so that a rename into it survives a power loss.
fn fsync_dir(dir: &Dir) -> io::Result<()> {
    // `dir` may be an O_PATH descriptor, which fsync refuses (EBADF): open it again, as `.`, so
    // that it is the very directory renamed into.
    let mut options = OpenOptions::new();
    options
        .read(true)
        .maybe_dir(true)
        .custom_flags(OFlags::DIRECTORY.bits() as i32);
    dir.open_with(".", &options)?.sync_all()
}

/// Checks that `path` can receive a file, as `open_write` and `commit` require, and says where
/// the file goes.
///
/// Errors: `IsADirectory` for a directory (and the root), `Unsupported` for a special file,
/// `NotFound`/`NotADirectory` for a bad parent, `PermissionDenied` for a symlink that leads
/// outside the root. A dangling symlink that stays inside is replaced by the file.
fn write_target<'a>(root: &'a Dir, op: &'static str, path: &VPath) -> Result<Target<'a>> {
    let (rel, dir) = write_parent(root, op, path)?;
    target_in(root, op, path, &rel, dir)
}

/// The relative path of `path`, which must not be the root, and its parent directory opened
/// through the sandbox.
fn write_parent<'a>(
    root: &'a Dir,
    op: &'static str,
    path: &VPath,
) -> Result<(PathBuf, OpenDir<'a>)> {
    if path.is_root() {
        return Err(error(ErrorKind::IsADirectory, op, path));
    }
    let rel = rel_path(op, path)?;
    let dir = open_dir(root, split_parent(&rel).0).map_err(io_error(op, path))?;
    Ok((rel, dir))
}

/// [`write_target`] for `rel`, whose parent directory `dir` is already open.
fn target_in<'a>(
    root: &'a Dir,
    op: &'static str,
    path: &VPath,
    rel: &Path,
    dir: OpenDir<'a>,
) -> Result<Target<'a>> {
    let to_error = io_error(op, path);
    let name = split_parent(rel).1;
    // One name inside an opened directory, never followed: this stat cannot leave the root.
    let md = match dir.symlink_metadata(name) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Target {
                dir,
                name: name.to_owned(),
                existing: None,
            });
        }
        Err(e) => return Err(to_error(e)),
    };
    if !md.is_symlink() {
        return regular_target(op, path, dir, name.to_owned(), md);
    }
    match root.metadata(rel) {
        Ok(md) if md.is_file() => {
            // Write through the link, as `>` and `cp` do. canonicalize resolves inside the
            // sandbox (O_PATH: it never opens the target for real).
            let canonical = root.canonicalize(rel).map_err(&to_error)?;
            if canonical.components().next() == Some(std::path::Component::Normal(STAGING.as_ref()))
            {
                return Err(reserved(op, path));
            }
            let (parent, name) = split_parent(&canonical);
            let dir = open_dir(root, parent).map_err(&to_error)?;
            regular_target(op, path, dir, name.to_owned(), md)
        }
        Ok(md) => regular_target(op, path, dir, name.to_owned(), md),
        // Dangling, yet inside: renaming onto the link replaces the link itself and touches
        // nothing else.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target {
            dir,
            name: name.to_owned(),
            existing: None,
        }),
        Err(e) => Err(to_error(e)),
    }
}

/// The target for an existing entry: only a regular file may be replaced.
fn regular_target<'a>(
    op: &'static str,
    path: &VPath,
    dir: OpenDir<'a>,
    name: OsString,
    md: Metadata,
) -> Result<Target<'a>> {
    if md.is_dir() {
        Err(error(ErrorKind::IsADirectory, op, path))
    } else if md.is_file() {
        Ok(Target {
            dir,
            name,
            existing: Some(md),
        })
    } else {
        Err(error(ErrorKind::Unsupported, op, path)
            .with_detail("not a regular file (FIFO, socket or device)"))
    }
}

/// Opens `name` in `dir` for reading and checks that what was opened is a regular file.
///
/// The entry may have been swapped since any earlier stat: O_NONBLOCK keeps the open of a FIFO
/// from waiting for a writer, O_NOCTTY keeps a terminal from becoming ours, and the fstat judges
/// what was actually opened.
fn open_checked(
    op: &'static str,
    path: &VPath,
    dir: &Dir,
    name: &Path,
) -> Result<(std::fs::File, u64)> {
    let to_error = io_error(op, path);
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32);
    let file = dir.open_with(name, &options).map_err(&to_error)?;
    let md = file.metadata().map_err(&to_error)?;
    check_regular(op, path, &md)?;
    let file = file.into_std();
    // A regular file: restore blocking mode, which some filesystems (FUSE) would honour. F_SETFL
    // changes only the status flags (append, nonblock, direct, noatime), none of which we set
    // otherwise, so there is nothing to read back first.
    rustix::fs::fcntl_setfl(&file, OFlags::empty()).map_err(|e| to_error(e.into()))?;
    Ok((file, md.len()))
}

/// Makes `staged` visible at `path`: checks the destination again, writes a small file's data,
/// renames the temp file into place and, with `fsync`, flushes the directory. A blocking call.
fn commit_blocking(
    root: &Dir,
    staging: &Dir,
    fsync: bool,
    path: &VPath,
    mut staged: DiskStaged,
) -> Result<()> {
    const OP: &str = "write";
    let to_error = io_error(OP, path);
    // On any error below, `staged` drops and its temp file goes; the old file is untouched.
    let (rel, dir) = write_parent(root, OP, path)?;
    staged.write_pending().map_err(&to_error)?;
    // Most commits create a new file: a rename that refuses to replace anything needs no stat
    // first, since nothing is there to check. Whatever it refuses (an existing entry, a file
    // system without the flag) takes the full check below.
    let name = split_parent(&rel).1;
    let fresh = rustix::fs::renameat_with(
        staging,
        staged.temp.name(),
        &*dir,
        name,
        rustix::fs::RenameFlags::NOREPLACE,
    );
    let dir = if fresh.is_ok() {
        dir
    } else {
        let target = target_in(root, OP, path, &rel, dir)?;
        if let Some(old) = &target.existing {
            // Replacing a file keeps its permission bits, as writing into it would. Best
            // effort: a failure only leaves the default mode.
            let mode =
                <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(old.mode());
            let _ = staged.file.set_permissions(mode);
        }
        staging
            .rename(staged.temp.name(), &target.dir, &target.name)
            .map_err(&to_error)?;
        target.dir
    };
    staged.temp.set_committed();
    if fsync {
        fsync_dir(&dir).map_err(&to_error)?;
    }
    Ok(())
}

/// The `size` bytes of open `file`, all of them. Errors: `Io` when it holds fewer now (it was
/// truncated since its size was taken). A blocking call.
fn read_whole_file(file: &mut std::fs::File, size: u64, path: &VPath) -> Result<Bytes> {
    let data = read_chunk(file, size as usize).map_err(io_error("read", path))?;
    if (data.len() as u64) < size {
        return Err(truncated(path, data.len() as u64, size));
    }
    Ok(data)
}

/// [`Store::start_read_files`] of one path: reads it whole if it holds at most `limit` bytes. A
/// blocking call.
fn read_whole_blocking(root: &Dir, path: &VPath, limit: u64) -> Result<WholeRead> {
    const OP: &str = "read";
    if path.is_root() {
        return Err(error(ErrorKind::IsADirectory, OP, path));
    }
    let rel = rel_path(OP, path)?;
    let (mut file, size) = open_regular(root, OP, path, &rel)?;
    if size > limit {
        return Ok(WholeRead::TooLarge(size));
    }
    Ok(WholeRead::Data(read_whole_file(&mut file, size, path)?))
}

/// Runs `job` on `lane`; a lost job is an `Io` error of `op` on `path`.
async fn on_lane<T, F>(lane: Lane, op: &'static str, path: VPath, job: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    lane.run(job).await.map_err(|lost| {
        error(ErrorKind::Io, op, &path).with_detail(format!("background task failed: {lost}"))
    })?
}

/// The error of every file of a batch whose blocking job never reported.
fn lost_batch(op: &'static str, why: &dyn std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, op).with_detail(format!("background task failed: {why}"))
}

/// [`Store::open_write`]: checks `path`, opens the old file of an append, creates the temp file.
fn open_write_now(
    root: &Dir,
    staging: &Arc<Session>,
    fsync: bool,
    path: &VPath,
    mode: WriteMode,
) -> Result<DiskWriter> {
    const OP: &str = "write";
    let target = write_target(root, OP, path)?;
    let prefix = match (mode, &target.existing) {
        (WriteMode::Append, Some(_)) => {
            Some(open_checked(OP, path, &target.dir, Path::new(&target.name))?.0)
        }
        _ => None,
    };
    drop(target);
    let (temp, file) = TempFile::create(staging).map_err(io_error(OP, path))?;
    Ok(DiskWriter::new(file, prefix, temp, fsync, path.clone()))
}

/// [`Store::start_open_read`] of `rel`: opens it, and reads a small file whole while at it, so that
/// its one chunk needs no other trip to a blocking thread. A blocking call.
fn open_read_blocking(
    root: &Dir,
    path: &VPath,
    rel: &Path,
    buffers: Buffers,
    chunk_size: usize,
) -> Result<FileReader> {
    const OP: &str = "read";
    let (mut file, size) = open_regular(root, OP, path, rel)?;
    if size > chunk_size.min(SMALL_FILE) as u64 {
        // A stream reads the file once, front to back: the kernel may read ahead further than
        // it dares for a file it knows nothing of. Advice only: a refusal changes nothing.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        return Ok(FileReader {
            size,
            chunks: chunk_stream(file, size, buffers, chunk_size, path.clone()),
        });
    }
    let chunk = read_whole_file(&mut file, size, path)?;
    let chunks = if chunk.is_empty() {
        Vec::new()
    } else {
        vec![Ok(chunk)]
    };
    Ok(FileReader {
        size,
        chunks: futures::stream::iter(chunks).boxed(),
    })
}

/// A file that ended at byte `at` of the `size` it had when opened.
fn truncated(path: &VPath, at: u64, size: u64) -> Error {
    // Commits replace files by rename, which never shortens an open file: someone truncated it
    // in place. A short file must be an error, never a short read.
    error(ErrorKind::Io, "read", path).with_detail(format!(
        "the file ended at byte {at} of {size}: it was truncated while being read"
    ))
}

/// Opens regular file `rel` for reading, never blocking on a FIFO or device, and returns it with
/// its size.
fn open_regular(
    root: &Dir,
    op: &'static str,
    path: &VPath,
    rel: &Path,
) -> Result<(std::fs::File, u64)> {
    let to_error = io_error(op, path);
    let (parent, name) = split_parent(rel);
    let dir = open_dir(root, parent).map_err(&to_error)?;
    // Stat first, so that a special file is refused without being opened at all (opening a
    // device can have effects of its own): by its single name, unfollowed, so that this stat
    // cannot leave the root. A final symlink is followed the long way, in the sandbox.
    let md = dir.symlink_metadata(name).map_err(&to_error)?;
    if md.is_symlink() {
        let md = root.metadata(rel).map_err(&to_error)?;
        check_regular(op, path, &md)?;
        return open_checked(op, path, root, rel);
    }
    check_regular(op, path, &md)?;
    open_checked(op, path, &dir, Path::new(name))
}

impl DiskStore {
    /// The host path of an entry about to be removed and its own metadata (symlink_metadata: a
    /// link is removed itself, whatever it points at). Errors: `at_root` for the store's root;
    /// `NotFound` and the like from the host.
    fn removal_target(
        &self,
        op: &'static str,
        path: &VPath,
        at_root: ErrorKind,
    ) -> Result<(PathBuf, Metadata)> {
        if path.is_root() {
            return Err(error(at_root, op, path));
        }
        let rel = rel_path(op, path)?;
        let md = self
            .root
            .symlink_metadata(&rel)
            .map_err(io_error(op, path))?;
        Ok((rel, md))
    }

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
        let staging = Session::open(&dir).map_err(host_error)?;
        Ok(DiskStore {
            root: Arc::new(dir),
            staging: Arc::new(staging),
            root_id,
            host_root: root.to_path_buf(),
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
        let (rel, md) = self.removal_target(OP, path, ErrorKind::IsADirectory)?;
        if md.is_dir() {
            return Err(error(ErrorKind::IsADirectory, OP, path));
        }
        self.root.remove_file(&rel).map_err(io_error(OP, path))
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rmdir";
        let (rel, md) = self.removal_target(OP, path, ErrorKind::Busy)?;
        if !md.is_dir() {
            return Err(error(ErrorKind::NotADirectory, OP, path));
        }
        self.root.remove_dir(&rel).map_err(io_error(OP, path))
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rm";
        let (rel, md) = self.removal_target(OP, path, ErrorKind::Busy)?;
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
        crate::store::refuse_root_rename(OP, from, to)?;
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

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        const OP: &str = "read";
        if path.is_root() {
            return Err(error(ErrorKind::IsADirectory, OP, path));
        }
        let rel = rel_path(OP, path)?;
        // Opening, and reading a small file whole, take one job on the lane: in the actor the
        // opens of a transfer's files would queue one behind the other, and a separate read
        // would cost a second trip to a blocking thread.
        let root = self.root.clone();
        let chunk_size = self.options.chunk_size;
        let buffers = self.buffers.clone();
        let path = path.clone();
        Ok(on_lane(self.lane.clone(), OP, path.clone(), move || {
            open_read_blocking(&root, &path, &rel, buffers, chunk_size)
        })
        .boxed())
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<DiskWriter> {
        // In the actor: the checks and the temp file's creation are short metadata calls (the
        // data goes to the temp file later, or with the commit, on a blocking thread).
        open_write_now(&self.root, &self.staging, self.options.fsync, path, mode)
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        staged: DiskStaged,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        // Nothing to do in the actor: the checks, a small file's data and the rename take one
        // blocking job, so that the commits of a transfer's files do not queue in the mailbox.
        let (root, staging, fsync) = (self.root.clone(), self.staging.clone(), self.options.fsync);
        let path = path.clone();
        if fsync {
            // A commit that waits on the device is no job for the lane, where it would hold up
            // the short ones: it gets a blocking thread of its own.
            return Ok(async move {
                let at = path.clone();
                tokio::task::spawn_blocking(move || {
                    commit_blocking(&root, &staging, fsync, &path, staged)
                })
                .await
                .map_err(|e| join_error("write", &at, e))?
            }
            .boxed());
        }
        Ok(on_lane(self.lane.clone(), "write", path.clone(), move || {
            commit_blocking(&root, &staging, fsync, &path, staged)
        })
        .boxed())
    }

    async fn start_read_files(
        &mut self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> Result<BatchFuture<WholeRead>> {
        // The whole batch is one job on the lane: one trip to a blocking thread, not one a file.
        let root = self.root.clone();
        let lane = self.lane.clone();
        Ok(async move {
            let count = paths.len();
            let job = lane.run(move || {
                paths
                    .iter()
                    .map(|path| read_whole_blocking(&root, path, limit))
                    .collect::<Vec<_>>()
            });
            job.await
                .unwrap_or_else(|lost| vec![Err(lost_batch("read", &lost)); count])
        }
        .boxed())
    }

    async fn start_write_files(&mut self, files: Vec<WholeFile>) -> Result<BatchFuture<()>> {
        // The whole batch is one blocking job: each file is staged with its data and renamed
        // into place, as a one-file commit does. With fsync the job waits on the device, so it
        // gets a thread of its own rather than holding up the lane.
        let (root, staging, fsync) = (self.root.clone(), self.staging.clone(), self.options.fsync);
        let count = files.len();
        let job = move || {
            files
                .into_iter()
                .map(|WholeFile { path, data }| {
                    let staged = DiskStaged::whole(&staging, data, fsync)
                        .map_err(io_error("write", &path))?;
                    commit_blocking(&root, &staging, fsync, &path, staged)
                })
                .collect::<Vec<_>>()
        };
        if fsync {
            return Ok(async move {
                tokio::task::spawn_blocking(job)
                    .await
                    .unwrap_or_else(|e| vec![Err(lost_batch("write", &e)); count])
            }
            .boxed());
        }
        let lane = self.lane.clone();
        Ok(async move {
            lane.run(job)
                .await
                .unwrap_or_else(|lost| vec![Err(lost_batch("write", &lost)); count])
        }
        .boxed())
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
        let (mut source, _) = open_regular(&self.root, OP, from, &from_rel)?;
        write_target(&self.root, OP, to)?;
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
                Ok(DiskStaged::written(temp, dest))
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
                open_checked("read", &path, &store.root, Path::new("fifo")).map(|_| ())
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
