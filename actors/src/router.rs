//! The router: the engine's front door.
//!
//! [`RouterHandle`] is the only API the front ends use. It owns the mount table (shared read-only:
//! it never changes after start), resolves virtual paths to a mount, and routes each operation:
//!
//! - single-mount operations (`stat`, `ls`, `mkdir`, `rm`, `cat`, writes) go straight to the
//!   mount's backend actor, so a lookup never queues behind another mount's work;
//! - transfers (`cp`, `mv`, `push`, `pull`) go to the [`Router`] actor, which runs each as a job:
//!   a [`TransferActor`] of its own, in the job table (ids, states, counts, times; ended jobs stay
//!   listable), publishing events on the [`EventBus`] that any front end can subscribe to.
//!
//! The virtual root `/` is answered here: it is a directory whose entries are the mounts, and
//! nothing else can be created, written or removed there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use kameo::error::Infallible;
use kameo::prelude::*;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::WriteHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{EventBus, EventKind, JobEvent, JobId, JobRoute, Meter, Progress};
use crate::mounts::{Mount, MountTable};
use crate::path::VPath;
use crate::store::{DirEntry, EntryKind, FileReader, Meta, Usage, WriteMode};
use crate::transfer::job::{CancelTransfer, JobArgs, TransferActor};
use crate::transfer::{TransferRequest, TransferSummary};

/// A job's state, as `jobs` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Done,
    Failed,
    Cancelled,
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        })
    }
}

/// One row of the job table.
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub id: JobId,
    pub route: Arc<JobRoute>,
    pub state: JobState,
    pub progress: Progress,
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
    /// Why a failed job failed.
    pub error: Option<Error>,
}

/// How a job ended, as its waiters see it.
pub type JobOutcome = Result<TransferSummary>;

/// The router's record of one job, running or ended.
struct JobRecord {
    route: Arc<JobRoute>,
    state: JobState,
    meter: Arc<Meter>,
    started: SystemTime,
    ended: Option<SystemTime>,
    error: Option<Error>,
    actor: ActorRef<TransferActor>,
    /// `None` while running; the outcome once ended. Waiters hold receivers.
    outcome: watch::Sender<Option<JobOutcome>>,
}

impl JobRecord {
    fn info(&self, id: JobId) -> JobInfo {
        JobInfo {
            id,
            route: self.route.clone(),
            state: self.state,
            progress: self.meter.snapshot(),
            started: self.started,
            ended: self.ended,
            error: self.error.clone(),
        }
    }
}

/// The actor that runs transfers as jobs and keeps the job table.
pub struct Router {
    table: Arc<MountTable>,
    jobs: BTreeMap<JobId, JobRecord>,
    next_id: u64,
    bus: EventBus,
    /// Every job's task, so that shutdown waits for them.
    tasks: TaskTracker,
    /// Cancelled at shutdown; every job's token is a child of it.
    shutdown: CancellationToken,
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
    pub request: TransferRequest,
    pub label: String,
}

/// The job and a receiver that sees its outcome.
type Started = (
    JobId,
    watch::Receiver<Option<JobOutcome>>,
    CancellationToken,
);

impl Message<StartJob> for Router {
    type Reply = Started;

    async fn handle(&mut self, msg: StartJob, ctx: &mut Context<Self, Self::Reply>) -> Started {
        self.next_id += 1;
        let id = JobId(self.next_id);
        let route = Arc::new(JobRoute {
            kind: msg.request.kind,
            sources: msg.request.sources.clone(),
            dest: msg.request.dest.clone(),
            label: msg.label,
        });
        let meter = Arc::new(Meter::new());
        let cancel = self.shutdown.child_token();
        let actor = TransferActor::spawn(JobArgs {
            id,
            route: route.clone(),
            request: msg.request,
            table: self.table.clone(),
            meter: meter.clone(),
            bus: self.bus.clone(),
            cancel: cancel.clone(),
            router: ctx.actor_ref().clone(),
            tasks: self.tasks.clone(),
        });
        let (outcome, receiver) = watch::channel(None);
        self.jobs.insert(
            id,
            JobRecord {
                route,
                state: JobState::Running,
                meter,
                started: SystemTime::now(),
                ended: None,
                error: None,
                actor,
                outcome,
            },
        );
        (id, receiver, cancel)
    }
}

/// Sent by a job's task when it ends; records the outcome and publishes the terminal event.
pub struct JobEnded {
    pub id: JobId,
    pub result: JobOutcome,
}

