//! What a job reports: one [`JobEvent`] per step, each with a full progress snapshot, so that a
//! subscriber that missed some (a slow dashboard) is up to date with the next one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{JobId, JobRoute};
use crate::error::Error;
use crate::path::VPath;
use crate::transfer::{Progress, TransferSummary};

/// What happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The sources are scanned; the totals are known.
    Started,
    /// Periodic progress.
    Progress,
    /// One file was committed (and, for a move, its source removed).
    FileDone {
        /// The committed file, at its destination.
        path: VPath,
        /// Its size.
        bytes: u64,
    },
    /// The job was suspended: it moves nothing until `Continued` (or it is cancelled).
    Stopped,
    /// The suspended job moves again.
    Continued,
    /// The job's own limit (bytes per second, `None`: unlimited) or its files at once changed;
    /// both are given as they now are.
    Throttled {
        /// Bytes per second, `None`: unlimited.
        bwlimit: Option<u64>,
        /// Files moved at once.
        jobs: usize,
    },
    /// Terminal: the job completed. In JSON the summary's fields sit beside `type`.
    Finished(TransferSummary),
    /// Terminal: the job stopped on an error; what it committed stays. In JSON the error's
    /// fields (`kind`, `op`, `path`, ...) sit beside `type`.
    Failed(Error),
    /// Terminal: the job was cancelled; what it committed stays.
    Cancelled,
}

impl EventKind {
    /// Whether this event ends its job (exactly one per job does).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::Finished(_) | EventKind::Failed(_) | EventKind::Cancelled
        )
    }
}

/// One event of one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobEvent {
    /// The job it belongs to.
    pub job: JobId,
    /// Shared by every event of the job, so publishing does not copy its sources.
    pub route: Arc<JobRoute>,
    /// The job's counters when the event was published.
    pub progress: Progress,
    /// What happened.
    pub kind: EventKind,
}
