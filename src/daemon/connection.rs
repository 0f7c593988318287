//! One client connection of the daemon: the handshake, then one task that reads the client's
//! frames and runs its requests as futures of that task rather than tasks of their own, so that a
//! `stat`, an `ls` or a small `cat` and its reply cost no hop between tasks. Replies go out
//! through the connection's [`Outbox`], written at once by the request that produces them when
//! the socket takes them.
//!
//! The one exception is a write (`Request::Write`), which takes the client's data frames: it
//! runs as a task of its own, so that handing it a frame wakes that task. (A task woken while it
//! runs, as the connection's would be by its own hand-off, is rescheduled as if it had yielded,
//! which on a multi-threaded runtime wakes another worker: a system call per frame for nothing.)
//! A read's credit is not handed over by waking it either, but counted ([`Credit`]).
//!
//! Rules that keep the daemon's memory bounded whatever a client does:
//! - the handshake must arrive within [`Limits::handshake`], or the connection is dropped;
//! - everything sent to a client goes through its outbox, whose queue holds at most
//!   [`Limits::outbound`] frames; a handler that cannot queue within [`Limits::send`] (the client
//!   stopped reading) closes the connection rather than buffering, and events that do not fit
//!   are dropped and counted, and the client is told ([`ServerMsg::Lagged`]);
//! - a stream's inbox holds at most a window of data: a client that sends more than it was
//!   granted breaks the protocol;
//! - any malformed, unknown or oversized frame is answered with [`ServerMsg::Refused`] and the
//!   connection is closed; other connections never notice.
//!
//! Requests on one connection run concurrently (a slow `wait` never holds up a `stat`), but
//! (writes aside) on one task: one connection uses one core at a time, many connections use them
//! all.
//!
//! When the connection ends, for whatever reason, its request handlers are dropped: a foreground
//! job is cancelled (a hang-up is Ctrl-C), a write in progress is discarded, a read stops.
//! Background jobs run on.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{AbortHandle, Abortable, BoxFuture};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::handlers::{self, Credit, Inbound};
use super::outbox::Outbox;
use super::protocol::{self, ClientMsg, Frame, ServerMsg, VERSION, WINDOW};
use crate::engine::Engine;

/// How long a client may take and how much may wait for it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From connecting to `Hello`.
    pub handshake: Duration,
    /// Longest wait to queue one frame for a client before it counts as not reading.
    pub send: Duration,
    /// Frames queued for one client.
    pub outbound: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake: Duration::from_secs(10),
            send: Duration::from_secs(10),
            outbound: 64,
        }
    }
}

/// A request in progress: where its inbound frames go, and how to stop it.
struct Slot {
    inbox: mpsc::Sender<Inbound>,
    credit: Arc<Credit>,
    abort: AbortHandle,
    /// Tells this request from an earlier one that had the same id.
    generation: u64,
}

/// Serves one client until it hangs up, breaks the protocol, or `shutdown` is cancelled.
pub async fn serve(
    stream: UnixStream,
    engine: Engine,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let (read, write) = stream.into_split();
    let mut frames = FramedRead::new(read, protocol::codec());
    let closed = shutdown.child_token();
    let (out, flusher) = Outbox::new(write, limits.outbound, limits.send, closed.clone());
    let flusher = tokio::spawn(flusher);

    match handshake(&mut frames, &engine, &out, limits).await {
        Ok(()) => run(&mut frames, &engine, &out, &closed).await,
        Err(reason) => refuse(&out, reason),
    }
    // What is queued (a `Refused` frame included) still goes out, within the send limit.
    out.finish();
    drop(out);
    let _ = tokio::time::timeout(limits.send, flusher).await;
    closed.cancel();
}

/// Queues a `Refused` frame; the connection closes right after.
fn refuse(out: &Outbox, reason: String) {
    tracing::info!(%reason, "refusing a client");
    out.try_send(protocol::message(&ServerMsg::Refused { reason }));
}

type Frames = FramedRead<tokio::net::unix::OwnedReadHalf, tokio_util::codec::LengthDelimitedCodec>;

