//! The store contract: what every backend (memory, disk, Redis) must do, and the rules it must keep.
//!
//! A [`Store`] is owned by exactly one backend actor ([`crate::backend`]), which calls it with
//! `&mut self` one message at a time. Paths given to a store are store-local [`VPath`]s: `/` is the
//! store's own root. Operations split in two kinds:
//!
//! - metadata operations (`stat`, `list`, `mkdir`, ...) run inside the actor and must be quick;
//! - data operations hand work out of the actor: the store does in the actor only what needs
//!   the actor and returns a future (or a stream, or a writer) that owns what it needs, which
//!   the caller runs outside the actor. A large transfer therefore never stalls `ls` or `stat`
//!   on the same mount, and cancelling it (dropping what was handed out) stops it.
//!
//! The data operations, each in two parts:
//!
//! - [`Store::start_open_read`] replies with a future that finishes opening and yields a
//!   [`FileReader`] stream;
//! - [`Store::open_write`] returns a [`FileWriter`] that the caller pumps, then
//!   [`Store::start_commit`] replies with a future that makes the staged file visible;
//! - [`Store::copy_file`] replies with a future that copies into a staged file, committed the
//!   same way;
//! - [`Store::start_read_files`] and [`Store::start_write_files`] move a batch of small files.
//!
//! Opens and commits are two-part so that a store whose opens and commits wait on the host (the
//! disk store) runs them side by side instead of queueing every file of a transfer behind the
//! others in its one mailbox. A store that opens or commits in the actor (the memory store,
//! whose tree only its actor may touch) does the work there and returns a ready future.
//!
//! Small files move in batches: a transfer of many files of a few KiB is bound by what each file
//! costs (round trips to Redis, trips to a blocking thread, messages to the actor), not by its
//! bytes, so a store that can serve a batch in a few steps should. Each file of a batch keeps
//! every rule of its one-file form. The defaults run the one-file operations for each file.
//!
//! Writes are atomic per file: a writer stages its data (a temp file, buffered chunks, chunk keys
//! under a new id) and [`Store::start_commit`] makes it visible in one step, replacing any old
//! file. A writer dropped without commit leaves nothing behind.
//!
//! The conformance suite (`actors/tests/conformance.rs`) checks every rule written here against
//! every store.

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;

pub mod disk;
pub mod memory;
mod page;
pub mod redis;

pub use page::{LIST_PAGE_ENTRIES, ListCursor, ListPage};

pub use crate::limits::DEFAULT_CHUNK_SIZE;

/// Largest file a transfer moves whole, in batches ([`Store::start_read_files`],
/// [`Store::start_write_files`]), rather than streaming it. A batch holds at most
/// [`BATCH_FILES`] such files, so its bytes stay small whatever the tree.
pub const SMALL_FILE_MAX: u64 = 64 << 10;

/// Most files in one batch of [`Store::start_read_files`] or [`Store::start_write_files`] from a
/// transfer: enough to spread each step's fixed cost thin (its scripts, round trips and thread
/// hand-offs), few enough that several batches overlap; a batch's bytes are bounded apart (2 MiB
/// by scanned size). 512 against 128, for 20,000 files of 4 KiB (medians of six to eight
/// alternating runs): a pull from disk into Redis 0.38 -> 0.34 s with 16% less Redis CPU, a push
/// out of Redis 0.314 -> 0.303 s, disk to memory and back 0.208 / 0.272 -> 0.175 / 0.256 s.
pub const BATCH_FILES: usize = 512;

/// Which store backs a mount: the one vocabulary of config files, `stats` and `mounts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// [`memory::MemoryStore`].
    Memory,
    /// [`disk::DiskStore`].
    Disk,
    /// [`redis::RedisStore`], one node or a cluster.
    Redis,
}

impl BackendKind {
    /// The name in config files and output: `memory`, `disk` or `redis`.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::Disk => "disk",
            BackendKind::Redis => "redis",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that widths and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink whose target could not be followed (disk only; e.g. it leads outside the root).
    Symlink,
    /// A FIFO, socket or device (disk only): listed, never opened.
    Special,
}