impl Message<JobEnded> for Router {
    type Reply = ();

    async fn handle(&mut self, msg: JobEnded, _: &mut Context<Self, Self::Reply>) {
        let Some(job) = self.jobs.get_mut(&msg.id) else {
            return;
        };
        if job.state != JobState::Running {
            return; // exactly one terminal event per job
        }
        let kind = match &msg.result {
            Ok(summary) => {
                job.state = JobState::Done;
                EventKind::Finished(*summary)
            }
            Err(e) if e.kind() == ErrorKind::Cancelled => {
                job.state = JobState::Cancelled;
                EventKind::Cancelled
            }
            Err(e) => {
                job.state = JobState::Failed;
                job.error = Some(e.clone());
                EventKind::Failed(e.clone())
            }
        };
        job.ended = Some(SystemTime::now());
        self.bus.publish(JobEvent {
            job: msg.id,
            route: job.route.clone(),
            progress: job.meter.snapshot(),
            kind,
        });
        job.outcome.send_replace(Some(msg.result));
    }
}

/// Cancels a job. Errors: `NotFound` for an unknown id. Cancelling an ended job does nothing.
pub struct CancelJob(pub JobId);

impl Message<CancelJob> for Router {
    type Reply = Result<()>;

    async fn handle(&mut self, msg: CancelJob, _: &mut Context<Self, Self::Reply>) -> Result<()> {
        let job = self.jobs.get(&msg.0).ok_or_else(|| no_such_job(msg.0))?;
        if job.state == JobState::Running {
            // The actor may have stopped already, between its end and our record of it.
            let _ = job.actor.tell(CancelTransfer).await;
        }
        Ok(())
    }
}

/// A receiver of a job's outcome. Errors: `NotFound` for an unknown id.
pub struct WatchJob(pub JobId);

impl Message<WatchJob> for Router {
    type Reply = Result<watch::Receiver<Option<JobOutcome>>>;

    async fn handle(&mut self, msg: WatchJob, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        let job = self.jobs.get(&msg.0).ok_or_else(|| no_such_job(msg.0))?;
        Ok(job.outcome.subscribe())
    }
}

/// Every job, running or ended, in id order.
pub struct ListJobs;

impl Message<ListJobs> for Router {
    type Reply = Vec<JobInfo>;

    async fn handle(&mut self, _: ListJobs, _: &mut Context<Self, Self::Reply>) -> Vec<JobInfo> {
        self.jobs.iter().map(|(id, job)| job.info(*id)).collect()
    }
}

fn no_such_job(id: JobId) -> Error {
    Error::new(ErrorKind::NotFound, "job").with_detail(format!("no job %{id}"))
}

/// A job its starter waits for; dropping it before the job ends cancels the job.
pub struct ForegroundJob {
    pub id: JobId,
    outcome: watch::Receiver<Option<JobOutcome>>,
    cancel: tokio_util::sync::DropGuard,
}

impl ForegroundJob {
    /// Waits for the job to end and returns how it ended.
    pub async fn wait(self) -> JobOutcome {
        let ForegroundJob {
            outcome, cancel, ..
        } = self;
        let result = wait_outcome(outcome).await;
        // Ended: nothing left to cancel.
        let _ = cancel.disarm();
        result
    }
}

async fn wait_outcome(mut outcome: watch::Receiver<Option<JobOutcome>>) -> JobOutcome {
    match outcome.wait_for(Option::is_some).await {
        Ok(ended) => ended.clone().unwrap_or_else(|| Err(router_stopped("wait"))),
        Err(_) => Err(router_stopped("wait")),
    }
}

fn router_stopped(op: &'static str) -> Error {
    Error::new(ErrorKind::Unavailable, op).with_detail("the router has stopped")
}

fn handler_error<M>(err: SendError<M, Error>, op: &'static str) -> Error {
    match err {
        SendError::HandlerError(e) => e,
        _ => router_stopped(op),
    }
}

/// Usage of one mount, for `stats`.
#[derive(Debug, Clone)]
pub struct MountStats {
    pub path: VPath,
    pub backend: &'static str,
    pub tier: crate::mounts::Tier,
    pub usage: Usage,
}

