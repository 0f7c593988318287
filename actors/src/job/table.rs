//! The job table: every job of one engine, running or ended, by id.
//!
//! The router owns it and changes it only from its own mailbox, one message at a time, so ids
//! count up without gaps and each job's end is recorded, and its terminal event published,
//! exactly once. Ended jobs stay listable for the life of the engine.
//!
//! Suspending, continuing and throttling go through here too, so that the state the table shows
//! and the events it publishes (`Stopped`, `Continued`, `Throttled`) follow the order of the
//! requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::run::JobRun;
use super::{EventKind, JobControl, JobEvent, JobId, JobInfo, JobOutcome, JobRoute, JobState};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventBus;
use crate::mounts::MountTable;
use crate::transfer::{Bucket, Destinations, Meter, TransferRequest};

/// A receiver that sees a job's outcome once it ends (`None` while it runs).
pub type OutcomeReceiver = watch::Receiver<Option<JobOutcome>>;

/// The table's record of one job.
struct JobRecord {
    route: Arc<JobRoute>,
    state: JobState,
    meter: Arc<Meter>,
    started: SystemTime,
    ended: Option<SystemTime>,
    error: Option<Error>,
    control: JobControl,
    /// `None` while running; the outcome once ended. Waiters hold receivers.
    outcome: watch::Sender<Option<JobOutcome>>,
}

impl JobRecord {
    fn info(&self, id: JobId) -> JobInfo {
        JobInfo {
            id,
            route: (*self.route).clone(),
            state: self.state,
            progress: self.meter.snapshot(),
            started: self.started,
            ended: self.ended,
            error: self.error.clone(),
            bwlimit: self.control.pace().limit(),
            jobs: self.control.pace().jobs(),
        }
    }

    fn event(&self, id: JobId, kind: EventKind) -> JobEvent {
        JobEvent {
            job: id,
            route: self.route.clone(),
            progress: self.meter.snapshot(),
            kind,
        }
    }
}

/// Every job of one engine.
pub struct JobTable {
    jobs: BTreeMap<JobId, JobRecord>,
    next_id: u64,
    bus: EventBus<JobEvent>,
    /// What the running jobs write, so that two never write one path at once.
    destinations: Arc<Destinations>,
}

impl JobTable {
    /// An empty table whose jobs publish on `bus`.
    pub fn new(bus: EventBus<JobEvent>) -> Self {
        JobTable {
            jobs: BTreeMap::new(),
            next_id: 0,
            bus,
            destinations: Arc::default(),
        }
    }

    /// Records a new running job and returns what runs it. Its control is a child of
    /// `shutdown`; its transfer obeys its own `bwlimit` and the engine's `global` limit.
    pub fn add(
        &mut self,
        request: TransferRequest,
        label: String,
        mounts: Arc<MountTable>,
        shutdown: &CancellationToken,
        bwlimit: Option<u64>,
        global: Arc<Bucket>,
    ) -> JobRun {
        self.next_id += 1;
        let id = JobId(self.next_id);
        let route = Arc::new(JobRoute {
            kind: request.kind,
            sources: request.sources.clone(),
            dest: request.dest.clone(),
            label,
        });
        let meter = Arc::new(Meter::new());
        let control = JobControl::child_of(shutdown, bwlimit, global, request.jobs);
        let (outcome, _) = watch::channel(None);
        self.jobs.insert(
            id,
            JobRecord {
                route: route.clone(),
                state: JobState::Running,
                meter: meter.clone(),
                started: SystemTime::now(),
                ended: None,
                error: None,
                control: control.clone(),
                outcome,
            },
        );
        JobRun {
            id,
            route,
            request,
            table: mounts,
            meter,
            bus: self.bus.clone(),
            control,
            destinations: self.destinations.clone(),
        }
    }

    /// Records how job `id` ended and publishes its terminal event. A job that has already
    /// ended is left as it was: exactly one terminal event per job.
    pub fn end(&mut self, id: JobId, result: JobOutcome) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.state.has_ended() {
            return;
        }
        let kind = match &result {
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
        self.bus.publish(job.event(id, kind));
        job.outcome.send_replace(Some(result));
    }

    /// Suspends (`false`) or continues (`true`) job `id`, recording it as `stopped` or
    /// `running` and publishing `Stopped` or `Continued`; asking for the state it is in changes
    /// nothing and publishes nothing. Errors: `NotFound` for an unknown id; `InvalidInput` for
    /// a job that has ended.
    pub fn set_running(&mut self, id: JobId, running: bool) -> Result<()> {
        let op = if running { "bg" } else { "stop" };
        let job = self.running_mut(id, op)?;
        if !job.control.set_running(running) {
            return Ok(());
        }
        // The elapsed-time clock stops with the job, so its rate is the rate while it moved.
        job.meter.suspend(!running);
        let (state, kind) = if running {
            (JobState::Running, EventKind::Continued)
        } else {
            (JobState::Stopped, EventKind::Stopped)
        };
        job.state = state;
        let event = job.event(id, kind);
        self.bus.publish(event);
        Ok(())
    }

    /// Changes job `id`'s own limit (`bwlimit`, bytes per second, `None`: unlimited) and, when
    /// given, its files at once (`jobs`, at least 1), and publishes `Throttled`. Errors:
    /// `NotFound` for an unknown id; `InvalidInput` for a job that has ended.
    pub fn throttle(&mut self, id: JobId, bwlimit: Option<u64>, jobs: Option<usize>) -> Result<()> {
        let job = self.running_mut(id, "throttle")?;
        let pace = job.control.pace();
        pace.set_limit(bwlimit);
        if let Some(jobs) = jobs {
            pace.set_jobs(jobs);
        }
        let kind = EventKind::Throttled {
            bwlimit: pace.limit(),
            jobs: pace.jobs(),
        };
        let event = job.event(id, kind);
        self.bus.publish(event);
        Ok(())
    }

    /// Changes job `id`'s files at once (at least 1), keeping its limit, and publishes
    /// `Throttled`. Errors: as [`JobTable::throttle`].
    pub fn set_jobs(&mut self, id: JobId, jobs: usize) -> Result<()> {
        let limit = self.running_mut(id, "throttle")?.control.pace().limit();
        self.throttle(id, limit, Some(jobs))
    }

    fn running_mut(&mut self, id: JobId, op: &'static str) -> Result<&mut JobRecord> {
        let job = self.jobs.get_mut(&id).ok_or_else(|| no_such_job(id))?;
        if job.state.has_ended() {
            return Err(Error::new(ErrorKind::InvalidInput, op)
                .with_detail(format!("job %{id} has ended ({})", job.state)));
        }
        Ok(job)
    }

    /// The control of job `id`. Errors: `NotFound` for an unknown id.
    pub fn control(&self, id: JobId) -> Result<JobControl> {
        Ok(self.get(id)?.control.clone())
    }

    /// A receiver of job `id`'s outcome. Errors: `NotFound` for an unknown id.
    pub fn watch(&self, id: JobId) -> Result<OutcomeReceiver> {
        Ok(self.get(id)?.outcome.subscribe())
    }

    /// Every job, running or ended, in id order.
    pub fn list(&self) -> Vec<JobInfo> {
        self.jobs.iter().map(|(id, job)| job.info(*id)).collect()
    }

    fn get(&self, id: JobId) -> Result<&JobRecord> {
        self.jobs.get(&id).ok_or_else(|| no_such_job(id))
    }
}

fn no_such_job(id: JobId) -> Error {
    Error::new(ErrorKind::NotFound, "job").with_detail(format!("no job %{id}"))
}
