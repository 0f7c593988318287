//! `impl Store for DiskStore`: each operation of the contract.
//!
//! Short metadata syscalls run here, in the store's actor. Directory walks, copies and removals
//! of trees run on the blocking pool; opens, commits and batches of small files run as jobs on
//! the store's [`Lane`], handed out as futures the caller runs, so that neither the mailbox nor
//! the async runtime waits on the disk.

use std::io::{self, Read};
use std::path::PathBuf;

use cap_std::fs::{Metadata, MetadataExt as _, OpenOptions};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    BatchFuture, Capability, DirEntry, FileReader, ListCursor, ListPage, Meta, Store, Usage,
    Version, WholeFile, WholeRead, WriteMode, changed_during_move, source_changed,
};

use super::commit::{commit_blocking, open_write_now};
use super::errors::{error, io_error, join_error, lost_batch};
use super::lane::Lane;
use super::lister::{self, DiskCursor};
use super::reader::{open_read_blocking, read_files_blocking};
use super::sandbox::{file_id, meta_of, open_regular, rel_path, version_of, write_target};
use super::staging::{DiskStaged, DiskWriter, TempFile};
use super::usage::Totals;
use super::{DiskStore, walk};

impl Store for DiskStore {
    type Writer = DiskWriter;

    fn capability(&self) -> Capability {
        Capability {
            fast_copy: true,
            batch_small_copies: false,
            capacity: false,
        }
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        const OP: &str = "stat";
        self.check_root(OP, path)?;
        let rel = rel_path(OP, path)?;
        match self.root.metadata(&rel) {
            Ok(md) => Ok(meta_of(&md)),
            // A final symlink that cannot be followed is still an entry: report the link.
            Err(e) => match self.root.symlink_metadata(&rel) {
                Ok(link) if link.is_symlink() => Ok(meta_of(&link)),
                _ => Err(Error::from_io(OP, e).with_path(path)),
            },
        }
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        const OP: &str = "list";
        self.check_root(OP, path)?;
        let rel = rel_path(OP, path)?;
        let root = self.root.clone();
        let root_id = self.root_id;
        tokio::task::spawn_blocking(move || walk::list(&root, &rel, root_id))
            .await
            .map_err(|e| join_error(OP, path, e))?
            .map_err(io_error(OP, path))
    }

