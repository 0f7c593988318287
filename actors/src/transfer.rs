//! Copies and moves of files and trees, within a mount and across mounts.
//!
//! A transfer runs in three steps. [`plan()`] applies `cp`'s destination rules to each source (an
//! existing directory receives `dst/basename(src)`, otherwise `dst` is created), refuses what
//! coreutils refuses (a directory into itself, a directory without `-r`, a file onto a directory),
//! and pre-scans the source trees so that every entry is known before anything is written. Then
//! the directories are created, parents first, and the files are copied several at a time: inside
//! one mount by the store's fast path (but small files in batches where the store says they go
//! faster so, [`crate::store::Capability::batch_small_copies`]); across mounts, files of up to
//! [`crate::store::SMALL_FILE_MAX`] whole, in batches (module `batch`), since for them the cost
//! per file, not per byte, decides the speed, and larger files by streaming chunks through a
//! bounded pipeline ([`stream_file`]), so memory stays at chunk size x window whatever the file
//! size. Each file commits atomically; the first failure stops the transfer, discards what was in
//! flight and keeps what was already committed.
//!
//! Every copy commits only a file of the size the plan found: a source that changed size since
//! (or while it was copied, on any path: the store's fast path, a stream, a batch) fails the
//! transfer with "source changed while copying", and the old destination stays.
//!
//! A move inside one mount is a rename. A move across mounts deletes each source file only after
//! its copy is committed and verified (its size, and a CRC-32 of the bytes streamed compared with
//! one of the bytes read back; a small file's bytes are compared whole), and only if the source
//! is still the version that was read ([`crate::store::Store::remove_file_if`]): a source changed
//! meanwhile is kept, and the move fails naming it ("changed during the move"). Source
//! directories go last, so an interruption leaves both copies of a file, never neither.
//!
//! Progress is metered here, once, as chunks reach the destination ([`Meter`]); a transfer
//! knows nothing of jobs or events: [`crate::job`] runs it as a job and reports from the meter.
//!
//! Every step that touches a store first asks the transfer's [`Pace`] (module `pace`): a
//! suspended transfer waits there, holding its open writers, and a throttled one takes tokens
//! for its bytes before it writes them; files move side by side in the pace's slots (`-j N`),
//! whose number can change while the transfer runs.
//!
//! A job claims the destinations of its plan before it moves anything ([`Destinations`]), so
//! that a second job of the engine writing one of them is refused as busy.
//!
//! Files: `plan` (destination rules, pre-scan), `tree` (a scanned tree, compactly), `batch`
//! (small files whole), `claims` (the destinations of running jobs), `meter` (progress
//! counters), `pace` (suspend, throttle, concurrency); this file executes a plan and streams
//! large files.

mod batch;
mod claims;
mod meter;
mod pace;
mod plan;
mod tree;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::backend::BackendHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::mounts::Mount;
use crate::path::VPath;
use crate::store::{Version, WriteMode, source_changed};

use self::batch::{Unit, transfer_batch};
pub use self::claims::{Claim, Destinations};
pub use self::meter::{Meter, Progress};
pub use self::pace::{BURST, Bucket, CATCH_UP, Pace, RECHECK};
pub use self::plan::plan;
use self::tree::Tree;
pub use crate::limits::DEFAULT_JOBS;

/// Chunks in flight between a reader and a writer: enough to keep both sides busy.
pub const PIPELINE_WINDOW: usize = 4;

/// Which command asked for the transfer; it decides direction rules and whether sources go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferKind {
    /// `cp`: copy, any direction.
    Copy,
    /// `mv`: move, any direction.
    Move,
    /// `push`: recursive copy from a hot mount to a cold one.
    Push,
    /// `pull`: recursive copy from a cold mount to a hot one.
    Pull,
}

impl TransferKind {
    /// The shell command's name, used in error messages.
    pub fn command(self) -> &'static str {
        match self {
            TransferKind::Copy => "cp",
            TransferKind::Move => "mv",
            TransferKind::Push => "push",
            TransferKind::Pull => "pull",
        }
    }

    fn moves(self) -> bool {
        self == TransferKind::Move
    }
}

