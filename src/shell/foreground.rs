//! The foreground side of job control: [`Session::wait_foreground`] waits for a transfer in the
//! foreground and, in the interactive shell, turns Ctrl-Z into a stopped background job of the
//! session (`[N]+ Stopped push ...`), as bash does; the session keeps the stopped job's wait
//! ([`Waiting`]) for `fg` to take back.
//!
//! It imports no command: the transfer commands and `fg` call it.

use std::future::Future;
use std::pin::Pin;

use mavfs_actors::{JobId, TransferSummary};
use tokio::signal::unix::{SignalKind, signal};

use super::Session;

/// A foreground job's wait ([`crate::engine::Foreground::wait`]), boxed so that a session can
/// keep it after Ctrl-Z: dropping it would cancel the job.
pub type Waiting = Pin<Box<dyn Future<Output = mavfs_actors::Result<TransferSummary>> + Send>>;

/// How a wait in the foreground ended.
pub enum Waited {
    /// The job ended, this way.
    Ended(mavfs_actors::Result<TransferSummary>),
    /// Ctrl-Z suspended it; it is now a stopped background job of the session.
    Stopped,
}

impl Session {
    /// Waits for foreground job `id` through `waiting`. In the interactive shell, Ctrl-Z
    /// meanwhile suspends the job, keeps `waiting` (so that the job lives on), and remembers the
    /// job as a background job of the session for `bg`, `fg`, `wait` and its notice; the caller
    /// prints `[N]+ Stopped ...` once its progress bar is gone.
    ///
    /// SIGTSTP is caught only here, while a foreground transfer runs; the terminal sends it
    /// because rustyline is not reading then. At the prompt rustyline reads Ctrl-Z as a key (see
    /// [`super::interactive`]). Scripts and `exec` keep the default action.
    pub async fn wait_foreground(&mut self, id: JobId, mut waiting: Waiting) -> Waited {
        let tstp = self
            .options
            .interactive
            .then(|| signal(SignalKind::from_raw(rustix::process::Signal::TSTP.as_raw())).ok())
            .flatten();
        let Some(mut tstp) = tstp else {
            return Waited::Ended(waiting.await);
        };
        loop {
            tokio::select! {
                result = &mut waiting => return Waited::Ended(result),
                _ = tstp.recv() => {
                    // A job that ended as the key was pressed cannot stop: its end is the
                    // answer, which the next turn of the loop gets.
                    if self.engine.suspend(id).await.is_ok() {
                        // The terminal echoed ^Z; end its line, as for ^C.
                        eprintln!();
                        self.parked.push((id, std::sync::Mutex::new(waiting)));
                        if !self.background.contains(&id) {
                            self.background.push(id);
                        }
                        return Waited::Stopped;
                    }
                }
            }
        }
    }

    /// The wait of job `id` that Ctrl-Z left with the session, for `fg` to take back.
    pub fn take_parked(&mut self, id: JobId) -> Option<Waiting> {
        let at = self.parked.iter().position(|(j, _)| *j == id)?;
        let (_, waiting) = self.parked.remove(at);
        Some(waiting.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Ends the kept waits of jobs that have ended. They resolve at once; awaiting them rather
    /// than dropping them means no cancel is sent for a job that has already ended.
    pub(super) async fn release_parked(&mut self, ended: &[JobId]) {
        for id in ended {
            if let Some(waiting) = self.take_parked(*id) {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await;
            }
        }
    }
}
