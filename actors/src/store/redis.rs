//! `RedisStore`: a tier in Redis, on one node or a Redis Cluster, shareable by several processes.
//!
//! # Key layout
//!
//! Every key starts with `<ns>:` (the mount's namespace), so `SCAN MATCH <ns>:*` or an ACL key
//! pattern `~<ns>:*` covers exactly one mount, and nothing outside it is ever read or written.
//! Metadata keys carry the hash tag `{<ns>}`, so they all live in one cluster slot and each
//! update is one atomic Lua script even on a cluster; data chunks carry no common tag, so they
//! spread over every master.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<ns>:{<ns>}:meta` | hash | `layout` (format version, 2: packed files came in 2; a store upgrades a layout-1 namespace in place), `mtime` (root's mtime, ms), `next` (last directory id), `epoch` (module `epoch`), `scan` (`1` while a scan for chunks of earlier epochs is owed) |
//! | `<ns>:{<ns>}:stats` | hash | maintained counters `files`, `dirs` (root excluded), `bytes`: `usage` reads them, never scans |
//! | `<ns>:{<ns>}:d:<id>` | hash | the entries of directory `<id>` (root: 0): name -> entry |
//! | `<ns>:{<ns>}:pending` | zset | staged and dead data not yet deleted, scored by last heartbeat (server ms) |
//! | `<ns>:{<ns>}:trash` | set | ids of removed directories whose contents are being purged |
//! | `<ns>:{<ns>}:packs` | hash | pack data id -> the number of files whose entries point into it |
//! | `<ns>:c:{<place>:<i>}:<data>` | string | chunk `<i>` (from 0) of data `<data>`: `chunk_size` bytes, the last one shorter; a pack is chunk 0 of its own id, placed by it |
//!
//! An entry is `d/<id>/<mtime>` for a directory, `f/<size>/<mtime>/<chunk size>/<data>/<place>`
//! for a file (data and place empty for an empty file, which has no data), or
//! `p/<size>/<mtime>/<offset>/<pack>` for a packed file: its bytes are `size` bytes at `offset`
//! in pack `<pack>` (module `pack`). Directories are real:
//! `mkdir` creates an entry with an id from `meta.next`, and the directory's own hash exists once
//! it has entries. Listing a directory reads its hash only (`HGETALL`, or `HSCAN` pages of
//! [`LIST_PAGE`] entries past that size), never the keyspace; entries hold kind, size and mtime,
//! so a listing needs no other key. A path resolves from the root, one `HGET` per component,
//! inside the script that needs it: every operation is one round trip whatever the depth. A
//! listing and a batched read take a second: the script resolves the directory, and the client
//! reads its hash (`HGETALL`, `HSCAN`, `HMGET`), since handing entries through Lua cost Redis
//! more than reading them (about 0.5 µs an entry each way). A listing paged by its caller reads
//! its next pages ahead while the caller works through one (module `read_ahead`).
//! Directory contents are keyed by id, so `rename` moves one hash field between two directory
//! hashes and touches nothing else: O(1) for a file or a directory of any size.
//!
//! File data lives under a data id that is new for every write (the namespace's epoch, a random
//! per-store part and a counter, `<epoch>-<store>.<n>`, no round trip; ids written before epochs
//! are `<16 hex digits>.<n>`, and both kinds live side by side). `<place>` is the data id of the write that first placed the data;
//! a copy keeps its source's place, so that each source chunk and its copy share a slot and
//! `COPY` runs server-side on a cluster too, while different indexes spread over slots.
//!
//! # Writes, commits and readers
//!
//! `open_write` checks the destination and registers the new data id in `pending` (one script).
//! The writer `SET`s chunks concurrently, at most `writer::WRITE_AHEAD` in flight (module
//! [`writer`]). `commit` is one script: it checks the destination again (parent a directory,
//! target not one), checks the data is still pending, points the entry at the new data, updates
//! `stats`, moves the old data (if any) to `pending` as dead, and returns it; its chunks are then
//! deleted in the background (`UNLINK`). The commit is idempotent: re-run after it succeeded (fred
//! re-sends after a reconnect) it finds its data in place and succeeds. A commit whose outcome is
//! unknown (the connection dropped) leaves the chunks alone: if it did not happen, a sweep deletes
//! them. Two writers to one path: each commit switches the whole file, so the last complete write
//! wins and chunks never interleave.
//!
//! Small files also move in batches ([`crate::store::Store::start_read_files`], [`crate::store::Store::start_write_files`];
//! module `batch`), in a few round trips per batch instead of a few per file: a read resolves
//! every parent directory in one script (`dirs`), reads their entries (`HMGET`, or `HGETALL` of a
//! directory it reads much of), then fetches every chunk at once; a write registers
//! every file's new data id in `pending` in one script (`stage_files`), `SET`s every chunk at once,
//! then commits each file in one script (`commit_files`), which applies `commit`'s checks and
//! rules to each file on its own, so that one refused file leaves the others committed. A batch
//! dropped before its commit discards its chunks; once its commit is sent, it runs to its end.
//!
//! A batched write packs its files of 1 byte to 1 MiB back to back into a few pack keys (module
//! `pack`), each cut to fill the server allocator's size class, so a 4 KiB file costs about
//! 4,200 bytes of Redis memory instead of 5,400 as a key of its own. `packs` counts the files in
//! each pack: whatever retires a packed entry (a replace, `rm`, a rename over it, a purge)
//! decrements it in the same script, and the last file out makes the pack dead data, deleted as
//! any other. Bytes of a packed file that was replaced stay in its pack until the pack's last
//! file goes. A packed file is read with `GETRANGE` (a batched read takes each run of one pack
//! in one request); a copy or an append gives the new file data of its own.
//!
//! A move removes its source with `remove_file` given the version it read (size, mtime and data
//! id, [`crate::store::Version`]): the script removes the entry only if it still holds that
//! version, so a source rewritten meanwhile, in this process or another, is kept.
//!
//! A reader captures data id, size and chunk size at open and fetches chunks ahead of its
//! consumer. In this process a reader pins its data id, so a replace or remove here waits for the
//! reader before deleting the old chunks. Across processes deletion is not deferred: a reader in
//! another process racing a replace fails with an `Io` error naming the file ("chunk 3 of 8 is
//! missing ..."), never a short read or a mix.
//!
//! # Garbage
//!
//! Every data id with chunks that no file uses is a `pending` member (module [`gc`]) until its
//! chunks are gone; members the process still uses get a heartbeat every 30 s. `connect`, and
//! every running store each 5 minutes, sweeps members without a heartbeat for
//! [`gc::ORPHAN_GRACE`] (a crashed writer's chunks) and purges `trash` (a crashed `rm -r`).
//! `remove_all` unlinks the directory at once, then purges its contents before returning.
//!
//! # A server that loses the namespace
//!
//! `meta.epoch`, a random text set when the namespace is created (or first opened by a MAVFS
//! with epochs), is remembered by each store at connect and checked by every script before
//! anything else. A `meta` that is gone, or holds another epoch, means the server lost the
//! namespace's data under the running store (a restart without persistence, a `FLUSHALL`):
//! the store then fails every operation with `Unavailable` ("Redis at URL lost the data of
//! namespace NS: restarted without persistence? Restart mavfs to start afresh") and writes
//! nothing, not even the chunks of a writer already open, until a new store opens the namespace
//! afresh in a new epoch. A namespace is created owing a scan (`meta.scan`): that store deletes,
//! in the background, every chunk key of the namespace on every master (`SCAN MATCH <ns>:c:*`)
//! whose data id carries another epoch, which no live writer or committed file can own; on a
//! cluster these are the chunks a master that lost the metadata slot left on the others.
//!
//! # Faults
//!
//! Every command has the configured timeout, reconnection included: a dead server fails the
//! operation within it (`Unavailable`, naming the URL without its password). `OOM` replies
//! (`maxmemory` with `noeviction`) become `NoSpace`; the failed write's chunks are deleted
//! (`UNLINK` works when out of memory) and the destination is untouched. `connect` warns when a
//! master evicts keys (`allkeys-*` policies): an evicted chunk is lost data; `volatile-*` policies
//! never evict these keys, which have no TTL. A missing chunk is an `Io` error naming the file; a
//! key of the wrong type is an `Io` error naming the key.
//!
//! # Files
//!
//! - `redis.rs` (this file): [`RedisStore`], the key layout above, and closing: at shutdown the
//!   engine closes the store ([`crate::store::Store::close`]), which waits, bounded in time, for
//!   the background deletions before the connections close, so that a process exiting right
//!   after a `rm` or a failed write leaves no chunks behind.
//! - `connect`: [`RedisStore::connect`]: connection setup, the server checks (version, eviction
//!   policy), the scripts loaded, the namespace initialised or checked, the warnings.
//! - `ops`: `impl Store for RedisStore`: each operation of the contract, one script each.
//! - `config`: [`RedisOptions`], validated, with the URL shown without its password.
//! - `keys`: key names and the entry grammar.
//! - `epoch`: the namespace's epoch and the data ids that carry it.
//! - `scripts`: the names and flags of the Lua scripts, each in its own file under `lua/`
//!   (`lua/commit.lua`, ...), with the prelude and epilogue every script shares.
//! - `batch`: batched reads and writes of small files.
//! - `pack`: how a batch's small files are packed.
//! - `reader`, [`writer`]: chunk streams out and in.
//! - [`gc`]: `pending`, heartbeats, sweeps and purges.
//! - `shared`: state shared with readers, writers and background tasks.
//! - `errors`: Redis failures as the engine's errors.

