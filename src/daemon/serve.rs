//! `mavfs serve`: binds the socket, serves clients until SIGINT or SIGTERM, then shuts down
//! cleanly: stop accepting, close the connections (their foreground jobs are cancelled), cancel
//! the running jobs (committed files stay, nothing partial), remove the socket, exit 0.

use std::net::SocketAddr;
use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::metrics;
use super::server::{self, ServerOptions};
use super::socket;
use crate::engine::Engine;

/// Runs the daemon over `engine` on `socket_path` until SIGINT or SIGTERM; returns the exit
/// code: 0 after a clean shutdown, 2 when the socket cannot be had (another daemon, a path that
/// is not a socket, an unsafe directory).
/// With `metrics_addr`, Prometheus text is served at `http://ADDR/metrics` while the daemon runs.
pub async fn run(engine: Engine, socket_path: &Path, metrics_addr: Option<SocketAddr>) -> i32 {
    let listening = match socket::bind(socket_path) {
        Ok(listening) => listening,
        Err(e) => {
            eprintln!("mavfs: serve: {e}");
            return 2;
        }
    };
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("mavfs: serve: cannot install signal handlers");
        return 1;
    };
    tracing::info!(socket = %listening.path().display(), pid = std::process::id(), "serving");
    let shutdown = CancellationToken::new();
    if let Some(addr) = metrics_addr
        && let Err(e) = metrics::serve(addr, engine.clone(), shutdown.clone()).await
    {
        eprintln!("mavfs: serve: {e}");
        return 2;
    }
    {
        let serving = server::run(
            &listening.listener,
            engine.clone(),
            ServerOptions::default(),
            shutdown.clone(),
        );
        tokio::pin!(serving);
        tokio::select! {
            () = &mut serving => {}
            _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
        shutdown.cancel();
        serving.await;
    }
    engine.shutdown().await;
    if let Err(e) = listening.close() {
        eprintln!(
            "mavfs: serve: cannot remove the socket {}: {e}",
            socket_path.display()
        );
        return 1;
    }
    tracing::info!("stopped");
    0
}
