//! SIGTERM in the interactive shell: it ends the shell cleanly, at the prompt or while a command
//! (the `dashboard` included) runs, as htop or `docker stats` end on SIGTERM rather than die
//! with the terminal left raw.
//!
//! [`Terminate`] is installed when the interactive shell starts and listened to for its whole
//! life. tokio never hands a caught signal back to its default action, so listening only while
//! the dashboard is open would leave the shell deaf to SIGTERM from then on; listening always
//! means SIGTERM always ends it:
//!
//! - while a command runs, the loop drops it, which cancels it as Ctrl-C does (a transfer
//!   discards what it staged; the dashboard restores the terminal as it goes);
//! - at the prompt, rustyline reads in a blocking thread with the terminal raw. It reads SIGINT
//!   during `readline` as Ctrl-C and then restores the terminal itself, so [`Terminate::wake`]
//!   sends SIGINT to this process until `readline` returns. That works whichever thread the
//!   signal lands on because rustyline then waits on a `select` that includes its signal pipe
//!   (the shell makes it so by creating an external printer). Should `readline` never return
//!   (rustyline catches SIGINT only when stdout is a terminal), the terminal mode saved at start
//!   is put back and the thread is left behind (`main` does not wait for it).
//!
//! The loop then ends as at `exit`: the history is saved and the caller's engine shutdown
//! cancels an embedded engine's jobs and waits for their cleanup (attached, the daemon's
//! background jobs run on, as at `exit`).

use std::time::Duration;

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::{JoinError, JoinHandle};

/// How often SIGINT is sent to a `readline` that has not returned yet: the first may land
/// before rustyline has put its handler in place.
const WAKE_EVERY: Duration = Duration::from_millis(50);
/// How long `readline` has to return before the terminal mode is restored without it.
const WAKE_FOR: Duration = Duration::from_secs(2);

/// The shell's SIGTERM handler and the terminal mode to fall back on.
pub struct Terminate {
    /// `None` when the handler could not be installed: SIGTERM keeps its default action.
    term: Option<Signal>,
    /// stdin's terminal mode before the first prompt.
    saved: Option<Termios>,
}

impl Terminate {
    /// Installs the SIGTERM handler for the rest of the process, and a SIGINT one: from then on
    /// a SIGINT that [`Self::wake`] sends between two `readline`s is ignored rather than
    /// killing the process by default.
    pub fn install() -> Self {
        // A SIGINT handler stays installed once created; the stream itself is not needed.
        let _ = signal(SignalKind::interrupt());
        Terminate {
            term: signal(SignalKind::terminate()).ok(),
            saved: tcgetattr(std::io::stdin()).ok(),
        }
    }

    /// Resolves on the next SIGTERM; never without a handler. Cancel safe.
    pub async fn recv(&mut self) {
        match &mut self.term {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Ends the `readline` that `reading` runs and returns its result, or `None` when it did not
    /// return in time, after the terminal mode saved at start has been restored.
    pub async fn wake<T>(&self, reading: &mut JoinHandle<T>) -> Option<Result<T, JoinError>> {
        let deadline = tokio::time::Instant::now() + WAKE_FOR;
        while tokio::time::Instant::now() < deadline {
            interrupt_self();
            if let Ok(joined) = tokio::time::timeout(WAKE_EVERY, &mut *reading).await {
                return Some(joined);
            }
        }
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
        // The prompt's line is left unfinished.
        eprintln!();
        None
    }
}

/// SIGINT to this process, which rustyline reads during `readline` as Ctrl-C.
fn interrupt_self() {
    use rustix::process::{Signal, getpid, kill_process};
    let _ = kill_process(getpid(), Signal::INT);
}
