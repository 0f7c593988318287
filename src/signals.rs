//! The ways a long-running front end (`dashboard`, `events`) is asked to stop: SIGINT or SIGTERM.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Resolves on SIGINT or SIGTERM. The handlers are installed at once, before the future is first
/// polled, so that a signal early on ends the command cleanly (exit 0, the terminal restored)
/// rather than by the default kill. Without handlers the default actions stay, and the future
/// never resolves.
pub fn interrupted() -> impl Future<Output = ()> {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
}
