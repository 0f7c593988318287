//! Backend actors: one kameo actor per mount, owning that mount's [`Store`].
//!
//! [`BackendActor`] receives one message per store operation through its own bounded mailbox and
//! runs it against the store it owns, so a store needs no locks. Data never streams through the
//! mailbox: `OpenRead` and `OpenWrite` hand out a reader or writer that the caller pumps itself,
//! and `CopyFile` hands out the copy as a future the caller runs, so a large transfer cannot stall
//! `ls` or `stat` on the same mount, and cancelling the transfer stops it. `OpenRead` and `Commit`
//! likewise reply with a future that the caller runs to finish the operation outside the actor
//! ([`Store::start_open_read`], [`Store::start_commit`]), so that the opens and commits of many
//! small files run side by side instead of queueing one behind the other in the mailbox;
//! `ReadFiles` and `WriteFiles` move a batch of small files in one message the same way.
//!
//! [`BackendHandle`] is what the rest of the engine holds: it hides the actor and the store's
//! concrete type, takes full virtual paths (`/vram/a`), hands the store its local path (`/a`), and
//! turns every failure, including a stopped actor, into the engine's [`Error`] with the full path.
//!
//! The handle also meters the mount's data: every byte read from or written to it through the
//! handle (streamed chunks as they pass, batched small files, same-store copies counted as
//! written) adds to two monotonic counters shared by the handle's clones, one relaxed atomic add
//! per chunk or file; [`BackendHandle::io`] reads them as [`IoCounters`].
//!
//! Every operation is written once, as one entry of the `backend_ops!` table below: the handle
//! method, then the message it sends and the [`Store`] call that answers it. Adding an operation
//! takes that entry and the [`Store`] method it calls (with each store's implementation).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use kameo::error::{Infallible, SendError};
use kameo::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    BackendKind, BatchFuture, Capability, DirEntry, FileReader, FileWriter, ListCursor, ListPage,
    Meta, Store, Usage, Version, WholeFile, WholeRead, WriteMode,
};

/// Messages queued per backend before senders wait: enough to absorb a burst of parallel transfer
/// steps, small enough that a flood of requests is pushed back on rather than buffered.
pub const MAILBOX_CAPACITY: usize = 256;

/// The actor that owns one mount's store.
pub struct BackendActor<S: Store> {
    store: S,
}

impl<S: Store> Actor for BackendActor<S> {
    type Args = S;
    type Error = Infallible;

    async fn on_start(store: S, _me: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(BackendActor { store })
    }
}

type Staged<S> = <<S as Store>::Writer as FileWriter>::Staged;

