//! A transfer run as a job: one [`TransferActor`] per `cp`, `mv`, `push` or `pull`.
//!
//! The router spawns the actor with everything the job needs. The actor starts a task that plans
//! the transfer, publishes `Started` with the pre-scan's totals, executes it while a ticker
//! publishes coalesced `Progress` events, and finally tells the router how it ended; the router
//! records that in its job table and publishes the one terminal event. The actor's own mailbox
//! stays free for [`CancelTransfer`], which stops the job at its next await: in-flight writers are
//! dropped, and with them their staged data.

use std::sync::Arc;

use kameo::error::Infallible;
use kameo::prelude::*;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, ErrorKind, Result};
use crate::events::{EventBus, EventKind, JobEvent, JobId, JobRoute, Meter, PROGRESS_INTERVAL};
use crate::mounts::MountTable;
use crate::path::VPath;
use crate::router::{JobEnded, Router};
use crate::transfer::{Reporter, TransferRequest, TransferSummary, execute, plan};

/// What a job needs to run.
pub struct JobArgs {
    pub id: JobId,
    pub route: Arc<JobRoute>,
    pub request: TransferRequest,
    pub table: Arc<MountTable>,
    pub meter: Arc<Meter>,
    pub bus: EventBus,
    /// Cancelled by `kill`, by the requester going away, or by shutdown.
    pub cancel: CancellationToken,
    pub router: ActorRef<Router>,
    /// The router's tracker, so that shutdown waits for this job's cleanup.
    pub tasks: TaskTracker,
}

/// The actor of one running transfer.
pub struct TransferActor {
    cancel: CancellationToken,
}

impl Actor for TransferActor {
    type Args = JobArgs;
    type Error = Infallible;

    async fn on_start(args: JobArgs, me: ActorRef<Self>) -> Result<Self, Infallible> {
        let cancel = args.cancel.clone();
        let tasks = args.tasks.clone();
        tasks.spawn(async move {
            let (id, router) = (args.id, args.router.clone());
            let op = args.request.kind.command();
            let result = tokio::select! {
                result = drive(&args) => result,
                () = args.cancel.cancelled() => Err(Error::new(ErrorKind::Cancelled, op)),
            };
            // The router may already be gone at shutdown; then nobody is waiting.
            let _ = router.tell(JobEnded { id, result }).await;
            me.kill();
        });
        Ok(TransferActor { cancel })
    }
}

/// Stops the job. Replies at once; the job ends with `Cancelled` shortly after.
pub struct CancelTransfer;

impl Message<CancelTransfer> for TransferActor {
    type Reply = ();

    async fn handle(&mut self, _: CancelTransfer, _: &mut Context<Self, Self::Reply>) {
        self.cancel.cancel();
    }
}

fn event(args: &JobArgs, kind: EventKind) -> JobEvent {
    JobEvent {
        job: args.id,
        route: args.route.clone(),
        progress: args.meter.snapshot(),
        kind,
    }
}

/// Plans and executes the transfer, publishing `Started`, `Progress` and `FileDone`.
async fn drive(args: &JobArgs) -> Result<TransferSummary> {
    let plan = plan(&args.table, &args.request).await?;
    let (files, bytes) = plan.totals();
    args.meter.set_totals(files, bytes);
    args.bus.publish(event(args, EventKind::Started));
    let file_done = |path: &VPath, bytes: u64| {
        let kind = EventKind::FileDone {
            path: path.clone(),
            bytes,
        };
        args.bus.publish(event(args, kind));
    };
    let reporter = Reporter {
        meter: &args.meter,
        file_done: &file_done,
    };
    let run = execute(&plan, &reporter);
    tokio::pin!(run);
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker.tick().await;
    let mut last = (0, 0);
    let mut summary = loop {
        tokio::select! {
            result = &mut run => break result?,
            _ = ticker.tick() => {
                args.meter.tick();
                let progress = args.meter.snapshot();
                // Coalesced: at most one per tick, and none while nothing moves.
                if (progress.files_done, progress.bytes_done) != last {
                    last = (progress.files_done, progress.bytes_done);
                    args.bus.publish(JobEvent {
                        job: args.id,
                        route: args.route.clone(),
                        progress,
                        kind: EventKind::Progress,
                    });
                }
            }
        }
    };
    summary.elapsed = args.meter.snapshot().elapsed;
    Ok(summary)
}