/// Metadata of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// What the entry is.
    pub kind: EntryKind,
    /// Length in bytes for files; 0 for directories.
    pub size: u64,
    /// The last modification time.
    pub modified: SystemTime,
}

impl Meta {
    /// Whether the entry is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    /// Whether the entry is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// The name within its directory.
    pub name: String,
    /// The entry's metadata.
    pub meta: Meta,
}

/// Totals for `stats`.
///
/// `files`, `dirs` and `bytes` count the store's tree; `capacity`, `used` and `available` say
/// what holds it, which each store knows differently:
///
/// | store  | `capacity`                      | `used`                              | `available`                  |
/// |--------|---------------------------------|-------------------------------------|------------------------------|
/// | memory | the configured capacity, if any | bytes held, staged writes included  | `capacity - used`, if capped |
/// | disk   | the host filesystem's size      | the filesystem's used bytes (all of it, not only this store's) | bytes free to unprivileged users |
/// | redis  | `maxmemory`, when set           | `used_memory` (the whole server)    | `maxmemory - used_memory`, when set |
///
/// A Redis Cluster reports none of the three (each node has its own memory). Fields added after
/// the first release are serde-defaulted, so that JSON from an older engine still decodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Regular files.
    pub files: u64,
    /// Directories, the root not counted.
    pub dirs: u64,
    /// Bytes of file data.
    pub bytes: u64,
    /// The limit in bytes of what holds the store, if known (see the table above).
    pub capacity: Option<u64>,
    /// Bytes of `capacity` in use, counted as the holder counts them (see the table above).
    #[serde(default)]
    pub used: Option<u64>,
    /// Bytes still free for the store to grow into, if known (see the table above).
    #[serde(default)]
    pub available: Option<u64>,
    /// `files`, `dirs` and `bytes` are not exact yet: a disk store's first count of its tree is
    /// still running, so they hold what is known so far, or writes of its own raced that count.
    /// The next background rescan settles them. Always false for memory and Redis, whose
    /// counts are exact.
    #[serde(default)]
    pub approximate: bool,
}

/// How [`Store::open_write`] treats an existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// The committed file holds exactly the bytes written (`>`, `cp`).
    Replace,
    /// The committed file holds the old bytes followed by the bytes written (`>>`).
    Append,
}

/// Optional abilities, so that callers and tests branch on what a store can do, never on its name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capability {
    /// `copy_file` is cheaper than streaming (shared buffers, copy_file_range, server-side copy).
    pub fast_copy: bool,
    /// Small files copied within the store go faster in batches, read and written whole many
    /// at a time ([`Store::start_read_files`], [`Store::start_write_files`]), than by
    /// `copy_file` one at a time: a store whose copy costs a script and round trips per file
    /// (Redis). Larger files still take `copy_file` when `fast_copy`.
    pub batch_small_copies: bool,
    /// The store enforces a byte capacity and reports `NoSpace` before exceeding it.
    pub capacity: bool,
}

/// A file opened for reading: its size at open time and its contents as a stream of chunks.
///
/// The stream is `'static` and owns what it reads from, so it runs outside the store's actor. It
/// yields exactly `size` bytes or an error; it never ends early without one.
pub struct FileReader {
    /// The file's length when opened: exactly what the stream yields.
    pub size: u64,
    /// Which version of the file was opened, for [`Store::remove_file_if`].
    pub version: Version,
    /// The contents, chunk by chunk.
    pub chunks: BoxStream<'static, Result<Bytes>>,
}