/// The table of backend operations: each entry is written once and gives everything an
/// operation needs.
///
/// An entry is the [`BackendHandle`] method callers use, followed by
/// `=> "op" Message { fields } -> Reply = |store| call;`: the error operation named when the
/// actor is gone, the message the method sends (its fields are store-local), what the actor
/// replies, and the [`Store`] call that answers it in the actor. `|store, me|` also binds the
/// actor's own [`ActorRef`], for an operation whose handed-out work comes back to the actor.
/// From each entry the macro makes the message struct, its handler on [`BackendActor`], its
/// place in the type-erased [`DynBackend`] (through [`Ask`]), and the handle method.
///
/// An operation whose work runs outside the actor replies with that work, a
/// `BoxFuture<'static, _>`, which the handle method then runs.
macro_rules! backend_ops {
    ($(
        $(#[$doc:meta])*
        pub async fn $name:ident(&$this:ident $(, $arg:ident : $arg_ty:ty)* $(,)?) -> $ret:ty
        $body:block
        => $op:literal $msg:ident { $($field:ident : $field_ty:ty),* $(,)? } -> $reply:ty
            = |$store:ident $(, $me:ident)?| $call:expr;
    )*) => {
        $(
            #[doc = concat!("The message of [`BackendHandle::", stringify!($name), "`].")]
            pub(crate) struct $msg { $($field: $field_ty),* }

            impl Operation for $msg {
                const NAME: &'static str = $op;
                type Reply = $reply;
            }

            impl<S: Store> Message<$msg> for BackendActor<S> {
                type Reply = Result<$reply>;

                async fn handle(
                    &mut self,
                    msg: $msg,
                    _ctx: &mut Context<Self, Self::Reply>,
                ) -> Self::Reply {
                    let $msg { $($field),* } = msg;
                    $(let $me = _ctx.actor_ref().clone();)?
                    let $store = &mut self.store;
                    $call.await
                }
            }
        )*

        /// A backend with its store's type erased: one [`Ask`] per operation of the table.
        trait DynBackend: Send + Sync $(+ Ask<$msg>)* {}

        impl<S: Store> DynBackend for ActorRef<BackendActor<S>> {}

        impl BackendHandle {
            $(
                $(#[$doc])*
                pub async fn $name(&$this $(, $arg: $arg_ty)*) -> $ret $body
            )*
        }
    };
}

backend_ops! {
    /// See [`Store::stat`].
    pub async fn stat(&self, path: &VPath) -> Result<Meta> {
        self.ask(path, Stat { path: self.local(path)? }).await
    }
    => "stat" Stat { path: VPath } -> Meta = |store| store.stat(&path);

    /// See [`Store::list`].
    pub async fn list(&self, path: &VPath) -> Result<Vec<DirEntry>> {
        self.ask(path, ListDir { path: self.local(path)? }).await
    }
    => "list" ListDir { path: VPath } -> Vec<DirEntry> = |store| store.list(&path);

    /// See [`Store::list_page`].
    pub async fn list_page(
        &self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        let page = self.ask(path, ListDirPage { path: self.local(path)?, cursor, limit }).await?;
        page.await.map_err(|e| self.full(e, path))
    }
    => "list" ListDirPage { path: VPath, cursor: Option<ListCursor>, limit: usize }
        -> BoxFuture<'static, Result<ListPage>>
        = |store| store.start_list_page(&path, cursor, limit);

    /// See [`Store::mkdir`].
    pub async fn mkdir(&self, path: &VPath, parents: bool) -> Result<()> {
        self.ask(path, MakeDir { path: self.local(path)?, parents }).await
    }
    => "mkdir" MakeDir { path: VPath, parents: bool } -> () = |store| store.mkdir(&path, parents);

    /// See [`Store::touch`].
    pub async fn touch(&self, path: &VPath) -> Result<()> {
        self.ask(path, Touch { path: self.local(path)? }).await
    }
    => "touch" Touch { path: VPath } -> () = |store| store.touch(&path);

    /// See [`Store::remove_file`].
    pub async fn remove_file(&self, path: &VPath) -> Result<()> {
        self.ask(path, RemoveFile { path: self.local(path)? }).await
    }
    => "rm" RemoveFile { path: VPath } -> () = |store| store.remove_file(&path);

    /// See [`Store::remove_file_if`].
    pub async fn remove_file_if(&self, path: &VPath, version: &Version) -> Result<()> {
        let msg = RemoveFileIf { path: self.local(path)?, version: version.clone() };
        self.ask(path, msg).await
    }
    => "mv" RemoveFileIf { path: VPath, version: Version } -> ()
        = |store| store.remove_file_if(&path, &version);

    /// See [`Store::remove_dir`].
    pub async fn remove_dir(&self, path: &VPath) -> Result<()> {
        self.ask(path, RemoveDir { path: self.local(path)? }).await
    }
    => "rmdir" RemoveDir { path: VPath } -> () = |store| store.remove_dir(&path);

    /// See [`Store::remove_all`].
    pub async fn remove_all(&self, path: &VPath) -> Result<()> {
        self.ask(path, RemoveAll { path: self.local(path)? }).await
    }
    => "rm" RemoveAll { path: VPath } -> () = |store| store.remove_all(&path);

    /// See [`Store::rename`]; both paths must be under this mount.
    pub async fn rename(&self, from: &VPath, to: &VPath) -> Result<()> {
        let msg = Rename { from: self.local(from)?, to: self.local(to)? };
        self.ask(from, msg).await
    }
    => "mv" Rename { from: VPath, to: VPath } -> () = |store| store.rename(&from, &to);

    /// Opens file `path` for streaming; see [`Store::start_open_read`] for the rules and errors.
    /// The actor does its part of the open; the rest runs here. Errors from the stream carry
    /// store-local paths rebased here.
    pub async fn open_read(&self, path: &VPath) -> Result<FileReader> {
        use futures::StreamExt;
        let open = self.ask(path, OpenRead { path: self.local(path)? }).await?;
        let reader = open.await.map_err(|e| self.full(e, path))?;
        let (mount, full, meter) = (self.mount.clone(), path.clone(), self.meter.clone());
        Ok(FileReader {
            size: reader.size,
            version: reader.version,
            chunks: reader
                .chunks
                .map(move |r| match r {
                    Ok(chunk) => {
                        meter.read(chunk.len());
                        Ok(chunk)
                    }
                    Err(e) => Err(rebase(e, &mount).or_path(&full)),
                })
                .boxed(),
        })
    }
    => "read" OpenRead { path: VPath } -> BoxFuture<'static, Result<FileReader>>
        = |store| store.start_open_read(&path);

    /// See [`Store::open_write`]; the returned handle streams and then commits through
    /// [`Store::start_commit`].
    pub async fn open_write(&self, path: &VPath, mode: WriteMode) -> Result<WriteHandle> {
        let inner = self.ask(path, OpenWrite { path: self.local(path)?, mode }).await?;
        Ok(WriteHandle {
            inner,
            mount: self.mount.clone(),
            path: path.clone(),
            meter: self.meter.clone(),
        })
    }
    => "write" OpenWrite { path: VPath, mode: WriteMode } -> Box<dyn DynWriter>
        = |store, me| open_writer(store, me, path, mode);

    /// Copies file `from` to `to` inside this store by its fast path ([`Store::copy_file`]),
    /// committed atomically only if the copy holds exactly `size` bytes, the size the caller
    /// planned; once committed, its bytes count as written. The copy runs here, outside the
    /// actor; dropping this future (a cancelled transfer) stops it. Errors: the store's, and
    /// `Io` naming `from` when the source is no longer `size` bytes ("source changed while
    /// copying"); then the old destination, if any, stays.
    pub async fn copy_file(&self, from: &VPath, to: &VPath, size: u64) -> Result<()> {
        let msg = CopyFile { from: self.local(from)?, to: self.local(to)?, size };
        let copy = self.ask(to, msg).await?;
        let bytes = copy.await.map_err(|e| self.full(e, to))?;
        self.meter.written(bytes);
        Ok(())
    }
    => "cp" CopyFile { from: VPath, to: VPath, size: u64 } -> BoxFuture<'static, Result<u64>>
        = |store, me| start_copy(store, me, from, to, size);

    /// See [`Store::start_read_files`]: one result per path, in order, each error naming its
    /// full path. An error of the whole call is repeated for every path.
    pub async fn read_files(&self, paths: &[VPath], limit: u64) -> Vec<Result<WholeRead>> {
        let results = async {
            let local = paths.iter().map(|p| self.local(p)).collect::<Result<_>>()?;
            let read = self.actor.call(ReadFiles { paths: local, limit }).await?;
            Ok(read.await)
        };
        let results = self.per_file(paths, results.await);
        let read: u64 = results
            .iter()
            .map(|r| match r {
                Ok(WholeRead::Data(data, _)) => data.len() as u64,
                _ => 0,
            })
            .sum();
        self.meter.read_total(read);
        results
    }
    => "read" ReadFiles { paths: Vec<VPath>, limit: u64 } -> BatchFuture<WholeRead>
        = |store| store.start_read_files(paths, limit);

    /// See [`Store::start_write_files`]: one result per file, in order, each error naming its
    /// full path. An error of the whole call is repeated for every file.
    pub async fn write_files(&self, files: Vec<WholeFile>) -> Vec<Result<()>> {
        let paths: Vec<VPath> = files.iter().map(|f| f.path.clone()).collect();
        let sizes: Vec<u64> = files.iter().map(|f| f.data.len() as u64).collect();
        let results = async {
            let local = files
                .into_iter()
                .map(|f| {
                    Ok(WholeFile {
                        path: self.local(&f.path)?,
                        data: f.data,
                    })
                })
                .collect::<Result<_>>()?;
            let write = self.actor.call(WriteFiles { files: local }).await?;
            Ok(write.await)
        };
        let results = self.per_file(&paths, results.await);
        let written = results
            .iter()
            .zip(&sizes)
            .filter(|(r, _)| r.is_ok())
            .map(|(_, size)| size)
            .sum();
        self.meter.written(written);
        results
    }
    => "write" WriteFiles { files: Vec<WholeFile> } -> BatchFuture<()>
        = |store| store.start_write_files(files);

    /// See [`Store::usage`].
    pub async fn usage(&self) -> Result<Usage> {
        self.ask(&self.mount, GetUsage {}).await
    }
    => "stats" GetUsage {} -> Usage = |store| store.usage();

    /// See [`Store::close`]: called once, at shutdown, after every transfer has ended. An
    /// actor already gone has nothing left to finish.
    pub async fn close(&self) -> Result<()> {
        self.ask(&self.mount, Close {}).await
    }
    => "close" Close {} -> () = |store| async { store.close().await; Ok(()) };
}

/// An operation of the table: its reply and the operation named in its errors.
trait Operation: Send + 'static {
    /// The operation named when the actor cannot answer (`Unavailable`).
    const NAME: &'static str;
    /// What the actor replies on success.
    type Reply: Send + 'static;
}

/// Sends one operation's message to a backend actor whose store type is erased.
trait Ask<M: Operation> {
    /// Asks the actor; the future owns everything, so it is `'static`. Errors: the handler's
    /// own, or `Unavailable` when the actor has stopped.
    fn call(&self, msg: M) -> BoxFuture<'static, Result<M::Reply>>;
}

impl<S: Store, M: Operation> Ask<M> for ActorRef<BackendActor<S>>
where
    BackendActor<S>: Message<M, Reply = Result<M::Reply>>,
{
    fn call(&self, msg: M) -> BoxFuture<'static, Result<M::Reply>> {
        let actor = self.clone();
        async move { actor.ask(msg).await.map_err(|e| from_send(M::NAME, e)) }.boxed()
    }
}

