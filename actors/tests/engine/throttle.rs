//! Every store pair obeys a limit, small files included: memory, disk and Redis (a private
//! `redis-server`) as source and destination, on two mounts and within one, each moving a few
//! large files under a job's own limit (`--bwlimit`) and a tree of small files (moved in
//! batches) under the engine's shared limit (`throttle all`).
//!
//! Real stores on a real clock, on a shared machine that may be slow: so nothing here has an
//! upper bound on time. What a limit guarantees holds however slow the machine is:
//! - a job cannot finish sooner than its bytes at the limit, less [`BURST`] (the most unused rate
//!   a bucket may start with);
//! - at every moment, what the job's meter counts is at most the limit times the time since the
//!   job started, plus the same allowance: nothing more than the burst moves in the first
//!   instants, or later;
//! - the meter's totals are the job's bytes and files, and the copies are whole.
//!
//! The routes run side by side, each in an engine of its own, so the test takes about as long as
//! one route.

use std::any::Any;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::job::JobOptions;
use mavfs_actors::store::WriteMode;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::store::redis::{RedisOptions, RedisStore};
use mavfs_actors::transfer::{BURST, TransferKind, TransferRequest};
use mavfs_actors::{BackendKind, Mount, MountTable, RouterHandle, Tier, VPath};
use tokio::time::timeout;

use mavfs_test_support::redis as redis_support;

/// Chunk size of the stores' read streams and of the test's writes.
const CHUNK: usize = 64 << 10;
const KIB: u64 = 1 << 10;
/// Large files: streamed, a few chunks each.
const LARGE_FILES: usize = 4;
const LARGE_SIZE: usize = 4 * CHUNK;
/// The job's own limit for the large files: 1 MiB in half a second.
const LARGE_LIMIT: u64 = 2048 * KIB;
/// Small files: moved whole, in batches, spread over a few directories.
const SMALL_FILES: usize = 192;
const SMALL_SIZE: usize = 4 << 10;
/// The engine's shared limit for the small files: 768 KiB in half a second.
const SMALL_LIMIT: u64 = 1536 * KIB;
/// How often the meter is sampled while a job runs.
const SAMPLE: Duration = Duration::from_millis(5);
/// Guards against hangs only.
const TIMEOUT: Duration = Duration::from_secs(120);

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// One pattern per file, so that swapped or partial files show.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + seed * 7 + i / 253) as u8)
        .collect()
}

/// A store behind its backend, and what must live as long as it (a temporary directory).
struct Made {
    backend: BackendHandle,
    kind: BackendKind,
    _keep: Box<dyn Any + Send>,
}

const STORES: [&str; 3] = ["memory", "disk", "redis"];

/// A fresh store of kind `name` mounted at `mount`; `None` when it cannot run here (no
/// `redis-server`, which fails instead with `MAVFS_REQUIRE_REDIS=1`).
async fn make(name: &str, mount: &str) -> Option<Made> {
    let mount = p(mount);
    let made = match name {
        "memory" => Made {
            backend: BackendHandle::spawn(mount, BackendKind::Memory, MemoryStore::new(None)),
            kind: BackendKind::Memory,
            _keep: Box::new(()),
        },
        "disk" => {
            let dir = tempfile::tempdir().unwrap();
            let options = DiskOptions {
                chunk_size: CHUNK,
                ..DiskOptions::default()
            };
            let store = DiskStore::open(dir.path(), options).unwrap();
            Made {
                backend: BackendHandle::spawn(mount, BackendKind::Disk, store),
                kind: BackendKind::Disk,
                _keep: Box::new(dir),
            }
        }
        "redis" => {
            let server = redis_support::shared_server("throttled Redis routes")?;
            let options = RedisOptions {
                url: Some(server.url()),
                namespace: redis_support::namespace("throttle"),
                chunk_size: CHUNK,
                command_timeout: Duration::from_secs(30),
                ..RedisOptions::default()
            };
            let store = RedisStore::connect(options).await.unwrap();
            Made {
                backend: BackendHandle::spawn(mount, BackendKind::Redis, store),
                kind: BackendKind::Redis,
                _keep: Box::new(()),
            }
        }
        other => unreachable!("no store {other}"),
    };
    Some(made)
}

/// A route: an engine with its source directory `from` and the destination `to` to create.
struct Route {
    name: String,
    router: RouterHandle,
    from: &'static str,
    to: &'static str,
    _keep: Vec<Box<dyn Any + Send>>,
}

impl Route {
    /// Every ordered pair of stores on two mounts, and every store within one mount.
    async fn all() -> Vec<Route> {
        let mut routes = Vec::new();
        for src in STORES {
            for dst in STORES {
                let (Some(a), Some(b)) = (make(src, "/src").await, make(dst, "/dst").await) else {
                    continue;
                };
                routes.push(Route::new(
                    format!("{src} -> {dst}"),
                    vec![("/src", a), ("/dst", b)],
                    "/dst/out",
                ));
            }
            if let Some(a) = make(src, "/src").await {
                let name = format!("{src} -> same mount");
                routes.push(Route::new(name, vec![("/src", a)], "/src/out"));
            }
        }
        routes
    }

    fn new(name: String, mounts: Vec<(&str, Made)>, to: &'static str) -> Route {
        let mut table = Vec::new();
        let mut keep = Vec::new();
        for (i, (path, made)) in mounts.into_iter().enumerate() {
            let tier = if i == 0 { Tier::Hot } else { Tier::Cold };
            assert_eq!(made.backend.kind(), made.kind);
            table.push(Mount::new(p(path), tier, made.backend));
            keep.push(made._keep);
        }
        Route {
            name,
            router: RouterHandle::spawn(MountTable::new(table).unwrap()),
            from: "/src/in",
            to,
            _keep: keep,
        }
    }

