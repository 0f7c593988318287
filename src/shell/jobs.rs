//! The session's background jobs: starting them with `&`, and the notices printed when they end.
//!
//! Job ids are the engine's (`%N`, counting from 1). A session remembers the jobs it started in
//! the background and, before each prompt (and after each line of a script), prints a notice for
//! each that has ended since, in id order, on stderr as bash does:
//! `[1]+ Done push /vram/a /vdisk/a`, `[2]+ Failed: <reason> (cp ...)`, `[3]+ Cancelled mv ...`.

use mavfs_actors::{JobId, JobInfo, JobState};

use super::commands::{self, COMMANDS, transfer};
use super::{CmdError, Session, Status};

/// Starts transfer command `argv` as a background job and prints `[N] command`.
pub async fn start_background(session: &mut Session, argv: &[String]) -> Result<Status, CmdError> {
    let (name, args) = (argv[0].as_str(), &argv[1..]);
    if !commands::find(name).is_some_and(|c| c.background) {
        let transfers: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| c.background)
            .map(|c| c.name)
            .collect();
        return Err(CmdError::Usage(format!(
            "only transfers ({}) run in the background",
            transfers.join(", ")
        )));
    }
    let (request, options) = transfer::request(session, name, args).await?;
    let label = transfer::label(name, args);
    let id = session
        .engine()
        .start(request, label.clone(), options)
        .await?;
    eprintln!("[{id}] {label}");
    session.background.push(id);
    Ok(Status::Success)
}

/// The notice for an ended job, or `None` while it runs.
pub fn notice(job: &JobInfo) -> Option<String> {
    let label = &job.route.label;
    match job.state {
        // A stopped job has not ended; its notice comes when it does.
        JobState::Running | JobState::Stopped => None,
        JobState::Done => Some(format!("[{}]+ Done {label}", job.id)),
        JobState::Cancelled => Some(format!("[{}]+ Cancelled {label}", job.id)),
        JobState::Failed => {
            let reason = job
                .error
                .as_ref()
                .map_or_else(String::new, |e| e.to_string());
            Some(format!("[{}]+ Failed: {reason} ({label})", job.id))
        }
    }
}

impl Session {
    /// Prints a notice for each background job of this session that has ended, and forgets it.
    /// Returns whether any of them failed.
    pub async fn report_ended_jobs(&mut self) -> bool {
        if self.background.is_empty() {
            return false;
        }
        let Ok(jobs) = self.engine.jobs().await else {
            return false;
        };
        let mut failed = false;
        let mut ended = Vec::new();
        self.background.retain(|id| {
            let Some(job) = jobs.iter().find(|j| j.id == *id) else {
                ended.push(*id);
                return false;
            };
            match notice(job) {
                Some(line) => {
                    eprintln!("{line}");
                    failed |= job.state == JobState::Failed;
                    ended.push(*id);
                    false
                }
                None => true,
            }
        });
        self.release_parked(&ended).await;
        failed
    }

    /// Before a script or `exec` exits: waits for every background job of this session, then
    /// reports them. Returns whether any of them failed. A stopped job would never end, so it is
    /// cancelled, and its notice says so. Attached to a daemon it does not wait: the jobs are
    /// the daemon's and run on (or stay stopped) after this client exits (`exec 'push a b &'`
    /// returns at once); those that already ended are reported.
    pub async fn wait_background(&mut self) -> bool {
        if self.engine.attached().is_some() {
            return self.report_ended_jobs().await;
        }
        if let Ok(jobs) = self.engine.jobs().await {
            for job in jobs.iter().filter(|j| j.state == JobState::Stopped) {
                if self.background.contains(&job.id) {
                    let _ = self.engine.cancel(job.id).await;
                }
            }
        }
        for id in self.background.clone() {
            // The outcome is reported by the notice.
            let _ = self.engine.wait(id).await;
        }
        self.report_ended_jobs().await
    }

    /// Forgets `id` (brought to the foreground, whose summary replaces the notice).
    pub fn forget_background(&mut self, id: JobId) {
        self.background.retain(|j| *j != id);
    }

    /// The most recent background job still remembered, for `fg` and `wait` alone.
    pub fn last_background(&self) -> Option<JobId> {
        self.background.last().copied()
    }
}
