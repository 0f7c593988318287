//! Staging sessions: a staging directory of its own for every open store, so that several
//! processes (two shells on one config) can share a disk root.
//!
//! `.mavfs-staging` at the root holds, per open store, a directory `<id>/` for its temp files
//! and a lock file `<id>.lock` that the store holds locked (`flock`) for as long as it lives.
//! Opening a store sweeps every session whose lock nobody holds: its process died, and its temp
//! files can never be committed. A live session is never touched, whoever sweeps. A store that
//! closes removes its own session.
//!
//! Rules: the lock file exists, locked, before its directory does, and a session checks that its
//! lock file is still the one it locked before it creates the directory (a sweeper that ran in
//! between removed it), so a directory without a lock file is never live.

use std::collections::HashSet;
use std::io;
use std::ops::Deref;
use std::time::{SystemTime, UNIX_EPOCH};

use cap_fs_ext::DirExt;
use cap_std::fs::{Dir, MetadataExt, OpenOptions};
use rustix::fs::FlockOperation;

use super::STAGING;

const LOCK_SUFFIX: &str = ".lock";

/// The staging directory of one open store. Dropped, it removes itself and its lock.
#[derive(Debug)]
pub(super) struct Session {
    dir: Dir,
    /// `.mavfs-staging` itself.
    parent: Dir,
    id: String,
    /// Held locked for the session's life; closing it releases the lock.
    _lock: std::fs::File,
}

impl Deref for Session {
    type Target = Dir;

    fn deref(&self) -> &Dir {
        &self.dir
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Best effort: what a failure leaves, the next store to open on this root sweeps.
        let _ = self.parent.remove_dir_all(&self.id);
        let _ = self.parent.remove_file(lock_name(&self.id));
    }
}

fn lock_name(id: &str) -> String {
    format!("{id}{LOCK_SUFFIX}")
}

/// Takes `file`'s lock if nobody holds it. `Ok(false)` when someone does.
fn try_lock(file: &std::fs::File) -> io::Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl Session {
    /// Makes sure `.mavfs-staging` is a directory of the root (an entry of another kind is
    /// removed, never followed), sweeps the sessions of dead stores and starts a new one.
    pub(super) fn open(root: &Dir) -> io::Result<Session> {
        match root.symlink_metadata(STAGING) {
            Ok(md) if md.is_dir() => {}
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
        let parent = root.open_dir_nofollow(STAGING)?;
        sweep(&parent)?;
        for attempt in 0..16u32 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let id = format!("{}.{nanos:x}.{attempt}", std::process::id());
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            let lock = match parent.open_with(lock_name(&id), &options) {
                Ok(file) => file.into_std(),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            if !try_lock(&lock)? {
                continue;
            }
            // A sweeper may have taken the lock between the create and the flock and removed
            // the file: then this lock guards nothing, and another name is needed.
            let still_ours = match parent.symlink_metadata(lock_name(&id)) {
                Ok(md) => {
                    let held = lock.metadata()?;
                    use std::os::unix::fs::MetadataExt as _;
                    (md.dev(), md.ino()) == (held.dev(), held.ino())
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            if !still_ours {
                continue;
            }
            parent.create_dir(&id)?;
            let dir = parent.open_dir_nofollow(&id)?;
            return Ok(Session {
                dir,
                parent,
                id,
                _lock: lock,
            });
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name for a staging session",
        ))
    }
}

/// Removes every session of `parent` (the staging directory) whose lock nobody holds, and any
/// other entry (what older versions left loose).
fn sweep(parent: &Dir) -> io::Result<()> {
    let mut live = HashSet::new();
    let mut dirs = Vec::new();
    for entry in parent.entries()? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(LOCK_SUFFIX) {
            let lock = match parent.open(&name) {
                Ok(file) => file.into_std(),
                // Its owner closed it meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if try_lock(&lock)? {
                // Dead: its directory first, so that a directory never outlives its lock
                // unswept; the lock file last, while this sweeper holds it.
                remove_dir_all_quiet(parent, id)?;
                remove_quiet(parent, &name)?;
            } else {
                live.insert(id.to_string());
            }
        } else if entry.file_type()?.is_dir() {
            dirs.push(name);
        } else {
            remove_quiet(parent, &name)?;
        }
    }
    for id in dirs {
        let locked = match parent.symlink_metadata(lock_name(&id)) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        // Without a lock file a directory belongs to no live session (see the module rules).
        if !live.contains(&id) && !locked {
            remove_dir_all_quiet(parent, &id)?;
        }
    }
    Ok(())
}

/// Removes directory `name` and its contents; already gone is success (another sweeper).
fn remove_dir_all_quiet(parent: &Dir, name: &str) -> io::Result<()> {
    match parent.remove_dir_all(name) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes file `name`; already gone is success.
fn remove_quiet(parent: &Dir, name: &str) -> io::Result<()> {
    match parent.remove_file(name) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
