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
//! | `<ns>:{<ns>}:meta` | hash | `layout` (format version, 1), `mtime` (root's mtime, ms), `next` (last directory id) |
//! | `<ns>:{<ns>}:stats` | hash | maintained counters `files`, `dirs` (root excluded), `bytes`: `usage` reads them, never scans |
//! | `<ns>:{<ns>}:d:<id>` | hash | the entries of directory `<id>` (root: 0): name -> entry |
//! | `<ns>:{<ns>}:pending` | zset | staged and dead data not yet deleted, scored by last heartbeat (server ms) |
//! | `<ns>:{<ns>}:trash` | set | ids of removed directories whose contents are being purged |
//! | `<ns>:c:{<place>:<i>}:<data>` | string | chunk `<i>` (from 0) of data `<data>`: `chunk_size` bytes, the last one shorter |
//!
//! An entry is `d/<id>/<mtime>` for a directory, `f/<size>/<mtime>/<chunk size>/<data>/<place>`
//! for a file (data and place empty for an empty file made by `touch`). Directories are real:
//! `mkdir` creates an entry with an id from `meta.next`, and the directory's own hash exists once
//! it has entries. Listing a directory reads its hash only (`HGETALL`, or `HSCAN` pages of
//! [`LIST_PAGE`] entries past that size), never the keyspace; entries hold kind, size and mtime,
//! so a listing needs no other key. A path resolves from the root, one `HGET` per component,
//! inside the script that needs it: every operation is one round trip whatever the depth.
//! Directory contents are keyed by id, so `rename` moves one hash field between two directory
//! hashes and touches nothing else: O(1) for a file or a directory of any size.
//!
//! File data lives under a data id that is new for every write (a random per-process prefix and
//! a counter, no round trip). `<place>` is the data id of the write that first placed the data;
//! a copy keeps its source's place, so that each source chunk and its copy share a slot and
//! `COPY` runs server-side on a cluster too, while different indexes spread over slots.
//!
//! # Writes, commits and readers
//!
//! `open_write` checks the destination and registers the new data id in `pending` (one script).
//! The writer `SET`s chunks concurrently, at most [`writer::WRITE_AHEAD`] in flight (module
//! [`writer`]). `commit` is one script: it checks the destination again (parent a directory,
//! target not one), checks the data is still pending, points the entry at the new data, updates
//! `stats`, moves the old data (if any) to `pending` as dead, and returns it; its chunks are then
//! deleted in the background (`UNLINK`). The commit is idempotent: re-run after it succeeded (fred
//! re-sends after a reconnect) it finds its data in place and succeeds. A commit whose outcome is
//! unknown (the connection dropped) leaves the chunks alone: if it did not happen, a sweep deletes
//! them. Two writers to one path: each commit switches the whole file, so the last complete write
//! wins and chunks never interleave.
//!
//! Small files also move in batches ([`Store::start_read_files`], [`Store::start_write_files`];
//! module `batch`), in a few round trips per batch instead of a few per file: a read resolves
//! every path in one script (`stat_files`), then fetches every chunk at once; a write registers
//! every file's new data id in `pending` in one script (`stage_files`), `SET`s every chunk at once,
//! then commits each file in one script (`commit_files`), which applies `commit`'s checks and
//! rules to each file on its own, so that one refused file leaves the others committed. A batch
//! dropped before its commit discards its chunks; once its commit is sent, it runs to its end.
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
//! Submodules: [`config`] (options), `keys` (key names, entries), `scripts` (the Lua), `batch`
//! (batched reads and writes),
//! `errors` (mapping), `shared` (state shared with readers and writers), [`gc`], `reader`,
//! [`writer`].

