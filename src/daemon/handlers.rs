//! One handler per [`Request`] variant: what the daemon does for each, over its in-process
//! engine. A handler sends its replies through the connection's [`Outbox`] and reads what the
//! client sends for its request (stream data, credit, the end of a write) from its inbox.
//!
//! A handler is dropped when its request is cancelled or its connection ends: whatever it holds
//! goes with it (a foreground job is cancelled, a write discarded, a read stopped).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use mavfs_actors::{Error, ErrorKind, JobEvent, VPath, WriteMode};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, mpsc};

use super::metrics::events_dropped;
use super::outbox::{Closed, Outbox};
use super::protocol::{self, CREDIT_BATCH, MAX_DATA, Outgoing, Reply, Request, ServerMsg, WINDOW};
use crate::engine::{Engine, Foreground};

/// What a client sends for a write in progress.
#[derive(Debug)]
pub enum Inbound {
    /// File bytes of a write.
    Data(Bytes),
    /// The end of a write.
    End {
        /// Make it visible, or discard it.
        commit: bool,
    },
}

/// The data frames a read may still send: [`WINDOW`] to start with, and what the client grants
/// as it consumes them. Granting wakes the read only when it is waiting for credit, so the
/// credit a client sends while a read streams costs no wake-up of the connection's task.
#[derive(Debug)]
pub struct Credit {
    frames: AtomicU32,
    more: Notify,
}

impl Default for Credit {
    fn default() -> Self {
        Credit {
            frames: AtomicU32::new(WINDOW),
            more: Notify::new(),
        }
    }
}

impl Credit {
    /// Grants `n` more frames.
    pub fn grant(&self, n: u32) {
        let _ = self
            .frames
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| {
                Some(f.saturating_add(n))
            });
        // Wakes a waiting read; otherwise leaves a permit that its next wait finds at once.
        self.more.notify_one();
    }

    /// Takes one frame's credit, waiting for the client to grant it.
    async fn take(&self) {
        loop {
            let took = self
                .frames
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |f| f.checked_sub(1));
            if took.is_ok() {
                return;
            }
            self.more.notified().await;
        }
    }
}

/// Whether `request` takes data frames from the client (a write). Such a request runs as a task
/// of its own, so that handing it a frame wakes that task, not the connection's.
pub fn takes_data(request: &Request) -> bool {
    matches!(request, Request::Write { .. })
}

/// What a handler has to work with.
pub struct Ctx {
    /// The request's id, named in every reply.
    pub id: u64,
    /// The daemon's engine.
    pub engine: Engine,
    /// The connection's sending side.
    pub out: Outbox,
    /// What the client sends for a write.
    pub inbound: mpsc::Receiver<Inbound>,
    /// What the client grants a read.
    pub credit: Arc<Credit>,
}

impl Ctx {
    async fn reply(&self, result: Result<Reply, Error>) -> Result<(), Closed> {
        self.out.send(reply_frame(self.id, result)).await
    }
}

fn reply_frame(id: u64, result: Result<Reply, Error>) -> Outgoing {
    protocol::message(&ServerMsg::Reply { id, result })
}

/// Runs `request` to its end.
pub async fn handle(request: Request, ctx: Ctx) {
    // `Closed` means the connection is going away: nothing more to say to anyone.
    let _ = dispatch(request, ctx).await;
}

