//! The router: the engine's front door.
//!
//! [`RouterHandle`] is the engine's API for front ends (held through the front ends' `Engine`).
//! It owns the mount table (shared read-only: it never changes after start), resolves virtual
//! paths to a mount, and routes each operation:
//!
//! - single-mount operations (`stat`, `ls`, `mkdir`, `rm`, `cat`, writes) go straight to the
//!   mount's backend actor, so a lookup never queues behind another mount's work;
//! - transfers (`cp`, `mv`, `push`, `pull`) go to the [`Router`] actor, which runs each as a job
//!   ([`crate::job`]): a task of its own, tracked for shutdown and traced in a `job` span (id,
//!   route), recorded in the job table (ids, states, counts, times; ended jobs stay listable),
//!   publishing events on the [`EventBus`] that any front end can subscribe to. Jobs are
//!   suspended, continued and throttled through the same actor, so the table's states and
//!   events follow the order of the requests; the global limit is one token bucket every job's
//!   transfer draws from.
//!
//! The virtual root `/` is answered here: it is a directory whose entries are the mounts, and
//! nothing else can be created, written or removed there.

use std::sync::Arc;
use std::time::SystemTime;

use kameo::error::Infallible;
use kameo::prelude::*;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backend::WriteHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventBus;
use crate::job::foreground::{engine_stopped, wait_outcome};
use crate::job::table::{JobTable, OutcomeReceiver};
use crate::job::{ForegroundJob, JobControl, JobEvent, JobId, JobInfo, JobOptions, JobOutcome};
use crate::mounts::{MountInfo, MountStats, MountTable};
use crate::path::VPath;
use crate::store::{DirEntry, EntryKind, FileReader, ListCursor, ListPage, Meta, WriteMode};
use crate::transfer::{Bucket, TransferRequest, TransferSummary};

/// The actor that runs transfers as jobs and keeps the job table.
pub struct Router {
    table: Arc<MountTable>,
    jobs: JobTable,
    /// Every job's task, so that shutdown waits for them.
    tasks: TaskTracker,
    /// Cancelled at shutdown; every job's control is a child of it.
    shutdown: CancellationToken,
    /// The global limit, shared by every job's transfer.
    global: Arc<Bucket>,
}

impl Actor for Router {
    type Args = Router;
    type Error = Infallible;

    async fn on_start(router: Router, _me: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(router)
    }
}

/// Starts a transfer job; replies with its id as soon as it runs.
pub struct StartJob {
    /// The transfer to run.
    pub request: TransferRequest,
    /// The command as typed, for listings.
    pub label: String,
    /// Its own limits (`--bwlimit`).
    pub options: JobOptions,
}

/// A job just started: its id, a receiver of its outcome and its control.
type Started = (JobId, OutcomeReceiver, JobControl);

impl Message<StartJob> for Router {
    type Reply = Started;

    async fn handle(&mut self, msg: StartJob, ctx: &mut Context<Self, Self::Reply>) -> Started {
        let run = self.jobs.add(
            msg.request,
            msg.label,
            self.table.clone(),
            &self.shutdown,
            msg.options.bwlimit,
            self.global.clone(),
        );
        let id = run.id;
        let span = tracing::info_span!("job", id = id.0, route = %run.route.label);
        let outcome = self.jobs.watch(id).expect("the job was just added");
        let control = run.control.clone();
        let router = ctx.actor_ref().clone();
        self.tasks.spawn(
            async move {
                tracing::info!("started");
                let result = run.run().await;
                match &result {
                    Ok(summary) => {
                        tracing::info!(files = summary.files, bytes = summary.bytes, "done")
                    }
                    Err(e) => tracing::info!(error = %e, "ended"),
                }
                // The router may already be gone at shutdown; then nobody is waiting.
                let _ = router.tell(JobEnded { id, result }).await;
            }
            .instrument(span),
        );
        (id, outcome, control)
    }
}

/// Sent by a job's task when it ends; the table records the outcome and publishes the terminal
/// event.
pub struct JobEnded {
    /// The job that ended.
    pub id: JobId,
    /// How it ended.
    pub result: JobOutcome,
}

impl Message<JobEnded> for Router {
    type Reply = ();

    async fn handle(&mut self, msg: JobEnded, _: &mut Context<Self, Self::Reply>) {
        self.jobs.end(msg.id, msg.result);
    }
}

/// The control of a job, to cancel it. Errors: `NotFound` for an unknown id.
pub struct ControlJob(pub JobId);

impl Message<ControlJob> for Router {
    type Reply = Result<JobControl>;

    async fn handle(&mut self, msg: ControlJob, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.jobs.control(msg.0)
    }
}

/// Suspends (`running: false`) or continues a job. Errors: as [`JobTable::set_running`].
pub struct SuspendJob {
    /// The job.
    pub id: JobId,
    /// Continue (`true`) or suspend (`false`).
    pub running: bool,
}

