//! [`Engine`]: the one value every front end (shell, exec, bench, and later the dashboard) holds.
//!
//! It offers every operation a front end needs: paths and mounts, metadata and listings,
//! creating and removing, streaming reads and atomic writes, transfers as jobs (start, run in the
//! foreground, wait, cancel, suspend and continue, throttle, list), usage and the event stream. Everything it takes and returns
//! is the engine crate's plain, serialisable data, so that the same front ends run unchanged over
//! an engine in this process or, as a further variant, a client of a daemon's socket.
//!
//! The handles it gives out for work in progress ([`FileWrite`], [`Foreground`]) and the event
//! stream ([`Events`]) are enums of the same shape, one variant per kind of engine.

use bytes::Bytes;
use mavfs_actors::{
    DirEntry, FileReader, ForegroundJob, JobEvent, JobId, JobInfo, JobOptions, JobOutcome,
    ListCursor, ListPage, Meta, MountInfo, MountStats, Result, RouterHandle, TransferRequest,
    TransferSummary, VPath, WriteHandle, WriteMode,
};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::daemon::client::{Pushed, Remote, RemoteForeground, RemoteWrite};

/// The engine a front end works with.
#[derive(Clone)]
pub enum Engine {
    /// The engine running in this process.
    Local(RouterHandle),
    /// A daemon's engine, through its socket.
    Remote(Remote),
}

impl Engine {
    /// The first mount: where a shell starts.
    pub fn home(&self) -> VPath {
        match self {
            Engine::Local(router) => router.home().clone(),
            Engine::Remote(remote) => remote.home(),
        }
    }

    /// Resolves shell input against `cwd`; `..` stops at mount roots.
    pub fn resolve(&self, cwd: &VPath, input: &str) -> Result<VPath> {
        match self {
            Engine::Local(router) => router.resolve(cwd, input),
            Engine::Remote(remote) => remote.resolve(cwd, input),
        }
    }

    /// Every mount, in declaration order.
    pub fn mounts(&self) -> Vec<MountInfo> {
        match self {
            Engine::Local(router) => router.mounts(),
            Engine::Remote(remote) => remote.mounts(),
        }
    }

    /// Metadata of `path`; `/` is a directory.
    pub async fn stat(&self, path: &VPath) -> Result<Meta> {
        match self {
            Engine::Local(router) => router.stat(path).await,
            Engine::Remote(remote) => remote.stat(path).await,
        }
    }

    /// Entries of directory `path`, sorted by name; `/` lists the mounts.
    pub async fn list(&self, path: &VPath) -> Result<Vec<DirEntry>> {
        match self {
            Engine::Local(router) => router.list(path).await,
            Engine::Remote(remote) => remote.list(path).await,
        }
    }

    /// One page of directory `path`, unsorted: the first with `cursor` `None`, then with each
    /// page's `next` until it is `None` (see [`mavfs_actors::store::Store::list_page`]); `/`
    /// lists the mounts in one page. A listing that must not hold the whole directory (`ls -U`)
    /// goes page by page.
    pub async fn list_page(
        &self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        match self {
            Engine::Local(router) => router.list_page(path, cursor, limit).await,
            Engine::Remote(remote) => remote.list_page(path, cursor, limit).await,
        }
    }

    /// Creates a directory, with its parents when `parents`.
    pub async fn mkdir(&self, path: &VPath, parents: bool) -> Result<()> {
        match self {
            Engine::Local(router) => router.mkdir(path, parents).await,
            Engine::Remote(remote) => remote.mkdir(path, parents).await,
        }
    }

    /// Creates an empty file or updates a modification time.
    pub async fn touch(&self, path: &VPath) -> Result<()> {
        match self {
            Engine::Local(router) => router.touch(path).await,
            Engine::Remote(remote) => remote.touch(path).await,
        }
    }

    /// Removes `path` as `rm` does (`recursive`: `-r`, `force`: `-f`).
    pub async fn remove(&self, path: &VPath, recursive: bool, force: bool) -> Result<()> {
        match self {
            Engine::Local(router) => router.remove(path, recursive, force).await,
            Engine::Remote(remote) => remote.remove(path, recursive, force).await,
        }
    }

