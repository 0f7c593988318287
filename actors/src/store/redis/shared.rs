//! What a store shares with its readers, writers and background tasks: the client, the key names,
//! the namespace's epoch and the ids it hands out, whether the namespace was lost, and the
//! bookkeeping of live and pinned data.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use fred::error::Error as FredError;
use fred::prelude::{Client, Pool, Value};
use fred::types::scripts::Script;
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

use super::epoch::IdGen;
use super::errors::{Origin, is_ambiguous};
use super::keys::Keys;
use super::raw;
use crate::error::{Error, ErrorKind, Result};

/// The state shared by a store and everything it hands out. Always behind an `Arc`.
pub(crate) struct Shared {
    /// Metadata scripts, `COPY` and `UNLINK`: one connection (per node), so that commands sent in
    /// order run in order, which the cleanup of an interrupted copy relies on.
    pub client: Client,
    /// Chunk `SET`s and `GET`s, round robin over `DATA_CONNECTIONS` connections: one caps bulk
    /// throughput well below what Redis can take.
    pub data: Pool,
    pub keys: Keys,
    pub origin: Origin,
    /// Chunk size of the data this process writes.
    pub chunk_size: usize,
    /// A cluster: multi-key commands must not cross slots, so chunk keys go one per command.
    pub cluster: bool,
    /// The namespace's epoch and this store's data ids: set by `connect` once the namespace is
    /// initialised, before the store is handed out.
    pub session: OnceLock<Session>,
    /// A script found the namespace without this store's epoch: the server lost its data. Every
    /// operation fails from then on (see [`Shared::lost_error`]); only a new store starts afresh.
    pub lost: AtomicBool,
    /// Data this process is reading (pinned by readers, appends and copies): its deletion waits
    /// until the last pin goes, so a reader here sees the version it opened whole.
    pub pins: Mutex<HashMap<String, PinState>>,
    /// Pending members this process keeps alive (staged data of open writers, dead data whose
    /// deletion waits for a pin): the heartbeat refreshes them so no sweeper takes them.
    pub live: Mutex<HashSet<String>>,
    /// Background deletions; waited for before the client quits.
    pub tasks: TaskTracker,
    /// Where drops spawn their cleanup, whichever thread they happen on.
    pub runtime: Handle,
}

/// Readers and copies holding one data id, and the dead members waiting for them to finish.
#[derive(Default)]
pub(crate) struct PinState {
    pub count: usize,
    pub deferred: Vec<String>,
}

/// The epoch a store connected in, and what depends on it.
pub(crate) struct Session {
    /// As in `meta.epoch`.
    pub epoch: String,
    /// `ARGV[1]` of every script: `<metadata prefix>|<epoch>` (namespaces cannot contain `|`).
    arg: String,
    pub ids: IdGen,
}

impl Session {
    pub(crate) fn new(keys: &Keys, epoch: &str) -> Session {
        Session {
            epoch: epoch.to_string(),
            arg: format!("{}|{epoch}", keys.meta_prefix()),
            ids: IdGen::new(epoch),
        }
    }
}

impl Shared {
    /// Runs `script` with `args` after the namespace prefix and returns the values after its
    /// `'ok'`. Errors: the script's refusal, or the command's failure, as engine errors without
    /// a path (callers add theirs); `Unavailable` once the namespace was lost.
    pub(crate) async fn run(
        &self,
        op: &'static str,
        script: &Script,
        args: Vec<String>,
    ) -> Result<Vec<Value>> {
        self.run_about(op, script, args).await.map_err(|(e, _)| e)
    }

    /// As [`Shared::run`], and on a refusal also the key the script named: for two-path
    /// scripts, `from` or `to`.
    pub(crate) async fn run_about(
        &self,
        op: &'static str,
        script: &Script,
        args: Vec<String>,
    ) -> Result<Vec<Value>, (Error, String)> {
        if self.is_lost() {
            return Err((self.lost_error(op), String::new()));
        }
        let arg = self.session().arg.clone();
        self.eval(op, script, arg, args).await
    }

    /// Runs `init`, the one script that checks no epoch: it is what records and reads it.
    pub(crate) async fn run_init(&self, op: &'static str, args: Vec<String>) -> Result<Vec<Value>> {
        let arg = format!("{}|", self.keys.meta_prefix());
        self.eval(op, &super::scripts::SCRIPTS.init, arg, args)
            .await
            .map_err(|(e, _)| e)
    }