mod batch;
mod config;
mod errors;
pub mod gc;
mod keys;
mod reader;
mod scripts;
mod shared;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::prelude::{Builder, ClientLike, ClusterInterface, Options, ReconnectPolicy, Value};
use fred::types::InfoKind;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::errors::{Origin, is_ambiguous};
use self::gc::{Pin, SweepReport, retire};
use self::keys::{Entry, Keys, chunk_count};
use self::reader::FileData;
use self::scripts::SCRIPTS;
use self::shared::{IdGen, Shared, integer, text};
use self::writer::{Prefill, RedisStaged, RedisWriter, copy_chunks};
use crate::error::{Error, ErrorKind, Result};
use crate::path::VPath;
use crate::store::{
    BatchFuture, Capability, DirEntry, FileReader, Meta, Store, Usage, WholeFile, WholeRead,
    WriteMode,
};

pub use self::config::{DEFAULT_COMMAND_TIMEOUT, RedisOptions};

/// Version of the key layout these docs describe, recorded in `meta.layout`.
const LAYOUT: &str = "1";
/// Directories up to this many entries list in one `HGETALL`; larger ones in `HSCAN` pages of
/// about this many, so a listing never holds more than one page in Redis's reply buffers.
pub const LIST_PAGE: usize = 1000;
/// Connections (per node) for chunk data, besides the one for metadata. Measured with 4 files
/// at once against a local Redis: 16 instead of 4 cut Redis's CPU per GiB written by about 20%
/// and made both directions 10-15% faster; 8 was in between.
const DATA_CONNECTIONS: usize = 16;
/// `COPY`s in flight for a copy or an append.
pub(crate) const COPY_CONCURRENCY: usize = 64;
/// Oldest Redis whose scripts take flags (`allow-oom`, `no-writes`).
const MIN_VERSION: (u32, u32) = (7, 0);

/// A store in Redis. Create it with [`RedisStore::connect`] and give it to a backend actor.
pub struct RedisStore {
    shared: Arc<Shared>,
    warnings: Vec<String>,
    stop: CancellationToken,
}

impl RedisStore {
    /// Connects, checks the server (version, eviction policy) and the namespace (layout, key
    /// types), sweeps what crashed processes left, and starts the heartbeat.
    ///
    /// Errors: `InvalidInput` for bad options; `Unavailable` when Redis cannot be reached within
    /// the command timeout (the detail shows the URL without its password); `PermissionDenied`
    /// for refused credentials; `Unsupported` for a Redis older than 7.0; `Io` naming a key of
    /// the wrong type, or a namespace written by another layout version.
    pub async fn connect(options: RedisOptions) -> Result<RedisStore> {
        const OP: &str = "connect";
        options.validate()?;
        let timeout = options.command_timeout;
        let origin = Origin {
            shown: options.shown(),
            timeout,
        };
        let mut builder = Builder::from_config(options.fred_config()?);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                c.unresponsive.max_timeout = Some(timeout);
                c.unresponsive.interval = (timeout / 4).max(Duration::from_millis(100));
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            // Keep reconnecting for as long as the store lives; each command still fails after
            // the command timeout.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2));
        let built = builder.build().and_then(|client| {
            let data = builder.build_pool(DATA_CONNECTIONS)?;
            Ok((client, data))
        });
        let (client, data) = built.map_err(|e| {
            Error::new(ErrorKind::InvalidInput, OP).with_detail(format!(
                "Redis at {}: {}",
                origin.shown,
                e.details()
            ))
        })?;
        let unreachable = |detail: String| {
            Error::new(ErrorKind::Unavailable, OP).with_detail(format!(
                "cannot connect to Redis at {}: {detail}",
                origin.shown
            ))
        };
        let init = async {
            client.init().await?;
            data.init().await
        };
        match tokio::time::timeout(timeout + Duration::from_secs(1), init).await {
            Ok(Ok(_handle)) => {}
            Ok(Err(e)) if *e.kind() == fred::error::ErrorKind::Auth => {
                return Err(origin.error(OP, &e, None));
            }
            Ok(Err(e)) => return Err(unreachable(errors::plain_details(&e))),
            Err(_) => return Err(unreachable(format!("no answer within {timeout:?}"))),
        }
        let shared = Arc::new(Shared {
            client,
            data,
            keys: Keys::new(&options.namespace),
            origin,
            chunk_size: options.chunk_size,
            cluster: options.is_cluster(),
            ids: IdGen::new(),
            pins: Mutex::new(HashMap::new()),
            live: Mutex::new(HashSet::new()),
            tasks: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        });
        let result = Self::prepare(&shared).await;
        let mut warnings = match result {
            Ok(warnings) => warnings,
            Err(e) => {
                let _ = shared.client.quit().await;
                let _ = shared.data.quit().await;
                return Err(e);
            }
        };
        match gc::sweep(&shared, gc::ORPHAN_GRACE).await {
            Ok(SweepReport { data: 0, dirs: 0 }) => {}
            Ok(r) => tracing::info!(
                namespace = options.namespace,
                "swept {} abandoned data ids and {} removed directories",
                r.data,
                r.dirs
            ),
            Err(e) => warnings.push(format!("could not sweep abandoned data: {}", e.reason())),
        }
        for warning in &warnings {
            tracing::warn!(namespace = options.namespace, "{warning}");
        }
        let stop = CancellationToken::new();
        tokio::spawn(gc::maintain(shared.clone(), stop.clone()));
        Ok(RedisStore {
            shared,
            warnings,
            stop,
        })
    }