impl Message<SuspendJob> for Router {
    type Reply = Result<()>;

    async fn handle(&mut self, msg: SuspendJob, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.jobs.set_running(msg.id, msg.running)
    }
}

/// Changes a job's own limit, or its files at once. Errors: as [`JobTable::throttle`].
pub enum ThrottleJob {
    /// The job's own limit in bytes per second; `None`: off.
    Limit(JobId, Option<u64>),
    /// How many files it moves at once.
    Jobs(JobId, usize),
}

impl Message<ThrottleJob> for Router {
    type Reply = Result<()>;

    async fn handle(
        &mut self,
        msg: ThrottleJob,
        _: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        match msg {
            ThrottleJob::Limit(id, bwlimit) => self.jobs.throttle(id, bwlimit, None),
            ThrottleJob::Jobs(id, jobs) => self.jobs.set_jobs(id, jobs),
        }
    }
}

/// A receiver of a job's outcome. Errors: `NotFound` for an unknown id.
pub struct WatchJob(pub JobId);

impl Message<WatchJob> for Router {
    type Reply = Result<OutcomeReceiver>;

    async fn handle(&mut self, msg: WatchJob, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.jobs.watch(msg.0)
    }
}

/// Every job, running or ended, in id order.
pub struct ListJobs;

impl Message<ListJobs> for Router {
    type Reply = Vec<JobInfo>;

    async fn handle(&mut self, _: ListJobs, _: &mut Context<Self, Self::Reply>) -> Vec<JobInfo> {
        self.jobs.list()
    }
}

fn handler_error<M>(err: SendError<M, Error>, op: &'static str) -> Error {
    match err {
        SendError::HandlerError(e) => e,
        _ => engine_stopped(op),
    }
}

/// The front ends' handle on the engine. Cheap to clone.
#[derive(Clone)]
pub struct RouterHandle {
    table: Arc<MountTable>,
    actor: ActorRef<Router>,
    bus: EventBus<JobEvent>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// The global limit; the router's jobs hold it too.
    global: Arc<Bucket>,
}

impl RouterHandle {
    /// Starts the router over `table`.
    pub fn spawn(table: MountTable) -> Self {
        let table = Arc::new(table);
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let bus = EventBus::new();
        let global = Arc::new(Bucket::new(None));
        let actor = Router::spawn(Router {
            table: table.clone(),
            jobs: JobTable::new(bus.clone()),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
            global: global.clone(),
        });
        RouterHandle {
            table,
            actor,
            bus,
            tasks,
            shutdown,
            global,
        }
    }

    /// Every mount, in declaration order (the first is the shell's home).
    pub fn mounts(&self) -> Vec<MountInfo> {
        self.table.mounts().iter().map(|m| m.info()).collect()
    }

    /// The first mount: where a shell starts.
    pub fn home(&self) -> &VPath {
        self.table.home()
    }

    /// Resolves shell input against `cwd`; `..` stops at mount roots.
    pub fn resolve(&self, cwd: &VPath, input: &str) -> Result<VPath> {
        self.table.resolve(cwd, input)
    }

