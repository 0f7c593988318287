//! Getting rid of data: deleting chunks, deferring that for local readers, sweeping what crashed
//! processes left, purging removed trees, and the heartbeat that keeps live data from sweepers.
//!
//! Every data id that has chunks and is not the data of a committed file is a member of the
//! `pending` sorted set, scored with the last time someone vouched for it (Redis server time, in
//! ms): staged data (`<data>|<place>`) from the moment a write or copy opens until its commit
//! removes it, dead data (`<data>|<place>|<chunks>`) from the moment a commit, remove or rename
//! drops it until its chunks are deleted. A member is removed only after its chunks are, so a
//! crash at any point leaves a member behind, never an untracked chunk. A sweeper deletes the
//! chunks of members nobody vouched for within the grace period; the process that owns a member
//! vouches for it every `HEARTBEAT`.
//!
//! Metadata, `pending` included, can be lost with the master holding its slot while chunks live
//! on: `sweep_epochs` finds those by scanning every master for the namespace's chunk keys, and
//! deletes the ones whose data id carries another epoch than the namespace's.

use std::collections::HashSet;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use fred::error::Error as FredError;
use fred::prelude::KeysInterface;
use fred::prelude::SortedSetsInterface;
use fred::types::scan::{ScanType, Scanner};
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use super::epoch::epoch_of;
use super::keys::Member;
use super::scripts::SCRIPTS;
use super::shared::{PinState, Shared, integer, text};
use crate::error::Result;

/// How often a store vouches for the pending members it keeps alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long a pending member may go without a heartbeat before a sweeper takes it: ten missed
/// heartbeats, so a live process never loses its staged data to a sweeper.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(300);
/// How often a running store sweeps, besides at connect.
const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// Chunk keys per `UNLINK` on a single node.
const UNLINK_BATCH: usize = 256;
/// Deletion commands in flight at once.
const DELETE_CONCURRENCY: usize = 64;
/// Chunk keys probed per step when deleting staged data of unknown length. Writers and copies
/// keep at most [`super::writer::WRITE_AHEAD`] and [`super::COPY_CONCURRENCY`] commands in
/// flight, so past the last chunk that landed there are fewer holes than this: a whole empty
/// probe means the end.
const PROBE: u64 = 128;
/// Keys a `SCAN` step of [`sweep_epochs`] looks at, per master.
const SCAN_COUNT: u32 = 1000;
/// Entries a purge step takes from a removed directory.
const PURGE_BATCH: usize = 500;

/// A pin on data id `data`: while one exists, this process defers deleting that data.
pub(crate) struct Pin {
    shared: Arc<Shared>,
    data: String,
}

impl Shared {
    /// Pins `data` (nothing for a file without data).
    pub(crate) fn pin(self: &Arc<Self>, data: &str) -> Option<Pin> {
        if data.is_empty() {
            return None;
        }
        let mut pins = self.pins.lock().expect("pins lock");
        pins.entry(data.to_string()).or_default().count += 1;
        Some(Pin {
            shared: self.clone(),
            data: data.to_string(),
        })
    }

    /// Spawns `task` on the store's runtime, tracked so that shutdown waits for it.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn_on(task, &self.runtime);
    }

    pub(crate) fn keep_alive(&self, member: &str) {
        self.live
            .lock()
            .expect("live lock")
            .insert(member.to_string());
    }

    pub(crate) fn let_go(&self, member: &str) {
        self.live.lock().expect("live lock").remove(member);
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let released = {
            let mut pins = self.shared.pins.lock().expect("pins lock");
            match pins.get_mut(&self.data) {
                Some(state) if state.count > 1 => {
                    state.count -= 1;
                    Vec::new()
                }
                Some(_) => pins
                    .remove(&self.data)
                    .map_or_else(Vec::new, |s| s.deferred),
                None => Vec::new(),
            }
        };
        for member in released {
            retire(&self.shared, member);
        }
    }
}

