//! What a store shares with its readers, writers and background tasks: the client, the key names,
//! the ids it hands out, and the bookkeeping of live and pinned data.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use fred::prelude::{Client, Pool, Value};
use fred::types::scripts::Script;
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

use super::errors::Origin;
use super::keys::Keys;
use crate::error::{Error, Result};

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
    pub ids: IdGen,
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

impl Shared {
    /// Runs `script` with `args` after the namespace prefix and returns the values after its
    /// `'ok'`. Errors: the script's refusal, or the command's failure, as engine errors without
    /// a path (callers add theirs).
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
        let mut argv = Vec::with_capacity(args.len() + 1);
        argv.push(self.keys.meta_prefix().to_string());
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
                Err((self.origin.script_error(op, code, key), key.to_string()))
            }
            _ => Err(bad("no status")),
        }
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

/// Data ids: unique across processes without asking Redis (a random prefix per store and a
/// counter), so opening a write costs no extra round trip.
pub(crate) struct IdGen {
    prefix: String,
    next: AtomicU64,
}

impl IdGen {
    pub(crate) fn new() -> IdGen {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        IdGen {
            prefix: format!("{:016x}", hasher.finish()),
            next: AtomicU64::new(1),
        }
    }

    /// `<16 hex digits>.<counter in hex>`: no `|`, `/`, `:` or braces, which the layout uses.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}.{n:x}", self.prefix)
    }
}
