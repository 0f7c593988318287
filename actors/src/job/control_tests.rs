//! Suspend, continue and throttle, end to end through [`RouterHandle`], under tokio's paused
//! clock: two memory mounts wrapped in a store that counts every operation (chunks read and
//! written included) and the writers it has open, so "moves nothing" is checked on the meter and
//! on the stores alike. Rates are checked per virtual second, to within 5% of the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;

use crate::error::{ErrorKind, Result};
use crate::job::{EventKind, JobId, JobInfo, JobOptions, JobState};
use crate::mounts::{Mount, MountTable, Tier};
use crate::path::VPath;
use crate::router::RouterHandle;
use crate::store::memory::{MemoryStaged, MemoryStore, MemoryWriter};
use crate::store::{
    BackendKind, Capability, DirEntry, FileReader, FileWriter, ListCursor, ListPage, Meta, Store,
    Usage, Version, WriteMode,
};
use crate::transfer::{TransferKind, TransferRequest};

/// Virtual time: generous, since nothing here waits for real.
const TIMEOUT: Duration = Duration::from_secs(600);
const KIB: u64 = 1 << 10;
/// Small chunks, so that one chunk is well under 5% of a second's worth at the limits used.
const CHUNK: usize = 8 << 10;

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// What a counting store saw.
#[derive(Debug, Default)]
struct Counters {
    /// Every store operation, each chunk read or written counting as one.
    ops: AtomicU64,
    /// Writers open now, and the most ever open at once.
    writers: AtomicUsize,
    max_writers: AtomicUsize,
}

impl Counters {
    fn op(&self) {
        self.ops.fetch_add(1, Ordering::SeqCst);
    }

    fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }
}

/// A memory store that counts what it is asked to do.
struct Counting {
    inner: MemoryStore,
    counters: Arc<Counters>,
}

struct CountingWriter {
    inner: Option<MemoryWriter>,
    counters: Arc<Counters>,
}

impl Drop for CountingWriter {
    fn drop(&mut self) {
        self.counters.writers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FileWriter for CountingWriter {
    type Staged = MemoryStaged;

    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.counters.op();
        self.inner
            .as_mut()
            .expect("not finished")
            .write(chunk)
            .await
    }

    async fn finish(mut self) -> Result<MemoryStaged> {
        self.counters.op();
        self.inner.take().expect("not finished").finish().await
    }
}

impl Store for Counting {
    type Writer = CountingWriter;

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        self.counters.op();
        self.inner.stat(path).await
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        self.counters.op();
        self.inner.list(path).await
    }

    async fn list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        self.counters.op();
        self.inner.list_page(path, cursor, limit).await
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        self.counters.op();
        self.inner.mkdir(path, parents).await
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        self.counters.op();
        self.inner.touch(path).await
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        self.counters.op();
        self.inner.remove_file(path).await
    }

    async fn remove_file_if(&mut self, path: &VPath, version: &Version) -> Result<()> {
        self.counters.op();
        self.inner.remove_file_if(path, version).await
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        self.counters.op();
        self.inner.remove_dir(path).await
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        self.counters.op();
        self.inner.remove_all(path).await
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        self.counters.op();
        self.inner.rename(from, to).await
    }

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        self.counters.op();
        let open = self.inner.start_open_read(path).await?;
        let counters = self.counters.clone();
        Ok(async move {
            let reader = open.await?;
            Ok(FileReader {
                chunks: reader.chunks.inspect(move |_| counters.op()).boxed(),
                ..reader
            })
        }
        .boxed())
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<CountingWriter> {
        self.counters.op();
        let inner = self.inner.open_write(path, mode).await?;
        let open = self.counters.writers.fetch_add(1, Ordering::SeqCst) + 1;
        self.counters.max_writers.fetch_max(open, Ordering::SeqCst);
        Ok(CountingWriter {
            inner: Some(inner),
            counters: self.counters.clone(),
        })
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        staged: MemoryStaged,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        self.counters.op();
        self.inner.start_commit(path, staged).await
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<(MemoryStaged, u64)>>> {
        self.counters.op();
        self.inner.copy_file(from, to).await
    }

    async fn usage(&mut self) -> Result<Usage> {
        self.counters.op();
        self.inner.usage().await
    }
}

/// An engine over `/vram` (hot) and `/vdisk` (cold), both counting memory stores.
struct Rig {
    router: RouterHandle,
    counters: Arc<Counters>,
}