/// `OpenWrite` in the actor: opens the store's writer and erases its type; the writer commits
/// back through `actor`.
async fn open_writer<S: Store>(
    store: &mut S,
    actor: ActorRef<BackendActor<S>>,
    path: VPath,
    mode: WriteMode,
) -> Result<Box<dyn DynWriter>> {
    let writer = store.open_write(&path, mode).await?;
    Ok(Box::new(TypedWriter {
        writer,
        actor,
        path,
    }))
}

/// `CopyFile` in the actor: the store's checks, then the copy and its commit as one future the
/// caller runs off the mailbox, yielding the bytes copied. A copy of any size but `size` is
/// discarded, never committed.
async fn start_copy<S: Store>(
    store: &mut S,
    actor: ActorRef<BackendActor<S>>,
    from: VPath,
    to: VPath,
    size: u64,
) -> Result<BoxFuture<'static, Result<u64>>> {
    let copy = store.copy_file(&from, &to).await?;
    Ok(async move {
        let (staged, bytes) = copy.await?;
        if bytes != size {
            // `staged` drops here, and its data with it.
            return Err(crate::store::source_changed("cp", &from, size, bytes));
        }
        commit(&actor, "cp", to, staged).await?;
        Ok(bytes)
    }
    .boxed())
}

/// [`Store::start_commit`] of a staged file: replied with the future that finishes the commit,
/// which the caller runs, outside the actor. Not in the table: only a writer or a copy sends it,
/// never a caller, since its staged file's type is the store's own.
pub(crate) struct Commit<S: Store> {
    path: VPath,
    staged: Staged<S>,
}

