//! Directory walks that may take long (`list` of a large directory, `usage` of a tree). They are
//! plain blocking functions; the store runs them on the blocking pool or its scanner thread.

use std::io;
use std::path::Path;

use cap_fs_ext::DirExt;
use cap_std::fs::Dir;

use crate::store::{DirEntry, Usage};

use super::STAGING;
use super::sandbox::{child, file_id, meta_of};

/// Errors that make a walk skip an entry rather than fail: it vanished meanwhile, or the host
/// will not let us in.
fn skippable(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
    )
}

/// The entries of directory `rel`.
///
/// A symlink is reported as [`EntryKind::Symlink`](crate::store::EntryKind::Symlink), whatever
/// it points at, so that no walk built on listings follows one (a path *through* a link that
/// stays inside still resolves: `stat`, `cd` and `cat` follow it). Entries that vanish during
/// the listing are left out. The staging directory is hidden when the listed directory is the
/// root, whichever path reached it.
pub(super) fn list(root: &Dir, rel: &Path, root_id: (u64, u64)) -> io::Result<Vec<DirEntry>> {
    let dir = root.open_dir(rel)?;
    let at_root = rel == Path::new(".") || file_id(&dir.dir_metadata()?) == root_id;
    let mut out = Vec::new();
    for entry in dir.entries()? {
        let entry = entry?;
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            // A virtual path is UTF-8: such an entry could never be named in a later command.
            tracing::warn!(dir = %rel.display(), name = ?os_name, "skipping a non-UTF-8 file name");
            continue;
        };
        if at_root && name == STAGING {
            continue;
        }
        let own = match entry.metadata() {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // A symlink is listed as a symlink, never as what it points at: walks of a tree (`cp -r`,
        // `du`, `tree`) must not follow links, or a link to an ancestor would never end.
        let meta = meta_of(&own);
        out.push(DirEntry {
            name: name.to_string(),
            meta,
        });
    }
    Ok(out)
}

/// Totals of the tree below directory `rel` (`.`: the root), without following symlinks and
/// without the staging directory. Only regular files and directories count; unreadable
/// directories are skipped. Before each directory it asks `stop`, and ends with `Interrupted`
/// when that says so.
pub(super) fn usage(root: &Dir, rel: &Path, stop: &dyn Fn() -> bool) -> io::Result<Usage> {
    let mut usage = Usage::default();
    // Paths, not open handles, on the stack: a wide tree must not hold one descriptor per
    // directory waiting its turn.
    let mut stack = vec![rel.to_path_buf()];
    while let Some(rel) = stack.pop() {
        if stop() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let dir = match root.open_dir_nofollow(&rel) {
            Ok(dir) => dir,
            Err(e) if skippable(&e) => continue,
            Err(e) => return Err(e),
        };
        let at_root = rel == Path::new(".");
        for entry in dir.entries()? {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if skippable(&e) => continue,
                Err(e) => return Err(e),
            };
            let name = entry.file_name();
            if at_root && name == STAGING {
                continue;
            }
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) if skippable(&e) => continue,
                Err(e) => return Err(e),
            };
            if file_type.is_dir() {
                usage.dirs += 1;
                stack.push(child(&rel, &name));
            } else if file_type.is_file() {
                usage.files += 1;
                usage.bytes += entry.metadata().map_or(0, |md| md.len());
            }
        }
    }
    Ok(usage)
}
