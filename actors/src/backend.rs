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

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use kameo::error::{Infallible, SendError};
use kameo::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    BackendKind, BatchFuture, Capability, DirEntry, FileReader, FileWriter, Meta, Store, Usage,
    WholeFile, WholeRead, WriteMode,
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

/// Declares one message per store operation: a struct of its arguments and a handler that calls
/// the store method of the same meaning.
macro_rules! store_messages {
    ($( $(#[$doc:meta])* $msg:ident { $($field:ident : $ty:ty),* } -> $reply:ty = $method:ident; )*) => {
        $(
            $(#[$doc])*
            pub struct $msg { $(pub $field: $ty),* }

            impl<S: Store> Message<$msg> for BackendActor<S> {
                type Reply = Result<$reply>;

                async fn handle(&mut self, msg: $msg, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
                    self.store.$method($(&msg.$field),*).await
                }
            }
        )*
    };
}

store_messages! {
    /// [`Store::stat`].
    Stat { path: VPath } -> Meta = stat;
    /// [`Store::list`].
    ListDir { path: VPath } -> Vec<DirEntry> = list;
    /// [`Store::mkdir`].
    MakeDir { path: VPath, parents: bool } -> () = mkdir_msg;
    /// [`Store::touch`].
    Touch { path: VPath } -> () = touch;
    /// [`Store::remove_file`].
    RemoveFile { path: VPath } -> () = remove_file;
    /// [`Store::remove_dir`].
    RemoveDir { path: VPath } -> () = remove_dir;
    /// [`Store::remove_all`].
    RemoveAll { path: VPath } -> () = remove_all;
    /// [`Store::rename`].
    Rename { from: VPath, to: VPath } -> () = rename;
    /// [`Store::start_open_read`]: replied with the future that finishes opening, which the
    /// caller runs.
    OpenRead { path: VPath } -> BoxFuture<'static, Result<FileReader>> = start_open_read;
}

/// Adapts `mkdir`'s by-value flag to the by-reference calling convention of the macro.
trait MkdirByRef {
    fn mkdir_msg(
        &mut self,
        path: &VPath,
        parents: &bool,
    ) -> impl Future<Output = Result<()>> + Send;
}

impl<S: Store> MkdirByRef for S {
    fn mkdir_msg(
        &mut self,
        path: &VPath,
        parents: &bool,
    ) -> impl Future<Output = Result<()>> + Send {
        self.mkdir(path, *parents)
    }
}

/// [`Store::open_write`].
pub struct OpenWrite {
    pub path: VPath,
    pub mode: WriteMode,
}

impl<S: Store> Message<OpenWrite> for BackendActor<S> {
    type Reply = Result<S::Writer>;

    async fn handle(&mut self, msg: OpenWrite, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.store.open_write(&msg.path, msg.mode).await
    }
}

/// [`Store::start_commit`] of a staged file: replied with the future that finishes the commit,
/// which the caller runs, outside the actor.
pub struct Commit<S: Store> {
    pub path: VPath,
    pub staged: Staged<S>,
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

/// [`Store::copy_file`]: checked in the actor, which replies with the copy itself, a future the
/// caller runs off the mailbox. Dropping that future (a cancelled transfer) stops the copy.
pub struct CopyFile {
    pub from: VPath,
    pub to: VPath,
}

impl<S: Store> Message<CopyFile> for BackendActor<S> {
    type Reply = Result<BoxFuture<'static, Result<Staged<S>>>>;

    async fn handle(&mut self, msg: CopyFile, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.store.copy_file(&msg.from, &msg.to).await
    }
}

/// [`Store::start_read_files`]: replied with the future that reads, which the caller runs.
pub struct ReadFiles {
    pub paths: Vec<VPath>,
    pub limit: u64,
}

impl<S: Store> Message<ReadFiles> for BackendActor<S> {
    type Reply = Result<BatchFuture<WholeRead>>;

    async fn handle(&mut self, msg: ReadFiles, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.store.start_read_files(msg.paths, msg.limit).await
    }
}

/// [`Store::start_write_files`]: replied with the future that commits, which the caller runs.
pub struct WriteFiles {
    pub files: Vec<WholeFile>,
}

impl<S: Store> Message<WriteFiles> for BackendActor<S> {
    type Reply = Result<BatchFuture<()>>;

    async fn handle(&mut self, msg: WriteFiles, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.store.start_write_files(msg.files).await
    }
}

/// [`Store::usage`] and [`Store::capability`].
pub struct GetUsage;

impl<S: Store> Message<GetUsage> for BackendActor<S> {
    type Reply = Result<Usage>;

    async fn handle(&mut self, _: GetUsage, _: &mut Context<Self, Self::Reply>) -> Self::Reply {
        self.store.usage().await
    }
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

/// The type-erased operations of a backend, implemented for the actor of every store type.
trait DynBackend: Send + Sync {
    fn ask_stat(&self, path: VPath) -> BoxFuture<'static, Result<Meta>>;
    fn ask_list(&self, path: VPath) -> BoxFuture<'static, Result<Vec<DirEntry>>>;
    fn ask_mkdir(&self, path: VPath, parents: bool) -> BoxFuture<'static, Result<()>>;
    fn ask_touch(&self, path: VPath) -> BoxFuture<'static, Result<()>>;
    fn ask_remove_file(&self, path: VPath) -> BoxFuture<'static, Result<()>>;
    fn ask_remove_dir(&self, path: VPath) -> BoxFuture<'static, Result<()>>;
    fn ask_remove_all(&self, path: VPath) -> BoxFuture<'static, Result<()>>;
    fn ask_rename(&self, from: VPath, to: VPath) -> BoxFuture<'static, Result<()>>;
    fn ask_open_read(&self, path: VPath) -> BoxFuture<'static, Result<FileReader>>;
    fn ask_open_write(
        &self,
        path: VPath,
        mode: WriteMode,
    ) -> BoxFuture<'static, Result<Box<dyn DynWriter>>>;
    fn ask_copy_file(&self, from: VPath, to: VPath) -> BoxFuture<'static, Result<()>>;
    fn ask_read_files(
        &self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> BoxFuture<'static, Result<Vec<Result<WholeRead>>>>;
    fn ask_write_files(&self, files: Vec<WholeFile>)
    -> BoxFuture<'static, Result<Vec<Result<()>>>>;
    fn ask_usage(&self) -> BoxFuture<'static, Result<Usage>>;
}

/// Asks `actor` and maps the failure; the future owns everything, so it is `'static`.
fn ask_boxed<S, M, T>(
    actor: &ActorRef<BackendActor<S>>,
    op: &'static str,
    msg: M,
) -> BoxFuture<'static, Result<T>>
where
    S: Store,
    M: Send + 'static,
    T: Send + 'static,
    BackendActor<S>: Message<M, Reply = Result<T>>,
{
    let actor = actor.clone();
    async move { actor.ask(msg).await.map_err(|e| from_send(op, e)) }.boxed()
}

/// Asks `actor` for the work it hands out (the part of an operation that runs outside the
/// actor), then runs that work in the returned future.
fn ask_then_run<S, M, T>(
    actor: &ActorRef<BackendActor<S>>,
    op: &'static str,
    msg: M,
) -> BoxFuture<'static, Result<T>>
where
    S: Store,
    M: Send + 'static,
    T: Send + 'static,
    BackendActor<S>: Message<M, Reply = Result<BoxFuture<'static, T>>>,
{
    let ask = ask_boxed(actor, op, msg);
    async move { Ok(ask.await?.await) }.boxed()
}

impl<S: Store> DynBackend for ActorRef<BackendActor<S>> {
    fn ask_stat(&self, path: VPath) -> BoxFuture<'static, Result<Meta>> {
        ask_boxed(self, "stat", Stat { path })
    }
    fn ask_list(&self, path: VPath) -> BoxFuture<'static, Result<Vec<DirEntry>>> {
        ask_boxed(self, "list", ListDir { path })
    }
    fn ask_mkdir(&self, path: VPath, parents: bool) -> BoxFuture<'static, Result<()>> {
        ask_boxed(self, "mkdir", MakeDir { path, parents })
    }
    fn ask_touch(&self, path: VPath) -> BoxFuture<'static, Result<()>> {
        ask_boxed(self, "touch", Touch { path })
    }
    fn ask_remove_file(&self, path: VPath) -> BoxFuture<'static, Result<()>> {
        ask_boxed(self, "rm", RemoveFile { path })
    }
    fn ask_remove_dir(&self, path: VPath) -> BoxFuture<'static, Result<()>> {
        ask_boxed(self, "rmdir", RemoveDir { path })
    }
    fn ask_remove_all(&self, path: VPath) -> BoxFuture<'static, Result<()>> {
        ask_boxed(self, "rm", RemoveAll { path })
    }
    fn ask_rename(&self, from: VPath, to: VPath) -> BoxFuture<'static, Result<()>> {
        ask_boxed(self, "mv", Rename { from, to })
    }
    fn ask_open_read(&self, path: VPath) -> BoxFuture<'static, Result<FileReader>> {
        ask_then_run(self, "read", OpenRead { path })
            .map(Result::flatten)
            .boxed()
    }
    fn ask_open_write(
        &self,
        path: VPath,
        mode: WriteMode,
    ) -> BoxFuture<'static, Result<Box<dyn DynWriter>>> {
        let actor = self.clone();
        async move {
            let writer = actor
                .ask(OpenWrite {
                    path: path.clone(),
                    mode,
                })
                .await
                .map_err(|e| from_send("write", e))?;
            Ok(Box::new(TypedWriter {
                writer,
                actor,
                path,
            }) as Box<dyn DynWriter>)
        }
        .boxed()
    }
    fn ask_copy_file(&self, from: VPath, to: VPath) -> BoxFuture<'static, Result<()>> {
        let actor = self.clone();
        async move {
            let copy = CopyFile {
                from,
                to: to.clone(),
            };
            let job = actor.ask(copy).await.map_err(|e| from_send("cp", e))?;
            let staged = job.await?;
            commit(&actor, "cp", to, staged).await
        }
        .boxed()
    }
    fn ask_read_files(
        &self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> BoxFuture<'static, Result<Vec<Result<WholeRead>>>> {
        ask_then_run(self, "read", ReadFiles { paths, limit })
    }
    fn ask_write_files(
        &self,
        files: Vec<WholeFile>,
    ) -> BoxFuture<'static, Result<Vec<Result<()>>>> {
        ask_then_run(self, "write", WriteFiles { files })
    }
    fn ask_usage(&self) -> BoxFuture<'static, Result<Usage>> {
        ask_boxed(self, "stats", GetUsage)
    }
}

