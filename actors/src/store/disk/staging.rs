//! Staged files: temp files in the store's staging directory, the writer that fills them and the
//! sealed file that [`Store::start_commit`](crate::store::Store::start_commit) renames into place.
//!
//! Rule: a temp file lives exactly as long as its [`TempFile`] guard, unless a commit renamed it
//! away. Every path that abandons a write (an error, a dropped writer, a dropped staged file, a
//! dropped copy or commit future) therefore leaves nothing behind, without any cleanup code of
//! its own.
//!
//! A small file never pays a trip to the blocking pool per chunk: the writer keeps up to
//! [`SMALL_FILE`] bytes in memory, and the commit writes them into the temp file in the same
//! blocking call that renames it into place. Larger files stream to the temp file as they come.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cap_std::fs::OpenOptions;

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::FileWriter;

use super::errors::join_error;
use super::session::Session;

/// Distinguishes the temp files of one process; the pid and the clock distinguish processes.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Bytes a writer keeps in memory before it streams to its temp file. Up to this size a file is
/// written and renamed by one blocking call at commit. Each writer holds at most this much, on
/// top of the transfer's own pipeline.
pub(super) const SMALL_FILE: usize = 256 << 10;

/// The process id, asked of the kernel once rather than for every temp file.
fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// A temp file in the staging directory, removed on drop unless committed.
#[derive(Debug)]
pub(super) struct TempFile {
    dir: Arc<Session>,
    name: String,
    committed: bool,
}

