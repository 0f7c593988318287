//! [`Outbox`]: the sending side of a socket, shared by every task that has something to say on
//! it (the daemon's request handlers, an attached client's requests).
//!
//! A frame is written by the task that sends it, at once and without a hop to a writer task,
//! when nothing is queued before it and the socket takes it whole: the common case of a small
//! reply or request. Otherwise what the socket did not take is queued, in order, and the
//! outbox's flusher ([`Outbox::new`] returns it; the owner spawns it) writes the queue out as
//! the socket drains, as many frames per system call as are waiting (one `writev`). So frames
//! leave in the order they were sent, whichever task sends them.
//!
//! Rules that keep memory bounded:
//! - [`Outbox::send`] and [`Outbox::try_send`] take one of a fixed number of places in the queue
//!   for as long as the frame waits there (a frame written at once gives its place straight
//!   back); `send` waits for a place at most the outbox's send limit, and then counts the peer as
//!   not reading and closes the outbox; `try_send` (for what may be dropped, like events) fails
//!   at once instead;
//! - [`Outbox::push`] takes no place: for a sender whose own protocol already bounds what it has
//!   in flight (a client's requests and the credit-limited chunks of its writes).
//!
//! Closing (the token the outbox was made with cancelled, a failed write, a send that timed
//! out) drops what is queued: a
//! frame cut off is of no use to the peer. [`Outbox::finish`] instead lets the flusher write
//! out what is queued first (a last `Refused` frame), then stop.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::protocol::{self, Outgoing};

/// Most frames one `writev` takes from the queue (two slices each at most).
const BATCH: usize = 32;

/// The outbox is closed (or closing): nothing more goes out.
#[derive(Debug)]
pub struct Closed;

/// The sending side of a socket. Cheap to clone; see the module docs for its rules.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

struct Shared {
    socket: OwnedWriteHalf,
    queue: Mutex<Queue>,
    /// Places for frames in the queue, for [`Outbox::send`] and [`Outbox::try_send`].
    places: Semaphore,
    /// The longest [`Outbox::send`] waits for a place.
    send_timeout: Duration,
    /// Tells the flusher there is something to write, or that it is to finish.
    work: Notify,
    closed: CancellationToken,
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Queued>,
    /// Set by [`Outbox::finish`]: the flusher stops once the queue is empty.
    finishing: bool,
}

/// A frame (or what is left of it) waiting to be written.
struct Queued {
    /// A data frame's header, its first `head_len` bytes; none for a message, which is one
    /// buffer.
    head: [u8; 13],
    head_len: usize,
    body: Bytes,
    /// Bytes of `head` and then `body` already written.
    written: usize,
    /// Whether it holds a place in the queue, given back when it is written.
    placed: bool,
}

impl Queued {
    fn new(frame: Outgoing, placed: bool) -> Queued {
        let (head, head_len, body) = match frame {
            Outgoing::Message(bytes) => ([0; 13], 0, bytes),
            Outgoing::Data { id, data } => (protocol::data_header(id, data.len()), 13, data),
        };
        Queued {
            head,
            head_len,
            body,
            written: 0,
            placed,
        }
    }

    fn len(&self) -> usize {
        self.head_len + self.body.len()
    }

    /// What is left to write, as at most two slices at the start of `into`; returns how many.
    fn slices<'a>(&'a self, into: &mut [IoSlice<'a>]) -> usize {
        if self.written < self.head_len {
            into[0] = IoSlice::new(&self.head[self.written..self.head_len]);
            into[1] = IoSlice::new(&self.body);
            2
        } else {
            into[0] = IoSlice::new(&self.body[self.written - self.head_len..]);
            1
        }
    }
}

impl Outbox {
    /// An outbox over `socket` with `places` places in its queue and a send limit of
    /// `send_timeout`, closed when `closed` is cancelled, and its flusher, which the caller
    /// spawns: it runs until the outbox closes or finishes.
    pub fn new(
        socket: OwnedWriteHalf,
        places: usize,
        send_timeout: Duration,
        closed: CancellationToken,
    ) -> (Outbox, impl Future<Output = ()> + Send + 'static) {
        let shared = Arc::new(Shared {
            socket,
            queue: Mutex::new(Queue::default()),
            places: Semaphore::new(places),
            send_timeout,
            work: Notify::new(),
            closed,
        });
        let flusher = flush(shared.clone());
        (Outbox { shared }, flusher)
    }

    /// Sends `frame`, waiting at most the send limit for a place in the queue. Errors: `Closed`
    /// when the outbox is closed, or when the peer stopped reading (which closes it).
    pub async fn send(&self, frame: Outgoing) -> Result<(), Closed> {
        self.send_all(vec![frame]).await
    }