    /// Opens file `path` for streaming.
    pub async fn read(&self, path: &VPath) -> Result<FileReader> {
        match self {
            Engine::Local(router) => router.read(path).await,
            Engine::Remote(remote) => remote.read(path).await,
        }
    }

    /// Starts an atomic write of `path`; nothing is visible until [`FileWrite::commit`].
    pub async fn write(&self, path: &VPath, mode: WriteMode) -> Result<FileWrite> {
        match self {
            Engine::Local(router) => Ok(FileWrite::Local(router.write(path, mode).await?)),
            Engine::Remote(remote) => Ok(FileWrite::Remote(remote.write(path, mode).await?)),
        }
    }

    /// Brings job `id` to the foreground (`fg`). Errors: `NotFound` for an unknown job.
    pub async fn foreground(&self, id: JobId) -> Result<Foreground> {
        match self {
            Engine::Local(router) => Ok(Foreground::Local(router.foreground(id).await?)),
            Engine::Remote(remote) => Ok(Foreground::Remote(remote.foreground(id).await?)),
        }
    }

    /// Waits for job `id` to end. Errors (the outer result): `NotFound` for an unknown job.
    pub async fn wait(&self, id: JobId) -> Result<JobOutcome> {
        match self {
            Engine::Local(router) => router.wait(id).await,
            Engine::Remote(remote) => remote.wait(id).await,
        }
    }

    /// Cancels job `id`. Errors: `NotFound`.
    pub async fn cancel(&self, id: JobId) -> Result<()> {
        match self {
            Engine::Local(router) => router.cancel(id).await,
            Engine::Remote(remote) => remote.cancel(id).await,
        }
    }

    /// Every job, running or ended, in id order.
    pub async fn jobs(&self) -> Result<Vec<JobInfo>> {
        match self {
            Engine::Local(router) => router.jobs().await,
            Engine::Remote(remote) => remote.jobs().await,
        }
    }

    /// Usage of every mount, in mount order.
    pub async fn stats(&self) -> Result<Vec<MountStats>> {
        match self {
            Engine::Local(router) => router.stats().await,
            Engine::Remote(remote) => remote.stats().await,
        }
    }

    /// Every job event from now on; a subscriber that falls behind skips (`Lagged`).
    pub fn subscribe(&self) -> Events {
        match self {
            Engine::Local(router) => Events::Local(router.subscribe()),
            Engine::Remote(remote) => Events::Remote(remote.subscribe()),
        }
    }

    /// The daemon this front end is attached to (its pid and socket), or `None` embedded.
    pub fn attached(&self) -> Option<(u32, &std::path::Path)> {
        match self {
            Engine::Local(_) => None,
            Engine::Remote(remote) => Some((remote.pid(), remote.socket())),
        }
    }

    /// Ends this front end's use of the engine. In process, it cancels every running job and
    /// waits until each has cleaned up; attached, it leaves the daemon and its jobs running.
    pub async fn shutdown(&self) {
        match self {
            Engine::Local(router) => router.shutdown().await,
            Engine::Remote(_) => {}
        }
    }
}

/// Starting jobs with their options, and job control beyond bash's: suspend and continue,
/// throttling.
impl Engine {
    /// Starts a transfer as a background job; `label` is the command as typed, `options` its
    /// own `--bwlimit`.
    pub async fn start(
        &self,
        request: TransferRequest,
        label: String,
        options: JobOptions,
    ) -> Result<JobId> {
        match self {
            Engine::Local(router) => router.start_with(request, label, options).await,
            Engine::Remote(remote) => remote.start(request, label, options).await,
        }
    }

    /// Starts a transfer as a foreground job, cancelled if the returned handle is dropped first;
    /// `options` is its own `--bwlimit`.
    pub async fn run(
        &self,
        request: TransferRequest,
        label: String,
        options: JobOptions,
    ) -> Result<Foreground> {
        match self {
            Engine::Local(router) => Ok(Foreground::Local(
                router.run_with(request, label, options).await?,
            )),
            Engine::Remote(remote) => Ok(Foreground::Remote(
                remote.run(request, label, options).await?,
            )),
        }
    }

    /// Suspends job `id` (`stop`): it moves nothing until continued, keeps what it committed and
    /// its files in flight, and can still be cancelled. Errors: `NotFound`; `InvalidInput` for
    /// a job that has ended.
    pub async fn suspend(&self, id: JobId) -> Result<()> {
        match self {
            Engine::Local(router) => router.suspend(id).await,
            Engine::Remote(remote) => remote.suspend(id).await,
        }
    }