/// What to transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// The command, which decides direction rules and whether sources go.
    pub kind: TransferKind,
    /// Files or directories to copy or move.
    pub sources: Vec<VPath>,
    /// The target, following `cp`'s rules.
    pub dest: VPath,
    /// The target was written with a trailing `/` (`cp f dir/`): as in coreutils it names a
    /// directory, which must exist unless the source is a directory to create it as; no file is
    /// ever made under that name.
    #[serde(default)]
    pub dest_is_dir: bool,
    /// Copy directories (`-r`); implied by `mv`, `push` and `pull`.
    pub recursive: bool,
    /// Files copied at once (at least 1).
    pub jobs: usize,
}

/// What a finished transfer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSummary {
    /// Files committed (a rename counts as one).
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Wall time from start to end.
    pub elapsed: Duration,
}

/// One source, resolved against its destination and scanned.
struct PlannedSource {
    from_mount: Mount,
    to_mount: Mount,
    source: VPath,
    target: VPath,
    /// Directories to create, relative to `source`/`target`, parents first (the root is `/`),
    /// and files to copy, relative, with their sizes at scan time; held compactly.
    tree: Tree,
    /// A move inside one mount: a single rename.
    rename: bool,
}

impl PlannedSource {
    /// Whether files go by the store's own fast path: a copy inside one mount whose store has
    /// one. Otherwise they stream, or move whole in batches when small.
    fn fast_copy(&self) -> bool {
        self.from_mount.path == self.to_mount.path && self.from_mount.backend.capability().fast_copy
    }

    /// Whether every file goes by the fast path ([`PlannedSource::fast_copy`]), small ones
    /// included: not when the store moves small files faster in batches.
    fn fast_copy_all(&self) -> bool {
        self.fast_copy() && !self.from_mount.backend.capability().batch_small_copies
    }
}

/// A checked and scanned transfer, ready to run.
pub struct Plan {
    sources: Vec<PlannedSource>,
    kind: TransferKind,
}

impl Plan {
    /// The command that asked for the transfer (`cp`, `mv`, ...), for errors.
    pub fn command(&self) -> &'static str {
        self.kind.command()
    }

    /// Every path the transfer writes: each file's destination, and each rename's target, made
    /// one at a time. Errors: as [`VPath::join`], for a path that outgrows the limit under its
    /// target (the transfer would refuse it too).
    pub fn destinations(&self) -> impl Iterator<Item = Result<VPath>> + '_ {
        self.sources.iter().flat_map(|s| {
            let renamed = s.rename.then(|| Ok(s.target.clone()));
            let files = (0..s.tree.file_count()).map(|i| Ok(s.tree.rel(i)?.rebase(&s.target)));
            renamed.into_iter().chain(files)
        })
    }

    /// Files and bytes the transfer will move (a rename counts its entry as one file of 0 bytes).
    pub fn totals(&self) -> (u64, u64) {
        self.sources.iter().fold((0, 0), |(files, bytes), s| {
            if s.rename {
                (files + 1, bytes)
            } else {
                (files + s.tree.file_count() as u64, bytes + s.tree.bytes())
            }
        })
    }
}

/// Where a running transfer reports (its meter, and a callback per committed file) and what
/// paces it.
pub struct Reporter<'a> {
    /// Counts bytes and files as they move.
    pub meter: &'a Meter,
    /// Paces the transfer: suspends it, limits its rate and its files at once.
    pub pace: &'a Pace,
    /// Called once per committed file, with its path and size.
    pub file_done: &'a (dyn Fn(&VPath, u64) + Send + Sync),
}

impl Reporter<'_> {
    fn done(&self, path: &VPath, bytes: u64) {
        self.meter.file_done();
        (self.file_done)(path, bytes);
    }
}

