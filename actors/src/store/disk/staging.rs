//! Staged files: temp files in the store's staging directory, the writer that fills them and the
//! sealed file that [`Store::commit`](crate::store::Store::commit) renames into place.
//!
//! Rule: a temp file lives exactly as long as its [`TempFile`] guard, unless a commit renamed it
//! away. Every path that abandons a write (an error, a dropped writer, a dropped staged file, a
//! dropped copy future) therefore leaves nothing behind, without any cleanup code of its own.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cap_std::fs::{Dir, OpenOptions};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::FileWriter;

use super::join_error;

/// Distinguishes the temp files of one process; the pid and the clock distinguish processes.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temp file in the staging directory, removed on drop unless committed.
#[derive(Debug)]
pub(super) struct TempFile {
    dir: Arc<Dir>,
    name: String,
    committed: bool,
}

impl TempFile {
    /// Creates a new, empty, uniquely named temp file in `dir` and opens it for writing.
    pub(super) fn create(dir: &Arc<Dir>) -> io::Result<(TempFile, std::fs::File)> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        // `create_new` makes a clash an error rather than a shared file: pick another name. Clashes
        // need another process with the same pid (a container) in the same nanosecond.
        for _ in 0..16 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "{}.{}.{nanos:08x}.tmp",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            match dir.open_with(&name, &options) {
                Ok(file) => {
                    let temp = TempFile {
                        dir: dir.clone(),
                        name,
                        committed: false,
                    };
                    return Ok((temp, file.into_std()));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name in the staging directory",
        ))
    }

    /// The temp file's name inside the staging directory.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Records that the temp file was renamed into the tree, so that drop leaves it alone.
    pub(super) fn set_committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: an unlink that fails here leaves an orphan, which the next `open` sweeps.
            let _ = self.dir.remove_file(&self.name);
        }
    }
}

/// Copies the old contents of an appended file into the staged file, if still pending.
fn copy_prefix(prefix: Option<std::fs::File>, file: &mut std::fs::File) -> io::Result<()> {
    if let Some(mut old) = prefix {
        // std::io::copy between two Files uses copy_file_range on Linux (in-kernel, reflink-able).
        io::copy(&mut old, file)?;
    }
    Ok(())
}

/// A write in progress to a temp file in the staging directory.
///
/// Each chunk is written on the blocking pool, never on the async runtime. Dropping the writer
/// removes the temp file.
#[derive(Debug)]
pub struct DiskWriter {
    /// `None` only while a chunk is being written, or after a write was cancelled mid-way.
    file: Option<std::fs::File>,
    /// For an append: the old file, copied in before the first new byte. The copy happens here,
    /// outside the store's actor, so that `open_write` stays quick however large the file is.
    prefix: Option<std::fs::File>,
    temp: TempFile,
    fsync: bool,
    path: VPath,
}

impl DiskWriter {
    pub(super) fn new(
        file: std::fs::File,
        prefix: Option<std::fs::File>,
        temp: TempFile,
        fsync: bool,
        path: VPath,
    ) -> Self {
        DiskWriter {
            file: Some(file),
            prefix,
            temp,
            fsync,
            path,
        }
    }

    fn take_file(&mut self) -> Result<std::fs::File> {
        self.file.take().ok_or_else(|| {
            Error::new(ErrorKind::Cancelled, "write")
                .with_path(&self.path)
                .with_detail("an earlier write to this file was cancelled")
        })
    }
}

/// A sealed staged file, ready for [`Store::commit`](crate::store::Store::commit). Dropping it
/// removes the temp file.
#[derive(Debug)]
pub struct DiskStaged {
    pub(super) temp: TempFile,
}

impl FileWriter for DiskWriter {
    type Staged = DiskStaged;

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        if chunk.is_empty() && self.prefix.is_none() {
            return Ok(());
        }
        let mut file = self.take_file()?;
        let prefix = self.prefix.take();
        // The File travels into the blocking task and back, so no lock is needed.
        let (file, result) = tokio::task::spawn_blocking(move || {
            let result = copy_prefix(prefix, &mut file).and_then(|()| file.write_all(&chunk));
            (file, result)
        })
        .await
        .map_err(|e| join_error("write", &self.path, e))?;
        self.file = Some(file);
        result.map_err(|e| Error::from_io("write", e).with_path(&self.path))
    }

    async fn finish(mut self) -> Result<DiskStaged> {
        let mut file = self.take_file()?;
        let prefix = self.prefix.take();
        if prefix.is_some() || self.fsync {
            let fsync = self.fsync;
            tokio::task::spawn_blocking(move || {
                copy_prefix(prefix, &mut file)?;
                if fsync {
                    file.sync_all()?;
                }
                Ok(())
            })
            .await
            .map_err(|e| join_error("write", &self.path, e))?
            .map_err(|e| Error::from_io("write", e).with_path(&self.path))?;
        }
        Ok(DiskStaged { temp: self.temp })
    }
}
