//! [`Remote`]: a client of `mavfs serve`, the engine a front end holds when attached.
//!
//! One connection carries every request of a front end at once: each gets an id and is written
//! to the socket by the task that makes it (through an [`Outbox`]), and a reader task routes what
//! the daemon sends back (replies, stream data, credit) to the request that waits for it, and job
//! events to every local subscriber. Requests that stream or wait
//! (reads, writes, foreground jobs) are handles that cancel their request when dropped, so a
//! Ctrl-C in an attached shell cancels a foreground job exactly as it does embedded.
//!
//! When the connection is lost, every request waiting on it fails with `Unavailable` ("the
//! connection to the daemon was lost"); nothing is retried behind the user's back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use mavfs_actors::{
    DirEntry, Error, ErrorKind, FileReader, JobEvent, JobId, JobInfo, JobOptions, JobOutcome,
    ListCursor, ListPage, Meta, MountInfo, MountStats, Result, TransferRequest, VPath, WriteMode,
};
use tokio::sync::{broadcast, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::outbox::Outbox;
use super::protocol::{
    self, CREDIT_BATCH, ClientMsg, Frame, MAX_DATA, Reply, Request, ServerMsg, VERSION, WINDOW,
};
use super::socket;

/// How long the daemon may take to answer `Hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Events a local subscriber may fall behind by before it skips (as the engine's own bus).
const EVENTS_CAPACITY: usize = 1024;

/// What reaches a request from the daemon.
#[derive(Debug)]
enum Incoming {
    Reply(Result<Reply>),
    Data(Bytes),
    Credit(u32),
    ReadEnd(Option<Error>),
}

/// What the daemon pushes to subscribers: an event, or word that some were dropped.
#[derive(Debug, Clone)]
pub enum Pushed {
    /// A job event.
    Event(JobEvent),
    /// The daemon dropped this many events for this client: re-read the job table.
    Lagged(u64),
}

/// A connection to a daemon. Cheap to clone; the connection closes when the last clone goes.
#[derive(Clone)]
pub struct Remote {
    inner: Arc<Inner>,
}

struct Inner {
    out: Outbox,
    pending: Mutex<HashMap<u64, mpsc::UnboundedSender<Incoming>>>,
    next_id: AtomicU64,
    events: broadcast::Sender<Pushed>,
    subscribed: AtomicBool,
    mounts: Vec<MountInfo>,
    home: VPath,
    pid: u32,
    socket: PathBuf,
}

/// Why attaching failed, in the user's terms.
#[derive(Debug)]
pub struct AttachError(pub String);

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Remote {
    /// Connects to the daemon at `path` and shakes hands. Errors: no daemon there, a refusal
    /// (another user's daemon, too many clients, another protocol version), a timeout.
    pub async fn connect(path: &Path) -> std::result::Result<Remote, AttachError> {
        let stream = socket::connect(path)
            .await
            .map_err(|e| AttachError(e.to_string()))?;
        let (read, write) = stream.into_split();
        // Room for a couple of whole data frames, so that a chunk and the frames around it
        // arrive in one read, into memory already in use rather than a fresh allocation each.
        let mut frames =
            FramedRead::with_capacity(read, protocol::codec(), 2 * protocol::MAX_FRAME);
        let mut write = write;
        let shown = path.display();
        let hello = protocol::message(&ClientMsg::Hello { version: VERSION });
        // A daemon that refuses us says why and hangs up, maybe before our Hello arrives: read
        // its answer even when sending failed.
        let sent = protocol::write(&mut write, &hello).await;
        let welcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, frames.next())
            .await
            .map_err(|_| AttachError(format!("{shown}: the daemon did not answer")))?;
        let frame = match welcome {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(AttachError(format!("{shown}: {e}"))),
            None => {
                let why = sent
                    .err()
                    .map_or("the daemon hung up".to_string(), |e| e.to_string());
                return Err(AttachError(format!("{shown}: {why}")));
            }
        };
        let (mounts, home, pid) = match protocol::decode::<ServerMsg>(frame) {
            Ok(Frame::Message(ServerMsg::Welcome {
                mounts, home, pid, ..
            })) => (mounts, home, pid),
            Ok(Frame::Message(ServerMsg::Refused { reason })) => {
                return Err(AttachError(format!("{shown}: refused: {reason}")));
            }
            Ok(_) => return Err(AttachError(format!("{shown}: unexpected answer to Hello"))),
            Err(e) => return Err(AttachError(format!("{shown}: {e}"))),
        };
        // Requests take no places in the queue: what a client has in flight is bounded by the
        // protocol (a reply awaited per request, a window of credit per write).
        let (out, flusher) = Outbox::new(write, 0, HANDSHAKE_TIMEOUT, CancellationToken::new());
        let inner = Arc::new(Inner {
            out,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            events: broadcast::channel(EVENTS_CAPACITY).0,
            subscribed: AtomicBool::new(false),
            mounts,
            home,
            pid,
            socket: path.to_path_buf(),
        });
        tokio::spawn(flusher);
        // The reader holds the state weakly, so that dropping the last `Remote` closes the
        // connection (the outbox finishes with it, the daemon sees the hang-up).
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            while let Some(Ok(frame)) = frames.next().await {
                let Some(inner) = weak.upgrade() else { break };
                if !inner.route(frame) {
                    break;
                }
            }
            if let Some(inner) = weak.upgrade() {
                // Dropping the senders fails every request still waiting.
                inner
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
            }
        });
        Ok(Remote { inner })
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The socket this client is attached through.
    pub fn socket(&self) -> &Path {
        &self.inner.socket
    }

    /// The daemon's mounts, as it announced them.
    pub fn mounts(&self) -> Vec<MountInfo> {
        self.inner.mounts.clone()
    }

    /// Where a shell starts.
    pub fn home(&self) -> VPath {
        self.inner.home.clone()
    }

    /// Resolves shell input against `cwd`, `..` stopping at the daemon's mount roots.
    pub fn resolve(&self, cwd: &VPath, input: &str) -> Result<VPath> {
        let is_root = |p: &VPath| self.inner.mounts.iter().any(|m| m.path == *p);
        Ok(VPath::resolve(cwd, input, is_root)?)
    }

    /// Metadata of `path`.
    pub async fn stat(&self, path: &VPath) -> Result<Meta> {
        match self
            .call("stat", Request::Stat { path: path.clone() })
            .await?
        {
            Reply::Meta(meta) => Ok(meta),
            other => Err(unexpected("stat", &other)),
        }
    }

    /// Entries of a directory.
    pub async fn list(&self, path: &VPath) -> Result<Vec<DirEntry>> {
        match self
            .call("ls", Request::List { path: path.clone() })
            .await?
        {
            Reply::Entries(entries) => Ok(entries),
            other => Err(unexpected("ls", &other)),
        }
    }

    /// One page of a listing (at most [`protocol::MAX_PAGE_ENTRIES`] entries).
    pub async fn list_page(
        &self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        let request = Request::ListPage {
            path: path.clone(),
            cursor,
            limit: limit.min(protocol::MAX_PAGE_ENTRIES),
        };
        match self.call("ls", request).await? {
            Reply::Page(page) => Ok(page),
            other => Err(unexpected("ls", &other)),
        }
    }

    /// Creates a directory.
    pub async fn mkdir(&self, path: &VPath, parents: bool) -> Result<()> {
        let request = Request::Mkdir {
            path: path.clone(),
            parents,
        };
        self.done("mkdir", request).await
    }

    /// Creates a file or updates its time.
    pub async fn touch(&self, path: &VPath) -> Result<()> {
        self.done("touch", Request::Touch { path: path.clone() })
            .await
    }

    /// Removes as `rm` does.
    pub async fn remove(&self, path: &VPath, recursive: bool, force: bool) -> Result<()> {
        let request = Request::Remove {
            path: path.clone(),
            recursive,
            force,
        };
        self.done("rm", request).await
    }

    /// Starts a background job; it outlives this client.
    pub async fn start(
        &self,
        request: TransferRequest,
        label: String,
        options: JobOptions,
    ) -> Result<JobId> {
        let request = Request::Start {
            request,
            label,
            options,
        };
        match self.call("start", request).await? {
            Reply::Job(id) => Ok(id),
            other => Err(unexpected("start", &other)),
        }
    }

    /// Waits for a job to end.
    pub async fn wait(&self, job: JobId) -> Result<JobOutcome> {
        match self.call("wait", Request::Wait { job }).await? {
            Reply::Outcome(outcome) => Ok(outcome),
            other => Err(unexpected("wait", &other)),
        }
    }

    /// Cancels a job.
    pub async fn cancel(&self, job: JobId) -> Result<()> {
        self.done("kill", Request::Cancel { job }).await
    }

    /// Every job of the daemon.
    pub async fn jobs(&self) -> Result<Vec<JobInfo>> {
        match self.call("jobs", Request::Jobs).await? {
            Reply::Jobs(jobs) => Ok(jobs),
            other => Err(unexpected("jobs", &other)),
        }
    }

    /// Usage of every mount.
    pub async fn stats(&self) -> Result<Vec<MountStats>> {
        match self.call("stats", Request::Stats).await? {
            Reply::Stats(stats) => Ok(stats),
            other => Err(unexpected("stats", &other)),
        }
    }

    /// Every job event from now on. The first call subscribes this connection.
    pub fn subscribe(&self) -> broadcast::Receiver<Pushed> {
        let receiver = self.inner.events.subscribe();
        if !self.inner.subscribed.swap(true, Ordering::SeqCst) {
            // Replies to it need no one waiting: events arrive as pushes.
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            self.inner.send(&ClientMsg::Request {
                id,
                request: Request::Subscribe,
            });
        }
        receiver
    }

    /// Opens a file for streaming, at most a window of chunks ahead of the reader.
    pub async fn read(&self, path: &VPath) -> Result<FileReader> {
        let (mut guard, mut rx) = self.open_guarded(Request::Read { path: path.clone() });
        let size = match guard.first_reply(&mut rx, "read").await? {
            Reply::Reading(size) => size,
            other => return Err(unexpected("read", &other)),
        };
        let state = ReadState {
            rx,
            guard,
            consumed: 0,
        };
        let chunks: BoxStream<'static, Result<Bytes>> =
            futures::stream::unfold(Some(state), |state| async move {
                let mut state = state?;
                match state.rx.recv().await {
                    Some(Incoming::Data(data)) => {
                        // Credit half a window at a time: a small file needs none.
                        state.consumed += 1;
                        if state.consumed == CREDIT_BATCH {
                            state.consumed = 0;
                            state.guard.inner.send(&ClientMsg::Credit {
                                id: state.guard.id,
                                chunks: CREDIT_BATCH,
                            });
                        }
                        Some((Ok(data), Some(state)))
                    }
                    Some(Incoming::ReadEnd(None)) => {
                        state.guard.finish();
                        None
                    }
                    Some(Incoming::ReadEnd(Some(e))) => {
                        state.guard.finish();
                        Some((Err(e), None))
                    }
                    Some(other) => Some((Err(unexpected_incoming("read", &other)), None)),
                    None => Some((Err(lost("read")), None)),
                }
            })
            .boxed();
        // A move never reads through a daemon's socket: nothing checks this version.
        Ok(FileReader {
            size,
            version: mavfs_actors::store::Version::unknown(),
            chunks,
        })
    }

    /// Starts an atomic write; nothing is visible until [`RemoteWrite::commit`].
    pub async fn write(&self, path: &VPath, mode: WriteMode) -> Result<RemoteWrite> {
        let (mut guard, mut rx) = self.open_guarded(Request::Write {
            path: path.clone(),
            mode,
        });
        match guard.first_reply(&mut rx, "write").await? {
            Reply::Writing => Ok(RemoteWrite {
                rx,
                guard,
                credit: WINDOW,
            }),
            other => Err(unexpected("write", &other)),
        }
    }

    /// Runs a job in the foreground: cancelled if the handle is dropped before it ends.
    pub async fn run(
        &self,
        request: TransferRequest,
        label: String,
        options: JobOptions,
    ) -> Result<RemoteForeground> {
        let request = Request::Run {
            request,
            label,
            options,
        };
        self.foreground_request("run", request).await
    }

    /// Suspends a job.
    pub async fn suspend(&self, job: JobId) -> Result<()> {
        self.done("stop", Request::Suspend { job }).await
    }

    /// Continues a suspended job.
    pub async fn resume(&self, job: JobId) -> Result<()> {
        self.done("bg", Request::Resume { job }).await
    }

    /// Sets a job's own limit.
    pub async fn throttle(&self, job: JobId, bwlimit: Option<u64>) -> Result<()> {
        self.done("throttle", Request::Throttle { job, bwlimit })
            .await
    }

    /// Sets how many files a job moves at once.
    pub async fn set_jobs(&self, job: JobId, jobs: usize) -> Result<()> {
        self.done("throttle", Request::SetJobs { job, jobs }).await
    }

    /// Sets the limit all jobs share.
    pub async fn throttle_all(&self, bwlimit: Option<u64>) -> Result<()> {
        self.done("throttle", Request::ThrottleAll { bwlimit })
            .await
    }

    /// The limit all jobs share.
    pub async fn global_limit(&self) -> Result<Option<u64>> {
        match self.call("throttle", Request::GlobalLimit).await? {
            Reply::Limit(limit) => Ok(limit),
            other => Err(unexpected("throttle", &other)),
        }
    }

    /// Brings job `id` to the foreground.
    pub async fn foreground(&self, job: JobId) -> Result<RemoteForeground> {
        self.foreground_request("fg", Request::Foreground { job })
            .await
    }

    async fn foreground_request(
        &self,
        op: &'static str,
        request: Request,
    ) -> Result<RemoteForeground> {
        let (mut guard, mut rx) = self.open_guarded(request);
        match guard.first_reply(&mut rx, op).await? {
            Reply::Job(job) => Ok(RemoteForeground { job, rx, guard }),
            other => Err(unexpected(op, &other)),
        }
    }

    /// Sends `request` and returns its id and where its answers arrive.
    fn open(&self, request: Request) -> (u64, mpsc::UnboundedReceiver<Incoming>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        self.inner.send(&ClientMsg::Request { id, request });
        (id, rx)
    }

    /// Sends a request that streams or waits (a read, a write, a foreground job): its answers,
    /// and a guard that cancels it if dropped before it ends.
    fn open_guarded(&self, request: Request) -> (RequestGuard, mpsc::UnboundedReceiver<Incoming>) {
        let (id, rx) = self.open(request);
        let guard = RequestGuard {
            inner: self.inner.clone(),
            id,
            armed: true,
        };
        (guard, rx)
    }

    /// Sends `request` and waits for its one reply.
    async fn call(&self, op: &'static str, request: Request) -> Result<Reply> {
        let (id, mut rx) = self.open(request);
        let reply = first_reply(&mut rx, op).await;
        self.inner.forget(id);
        reply
    }

    async fn done(&self, op: &'static str, request: Request) -> Result<()> {
        match self.call(op, request).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(op, &other)),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // What is queued still goes out (a last `Cancel`), then the socket closes.
        self.out.finish();
    }
}