    async fn write(&self, path: &str, data: &[u8]) {
        let mut w = self
            .router
            .write(&p(path), WriteMode::Replace)
            .await
            .unwrap();
        for chunk in data.chunks(CHUNK) {
            w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        w.commit().await.unwrap();
    }

    async fn read(&self, path: &str) -> Vec<u8> {
        let mut reader = self.router.read(&p(path)).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = reader.chunks.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    /// Writes `files` (paths relative to `dir`) under `/src/in/dir`.
    async fn build(&self, dir: &str, files: &[(String, Vec<u8>)]) {
        self.router
            .mkdir(&p(&format!("{}/{dir}", self.from)), true)
            .await
            .unwrap();
        for (rel, data) in files {
            let path = format!("{}/{dir}/{rel}", self.from);
            if let Some((parent, _)) = path.rsplit_once('/') {
                self.router.mkdir(&p(parent), true).await.unwrap();
            }
            self.write(&path, data).await;
        }
    }

    /// Copies `/src/in/dir` to `to/dir` as a job under `limit` (its own with `own`, else the
    /// engine's shared one), checking the meter against the limit while it runs and its totals
    /// after.
    async fn throttled_copy(&self, dir: &str, limit: u64, own: bool, files: u64, bytes: u64) {
        let ctx = format!("{}, {dir}", self.name);
        self.router.mkdir(&p(self.to), true).await.unwrap();
        let request = TransferRequest {
            kind: TransferKind::Copy,
            sources: vec![p(&format!("{}/{dir}", self.from))],
            dest: p(&format!("{}/{dir}", self.to)),
            dest_is_dir: false,
            recursive: true,
            jobs: 4,
        };
        let options = JobOptions {
            bwlimit: own.then_some(limit),
        };
        self.router
            .throttle_all(if own { None } else { Some(limit) });
        let allowance = limit as f64 * BURST.as_secs_f64();
        let start = Instant::now();
        let id = self
            .router
            .start_with(request, format!("cp {dir}"), options)
            .await
            .unwrap();
        let wait = self.router.wait(id);
        tokio::pin!(wait);
        let mut samples = 0;
        let outcome = timeout(TIMEOUT, async {
            loop {
                tokio::select! {
                    outcome = &mut wait => break outcome,
                    () = tokio::time::sleep(SAMPLE) => {
                        let jobs = self.router.jobs().await.unwrap();
                        // Read after the reply, so the bound is the loosest it can be.
                        let secs = start.elapsed().as_secs_f64();
                        let job = jobs.iter().find(|j| j.id == id).unwrap();
                        let moved = job.progress.bytes_done as f64;
                        assert!(
                            moved <= limit as f64 * secs + allowance,
                            "{ctx}: {moved} bytes moved {secs:.3} s after the start, over \
                             {limit} B/s plus the burst"
                        );
                        samples += 1;
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{ctx}: hung"));
        let secs = start.elapsed().as_secs_f64();
        let summary = outcome.unwrap().unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let least = bytes as f64 / limit as f64 - BURST.as_secs_f64();
        assert!(
            secs >= least,
            "{ctx}: {bytes} bytes at {limit} B/s in {secs:.3} s, sooner than {least:.3} s"
        );
        assert!(samples > 0, "{ctx}: never sampled");
        assert_eq!((summary.files, summary.bytes), (files, bytes), "{ctx}");
        let info = self.router.jobs().await.unwrap();
        let job = info.iter().find(|j| j.id == id).unwrap();
        let p = &job.progress;
        assert_eq!(
            (p.files_done, p.bytes_done, p.files_total, p.bytes_total),
            (files, bytes, files, bytes),
            "{ctx}: the meter's totals"
        );
        assert_eq!(job.bwlimit, own.then_some(limit), "{ctx}: the job's limit");
    }

    async fn assert_copied(&self, dir: &str, files: &[(String, Vec<u8>)]) {
        for (rel, data) in files {
            let got = self.read(&format!("{}/{dir}/{rel}", self.to)).await;
            assert!(got == *data, "{}: {dir}/{rel} differs", self.name);
        }
    }

    /// Both workloads, one after the other.
    async fn run(self) {
        let large: Vec<(String, Vec<u8>)> = (0..LARGE_FILES)
            .map(|i| (format!("big{i}"), pattern(LARGE_SIZE, i)))
            .collect();
        let small: Vec<(String, Vec<u8>)> = (0..SMALL_FILES)
            .map(|i| (format!("d{}/f{i:03}", i % 3), pattern(SMALL_SIZE, i)))
            .collect();
        self.build("large", &large).await;
        self.build("small", &small).await;
        let total = |files: &[(String, Vec<u8>)]| {
            let bytes = files.iter().map(|(_, d)| d.len() as u64).sum();
            (files.len() as u64, bytes)
        };
        let (n, b) = total(&large);
        self.throttled_copy("large", LARGE_LIMIT, true, n, b).await;
        self.assert_copied("large", &large).await;
        let (n, b) = total(&small);
        self.throttled_copy("small", SMALL_LIMIT, false, n, b).await;
        self.assert_copied("small", &small).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_pair_obeys_a_limit_small_files_included() {
    let routes = Route::all().await;
    assert!(routes.len() >= 6, "memory and disk routes at least");
    futures::future::join_all(routes.into_iter().map(Route::run)).await;
}
