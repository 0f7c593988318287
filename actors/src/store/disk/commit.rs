//! The store's side of a write: [`open_write_now`] checks the destination and creates the temp
//! file ([`super::staging`]); [`commit_blocking`] checks it again and renames the staged file
//! into place, which rename(2) does atomically, then flushes the directory when asked to.

use std::io;
use std::path::Path;
use std::sync::Arc;

use cap_fs_ext::OpenOptionsMaybeDirExt;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
use rustix::fs::OFlags;

use crate::error::Result;
use crate::path::VPath;
use crate::store::WriteMode;

use super::errors::io_error;
use super::sandbox::{open_checked, split_parent, target_in, write_parent, write_target};
use super::session::Session;
use super::staging::{DiskStaged, DiskWriter, TempFile};
use super::usage::{Counters, Totals};

/// [`Store::open_write`](crate::store::Store::open_write): checks `path`, opens the old file of
/// an append, creates the temp file.
pub(super) fn open_write_now(
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
            let (file, size, _) = open_checked(OP, path, &target.dir, Path::new(&target.name))?;
            Some((file, size))
        }
        _ => None,
    };
    drop(target);
    let (temp, file) = TempFile::create(staging).map_err(io_error(OP, path))?;
    Ok(DiskWriter::new(file, prefix, temp, fsync, path.clone()))
}

/// Makes `staged` visible at `path`: checks the destination again, writes a small file's data,
/// renames the temp file into place and, with `fsync`, flushes the directory, and applies the
/// new file (or the change of size of the file it replaced) to `counters`. A blocking call.
pub(super) fn commit_blocking(
    root: &Dir,
    staging: &Dir,
    fsync: bool,
    path: &VPath,
    mut staged: DiskStaged,
    counters: &Counters,
) -> Result<()> {
    const OP: &str = "write";
    let to_error = io_error(OP, path);
    // On any error below, `staged` drops and its temp file goes; the old file is untouched.
    let (rel, dir) = write_parent(root, OP, path)?;
    staged.write_pending().map_err(&to_error)?;
    let len = staged.len;
    let pending = counters.begin();
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
        pending.apply(Totals::file(len));
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
        // A dangling link that stays inside is replaced by a new file.
        pending.apply(match &target.existing {
            Some(old) => Totals::resized(old.len(), len),
            None => Totals::file(len),
        });
        target.dir
    };
    staged.temp.set_committed();
    if fsync {
        fsync_dir(&dir).map_err(&to_error)?;
    }
    Ok(())
}

/// Syncs directory `dir` so that a rename into it survives a power loss.
pub(super) fn fsync_dir(dir: &Dir) -> io::Result<()> {
    // `dir` may be an O_PATH descriptor, which fsync refuses (EBADF): open it again, as `.`, so
    // that it is the very directory renamed into.
    let mut options = OpenOptions::new();
    options
        .read(true)
        .maybe_dir(true)
        .custom_flags(OFlags::DIRECTORY.bits() as i32);
    dir.open_with(".", &options)?.sync_all()
}
