//! [`ForegroundJob`]: a job its starter waits for, cancelled if the waiter goes away first.

use tokio::sync::watch;

use super::{JobControl, JobId, JobOutcome};
use crate::error::{Error, ErrorKind};

/// A job waited for in the foreground (a shell's transfer, `fg`). Dropping it before the job
/// ends cancels the job through its [`JobControl`]: Ctrl-C drops the shell's future, and a
/// daemon's client hanging up drops its request.
#[must_use = "dropping a ForegroundJob cancels its job"]
pub struct ForegroundJob {
    /// The job's id.
    pub id: JobId,
    outcome: watch::Receiver<Option<JobOutcome>>,
    /// `None` once the job has ended: nothing left to cancel.
    control: Option<JobControl>,
}

impl ForegroundJob {
    pub(crate) fn new(
        id: JobId,
        outcome: watch::Receiver<Option<JobOutcome>>,
        control: JobControl,
    ) -> Self {
        ForegroundJob {
            id,
            outcome,
            control: Some(control),
        }
    }

    /// Waits for the job to end and returns how it ended.
    pub async fn wait(mut self) -> JobOutcome {
        let result = wait_outcome(self.outcome.clone()).await;
        self.control = None;
        result
    }
}

impl Drop for ForegroundJob {
    fn drop(&mut self) {
        if let Some(control) = self.control.take() {
            control.cancel();
        }
    }
}

/// Waits until `outcome` holds the job's end. Errors: `Unavailable` if the engine stopped first.
pub(crate) async fn wait_outcome(mut outcome: watch::Receiver<Option<JobOutcome>>) -> JobOutcome {
    match outcome.wait_for(Option::is_some).await {
        Ok(ended) => ended.clone().unwrap_or_else(|| Err(engine_stopped("wait"))),
        Err(_) => Err(engine_stopped("wait")),
    }
}

/// The error of an operation that met a stopped engine.
pub(crate) fn engine_stopped(op: &'static str) -> Error {
    Error::new(ErrorKind::Unavailable, op).with_detail("the router has stopped")
}