/// Which version of a file a read opened: what a move checks, before deleting its source, to
/// know that the source is still the file it copied ([`Store::remove_file_if`]).
///
/// Each store stamps its own way: the disk store with the device, inode, size, modification and
/// change times it read at open (so an append, a rewrite in place or a replace all differ), the
/// memory store with a generation that every change of the file takes anew, the Redis store with
/// the file's data id (new for every write), size and modification time. A version is only ever
/// compared with one of the same store. [`Version::unknown`] matches nothing, so that what cannot
/// be checked is never deleted on its strength.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version(Stamp);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Stamp {
    #[default]
    Unknown,
    Disk {
        dev: u64,
        ino: u64,
        size: u64,
        mtime: (i64, i64),
        ctime: (i64, i64),
    },
    Memory(u64),
    Redis {
        size: u64,
        mtime: u64,
        data: String,
    },
}

impl Version {
    /// A version nobody can check (a reader from a daemon's socket): it matches no file.
    pub fn unknown() -> Version {
        Version(Stamp::Unknown)
    }

    /// A disk file's: device, inode, size, and modification and change times (seconds and
    /// nanoseconds), as `fstat` gave them.
    pub(crate) fn disk(
        dev: u64,
        ino: u64,
        size: u64,
        mtime: (i64, i64),
        ctime: (i64, i64),
    ) -> Version {
        Version(Stamp::Disk {
            dev,
            ino,
            size,
            mtime,
            ctime,
        })
    }

    /// A memory file's generation.
    pub(crate) fn memory(generation: u64) -> Version {
        Version(Stamp::Memory(generation))
    }

    /// A Redis file's size, modification time (ms) and data id.
    pub(crate) fn redis(size: u64, mtime: u64, data: &str) -> Version {
        Version(Stamp::Redis {
            size,
            mtime,
            data: data.to_string(),
        })
    }

    /// Whether `current`, read from a file now, is this same version. Never for an unknown one.
    pub fn matches(&self, current: &Version) -> bool {
        self.0 != Stamp::Unknown && self == current
    }

    /// A Redis version's fields as its remove script takes them, `<size>/<mtime>/<data>`;
    /// `None` for any other.
    pub(crate) fn redis_fields(&self) -> Option<String> {
        match &self.0 {
            Stamp::Redis { size, mtime, data } => Some(format!("{size}/{mtime}/{data}")),
            _ => None,
        }
    }
}

/// The error for a source found to be another size than planned (`expected` bytes) while it
/// was copied (`found` bytes): `Io` naming `path`. Nothing of the copy is committed.
pub fn source_changed(op: &'static str, path: &VPath, expected: u64, found: u64) -> Error {
    Error::new(ErrorKind::Io, op)
        .with_path(path)
        .with_detail(format!(
            "source changed while copying ({expected} bytes expected, {found} found)"
        ))
}

/// The error of [`Store::remove_file_if`] for a source that is no longer the file it read:
/// `Io` naming `path`, that it changed during the move and is kept.
pub fn changed_during_move(path: &VPath) -> Error {
    Error::new(ErrorKind::Io, "mv")
        .with_path(path)
        .with_detail("changed during the move, so it was kept; the copy holds it as it was read")
}

/// A whole file: what a batched write takes and writes at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeFile {
    /// Where the file goes.
    pub path: VPath,
    /// Its whole contents.
    pub data: Bytes,
}

/// What a batched read found at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WholeRead {
    /// Every byte of the file, and which version of it they are.
    Data(Bytes, Version),
    /// The file holds more than the limit asked for (its size when opened): it was not read,
    /// and is for streaming.
    TooLarge(u64),
}

/// The future a batched operation hands out: one result per file, in the order given.
pub type BatchFuture<T> = BoxFuture<'static, Vec<Result<T>>>;

/// What a [`Store::copy_file`] future yields: the staged copy, not yet visible, and the bytes
/// copied into it.
pub type Copied<S> = (<<S as Store>::Writer as FileWriter>::Staged, u64);