impl Rig {
    fn new() -> Rig {
        let counters = Arc::new(Counters::default());
        let mount = |path: &str, tier| {
            let store = Counting {
                inner: MemoryStore::new(None),
                counters: counters.clone(),
            };
            Mount::spawn(p(path), tier, BackendKind::Memory, store)
        };
        let table =
            MountTable::new(vec![mount("/vram", Tier::Hot), mount("/vdisk", Tier::Cold)]).unwrap();
        Rig {
            router: RouterHandle::spawn(table),
            counters,
        }
    }

    /// Writes `len` bytes at `path`, in [`CHUNK`]s, so that they stream back in chunks as small.
    async fn file(&self, path: &str, len: u64) {
        let mut writer = self
            .router
            .write(&p(path), WriteMode::Replace)
            .await
            .unwrap();
        let mut left = len;
        let mut i = 0u8;
        while left > 0 {
            let n = left.min(CHUNK as u64);
            writer
                .write(Bytes::from(vec![i; n as usize]))
                .await
                .unwrap();
            left -= n;
            i = i.wrapping_add(1);
        }
        writer.commit().await.unwrap();
    }

    async fn start(&self, kind: TransferKind, from: &str, to: &str, bwlimit: Option<u64>) -> JobId {
        self.start_j(kind, from, to, bwlimit, 4).await
    }

    async fn start_j(
        &self,
        kind: TransferKind,
        from: &str,
        to: &str,
        bwlimit: Option<u64>,
        jobs: usize,
    ) -> JobId {
        let request = TransferRequest {
            kind,
            sources: vec![p(from)],
            dest: p(to),
            dest_is_dir: false,
            recursive: true,
            jobs,
        };
        let label = format!("{} {from} {to}", kind.command());
        self.router
            .start_with(request, label, JobOptions { bwlimit })
            .await
            .unwrap()
    }

    async fn info(&self, id: JobId) -> JobInfo {
        let jobs = self.router.jobs().await.unwrap();
        jobs.into_iter().find(|j| j.id == id).unwrap()
    }

    async fn bytes(&self, id: JobId) -> u64 {
        self.info(id).await.progress.bytes_done
    }

    async fn exists(&self, path: &str) -> bool {
        match self.router.stat(&p(path)).await {
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => panic!("stat {path}: {e}"),
        }
    }

    async fn wait(&self, id: JobId) -> crate::job::JobOutcome {
        tokio::time::timeout(TIMEOUT, self.router.wait(id))
            .await
            .expect("the job ends")
            .unwrap()
    }
}

/// Sleeps until `at` after `start` on the paused clock.
async fn at(start: Instant, secs: f64) {
    tokio::time::sleep_until(start + Duration::from_secs_f64(secs)).await;
}

