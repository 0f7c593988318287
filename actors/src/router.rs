//! The router: the engine's front door.
//!
//! [`RouterHandle`] is the only API the front ends use. It owns the mount table (shared read-only:
//! it never changes after start), resolves virtual paths to a mount, and routes each operation:
//!
//! - single-mount operations (`stat`, `ls`, `mkdir`, `rm`, `cat`, writes) go straight to the
//!   mount's backend actor, so a lookup never queues behind another mount's work;
//! - transfers (`cp`, `mv`, `push`, `pull`) go to the [`Router`] actor, which runs each in a task of
//!   its own, tracked so that shutdown can cancel and await them all.
//!
//! The virtual root `/` is answered here: it is a directory whose entries are the mounts, and
//! nothing else can be created, written or removed there.

use std::sync::Arc;
use std::time::SystemTime;

use kameo::error::Infallible;
use kameo::prelude::*;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backend::WriteHandle;
use crate::error::{Error, ErrorKind, Result};
use crate::mounts::{Mount, MountTable};
use crate::path::VPath;
use crate::store::{DirEntry, EntryKind, FileReader, Meta, Usage, WriteMode};
use crate::transfer::{self, TransferRequest, TransferSummary};

/// The actor that runs transfers (and, later, keeps the job table).
pub struct Router {
    table: Arc<MountTable>,
    /// Every transfer task, so that shutdown waits for them.
    tasks: TaskTracker,
    /// Cancelled at shutdown; every transfer stops at its next await.
    shutdown: CancellationToken,
}

impl Actor for Router {
    type Args = Router;
    type Error = Infallible;

    async fn on_start(router: Router, _me: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(router)
    }
}

/// Runs a transfer to completion in a task of its own and replies with its summary. `cancel`
/// stops it: dropped writers discard their staged data, committed files stay.
pub struct RunTransfer {
    pub request: TransferRequest,
    pub cancel: CancellationToken,
}

impl Message<RunTransfer> for Router {
    type Reply = DelegatedReply<Result<TransferSummary>>;

    async fn handle(
        &mut self,
        msg: RunTransfer,
        ctx: &mut Context<Self, Self::Reply>,
    ) -> Self::Reply {
        let table = self.table.clone();
        let RunTransfer { request, cancel } = msg;
        // Either the requester or shutdown stops the transfer.
        let cancel = {
            let shutdown = self.shutdown.clone();
            async move {
                tokio::select! {
                    () = cancel.cancelled() => {}
                    () = shutdown.cancelled() => {}
                }
            }
        };
        let op = request.kind.command();
        // Cancel safety: dropping the transfer future drops its open writers, which discard their
        // staged data; committed files stay.
        let task = async move {
            tokio::select! {
                result = transfer::run(&table, &request) => result,
                () = cancel => Err(Error::new(ErrorKind::Cancelled, op)),
            }
        };
        ctx.spawn(self.tasks.track_future(task))
    }
}

/// Usage of one mount, for `stats`.
#[derive(Debug, Clone)]
pub struct MountStats {
    pub path: VPath,
    pub backend: &'static str,
    pub tier: crate::mounts::Tier,
    pub usage: Usage,
}

