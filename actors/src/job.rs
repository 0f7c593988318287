//! Jobs: every `cp`, `mv`, `push` or `pull` runs as one, and this module is their one home.
//!
//! - this file: what names and describes a job ([`JobId`], [`JobRoute`], [`JobState`], the row
//!   `jobs` lists, [`JobInfo`]) and how one is cancelled ([`JobControl`]);
//! - [`event`]: what a job reports ([`JobEvent`], [`EventKind`]), published on the engine's
//!   [`crate::events::EventBus`];
//! - [`run`]: running one job: plan, `Started`, execution with coalesced `Progress` and
//!   `FileDone` events, its outcome;
//! - [`table`]: the job table the router keeps (ids, states, times, outcomes; ended jobs stay
//!   listable);
//! - [`foreground`]: [`ForegroundJob`], a job its starter waits for and cancels by dropping.
//!
//! A job is cancelled one way only: its [`JobControl`] (a cancellation token, a child of the
//! router's shutdown token). `kill`, Ctrl-C (dropping a [`ForegroundJob`]), a client hanging up
//! and shutdown all end there, and the job stops at its next await: in-flight writers are
//! dropped, and with them their staged data; committed files stay.
//!
//! The same control suspends and continues the job and changes its limits, through the
//! transfer's [`Pace`]: a suspended job waits at its next chunk boundary or store operation,
//! holding its in-flight writers, so continuing does not start a file over, and cancelling it
//! then drops them as above. The job table records the state (`stopped`) and publishes
//! `Stopped`, `Continued` and `Throttled` events; they are not terminal.

pub mod event;
pub mod foreground;
pub mod run;
pub mod table;

#[cfg(test)]
mod control_tests;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::path::VPath;
use crate::transfer::{Bucket, Pace, Progress, TransferKind, TransferSummary};

pub use self::event::{EventKind, JobEvent};
pub use self::foreground::ForegroundJob;

/// A job's number, unique within one engine, counting from 1 (the shell's `%N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a job moves: its command, sources and destination, and the line that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRoute {
    /// The command: copy, move, push or pull.
    pub kind: TransferKind,
    /// What is copied or moved.
    pub sources: Vec<VPath>,
    /// Where it goes.
    pub dest: VPath,
    /// The command as the user typed it (`push /vram/a /vdisk/a`), for listings and notices.
    pub label: String,
}

/// A job's state, as `jobs` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Moving data.
    Running,
    /// Suspended: it moves nothing until continued, and can still be cancelled.
    Stopped,
    /// Ended: every file is committed.
    Done,
    /// Ended on an error; what was committed stays.
    Failed,
    /// Ended by a cancel; what was committed stays.
    Cancelled,
}

impl JobState {
    /// The name `jobs` shows: `running`, `stopped`, `done`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Stopped => "stopped",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl JobState {
    /// Whether the job has ended (`done`, `failed` or `cancelled`).
    pub fn has_ended(self) -> bool {
        !matches!(self, JobState::Running | JobState::Stopped)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that widths and alignment in format strings apply.
        f.pad(self.as_str())
    }
}

/// One row of the job table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's number (`%N`).
    pub id: JobId,
    /// What the job moves.
    pub route: JobRoute,
    /// Where the job stands.
    pub state: JobState,
    /// Its counters now.
    pub progress: Progress,
    /// When it started.
    pub started: SystemTime,
    /// When it ended, if it has.
    pub ended: Option<SystemTime>,
    /// Why a failed job failed.
    pub error: Option<Error>,
    /// The job's own limit in bytes per second (`None`: only the global limit, if any).
    #[serde(default)]
    pub bwlimit: Option<u64>,
    /// Files the job moves at once (`-j N`).
    #[serde(default = "default_jobs")]
    pub jobs: usize,
}

fn default_jobs() -> usize {
    crate::limits::DEFAULT_JOBS
}

/// How a job is to run, besides what it moves: given when it starts, changeable while it runs
/// ([`crate::RouterHandle::throttle`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    /// The job's own limit in bytes per second (`--bwlimit`); `None`: only the global limit.
    #[serde(default)]
    pub bwlimit: Option<u64>,
}

/// How a job ended, as its waiters see it: its summary, its own error, or `Cancelled`.
pub type JobOutcome = Result<TransferSummary>;

/// The one way to cancel a job, and the way to suspend, continue and throttle it. Cheap to
/// clone; cancelling twice, or after the job ended, does nothing.
///
/// Suspending here only paces the transfer; the job table, which records the state and
/// publishes the events, goes through the router ([`crate::RouterHandle::suspend`]).
#[derive(Debug, Clone)]
pub struct JobControl {
    token: CancellationToken,
    pace: Arc<Pace>,
}

impl JobControl {
    /// A control whose job is also cancelled when `parent` is (shutdown), with its own limit
    /// `bwlimit`, the engine's `global` limit, and `jobs` files at once.
    pub(crate) fn child_of(
        parent: &CancellationToken,
        bwlimit: Option<u64>,
        global: Arc<Bucket>,
        jobs: usize,
    ) -> Self {
        JobControl {
            token: parent.child_token(),
            pace: Arc::new(Pace::new(bwlimit, global, jobs)),
        }
    }

    /// What paces the job's transfer.
    pub(crate) fn pace(&self) -> &Arc<Pace> {
        &self.pace
    }

    /// Suspends (`false`) or continues (`true`) the job's transfer. Returns whether that
    /// changed it.
    pub(crate) fn set_running(&self, running: bool) -> bool {
        self.pace.set_running(running)
    }

    /// Stops the job at its next await; it ends `Cancelled` shortly after.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Resolves once the job is cancelled.
    pub(crate) async fn cancelled(&self) {
        self.token.cancelled().await;
    }
}