impl Inner {
    fn send(&self, msg: &ClientMsg) {
        // A closed outbox means a lost connection, which the waiting request will see.
        let _ = self.out.push(protocol::message(msg));
    }

    fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Routes one frame from the daemon. Returns false when the connection is to end.
    fn route(&self, frame: bytes::BytesMut) -> bool {
        let (id, incoming) = match protocol::decode::<ServerMsg>(frame) {
            Ok(Frame::Data { id, data }) => (id, Incoming::Data(data)),
            Ok(Frame::Message(msg)) => match msg {
                ServerMsg::Reply { id, result } => (id, Incoming::Reply(result)),
                ServerMsg::Credit { id, chunks } => (id, Incoming::Credit(chunks)),
                ServerMsg::ReadEnd { id, error } => (id, Incoming::ReadEnd(error)),
                ServerMsg::Event { event } => {
                    let _ = self.events.send(Pushed::Event(event));
                    return true;
                }
                ServerMsg::Lagged { skipped } => {
                    let _ = self.events.send(Pushed::Lagged(skipped));
                    return true;
                }
                ServerMsg::Refused { reason } => {
                    tracing::warn!(%reason, "the daemon closed the connection");
                    return false;
                }
                ServerMsg::Welcome { .. } => return true,
            },
            Err(reason) => {
                tracing::warn!(%reason, "bad frame from the daemon");
                return false;
            }
        };
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = pending.get(&id) {
            let _ = tx.send(incoming);
        }
        true
    }
}