/// Runs a planned transfer to completion. The first failure stops it; dropping the future
/// cancels it. Either way, files already committed stay and nothing partial is left.
pub async fn execute(plan: &Plan, report: &Reporter<'_>) -> Result<TransferSummary> {
    let op = plan.kind.command();
    let mut summary = TransferSummary::default();
    let pace = report.pace;
    for planned in &plan.sources {
        pace.ready().await;
        if planned.rename {
            report.meter.file_started(&planned.target);
            let backend = &planned.from_mount.backend;
            backend.rename(&planned.source, &planned.target).await?;
            report.done(&planned.target, 0);
            summary.files += 1;
            continue;
        }
        for rel in planned.tree.dirs() {
            let dir = rel.rebase(&planned.target);
            pace.ready().await;
            match planned.to_mount.backend.mkdir(&dir, false).await {
                Ok(()) => summary.dirs += 1,
                // Merging into an existing directory is what cp -r does.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    pace.ready().await;
                    let meta = planned.to_mount.backend.stat(&dir).await?;
                    if !meta.is_dir() {
                        return Err(Error::new(ErrorKind::NotADirectory, op)
                            .with_path(&dir)
                            .with_detail("cannot overwrite non-directory with directory"));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let moves = plan.kind.moves();
        // Steps are made as the transfer reaches them, each file's paths only then: a tree's
        // files are never all held as paths.
        let units: Box<dyn Iterator<Item = Unit> + Send + '_> = if planned.fast_copy_all() {
            Box::new((0..planned.tree.file_count()).map(Unit::One))
        } else {
            Box::new(batch::units(&planned.tree))
        };
        // At most MAX_JOBS polled at once; the pace's slots decide how many of them move, so
        // that `-j N` can change while the transfer runs.
        let copies = futures::stream::iter(units)
            .map(|unit| async move {
                let _slot = pace.slot().await;
                pace.ready().await;
                match unit {
                    Unit::One(i) => {
                        let (rel, size) = (planned.tree.rel(i)?, planned.tree.size(i));
                        let bytes = transfer_file(planned, moves, rel, size, report).await?;
                        Ok((1, bytes))
                    }
                    Unit::Batch(files) => {
                        let files = files
                            .into_iter()
                            .map(|i| Ok((planned.tree.rel(i)?, planned.tree.size(i))))
                            .collect::<Result<Vec<_>>>()?;
                        transfer_batch(planned, moves, files, report).await
                    }
                }
            })
            .buffer_unordered(crate::limits::MAX_JOBS);
        let (files, bytes) = copies
            .try_fold((0, 0), |(files, bytes), (f, b)| async move {
                Ok((files + f, bytes + b))
            })
            .await?;
        summary.files += files;
        summary.bytes += bytes;
        if moves {
            // Children before parents: reverse of the creation order.
            for rel in planned.tree.dirs().iter().rev() {
                let dir = rel.rebase(&planned.source);
                pace.ready().await;
                planned.from_mount.backend.remove_dir(&dir).await?;
            }
        }
    }
    Ok(summary)
}

/// Copies (or moves) one file of `planned`, `rel` being its path relative to the source. Returns
/// its size.
async fn transfer_file(
    planned: &PlannedSource,
    moves: bool,
    rel: VPath,
    size: u64,
    report: &Reporter<'_>,
) -> Result<u64> {
    let from = rel.rebase(&planned.source);
    let to = rel.rebase(&planned.target);
    report.meter.file_started(&to);
    let (src, dst) = (&planned.from_mount.backend, &planned.to_mount.backend);
    let pace = report.pace;
    if planned.fast_copy() {
        // The store copies it whole, so its bytes are taken before it starts. (A move inside
        // one mount is a rename: a fast copy never has a source to delete.)
        pace.admit(size).await;
        src.copy_file(&from, &to, size).await?;
        report.meter.add_bytes(size);
    } else {
        let streamed = stream_file(src, &from, dst, &to, size, report.meter, pace, moves).await?;
        if moves {
            // Delete the source only once its copy is committed and verified, and only if it
            // is still the version that was read.
            pace.ready().await;
            verify(dst, &to, &streamed).await?;
            pace.ready().await;
            src.remove_file_if(&from, &streamed.version).await?;
        }
    }
    report.done(&to, size);
    Ok(size)
}

/// What [`stream_file`] moved: its length, when asked for its CRC-32, and which version of the
/// source it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamed {
    /// Bytes moved.
    pub bytes: u64,
    /// Their CRC-32, when asked for.
    pub crc: Option<u32>,
    /// The version of the source they are.
    pub version: Version,
}

/// Reads `path` back and checks it against what was streamed into it. Errors: `Io` naming the
/// path when the length or checksum differs.
async fn verify(backend: &BackendHandle, path: &VPath, expected: &Streamed) -> Result<()> {
    let mut reader = backend.open_read(path).await?;
    let mut crc = crc32fast::Hasher::new();
    let mut bytes = 0u64;
    while let Some(chunk) = reader.chunks.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        crc.update(&chunk);
    }
    if (bytes, Some(crc.finalize())) != (expected.bytes, expected.crc) {
        return Err(Error::new(ErrorKind::Io, "mv")
            .with_path(path)
            .with_detail("the copy does not match what was sent; the source is kept"));
    }
    Ok(())
}