/// Deletes dead data `member` (as a commit, remove or rename returned it) in the background, or
/// once the last local pin on it goes.
pub(crate) fn retire(shared: &Arc<Shared>, member: String) {
    if deferred(shared, &member) {
        return;
    }
    let owned = shared.clone();
    shared.spawn(async move {
        if let Err(e) = delete_member(&owned, &member).await {
            // The member stays in `pending`: a later sweep deletes it.
            tracing::warn!(namespace = owned.keys.namespace(), %member, "deleting data: {e}");
        }
        owned.let_go(&member);
    });
}

/// Deletes the chunks of staged data this process gave up (a dropped writer, a failed copy),
/// after the commands still in flight for it have ended, then its member.
pub(crate) fn discard(
    shared: &Arc<Shared>,
    member: String,
    chunks: u64,
    inflight: impl Future<Output = ()> + Send + 'static,
) {
    let owned = shared.clone();
    shared.spawn(async move {
        inflight.await;
        let result = async {
            let m = Member::parse(&member).expect("members this process made parse");
            delete_chunks(&owned, &m.data, &m.place, 0..chunks).await?;
            forget(&owned, &member).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(namespace = owned.keys.namespace(), %member, "discarding staged data: {e}");
        }
        owned.let_go(&member);
    });
}

/// Whether deleting dead data `member` waits for local pins on its data (or it is not ours to
/// delete): then it is deleted when the last pin goes.
fn deferred(shared: &Shared, member: &str) -> bool {
    let Some(parsed) = Member::parse(member) else {
        return true;
    };
    let mut pins = shared.pins.lock().expect("pins lock");
    if let Some(PinState { count, deferred }) = pins.get_mut(&parsed.data)
        && *count > 0
    {
        deferred.push(member.to_string());
        drop(pins);
        shared.keep_alive(member);
        return true;
    }
    false
}

/// Deletes dead data `members` together, as [`retire`] would one by one, and waits for it: the
/// chunk keys of all of them in batched `UNLINK`s, then the members in batched `ZREM`s (a member
/// goes only after its chunks). For `rm -r`, which frees a tree's data a batch at a time: a
/// task per member let an `rm -r` of 200,000 copied files queue 200,000 deletions faster than
/// Redis took them, about 1 KiB of client memory each. Errors: the first failed command; the
/// members not deleted stay in `pending` for a sweep.
async fn retire_all(shared: &Shared, members: Vec<String>) -> Result<(), FredError> {
    let members: Vec<String> = members
        .into_iter()
        .filter(|member| !deferred(shared, member))
        .collect();
    let result = async {
        let (mut keys, mut known) = (Vec::new(), Vec::new());
        for member in &members {
            let m = Member::parse(member).expect("deferred() keeps only members that parse");
            match m.chunks {
                Some(n) => {
                    keys.extend(chunk_keys(shared, &m.data, &m.place, 0..n));
                    known.push(member.clone());
                }
                // Staged data of unknown length: probed and forgotten on its own, as `retire`
                // does.
                None => delete_member(shared, member).await?,
            }
        }
        unlink(shared, keys).await?;
        for batch in known.chunks(UNLINK_BATCH) {
            shared
                .client
                .zrem::<i64, _, _>(shared.keys.pending(), batch.to_vec())
                .await?;
        }
        Ok(())
    }
    .await;
    for member in &members {
        shared.let_go(member);
    }
    result
}

/// Deletes a member's chunks, then the member.
async fn delete_member(shared: &Shared, member: &str) -> Result<(), FredError> {
    let Some(m) = Member::parse(member) else {
        // Not ours to interpret: drop the entry, which holds no data of its own.
        return forget(shared, member).await;
    };
    match m.chunks {
        Some(n) => {
            delete_chunks(shared, &m.data, &m.place, 0..n).await?;
        }
        None => {
            let mut start = 0;
            loop {
                let deleted =
                    delete_chunks(shared, &m.data, &m.place, start..start + PROBE).await?;
                if deleted == 0 {
                    break;
                }
                start += PROBE;
            }
        }
    }
    forget(shared, member).await
}

async fn forget(shared: &Shared, member: &str) -> Result<(), FredError> {
    shared
        .client
        .zrem::<i64, _, _>(shared.keys.pending(), member)
        .await
        .map(|_| ())
}

/// Unlinks chunks `range` of `data`; returns how many existed.
pub(crate) async fn delete_chunks(
    shared: &Shared,
    data: &str,
    place: &str,
    range: Range<u64>,
) -> Result<u64, FredError> {
    unlink(shared, chunk_keys(shared, data, place, range).collect()).await
}

