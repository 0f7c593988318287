//! Planning a transfer: `cp`'s destination rules applied to each source, and the pre-scan.

use std::collections::VecDeque;

use tokio_util::task::AbortOnDropHandle;

use crate::backend::BackendHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::mounts::{Mount, MountTable, Tier};
use crate::path::VPath;
use crate::store::{EntryKind, LIST_PAGE_ENTRIES, ListPage};

use super::tree::Tree;
use super::{Plan, PlannedSource, TransferKind, TransferRequest};

/// Resolves every source of `request` to its target and scans it, refusing before any write what
/// the whole transfer could not do.
pub async fn plan(table: &MountTable, request: &TransferRequest) -> Result<Plan> {
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
    if request.dest_is_dir && dest_meta.is_some() && !dest_is_dir {
        return Err(Error::new(ErrorKind::NotADirectory, op).with_path(&request.dest));
    }
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
        if request.dest_is_dir && dest_meta.is_none() && !meta.is_dir() {
            // `cp f missing/`: coreutils' "cannot create regular file 'missing/'".
            return Err(Error::new(ErrorKind::NotADirectory, op)
                .with_path(&request.dest)
                .with_detail(format!(
                    "{}/ names a directory, and there is none",
                    request.dest
                )));
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
        let tree = if rename {
            Tree::default()
        } else if meta.is_dir() {
            scan_tree(&from_mount.backend, source, op).await?
        } else if meta.is_file() {
            Tree::file(meta.size)
        } else {
            return Err(unsupported_entry(op, source, meta.kind, false));
        };
        plans.push(PlannedSource {
            from_mount,
            to_mount: dest_mount.clone(),
            source: source.clone(),
            target,
            tree,
            rename,
        });
    }
    Ok(Plan {
        sources: plans,
        kind: request.kind,
    })
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

/// The error for an entry that is neither a file nor a directory. `in_tree`: met while walking a
/// source tree, where symlinks are never followed (a link to an ancestor would never end).
fn unsupported_entry(op: &'static str, path: &VPath, kind: EntryKind, in_tree: bool) -> Error {
    let what = match (kind, in_tree) {
        (EntryKind::Symlink, true) => {
            "a symlink; trees are copied without following links, copy its target by its own path"
        }
        (EntryKind::Symlink, false) => "a symlink that cannot be followed",
        _ => "not a regular file or directory",
    };
    Error::new(ErrorKind::Unsupported, op)
        .with_path(path)
        .with_detail(what)
}

/// Directories whose first page the pre-scan asks for ahead, each in a task of its own, while it
/// goes through the ones before them: a disk store lists them on threads side by side, where one
/// at a time the listing of 20,000 small files took 31-36 ms before a pull could start.
const SCAN_AHEAD: usize = 4;

/// Lists the tree under directory `root`: its directories (relative, parents first, starting
/// with `/` for the root itself) and its files with sizes, each directory's sorted by name. A
/// page at a time (a directory of 10^6 entries is never held whole); the first pages of the
/// next [`SCAN_AHEAD`] directories are asked for ahead and taken in order, so the tree is the
/// same as listed one directory at a time. Errors: `Unsupported` for
/// an entry that is neither (a FIFO, or a symlink leading outside a disk root), before anything
/// is copied.
async fn scan_tree(backend: &BackendHandle, root: &VPath, op: &'static str) -> Result<Tree> {
    let mut tree = Tree::directory();
    // The first pages of directories `next..asked`, asked for ahead, in directory order.
    let mut ahead: VecDeque<AbortOnDropHandle<Result<ListPage>>> = VecDeque::new();
    let mut asked = 0;
    let mut next = 0;
    while next < tree.dirs().len() {
        while asked < tree.dirs().len() && asked < next + SCAN_AHEAD {
            let (backend, abs) = (backend.clone(), tree.dirs()[asked].rebase(root));
            ahead.push_back(AbortOnDropHandle::new(tokio::spawn(async move {
                backend.list_page(&abs, None, LIST_PAGE_ENTRIES).await
            })));
            asked += 1;
        }
        let mut first_page = Some(ahead.pop_front().expect("asked for above"));
        let rel = tree.dirs()[next].clone();
        let at = next as u32;
        next += 1;
        let abs = rel.rebase(root);
        let first_file = tree.file_count();
        let mut subdirs = Vec::new();
        // The first by name of the entries that cannot be copied: the one reported, whatever
        // order the store lists in.
        let mut refused: Option<(String, EntryKind)> = None;
        let mut cursor = None;
        loop {
            let page = match first_page.take() {
                Some(task) => task.await.map_err(|e| {
                    Error::new(ErrorKind::Io, op)
                        .with_path(&abs)
                        .with_detail(format!("listing it failed: {e}"))
                })??,
                None => backend.list_page(&abs, cursor, LIST_PAGE_ENTRIES).await?,
            };
            for entry in page.entries {
                match entry.meta.kind {
                    EntryKind::Dir => subdirs.push(entry.name),
                    EntryKind::File => tree.push_file(at, &entry.name, entry.meta.size)?,
                    other => {
                        if refused.as_ref().is_none_or(|(name, _)| entry.name < *name) {
                            refused = Some((entry.name, other));
                        }
                    }
                }
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        if let Some((name, kind)) = refused {
            let child = rel.join(&name)?;
            return Err(unsupported_entry(op, &child.rebase(root), kind, true));
        }
        tree.sort_files_from(first_file);
        subdirs.sort_unstable();
        subdirs.dedup();
        for name in subdirs {
            tree.push_dir(rel.join(&name)?)?;
        }
    }
    Ok(tree)
}
