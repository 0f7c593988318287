//! The sandbox: every store path resolved inside the root, never outside it.
//!
//! Each operation resolves a path through the sandbox once: a store path becomes a relative host
//! path ([`rel_path`]), its parent directory is opened through cap-std ([`open_dir`]), the entry
//! is looked at by its single name without following it (one `statx`), and creates, opens and
//! renames happen relative to that directory, so that no lookup can leave the root whatever
//! symlinks or races appear inside. Only a final symlink takes the
//! longer way through [`Dir::metadata`] and [`Dir::canonicalize`], which resolve inside the
//! sandbox too. Here are also the checks that decide where a write lands ([`write_target`]) and
//! the open that never blocks on a FIFO or device ([`open_regular`]).

use std::ffi::{OsStr, OsString};
use std::io;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions, OpenOptionsExt};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{EntryKind, Meta, Version};

use super::errors::{error, io_error};
use super::{DiskStore, STAGING};

/// A directory opened through the sandbox, or the root itself (which needs no opening).
pub(super) enum OpenDir<'a> {
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
pub(super) fn open_dir<'a>(root: &'a Dir, rel: &Path) -> io::Result<OpenDir<'a>> {
    if rel == Path::new(".") {
        Ok(OpenDir::Root(root))
    } else {
        root.open_dir(rel).map(OpenDir::Opened)
    }
}

/// Where a write of a store path lands, as checked by [`write_target`].
pub(super) struct Target<'a> {
    /// The directory to rename into, opened through the sandbox.
    pub(super) dir: OpenDir<'a>,
    /// The name in `dir`: the store path's own, or that of where its symlink leads (inside the
    /// root). Never a symlink that could be followed out, never `.` or `..`.
    pub(super) name: OsString,
    /// The regular file that the write replaces, if any.
    pub(super) existing: Option<Metadata>,
}

/// The relative host path of a store path. Errors: `PermissionDenied` for the staging directory.
///
/// A [`VPath`] has no `.`, `..` or empty components, so this is a plain string change; cap-std
/// refuses whatever its symlinks might try.
pub(super) fn rel_path(op: &'static str, path: &VPath) -> Result<PathBuf> {
    match path.components().next() {
        None => Ok(PathBuf::from(".")),
        Some(STAGING) => Err(reserved(op, path)),
        Some(_) => Ok(PathBuf::from(&path.as_str()[1..])),
    }
}

pub(super) fn reserved(op: &'static str, path: &VPath) -> Error {
    Error::new(ErrorKind::PermissionDenied, op)
        .with_path(path)
        .with_detail("reserved name")
}

/// `name` below the relative directory `rel` (`.` stays out of the result).
pub(super) fn child(rel: &Path, name: impl AsRef<Path>) -> PathBuf {
    if rel == Path::new(".") {
        name.as_ref().to_path_buf()
    } else {
        rel.join(name)
    }
}

/// The parent directory and the last name of a relative path (`.` for both at the root).
pub(super) fn split_parent(rel: &Path) -> (&Path, &OsStr) {
    match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(name)) if parent.as_os_str().is_empty() => (Path::new("."), name),
        (Some(parent), Some(name)) => (parent, name),
        _ => (Path::new("."), OsStr::new(".")),
    }
}

/// Device and inode. Metadata from std (a path stat'ed outside the sandbox, an open std `File`)
/// goes through `Metadata::from_just_metadata`, which keeps every unix field.
pub(super) fn file_id(md: &Metadata) -> (u64, u64) {
    (md.dev(), md.ino())
}

/// The [`Version`] of the file `md` describes: device, inode, size, modification and change
/// times. Appending, rewriting in place, truncating or replacing the file changes it.
pub(super) fn version_of(md: &Metadata) -> Version {
    Version::disk(
        md.dev(),
        md.ino(),
        md.len(),
        (md.mtime(), md.mtime_nsec()),
        (md.ctime(), md.ctime_nsec()),
    )
}