    async fn list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        self.start_list_page(path, cursor, limit).await?.await
    }

    async fn start_list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<BoxFuture<'static, Result<ListPage>>> {
        const OP: &str = "list";
        self.check_root(OP, path)?;
        let rel = rel_path(OP, path)?;
        let cursor = match cursor {
            None => None,
            Some(c) => Some(DiskCursor::parse(&c).ok_or_else(|| {
                error(ErrorKind::InvalidInput, OP, path).with_detail("not a listing cursor")
            })?),
        };
        let root = self.root.clone();
        let root_id = self.root_id;
        let path = path.clone();
        Ok(async move {
            let (entries, next) = tokio::task::spawn_blocking(move || {
                lister::list_page(&root, &rel, root_id, cursor, limit)
            })
            .await
            .map_err(|e| join_error(OP, &path, e))?
            .map_err(io_error(OP, &path))?;
            Ok(ListPage { entries, next })
        }
        .boxed())
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        const OP: &str = "mkdir";
        self.check_root(OP, path)?;
        let rel = rel_path(OP, path)?;
        if path.is_root() {
            return if parents {
                Ok(())
            } else {
                Err(error(ErrorKind::AlreadyExists, OP, path))
            };
        }
        let pending = self.counters().begin();
        if !parents {
            self.root.create_dir(&rel).map_err(io_error(OP, path))?;
            pending.apply(Totals::dirs(1));
            return Ok(());
        }
        let mut created = 0;
        let made = self.mkdir_parents(path, &mut created);
        pending.apply(Totals::dirs(created));
        made
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "touch";
        self.check_root(OP, path)?;
        let rel = rel_path(OP, path)?;
        if !path.is_root() {
            self.check_parent(OP, path, &rel)?;
            let mut options = OpenOptions::new();
            // create_new never opens an existing entry (nor follows a final symlink), so it
            // cannot block on a FIFO or write through a link that leads outside.
            options.write(true).create_new(true);
            let pending = self.counters().begin();
            match self.root.open_with(&rel, &options) {
                Ok(_) => {
                    pending.apply(Totals::file(0));
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::from_io(OP, e).with_path(path)),
            }
            // In place, a change reaches every link of the file, and one may lie outside the
            // root: a shared file is read, never modified.
            if let Ok(md) = self.root.metadata(&rel)
                && md.is_file()
                && md.nlink() > 1
            {
                return Err(
                    error(ErrorKind::PermissionDenied, OP, path).with_detail(format!(
                        "it has {} hard links, and MAVFS never modifies a file shared with other \
                     paths in place",
                        md.nlink()
                    )),
                );
            }
        }
        self.set_times_now(&rel).map_err(io_error(OP, path))
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rm";
        self.check_root(OP, path)?;
        let (rel, md) = self.removal_target(OP, path, ErrorKind::IsADirectory)?;
        if md.is_dir() {
            return Err(error(ErrorKind::IsADirectory, OP, path));
        }
        let pending = self.counters().begin();
        self.root.remove_file(&rel).map_err(io_error(OP, path))?;
        // A symlink, FIFO or the like was never counted.
        if md.is_file() {
            pending.apply(Totals::file(md.len()).removed());
        }
        Ok(())
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rmdir";
        self.check_root(OP, path)?;
        let (rel, md) = self.removal_target(OP, path, ErrorKind::Busy)?;
        if !md.is_dir() {
            return Err(error(ErrorKind::NotADirectory, OP, path));
        }
        let pending = self.counters().begin();
        self.root.remove_dir(&rel).map_err(io_error(OP, path))?;
        pending.apply(Totals::dirs(1).removed());
        Ok(())
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        const OP: &str = "rm";
        self.check_root(OP, path)?;
        let (rel, md) = self.removal_target(OP, path, ErrorKind::Busy)?;
        if md.is_symlink() {
            // The link goes, never what it points at.
            return self.root.remove_file(&rel).map_err(io_error(OP, path));
        }
        if !md.is_dir() {
            return Err(error(ErrorKind::NotADirectory, OP, path));
        }
        let root = self.root.clone();
        let counters = self.counters().clone();
        tokio::task::spawn_blocking(move || {
            // What goes is counted first, in the same blocking job: the walk below and the
            // removal see the same tree, bar writes racing the removal.
            let below = walk::usage(&root, &rel, &|| false);
            let pending = counters.begin();
            // cap-std's remove_dir_all never follows symlinks below the directory either.
            let removed = root.remove_dir_all(&rel);
            match (&removed, below) {
                (Ok(()), Ok(below)) => {
                    let mut gone = Totals::of(&below);
                    gone.dirs += 1;
                    pending.apply(gone.removed());
                }
                // Some of it may be gone: a rescan says how much.
                _ => pending.unsure(),
            }
            removed
        })
        .await
        .map_err(|e| join_error(OP, path, e))?
        .map_err(io_error(OP, path))
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        const OP: &str = "mv";
        self.check_root(OP, from)?;
        crate::store::refuse_root_rename(OP, from, to)?;
        let from_rel = rel_path(OP, from)?;
        let to_rel = rel_path(OP, to)?;
        // symlink_metadata: a link is moved itself.
        let from_md = self
            .root
            .symlink_metadata(&from_rel)
            .map_err(io_error(OP, from))?;
        if from == to {
            return Ok(());
        }
        let from_is_dir = from_md.is_dir();
        if from_is_dir && to.starts_with(from) {
            return Err(error(ErrorKind::InvalidInput, OP, to)
                .with_detail(format!("cannot move {from} into itself")));
        }
        self.check_parent(OP, to, &to_rel)?;
        let replaced = match self.root.symlink_metadata(&to_rel) {
            Ok(md) if md.is_dir() && !from_is_dir => {
                return Err(error(ErrorKind::IsADirectory, OP, to));
            }
            Ok(md) if !md.is_dir() && from_is_dir => {
                return Err(error(ErrorKind::NotADirectory, OP, to));
            }
            // rename(2) between two links of one file does nothing: nothing is replaced.
            Ok(md) if file_id(&md) == file_id(&from_md) => None,
            Ok(md) => Some(md),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::from_io(OP, e).with_path(to)),
        };
        let pending = self.counters().begin();
        self.root
            .rename(&from_rel, &self.root, &to_rel)
            .map_err(|e| {
                let err = Error::from_io(OP, e).with_path(to);
                // rename(2) may say EEXIST instead of ENOTEMPTY for a non-empty directory.
                if err.kind() == ErrorKind::AlreadyExists {
                    error(ErrorKind::DirectoryNotEmpty, OP, to)
                } else {
                    err
                }
            })?;
        // A move inside the store changes no total, but the destination it replaced goes.
        match replaced {
            Some(md) if md.is_file() => pending.apply(Totals::file(md.len()).removed()),
            Some(md) if md.is_dir() => pending.apply(Totals::dirs(1).removed()),
            _ => {}
        }
        Ok(())
    }

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        const OP: &str = "read";
        if path.is_root() {
            return Err(error(ErrorKind::IsADirectory, OP, path));
        }
        let rel = rel_path(OP, path)?;
        // Opening, and reading a small file whole, take one job on the lane: in the actor the
        // opens of a transfer's files would queue one behind the other, and a separate read
        // would cost a second trip to a blocking thread.
        let root = self.root.clone();
        let chunk_size = self.options.chunk_size;
        let buffers = self.buffers.clone();
        let path = path.clone();
        Ok(on_lane(self.lane.clone(), OP, path.clone(), move || {
            open_read_blocking(&root, &path, &rel, buffers, chunk_size)
        })
        .boxed())
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<DiskWriter> {
        self.check_root("write", path)?;
        // In the actor: the checks and the temp file's creation are short metadata calls (the
        // data goes to the temp file later, or with the commit, on a blocking thread).
        open_write_now(&self.root, &self.staging, self.options.fsync, path, mode)
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        staged: DiskStaged,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        // Nothing to do in the actor: the checks, a small file's data and the rename take one
        // blocking job, so that the commits of a transfer's files do not queue in the mailbox.
        let (root, staging, fsync) = (self.root.clone(), self.staging.clone(), self.options.fsync);
        let counters = self.counters().clone();
        let path = path.clone();
        if fsync {
            // A commit that waits on the device is no job for the lane, where it would hold up
            // the short ones: it gets a blocking thread of its own.
            return Ok(async move {
                let at = path.clone();
                tokio::task::spawn_blocking(move || {
                    commit_blocking(&root, &staging, fsync, &path, staged, &counters)
                })
                .await
                .map_err(|e| join_error("write", &at, e))?
            }
            .boxed());
        }
        Ok(on_lane(self.lane.clone(), "write", path.clone(), move || {
            commit_blocking(&root, &staging, fsync, &path, staged, &counters)
        })
        .boxed())
    }

    async fn start_read_files(
        &mut self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> Result<BatchFuture<WholeRead>> {
        // The whole batch is one blocking job: one trip to a blocking thread, not one a file. Not
        // on the lane: reads contend for nothing, and batches of a transfer in flight side by
        // side then read on threads side by side, where the lane's one thread made them queue.
        let root = self.root.clone();
        Ok(async move {
            let count = paths.len();
            let job =
                tokio::task::spawn_blocking(move || read_files_blocking(&root, &paths, limit));
            job.await
                .unwrap_or_else(|lost| vec![Err(lost_batch("read", &lost)); count])
        }
        .boxed())
    }

    async fn start_write_files(&mut self, files: Vec<WholeFile>) -> Result<BatchFuture<()>> {
        // The whole batch is one blocking job: each file is staged with its data and renamed
        // into place, as a one-file commit does. With fsync the job waits on the device, so it
        // gets a thread of its own rather than holding up the lane.
        let (root, staging, fsync) = (self.root.clone(), self.staging.clone(), self.options.fsync);
        let counters = self.counters().clone();
        let count = files.len();
        let job = move || {
            files
                .into_iter()
                .map(|WholeFile { path, data }| {
                    let staged = DiskStaged::whole(&staging, data, fsync)
                        .map_err(io_error("write", &path))?;
                    commit_blocking(&root, &staging, fsync, &path, staged, &counters)
                })
                .collect::<Vec<_>>()
        };
        if fsync {
            return Ok(async move {
                tokio::task::spawn_blocking(job)
                    .await
                    .unwrap_or_else(|e| vec![Err(lost_batch("write", &e)); count])
            }
            .boxed());
        }
        let lane = self.lane.clone();
        Ok(async move {
            lane.run(job)
                .await
                .unwrap_or_else(|lost| vec![Err(lost_batch("write", &lost)); count])
        }
        .boxed())
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<(DiskStaged, u64)>>> {
        const OP: &str = "cp";
        self.check_root(OP, from)?;
        if from.is_root() {
            return Err(error(ErrorKind::IsADirectory, OP, from));
        }
        let from_rel = rel_path(OP, from)?;
        let (source, size, version) = open_regular(&self.root, OP, from, &from_rel)?;
        write_target(&self.root, OP, to)?;
        let (temp, mut dest) = TempFile::create(&self.staging).map_err(io_error(OP, to))?;
        let fsync = self.options.fsync;
        let (from, to) = (from.clone(), to.clone());
        Ok(async move {
            let at = to.clone();
            tokio::task::spawn_blocking(move || {
                // Between two std Files, std::io::copy uses copy_file_range: the kernel copies
                // (or reflinks) without the data passing through user space, nor whole in memory.
                // Exactly the `size` bytes the file had at open, never to whatever end it has
                // now: another program may truncate, grow or rewrite it meanwhile.
                let copied =
                    io::copy(&mut (&source).take(size), &mut dest).map_err(io_error(OP, &to))?;
                let after = source.metadata().map_err(io_error(OP, &from))?;
                if copied != size || after.len() != size {
                    let found = if copied != size { copied } else { after.len() };
                    return Err(source_changed(OP, &from, size, found));
                }
                if version_of(&Metadata::from_just_metadata(after)) != version {
                    return Err(error(ErrorKind::Io, OP, &from)
                        .with_detail("source changed while copying (it was written to)"));
                }
                if fsync {
                    dest.sync_all().map_err(io_error(OP, &to))?;
                }
                // On an error above, `temp` drops here and the partial copy goes with it.
                Ok((DiskStaged::written(temp, dest, copied), copied))
            })
            .await
            .map_err(|e| join_error(OP, &at, e))?
        }
        .boxed())
    }

    async fn remove_file_if(&mut self, path: &VPath, version: &Version) -> Result<()> {
        const OP: &str = "mv";
        let rel = rel_path(OP, path)?;
        // Followed, as the open that took `version` followed a symlink that stays inside. A
        // write landing between this stat and the unlink is not seen: the host has no unlink
        // that checks first.
        let current = match self.root.metadata(&rel) {
            Ok(md) if md.is_file() => version_of(&md),
            Ok(_) => Version::unknown(),
            Err(e) => return Err(Error::from_io(OP, e).with_path(path)),
        };
        if !version.matches(&current) {
            return Err(changed_during_move(path));
        }
        self.remove_file(path).await
    }

    async fn usage(&mut self) -> Result<Usage> {
        // From the counters (see `usage`), never a walk; the filesystem's figures are one
        // statvfs of the root.
        let mut usage = self.counters().usage().await;
        match rustix::fs::fstatvfs(&*self.root) {
            Ok(fs) => {
                let unit = fs.f_frsize;
                usage.capacity = Some(fs.f_blocks.saturating_mul(unit));
                usage.used = Some(fs.f_blocks.saturating_sub(fs.f_bfree).saturating_mul(unit));
                usage.available = Some(fs.f_bavail.saturating_mul(unit));
            }
            // The counts stand without them: a dashboard then draws no gauge.
            Err(e) => {
                tracing::debug!(root = %self.host_root.display(), error = %e, "statvfs failed")
            }
        }
        Ok(usage)
    }
}

impl DiskStore {
    /// `mkdir -p` by hand, to tell an ancestor that is a file (NotADirectory) from the path
    /// itself being one (AlreadyExists); counts the directories it creates in `created`.
    fn mkdir_parents(&self, path: &VPath, created: &mut i64) -> Result<()> {
        const OP: &str = "mkdir";
        let names: Vec<&str> = path.components().collect();
        let mut partial = PathBuf::new();
        for (i, name) in names.iter().enumerate() {
            partial.push(name);
            let last = i + 1 == names.len();
            match self.root.create_dir(&partial) {
                Ok(()) => *created += 1,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    match self.root.metadata(&partial) {
                        Ok(md) if md.is_dir() => {}
                        Ok(_) if last => return Err(error(ErrorKind::AlreadyExists, OP, path)),
                        Ok(_) => return Err(error(ErrorKind::NotADirectory, OP, path)),
                        // A dangling symlink has the name: it exists, yet is no directory.
                        Err(e) if last && e.kind() == io::ErrorKind::NotFound => {
                            return Err(error(ErrorKind::AlreadyExists, OP, path));
                        }
                        Err(e) => return Err(Error::from_io(OP, e).with_path(path)),
                    }
                }
                Err(e) => return Err(Error::from_io(OP, e).with_path(path)),
            }
        }
        Ok(())
    }
}

/// Runs `job` on `lane`; a lost job is an `Io` error of `op` on `path`.
async fn on_lane<T, F>(lane: Lane, op: &'static str, path: VPath, job: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    lane.run(job).await.map_err(|lost| {
        error(ErrorKind::Io, op, &path).with_detail(format!("background task failed: {lost}"))
    })?
}
