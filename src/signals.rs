//! The ways a front end is asked to stop: SIGINT or SIGTERM for the long-running ones
//! (`dashboard`, `events`), SIGTERM or SIGHUP for `exec` and scripts.

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

/// Runs `work` (an `exec` or a script) unless SIGTERM or SIGHUP comes first. Then `work` is
/// dropped, which cancels its command in flight as Ctrl-C does (a transfer discards what it
/// staged), a line says so on stderr, and the result is 128 plus the signal's number, as bash
/// exits when killed. The caller then shuts the engine down, which cancels an embedded
/// engine's background jobs and waits for their cleanup: nothing is left staged, where the
/// default action would leave partial files for the next start to sweep.
pub async fn until_terminated(work: impl Future<Output = i32>) -> i32 {
    const SIGHUP: i32 = 1;
    const SIGTERM: i32 = 15;
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return work.await;
    };
    let signalled = tokio::select! {
        code = work => return code,
        _ = term.recv() => ("SIGTERM", SIGTERM),
        _ = hup.recv() => ("SIGHUP", SIGHUP),
    };
    eprintln!("mavfs: {}: stopping; jobs cancelled", signalled.0);
    128 + signalled.1
}