    /// Continues suspended job `id` where it stopped (`bg`). Errors: as [`Engine::suspend`].
    pub async fn resume(&self, id: JobId) -> Result<()> {
        match self {
            Engine::Local(router) => router.resume(id).await,
            Engine::Remote(remote) => remote.resume(id).await,
        }
    }

    /// Sets job `id`'s own limit in bytes per second (`None`: off), live. Errors: as
    /// [`Engine::suspend`].
    pub async fn throttle(&self, id: JobId, bwlimit: Option<u64>) -> Result<()> {
        match self {
            Engine::Local(router) => router.throttle(id, bwlimit).await,
            Engine::Remote(remote) => remote.throttle(id, bwlimit).await,
        }
    }

    /// Sets how many files job `id` moves at once (`-j N`), live. Errors: as
    /// [`Engine::suspend`].
    pub async fn set_jobs(&self, id: JobId, jobs: usize) -> Result<()> {
        match self {
            Engine::Local(router) => router.set_jobs(id, jobs).await,
            Engine::Remote(remote) => remote.set_jobs(id, jobs).await,
        }
    }

    /// Sets the global limit in bytes per second shared by all jobs (`None`: off), live.
    pub async fn throttle_all(&self, bwlimit: Option<u64>) -> Result<()> {
        match self {
            Engine::Local(router) => {
                router.throttle_all(bwlimit);
                Ok(())
            }
            Engine::Remote(remote) => remote.throttle_all(bwlimit).await,
        }
    }

    /// The global limit in bytes per second, `None` when off.
    pub async fn global_limit(&self) -> Result<Option<u64>> {
        match self {
            Engine::Local(router) => Ok(router.global_limit()),
            Engine::Remote(remote) => remote.global_limit().await,
        }
    }
}

/// A write in progress. Dropping it without [`FileWrite::commit`] discards what was written.
#[must_use = "dropping a FileWrite discards what was written"]
pub enum FileWrite {
    /// A write into this process's engine.
    Local(WriteHandle),
    /// A write into a daemon's engine.
    Remote(RemoteWrite),
}

impl FileWrite {
    /// Appends `chunk` to the staged file.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        match self {
            FileWrite::Local(writer) => writer.write(chunk).await,
            FileWrite::Remote(writer) => writer.write(chunk).await,
        }
    }

    /// Makes the written bytes visible at the destination in one atomic step.
    pub async fn commit(self) -> Result<()> {
        match self {
            FileWrite::Local(writer) => writer.commit().await,
            FileWrite::Remote(writer) => writer.commit().await,
        }
    }
}

/// A job waited for in the foreground; dropping it before the job ends cancels the job.
#[must_use = "dropping a Foreground cancels its job"]
pub enum Foreground {
    /// A job of this process's engine.
    Local(ForegroundJob),
    /// A job of a daemon's engine.
    Remote(RemoteForeground),
}

impl Foreground {
    /// The job's id.
    pub fn id(&self) -> JobId {
        match self {
            Foreground::Local(job) => job.id,
            Foreground::Remote(job) => job.id(),
        }
    }

    /// Waits for the job to end and returns how it ended.
    pub async fn wait(self) -> Result<TransferSummary> {
        match self {
            Foreground::Local(job) => job.wait().await,
            Foreground::Remote(job) => job.wait().await,
        }
    }
}

/// Every job event from the moment of subscribing, in order.
pub enum Events {
    /// From this process's engine.
    Local(broadcast::Receiver<JobEvent>),
    /// Pushed by a daemon.
    Remote(broadcast::Receiver<Pushed>),
}

impl Events {
    /// The next event. Errors: `Lagged(n)` when `n` events were skipped (this subscriber, or
    /// this client at the daemon, fell behind): re-read the job table; `Closed` when the engine
    /// is gone. Cancel safe.
    pub async fn recv(&mut self) -> Result<JobEvent, RecvError> {
        match self {
            Events::Local(events) => events.recv().await,
            Events::Remote(events) => match events.recv().await? {
                Pushed::Event(event) => Ok(event),
                Pushed::Lagged(n) => Err(RecvError::Lagged(n)),
            },
        }
    }
}