/// The keys of chunks `range` of `data`, placed by `place`.
fn chunk_keys<'a>(
    shared: &'a Shared,
    data: &'a str,
    place: &'a str,
    range: Range<u64>,
) -> impl Iterator<Item = String> + 'a {
    range.map(move |i| shared.keys.chunk(place, i, data))
}

/// Unlinks `keys`; returns how many existed.
async fn unlink(shared: &Shared, keys: Vec<String>) -> Result<u64, FredError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let counts: Vec<i64> = if shared.cluster {
        // Chunk keys live in different slots: one key per command.
        futures::stream::iter(keys)
            .map(|key| shared.client.unlink::<i64, _>(key))
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect()
            .await?
    } else {
        futures::stream::iter(keys.chunks(UNLINK_BATCH).map(<[String]>::to_vec))
            .map(|batch| shared.client.unlink::<i64, _>(batch))
            .buffer_unordered(DELETE_CONCURRENCY / 8)
            .try_collect()
            .await?
    };
    Ok(counts.into_iter().map(|n| n.max(0) as u64).sum())
}

/// Deletes, on every master, the chunks of the namespace whose data id carries another epoch
/// than the namespace's, then records that no scan is owed any more; returns how many it
/// deleted. `connect` runs it when it finds the scan owed, that is when the namespace's
/// metadata was just created: perhaps because the server holding it lost it (a restart without
/// persistence), leaving chunks on the other masters of a cluster that nothing tracks any more.
///
/// Safe for every chunk it deletes: a data id of another epoch was made by a store whose
/// scripts all fail now (the epoch in `meta` is not theirs), so no file can point at it and no
/// writer can commit it. Ids made before epochs carry none and are left alone: their owner
/// cannot be known.
pub(crate) async fn sweep_epochs(shared: &Shared) -> Result<u64> {
    const OP: &str = "sweep";
    let epoch = shared.session().epoch.as_str();
    let pattern = shared.keys.chunk_pattern();
    let count = Some(SCAN_COUNT);
    let kind = Some(ScanType::String);
    let mut pages = if shared.cluster {
        shared.client.scan_cluster(pattern, count, kind).boxed()
    } else {
        shared.client.scan(pattern, count, kind).boxed()
    };
    let mut deleted = 0;
    while let Some(page) = pages.next().await {
        let mut page = page.map_err(|e| shared.origin.error(OP, &e, None))?;
        let keys = page.take_results().unwrap_or_default();
        // The next page is asked for while this one's stale keys are deleted.
        page.next();
        let stale: Vec<String> = keys
            .iter()
            .filter_map(|key| key.as_str())
            .filter(|key| {
                shared
                    .keys
                    .chunk_data(key)
                    .and_then(epoch_of)
                    .is_some_and(|of| of != epoch)
            })
            .map(str::to_string)
            .collect();
        deleted += unlink(shared, stale)
            .await
            .map_err(|e| shared.origin.error(OP, &e, None))?;
    }
    shared.run(OP, &SCRIPTS.scanned, Vec::new()).await?;
    Ok(deleted)
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Staged or dead data ids whose chunks were deleted.
    pub data: u64,
    /// Removed directories whose contents were purged.
    pub dirs: u64,
}