/// The type-erased data side of a write.
trait DynWriter: Send {
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
pub struct WriteHandle {
    inner: Box<dyn DynWriter>,
    mount: VPath,
    path: VPath,
}

impl WriteHandle {
    /// Appends `chunk` to the staged file. Errors: `NoSpace`, `Io`.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let mount = &self.mount;
        let path = &self.path;
        self.inner
            .write(chunk)
            .await
            .map_err(|e| rebase(e, mount).or_path(path))
    }

    /// Makes the written bytes visible at the destination in one atomic step.
    pub async fn commit(self) -> Result<()> {
        let WriteHandle { inner, mount, path } = self;
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
        }
    }

    pub fn mount(&self) -> &VPath {
        &self.mount
    }

    /// Which store serves this backend.
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

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

    async fn run<T>(&self, path: &VPath, fut: BoxFuture<'static, Result<T>>) -> Result<T> {
        fut.await.map_err(|e| rebase(e, &self.mount).or_path(path))
    }

    /// See [`Store::stat`].
    pub async fn stat(&self, path: &VPath) -> Result<Meta> {
        let local = self.local(path)?;
        self.run(path, self.actor.ask_stat(local)).await
    }

    /// See [`Store::list`].
    pub async fn list(&self, path: &VPath) -> Result<Vec<DirEntry>> {
        let local = self.local(path)?;
        self.run(path, self.actor.ask_list(local)).await
    }

    /// See [`Store::mkdir`].
    pub async fn mkdir(&self, path: &VPath, parents: bool) -> Result<()> {
        let local = self.local(path)?;
        self.run(path, self.actor.ask_mkdir(local, parents)).await
    }

    /// See [`Store::touch`].
    pub async fn touch(&self, path: &VPath) -> Result<()> {
        let local = self.local(path)?;
        self.run(path, self.actor.ask_touch(local)).await
    }

    /// See [`Store::remove_file`].
    pub async fn remove_file(&self, path: &VPath) -> Result<()> {
        let local = self.local(path)?;
        self.run(path, self.actor.ask_remove_file(local)).await
    }

    /// See [`Store::remove_dir`].
    pub async fn remove_dir(&self, path: &VPath) -> Result<()> {
        let local = self.local(path)?;
        self.run(path, self.actor.ask_remove_dir(local)).await
    }

    /// See [`Store::remove_all`].
    pub async fn remove_all(&self, path: &VPath) -> Result<()> {
        let local = self.local(path)?;
        self.run(path, self.actor.ask_remove_all(local)).await
    }

    /// See [`Store::rename`]; both paths must be under this mount.
    pub async fn rename(&self, from: &VPath, to: &VPath) -> Result<()> {
        let (lf, lt) = (self.local(from)?, self.local(to)?);
        self.run(from, self.actor.ask_rename(lf, lt)).await
    }

    /// See [`Store::open_read`]. Errors from the stream carry store-local paths rebased here.
    pub async fn open_read(&self, path: &VPath) -> Result<FileReader> {
        use futures::StreamExt;
        let local = self.local(path)?;
        let reader = self.run(path, self.actor.ask_open_read(local)).await?;
        let (mount, full) = (self.mount.clone(), path.clone());
        Ok(FileReader {
            size: reader.size,
            chunks: reader
                .chunks
                .map(move |r| r.map_err(|e| rebase(e, &mount).or_path(&full)))
                .boxed(),
        })
    }

    /// See [`Store::open_write`]; the returned handle streams and then commits.
    pub async fn open_write(&self, path: &VPath, mode: WriteMode) -> Result<WriteHandle> {
        let local = self.local(path)?;
        let inner = self
            .run(path, self.actor.ask_open_write(local, mode))
            .await?;
        Ok(WriteHandle {
            inner,
            mount: self.mount.clone(),
            path: path.clone(),
        })
    }

    /// Copies file `from` to `to` inside this store by its fast path, committed atomically.
    pub async fn copy_file(&self, from: &VPath, to: &VPath) -> Result<()> {
        let (lf, lt) = (self.local(from)?, self.local(to)?);
        self.run(to, self.actor.ask_copy_file(lf, lt)).await
    }

    /// See [`Store::start_read_files`]: one result per path, in order, each error naming its
    /// full path. An error of the whole call is repeated for every path.
    pub async fn read_files(&self, paths: &[VPath], limit: u64) -> Vec<Result<WholeRead>> {
        let local: Result<Vec<VPath>> = paths.iter().map(|p| self.local(p)).collect();
        let results = match local {
            Ok(local) => self.actor.ask_read_files(local, limit).await,
            Err(e) => Err(e),
        };
        self.per_file(paths, results)
    }

    /// See [`Store::start_write_files`]: one result per file, in order, each error naming its
    /// full path. An error of the whole call is repeated for every file.
    pub async fn write_files(&self, files: Vec<WholeFile>) -> Vec<Result<()>> {
        let paths: Vec<VPath> = files.iter().map(|f| f.path.clone()).collect();
        let local: Result<Vec<WholeFile>> = files
            .into_iter()
            .map(|f| {
                Ok(WholeFile {
                    path: self.local(&f.path)?,
                    data: f.data,
                })
            })
            .collect();
        let results = match local {
            Ok(local) => self.actor.ask_write_files(local).await,
            Err(e) => Err(e),
        };
        self.per_file(&paths, results)
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

    /// See [`Store::usage`].
    pub async fn usage(&self) -> Result<Usage> {
        self.run(&self.mount, self.actor.ask_usage()).await
    }
}