    async fn eval(
        &self,
        op: &'static str,
        script: &Script,
        first: String,
        args: Vec<String>,
    ) -> Result<Vec<Value>, (Error, String)> {
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(first);
        argv.extend(args);
        let reply: Value = script
            .evalsha_with_reload(&self.client, vec![self.keys.meta()], argv)
            .await
            .map_err(|e| (self.origin.error(op, &e, None), String::new()))?;
        let bad = |what: &str| (self.origin.bad_reply(op, what), String::new());
        let Value::Array(mut items) = reply else {
            return Err(bad("not an array"));
        };
        if items.is_empty() {
            return Err(bad("an empty array"));
        }
        let rest = items.split_off(1);
        match text(&items[0]) {
            Some("ok") => Ok(rest),
            Some("err") => {
                let code = rest.first().and_then(text).unwrap_or("");
                let key = rest.get(1).and_then(text).unwrap_or("");
                if code == "EPOCH" {
                    self.mark_lost();
                    return Err((self.lost_error(op), String::new()));
                }
                Err((self.origin.script_error(op, code, key), key.to_string()))
            }
            _ => Err(bad("no status")),
        }
    }

    /// The session `connect` set up.
    pub(crate) fn session(&self) -> &Session {
        self.session
            .get()
            .expect("connect sets the session before the store is handed out")
    }

    /// Checks that the namespace still holds this store's epoch, after a read sent from the
    /// client rather than through a script (which checks it first): on the metadata connection,
    /// Redis runs this after that read, so an epoch still there says the read saw the namespace
    /// this store opened, where one the server lost reads as empty. Errors: `Unavailable` once
    /// it was lost, or the failure of the check.
    pub(crate) async fn check_epoch(&self, op: &'static str) -> Result<()> {
        let meta = self.keys.meta();
        self.epoch_held(op, &meta, raw::hget(&self.client, &meta, "epoch").await)
    }

    /// Runs `read` of metadata key `key`, sent on the metadata connection, together with
    /// [`Shared::check_epoch`]'s read of the epoch right behind it: one round trip. Errors: as
    /// `check_epoch` (without sending anything once the namespace is known lost), then the
    /// read's own.
    pub(crate) async fn read_checked<T>(
        &self,
        op: &'static str,
        key: &str,
        read: impl Future<Output = std::result::Result<T, FredError>>,
    ) -> Result<T> {
        if self.is_lost() {
            return Err(self.lost_error(op));
        }
        let meta = self.keys.meta();
        let (value, epoch) =
            futures::future::join(read, raw::hget(&self.client, &meta, "epoch")).await;
        self.epoch_held(op, &meta, epoch)?;
        value.map_err(|e| self.origin.error(op, &e, Some(key)))
    }

    /// Whether `epoch`, the reply of `HGET <meta> epoch`, is this store's.
    fn epoch_held(
        &self,
        op: &'static str,
        meta: &str,
        epoch: std::result::Result<Option<Bytes>, FredError>,
    ) -> Result<()> {
        let epoch = epoch.map_err(|e| self.origin.error(op, &e, Some(meta)))?;
        if epoch.as_deref() != Some(self.session().epoch.as_bytes()) {
            self.mark_lost();
            return Err(self.lost_error(op));
        }
        Ok(())
    }

    /// A new data id, carrying the epoch.
    pub(crate) fn next_id(&self) -> String {
        self.session().ids.next()
    }

    /// Whether the server lost the namespace under this store.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Records that the server lost the namespace, and says so once in the log (at `info`:
    /// every operation's error says it to the user; a warning would say it twice).
    pub(crate) fn mark_lost(&self) {
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::info!(namespace = self.keys.namespace(), "{}", self.lost_detail());
        }
    }

    /// The error of every operation once the namespace was lost. `Unavailable`: the store as a
    /// whole cannot serve anything until it is opened again, as a disk mount whose root was
    /// replaced; not an `Io` error of one file, and not `NotFound`, which would read as if the
    /// file alone were missing.
    pub(crate) fn lost_error(&self, op: &'static str) -> Error {
        Error::new(ErrorKind::Unavailable, op).with_detail(self.lost_detail())
    }

    fn lost_detail(&self) -> String {
        format!(
            "Redis at {} lost the data of namespace {}: restarted without persistence? Restart \
             mavfs to start afresh",
            self.origin.shown,
            self.keys.namespace()
        )
    }

    /// Whether the outcome of a command that failed with `err` is unknown (it may have run): a
    /// lost connection or a timeout, but not a refusal because the namespace was lost, after
    /// which nothing of this store can have committed.
    pub(crate) fn is_ambiguous(&self, err: &Error) -> bool {
        is_ambiguous(err) && !self.is_lost()
    }
}

/// A reply value as text, if it is one.
pub(crate) fn text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// A reply value as an integer, from an integer or its text.
pub(crate) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}
