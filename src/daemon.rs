//! The daemon: `mavfs serve` runs the engine as a long-lived process on a Unix socket, and the
//! front ends attach to it, so jobs outlive the client that started them and every client sees
//! every job (DESIGN.md section 8).
//!
//! - [`protocol`]: the frames and messages both sides speak;
//! - [`socket`]: where the socket lives and the rules for binding it (one daemon per socket,
//!   stale sockets, permissions) and for its peers;
//! - [`server`]: the accept loop; [`connection`]: one client; [`outbox`]: the sending side of a
//!   socket, shared by the tasks that send on it; [`handlers`]: one handler per request;
//! - [`client`]: [`client::Remote`], the engine an attached front end holds;
//! - [`metrics`]: `serve --metrics ADDR`, Prometheus text at `/metrics`;
//! - [`serve`]: `mavfs serve` itself: bind, serve, shut down cleanly on SIGINT/SIGTERM.

pub mod client;
pub mod connection;
pub mod handlers;
pub mod metrics;
pub mod outbox;
pub mod protocol;
pub mod serve;
pub mod server;
pub mod socket;

#[cfg(test)]
mod tests;