async fn dispatch(request: Request, mut ctx: Ctx) -> Result<(), Closed> {
    let engine = ctx.engine.clone();
    match request {
        Request::Stat { path } => ctx.reply(engine.stat(&path).await.map(Reply::Meta)).await,
        Request::List { path } => {
            ctx.reply(engine.list(&path).await.map(Reply::Entries))
                .await
        }
        Request::ListPage {
            path,
            cursor,
            limit,
        } => {
            let limit = limit.clamp(1, protocol::MAX_PAGE_ENTRIES);
            let page = engine.list_page(&path, cursor, limit).await;
            ctx.reply(page.map(Reply::Page)).await
        }
        Request::Mkdir { path, parents } => {
            let done = engine.mkdir(&path, parents).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::Touch { path } => {
            let done = engine.touch(&path).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::Remove {
            path,
            recursive,
            force,
        } => {
            let done = engine.remove(&path, recursive, force).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::Read { path } => read(&mut ctx, &path).await,
        Request::Write { path, mode } => write(&mut ctx, &path, mode).await,
        Request::Start {
            request,
            label,
            options,
        } => {
            let started = engine.start(request, label, options).await;
            ctx.reply(started.map(Reply::Job)).await
        }
        Request::Run {
            request,
            label,
            options,
        } => match engine.run(request, label, options).await {
            Ok(job) => foreground(&ctx, job).await,
            Err(e) => ctx.reply(Err(e)).await,
        },
        Request::Foreground { job } => match engine.foreground(job).await {
            Ok(job) => foreground(&ctx, job).await,
            Err(e) => ctx.reply(Err(e)).await,
        },
        Request::Wait { job } => {
            let outcome = engine.wait(job).await;
            ctx.reply(outcome.map(Reply::Outcome)).await
        }
        Request::Cancel { job } => {
            let done = engine.cancel(job).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::Suspend { job } => {
            let done = engine.suspend(job).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::Resume { job } => {
            let done = engine.resume(job).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::Throttle { job, bwlimit } => {
            let done = engine.throttle(job, bwlimit).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::SetJobs { job, jobs } => {
            let done = engine.set_jobs(job, jobs).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::ThrottleAll { bwlimit } => {
            let done = engine.throttle_all(bwlimit).await;
            ctx.reply(done.map(|()| Reply::Done)).await
        }
        Request::GlobalLimit => {
            ctx.reply(engine.global_limit().await.map(Reply::Limit))
                .await
        }
        Request::Jobs => ctx.reply(engine.jobs().await.map(Reply::Jobs)).await,
        Request::Stats => ctx.reply(engine.stats().await.map(Reply::Stats)).await,
        Request::Subscribe => subscribe(&ctx).await,
    }
}

/// Streams a file: `Reading(size)`, data frames within the client's credit, then `ReadEnd`.
/// Frames that are ready together go out together: a small file's reply, data and end leave in
/// one system call and reach the client in one wake-up.
async fn read(ctx: &mut Ctx, path: &VPath) -> Result<(), Closed> {
    let mut reader = match ctx.engine.read(path).await {
        Ok(reader) => reader,
        Err(e) => return ctx.reply(Err(e)).await,
    };
    // At most the reply, a window of data and the end: the credit bounds it.
    let mut batch = Vec::with_capacity(WINDOW as usize + 2);
    batch.push(reply_frame(ctx.id, Ok(Reply::Reading(reader.size))));
    let error = loop {
        let next = match reader.chunks.next().now_or_never() {
            Some(next) => next,
            None => {
                ctx.out.send_all(std::mem::take(&mut batch)).await?;
                reader.chunks.next().await
            }
        };
        let chunk = match next {
            None => break None,
            Some(Err(e)) => break Some(e),
            Some(Ok(chunk)) => chunk,
        };
        let mut at = 0;
        while at < chunk.len() {
            let piece = chunk.slice(at..chunk.len().min(at + MAX_DATA));
            at += piece.len();
            let credit = &ctx.credit;
            if credit.take().now_or_never().is_none() {
                ctx.out.send_all(std::mem::take(&mut batch)).await?;
                credit.take().await;
            }
            batch.push(protocol::data(ctx.id, piece));
        }
    };
    batch.push(protocol::message(&ServerMsg::ReadEnd { id: ctx.id, error }));
    ctx.out.send_all(batch).await
}

/// Takes a file: `Writing`, then the client's data (a credit back for each chunk stored), then
/// the end: committed, or dropped and with it everything staged. An error stops the write at
/// once; the client learns it from the reply and what it still sends is dropped.
async fn write(ctx: &mut Ctx, path: &VPath, mode: WriteMode) -> Result<(), Closed> {
    let mut writer = match ctx.engine.write(path, mode).await {
        Ok(writer) => writer,
        Err(e) => return ctx.reply(Err(e)).await,
    };
    ctx.reply(Ok(Reply::Writing)).await?;
    // Credit goes back half a window at a time: a small write needs none, and the client never
    // waits on a window that is more than half full of stored chunks.
    let mut stored = 0;
    loop {
        match ctx.inbound.recv().await {
            Some(Inbound::Data(data)) => {
                if let Err(e) = writer.write(data).await {
                    return ctx.reply(Err(e)).await;
                }
                stored += 1;
                if stored == CREDIT_BATCH {
                    stored = 0;
                    let chunks = CREDIT_BATCH;
                    ctx.out
                        .message(&ServerMsg::Credit { id: ctx.id, chunks })
                        .await?;
                }
            }
            Some(Inbound::End { commit: true }) => {
                let done = writer.commit().await;
                return ctx.reply(done.map(|()| Reply::Done)).await;
            }
            Some(Inbound::End { commit: false }) => {
                drop(writer);
                return ctx.reply(Ok(Reply::Done)).await;
            }
            // The client is gone: dropping the writer discards what it staged.
            None => return Err(Closed),
        }
    }
}

/// A job in the foreground: its id at once, its outcome when it ends. Dropping this (the
/// request cancelled, the client gone) drops the foreground handle, which cancels the job.
async fn foreground(ctx: &Ctx, job: Foreground) -> Result<(), Closed> {
    ctx.reply(Ok(Reply::Job(job.id()))).await?;
    let outcome = job.wait().await;
    ctx.reply(Ok(Reply::Outcome(outcome))).await
}

/// Forwards every job event until the connection ends. An event that does not fit in the
/// client's queue is dropped and counted; the client is told how many before the next one.
async fn subscribe(ctx: &Ctx) -> Result<(), Closed> {
    let mut events = ctx.engine.subscribe();
    ctx.reply(Ok(Reply::Done)).await?;
    let mut skipped = 0u64;
    loop {
        let event: JobEvent = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                skipped += n;
                events_dropped(n);
                continue;
            }
            Err(RecvError::Closed) => {
                let e = Error::new(ErrorKind::Unavailable, "events").with_detail("engine stopped");
                return ctx.reply(Err(e)).await;
            }
        };
        if skipped > 0 {
            let lagged = protocol::message(&ServerMsg::Lagged { skipped });
            if !ctx.out.try_send(lagged) {
                skipped += 1;
                events_dropped(1);
                continue;
            }
            skipped = 0;
        }
        if !ctx
            .out
            .try_send(protocol::message(&ServerMsg::Event { event }))
        {
            skipped += 1;
            events_dropped(1);
        }
    }
}