impl<S: Store> Message<Commit<S>> for BackendActor<S> {
    type Reply = Result<BoxFuture<'static, Result<()>>>;

    async fn handle(&mut self, msg: Commit<S>, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.store.start_commit(&msg.path, msg.staged).await
    }
}

/// Commits `staged` at store-local `path` through `actor`: the actor's part, then the rest here.
async fn commit<S: Store>(
    actor: &ActorRef<BackendActor<S>>,
    op: &'static str,
    path: VPath,
    staged: Staged<S>,
) -> Result<()> {
    let rest = actor
        .ask(Commit::<S> { path, staged })
        .await
        .map_err(|e| from_send(op, e))?;
    rest.await
}

/// Turns a failed `ask` into the engine's error: a handler's own error passes through, anything
/// else means the actor is gone.
fn from_send<M, E: Into<Error>>(op: &'static str, err: SendError<M, E>) -> Error {
    match err {
        SendError::HandlerError(e) => e.into(),
        SendError::Timeout(_) => Error::new(ErrorKind::Unavailable, op).with_detail("timed out"),
        _ => Error::new(ErrorKind::Unavailable, op).with_detail("the backend actor has stopped"),
    }
}

/// The type-erased data side of a write.
pub(crate) trait DynWriter: Send {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<()>>;
    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
}