async fn handshake(
    frames: &mut Frames,
    engine: &Engine,
    out: &Outbox,
    limits: Limits,
) -> Result<(), String> {
    let first = tokio::time::timeout(limits.handshake, frames.next())
        .await
        .map_err(|_| "no Hello within the handshake timeout".to_string())?;
    let frame = match first {
        Some(Ok(frame)) => frame,
        Some(Err(e)) => return Err(format!("bad frame: {e}")),
        None => return Err("closed before Hello".into()),
    };
    match protocol::decode::<ClientMsg>(frame)? {
        Frame::Message(ClientMsg::Hello { version }) if version == VERSION => {}
        Frame::Message(ClientMsg::Hello { version }) => {
            return Err(format!(
                "protocol version {version} is not this daemon's ({VERSION}); use the same \
                 mavfs for client and daemon"
            ));
        }
        _ => return Err("expected Hello first".into()),
    }
    let welcome = ServerMsg::Welcome {
        version: VERSION,
        daemon: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        mounts: engine.mounts(),
        home: engine.home(),
    };
    out.message(&welcome)
        .await
        .map_err(|_| "closed during the handshake".to_string())
}

/// Routes frames to requests, and runs the requests, until the client hangs up or breaks the
/// protocol.
async fn run(frames: &mut Frames, engine: &Engine, out: &Outbox, closed: &CancellationToken) {
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut running: FuturesUnordered<BoxFuture<'static, (u64, u64)>> = FuturesUnordered::new();
    let mut generation = 0u64;
    let outcome: Result<(), String> = loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            Some((id, ended)) = running.next() => {
                if slots.get(&id).is_some_and(|slot| slot.generation == ended) {
                    slots.remove(&id);
                }
                continue;
            }
            () = closed.cancelled() => break Ok(()),
        };
        let frame = match frame {
            None => break Ok(()),
            Some(Err(e)) => break Err(format!("bad frame: {e}")),
            Some(Ok(frame)) => frame,
        };
        let routed = match protocol::decode::<ClientMsg>(frame) {
            Err(reason) => Err(reason),
            Ok(Frame::Data { id, data }) => deliver(&slots, id, Inbound::Data(data)),
            Ok(Frame::Message(msg)) => match msg {
                ClientMsg::Hello { .. } => Err("Hello sent twice".into()),
                ClientMsg::Request { id, request } => match slots.entry(id) {
                    Entry::Occupied(_) => Err(format!("request id {id} is already in use")),
                    Entry::Vacant(slot) => {
                        // A window of data and the end of a write.
                        let (inbox, inbound) = mpsc::channel(WINDOW as usize + 1);
                        let credit = Arc::new(Credit::default());
                        let spawn = handlers::takes_data(&request);
                        let ctx = handlers::Ctx {
                            id,
                            engine: engine.clone(),
                            out: out.clone(),
                            inbound,
                            credit: credit.clone(),
                        };
                        let handler = handlers::handle(request, ctx);
                        let handler = if spawn {
                            // Aborted when dropped, with the request or the connection.
                            let task = AbortOnDropHandle::new(tokio::spawn(handler));
                            async move {
                                let _ = task.await;
                            }
                            .boxed()
                        } else {
                            handler.boxed()
                        };
                        generation += 1;
                        let this = generation;
                        let (abort, registration) = AbortHandle::new_pair();
                        let handler = Abortable::new(handler, registration);
                        running.push(handler.map(move |_| (id, this)).boxed());
                        slot.insert(Slot {
                            inbox,
                            credit,
                            abort,
                            generation: this,
                        });
                        Ok(())
                    }
                },
                ClientMsg::Credit { id, chunks } => {
                    if let Some(slot) = slots.get(&id) {
                        slot.credit.grant(chunks);
                    }
                    Ok(())
                }
                ClientMsg::EndWrite { id, commit } => deliver(&slots, id, Inbound::End { commit }),
                ClientMsg::Cancel { id } => {
                    if let Some(slot) = slots.remove(&id) {
                        slot.abort.abort();
                    }
                    Ok(())
                }
            },
        };
        if let Err(reason) = routed {
            break Err(reason);
        }
    };
    if let Err(reason) = outcome {
        refuse(out, reason);
    }
    // Dropping the handlers cancels their foreground jobs and discards their writes.
    drop(running);
}

/// Hands `inbound` to request `id`'s handler. A frame for a request that has just ended is
/// dropped; one beyond the window the client was granted breaks the protocol.
fn deliver(slots: &HashMap<u64, Slot>, id: u64, inbound: Inbound) -> Result<(), String> {
    let Some(slot) = slots.get(&id) else {
        // The request ended (an error ends a write early): what was in flight means nothing.
        return Ok(());
    };
    match slot.inbox.try_send(inbound) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        Err(mpsc::error::TrySendError::Full(_)) => Err(format!(
            "request {id}: more data than the {WINDOW} chunks granted"
        )),
    }
}