/// Collects `reader` into one buffer, or reports it too large for `limit` without reading it.
pub async fn read_whole(reader: FileReader, limit: u64) -> Result<WholeRead> {
    use futures::TryStreamExt;
    if reader.size > limit {
        return Ok(WholeRead::TooLarge(reader.size));
    }
    let chunks: Vec<Bytes> = reader.chunks.try_collect().await?;
    let data = match chunks.len() {
        0 => Bytes::new(),
        // The usual case, a file of one chunk: no copy.
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => Bytes::from(chunks.concat()),
    };
    Ok(WholeRead::Data(data, reader.version))
}

/// The check every store's [`Store::rename`] starts with: neither path may be the store's root.
/// Errors: `Busy` naming the root.
pub(crate) fn refuse_root_rename(op: &'static str, from: &VPath, to: &VPath) -> Result<()> {
    match [from, to].into_iter().find(|p| p.is_root()) {
        Some(root) => Err(Error::new(ErrorKind::Busy, op).with_path(root)),
        None => Ok(()),
    }
}

/// The data side of a write, pumped by the caller outside the store's actor.
///
/// Rules: `write` appends a chunk to the staged file (errors: `NoSpace` when a capacity or the
/// device is full); `finish` seals the staged file for [`Store::start_commit`]. Dropping a
/// writer, or its staged file, without commit removes everything it staged.
pub trait FileWriter: Send + 'static {
    /// The sealed, not yet visible file.
    type Staged: Send + 'static;

    /// Appends `chunk` to the staged file. Errors: `NoSpace`, `Io`.
    fn write(&mut self, chunk: Bytes) -> impl Future<Output = Result<()>> + Send;

    /// Seals the staged file for commit.
    fn finish(self) -> impl Future<Output = Result<Self::Staged>> + Send;
}