struct TypedWriter<S: Store> {
    writer: S::Writer,
    actor: ActorRef<BackendActor<S>>,
    /// Store-local destination.
    path: VPath,
}

impl<S: Store> DynWriter for TypedWriter<S> {
    fn write(&mut self, chunk: Bytes) -> BoxFuture<'_, Result<()>> {
        self.writer.write(chunk).boxed()
    }

    fn commit(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let TypedWriter {
            writer,
            actor,
            path,
        } = *self;
        async move {
            let staged = writer.finish().await?;
            commit(&actor, "write", path, staged).await
        }
        .boxed()
    }
}

/// A write in progress on one backend. Dropping it without [`WriteHandle::commit`] discards
/// everything written; the old file, if any, stays as it was.
#[must_use = "dropping a WriteHandle discards what was written"]
pub struct WriteHandle {
    inner: Box<dyn DynWriter>,
    mount: VPath,
    path: VPath,
    /// The backend's counters: each chunk counts as written once the store has taken it.
    meter: Arc<IoMeter>,
}

impl WriteHandle {
    /// Appends `chunk` to the staged file. Errors: `NoSpace`, `Io`.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let mount = &self.mount;
        let path = &self.path;
        let len = chunk.len();
        self.inner
            .write(chunk)
            .await
            .map_err(|e| rebase(e, mount).or_path(path))?;
        self.meter.written(len as u64);
        Ok(())
    }

    /// Makes the written bytes visible at the destination in one atomic step.
    pub async fn commit(self) -> Result<()> {
        let WriteHandle {
            inner, mount, path, ..
        } = self;
        inner
            .commit()
            .await
            .map_err(|e| rebase(e, &mount).or_path(&path))
    }

    /// The full virtual path being written.
    pub fn path(&self) -> &VPath {
        &self.path
    }
}

/// Bytes moved through one mount's [`BackendHandle`] since it was spawned: plain data for front
/// ends, which compute throughput from two readings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoCounters {
    /// Bytes read from the mount: streamed chunks as they passed and batched small files.
    pub bytes_read: u64,
    /// Bytes written to the mount: chunks the store took (committed or not), batched small files
    /// committed, and same-store copies committed.
    pub bytes_written: u64,
}

/// The live counters behind [`IoCounters`], shared by a backend handle's clones and its write
/// handles. Relaxed adds: each counter is monotonic on its own, and no reader needs the two to
/// agree at one instant.
#[derive(Debug, Default)]
struct IoMeter {
    read: AtomicU64,
    written: AtomicU64,
}