mod batch;
mod config;
mod connect;
mod epoch;
mod errors;
pub mod gc;
mod keys;
mod ops;
mod pack;
mod raw;
mod read_ahead;
mod reader;
mod scripts;
mod shared;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::ClientLike;
use tokio_util::sync::CancellationToken;

use self::gc::SweepReport;
use self::shared::Shared;
use crate::error::Result;

pub use self::config::{DEFAULT_COMMAND_TIMEOUT, RedisOptions};

/// Version of the key layout these docs describe, recorded in `meta.layout`. Layout 2 added packed
/// files (`p/` entries and `packs`); a layout-1 namespace is a layout-2 one without them, so a
/// store upgrades it in place at connect, after which a MAVFS of layout 1 refuses it by name
/// rather than misread a packed entry.
const LAYOUT: &str = "2";

/// Directories up to this many entries list in one `HGETALL`; larger ones in `HSCAN` pages of
/// about this many, so a listing never holds more than one page in Redis's reply buffers.
pub const LIST_PAGE: usize = 1000;

/// `COPY`s in flight for a copy or an append.
pub(crate) const COPY_CONCURRENCY: usize = 64;

/// A store in Redis. Create it with [`RedisStore::connect`] and give it to a backend actor.
pub struct RedisStore {
    shared: Arc<Shared>,
    warnings: Vec<String>,
    stop: CancellationToken,
    /// [`RedisStore::close`](crate::store::Store::close) has run: the connections are closed,
    /// nothing is left to do.
    closed: bool,
    /// The next pages of the listings served last, on their way.
    read_ahead: read_ahead::ReadAheads,
}