impl TempFile {
    /// Creates a new, empty, uniquely named temp file in `dir` and opens it for writing.
    pub(super) fn create(dir: &Arc<Session>) -> io::Result<(TempFile, std::fs::File)> {
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
                pid(),
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

/// Writes `chunks` to the end of `file`.
fn write_chunks(file: &mut std::fs::File, chunks: &[Bytes]) -> io::Result<()> {
    chunks.iter().try_for_each(|chunk| file.write_all(chunk))
}

/// A write in progress to a temp file in the staging directory.
///
/// Chunks stay in memory while the file is at most `SMALL_FILE` bytes and go to the temp file
/// with the commit; past that, they are written as they come. Either way file data is written on
/// the blocking pool, never on the async runtime. Dropping the writer removes the temp file.
#[derive(Debug)]
pub struct DiskWriter {
    /// `None` only while chunks are being written, or after such a write was cancelled mid-way.
    file: Option<std::fs::File>,
    /// Chunks not yet written, while the file is small.
    pending: Vec<Bytes>,
    /// Bytes in `pending`.
    pending_len: usize,
    /// Set once chunks go to the temp file as they come: the file is not small.
    streaming: bool,
    /// For an append: the old file, copied in before the first new byte. The copy happens here,
    /// outside the store's actor, so that `open_write` stays quick however large the file is.
    prefix: Option<std::fs::File>,
    temp: TempFile,
    fsync: bool,
    path: VPath,
    /// Bytes the staged file holds once written: the old bytes of an append and every chunk.
    /// The commit counts it in the store's usage without a stat.
    len: u64,
}

impl DiskWriter {
    /// A writer to `file`, the temp file `temp`; for an append, `prefix` is the old file and
    /// its length.
    pub(super) fn new(
        file: std::fs::File,
        prefix: Option<(std::fs::File, u64)>,
        temp: TempFile,
        fsync: bool,
        path: VPath,
    ) -> Self {
        let (prefix, len) = match prefix {
            Some((old, len)) => (Some(old), len),
            None => (None, 0),
        };
        DiskWriter {
            len,
            file: Some(file),
            pending: Vec::new(),
            pending_len: 0,
            // An append copies the old bytes first, which may be many: no point holding chunks.
            streaming: prefix.is_some(),
            prefix,
            temp,
            fsync,
            path,
        }
    }

    fn take_file(&mut self) -> Result<std::fs::File> {
        self.file.take().ok_or_else(|| self.cancelled())
    }

    fn cancelled(&self) -> Error {
        Error::new(ErrorKind::Cancelled, "write")
            .with_path(&self.path)
            .with_detail("an earlier write to this file was cancelled")
    }

    /// Writes the old bytes of an append, the pending chunks and `then`, in one blocking call.
    async fn flush(&mut self, then: Option<Bytes>, sync: bool) -> Result<()> {
        let mut file = self.take_file()?;
        let prefix = self.prefix.take();
        let mut chunks = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        chunks.extend(then);
        // The File travels into the blocking task and back, so no lock is needed.
        let (file, result) = tokio::task::spawn_blocking(move || {
            let result = copy_prefix(prefix, &mut file)
                .and_then(|()| write_chunks(&mut file, &chunks))
                .and_then(|()| if sync { file.sync_all() } else { Ok(()) });
            (file, result)
        })
        .await
        .map_err(|e| join_error("write", &self.path, e))?;
        self.file = Some(file);
        result.map_err(|e| Error::from_io("write", e).with_path(&self.path))
    }
}

/// A sealed staged file, ready for
/// [`Store::start_commit`](crate::store::Store::start_commit). Dropping it removes the temp file.
#[derive(Debug)]
pub struct DiskStaged {
    pub(super) temp: TempFile,
    /// The temp file, still open: the commit writes `pending` to it and sets its mode.
    pub(super) file: std::fs::File,
    /// A small file's chunks, written by the commit before the rename.
    pending: Vec<Bytes>,
    /// Whether the commit must flush the file to the device after writing `pending`.
    sync: bool,
    /// Bytes the file holds once `pending` is written, for the store's usage counters.
    pub(super) len: u64,
}

impl DiskStaged {
    /// A staged file whose `len` bytes are all in the temp file already.
    pub(super) fn written(temp: TempFile, file: std::fs::File, len: u64) -> Self {
        DiskStaged {
            temp,
            file,
            pending: Vec::new(),
            sync: false,
            len,
        }
    }

    /// A new temp file in `staging` for a whole file's `data`, which the commit writes. A
    /// blocking call.
    pub(super) fn whole(staging: &Arc<Session>, data: Bytes, sync: bool) -> io::Result<Self> {
        let (temp, file) = TempFile::create(staging)?;
        Ok(DiskStaged {
            temp,
            file,
            len: data.len() as u64,
            pending: vec![data],
            sync,
        })
    }

    /// Writes the pending chunks and flushes them if asked. A blocking call.
    pub(super) fn write_pending(&mut self) -> io::Result<()> {
        write_chunks(&mut self.file, &self.pending)?;
        self.pending = Vec::new();
        if self.sync {
            self.file.sync_all()?;
            self.sync = false;
        }
        Ok(())
    }
}

impl FileWriter for DiskWriter {
    type Staged = DiskStaged;

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        if chunk.is_empty() && self.prefix.is_none() {
            return Ok(());
        }
        if self.file.is_none() {
            return Err(self.cancelled());
        }
        self.len += chunk.len() as u64;
        if !self.streaming && self.pending_len + chunk.len() <= SMALL_FILE {
            self.pending_len += chunk.len();
            self.pending.push(chunk);
            return Ok(());
        }
        self.streaming = true;
        self.flush(Some(chunk), false).await
    }

    async fn finish(mut self) -> Result<DiskStaged> {
        if self.streaming {
            // The old bytes of an append with no new ones, and the device flush, still to do.
            if self.prefix.is_some() || self.fsync {
                self.flush(None, self.fsync).await?;
            }
            let file = self.take_file()?;
            return Ok(DiskStaged::written(self.temp, file, self.len));
        }
        let file = self.take_file()?;
        Ok(DiskStaged {
            temp: self.temp,
            file,
            pending: self.pending,
            sync: self.fsync,
            len: self.len,
        })
    }
}
