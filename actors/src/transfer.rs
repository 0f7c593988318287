//! Copies and moves of files and trees, within a mount and across mounts.
//!
//! A transfer runs in three steps. [`plan`] applies `cp`'s destination rules to each source (an
//! existing directory receives `dst/basename(src)`, otherwise `dst` is created), refuses what
//! coreutils refuses (a directory into itself, a directory without `-r`, a file onto a directory),
//! and pre-scans the source trees so that every entry is known before anything is written. Then
//! the directories are created, parents first, and the files are copied several at a time: inside
//! one mount by the store's fast path, across mounts by streaming chunks through a bounded
//! pipeline ([`stream_file`]), so memory stays at chunk size x window whatever the file size.
//! Each file commits atomically; the first failure stops the transfer, discards what was in
//! flight and keeps what was already committed.
//!
//! A move inside one mount is a rename. A move across mounts deletes each source file only after
//! its copy is committed and its size checked, and deletes source directories last, so an
//! interruption leaves both copies of a file, never neither.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

use crate::backend::BackendHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::mounts::{Mount, MountTable, Tier};
use crate::path::VPath;
use crate::store::{EntryKind, WriteMode};

/// Chunks in flight between a reader and a writer: enough to keep both sides busy.
pub const PIPELINE_WINDOW: usize = 4;
/// Files copied at once by default.
pub const DEFAULT_JOBS: usize = 4;

/// Which command asked for the transfer; it decides direction rules and whether sources go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
pub struct TransferRequest {
    pub kind: TransferKind,
    pub sources: Vec<VPath>,
    pub dest: VPath,
    /// Copy directories (`-r`); implied by `mv`, `push` and `pull`.
    pub recursive: bool,
    /// Files copied at once (at least 1).
    pub jobs: usize,
}

/// What a finished transfer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferSummary {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// One source, resolved against its destination and scanned.
struct PlannedSource {
    from_mount: Mount,
    to_mount: Mount,
    source: VPath,
    target: VPath,
    /// Directories to create, relative to `source`/`target`, parents first (the root is `/`).
    dirs: Vec<VPath>,
    /// Files to copy, relative, with their sizes at scan time.
    files: Vec<(VPath, u64)>,
    /// A move inside one mount: a single rename.
    rename: bool,
}