impl RedisStore {
    /// Warnings found at connect (an evicting `maxmemory-policy`, a failed sweep), for the
    /// front end to show at start.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Deletes the data of writers and copies nobody vouched for within `grace` (their process
    /// died) and purges removed directories. `connect` does this with [`gc::ORPHAN_GRACE`].
    pub async fn sweep(&self, grace: Duration) -> Result<SweepReport> {
        gc::sweep(&self.shared, grace).await
    }
}

impl RedisStore {
    /// [`crate::store::Store::close`]: stops the heartbeat, waits for the background deletions
    /// (data freed by a commit, remove or rename, staged data a failed write discarded), at most
    /// [`close_wait`] of the command timeout, then closes the connections. What is left
    /// undone then stays in `pending`, and a later start's sweep deletes it.
    pub(crate) async fn shut(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.stop.cancel();
        let shared = &self.shared;
        shared.tasks.close();
        let wait = close_wait(shared.origin.timeout);
        if tokio::time::timeout(wait, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                namespace = shared.keys.namespace(),
                "freeing data did not finish within {wait:?}; a later start sweeps what is left"
            );
        }
        let _ = shared.client.quit().await;
        let _ = shared.data.quit().await;
    }
}

/// How long closing waits for background deletions, given the command timeout: long enough
/// for a retry of each command in flight, bounded so that a dead server cannot hold an exit.
fn close_wait(timeout: Duration) -> Duration {
    (timeout * 2).max(Duration::from_secs(5))
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Not closed (a store dropped without a shutdown): the same, as a task of its own, if
        // the runtime lives on long enough to run it.
        self.stop.cancel();
        let shared = self.shared.clone();
        shared.tasks.close();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            // Background deletions finish first; then the connections close.
            shared.tasks.wait().await;
            let _ = shared.client.quit().await;
            let _ = shared.data.quit().await;
        });
    }
}