/// Deletes the data of pending members nobody vouched for within `grace` (except those this
/// process keeps alive) and purges every directory left in `trash`.
pub(crate) async fn sweep(shared: &Arc<Shared>, grace: Duration) -> Result<SweepReport> {
    const OP: &str = "sweep";
    let mut report = SweepReport::default();
    let mut seen = HashSet::new();
    loop {
        let grace_ms = grace.as_millis().to_string();
        let reply = shared
            .run(OP, &SCRIPTS.claim, vec![grace_ms, "100".to_string()])
            .await?;
        let members: Vec<String> = match reply.first() {
            Some(fred::prelude::Value::Array(items)) => {
                items.iter().filter_map(text).map(str::to_string).collect()
            }
            _ => Vec::new(),
        };
        let fresh: Vec<String> = members
            .into_iter()
            .filter(|m| seen.insert(m.clone()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        let live = shared.live.lock().expect("live lock").clone();
        let orphans: Vec<String> = fresh.into_iter().filter(|m| !live.contains(m)).collect();
        report.data += orphans.len() as u64;
        futures::stream::iter(orphans)
            .map(|m| async move { delete_member(shared, &m).await })
            .buffer_unordered(8)
            .try_collect::<()>()
            .await
            .map_err(|e| shared.origin.error(OP, &e, None))?;
    }
    loop {
        let reply = shared.run(OP, &SCRIPTS.trash, Vec::new()).await?;
        let ids: Vec<String> = match reply.first() {
            Some(fred::prelude::Value::Array(items)) => {
                items.iter().filter_map(text).map(str::to_string).collect()
            }
            _ => Vec::new(),
        };
        if ids.is_empty() {
            break;
        }
        for id in ids {
            purge_tree(shared, id).await?;
            report.dirs += 1;
        }
    }
    Ok(report)
}

/// Deletes everything below detached directory `id`: entries in batches, files' data retired,
/// subdirectories in turn.
pub(crate) async fn purge_tree(shared: &Arc<Shared>, id: String) -> Result<()> {
    const OP: &str = "rm";
    let mut stack = vec![id];
    while let Some(dir) = stack.pop() {
        let mut cursor = "0".to_string();
        loop {
            let args = vec![dir.clone(), cursor.clone(), PURGE_BATCH.to_string()];
            let reply = shared.run(OP, &SCRIPTS.purge, args).await?;
            if let Some(next) = reply.get(3).and_then(text) {
                cursor = next.to_string();
            }
            let done = reply.first().and_then(integer) == Some(1);
            if let Some(fred::prelude::Value::Array(dead)) = reply.get(1) {
                let dead = dead.iter().filter_map(text).map(str::to_string).collect();
                if let Err(e) = retire_all(shared, dead).await {
                    // Those members stay in `pending`: a later sweep deletes their data.
                    tracing::warn!(namespace = shared.keys.namespace(), "deleting data: {e}");
                }
            }
            if let Some(fred::prelude::Value::Array(dirs)) = reply.get(2) {
                stack.extend(dirs.iter().filter_map(text).map(str::to_string));
            }
            if done {
                break;
            }
        }
    }
    Ok(())
}

/// Vouches for every member this process keeps alive.
async fn heartbeat(shared: &Shared) -> Result<()> {
    let members: Vec<String> = shared
        .live
        .lock()
        .expect("live lock")
        .iter()
        .cloned()
        .collect();
    for batch in members.chunks(500) {
        shared
            .run("heartbeat", &SCRIPTS.heartbeat, batch.to_vec())
            .await?;
    }
    Ok(())
}

/// The store's background duty until `stop`: heartbeats, and a sweep now and then.
pub(crate) async fn maintain(shared: Arc<Shared>, stop: CancellationToken) {
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sweep_at = tokio::time::Instant::now() + SWEEP_EVERY;
    loop {
        tokio::select! {
            // Cancel safety: the other branch is a timer; a heartbeat cut short by the stop is
            // simply not sent.
            _ = stop.cancelled() => return,
            _ = beat.tick() => {}
        }
        if let Err(e) = heartbeat(&shared).await
            && !shared.is_lost()
        {
            tracing::warn!(namespace = shared.keys.namespace(), "heartbeat: {e}");
        }
        if shared.is_lost() {
            // Nothing to vouch for or sweep in a namespace this store no longer has; the loss
            // was logged once, and every operation's error says it.
            return;
        }
        if tokio::time::Instant::now() >= sweep_at {
            sweep_at = tokio::time::Instant::now() + SWEEP_EVERY;
            match sweep(&shared, ORPHAN_GRACE).await {
                Ok(r) if r != SweepReport::default() => tracing::info!(
                    namespace = shared.keys.namespace(),
                    "swept {} abandoned data ids and {} removed directories",
                    r.data,
                    r.dirs
                ),
                Ok(_) => {}
                Err(_) if shared.is_lost() => return,
                Err(e) => tracing::warn!(namespace = shared.keys.namespace(), "sweep: {e}"),
            }
        }
    }
}