/// Runs `request` to completion.
pub async fn run(table: &MountTable, request: &TransferRequest) -> Result<TransferSummary> {
    let started = Instant::now();
    let op = request.kind.command();
    let plans = plan(table, request).await?;
    let mut summary = TransferSummary::default();
    for planned in &plans {
        if planned.rename {
            planned
                .from_mount
                .backend
                .rename(&planned.source, &planned.target)
                .await?;
            continue;
        }
        for rel in &planned.dirs {
            let dir = rel.rebase(&planned.target);
            match planned.to_mount.backend.mkdir(&dir, false).await {
                Ok(()) => summary.dirs += 1,
                // Merging into an existing directory is what cp -r does.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
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
        let moves = request.kind.moves();
        let copies = futures::stream::iter(planned.files.clone())
            .map(|(rel, size)| transfer_file(planned, moves, rel, size))
            .buffer_unordered(request.jobs.max(1));
        let bytes: Vec<u64> = copies.try_collect().await?;
        summary.files += bytes.len() as u64;
        summary.bytes += bytes.iter().sum::<u64>();
        if request.kind.moves() {
            // Children before parents: reverse of the creation order.
            for rel in planned.dirs.iter().rev() {
                let dir = rel.rebase(&planned.source);
                planned.from_mount.backend.remove_dir(&dir).await?;
            }
        }
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Copies (or moves) one file of `planned`, `rel` being its path relative to the source. Returns
/// its size.
async fn transfer_file(planned: &PlannedSource, moves: bool, rel: VPath, size: u64) -> Result<u64> {
    let from = rel.rebase(&planned.source);
    let to = rel.rebase(&planned.target);
    copy_file(planned, &from, &to).await?;
    if moves {
        // Delete the source only once its copy is committed and complete.
        let copied = planned.to_mount.backend.stat(&to).await?;
        if copied.size != size {
            return Err(Error::new(ErrorKind::Io, "mv")
                .with_path(&to)
                .with_detail("copy size differs from the source; source kept"));
        }
        planned.from_mount.backend.remove_file(&from).await?;
    }
    Ok(size)
}

/// Copies one file from `planned.from_mount` to `planned.to_mount`.
async fn copy_file(planned: &PlannedSource, from: &VPath, to: &VPath) -> Result<()> {
    let (src, dst) = (&planned.from_mount.backend, &planned.to_mount.backend);
    if planned.from_mount.path == planned.to_mount.path && src.capability().fast_copy {
        return src.copy_file(from, to).await;
    }
    stream_file(src, from, dst, to).await.map(|_| ())
}

/// Streams file `from` on `src` into `to` on `dst` through a pipeline of [`PIPELINE_WINDOW`]
/// chunks, then commits it. Returns the bytes copied. On any error the destination is untouched.
pub async fn stream_file(
    src: &BackendHandle,
    from: &VPath,
    dst: &BackendHandle,
    to: &VPath,
) -> Result<u64> {
    let mut reader = src.open_read(from).await?;
    let mut writer = dst.open_write(to, WriteMode::Replace).await?;
    let expected = reader.size;
    let (tx, mut rx) = mpsc::channel(PIPELINE_WINDOW);
    // Reading and writing overlap: the reader fills the window while the writer drains it. When
    // the writer fails, `rx` is dropped and the reader's next send ends it.
    let read_side = async move {
        while let Some(chunk) = reader.chunks.next().await {
            if tx.send(chunk?).await.is_err() {
                break;
            }
        }
        Ok::<(), Error>(())
    };
    let write_side = async {
        let mut copied = 0u64;
        while let Some(chunk) = rx.recv().await {
            copied += chunk.len() as u64;
            writer.write(chunk).await?;
        }
        Ok::<u64, Error>(copied)
    };
    let ((), copied) = futures::try_join!(read_side, write_side)?;
    if copied != expected {
        return Err(Error::new(ErrorKind::Io, "cp")
            .with_path(from)
            .with_detail(format!(
                "source changed while copying ({expected} bytes expected, {copied} read)"
            )));
    }
    writer.commit().await?;
    Ok(copied)
}

/// Resolves every source of `request` to its target and scans it, refusing before any write what
/// the whole transfer could not do.
async fn plan(table: &MountTable, request: &TransferRequest) -> Result<Vec<PlannedSource>> {
    let op = request.kind.command();
    let dest_mount = table
        .get(op, &request.dest, ErrorKind::PermissionDenied)?
        .clone();
    let dest_meta = match dest_mount.backend.stat(&request.dest).await {
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let dest_is_dir = dest_meta.as_ref().is_some_and(|m| m.is_dir());
    if request.sources.len() > 1 && !dest_is_dir {
        let kind = if dest_meta.is_some() {
            ErrorKind::NotADirectory
        } else {
            ErrorKind::NotFound
        };
        return Err(Error::new(kind, op)
            .with_path(&request.dest)
            .with_detail("target of several sources must be a directory"));
    }
    let mut plans = Vec::with_capacity(request.sources.len());
    for source in &request.sources {
        let from_mount = table.get(op, source, ErrorKind::Busy)?.clone();
        check_direction(request.kind, &from_mount, &dest_mount)?;
        let meta = from_mount.backend.stat(source).await?;
        let source_is_root = from_mount.path == *source;
        if request.kind.moves() && source_is_root {
            return Err(Error::new(ErrorKind::Busy, op)
                .with_path(source)
                .with_detail("a mount root cannot be moved"));
        }
        if meta.is_dir() && !request.recursive {
            return Err(Error::new(ErrorKind::IsADirectory, op)
                .with_path(source)
                .with_detail("-r not specified; omitting directory"));
        }
        let target = if dest_is_dir {
            let name = source.file_name().unwrap_or_default();
            request.dest.join(name)?
        } else {
            request.dest.clone()
        };
        if *source == target {
            return Err(Error::new(ErrorKind::InvalidInput, op)
                .with_path(source)
                .with_detail(format!("{source} and {target} are the same file")));
        }
        if meta.is_dir() && target.starts_with(source) {
            return Err(Error::new(ErrorKind::InvalidInput, op)
                .with_path(source)
                .with_detail(format!("cannot copy a directory into itself, {target}")));
        }
        let target_meta = match dest_mount.backend.stat(&target).await {
            Ok(m) => Some(m),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        match (&target_meta, meta.is_dir()) {
            (Some(t), false) if t.is_dir() => {
                return Err(Error::new(ErrorKind::IsADirectory, op)
                    .with_path(&target)
                    .with_detail("cannot overwrite directory with non-directory"));
            }
            (Some(t), true) if !t.is_dir() => {
                return Err(Error::new(ErrorKind::NotADirectory, op)
                    .with_path(&target)
                    .with_detail("cannot overwrite non-directory with directory"));
            }
            _ => {}
        }
        let rename = request.kind.moves() && from_mount.path == dest_mount.path;
        let (dirs, files) = if rename {
            (Vec::new(), Vec::new())
        } else if meta.is_dir() {
            scan_tree(&from_mount.backend, source, op).await?
        } else if meta.is_file() {
            (Vec::new(), vec![(VPath::root(), meta.size)])
        } else {
            return Err(unsupported_entry(op, source, meta.kind));
        };
        plans.push(PlannedSource {
            from_mount,
            to_mount: dest_mount.clone(),
            source: source.clone(),
            target,
            dirs,
            files,
            rename,
        });
    }
    Ok(plans)
}

/// Refuses `push` and `pull` in the wrong direction, naming `cp` as the command that copies any way.
fn check_direction(kind: TransferKind, from: &Mount, to: &Mount) -> Result<()> {
    let (want_from, want_to) = match kind {
        TransferKind::Push => (Tier::Hot, Tier::Cold),
        TransferKind::Pull => (Tier::Cold, Tier::Hot),
        TransferKind::Copy | TransferKind::Move => return Ok(()),
    };
    if from.tier == want_from && to.tier == want_to {
        return Ok(());
    }
    Err(Error::new(ErrorKind::InvalidInput, kind.command()).with_detail(format!(
        "{} copies {want_from} -> {want_to}, but {} is {} and {} is {}; use cp to copy between any mounts",
        kind.command(),
        from.path,
        from.tier,
        to.path,
        to.tier
    )))
}

fn unsupported_entry(op: &'static str, path: &VPath, kind: EntryKind) -> Error {
    let what = match kind {
        EntryKind::Symlink => "a symlink that cannot be followed",
        _ => "not a regular file or directory",
    };
    Error::new(ErrorKind::Unsupported, op)
        .with_path(path)
        .with_detail(what)
}

type Scan = (Vec<VPath>, Vec<(VPath, u64)>);

/// Lists the tree under directory `root`: its directories (relative, parents first, starting with
/// `/` for the root itself) and its files with sizes. Errors: `Unsupported` for an entry that is
/// neither (a FIFO, or a symlink leading outside a disk root), before anything is copied.
async fn scan_tree(backend: &BackendHandle, root: &VPath, op: &'static str) -> Result<Scan> {
    let mut dirs = vec![VPath::root()];
    let mut files = Vec::new();
    let mut next = 0;
    while next < dirs.len() {
        let rel = dirs[next].clone();
        next += 1;
        let abs = rel.rebase(root);
        let mut entries = backend.list(&abs).await?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for entry in entries {
            let child = rel.join(&entry.name)?;
            match entry.meta.kind {
                EntryKind::Dir => dirs.push(child),
                EntryKind::File => files.push((child, entry.meta.size)),
                other => return Err(unsupported_entry(op, &child.rebase(root), other)),
            }
        }
    }
    Ok((dirs, files))
}