/// Cancels its request when dropped before the request ends.
struct RequestGuard {
    inner: Arc<Inner>,
    id: u64,
    armed: bool,
}

impl RequestGuard {
    /// The request's first reply. An error ends the request at the daemon, so there is
    /// nothing left to cancel.
    async fn first_reply(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Incoming>,
        op: &'static str,
    ) -> Result<Reply> {
        let reply = first_reply(rx, op).await;
        if reply.is_err() {
            self.finish();
        }
        reply
    }

    /// The request has ended: nothing to cancel.
    fn finish(&mut self) {
        self.armed = false;
        self.inner.forget(self.id);
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.armed {
            self.inner.send(&ClientMsg::Cancel { id: self.id });
            self.inner.forget(self.id);
        }
    }
}

struct ReadState {
    rx: mpsc::UnboundedReceiver<Incoming>,
    guard: RequestGuard,
    /// Data frames taken since the last credit granted.
    consumed: u32,
}

/// A write into the daemon. Dropped without [`RemoteWrite::commit`], it is discarded there.
pub struct RemoteWrite {
    rx: mpsc::UnboundedReceiver<Incoming>,
    guard: RequestGuard,
    credit: u32,
}

impl RemoteWrite {
    /// Sends `chunk`, in frames of at most 1 MiB, each within the credit the daemon granted.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let mut at = 0;
        while at < chunk.len() {
            let piece = chunk.slice(at..chunk.len().min(at + MAX_DATA));
            at += piece.len();
            // An error reply may already be here: stop before sending more.
            while let Ok(incoming) = self.rx.try_recv() {
                self.take(incoming)?;
            }
            while self.credit == 0 {
                match self.rx.recv().await {
                    Some(incoming) => self.take(incoming)?,
                    None => return Err(lost("write")),
                }
            }
            let _ = self
                .guard
                .inner
                .out
                .push(protocol::data(self.guard.id, piece));
            self.credit -= 1;
        }
        Ok(())
    }

    /// Makes the written bytes visible in one atomic step, and waits for the daemon to say so.
    pub async fn commit(mut self) -> Result<()> {
        let id = self.guard.id;
        self.guard
            .inner
            .send(&ClientMsg::EndWrite { id, commit: true });
        loop {
            match self.rx.recv().await {
                Some(Incoming::Credit(_)) => {}
                Some(Incoming::Reply(result)) => {
                    self.guard.finish();
                    return match result? {
                        Reply::Done => Ok(()),
                        other => Err(unexpected("write", &other)),
                    };
                }
                Some(other) => return Err(unexpected_incoming("write", &other)),
                None => return Err(lost("write")),
            }
        }
    }

    fn take(&mut self, incoming: Incoming) -> Result<()> {
        match incoming {
            Incoming::Credit(n) => {
                self.credit += n;
                Ok(())
            }
            Incoming::Reply(Err(e)) => {
                self.guard.finish();
                Err(e)
            }
            other => Err(unexpected_incoming("write", &other)),
        }
    }
}