/// The front ends' handle on the engine. Cheap to clone.
#[derive(Clone)]
pub struct RouterHandle {
    table: Arc<MountTable>,
    actor: ActorRef<Router>,
    bus: EventBus,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl RouterHandle {
    /// Starts the router over `table`.
    pub fn spawn(table: MountTable) -> Self {
        let table = Arc::new(table);
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let bus = EventBus::new();
        let actor = Router::spawn(Router {
            table: table.clone(),
            jobs: BTreeMap::new(),
            next_id: 0,
            bus: bus.clone(),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        });
        RouterHandle {
            table,
            actor,
            bus,
            tasks,
            shutdown,
        }
    }

    pub fn mounts(&self) -> &[Mount] {
        self.table.mounts()
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
    pub async fn list(&self, path: &VPath) -> Result<Vec<DirEntry>> {
        let mut entries = match self.table.find("ls", path)? {
            Some(m) => m.backend.list(path).await?,
            None => {
                let mut out = Vec::new();
                for m in self.table.mounts() {
                    out.push(DirEntry {
                        name: m.path.file_name().unwrap_or_default().to_string(),
                        meta: m.backend.stat(&m.path).await?,
                    });
                }
                out
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Creates a directory (see [`crate::store::Store::mkdir`]). Errors also: `PermissionDenied`
    /// at `/`.
    pub async fn mkdir(&self, path: &VPath, parents: bool) -> Result<()> {
        match self.table.find("mkdir", path)? {
            Some(m) => m.backend.mkdir(path, parents).await,
            None if parents => Ok(()),
            None => Err(Error::new(ErrorKind::AlreadyExists, "mkdir").with_path(path)),
        }
    }

    /// Creates an empty file or updates a modification time.
    pub async fn touch(&self, path: &VPath) -> Result<()> {
        let mount = self.table.get("touch", path, ErrorKind::PermissionDenied)?;
        mount.backend.touch(path).await
    }

    /// Removes `path` as `rm` does: a file or symlink; with `recursive` also a directory and its
    /// contents; with `force` a missing path is success. Errors: `Busy` for `/` or a mount root;
    /// `IsADirectory` for a directory without `recursive`.
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
    pub async fn read(&self, path: &VPath) -> Result<FileReader> {
        let mount = self.table.get("read", path, ErrorKind::IsADirectory)?;
        mount.backend.open_read(path).await
    }

    /// Starts an atomic write of `path`; nothing is visible until [`WriteHandle::commit`].
    pub async fn write(&self, path: &VPath, mode: WriteMode) -> Result<WriteHandle> {
        let mount = self.table.get("write", path, ErrorKind::IsADirectory)?;
        mount.backend.open_write(path, mode).await
    }

    /// Starts a copy or move (see [`crate::transfer`]) as a background job; `label` is the
    /// command as typed, for listings.
    pub async fn start(&self, request: TransferRequest, label: String) -> Result<JobId> {
        let (id, _, _) = self.start_job(request, label).await?;
        Ok(id)
    }

    async fn start_job(&self, request: TransferRequest, label: String) -> Result<Started> {
        let op = request.kind.command();
        self.actor
            .ask(StartJob { request, label })
            .await
            .map_err(|_| router_stopped(op))
    }

    /// Starts a copy or move as a foreground job: the returned [`ForegroundJob`] cancels it when
    /// dropped before it ends (Ctrl-C in the shell).
    pub async fn run(&self, request: TransferRequest, label: String) -> Result<ForegroundJob> {
        let (id, outcome, cancel) = self.start_job(request, label).await?;
        Ok(ForegroundJob {
            id,
            outcome,
            cancel: cancel.drop_guard(),
        })
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
    pub async fn cancel(&self, id: JobId) -> Result<()> {
        self.actor
            .ask(CancelJob(id))
            .await
            .map_err(|e| handler_error(e, "kill"))
    }

    /// Every job, running or ended, in id order.
    pub async fn jobs(&self) -> Result<Vec<JobInfo>> {
        self.actor
            .ask(ListJobs)
            .await
            .map_err(|_| router_stopped("jobs"))
    }

    /// Every transfer event published from now on. A subscriber that falls behind skips events
    /// (`Lagged`) and never slows a transfer.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.bus.subscribe()
    }

    /// Usage of every mount, in mount order.
    pub async fn stats(&self) -> Result<Vec<MountStats>> {
        let mut out = Vec::new();
        for m in self.table.mounts() {
            out.push(MountStats {
                path: m.path.clone(),
                backend: m.backend.kind(),
                tier: m.tier,
                usage: m.backend.usage().await?,
            });
        }
        Ok(out)
    }

    /// Cancels every running transfer and waits until each has cleaned up.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