/// The store's view of host metadata. `md` comes from a stat that followed symlinks, except for
/// a link that could not be followed, which stays a [`EntryKind::Symlink`].
pub(super) fn meta_of(md: &Metadata) -> Meta {
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
pub(super) fn check_regular(op: &'static str, path: &VPath, md: &Metadata) -> Result<()> {
    if md.is_file() {
        Ok(())
    } else if md.is_dir() {
        Err(error(ErrorKind::IsADirectory, op, path))
    } else {
        Err(error(ErrorKind::Unsupported, op, path)
            .with_detail("not a regular file (FIFO, socket or device)"))
    }
}

/// Checks that `path` can receive a file, as `open_write` and `commit` require, and says where
/// the file goes.
///
/// Errors: `IsADirectory` for a directory (and the root), `Unsupported` for a special file,
/// `NotFound`/`NotADirectory` for a bad parent, `PermissionDenied` for a symlink that leads
/// outside the root. A dangling symlink that stays inside is replaced by the file.
pub(super) fn write_target<'a>(
    root: &'a Dir,
    op: &'static str,
    path: &VPath,
) -> Result<Target<'a>> {
    let (rel, dir) = write_parent(root, op, path)?;
    target_in(root, op, path, &rel, dir)
}

/// The relative path of `path`, which must not be the root, and its parent directory opened
/// through the sandbox.
pub(super) fn write_parent<'a>(
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
pub(super) fn target_in<'a>(
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
pub(super) fn regular_target<'a>(
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
pub(super) fn open_checked(
    op: &'static str,
    path: &VPath,
    dir: &Dir,
    name: &Path,
) -> Result<(std::fs::File, u64, Version)> {
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
    Ok((file, md.len(), version_of(&md)))
}

/// Opens regular file `rel` for reading, never blocking on a FIFO or device, and returns it with
/// its size and version, as of the open.
pub(super) fn open_regular(
    root: &Dir,
    op: &'static str,
    path: &VPath,
    rel: &Path,
) -> Result<(std::fs::File, u64, Version)> {
    let (parent, _) = split_parent(rel);
    let dir = open_dir(root, parent).map_err(io_error(op, path))?;
    open_regular_in(root, &dir, op, path, rel)
}

/// [`open_regular`] with `rel`'s parent directory already open as `dir`, for a batch that
/// reads many files of one directory.
pub(super) fn open_regular_in(
    root: &Dir,
    dir: &Dir,
    op: &'static str,
    path: &VPath,
    rel: &Path,
) -> Result<(std::fs::File, u64, Version)> {
    let to_error = io_error(op, path);
    let (_, name) = split_parent(rel);
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
    open_checked(op, path, dir, Path::new(name))
}

/// [`open_regular_in`] for a transfer's batched read, whose plan listed `rel` as a regular file:
/// it opens first and checks the kind on the open file, which saves the `statx` before the open
/// (a third of the system calls per small file). The open is `openat2` of the single name,
/// beneath `dir`, following no symlink, non-blocking and without taking a terminal, so a FIFO
/// or socket put there since the listing is refused without blocking, as ever; only a device
/// node, which takes `CAP_MKNOD` to make, swapped in since the listing would be opened before
/// being refused, as `cp -r` opens what its walk listed. A symlink, or a kernel without
/// `openat2`, takes [`open_regular_in`]'s way.
///
/// The file is left non-blocking: local filesystems ignore the flag on a regular file; a reader
/// that gets `WouldBlock` (FUSE may honour it) clears it and reads again
/// (`super::reader::read_listed`).
pub(super) fn open_listed_in(
    root: &Dir,
    dir: &Dir,
    op: &'static str,
    path: &VPath,
    rel: &Path,
) -> Result<(std::fs::File, u64, Version)> {
    let (_, name) = split_parent(rel);
    let flags =
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(dir, name, flags, Mode::empty(), resolve) {
        Ok(fd) => {
            let file = cap_std::fs::File::from_std(std::fs::File::from(fd));
            let md = file.metadata().map_err(io_error(op, path))?;
            check_regular(op, path, &md)?;
            Ok((file.into_std(), md.len(), version_of(&md)))
        }
        Err(Errno::LOOP | Errno::NOSYS | Errno::XDEV) => open_regular_in(root, dir, op, path, rel),
        Err(e) => Err(io_error(op, path)(e.into())),
    }
}

impl DiskStore {
    /// The host path of an entry about to be removed and its own metadata (symlink_metadata: a
    /// link is removed itself, whatever it points at). Errors: `at_root` for the store's root;
    /// `NotFound` and the like from the host.
    pub(super) fn removal_target(
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

    /// Checks that the parent of `rel` is a directory. Errors: `NotFound`, `NotADirectory`,
    /// `PermissionDenied` when it leads outside.
    pub(super) fn check_parent(&self, op: &'static str, path: &VPath, rel: &Path) -> Result<()> {
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
    pub(super) fn set_times_now(&self, rel: &Path) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::disk::DiskOptions;

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