/// Streams file `from` on `src` into `to` on `dst` through a pipeline of [`PIPELINE_WINDOW`]
/// chunks, metering bytes as they are written, then commits it; with `checksum`, a CRC-32 of the
/// bytes goes along (a move verifies its copy with it; a copy need not pay for it). It commits
/// only a copy of `planned` bytes, the size the plan found: a source of another size when
/// opened, or one that ends early, is an `Io` error ("source changed while copying"). On any
/// error the destination is untouched.
///
/// `pace` is asked before each store operation and each chunk, read or written: suspended, the
/// stream stops at a chunk boundary and keeps its writer, so continuing goes on from there.
#[allow(clippy::too_many_arguments)]
pub async fn stream_file(
    src: &BackendHandle,
    from: &VPath,
    dst: &BackendHandle,
    to: &VPath,
    planned: u64,
    meter: &Meter,
    pace: &Pace,
    checksum: bool,
) -> Result<Streamed> {
    let op = "cp";
    pace.ready().await;
    let mut reader = src.open_read(from).await?;
    if reader.size != planned {
        return Err(source_changed(op, from, planned, reader.size));
    }
    let version = std::mem::take(&mut reader.version);
    pace.ready().await;
    let mut writer = dst.open_write(to, WriteMode::Replace).await?;
    let expected = planned;
    let (tx, mut rx) = mpsc::channel(PIPELINE_WINDOW);
    // Reading and writing overlap: the reader fills the window while the writer drains it. When
    // the writer fails, `rx` is dropped and the reader's next send ends it.
    let read_side = async move {
        loop {
            pace.ready().await;
            let Some(chunk) = reader.chunks.next().await else {
                break;
            };
            if tx.send(chunk?).await.is_err() {
                break;
            }
        }
        Ok::<(), Error>(())
    };
    let write_side = async {
        let mut crc = checksum.then(crc32fast::Hasher::new);
        let mut copied = 0u64;
        while let Some(chunk) = rx.recv().await {
            let n = chunk.len() as u64;
            if let Some(crc) = &mut crc {
                crc.update(&chunk);
            }
            pace.admit(n).await;
            writer.write(chunk).await?;
            copied += n;
            meter.add_bytes(n);
        }
        Ok::<Streamed, Error>(Streamed {
            bytes: copied,
            crc: crc.map(crc32fast::Hasher::finalize),
            version,
        })
    };
    let ((), streamed) = futures::try_join!(read_side, write_side)?;
    if streamed.bytes != expected {
        return Err(source_changed(op, from, expected, streamed.bytes));
    }
    pace.ready().await;
    writer.commit().await?;
    Ok(streamed)
}