/// A job of the daemon in this client's foreground; dropping it cancels the job.
pub struct RemoteForeground {
    job: JobId,
    rx: mpsc::UnboundedReceiver<Incoming>,
    guard: RequestGuard,
}

impl RemoteForeground {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.job
    }

    /// Waits for the job to end and returns how it ended.
    pub async fn wait(mut self) -> JobOutcome {
        let outcome = match first_reply(&mut self.rx, "wait").await {
            Ok(Reply::Outcome(outcome)) => outcome,
            Ok(other) => Err(unexpected("wait", &other)),
            Err(e) => Err(e),
        };
        self.guard.finish();
        outcome
    }
}

/// The next reply to a request. Errors: the request's own error, or a lost connection.
async fn first_reply(
    rx: &mut mpsc::UnboundedReceiver<Incoming>,
    op: &'static str,
) -> Result<Reply> {
    match rx.recv().await {
        Some(Incoming::Reply(result)) => result,
        Some(other) => Err(unexpected_incoming(op, &other)),
        None => Err(lost(op)),
    }
}

fn lost(op: &'static str) -> Error {
    Error::new(ErrorKind::Unavailable, op).with_detail("the connection to the daemon was lost")
}

fn unexpected(op: &'static str, reply: &Reply) -> Error {
    Error::new(ErrorKind::Io, op).with_detail(format!("the daemon answered {reply:?}"))
}

fn unexpected_incoming(op: &'static str, incoming: &Incoming) -> Error {
    let what = match incoming {
        Incoming::Reply(_) => "a reply",
        Incoming::Data(_) => "data",
        Incoming::Credit(_) => "credit",
        Incoming::ReadEnd(_) => "the end of a read",
    };
    Error::new(ErrorKind::Io, op).with_detail(format!("the daemon sent {what} out of turn"))
}