/// A storage backend. See the module docs for the rules shared by every operation.
pub trait Store: Send + 'static {
    /// The data side of this store's writes.
    type Writer: FileWriter;

    /// What this store can do besides the contract.
    fn capability(&self) -> Capability;

    /// Metadata of `path`. Errors: `NotFound`; `NotADirectory` when a parent is a file.
    fn stat(&mut self, path: &VPath) -> impl Future<Output = Result<Meta>> + Send;

    /// The direct children of directory `path`, in any order. Errors: `NotFound` if missing,
    /// `NotADirectory` if a file.
    fn list(&mut self, path: &VPath) -> impl Future<Output = Result<Vec<DirEntry>>> + Send;

    /// One page of the direct children of directory `path`: the first with `cursor` `None`, the
    /// next with the cursor the previous page gave ([`ListPage::next`]), until a page gives none.
    /// What a listing that must not hold the whole directory uses (`ls -U`).
    ///
    /// Rules: a page holds about `limit` entries (at least one is asked for), never the whole
    /// of a large directory; it may hold fewer, even none, and still go on. Nothing is kept
    /// between pages, so a listing may stop at any page. Each entry present for the whole
    /// listing is listed exactly once, with one exception: on Redis, when entries of the
    /// directory are removed during the listing, its hash may shrink and `HSCAN` return an
    /// entry again. Entries added or removed during the listing may or may not be listed (as
    /// `readdir`). Errors: `NotFound` if missing and `NotADirectory` if a file, on the first
    /// page; on a later page `NotFound` when the directory is gone (on disk, also when another
    /// directory took its place), or `InvalidInput` for a cursor this store did not make.
    fn list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<ListPage>> + Send;

    /// [`Store::list_page`] in two parts, as [`Store::start_open_read`]: the returned future
    /// lists the page outside the actor, so that pages of several directories are listed side
    /// by side (a transfer's pre-scan). Errors of the first part: a bad path or cursor.
    ///
    /// The default lists the page in the first part.
    fn start_list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<BoxFuture<'static, Result<ListPage>>>> + Send {
        async move {
            let page = self.list_page(path, cursor, limit).await;
            Ok(futures::future::ready(page).boxed())
        }
    }

    /// Creates directory `path`. Without `parents` the parent must exist (`NotFound`) and `path` must
    /// not (`AlreadyExists`). With `parents`, missing ancestors are created and an existing directory
    /// is success. Errors: `NotADirectory` when an ancestor is a file; `AlreadyExists` when `path`
    /// is a file (with or without `parents`).
    fn mkdir(&mut self, path: &VPath, parents: bool) -> impl Future<Output = Result<()>> + Send;

    /// Creates an empty file, or updates the modification time of an existing file or directory.
    /// Errors: `NotFound` when the parent is missing, `NotADirectory` when it is a file.
    fn touch(&mut self, path: &VPath) -> impl Future<Output = Result<()>> + Send;

    /// Removes a file. Errors: `NotFound`; `IsADirectory` for a directory. On disk a symlink is
    /// removed itself, never its target.
    fn remove_file(&mut self, path: &VPath) -> impl Future<Output = Result<()>> + Send;

    /// Removes file `path` if it is still `version` (as a read opened it): what a move does to
    /// its source once the copy is committed. The check and the removal are one step where the
    /// store can make them one (memory, Redis); on disk a change in between is not seen.
    /// Errors: as `remove_file`, and [`changed_during_move`] when the file is another version
    /// now (then it stays), or when `version` is unknown.
    fn remove_file_if(
        &mut self,
        path: &VPath,
        version: &Version,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes an empty directory. Errors: `NotFound`; `NotADirectory` for a file;
    /// `DirectoryNotEmpty`; `Busy` for the store's root.
    fn remove_dir(&mut self, path: &VPath) -> impl Future<Output = Result<()>> + Send;

    /// Removes a directory and everything below it (symlinks are removed, never followed).
    /// Errors: `NotFound`; `NotADirectory` for a file; `Busy` for the store's root.
    fn remove_all(&mut self, path: &VPath) -> impl Future<Output = Result<()>> + Send;

    /// Renames `from` to `to` atomically, as rename(2): a file replaces a file, a directory replaces
    /// an empty directory. Errors: `NotFound` when `from` or `to`'s parent is missing;
    /// `IsADirectory` for a file onto a directory; `NotADirectory` for a directory onto a file;
    /// `DirectoryNotEmpty` onto a non-empty directory; `InvalidInput` for a directory into its own
    /// subtree; `Busy` when either is the store's root. Renaming a path onto itself is success.
    fn rename(&mut self, from: &VPath, to: &VPath) -> impl Future<Output = Result<()>> + Send;

    /// Starts a write of `path`. Checked now, before any data moves: the parent must be a directory
    /// (`NotFound`, `NotADirectory`) and `path` must not be a directory (`IsADirectory`) or a
    /// special file (`Unsupported`).
    fn open_write(
        &mut self,
        path: &VPath,
        mode: WriteMode,
    ) -> impl Future<Output = Result<Self::Writer>> + Send;

    /// Opens file `path` for streaming, in two parts: what must run in the actor, then the
    /// returned future, which owns what it needs, finishes opening outside the actor and yields
    /// the [`FileReader`]. Errors, from either part: `NotFound`; `IsADirectory`; `Unsupported`
    /// for a FIFO, socket or device (refused without blocking). Dropping the future drops
    /// whatever it opened. A store that opens in the actor returns a ready future.
    fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> impl Future<Output = Result<BoxFuture<'static, Result<FileReader>>>> + Send;

    /// Makes a staged file visible at `path` in one atomic step, replacing any file there, in
    /// two parts: what must run in the actor, then the returned future, which owns what it
    /// needs and finishes the commit outside the actor, as [`Store::copy_file`] does, so that
    /// commits do not queue one behind the other in the mailbox. A store whose commit is quick
    /// and touches state only the actor may touch (the memory store) commits in the actor and
    /// returns a ready future.
    ///
    /// Errors: as `open_write`, checked again (in either part), since the tree may have changed
    /// meanwhile. An error from either part discards the staged data and leaves the old file, if
    /// any, untouched. Dropped before its work has started, the future discards the staged data
    /// too; once the work has started, the commit may still complete.
    fn start_commit(
        &mut self,
        path: &VPath,
        staged: <Self::Writer as FileWriter>::Staged,
    ) -> impl Future<Output = Result<BoxFuture<'static, Result<()>>>> + Send;

    /// Reads each of `paths` whole, as [`Store::start_open_read`] and draining its stream would,
    /// if it holds at most `limit` bytes; a larger file is not read ([`WholeRead::TooLarge`]).
    /// In two parts, as `start_open_read`: the returned future runs outside the actor and
    /// yields one result per path, in order. Each path succeeds or fails on its own, with the
    /// errors of `start_open_read`; an error of the whole call (the store is unreachable) comes
    /// first.
    ///
    /// For files a listing showed as regular (a transfer's plan): a store may open a path before
    /// checking its kind, and still refuses a FIFO, socket or device without blocking.
    ///
    /// The default opens each path with [`Store::start_open_read`] and reads them side by side.
    fn start_read_files(
        &mut self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> impl Future<Output = Result<BatchFuture<WholeRead>>> + Send {
        async move {
            let mut opens = Vec::with_capacity(paths.len());
            for path in &paths {
                opens.push(self.start_open_read(path).await);
            }
            Ok(futures::future::join_all(
                opens
                    .into_iter()
                    .map(|open| async move { read_whole(open?.await?, limit).await }),
            )
            .boxed())
        }
    }

    /// Writes each of `files` whole, as [`Store::open_write`] with [`WriteMode::Replace`], one
    /// write and [`Store::start_commit`] would: each file is checked, staged and made visible
    /// atomically on its own, and one file's failure leaves the others alone. In two parts, as
    /// [`Store::start_commit`]: the returned future finishes outside the actor and yields one
    /// result per file, in order. Dropped before it ends, it discards every file not yet
    /// committed; those already committed stay.
    ///
    /// The default stages each file in the actor and commits them side by side.
    fn start_write_files(
        &mut self,
        files: Vec<WholeFile>,
    ) -> impl Future<Output = Result<BatchFuture<()>>> + Send {
        async move {
            let mut commits = Vec::with_capacity(files.len());
            for WholeFile { path, data } in files {
                let staged = async {
                    let mut writer = self.open_write(&path, WriteMode::Replace).await?;
                    writer.write(data).await?;
                    let staged = writer.finish().await?;
                    self.start_commit(&path, staged).await
                }
                .await;
                commits.push(staged);
            }
            Ok(futures::future::join_all(
                commits
                    .into_iter()
                    .map(|commit| async move { commit?.await }),
            )
            .boxed())
        }
    }

    /// Prepares a copy of file `from` into a staged file for `to`, with the same checks as
    /// `start_open_read(from)` and `open_write(to)`. The returned future does the copying; it
    /// owns what it needs and runs outside the actor; dropping it stops the copy. It yields the
    /// staged file and the bytes copied into it (the backend counts them as written); the caller
    /// commits the staged file with [`Store::start_commit`].
    ///
    /// The staged copy holds exactly the source as it was when opened, and the bytes yielded are
    /// its size: a source that changes during the copy (a disk file truncated, grown or
    /// rewritten by another program) is an `Io` error, "source changed while copying", and the
    /// staged data is discarded. A store whose files never change in place (memory, Redis: a
    /// write makes new data) copies the version it opened.
    fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> impl Future<Output = Result<BoxFuture<'static, Result<Copied<Self>>>>> + Send;

    /// Ends the store's work before the process exits: what it still does in the background
    /// (deleting data it freed) finishes, within a bounded time, and its connections close.
    /// The backend calls it once, at shutdown, after every transfer has ended; nothing is asked
    /// of the store after it. The default has nothing to finish.
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Totals of files, directories and bytes, and what holds the store ([`Usage`]). Cheap
    /// enough for a dashboard to call every second: answered from counters the store keeps (or,
    /// in memory, its own tree), never by walking a host directory or scanning a keyspace.
    fn usage(&mut self) -> impl Future<Output = Result<Usage>> + Send;
}