impl IoMeter {
    fn read(&self, bytes: usize) {
        self.read_total(bytes as u64);
    }

    fn read_total(&self, bytes: u64) {
        if bytes > 0 {
            self.read.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn written(&self, bytes: u64) {
        if bytes > 0 {
            self.written.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> IoCounters {
        IoCounters {
            bytes_read: self.read.load(Ordering::Relaxed),
            bytes_written: self.written.load(Ordering::Relaxed),
        }
    }
}

/// Puts a store-local error path back under the mount it came from.
fn rebase(err: Error, mount: &VPath) -> Error {
    err.map_path(|p| p.rebase(mount))
}

/// The engine's handle on one mount's backend actor. Cheap to clone.
///
/// Methods take full virtual paths under this backend's mount and return errors naming full paths.
#[derive(Clone)]
pub struct BackendHandle {
    actor: Arc<dyn DynBackend>,
    mount: VPath,
    kind: BackendKind,
    capability: Capability,
    /// Shared by every clone, so that all traffic to the mount adds to one pair of counters.
    meter: Arc<IoMeter>,
}

impl BackendHandle {
    /// Spawns the actor owning `store` for the mount at `mount`; `kind` says which store it is.
    pub fn spawn<S: Store>(mount: VPath, kind: BackendKind, store: S) -> Self {
        let capability = store.capability();
        let actor =
            BackendActor::spawn_with_mailbox(store, kameo::mailbox::bounded(MAILBOX_CAPACITY));
        BackendHandle {
            actor: Arc::new(actor),
            mount,
            kind,
            capability,
            meter: Arc::default(),
        }
    }

    /// Bytes read from and written to this mount through this handle and its clones so far.
    pub fn io(&self) -> IoCounters {
        self.meter.snapshot()
    }

    /// The mount this backend serves.
    pub fn mount(&self) -> &VPath {
        &self.mount
    }

    /// Which store serves this backend.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// What the store can do besides the contract.
    pub fn capability(&self) -> Capability {
        self.capability
    }

    /// The store-local form of `path`. Errors: `InvalidInput` if `path` is not under this mount,
    /// which is a routing bug, never user input.
    fn local(&self, path: &VPath) -> Result<VPath> {
        path.strip_prefix(&self.mount).ok_or_else(|| {
            Error::new(ErrorKind::InvalidInput, "route")
                .with_path(path)
                .with_detail(format!("not under mount {}", self.mount))
        })
    }

    /// Asks the actor and gives its failure the full path `at`.
    async fn ask<M: Operation>(&self, at: &VPath, msg: M) -> Result<M::Reply>
    where
        dyn DynBackend: Ask<M>,
    {
        self.actor.call(msg).await.map_err(|e| self.full(e, at))
    }

    /// `err` from the store, with its store-local path rebased under this mount, or `at` if it
    /// names none.
    fn full(&self, err: Error, at: &VPath) -> Error {
        rebase(err, &self.mount).or_path(at)
    }

    /// A batch's results with full paths, or the batch's own error once per path.
    fn per_file<T>(&self, paths: &[VPath], results: Result<Vec<Result<T>>>) -> Vec<Result<T>> {
        match results {
            Ok(results) if results.len() != paths.len() => paths
                .iter()
                .map(|path| {
                    Err(Error::new(ErrorKind::Io, "batch")
                        .with_path(path)
                        .with_detail(format!(
                            "the {} store answered a batch of {} files with {} results",
                            self.kind,
                            paths.len(),
                            results.len()
                        )))
                })
                .collect(),
            Ok(results) => results
                .into_iter()
                .zip(paths)
                .map(|(r, path)| r.map_err(|e| rebase(e, &self.mount).or_path(path)))
                .collect(),
            Err(e) => paths
                .iter()
                .map(|path| Err(rebase(e.clone(), &self.mount).or_path(path)))
                .collect(),
        }
    }
}