    /// Metadata of `path`; `/` is a directory. Errors: as [`crate::store::Store::stat`], and
    /// `NotFound` for a path under no mount.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn stat(&self, path: &VPath) -> Result<Meta> {
        match self.table.find("stat", path)? {
            Some(m) => m.backend.stat(path).await,
            None => Ok(Meta {
                kind: EntryKind::Dir,
                size: 0,
                modified: SystemTime::UNIX_EPOCH,
            }),
        }
    }

    /// Entries of directory `path`, sorted by name; `/` lists the mounts.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list(&self, path: &VPath) -> Result<Vec<DirEntry>> {
        let mut entries = match self.table.find("ls", path)? {
            Some(m) => m.backend.list(path).await?,
            None => {
                let mut out = Vec::new();
                for m in self.table.mounts() {
                    // A mount whose store fails (its disk root deleted, Redis down) is still a
                    // mount: `/` lists it, and `ls` of the mount itself says what is wrong.
                    let meta = m.backend.stat(&m.path).await.unwrap_or(Meta {
                        kind: EntryKind::Dir,
                        size: 0,
                        modified: SystemTime::UNIX_EPOCH,
                    });
                    out.push(DirEntry {
                        name: m.path.file_name().unwrap_or_default().to_string(),
                        meta,
                    });
                }
                out
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// One page of directory `path`, unsorted ([`crate::store::Store::list_page`]): the first
    /// with `cursor` `None`, then with each page's [`ListPage::next`] until it is `None`. `/`
    /// lists the mounts, in one page. Errors: as [`RouterHandle::list`] on the first page, and
    /// as the store's `list_page` after.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_page(
        &self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        match self.table.find("ls", path)? {
            Some(m) => m.backend.list_page(path, cursor, limit).await,
            None => Ok(ListPage {
                entries: self.list(path).await?,
                next: None,
            }),
        }
    }

    /// Creates a directory (see [`crate::store::Store::mkdir`]). Errors also: `PermissionDenied`
    /// at `/`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn mkdir(&self, path: &VPath, parents: bool) -> Result<()> {
        match self.table.find("mkdir", path)? {
            Some(m) => m.backend.mkdir(path, parents).await,
            None if parents => Ok(()),
            None => Err(Error::new(ErrorKind::AlreadyExists, "mkdir").with_path(path)),
        }
    }

    /// Creates an empty file or updates a modification time.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn touch(&self, path: &VPath) -> Result<()> {
        let mount = self.table.get("touch", path, ErrorKind::PermissionDenied)?;
        mount.backend.touch(path).await
    }

    /// Removes `path` as `rm` does: a file or symlink; with `recursive` also a directory and its
    /// contents; with `force` a missing path is success. Errors: `Busy` for `/` or a mount root;
    /// `IsADirectory` for a directory without `recursive`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn remove(&self, path: &VPath, recursive: bool, force: bool) -> Result<()> {
        let result = self.remove_inner(path, recursive).await;
        match result {
            Err(e) if force && e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn remove_inner(&self, path: &VPath, recursive: bool) -> Result<()> {
        let mount = self.table.get("rm", path, ErrorKind::Busy)?;
        if mount.path == *path {
            return Err(Error::new(ErrorKind::Busy, "rm")
                .with_path(path)
                .with_detail("a mount root cannot be removed"));
        }
        // Try the file first: on disk this removes a symlink itself, even one leading outside the
        // root, where a stat would be refused.
        match mount.backend.remove_file(path).await {
            Err(e) if e.kind() == ErrorKind::IsADirectory && recursive => {
                mount.backend.remove_all(path).await
            }
            other => other,
        }
    }

    /// Opens file `path` for streaming.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn read(&self, path: &VPath) -> Result<FileReader> {
        let mount = self.table.get("read", path, ErrorKind::IsADirectory)?;
        mount.backend.open_read(path).await
    }

    /// Starts an atomic write of `path`; nothing is visible until [`WriteHandle::commit`].
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn write(&self, path: &VPath, mode: WriteMode) -> Result<WriteHandle> {
        let mount = self.table.get("write", path, ErrorKind::IsADirectory)?;
        mount.backend.open_write(path, mode).await
    }

    /// Starts a copy or move (see [`crate::transfer`]) as a background job; `label` is the
    /// command as typed, for listings.
    #[tracing::instrument(level = "debug", skip(self, request))]
    pub async fn start(&self, request: TransferRequest, label: String) -> Result<JobId> {
        self.start_with(request, label, JobOptions::default()).await
    }

    /// [`RouterHandle::start`] with `options` (its own limit).
    #[tracing::instrument(level = "debug", skip(self, request))]
    pub async fn start_with(
        &self,
        request: TransferRequest,
        label: String,
        options: JobOptions,
    ) -> Result<JobId> {
        let (id, _, _) = self.start_job(request, label, options).await?;
        Ok(id)
    }

    async fn start_job(
        &self,
        request: TransferRequest,
        label: String,
        options: JobOptions,
    ) -> Result<Started> {
        let op = request.kind.command();
        self.actor
            .ask(StartJob {
                request,
                label,
                options,
            })
            .await
            .map_err(|_| engine_stopped(op))
    }

    /// Starts a copy or move as a foreground job: the returned [`ForegroundJob`] cancels it when
    /// dropped before it ends (Ctrl-C in the shell).
    #[tracing::instrument(level = "debug", skip(self, request))]
    pub async fn run(&self, request: TransferRequest, label: String) -> Result<ForegroundJob> {
        self.run_with(request, label, JobOptions::default()).await
    }

    /// [`RouterHandle::run`] with `options` (its own limit).
    #[tracing::instrument(level = "debug", skip(self, request))]
    pub async fn run_with(
        &self,
        request: TransferRequest,
        label: String,
        options: JobOptions,
    ) -> Result<ForegroundJob> {
        let (id, outcome, control) = self.start_job(request, label, options).await?;
        Ok(ForegroundJob::new(id, outcome, control))
    }

    /// Brings job `id` to the foreground (`fg`): the returned [`ForegroundJob`] waits for it and
    /// cancels it when dropped before it ends. Errors: `NotFound` for an unknown job.
    pub async fn foreground(&self, id: JobId) -> Result<ForegroundJob> {
        let outcome = self
            .actor
            .ask(WatchJob(id))
            .await
            .map_err(|e| handler_error(e, "fg"))?;
        let control = self.control(id, "fg").await?;
        Ok(ForegroundJob::new(id, outcome, control))
    }

    async fn control(&self, id: JobId, op: &'static str) -> Result<JobControl> {
        self.actor
            .ask(ControlJob(id))
            .await
            .map_err(|e| handler_error(e, op))
    }

    /// Runs a copy or move as a job and waits for it; dropping the future cancels the job.
    pub async fn transfer(
        &self,
        request: TransferRequest,
        label: String,
    ) -> Result<TransferSummary> {
        self.run(request, label).await?.wait().await
    }

    /// Waits for job `id` to end and returns how it ended: its summary, its own error if it
    /// failed, or `Cancelled`. Errors (the outer result): `NotFound` for an unknown job.
    pub async fn wait(&self, id: JobId) -> Result<JobOutcome> {
        let outcome = self
            .actor
            .ask(WatchJob(id))
            .await
            .map_err(|e| handler_error(e, "wait"))?;
        Ok(wait_outcome(outcome).await)
    }

    /// Cancels job `id`; it stops within a fraction of a second. Errors: `NotFound`.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn cancel(&self, id: JobId) -> Result<()> {
        self.control(id, "kill").await?.cancel();
        Ok(())
    }

    /// Suspends job `id` (`stop`, `kill -STOP`): within a chunk it moves no more bytes and
    /// issues no more store operations; it keeps what it committed and its files in flight, and
    /// can still be cancelled. Suspending a stopped job does nothing. Errors: `NotFound`;
    /// `InvalidInput` for a job that has ended.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn suspend(&self, id: JobId) -> Result<()> {
        self.suspend_job(id, false, "stop").await
    }

    /// Continues suspended job `id` (`bg`, `kill -CONT`) where it stopped. Continuing a running
    /// job does nothing. Errors: `NotFound`; `InvalidInput` for a job that has ended.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn resume(&self, id: JobId) -> Result<()> {
        self.suspend_job(id, true, "bg").await
    }

    async fn suspend_job(&self, id: JobId, running: bool, op: &'static str) -> Result<()> {
        self.actor
            .ask(SuspendJob { id, running })
            .await
            .map_err(|e| handler_error(e, op))
    }

    /// Sets job `id`'s own limit in bytes per second (`None`: unlimited, the global limit
    /// still applies); it takes effect within [`crate::transfer::RECHECK`]. Errors: `NotFound`;
    /// `InvalidInput` for a job that has ended.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn throttle(&self, id: JobId, bwlimit: Option<u64>) -> Result<()> {
        self.throttle_job(ThrottleJob::Limit(id, bwlimit)).await
    }

    /// Sets how many files job `id` moves at once (`-j N`, at least 1): a raise starts more at
    /// once, a cut lets the files in flight finish. Errors: as [`RouterHandle::throttle`].
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn set_jobs(&self, id: JobId, jobs: usize) -> Result<()> {
        self.throttle_job(ThrottleJob::Jobs(id, jobs)).await
    }

    async fn throttle_job(&self, msg: ThrottleJob) -> Result<()> {
        self.actor
            .ask(msg)
            .await
            .map_err(|e| handler_error(e, "throttle"))
    }

    /// Sets the global limit in bytes per second, shared by all jobs together (`None`:
    /// unlimited); it takes effect within [`crate::transfer::RECHECK`], on running jobs too.
    pub fn throttle_all(&self, bwlimit: Option<u64>) {
        self.global.set_rate(bwlimit);
    }

    /// The global limit in bytes per second, `None` when unlimited.
    pub fn global_limit(&self) -> Option<u64> {
        self.global.rate()
    }

    /// Every job, running or ended, in id order.
    pub async fn jobs(&self) -> Result<Vec<JobInfo>> {
        self.actor
            .ask(ListJobs)
            .await
            .map_err(|_| engine_stopped("jobs"))
    }

    /// Every transfer event published from now on. A subscriber that falls behind skips events
    /// (`Lagged`) and never slows a transfer.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.bus.subscribe()
    }

    /// Usage of every mount and the bytes read from and written to it, in mount order.
    pub async fn stats(&self) -> Result<Vec<MountStats>> {
        let mut out = Vec::new();
        for m in self.table.mounts() {
            out.push(MountStats {
                path: m.path.clone(),
                backend: m.kind,
                tier: m.tier,
                usage: m.backend.usage().await?,
                io: m.backend.io(),
            });
        }
        Ok(out)
    }

    /// Cancels every running transfer and waits until each has cleaned up, then closes every
    /// store ([`crate::store::Store::close`]): what a store still does in the background
    /// (deleting data it freed) finishes, bounded in time, before its connections close, so
    /// that nothing is left behind when the process exits right after.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        for mount in self.table.mounts() {
            if let Err(e) = mount.backend.close().await {
                tracing::debug!(mount = %mount.path, "closing: {e}");
            }
        }
    }
}