    /// Checks every master's version and eviction policy, loads the scripts and initialises or
    /// checks the namespace. Returns the warnings.
    async fn prepare(shared: &Shared) -> Result<Vec<String>> {
        const OP: &str = "connect";
        let origin = &shared.origin;
        let client = &shared.client;
        let nodes = if shared.cluster {
            client
                .cached_cluster_state()
                .map(|s| s.unique_primary_nodes())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut infos = Vec::new();
        if nodes.is_empty() {
            let info: String = client
                .info(Some(InfoKind::All))
                .await
                .map_err(|e| origin.error(OP, &e, None))?;
            infos.push((origin.shown.clone(), info));
        } else {
            for node in nodes {
                let options = Options {
                    cluster_node: Some(node.clone()),
                    ..Options::default()
                };
                let info: String = client
                    .with_options(&options)
                    .info(Some(InfoKind::All))
                    .await
                    .map_err(|e| origin.error(OP, &e, None))?;
                infos.push((format!("{}:{}", node.host, node.port), info));
            }
        }
        let mut warnings = Vec::new();
        for (node, info) in &infos {
            let field = |name: &str| {
                info.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
            };
            let version = field("redis_version").unwrap_or("0");
            let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
            if (major, minor) < MIN_VERSION {
                return Err(Error::new(ErrorKind::Unsupported, OP).with_detail(format!(
                    "Redis at {node} is version {version}; MAVFS needs 7.0 or newer"
                )));
            }
            if let Some(policy) = field("maxmemory_policy")
                && policy.starts_with("allkeys-")
            {
                warnings.push(format!(
                    "Redis at {node} evicts keys when full (maxmemory-policy {policy}): an \
                     evicted chunk is lost data; set maxmemory-policy to noeviction"
                ));
            }
        }
        for script in SCRIPTS.all() {
            script
                .load(client)
                .await
                .map_err(|e| origin.error(OP, &e, None))?;
        }
        let reply = shared
            .run(OP, &SCRIPTS.init, vec![LAYOUT.to_string()])
            .await?;
        if reply.first().and_then(text) == Some("LAYOUT") {
            let found = reply.get(1).and_then(text).unwrap_or("?");
            return Err(Error::new(ErrorKind::Io, OP).with_detail(format!(
                "namespace {} at {} holds key layout {found}; this MAVFS uses layout {LAYOUT}",
                shared.keys.namespace(),
                origin.shown
            )));
        }
        Ok(warnings)
    }

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

    /// The entry at `path`, or `None` for the root (whose mtime comes second).
    async fn entry(&self, op: &'static str, path: &VPath) -> Result<Entry> {
        let reply = self
            .shared
            .run(op, &SCRIPTS.stat, vec![path.as_str().to_string()])
            .await
            .map_err(|e| e.with_path(path))?;
        let value = reply.first().and_then(text).unwrap_or("");
        Entry::parse(value).ok_or_else(|| {
            self.shared
                .origin
                .bad_reply(op, &format!("entry {value:?}"))
                .with_path(path)
        })
    }

    fn path_arg(path: &VPath) -> String {
        path.as_str().to_string()
    }

    /// Entries of a flat `name, entry, ...` reply, into `out`; `seen` drops the duplicates that
    /// `HSCAN` may return.
    fn collect_entries(
        &self,
        path: &VPath,
        dir: &str,
        flat: &Value,
        seen: Option<&mut HashSet<String>>,
        out: &mut Vec<DirEntry>,
    ) -> Result<()> {
        let Value::Array(items) = flat else {
            return Err(self
                .shared
                .origin
                .bad_reply("list", "entries")
                .with_path(path));
        };
        let mut seen = seen;
        for pair in items.chunks(2) {
            let (Some(name), Some(value)) =
                (pair.first().and_then(text), pair.get(1).and_then(text))
            else {
                return Err(self
                    .shared
                    .origin
                    .bad_reply("list", "entry")
                    .with_path(path));
            };
            if let Some(seen) = seen.as_deref_mut()
                && !seen.insert(name.to_string())
            {
                continue;
            }
            let entry = Entry::parse(value).ok_or_else(|| {
                self.shared
                    .origin
                    .script_error(
                        "list",
                        "CORRUPT",
                        &format!("{} field {name}", self.shared.keys.dir(dir)),
                    )
                    .with_path(path)
            })?;
            out.push(DirEntry {
                name: name.to_string(),
                meta: entry.meta(),
            });
        }
        Ok(())
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
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

impl Store for RedisStore {
    type Writer = RedisWriter;

    fn capability(&self) -> Capability {
        Capability {
            fast_copy: true,
            capacity: false,
        }
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        Ok(self.entry("stat", path).await?.meta())
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        const OP: &str = "list";
        let count = LIST_PAGE.to_string();
        let reply = self
            .shared
            .run(OP, &SCRIPTS.list, vec![Self::path_arg(path), count.clone()])
            .await
            .map_err(|e| e.with_path(path))?;
        let (Some(dir), Some(mut cursor), Some(flat)) = (
            reply.first().and_then(text).map(str::to_string),
            reply.get(1).and_then(text).map(str::to_string),
            reply.get(2),
        ) else {
            return Err(self.shared.origin.bad_reply(OP, "listing").with_path(path));
        };
        let mut out = Vec::new();
        if cursor == "0" {
            self.collect_entries(path, &dir, flat, None, &mut out)?;
            return Ok(out);
        }
        let mut seen = HashSet::new();
        self.collect_entries(path, &dir, flat, Some(&mut seen), &mut out)?;
        while cursor != "0" {
            let reply = self
                .shared
                .run(
                    OP,
                    &SCRIPTS.list_page,
                    vec![dir.clone(), cursor.clone(), count.clone()],
                )
                .await
                .map_err(|e| e.with_path(path))?;
            let (Some(next), Some(flat)) = (reply.first().and_then(text), reply.get(1)) else {
                return Err(self.shared.origin.bad_reply(OP, "page").with_path(path));
            };
            cursor = next.to_string();
            self.collect_entries(path, &dir, flat, Some(&mut seen), &mut out)?;
        }
        Ok(out)
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        let flag = if parents { "1" } else { "0" };
        self.shared
            .run(
                "mkdir",
                &SCRIPTS.mkdir,
                vec![Self::path_arg(path), flag.to_string()],
            )
            .await
            .map(|_| ())
            .map_err(|e| e.with_path(path))
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        self.shared
            .run("touch", &SCRIPTS.touch, vec![Self::path_arg(path)])
            .await
            .map(|_| ())
            .map_err(|e| e.with_path(path))
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        let reply = self
            .shared
            .run("rm", &SCRIPTS.remove_file, vec![Self::path_arg(path)])
            .await
            .map_err(|e| e.with_path(path))?;
        if let Some(dead) = reply.first().and_then(text).filter(|d| !d.is_empty()) {
            retire(&self.shared, dead.to_string());
        }
        Ok(())
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        self.shared
            .run("rmdir", &SCRIPTS.remove_dir, vec![Self::path_arg(path)])
            .await
            .map(|_| ())
            .map_err(|e| e.with_path(path))
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        let reply = self
            .shared
            .run("rm", &SCRIPTS.detach, vec![Self::path_arg(path)])
            .await
            .map_err(|e| e.with_path(path))?;
        let Some(id) = reply.first().and_then(text) else {
            return Err(self
                .shared
                .origin
                .bad_reply("rm", "directory id")
                .with_path(path));
        };
        // The directory is gone from the tree now; what follows only frees its contents. If it
        // fails, the id stays in `trash` and a later sweep finishes the job.
        if let Err(e) = gc::purge_tree(&self.shared, id.to_string()).await {
            tracing::warn!(
                namespace = self.shared.keys.namespace(),
                "{path}: removed; freeing its contents failed and is left to a sweep: {e}"
            );
        }
        Ok(())
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        const OP: &str = "mv";
        crate::store::refuse_root_rename(OP, from, to)?;
        let reply = self
            .shared
            .run_about(
                OP,
                &SCRIPTS.rename,
                vec![Self::path_arg(from), Self::path_arg(to)],
            )
            .await
            .map_err(|(e, about)| {
                if e.kind() == ErrorKind::InvalidInput {
                    e.with_path(to)
                        .with_detail(format!("cannot move {from} into itself"))
                } else {
                    name_path(e, &about, from, to)
                }
            })?;
        if let Some(dead) = reply.first().and_then(text).filter(|d| !d.is_empty()) {
            retire(&self.shared, dead.to_string());
        }
        Ok(())
    }

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        // One round trip in the actor finds the file and pins its data; the chunks stream
        // outside it. The open is handed out ready.
        const OP: &str = "read";
        match self.entry(OP, path).await? {
            Entry::Dir { .. } => Err(Error::new(ErrorKind::IsADirectory, OP).with_path(path)),
            Entry::File {
                size,
                chunk_size,
                data,
                place,
                ..
            } => {
                let pin = self.shared.pin(&data);
                let file = FileData {
                    size,
                    chunk_size,
                    data,
                    place,
                };
                let reader = FileReader {
                    size,
                    chunks: reader::chunks(self.shared.clone(), path.clone(), file, pin),
                };
                Ok(futures::future::ready(Ok(reader)).boxed())
            }
        }
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<RedisWriter> {
        const OP: &str = "write";
        let data = self.shared.ids.next();
        let append = if mode == WriteMode::Append { "1" } else { "0" };
        let reply = self
            .shared
            .run(
                OP,
                &SCRIPTS.open,
                vec![
                    Self::path_arg(path),
                    data.clone(),
                    self.shared.chunk_size.to_string(),
                    append.to_string(),
                ],
            )
            .await
            .map_err(|e| e.with_path(path))?;
        let (Some(member), Some(old)) = (reply.first().and_then(text), reply.get(1).and_then(text))
        else {
            return Err(self.shared.origin.bad_reply(OP, "open").with_path(path));
        };
        let member = member.to_string();
        self.shared.keep_alive(&member);
        let place = member.split('|').nth(1).unwrap_or(&data).to_string();
        let prefill = match (mode, Entry::parse(old)) {
            (
                WriteMode::Append,
                Some(Entry::File {
                    size,
                    chunk_size,
                    data: old_data,
                    place: old_place,
                    ..
                }),
            ) if size > 0 => Some(Prefill {
                size,
                chunk_size,
                pin: self.shared.pin(&old_data),
                data: old_data,
                place: old_place,
            }),
            _ => None,
        };
        Ok(RedisWriter::new(
            self.shared.clone(),
            path.clone(),
            data,
            place,
            member,
            prefill,
        ))
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        staged: RedisStaged,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        // The commit is one script, run in the actor, and handed out ready.
        const OP: &str = "write";
        match self
            .shared
            .run(OP, &SCRIPTS.commit, staged.commit_args(path))
            .await
        {
            Ok(reply) => {
                staged.committed();
                if let Some(dead) = reply.first().and_then(text).filter(|d| !d.is_empty()) {
                    retire(&self.shared, dead.to_string());
                }
                Ok(futures::future::ready(Ok(())).boxed())
            }
            Err(e) if is_ambiguous(&e) => {
                tracing::debug!(member = staged.member(), "commit outcome unknown: {e}");
                staged.abandon();
                Err(e.with_path(path))
            }
            // `staged` drops here and deletes its chunks; the old file is untouched.
            Err(e) => Err(e.with_path(path)),
        }
    }

    async fn start_read_files(
        &mut self,
        paths: Vec<VPath>,
        limit: u64,
    ) -> Result<BatchFuture<WholeRead>> {
        // Nothing needs the actor: the batch's round trips run in the caller.
        Ok(batch::read_files(self.shared.clone(), paths, limit).boxed())
    }

    async fn start_write_files(&mut self, files: Vec<WholeFile>) -> Result<BatchFuture<()>> {
        Ok(batch::write_files(self.shared.clone(), files).boxed())
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<RedisStaged>>> {
        const OP: &str = "cp";
        let data = self.shared.ids.next();
        let reply = self
            .shared
            .run_about(
                OP,
                &SCRIPTS.copy,
                vec![Self::path_arg(from), Self::path_arg(to), data.clone()],
            )
            .await
            .map_err(|(e, about)| name_path(e, &about, from, to))?;
        let (Some(member), Some(source)) = (
            reply.first().and_then(text),
            reply.get(1).and_then(text).and_then(Entry::parse),
        ) else {
            return Err(self.shared.origin.bad_reply(OP, "copy").with_path(to));
        };
        let member = member.to_string();
        self.shared.keep_alive(&member);
        let place = member.split('|').nth(1).unwrap_or(&data).to_string();
        let Entry::File {
            size,
            chunk_size,
            data: src_data,
            ..
        } = &source
        else {
            return Err(Error::new(ErrorKind::IsADirectory, OP).with_path(from));
        };
        let chunks = chunk_count(*size, *chunk_size);
        let pin: Option<Pin> = self.shared.pin(src_data);
        let src_data = src_data.clone();
        // Created now, so that dropping the copy at any point discards what it made.
        let staged = RedisStaged::for_copy(
            self.shared.clone(),
            data.clone(),
            place.clone(),
            member,
            &source,
        );
        let shared = self.shared.clone();
        let to = to.clone();
        Ok(async move {
            copy_chunks(&shared, &to, &place, &src_data, &data, 0..chunks).await?;
            drop(pin);
            Ok(staged)
        }
        .boxed())
    }

    async fn usage(&mut self) -> Result<Usage> {
        const OP: &str = "stats";
        let reply = self.shared.run(OP, &SCRIPTS.usage, Vec::new()).await?;
        let number = |i: usize| reply.get(i).and_then(integer).unwrap_or(0).max(0) as u64;
        let capacity = if self.shared.cluster {
            None
        } else {
            let info: String = self
                .shared
                .client
                .info(Some(InfoKind::Memory))
                .await
                .map_err(|e| self.shared.origin.error(OP, &e, None))?;
            info.lines()
                .find_map(|l| l.strip_prefix("maxmemory:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&m| m > 0)
        };
        Ok(Usage {
            files: number(0),
            dirs: number(1),
            bytes: number(2),
            capacity,
        })
    }
}

/// Names the path a two-path script's error is about: `to` when the script said so.
fn name_path(err: Error, about: &str, from: &VPath, to: &VPath) -> Error {
    if about == "to" {
        err.with_path(to)
    } else {
        err.with_path(from)
    }
}
