//! Running one job: plan the transfer, claim its destinations (a second job writing one of
//! them is refused as busy), publish `Started` with the pre-scan's totals, execute it
//! while a ticker publishes coalesced `Progress` events (at most one per [`PROGRESS_INTERVAL`],
//! none while nothing moves) and `FileDone` per committed file, and return how it ended.
//!
//! The terminal event is not published here: the job table publishes it when it records the
//! outcome, so that a job ends with exactly one terminal event whoever stops it.

use std::sync::Arc;
use std::time::Duration;

use super::{EventKind, JobControl, JobEvent, JobId, JobOutcome, JobRoute};
use crate::error::{Error, ErrorKind};
use crate::events::EventBus;
use crate::mounts::MountTable;
use crate::path::VPath;
use crate::transfer::{
    Destinations, Meter, Reporter, TransferRequest, TransferSummary, execute, plan,
};

/// How often a running job reports progress.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// What a job needs to run.
pub struct JobRun {
    /// The job's number.
    pub id: JobId,
    /// What it moves, shared with its events.
    pub route: Arc<JobRoute>,
    /// The transfer to run.
    pub request: TransferRequest,
    /// The mounts it runs over.
    pub table: Arc<MountTable>,
    /// Its counters, shared with the job table.
    pub meter: Arc<Meter>,
    /// Where its events go.
    pub bus: EventBus<JobEvent>,
    /// Cancels it.
    pub control: JobControl,
    /// What the engine's running jobs write: this one claims its destinations there.
    pub destinations: Arc<Destinations>,
}

impl JobRun {
    /// Runs the job until it ends or is cancelled through its [`JobControl`].
    ///
    /// Cancel safety: dropping the future cancels the job in the same way, at its current await.
    pub async fn run(self) -> JobOutcome {
        let op = self.request.kind.command();
        tokio::select! {
            result = self.drive() => result,
            () = self.control.cancelled() => Err(Error::new(ErrorKind::Cancelled, op)),
        }
    }

    fn event(&self, kind: EventKind) -> JobEvent {
        JobEvent {
            job: self.id,
            route: self.route.clone(),
            progress: self.meter.snapshot(),
            kind,
        }
    }

    /// Plans and executes the transfer, publishing `Started`, `Progress` and `FileDone`.
    async fn drive(&self) -> JobOutcome {
        let pace = self.control.pace();
        // The pre-scan itself is not paced: a job suspended while it scans stops after it.
        pace.ready().await;
        let plan = plan(&self.table, &self.request).await?;
        let _claim = self.destinations.claim(self.id.0, &plan)?;
        let (files, bytes) = plan.totals();
        // How long the pre-scan took, before anything moved: `-vv` shows it beside the job's
        // own start and end.
        tracing::debug!(files, bytes, elapsed = ?self.meter.snapshot().elapsed, "planned");
        self.meter.set_totals(files, bytes);
        self.bus.publish(self.event(EventKind::Started));
        let file_done = |path: &VPath, bytes: u64| {
            let kind = EventKind::FileDone {
                path: path.clone(),
                bytes,
            };
            self.bus.publish(self.event(kind));
        };
        let reporter = Reporter {
            meter: &self.meter,
            pace,
            file_done: &file_done,
        };
        let run = execute(&plan, &reporter);
        tokio::pin!(run);
        let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        ticker.tick().await;
        let mut last = (0, 0);
        let mut summary: TransferSummary = loop {
            tokio::select! {
                result = &mut run => break result?,
                _ = ticker.tick() => {
                    self.meter.tick();
                    let progress = self.meter.snapshot();
                    // Coalesced: at most one per tick, and none while nothing moves.
                    if (progress.files_done, progress.bytes_done) != last {
                        last = (progress.files_done, progress.bytes_done);
                        self.bus.publish(JobEvent {
                            job: self.id,
                            route: self.route.clone(),
                            progress,
                            kind: EventKind::Progress,
                        });
                    }
                }
            }
        };
        summary.elapsed = self.meter.snapshot().elapsed;
        Ok(summary)
    }
}