/// The front ends' handle on the engine. Cheap to clone.
#[derive(Clone)]
pub struct RouterHandle {
    table: Arc<MountTable>,
    actor: ActorRef<Router>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl RouterHandle {
    /// Starts the router over `table`.
    pub fn spawn(table: MountTable) -> Self {
        let table = Arc::new(table);
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let actor = Router::spawn(Router {
            table: table.clone(),
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
        });
        RouterHandle {
            table,
            actor,
            tasks,
            shutdown,
        }
    }

    pub fn mounts(&self) -> &[Mount] {
        self.table.mounts()
    }

    /// The first mount: where a shell starts.
    pub fn home(&self) -> &VPath {
        self.table.home()
    }

    /// Resolves shell input against `cwd`; `..` stops at mount roots.
    pub fn resolve(&self, cwd: &VPath, input: &str) -> Result<VPath> {
        self.table.resolve(cwd, input)
    }

    /// Metadata of `path`; `/` is a directory. Errors: as [`crate::store::Store::stat`], and
    /// `NotFound` for a path under no mount.
    pub async fn stat(&self, path: &VPath) -> Result<Meta> {
        match self.table.find("stat", path)? {
            Some(m) => m.backend.stat(path).await,
            None => Ok(Meta {
                kind: EntryKind::Dir,
                size: 0,
                modified: SystemTime::UNIX_EPOCH,
            }),
        }
    }

    /// Entries of directory `path`, sorted by name; `/` lists the mounts.
    pub async fn list(&self, path: &VPath) -> Result<Vec<DirEntry>> {
        let mut entries = match self.table.find("ls", path)? {
            Some(m) => m.backend.list(path).await?,
            None => {
                let mut out = Vec::new();
                for m in self.table.mounts() {
                    out.push(DirEntry {
                        name: m.path.file_name().unwrap_or_default().to_string(),
                        meta: m.backend.stat(&m.path).await?,
                    });
                }
                out
            }
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Creates a directory (see [`crate::store::Store::mkdir`]). Errors also: `PermissionDenied`
    /// at `/`.
    pub async fn mkdir(&self, path: &VPath, parents: bool) -> Result<()> {
        match self.table.find("mkdir", path)? {
            Some(m) => m.backend.mkdir(path, parents).await,
            None if parents => Ok(()),
            None => Err(Error::new(ErrorKind::AlreadyExists, "mkdir").with_path(path)),
        }
    }

    /// Creates an empty file or updates a modification time.
    pub async fn touch(&self, path: &VPath) -> Result<()> {
        let mount = self.table.get("touch", path, ErrorKind::PermissionDenied)?;
        mount.backend.touch(path).await
    }

    /// Removes `path` as `rm` does: a file or symlink; with `recursive` also a directory and its
    /// contents; with `force` a missing path is success. Errors: `Busy` for `/` or a mount root;
    /// `IsADirectory` for a directory without `recursive`.
    pub async fn remove(&self, path: &VPath, recursive: bool, force: bool) -> Result<()> {
        let result = self.remove_inner(path, recursive).await;
        match result {
            Err(e) if force && e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn remove_inner(&self, path: &VPath, recursive: bool) -> Result<()> {
        let mount = self.table.get("rm", path, ErrorKind::Busy)?;
        if mount.path == *path {
            return Err(Error::new(ErrorKind::Busy, "rm")
                .with_path(path)
                .with_detail("a mount root cannot be removed"));
        }
        // Try the file first: on disk this removes a symlink itself, even one leading outside the
        // root, where a stat would be refused.
        match mount.backend.remove_file(path).await {
            Err(e) if e.kind() == ErrorKind::IsADirectory && recursive => {
                mount.backend.remove_all(path).await
            }
            other => other,
        }
    }

    /// Opens file `path` for streaming.
    pub async fn read(&self, path: &VPath) -> Result<FileReader> {
        let mount = self.table.get("read", path, ErrorKind::IsADirectory)?;
        mount.backend.open_read(path).await
    }

    /// Starts an atomic write of `path`; nothing is visible until [`WriteHandle::commit`].
    pub async fn write(&self, path: &VPath, mode: WriteMode) -> Result<WriteHandle> {
        let mount = self.table.get("write", path, ErrorKind::IsADirectory)?;
        mount.backend.open_write(path, mode).await
    }

    /// Runs a copy or move (see [`crate::transfer`]) and waits for it. Dropping the returned
    /// future cancels the transfer (Ctrl-C in the shell).
    pub async fn transfer(&self, request: TransferRequest) -> Result<TransferSummary> {
        let op = request.kind.command();
        let cancel = CancellationToken::new();
        let _cancel_on_drop = cancel.clone().drop_guard();
        self.actor
            .ask(RunTransfer { request, cancel })
            .await
            .map_err(|e| match e {
                SendError::HandlerError(e) => e,
                _ => Error::new(ErrorKind::Unavailable, op).with_detail("the router has stopped"),
            })
    }

    /// Usage of every mount, in mount order.
    pub async fn stats(&self) -> Result<Vec<MountStats>> {
        let mut out = Vec::new();
        for m in self.table.mounts() {
            out.push(MountStats {
                path: m.path.clone(),
                backend: m.backend.kind(),
                tier: m.tier,
                usage: m.backend.usage().await?,
            });
        }
        Ok(out)
    }

    /// Cancels every running transfer and waits until each has cleaned up.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