    /// Sends `frames` in order, in one system call when the socket takes them: a reply and the
    /// data that follows it, say. Each takes a place, as in [`Outbox::send`]; at most as many as
    /// the queue has places.
    pub async fn send_all(&self, frames: Vec<Outgoing>) -> Result<(), Closed> {
        let shared = &self.shared;
        let n = u32::try_from(frames.len()).unwrap_or(u32::MAX);
        let permit = match shared.places.try_acquire_many(n) {
            Ok(permit) => permit,
            Err(_) => {
                let waited = tokio::select! {
                    waited = tokio::time::timeout(shared.send_timeout, shared.places.acquire_many(n)) => waited,
                    () = shared.closed.cancelled() => return Err(Closed),
                };
                match waited {
                    Ok(Ok(permit)) => permit,
                    Ok(Err(_)) => return Err(Closed),
                    Err(_) => {
                        tracing::info!("client stopped reading; closing its connection");
                        shared.closed.cancel();
                        return Err(Closed);
                    }
                }
            }
        };
        // Each place is given back when its frame leaves the queue (at once if written at once).
        permit.forget();
        self.enqueue(frames, true)
    }

    /// Sends `msg` as [`Outbox::send`] does.
    pub async fn message<M: serde::Serialize>(&self, msg: &M) -> Result<(), Closed> {
        self.send(protocol::message(msg)).await
    }

    /// Sends `frame` only if a place is free now; for what may be dropped (events).
    pub fn try_send(&self, frame: Outgoing) -> bool {
        match self.shared.places.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.enqueue(vec![frame], true).is_ok()
            }
            Err(_) => false,
        }
    }

    /// Sends `frame` without taking a place: for senders whose protocol bounds what they have in
    /// flight. Errors: `Closed`.
    pub fn push(&self, frame: Outgoing) -> Result<(), Closed> {
        self.enqueue(vec![frame], false)
    }

    /// Lets the flusher write out what is queued and then stop; the flusher's future ends then
    /// (or when the outbox closes first).
    pub fn finish(&self) {
        self.shared.lock().finishing = true;
        self.shared.work.notify_one();
    }

    fn enqueue(&self, frames: Vec<Outgoing>, placed: bool) -> Result<(), Closed> {
        let shared = &self.shared;
        if shared.closed.is_cancelled() {
            if placed {
                shared.places.add_permits(frames.len());
            }
            return Err(Closed);
        }
        let mut queue = shared.lock();
        let was_empty = queue.frames.is_empty();
        queue
            .frames
            .extend(frames.into_iter().map(|frame| Queued::new(frame, placed)));
        if !was_empty {
            // The flusher is already at work on the frames before these.
            return Ok(());
        }
        match shared.write_queued(&mut queue) {
            Ok(true) => Ok(()),
            Ok(false) => {
                drop(queue);
                shared.work.notify_one();
                Ok(())
            }
            Err(e) => {
                drop(queue);
                tracing::debug!(error = %e, "writing to a peer failed");
                shared.closed.cancel();
                Err(Closed)
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes as much of the queue as the socket takes now, without waiting. Returns whether the
    /// queue is empty. Only ever called with the queue locked, so frames never interleave.
    fn write_queued(&self, queue: &mut Queue) -> io::Result<bool> {
        while !queue.frames.is_empty() {
            let written = {
                let mut slices = [IoSlice::new(&[]); 2 * BATCH];
                let mut count = 0;
                for frame in queue.frames.iter().take(BATCH) {
                    count += frame.slices(&mut slices[count..]);
                }
                self.socket.try_write_vectored(&slices[..count])
            };
            let mut n = match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            while n > 0 {
                let front = queue
                    .frames
                    .front_mut()
                    .expect("written bytes are queued bytes");
                let left = front.len() - front.written;
                if n < left {
                    front.written += n;
                    break;
                }
                n -= left;
                if front.placed {
                    self.places.add_permits(1);
                }
                queue.frames.pop_front();
            }
        }
        Ok(true)
    }
}

/// Writes the queue out whenever the socket takes more, until the outbox closes, or finishes
/// with nothing left to write. Closing drops the queue.
async fn flush(shared: Arc<Shared>) {
    'work: loop {
        tokio::select! {
            () = shared.work.notified() => {}
            () = shared.closed.cancelled() => break 'work,
        }
        loop {
            let (drained, finishing) = {
                let mut queue = shared.lock();
                match shared.write_queued(&mut queue) {
                    Ok(drained) => (drained, queue.finishing),
                    Err(e) => {
                        tracing::debug!(error = %e, "writing to a peer failed");
                        shared.closed.cancel();
                        break 'work;
                    }
                }
            };
            if drained {
                if finishing {
                    return;
                }
                continue 'work;
            }
            tokio::select! {
                ready = shared.socket.writable() => if ready.is_err() {
                    shared.closed.cancel();
                    break 'work;
                },
                () = shared.closed.cancelled() => break 'work,
            }
        }
    }
    // Closed: what is queued goes nowhere; its places are of no further use either.
    shared.lock().frames.clear();
    shared.places.close();
}
