//! The daemon's accept loop: checks each peer, caps the connections, serves each on a task of
//! its own, and on shutdown stops accepting and closes every connection.

use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection::{self, Limits};
use super::protocol::{self, ServerMsg};
use super::socket;
use crate::engine::Engine;

/// How the daemon serves clients.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Most clients connected at once; one more is refused with a reason.
    pub max_connections: usize,
    /// Per-connection limits.
    pub limits: Limits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 512,
            limits: Limits::default(),
        }
    }
}

/// Serves clients on `listener` until `shutdown` is cancelled, then closes every connection and
/// returns once each has ended.
pub async fn run(
    listener: &UnixListener,
    engine: Engine,
    options: ServerOptions,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(error = %e, "accepting a client failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let pid = stream.peer_cred().ok().and_then(|c| c.pid());
        if let Err(reason) = socket::peer_allowed(&stream) {
            tracing::warn!(?pid, %reason, "refused a client");
            connections.spawn(refuse(stream, reason));
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let reason = format!(
                "too many clients ({} connected); try again later",
                options.max_connections
            );
            tracing::warn!(?pid, "refused a client: too many connections");
            connections.spawn(refuse(stream, reason));
            continue;
        };
        let engine = engine.clone();
        let token = shutdown.child_token();
        connections.spawn(async move {
            tracing::info!(?pid, "client connected");
            connection::serve(stream, engine, options.limits, token).await;
            tracing::info!(?pid, "client disconnected");
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
}

/// Tells a client why it is not served, then hangs up.
async fn refuse(stream: UnixStream, reason: String) {
    let mut stream = stream;
    let frame = protocol::message(&ServerMsg::Refused { reason });
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        protocol::write(&mut stream, &frame),
    )
    .await;
}