fn within_5_percent(got: u64, want: u64) {
    let (got, want) = (got as f64, want as f64);
    assert!(
        (got - want).abs() <= want * 0.05,
        "{got} bytes, want {want} within 5%"
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_limit_holds_per_virtual_second() {
    let rig = Rig::new();
    rig.file("/vram/f", 2 << 20).await;
    let limit = 256 * KIB;
    let start = Instant::now();
    let id = rig
        .start(TransferKind::Push, "/vram/f", "/vdisk/f", Some(limit))
        .await;
    assert_eq!(rig.info(id).await.bwlimit, Some(limit));
    let mut last = 0;
    for second in 1..=6 {
        at(start, second as f64).await;
        let now = rig.bytes(id).await;
        within_5_percent(now - last, limit);
        last = now;
    }
    let summary = rig.wait(id).await.unwrap();
    // 2 MiB at 256 KiB/s: 8 seconds, counted by the job's own clock too.
    let secs = summary.elapsed.as_secs_f64();
    assert!((secs - 8.0).abs() < 0.4, "took {secs} s");
}

#[tokio::test(start_paused = true)]
async fn small_file_batches_obey_the_limit() {
    let rig = Rig::new();
    rig.router.mkdir(&p("/vram/d"), false).await.unwrap();
    for i in 0..64 {
        rig.file(&format!("/vram/d/f{i}"), 16 * KIB).await;
    }
    let start = Instant::now();
    let id = rig
        .start(TransferKind::Push, "/vram/d", "/vdisk/d", Some(256 * KIB))
        .await;
    rig.wait(id).await.unwrap();
    // 1 MiB at 256 KiB/s.
    let secs = start.elapsed().as_secs_f64();
    assert!((secs - 4.0).abs() < 0.2, "took {secs} s");
    assert!(rig.exists("/vdisk/d/f63").await);
}

#[tokio::test(start_paused = true)]
async fn a_suspended_job_moves_nothing_and_continues_where_it_stopped() {
    let rig = Rig::new();
    rig.file("/vram/f", 1 << 20).await;
    let mut events = rig.router.subscribe();
    let start = Instant::now();
    let id = rig
        .start(TransferKind::Push, "/vram/f", "/vdisk/f", Some(256 * KIB))
        .await;
    at(start, 1.0).await;
    rig.router.suspend(id).await.unwrap();
    // Whatever was in flight settles within a tenth of a second.
    at(start, 1.1).await;
    let info = rig.info(id).await;
    assert_eq!(info.state, JobState::Stopped);
    let (bytes, ops) = (info.progress.bytes_done, rig.counters.ops());
    assert!(bytes > 0 && bytes < 1 << 20, "{bytes}");
    at(start, 6.1).await;
    assert_eq!(rig.bytes(id).await, bytes, "bytes moved while suspended");
    assert_eq!(rig.counters.ops(), ops, "store operations while suspended");
    // The file in flight keeps its writer, so continuing does not start it over.
    assert_eq!(rig.counters.writers.load(Ordering::SeqCst), 1);
    assert!(!rig.exists("/vdisk/f").await);

    rig.router.resume(id).await.unwrap();
    assert_eq!(rig.info(id).await.state, JobState::Running);
    let summary = rig.wait(id).await.unwrap();
    assert_eq!(summary.bytes, 1 << 20);
    assert_eq!(rig.bytes(id).await, 1 << 20, "a file started over");
    assert_eq!(rig.counters.max_writers.load(Ordering::SeqCst), 1);
    let same = |a: Vec<Bytes>, b: Vec<Bytes>| a.concat() == b.concat();
    assert!(same(
        read(&rig, "/vram/f").await,
        read(&rig, "/vdisk/f").await
    ));
    // 1 MiB at 256 KiB/s is 4 s of moving; the 5 s suspended do not count.
    let secs = summary.elapsed.as_secs_f64();
    assert!((secs - 4.0).abs() < 0.3, "elapsed {secs} s");

    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event.kind {
            EventKind::Stopped => kinds.push("stopped"),
            EventKind::Continued => kinds.push("continued"),
            k if k.is_terminal() => kinds.push("end"),
            _ => {}
        }
    }
    assert_eq!(kinds, ["stopped", "continued", "end"]);
}

async fn read(rig: &Rig, path: &str) -> Vec<Bytes> {
    let reader = rig.router.read(&p(path)).await.unwrap();
    reader.chunks.map(|c| c.unwrap()).collect().await
}

#[tokio::test(start_paused = true)]
async fn suspending_twice_or_an_ended_job() {
    let rig = Rig::new();
    rig.file("/vram/f", 64 * KIB).await;
    let mut events = rig.router.subscribe();
    let id = rig
        .start(TransferKind::Push, "/vram/f", "/vdisk/f", Some(16 * KIB))
        .await;
    rig.router.suspend(id).await.unwrap();
    rig.router.suspend(id).await.unwrap();
    rig.router.resume(id).await.unwrap();
    rig.router.resume(id).await.unwrap();
    rig.wait(id).await.unwrap();
    let mut stops = 0;
    while let Ok(event) = events.try_recv() {
        stops += matches!(event.kind, EventKind::Stopped | EventKind::Continued) as usize;
    }
    assert_eq!(stops, 2, "a repeated request publishes nothing");
    let ended = rig.router.suspend(id).await.unwrap_err();
    assert_eq!(ended.kind(), ErrorKind::InvalidInput);
    let ended = rig.router.throttle(id, None).await.unwrap_err();
    assert_eq!(ended.kind(), ErrorKind::InvalidInput);
    let unknown = rig.router.resume(JobId(99)).await.unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn a_suspended_job_cancelled_leaves_nothing_partial() {
    let rig = Rig::new();
    rig.router.mkdir(&p("/vram/d"), false).await.unwrap();
    rig.file("/vram/d/a", 4 * KIB).await;
    rig.file("/vram/d/b", 1 << 20).await;
    let start = Instant::now();
    let id = rig
        .start_j(
            TransferKind::Push,
            "/vram/d",
            "/vdisk/d",
            Some(256 * KIB),
            1,
        )
        .await;
    at(start, 1.0).await;
    rig.router.suspend(id).await.unwrap();
    at(start, 2.0).await;
    assert!(
        rig.exists("/vdisk/d/a").await,
        "the small file is committed first"
    );
    rig.router.cancel(id).await.unwrap();
    let outcome = rig.wait(id).await;
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(rig.info(id).await.state, JobState::Cancelled);
    assert!(rig.exists("/vdisk/d/a").await, "what was committed stays");
    assert!(!rig.exists("/vdisk/d/b").await);
    assert_eq!(rig.counters.writers.load(Ordering::SeqCst), 0);
    // Nothing staged is left holding space: the destination holds the small file only.
    let stats = rig.router.stats().await.unwrap();
    assert_eq!(stats[1].usage.bytes, 4 * KIB);
}

#[tokio::test(start_paused = true)]
async fn a_suspended_move_keeps_both_copies_of_the_file_in_flight() {
    let rig = Rig::new();
    rig.file("/vram/f", 1 << 20).await;
    let start = Instant::now();
    let id = rig
        .start(TransferKind::Move, "/vram/f", "/vdisk/f", Some(256 * KIB))
        .await;
    at(start, 1.0).await;
    rig.router.suspend(id).await.unwrap();
    at(start, 5.0).await;
    assert!(
        rig.exists("/vram/f").await,
        "the source stays while its copy is in flight"
    );
    assert!(
        !rig.exists("/vdisk/f").await,
        "the copy is staged, not visible"
    );
    rig.router.resume(id).await.unwrap();
    rig.wait(id).await.unwrap();
    assert!(!rig.exists("/vram/f").await);
    assert_eq!(rig.router.stat(&p("/vdisk/f")).await.unwrap().size, 1 << 20);
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_is_shared_by_all_jobs() {
    let rig = Rig::new();
    rig.file("/vram/a", 2 << 20).await;
    rig.file("/vram/b", 2 << 20).await;
    let limit = 512 * KIB;
    rig.router.throttle_all(Some(limit));
    assert_eq!(rig.router.global_limit(), Some(limit));
    let start = Instant::now();
    let a = rig
        .start(TransferKind::Push, "/vram/a", "/vdisk/a", None)
        .await;
    let b = rig
        .start(TransferKind::Push, "/vram/b", "/vdisk/b", None)
        .await;
    let mut last = 0;
    for second in 1..=4 {
        at(start, second as f64).await;
        let now = rig.bytes(a).await + rig.bytes(b).await;
        within_5_percent(now - last, limit);
        last = now;
    }
    // Both move: the bucket is shared, not taken by one job.
    assert!(rig.bytes(a).await > 512 * KIB && rig.bytes(b).await > 512 * KIB);
    rig.router.throttle_all(None);
    assert_eq!(rig.router.global_limit(), None);
    rig.wait(a).await.unwrap();
    rig.wait(b).await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "the limit went");
}

#[tokio::test(start_paused = true)]
async fn a_limit_changes_live_within_a_tenth_of_a_second() {
    let rig = Rig::new();
    rig.file("/vram/f", 4 << 20).await;
    let mut events = rig.router.subscribe();
    let start = Instant::now();
    let id = rig
        .start(TransferKind::Push, "/vram/f", "/vdisk/f", Some(128 * KIB))
        .await;
    at(start, 1.0).await;
    let before = rig.bytes(id).await;
    within_5_percent(before, 128 * KIB);
    rig.router.throttle(id, Some(KIB << 10)).await.unwrap();
    assert_eq!(rig.info(id).await.bwlimit, Some(1 << 20));
    // Within a tenth of a second the new rate holds.
    at(start, 1.1).await;
    let from = rig.bytes(id).await;
    at(start, 2.1).await;
    within_5_percent(rig.bytes(id).await - from, 1 << 20);
    rig.router.throttle(id, None).await.unwrap();
    assert_eq!(rig.info(id).await.bwlimit, None);
    rig.wait(id).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs_f64(2.3),
        "off means unlimited"
    );
    let mut limits = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::Throttled { bwlimit, jobs } = event.kind {
            limits.push((bwlimit, jobs));
        }
    }
    assert_eq!(limits, [(Some(1 << 20), 4), (None, 4)]);
}

#[tokio::test(start_paused = true)]
async fn files_at_once_change_live() {
    let rig = Rig::new();
    rig.router.mkdir(&p("/vram/d"), false).await.unwrap();
    for i in 0..6 {
        // Above the small-file size, so each file streams with its own writer.
        rig.file(
            &format!("/vram/d/f{i}"),
            crate::store::SMALL_FILE_MAX + 64 * KIB,
        )
        .await;
    }
    let start = Instant::now();
    let id = rig
        .start_j(
            TransferKind::Push,
            "/vram/d",
            "/vdisk/d",
            Some(256 * KIB),
            1,
        )
        .await;
    at(start, 0.25).await;
    assert_eq!(rig.counters.max_writers.load(Ordering::SeqCst), 1);
    rig.router.set_jobs(id, 3).await.unwrap();
    assert_eq!(rig.info(id).await.jobs, 3);
    at(start, 0.35).await;
    assert_eq!(rig.counters.writers.load(Ordering::SeqCst), 3);
    rig.router.throttle(id, None).await.unwrap();
    rig.wait(id).await.unwrap();
    assert_eq!(rig.counters.max_writers.load(Ordering::SeqCst), 3);
}
