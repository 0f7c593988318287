//! One page of a directory listing ([`crate::store::Store::list_page`]), read from where the
//! previous page stopped, without holding the directory or anything open between pages.
//!
//! The cursor is the directory's identity (device, inode) and the kernel's offset after the
//! last entry read (`d_off`, the cookie `telldir` returns and `seekdir` takes; NFS servers page
//! directories the same way). Each page opens the directory inside the sandbox, checks that it
//! is still the one the listing started on, seeks to the offset and reads on. Entries are the
//! same as [`super::walk::list`]'s: a symlink is listed as one, the staging directory is hidden
//! at the root, non-UTF-8 names and entries that vanish meanwhile are left out.

use std::ffi::CStr;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, SystemTime};

use cap_std::fs::Dir;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::store::{DirEntry, EntryKind, ListCursor, Meta};

use super::STAGING;
use super::sandbox::file_id;

/// Where a disk listing goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DiskCursor {
    dev: u64,
    ino: u64,
    offset: i64,
}

impl DiskCursor {
    /// The cursor of `text`, as [`DiskCursor::to_cursor`] wrote it; `None` for any other.
    pub(super) fn parse(cursor: &ListCursor) -> Option<DiskCursor> {
        let mut parts = cursor.as_str().splitn(3, ':');
        let mut next = || parts.next()?.parse::<i64>().ok();
        let (dev, ino, offset) = (next()?, next()?, next()?);
        Some(DiskCursor {
            dev: dev as u64,
            ino: ino as u64,
            offset,
        })
    }

    fn to_cursor(self) -> ListCursor {
        // Device and inode as i64 bits, so that parsing is one integer type.
        ListCursor::new(format!(
            "{}:{}:{}",
            self.dev as i64, self.ino as i64, self.offset
        ))
    }
}

/// A page: its entries and where the listing goes on (`None`: it ended).
pub(super) type Page = (Vec<DirEntry>, Option<ListCursor>);

/// Reads up to `limit` entries of directory `rel` (at least one is asked for), from `cursor`
/// on. Errors: as opening the directory; `NotFound` when the directory at `rel` is not the one
/// `cursor` was made for (it was replaced).
pub(super) fn list_page(
    root: &Dir,
    rel: &Path,
    root_id: (u64, u64),
    cursor: Option<DiskCursor>,
    limit: usize,
) -> io::Result<Page> {
    let dir = root.open_dir(rel)?;
    let (dev, ino) = file_id(&dir.dir_metadata()?);
    if let Some(c) = cursor
        && (c.dev, c.ino) != (dev, ino)
    {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the directory was replaced while it was listed",
        ));
    }
    let at_root = rel == Path::new(".") || (dev, ino) == root_id;
    // Its own descriptor, opened for reading (cap-std may hold a directory as `O_PATH`, which
    // cannot be read): the stream seeks and reads it, while `stat` goes through `dir`'s.
    let fd: OwnedFd = rustix::fs::openat(
        &dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut stream = rustix::fs::Dir::new(fd)?;
    if let Some(c) = cursor {
        stream.seek(c.offset)?;
    }
    let limit = limit.max(1);
    let mut entries = Vec::with_capacity(limit.min(crate::store::LIST_PAGE_ENTRIES));
    let mut offset = cursor.map(|c| c.offset);
    while entries.len() < limit {
        let Some(entry) = stream.read() else {
            return Ok((entries, None));
        };
        let entry = entry?;
        offset = Some(entry.offset());
        let raw = entry.file_name();
        if raw == c"." || raw == c".." {
            continue;
        }
        let Ok(name) = raw.to_str() else {
            // A virtual path is UTF-8: such an entry could never be named in a later command.
            tracing::warn!(dir = %rel.display(), name = ?raw, "skipping a non-UTF-8 file name");
            continue;
        };
        if at_root && name == STAGING {
            continue;
        }
        let Some(meta) = stat_entry(&dir, raw)? else {
            continue;
        };
        entries.push(DirEntry {
            name: name.to_string(),
            meta,
        });
    }
    let next = offset.map(|offset| DiskCursor { dev, ino, offset }.to_cursor());
    Ok((entries, next))
}

/// Metadata of entry `name` of `dir`, not following a symlink (a single component, so nothing
/// outside the sandbox is reached); `None` when it vanished.
fn stat_entry(dir: &Dir, name: &CStr) -> io::Result<Option<Meta>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(meta_of_stat(&st))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A [`Meta`] from `stat`, as [`super::sandbox::meta_of`] makes one from cap-std's metadata.
fn meta_of_stat(st: &Stat) -> Meta {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => EntryKind::Dir,
        FileType::RegularFile => EntryKind::File,
        FileType::Symlink => EntryKind::Symlink,
        _ => EntryKind::Special,
    };
    let modified = if st.st_mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(st.st_mtime as u64, st.st_mtime_nsec as u32)
    } else {
        SystemTime::UNIX_EPOCH
    };
    Meta {
        kind,
        size: if kind == EntryKind::File {
            st.st_size as u64
        } else {
            0
        },
        modified,
    }
}
