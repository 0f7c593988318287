//! Engine-level tests of transfers and jobs, through [`RouterHandle`] as the front ends use it.
//!
//! - A matrix of every ordered pair of stores (on two mounts, and within one mount) x file sizes
//!   around the chunk size x trees, for `cp` and `mv`. The stores come from [`STORES`]: adding a
//!   store is one line there. The Redis stores share one private `redis-server` (and one
//!   3-master cluster) per test binary, each world in namespaces of its own; without
//!   `redis-server` their routes are skipped, with a message (see `mavfs_test_support::redis`). Cases branch on [`Capability`] flags, never on store names.
//! - Event invariants of real jobs: `Started` first with the totals, progress never going back,
//!   exactly one terminal event and it last.
//! - Failures injected by [`FailingStore`], a wrapper around any store: a read stream that fails
//!   after N bytes, a `remove_file` that fails (the point between a move's commit and its delete),
//!   and reads and copies held at a [`Gate`] (to cancel jobs mid-file, deterministically).
//! - Cancellation by `cancel` and by dropping a [`ForegroundJob`], a subscriber that never reads,
//!   and the job table.
//!
//! No test asserts on time: [`TIMEOUT`] and [`CANCEL_TIMEOUT`] only turn a hang into a failure.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::events::BUS_CAPACITY;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::store::redis::{RedisOptions, RedisStore};
use mavfs_actors::store::{
    Capability, DirEntry, EntryKind, FileReader, FileWriter, ListCursor, ListPage, Meta, Store,
    Usage, Version, WriteMode,
};
use mavfs_actors::transfer::{DEFAULT_JOBS, TransferKind, TransferRequest, TransferSummary};
use mavfs_actors::{BackendKind, Mount, MountTable, Tier};
use mavfs_actors::{Error, ErrorKind, Result, RouterHandle, VPath};
use mavfs_actors::{EventKind, JobEvent, JobId};
use mavfs_actors::{ForegroundJob, JobState};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;

use mavfs_test_support::redis as redis_support;
use mavfs_test_support::staging as staging_support;

use redis_support::{RedisCluster, RedisServer};

/// Chunk size of the disk stores' read streams and of every test write: small, so that
/// multi-chunk files stay small.
const CHUNK: usize = 64 * 1024;
/// The file sizes of the matrix: around one chunk, and a few chunks plus one byte.
const SIZES: [usize; 6] = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 1];
/// Guards against hangs only; nothing should come near it.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a cancelled job may take to end ("a fraction of a second", generously).
const CANCEL_TIMEOUT: Duration = Duration::from_secs(2);
/// The word every injected failure carries in its detail.
const INJECTED: &str = "injected";

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// Asserts that `result` failed with `kind`, and returns the error.
macro_rules! assert_kind {
    ($result:expr, $kind:expr) => {
        assert_kind!($result, $kind, "{}", stringify!($result))
    };
    ($result:expr, $kind:expr, $($ctx:tt)+) => {
        match $result {
            Ok(_) => panic!("{}: expected {:?}, got success", format!($($ctx)+), $kind),
            Err(e) => {
                assert_eq!(e.kind(), $kind, "{}: {e}", format!($($ctx)+));
                e
            }
        }
    };
}

/// One pattern of bytes per size and seed, so that misplaced chunks and swapped files show.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 7 + i / 251 + seed * 13) as u8)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Stores and worlds
// ---------------------------------------------------------------------------------------------

/// A store behind its backend actor, and what must live as long as it.
struct Made {
    backend: BackendHandle,
    /// The host staging directory, for stores that stage in one (disk).
    staging: Option<PathBuf>,
    /// The Redis server and namespace, for stores that stage in Redis.
    redis: Option<(RedisRef, String)>,
    keep: Box<dyn Any + Send>,
}

/// The server a Redis store lives on.
#[derive(Clone, Copy)]
enum RedisRef {
    Single(&'static RedisServer),
    Cluster(&'static RedisCluster),
}

impl RedisRef {
    fn cli(&self, args: &[&str]) -> String {
        match self {
            RedisRef::Single(s) => s.cli(args),
            RedisRef::Cluster(c) => c.cli(args),
        }
    }

    /// Staged or dead data not yet deleted, and removed directories not yet purged.
    fn leftovers(&self, ns: &str) -> (u64, u64) {
        let count = |args: &[&str]| self.cli(args).trim().parse::<u64>().unwrap_or(u64::MAX);
        let pending = format!("{ns}:{{{ns}}}:pending");
        let trash = format!("{ns}:{{{ns}}}:trash");
        (count(&["ZCARD", &pending]), count(&["SCARD", &trash]))
    }
}

/// Makes a fresh store mounted at the path, wrapped in a [`FailingStore`] when given faults;
/// `None` when it cannot run here (no `redis-server`).
type Factory = fn(&VPath, Option<Faults>) -> BoxFuture<'static, Option<Made>>;

/// Every store the tests run over. Adding a store is one line here.
const STORES: &[(&str, Factory)] = &[
    ("memory", |m, f| ready(memory(m, f))),
    ("disk", |m, f| ready(disk(m, f))),
    ("redis", |m, f| redis(m.clone(), f, false).boxed()),
    ("redis-cluster", |m, f| redis(m.clone(), f, true).boxed()),
];

fn ready(made: Made) -> BoxFuture<'static, Option<Made>> {
    futures::future::ready(Some(made)).boxed()
}

/// Spawns the backend of `store`, wrapped in a [`FailingStore`] when given faults.
fn spawn<S: Store>(
    mount: &VPath,
    kind: BackendKind,
    store: S,
    faults: Option<Faults>,
) -> BackendHandle {
    match faults {
        Some(faults) => BackendHandle::spawn(
            mount.clone(),
            kind,
            FailingStore {
                inner: store,
                faults,
            },
        ),
        None => BackendHandle::spawn(mount.clone(), kind, store),
    }
}

fn memory(mount: &VPath, faults: Option<Faults>) -> Made {
    Made {
        backend: spawn(mount, BackendKind::Memory, MemoryStore::new(None), faults),
        staging: None,
        redis: None,
        keep: Box::new(()),
    }
}

/// A memory store with a byte capacity (64 chunks), so that a leaked reservation shows.
fn memory_limited(mount: &VPath, faults: Option<Faults>) -> Made {
    let store = MemoryStore::new(Some(64 * CHUNK as u64));
    Made {
        backend: spawn(mount, BackendKind::Memory, store, faults),
        staging: None,
        redis: None,
        keep: Box::new(()),
    }
}

fn disk(mount: &VPath, faults: Option<Faults>) -> Made {
    let dir = tempfile::tempdir().unwrap();
    let options = DiskOptions {
        chunk_size: CHUNK,
        ..DiskOptions::default()
    };
    let store = DiskStore::open(dir.path(), options).unwrap();
    Made {
        backend: spawn(mount, BackendKind::Disk, store, faults),
        staging: Some(dir.path().join(".mavfs-staging")),
        redis: None,
        keep: Box::new(dir),
    }
}

/// A Redis store (on the shared server or cluster) in a fresh namespace, with the chunk size of
/// the disk stores.
async fn redis(mount: VPath, faults: Option<Faults>, cluster: bool) -> Option<Made> {
    let (server, url, nodes) = if cluster {
        let c = redis_support::shared_cluster("redis-cluster transfer routes")?;
        (RedisRef::Cluster(c), None, c.urls())
    } else {
        let s = redis_support::shared_server("redis transfer routes")?;
        (RedisRef::Single(s), Some(s.url()), Vec::new())
    };
    let namespace = redis_support::namespace("xfer");
    let options = RedisOptions {
        url,
        cluster: nodes,
        namespace: namespace.clone(),
        chunk_size: CHUNK,
        command_timeout: Duration::from_secs(10),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect(options).await.unwrap();
    Some(Made {
        backend: spawn(&mount, BackendKind::Redis, store, faults),
        staging: None,
        redis: Some((server, namespace)),
        keep: Box::new(()),
    })
}

/// A router over some mounts (the first is hot, the others cold) and what they need kept.
struct World {
    router: RouterHandle,
    /// Each mount's backend, to ask what it can do.
    backends: Vec<(VPath, BackendHandle)>,
    staging: Vec<PathBuf>,
    redis: Vec<(RedisRef, String)>,
    _keep: Vec<Box<dyn Any + Send>>,
}

impl World {
    fn new(mounts: Vec<(&str, Made)>) -> World {
        let mut table = Vec::new();
        let mut staging = Vec::new();
        let mut redis = Vec::new();
        let mut keep = Vec::new();
        let mut backends = Vec::new();
        for (i, (path, made)) in mounts.into_iter().enumerate() {
            backends.push((p(path), made.backend.clone()));
            table.push(Mount::new(
                p(path),
                if i == 0 { Tier::Hot } else { Tier::Cold },
                made.backend,
            ));
            staging.extend(made.staging);
            redis.extend(made.redis);
            keep.push(made.keep);
        }
        World {
            router: RouterHandle::spawn(MountTable::new(table).unwrap()),
            backends,
            staging,
            redis,
            _keep: keep,
        }
    }

    /// Asserts that no store holds a staged (temp) file. Redis stores delete abandoned data in
    /// the background, so they get a moment to finish.
    async fn assert_no_staging(&self, ctx: &str) {
        for dir in &self.staging {
            let left = staging_support::temp_files(dir);
            assert!(left.is_empty(), "{ctx}: staging leftovers {left:?}");
        }
        for (server, ns) in &self.redis {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let left = server.leftovers(ns);
                if left == (0, 0) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{ctx}: Redis namespace {ns} keeps {} pending data ids and {} removed \
                     directories",
                    left.0,
                    left.1
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn capability(&self, mount: &str) -> Capability {
        let path = p(mount);
        let (_, backend) = self.backends.iter().find(|(m, _)| *m == path).unwrap();
        backend.capability()
    }
}

/// A route: a world with a source directory and a destination directory (both existing).
struct Route {
    name: String,
    world: World,
    from: &'static str,
    to: &'static str,
    /// Source and destination are one mount: cp takes the store's fast path if it has one, mv
    /// is a rename.
    same_mount: bool,
    /// The faults of the source store, if it is a [`FailingStore`].
    faults: Option<Faults>,
}

impl Route {
    /// Every source of `sources` on `/src` to every destination of `dests` on `/dst`.
    async fn pairs(
        sources: &[(&str, Factory)],
        dests: &[(&str, Factory)],
        faults: impl Fn() -> Option<Faults>,
    ) -> Vec<Route> {
        let mut out = Vec::new();
        for (src_name, src) in sources {
            for (dst_name, dst) in dests {
                let faults = faults();
                let (Some(from), Some(to)) = (
                    src(&p("/src"), faults.clone()).await,
                    dst(&p("/dst"), None).await,
                ) else {
                    continue;
                };
                out.push(Route {
                    name: format!("{src_name} -> {dst_name}"),
                    world: World::new(vec![("/src", from), ("/dst", to)]),
                    from: "/src/in",
                    to: "/dst/out",
                    same_mount: false,
                    faults,
                });
            }
        }
        out
    }

    /// Every store of `stores` onto itself, within one mount.
    async fn within(stores: &[(&str, Factory)], faults: impl Fn() -> Option<Faults>) -> Vec<Route> {
        let mut out = Vec::new();
        for (name, store) in stores {
            let faults = faults();
            let Some(made) = store(&p("/src"), faults.clone()).await else {
                continue;
            };
            out.push(Route {
                name: format!("{name} -> same mount"),
                world: World::new(vec![("/src", made)]),
                from: "/src/in",
                to: "/src/out",
                same_mount: true,
                faults,
            });
        }
        out
    }

    /// The matrix: every ordered pair of stores on two mounts, and every store within one.
    async fn all() -> Vec<Route> {
        let mut out = Route::pairs(STORES, STORES, || None).await;
        out.extend(Route::within(STORES, || None).await);
        out
    }

    fn router(&self) -> &RouterHandle {
        &self.world.router
    }

    /// Creates the source and destination directories.
    async fn ready(self) -> Route {
        self.router().mkdir(&p(self.from), false).await.unwrap();
        self.router().mkdir(&p(self.to), false).await.unwrap();
        self
    }

    fn faults(&self) -> &Faults {
        self.faults.as_ref().expect("a failing source")
    }
}

// ---------------------------------------------------------------------------------------------
// FailingStore: fault injection around any store
// ---------------------------------------------------------------------------------------------

/// What a [`FailingStore`] does differently from the store it wraps. Cheap to clone; clones share
/// their switch and gate.
#[derive(Clone, Default)]
struct Faults {
    /// Every read stream yields exactly this many bytes, then an `Io` error.
    read_fails_after: Option<u64>,
    /// `remove_file` fails with `Io`, removing nothing.
    remove_file_fails: bool,
    /// Holds reads past its threshold and copies of files larger than it.
    gate: Option<Arc<Gate>>,
    /// Once, at the first open for reading or copy: the file is first replaced with these
    /// bytes, as another writer would between a transfer's scan and its copy.
    change_on_open: Arc<Mutex<Option<Bytes>>>,
    /// Once, at the first `remove_file_if`: the file is first replaced with these bytes, as
    /// another writer would between a move's read and its removal of the source.
    change_before_remove: Arc<Mutex<Option<Bytes>>>,
    /// While set, every fault is off for the operations started from then on.
    disarmed: Arc<AtomicBool>,
}

/// A gate that holds streams and copies until it opens, counting those it holds.
struct Gate {
    /// Read streams wait before each chunk past this many bytes; copies of larger files wait
    /// before copying.
    after: u64,
    /// No permits: only [`Gate::open`] lets anyone through.
    permits: Semaphore,
    /// Streams and copies waiting at the gate now.
    held: watch::Sender<usize>,
}

/// Counts one holder of the gate for as long as it waits (or until its future is dropped).
struct Held<'a>(&'a watch::Sender<usize>);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Gate {
    fn shut(after: u64) -> Arc<Gate> {
        Arc::new(Gate {
            after,
            permits: Semaphore::new(0),
            held: watch::channel(0).0,
        })
    }

    async fn pass(&self) {
        self.held.send_modify(|n| *n += 1);
        let _held = Held(&self.held);
        // A closed semaphore fails every acquire: the gate is open.
        let _ = self.permits.acquire().await;
    }

    /// Lets everyone through, now and from now on.
    fn open(&self) {
        self.permits.close();
    }

    fn held(&self) -> usize {
        *self.held.borrow()
    }

    /// Waits until at least `n` streams or copies are held.
    async fn wait_held(&self, n: usize) {
        let mut held = self.held.subscribe();
        timeout(TIMEOUT, held.wait_for(|h| *h >= n))
            .await
            .unwrap_or_else(|_| panic!("never {n} held at the gate (only {})", self.held()))
            .unwrap();
    }
}

fn injected(op: &'static str, path: &VPath, what: String) -> Error {
    Error::new(ErrorKind::Io, op)
        .with_path(path)
        .with_detail(format!("{INJECTED} {what}"))
}

impl Faults {
    fn read_fails_after(n: u64) -> Faults {
        Faults {
            read_fails_after: Some(n),
            ..Faults::default()
        }
    }

    fn remove_file_fails() -> Faults {
        Faults {
            remove_file_fails: true,
            ..Faults::default()
        }
    }

    /// Reads stall past their first chunk, and copies of files over one chunk stall.
    fn stall_past_first_chunk() -> Faults {
        Faults {
            gate: Some(Gate::shut(CHUNK as u64)),
            ..Faults::default()
        }
    }

    /// Replaces the file with `data` at the first open for reading or copy.
    fn change_on_open(data: &[u8]) -> Faults {
        Faults {
            change_on_open: Arc::new(Mutex::new(Some(Bytes::copy_from_slice(data)))),
            ..Faults::default()
        }
    }

    /// Replaces the file with `data` just before the first `remove_file_if`.
    fn change_before_remove(data: &[u8]) -> Faults {
        Faults {
            change_before_remove: Arc::new(Mutex::new(Some(Bytes::copy_from_slice(data)))),
            ..Faults::default()
        }
    }

    /// Turns every fault on or off for the operations started from now on.
    fn arm(&self, armed: bool) {
        self.disarmed.store(!armed, Ordering::SeqCst);
    }

    fn armed(&self) -> bool {
        !self.disarmed.load(Ordering::SeqCst)
    }

    fn gate(&self) -> &Gate {
        self.gate.as_ref().expect("a gate")
    }

    fn wrap(&self, path: &VPath, reader: FileReader) -> FileReader {
        if !self.armed() {
            return reader;
        }
        let faults = self.clone();
        let path = path.clone();
        let chunks = futures::stream::unfold(Some((reader.chunks, 0u64)), move |state| {
            let faults = faults.clone();
            let path = path.clone();
            async move {
                let (mut inner, sent) = state?;
                if let Some(limit) = faults.read_fails_after
                    && sent >= limit
                {
                    let err = injected("read", &path, format!("read failure after {limit} bytes"));
                    return Some((Err(err), None));
                }
                let mut chunk = match inner.next().await? {
                    Ok(chunk) => chunk,
                    Err(e) => return Some((Err(e), None)),
                };
                if let Some(gate) = &faults.gate
                    && sent >= gate.after
                {
                    gate.pass().await;
                }
                if let Some(limit) = faults.read_fails_after {
                    let room = (limit - sent) as usize;
                    if chunk.len() > room {
                        chunk = chunk.slice(..room);
                    }
                }
                let sent = sent + chunk.len() as u64;
                Some((Ok(chunk), Some((inner, sent))))
            }
        });
        FileReader {
            chunks: chunks.boxed(),
            ..reader
        }
    }
}

/// A store that delegates every operation to `inner`, except for the [`Faults`] it injects.
struct FailingStore<S: Store> {
    inner: S,
    faults: Faults,
}

type StagedOf<S> = <<S as Store>::Writer as FileWriter>::Staged;

impl<S: Store> FailingStore<S> {
    /// Replaces `path` with the bytes in `change`, if they are still there (once).
    async fn change(&mut self, path: &VPath, change: &Mutex<Option<Bytes>>) -> Result<()> {
        if !self.faults.armed() {
            return Ok(());
        }
        let Some(data) = change.lock().unwrap().take() else {
            return Ok(());
        };
        let mut writer = self.inner.open_write(path, WriteMode::Replace).await?;
        writer.write(data).await?;
        let staged = writer.finish().await?;
        self.inner.start_commit(path, staged).await?.await
    }
}

impl<S: Store> Store for FailingStore<S> {
    type Writer = S::Writer;

    fn capability(&self) -> Capability {
        self.inner.capability()
    }

    async fn stat(&mut self, path: &VPath) -> Result<Meta> {
        self.inner.stat(path).await
    }

    async fn list(&mut self, path: &VPath) -> Result<Vec<DirEntry>> {
        self.inner.list(path).await
    }

    async fn list_page(
        &mut self,
        path: &VPath,
        cursor: Option<ListCursor>,
        limit: usize,
    ) -> Result<ListPage> {
        self.inner.list_page(path, cursor, limit).await
    }

    async fn mkdir(&mut self, path: &VPath, parents: bool) -> Result<()> {
        self.inner.mkdir(path, parents).await
    }

    async fn touch(&mut self, path: &VPath) -> Result<()> {
        self.inner.touch(path).await
    }

    async fn remove_file(&mut self, path: &VPath) -> Result<()> {
        if self.faults.remove_file_fails && self.faults.armed() {
            return Err(injected("rm", path, "remove failure".to_string()));
        }
        self.inner.remove_file(path).await
    }

    async fn remove_file_if(&mut self, path: &VPath, version: &Version) -> Result<()> {
        if self.faults.remove_file_fails && self.faults.armed() {
            return Err(injected("rm", path, "remove failure".to_string()));
        }
        let change = self.faults.change_before_remove.clone();
        self.change(path, &change).await?;
        self.inner.remove_file_if(path, version).await
    }

    async fn remove_dir(&mut self, path: &VPath) -> Result<()> {
        self.inner.remove_dir(path).await
    }

    async fn remove_all(&mut self, path: &VPath) -> Result<()> {
        self.inner.remove_all(path).await
    }

    async fn rename(&mut self, from: &VPath, to: &VPath) -> Result<()> {
        self.inner.rename(from, to).await
    }

    async fn start_open_read(
        &mut self,
        path: &VPath,
    ) -> Result<BoxFuture<'static, Result<FileReader>>> {
        let change = self.faults.change_on_open.clone();
        self.change(path, &change).await?;
        let open = self.inner.start_open_read(path).await?;
        // Armed or not as the read starts, here in the actor, whenever the open finishes.
        let faults = self.faults.armed().then(|| self.faults.clone());
        let path = path.clone();
        Ok(async move {
            let reader = open.await?;
            Ok(match faults {
                Some(faults) => faults.wrap(&path, reader),
                None => reader,
            })
        }
        .boxed())
    }

    async fn open_write(&mut self, path: &VPath, mode: WriteMode) -> Result<S::Writer> {
        self.inner.open_write(path, mode).await
    }

    async fn start_commit(
        &mut self,
        path: &VPath,
        staged: StagedOf<S>,
    ) -> Result<BoxFuture<'static, Result<()>>> {
        self.inner.start_commit(path, staged).await
    }

    async fn copy_file(
        &mut self,
        from: &VPath,
        to: &VPath,
    ) -> Result<BoxFuture<'static, Result<(StagedOf<S>, u64)>>> {
        let change = self.faults.change_on_open.clone();
        self.change(from, &change).await?;
        let copy = self.inner.copy_file(from, to).await?;
        match &self.faults.gate {
            Some(gate) if self.faults.armed() => {
                let size = self.inner.stat(from).await?.size;
                if size <= gate.after {
                    return Ok(copy);
                }
                // A slow copy: what it staged stays staged while it waits.
                let gate = gate.clone();
                Ok(async move {
                    gate.pass().await;
                    copy.await
                }
                .boxed())
            }
            _ => Ok(copy),
        }
    }

    async fn close(&mut self) {
        self.inner.close().await
    }

    async fn usage(&mut self) -> Result<Usage> {
        self.inner.usage().await
    }
}

// ---------------------------------------------------------------------------------------------
// Trees and I/O through the router
// ---------------------------------------------------------------------------------------------

/// An entry of a tree snapshot.
#[derive(Clone, PartialEq)]
enum Entry {
    Dir,
    File(Vec<u8>),
}

/// A tree: paths relative to its root (`/a/b`), in order.
type Tree = BTreeMap<String, Entry>;

async fn write(r: &RouterHandle, path: &VPath, data: &[u8]) {
    let mut w = r.write(path, WriteMode::Replace).await.unwrap();
    for chunk in data.chunks(CHUNK) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.commit().await.unwrap();
}

async fn read(r: &RouterHandle, path: &VPath) -> Vec<u8> {
    let mut reader = r.read(path).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = reader.chunks.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(out.len() as u64, reader.size, "{path}: reader size");
    out
}

async fn exists(r: &RouterHandle, path: &VPath) -> bool {
    match r.stat(path).await {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => panic!("stat {path}: {e}"),
    }
}

/// The names in directory `path`, sorted.
async fn names(r: &RouterHandle, path: &str) -> Vec<String> {
    let entries = r.list(&p(path)).await.unwrap();
    entries.into_iter().map(|e| e.name).collect()
}

fn under(root: &str, rel: &str) -> VPath {
    p(&format!("{root}{rel}"))
}

/// Creates `tree` under `root` (created with its parents).
async fn build(r: &RouterHandle, root: &str, tree: &Tree) {
    r.mkdir(&p(root), true).await.unwrap();
    for (rel, entry) in tree {
        if *entry == Entry::Dir {
            r.mkdir(&under(root, rel), true).await.unwrap();
        }
    }
    let files = tree.iter().filter_map(|(rel, e)| match e {
        Entry::File(data) => Some((under(root, rel), data)),
        Entry::Dir => None,
    });
    futures::stream::iter(files)
        .for_each_concurrent(
            16,
            |(path, data)| async move { write(r, &path, data).await },
        )
        .await;
}

/// Everything below `root`, read back.
async fn snapshot(r: &RouterHandle, root: &str) -> Tree {
    let mut tree = Tree::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        for entry in r.list(&under(root, &rel)).await.unwrap() {
            let child = format!("{rel}/{}", entry.name);
            match entry.meta.kind {
                EntryKind::Dir => {
                    tree.insert(child.clone(), Entry::Dir);
                    stack.push(child);
                }
                EntryKind::File => {
                    let data = read(r, &under(root, &child)).await;
                    tree.insert(child, Entry::File(data));
                }
                other => panic!("{root}{child}: unexpected {other:?}"),
            }
        }
    }
    tree
}

/// Paths, kinds and sizes of a tree, for readable failures.
fn shape(tree: &Tree) -> Vec<(&str, Option<usize>)> {
    tree.iter()
        .map(|(rel, e)| match e {
            Entry::Dir => (rel.as_str(), None),
            Entry::File(data) => (rel.as_str(), Some(data.len())),
        })
        .collect()
}

/// Asserts that two trees hold the same entries with byte-identical files.
fn assert_same_tree(ctx: &str, got: &Tree, want: &Tree) {
    assert_eq!(shape(got), shape(want), "{ctx}: tree shape");
    for (rel, entry) in want {
        assert!(got[rel] == *entry, "{ctx}: {rel} differs");
    }
}

/// Asserts that every file of `got` is complete: present in `want` with the same bytes.
fn assert_files_complete(ctx: &str, got: &Tree, want: &Tree) {
    for (rel, entry) in got {
        match (entry, want.get(rel)) {
            (Entry::Dir, Some(Entry::Dir)) => {}
            (Entry::File(data), Some(Entry::File(expected))) => assert!(
                data == expected,
                "{ctx}: {rel} is partial or wrong ({} of {} bytes)",
                data.len(),
                expected.len()
            ),
            _ => panic!("{ctx}: unexpected entry {rel}"),
        }
    }
}

fn file_count(tree: &Tree) -> u64 {
    tree.values().filter(|e| **e != Entry::Dir).count() as u64
}

fn byte_count(tree: &Tree) -> u64 {
    tree.values()
        .map(|e| match e {
            Entry::File(data) => data.len() as u64,
            Entry::Dir => 0,
        })
        .sum()
}

/// Nested directories with an empty one, and files around the chunk size.
fn nested_tree() -> Tree {
    let mut t = Tree::new();
    t.insert("/top".into(), Entry::File(pattern(CHUNK + 1, 1)));
    t.insert("/zero".into(), Entry::File(Vec::new()));
    t.insert("/a".into(), Entry::Dir);
    t.insert("/a/one".into(), Entry::File(pattern(1, 2)));
    t.insert("/a/empty".into(), Entry::Dir);
    t.insert("/a/b".into(), Entry::Dir);
    t.insert("/a/b/chunk".into(), Entry::File(pattern(CHUNK, 3)));
    t.insert("/a/b/c".into(), Entry::Dir);
    t.insert("/a/b/c/deep".into(), Entry::File(pattern(3 * CHUNK + 1, 4)));
    t
}

/// `files` small files spread over `dirs` directories (some of them empty files).
fn many_files(files: usize, dirs: usize, size: impl Fn(usize) -> usize) -> Tree {
    let mut t = Tree::new();
    for d in 0..dirs {
        t.insert(format!("/d{d:02}"), Entry::Dir);
    }
    for i in 0..files {
        let rel = format!("/d{:02}/f{i:04}", i % dirs);
        t.insert(rel, Entry::File(pattern(size(i), i)));
    }
    t
}

fn request(kind: TransferKind, from: &str, to: &str) -> TransferRequest {
    TransferRequest {
        kind,
        sources: vec![p(from)],
        dest: p(to),
        dest_is_dir: false,
        recursive: true,
        jobs: DEFAULT_JOBS,
    }
}

fn label(kind: TransferKind, from: &str, to: &str) -> String {
    format!("{} {from} {to}", kind.command())
}

/// Runs a transfer as a foreground job and waits for it.
async fn transfer(
    r: &RouterHandle,
    kind: TransferKind,
    from: &str,
    to: &str,
) -> Result<TransferSummary> {
    let run = r.transfer(request(kind, from, to), label(kind, from, to));
    timeout(TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("{} {from} {to} hung", kind.command()))
}

/// Waits up to `limit` for job `id` to end and returns how it ended (the job must exist).
async fn wait_job(r: &RouterHandle, id: JobId, limit: Duration) -> Result<TransferSummary> {
    timeout(limit, r.wait(id))
        .await
        .unwrap_or_else(|_| panic!("job {id} did not end within {limit:?}"))
        .unwrap_or_else(|e| panic!("job {id} is unknown: {e}"))
}

/// Every event of `job` already on `rx`. Panics if the receiver lagged.
fn drain(rx: &mut broadcast::Receiver<JobEvent>, job: JobId) -> Vec<JobEvent> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(ev) if ev.job == job => out.push(ev),
            Ok(_) => {}
            Err(TryRecvError::Empty) => return out,
            Err(e) => panic!("subscriber: {e}"),
        }
    }
}

/// Asserts the invariants every job's events keep: progress never goes back, totals never change
/// once `Started` (if any) set them, exactly one terminal event and it is last.
fn assert_event_invariants(ctx: &str, events: &[JobEvent]) {
    assert!(!events.is_empty(), "{ctx}: no events");
    let terminals = events.iter().filter(|e| e.kind.is_terminal()).count();
    assert_eq!(terminals, 1, "{ctx}: terminal events");
    assert!(
        events.last().unwrap().kind.is_terminal(),
        "{ctx}: the terminal event is last"
    );
    for pair in events.windows(2) {
        let (a, b) = (&pair[0].progress, &pair[1].progress);
        assert!(
            a.files_done <= b.files_done && a.bytes_done <= b.bytes_done,
            "{ctx}: progress went back: {a:?} then {b:?} ({:?} then {:?})",
            pair[0].kind,
            pair[1].kind
        );
        assert_eq!(
            (a.files_total, a.bytes_total),
            (b.files_total, b.bytes_total),
            "{ctx}: totals changed"
        );
    }
    let route = &events[0].route;
    assert!(events.iter().all(|e| e.route == *route), "{ctx}: route");
}

// ---------------------------------------------------------------------------------------------
// 1. The transfer matrix
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_files_of_every_size() {
    for route in Route::all().await {
        let route = route.ready().await;
        let r = route.router();
        for (i, size) in SIZES.into_iter().enumerate() {
            let ctx = format!("{}, {size} bytes", route.name);
            let data = pattern(size, i);
            let src = format!("{}/f{size}", route.from);
            write(r, &p(&src), &data).await;

            // cp into a new file.
            let copy = format!("{}/c{size}", route.to);
            let summary = transfer(r, TransferKind::Copy, &src, &copy).await.unwrap();
            assert_eq!((summary.files, summary.bytes), (1, size as u64), "{ctx}");
            assert!(read(r, &p(&copy)).await == data, "{ctx}: cp result");
            assert!(read(r, &p(&src)).await == data, "{ctx}: cp source");

            // cp onto an existing file of another size replaces it.
            let old = format!("{}/o{size}", route.to);
            write(r, &p(&old), &pattern(size / 2 + 7, 99)).await;
            transfer(r, TransferKind::Copy, &src, &old).await.unwrap();
            assert!(read(r, &p(&old)).await == data, "{ctx}: cp onto a file");

            // mv onto an existing file: the target is replaced, the source goes.
            let moved = format!("{}/m{size}", route.to);
            write(r, &p(&moved), &pattern(3, 98)).await;
            let summary = transfer(r, TransferKind::Move, &src, &moved).await.unwrap();
            // Within one mount a move is a rename: one entry, no bytes moved.
            let bytes = if route.same_mount { 0 } else { size as u64 };
            assert_eq!((summary.files, summary.bytes), (1, bytes), "{ctx}: mv");
            assert!(read(r, &p(&moved)).await == data, "{ctx}: mv result");
            assert!(!exists(r, &p(&src)).await, "{ctx}: mv left the source");
        }
        route.world.assert_no_staging(&route.name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_nested_tree_with_an_empty_directory() {
    let tree = nested_tree();
    for route in Route::all().await {
        let route = route.ready().await;
        let (r, ctx) = (route.router(), &route.name);
        let src = format!("{}/tree", route.from);
        build(r, &src, &tree).await;

        // cp -r into an existing directory lands at dir/basename.
        let summary = transfer(r, TransferKind::Copy, &src, route.to)
            .await
            .unwrap();
        let copy = format!("{}/tree", route.to);
        assert_same_tree(ctx, &snapshot(r, &copy).await, &tree);
        assert_same_tree(ctx, &snapshot(r, &src).await, &tree);
        assert_eq!(
            (summary.files, summary.bytes, summary.dirs),
            (file_count(&tree), byte_count(&tree), 5),
            "{ctx}: cp summary"
        );

        // mv to a new name: the whole tree moves, the source directory goes.
        let moved = format!("{}/moved", route.to);
        transfer(r, TransferKind::Move, &src, &moved).await.unwrap();
        assert_same_tree(ctx, &snapshot(r, &moved).await, &tree);
        assert!(!exists(r, &p(&src)).await, "{ctx}: mv left the source");
        assert!(
            names(r, route.from).await.is_empty(),
            "{ctx}: mv left something in the source's parent"
        );
        route.world.assert_no_staging(ctx).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_tree_of_a_thousand_small_files() {
    let tree = many_files(1000, 10, |i| (i * 37) % 700);
    for route in Route::all().await {
        let route = route.ready().await;
        let (r, ctx) = (route.router(), &route.name);
        let src = format!("{}/many", route.from);
        build(r, &src, &tree).await;

        let copy = format!("{}/copy", route.to);
        let summary = transfer(r, TransferKind::Copy, &src, &copy).await.unwrap();
        assert_eq!((summary.files, summary.bytes), (1000, byte_count(&tree)));
        assert_same_tree(ctx, &snapshot(r, &copy).await, &tree);
        assert_same_tree(ctx, &snapshot(r, &src).await, &tree);

        let moved = format!("{}/moved", route.to);
        transfer(r, TransferKind::Move, &src, &moved).await.unwrap();
        assert_same_tree(ctx, &snapshot(r, &moved).await, &tree);
        assert!(!exists(r, &p(&src)).await, "{ctx}: mv left the source");
        route.world.assert_no_staging(ctx).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Event invariants
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_tree_transfer_keep_their_invariants() {
    let world = World::new(vec![
        ("/src", memory(&p("/src"), None)),
        ("/dst", disk(&p("/dst"), None)),
    ]);
    let r = &world.router;
    // A few MiB over four directories, files of different sizes.
    let tree = many_files(40, 4, |i| 64 * 1024 + i * 1000 + 17);
    build(r, "/src/tree", &tree).await;
    let mut rx = r.subscribe();

    let kind = TransferKind::Copy;
    let label = label(kind, "/src/tree", "/dst/tree");
    let id = r
        .start(request(kind, "/src/tree", "/dst/tree"), label.clone())
        .await
        .unwrap();
    let waited = wait_job(r, id, TIMEOUT).await.unwrap();
    // The terminal event is published before waiters learn the outcome: all events are queued.
    let events = drain(&mut rx, id);
    assert_event_invariants("cp", &events);

    let (files, bytes) = (file_count(&tree), byte_count(&tree));
    let first = &events[0];
    assert!(matches!(first.kind, EventKind::Started), "{:?}", first.kind);
    assert_eq!(
        (first.progress.files_total, first.progress.bytes_total),
        (files, bytes),
        "Started carries the totals"
    );
    assert_eq!(
        (first.progress.files_done, first.progress.bytes_done),
        (0, 0)
    );
    assert_eq!(first.route.label, label);
    assert_eq!(first.route.dest, p("/dst/tree"));

    let done: Vec<(String, u64)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FileDone { path, bytes } => Some((path.to_string(), *bytes)),
            _ => None,
        })
        .collect();
    assert_eq!(done.len() as u64, files, "one FileDone per file");
    let expected: BTreeMap<String, u64> = tree
        .iter()
        .filter_map(|(rel, e)| match e {
            Entry::File(data) => Some((format!("/dst/tree{rel}"), data.len() as u64)),
            Entry::Dir => None,
        })
        .collect();
    assert_eq!(
        done.into_iter().collect::<BTreeMap<_, _>>(),
        expected,
        "FileDone names each destination and its size"
    );

    let last = events.last().unwrap();
    let EventKind::Finished(summary) = &last.kind else {
        panic!("expected Finished, got {:?}", last.kind);
    };
    assert_eq!((summary.files, summary.bytes), (files, bytes));
    assert_eq!(*summary, waited, "wait returns the Finished summary");
    assert_eq!(
        (last.progress.files_done, last.progress.bytes_done),
        (files, bytes),
        "the last event shows everything done"
    );
    assert_same_tree("cp", &snapshot(r, "/dst/tree").await, &tree);
}

#[tokio::test]
async fn a_job_that_cannot_start_ends_with_exactly_one_failed_event() {
    let world = World::new(vec![
        ("/src", memory(&p("/src"), None)),
        ("/dst", disk(&p("/dst"), None)),
    ]);
    let r = &world.router;
    let mut rx = r.subscribe();
    let kind = TransferKind::Copy;
    let id = r
        .start(
            request(kind, "/src/missing", "/dst/x"),
            label(kind, "/src/missing", "/dst/x"),
        )
        .await
        .unwrap();
    let err = assert_kind!(wait_job(r, id, TIMEOUT).await, ErrorKind::NotFound);
    assert_eq!(err.path(), Some(&p("/src/missing")));
    let events = drain(&mut rx, id);
    assert_event_invariants("missing source", &events);
    assert_eq!(events.len(), 1, "only the terminal event: {events:?}");
    let EventKind::Failed(e) = &events[0].kind else {
        panic!("expected Failed, got {:?}", events[0].kind);
    };
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.path(), Some(&p("/src/missing")));
    assert!(!exists(r, &p("/dst/x")).await);
}

#[tokio::test]
async fn a_job_failing_mid_stream_ends_with_exactly_one_failed_event() {
    let faults = Faults::read_fails_after(CHUNK as u64 + 10);
    let world = World::new(vec![
        ("/src", memory(&p("/src"), Some(faults))),
        ("/dst", disk(&p("/dst"), None)),
    ]);
    let r = &world.router;
    let tree = many_files(6, 2, |_| 3 * CHUNK);
    build(r, "/src/tree", &tree).await;
    let mut rx = r.subscribe();
    let kind = TransferKind::Copy;
    let id = r
        .start(
            request(kind, "/src/tree", "/dst/tree"),
            label(kind, "/src/tree", "/dst/tree"),
        )
        .await
        .unwrap();
    let err = assert_kind!(wait_job(r, id, TIMEOUT).await, ErrorKind::Io);
    assert!(err.to_string().contains(INJECTED), "{err}");
    let events = drain(&mut rx, id);
    assert_event_invariants("failing source", &events);
    assert!(matches!(events[0].kind, EventKind::Started));
    let EventKind::Failed(e) = &events.last().unwrap().kind else {
        panic!("expected Failed, got {:?}", events.last().unwrap().kind);
    };
    assert_eq!(
        e.to_string(),
        err.to_string(),
        "the event carries the job's error"
    );
    let path = e.path().expect("the error names the source file").as_str();
    assert!(path.starts_with("/src/tree/"), "{path}");
    world.assert_no_staging("failing source").await;
}

// ---------------------------------------------------------------------------------------------
// 3. A source that fails after N bytes
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_failing_mid_file_leaves_the_destination_untouched() {
    const FAIL_AFTER: u64 = 2 * CHUNK as u64 + 100;
    let data = pattern(4 * CHUNK + 3, 5);
    let old = pattern(1000, 6);
    // Every store, and one with a capacity, which also shows whether staged bytes stay reserved.
    let mut dests = STORES.to_vec();
    dests.push(("memory with capacity", |m, f| ready(memory_limited(m, f))));
    let routes = Route::pairs(STORES, &dests, || {
        Some(Faults::read_fails_after(FAIL_AFTER))
    })
    .await;
    for route in routes {
        let route = route.ready().await;
        let r = route.router();
        let src = format!("{}/f", route.from);
        let (new_dst, old_dst) = (format!("{}/new", route.to), format!("{}/old", route.to));
        write(r, &p(&src), &data).await;
        write(r, &p(&old_dst), &old).await;

        for kind in [TransferKind::Copy, TransferKind::Move] {
            for target in [&new_dst, &old_dst] {
                let ctx = format!("{}: {} {src} {target}", route.name, kind.command());
                let err = assert_kind!(
                    transfer(r, kind, &src, target).await,
                    ErrorKind::Io,
                    "{ctx}"
                );
                assert!(err.to_string().contains(INJECTED), "{ctx}: {err}");
                assert_eq!(err.path(), Some(&p(&src)), "{ctx}: names the source");
                assert!(!exists(r, &p(&new_dst)).await, "{ctx}: new file appeared");
                assert!(
                    read(r, &p(&old_dst)).await == old,
                    "{ctx}: old file changed"
                );
                assert_eq!(names(r, route.to).await, ["old"], "{ctx}: destination");
                route.world.assert_no_staging(&ctx).await;
                route.faults().arm(false);
                assert!(read(r, &p(&src)).await == data, "{ctx}: source changed");
                route.faults().arm(true);
            }
        }
        if route.world.capability("/dst").capacity {
            // Nothing the failed writes staged is still reserved: the whole rest fits.
            let stats = r.stats().await.unwrap();
            let usage = stats.iter().find(|s| s.path == p("/dst")).unwrap().usage;
            let free = usage.capacity.unwrap() - usage.bytes;
            let fill = format!("{}/fill", route.to);
            write(r, &p(&fill), &vec![1u8; free as usize]).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Cancellation mid-file
// ---------------------------------------------------------------------------------------------

/// Three small files that move whole, then big ones that stall at the gate past one chunk.
fn cancel_tree() -> Tree {
    let mut t = Tree::new();
    for i in 0..3 {
        t.insert(format!("/a{i}"), Entry::File(pattern(1000 + i, i)));
    }
    for i in 0..12 {
        t.insert(format!("/b{i:02}"), Entry::File(pattern(4 * CHUNK, 10 + i)));
    }
    t
}

/// How a test stops a job.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// `RouterHandle::cancel`, as `kill` does.
    Cancel,
    /// Dropping the [`ForegroundJob`], as Ctrl-C does.
    DropForeground,
}

/// Copies [`cancel_tree`] along `route` (whose source stalls past the first chunk), stops the job
/// once it has committed a file and holds [`DEFAULT_JOBS`] big files mid-way, and checks that it
/// ends `Cancelled` at once and cleanly.
async fn cancel_mid_file(route: Route, stop: Stop) {
    let route = route.ready().await;
    let (r, faults) = (route.router(), route.faults());
    let ctx = format!("{} ({stop:?})", route.name);
    let tree = cancel_tree();
    let (src, dst) = (format!("{}/tree", route.from), format!("{}/tree", route.to));
    build(r, &src, &tree).await;
    let mut rx = r.subscribe();
    let kind = TransferKind::Copy;
    let (id, foreground) = match stop {
        Stop::Cancel => {
            let id = r.start(request(kind, &src, &dst), label(kind, &src, &dst));
            (id.await.unwrap(), None)
        }
        Stop::DropForeground => {
            let job = r.run(request(kind, &src, &dst), label(kind, &src, &dst));
            let job: ForegroundJob = job.await.unwrap();
            (job.id, Some(job))
        }
    };

    // Mid-file: a file committed, and as many big files in flight as the job runs at once.
    let mut committed = BTreeSet::new();
    let first_done = async {
        loop {
            let ev = rx.recv().await.expect("subscriber");
            match ev.kind {
                _ if ev.job != id => {}
                EventKind::FileDone { path, .. } => {
                    committed.insert(path);
                    return;
                }
                kind if kind.is_terminal() => panic!("{ctx}: ended before the stop: {kind:?}"),
                _ => {}
            }
        }
    };
    timeout(TIMEOUT, first_done)
        .await
        .unwrap_or_else(|_| panic!("{ctx}: no file committed"));
    faults.gate().wait_held(DEFAULT_JOBS).await;

    match foreground {
        None => r.cancel(id).await.unwrap(),
        Some(job) => drop(job),
    }
    assert_kind!(
        wait_job(r, id, CANCEL_TIMEOUT).await,
        ErrorKind::Cancelled,
        "{ctx}"
    );
    // The work stopped with the job: nothing still reads or copies for it.
    assert_eq!(
        faults.gate().held(),
        0,
        "{ctx}: work goes on after the job ended"
    );
    route.world.assert_no_staging(&ctx).await;

    let events = drain(&mut rx, id);
    let terminals = events.iter().filter(|e| e.kind.is_terminal()).count();
    assert_eq!(terminals, 1, "{ctx}: terminal events after the stop");
    let last = &events.last().unwrap().kind;
    assert!(matches!(last, EventKind::Cancelled), "{ctx}: {last:?}");
    for ev in &events {
        if let EventKind::FileDone { path, .. } = &ev.kind {
            committed.insert(path.clone());
        }
    }
    let job = r.jobs().await.unwrap().into_iter().find(|j| j.id == id);
    assert_eq!(job.unwrap().state, JobState::Cancelled, "{ctx}");

    // No partial file: whatever is at the destination is complete, and the stalled big files,
    // which could not complete, are not there. What was committed stays.
    let got = snapshot(r, &dst).await;
    assert_files_complete(&ctx, &got, &tree);
    assert!(
        got.keys().all(|rel| rel.starts_with("/a")),
        "{ctx}: a stalled file was committed: {:?}",
        shape(&got)
    );
    for path in &committed {
        let rel = path.strip_prefix(&p(&dst)).unwrap();
        assert!(
            got.contains_key(rel.as_str()),
            "{ctx}: committed {path} is gone"
        );
    }
    faults.arm(false);
    assert_same_tree(&ctx, &snapshot(r, &src).await, &tree);
    faults.gate().open();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_job_mid_file_and_leaves_nothing_partial() {
    let routes = Route::pairs(STORES, STORES, || Some(Faults::stall_past_first_chunk())).await;
    for route in routes {
        cancel_mid_file(route, Stop::Cancel).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_foreground_job_cancels_it() {
    let routes = Route::pairs(STORES, STORES, || Some(Faults::stall_past_first_chunk())).await;
    for route in routes {
        cancel_mid_file(route, Stop::DropForeground).await;
    }
}

/// Within one mount a copy takes the store's fast path (`Store::copy_file`), whose future the
/// backend actor runs in a task of its own: cancelling the job must stop that too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_copy_within_one_mount() {
    for route in Route::within(STORES, || Some(Faults::stall_past_first_chunk())).await {
        cancel_mid_file(route, Stop::Cancel).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 5. mv interrupted between commit and delete
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_whose_delete_fails_keeps_both_copies() {
    let data = pattern(3 * CHUNK + 1, 7);
    let tree = nested_tree();
    for route in Route::pairs(STORES, STORES, || Some(Faults::remove_file_fails())).await {
        let route = route.ready().await;
        let (r, ctx) = (route.router(), &route.name);

        let (src, dst) = (format!("{}/f", route.from), format!("{}/f", route.to));
        write(r, &p(&src), &data).await;
        let err = assert_kind!(
            transfer(r, TransferKind::Move, &src, &dst).await,
            ErrorKind::Io,
            "{ctx}"
        );
        assert!(err.to_string().contains(INJECTED), "{ctx}: {err}");
        assert_eq!(err.path(), Some(&p(&src)), "{ctx}: names the source");
        assert!(read(r, &p(&dst)).await == data, "{ctx}: destination");
        assert!(read(r, &p(&src)).await == data, "{ctx}: source");

        let (src, dst) = (format!("{}/tree", route.from), format!("{}/tree", route.to));
        build(r, &src, &tree).await;
        let err = assert_kind!(
            transfer(r, TransferKind::Move, &src, &dst).await,
            ErrorKind::Io,
            "{ctx}: tree"
        );
        assert!(err.to_string().contains(INJECTED), "{ctx}: {err}");
        assert_same_tree(ctx, &snapshot(r, &src).await, &tree);
        let got = snapshot(r, &dst).await;
        assert_files_complete(ctx, &got, &tree);
        let failed = err.path().unwrap().strip_prefix(&p(&src)).unwrap();
        assert!(
            got.contains_key(failed.as_str()),
            "{ctx}: {failed} failed its delete, so its copy was committed"
        );
        route.world.assert_no_staging(ctx).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 6. A subscriber that never reads
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_subscriber_lags_and_never_blocks_a_transfer() {
    let world = World::new(vec![
        ("/src", memory(&p("/src"), None)),
        ("/dst", memory(&p("/dst"), None)),
    ]);
    let r = &world.router;
    // One FileDone per file: twice the bus capacity.
    let files = 2 * BUS_CAPACITY;
    let tree = many_files(files, 20, |i| i % 64);
    build(r, "/src/tree", &tree).await;

    let started = Instant::now();
    transfer(r, TransferKind::Copy, "/src/tree", "/dst/free")
        .await
        .unwrap();
    let free = started.elapsed();

    let mut stuck = r.subscribe();
    let started = Instant::now();
    let summary = transfer(r, TransferKind::Copy, "/src/tree", "/dst/stuck")
        .await
        .unwrap();
    let with_stuck = started.elapsed();
    assert_eq!(summary.files, files as u64);
    assert_same_tree("stuck", &snapshot(r, "/dst/stuck").await, &tree);
    match stuck.try_recv() {
        Err(TryRecvError::Lagged(n)) => assert!(n > 0),
        other => panic!("expected Lagged, got {other:?}"),
    }
    // After the lag the receiver resumes with the newest events, the job's terminal one last.
    let mut last = None;
    loop {
        match stuck.try_recv() {
            Ok(ev) => last = Some(ev),
            Err(TryRecvError::Empty) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(last.map(|e| e.kind), Some(EventKind::Finished(_))));
    println!("{files} files: {free:?} without a subscriber, {with_stuck:?} with a stuck one");
}

// ---------------------------------------------------------------------------------------------
// 7. The job table
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_lists_every_job_with_its_state_and_counts() {
    let faults = Faults::stall_past_first_chunk();
    let world = World::new(vec![
        ("/src", memory(&p("/src"), Some(faults.clone()))),
        ("/dst", memory(&p("/dst"), None)),
    ]);
    let r = &world.router;
    let small = pattern(1000, 1);
    write(r, &p("/src/small"), &small).await;
    write(r, &p("/src/big"), &pattern(4 * CHUNK, 2)).await;
    let kind = TransferKind::Copy;
    let start = |from: &'static str, to: &'static str| {
        let r = r.clone();
        async move {
            r.start(request(kind, from, to), label(kind, from, to))
                .await
                .unwrap()
        }
    };

    let done = start("/src/small", "/dst/small").await;
    wait_job(r, done, TIMEOUT).await.unwrap();
    let failed = start("/src/missing", "/dst/missing").await;
    assert_kind!(wait_job(r, failed, TIMEOUT).await, ErrorKind::NotFound);
    // Both big copies stall at the gate, so they are running until cancelled.
    let cancelled = start("/src/big", "/dst/big1").await;
    let running = start("/src/big", "/dst/big2").await;
    faults.gate().wait_held(2).await;
    r.cancel(cancelled).await.unwrap();
    assert_kind!(
        wait_job(r, cancelled, CANCEL_TIMEOUT).await,
        ErrorKind::Cancelled
    );
    // Cancelling an ended job does nothing.
    r.cancel(done).await.unwrap();

    let jobs = r.jobs().await.unwrap();
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, [done, failed, cancelled, running], "in id order");
    let states: Vec<JobState> = jobs.iter().map(|j| j.state).collect();
    use JobState::{Cancelled, Done, Failed, Running};
    assert_eq!(states, [Done, Failed, Cancelled, Running]);
    let ended: Vec<bool> = jobs.iter().map(|j| j.ended.is_some()).collect();
    assert_eq!(ended, [true, true, true, false]);
    let labels: Vec<&str> = jobs.iter().map(|j| j.route.label.as_str()).collect();
    assert_eq!(labels[0], label(kind, "/src/small", "/dst/small"));
    assert_eq!(labels[3], label(kind, "/src/big", "/dst/big2"));

    let d = &jobs[0].progress;
    let n = small.len() as u64;
    assert_eq!(
        (d.files_done, d.files_total, d.bytes_done, d.bytes_total),
        (1, 1, n, n),
        "a done job's counts"
    );
    assert!(jobs[0].error.is_none());
    let f = &jobs[1];
    assert_eq!(f.error.as_ref().map(Error::kind), Some(ErrorKind::NotFound));
    assert_eq!(f.progress.files_done, 0);
    assert!(jobs[2].error.is_none(), "a cancelled job has no error");
    let running_progress = &jobs[3].progress;
    assert_eq!(
        (running_progress.files_done, running_progress.files_total),
        (0, 1)
    );
    assert_eq!(running_progress.bytes_total, 4 * CHUNK as u64);

    r.cancel(running).await.unwrap();
    assert_kind!(
        wait_job(r, running, CANCEL_TIMEOUT).await,
        ErrorKind::Cancelled
    );
    let states: Vec<JobState> = r.jobs().await.unwrap().iter().map(|j| j.state).collect();
    assert_eq!(states, [Done, Failed, Cancelled, Cancelled]);

    let unknown = JobId(u64::MAX);
    assert_kind!(r.cancel(unknown).await, ErrorKind::NotFound);
    assert_kind!(r.wait(unknown).await, ErrorKind::NotFound);
    assert!(!exists(r, &p("/dst/big1")).await && !exists(r, &p("/dst/big2")).await);
    faults.gate().open();
}

// ---------------------------------------------------------------------------------------------
// 8. Sources that change during a transfer
// ---------------------------------------------------------------------------------------------

/// Every copy path (the store's fast path within a mount, streams and batches across mounts)
/// commits only a file of the size the plan found: a source replaced by one of another size
/// between the scan and the copy fails the copy, and the old destination stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_changed_size_since_the_scan_is_not_copied() {
    // A file that streams and a small one that moves in a batch, each replaced at its open by
    // one of another size.
    let cases = [
        (pattern(3 * CHUNK + 1, 21), pattern(CHUNK + 7, 22)),
        (pattern(1000, 23), pattern(1500, 24)),
    ];
    for (data, changed) in cases {
        let faults = || Some(Faults::change_on_open(&changed));
        let mut routes = Route::pairs(STORES, STORES, faults).await;
        routes.extend(Route::within(STORES, faults).await);
        for route in routes {
            let route = route.ready().await;
            let (r, ctx) = (
                route.router(),
                format!("{} ({} bytes)", route.name, data.len()),
            );
            let (src, dst) = (format!("{}/f", route.from), format!("{}/f", route.to));
            let old = pattern(10, 25);
            write(r, &p(&src), &data).await;
            write(r, &p(&dst), &old).await;
            let err = assert_kind!(
                transfer(r, TransferKind::Copy, &src, &dst).await,
                ErrorKind::Io,
                "{ctx}"
            );
            assert!(
                err.to_string().contains("source changed while copying"),
                "{ctx}: {err}"
            );
            assert_eq!(err.path(), Some(&p(&src)), "{ctx}: names the source");
            assert!(read(r, &p(&dst)).await == old, "{ctx}: old destination");
            assert!(read(r, &p(&src)).await == changed, "{ctx}: source");
            route.world.assert_no_staging(&ctx).await;
            // Unchanged since, it copies.
            transfer(r, TransferKind::Copy, &src, &dst).await.unwrap();
            assert!(read(r, &p(&dst)).await == changed, "{ctx}: copied");
        }
    }
}

/// A move across mounts deletes a source only if it is still the version it read: one
/// replaced after it was read (a stream or a batch) is kept, the move fails naming it, and the
/// copy of what was read stays committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_keeps_a_source_that_changed_after_it_was_read() {
    for (data, changed) in [
        (pattern(3 * CHUNK + 1, 31), pattern(3 * CHUNK + 1, 32)),
        (pattern(1000, 33), pattern(1000, 34)),
    ] {
        let faults = || Some(Faults::change_before_remove(&changed));
        for route in Route::pairs(STORES, STORES, faults).await {
            let route = route.ready().await;
            let (r, ctx) = (
                route.router(),
                format!("{} ({} bytes)", route.name, data.len()),
            );
            let (src, dst) = (format!("{}/f", route.from), format!("{}/f", route.to));
            write(r, &p(&src), &data).await;
            let err = assert_kind!(
                transfer(r, TransferKind::Move, &src, &dst).await,
                ErrorKind::Io,
                "{ctx}"
            );
            assert!(
                err.to_string().contains("changed during the move"),
                "{ctx}: {err}"
            );
            assert_eq!(err.path(), Some(&p(&src)), "{ctx}: names the source");
            assert!(
                read(r, &p(&src)).await == changed,
                "{ctx}: the source is kept"
            );
            assert!(
                read(r, &p(&dst)).await == data,
                "{ctx}: the copy of what was read"
            );
            route.world.assert_no_staging(&ctx).await;
        }
    }
}

/// The audit's case on disk: a source appended to in place (same inode) while a move streams
/// it is kept whole, and the move fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_keeps_a_disk_source_appended_to_while_it_streamed() {
    let data = pattern(4 * CHUNK, 41);
    let routes = Route::pairs(&STORES[1..2], STORES, || {
        Some(Faults::stall_past_first_chunk())
    })
    .await;
    for route in routes {
        let route = route.ready().await;
        let (r, ctx) = (route.router(), route.name.clone());
        let (src, dst) = (format!("{}/f", route.from), format!("{}/f", route.to));
        write(r, &p(&src), &data).await;
        let host = route.world.staging[0].parent().unwrap().join("in/f");
        let job = r
            .start(
                request(TransferKind::Move, &src, &dst),
                label(TransferKind::Move, &src, &dst),
            )
            .await
            .unwrap();
        route.faults().gate().wait_held(1).await;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&host)
            .unwrap();
        std::io::Write::write_all(&mut file, b"appended").unwrap();
        drop(file);
        route.faults().gate().open();
        let err = assert_kind!(wait_job(r, job, TIMEOUT).await, ErrorKind::Io, "{ctx}");
        assert!(
            err.to_string().contains("changed during the move"),
            "{ctx}: {err}"
        );
        let mut want = data.clone();
        want.extend_from_slice(b"appended");
        assert!(std::fs::read(&host).unwrap() == want, "{ctx}: source kept");
        assert!(
            read(r, &p(&dst)).await == data,
            "{ctx}: the copy of what was read"
        );
        route.world.assert_no_staging(&ctx).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Two jobs, one destination
// ---------------------------------------------------------------------------------------------

/// A second job writing a path a running job writes is refused as busy, naming the first job;
/// other paths are not held up, and once the first job ends the path is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_writing_the_same_destination_is_refused_as_busy() {
    let faults = Faults::stall_past_first_chunk();
    let world = World::new(vec![
        ("/src", memory(&p("/src"), Some(faults.clone()))),
        ("/dst", memory(&p("/dst"), None)),
    ]);
    let r = &world.router;
    let big = pattern(4 * CHUNK, 51);
    write(r, &p("/src/big"), &big).await;
    write(r, &p("/src/small"), b"small").await;
    r.mkdir(&p("/src/tree"), false).await.unwrap();
    write(r, &p("/src/tree/big"), &big).await;
    write(r, &p("/dst/other"), b"other").await;
    let start = |kind: TransferKind, from: &'static str, to: &'static str| async move {
        r.start(request(kind, from, to), label(kind, from, to))
            .await
            .unwrap()
    };
    let first = start(TransferKind::Copy, "/src/big", "/dst/big").await;
    faults.gate().wait_held(1).await;

    for (kind, from, to) in [
        (TransferKind::Copy, "/src/small", "/dst/big"),
        (TransferKind::Move, "/dst/other", "/dst/big"),
        (TransferKind::Copy, "/src/tree/big", "/dst"),
    ] {
        let ctx = label(kind, from, to);
        let second = start(kind, from, to).await;
        let err = assert_kind!(wait_job(r, second, TIMEOUT).await, ErrorKind::Busy, "{ctx}");
        assert_eq!(err.path(), Some(&p("/dst/big")), "{ctx}");
        assert!(
            err.to_string().ends_with(&format!(
                "Device or resource busy (job %{first} is writing there)"
            )),
            "{ctx}: {err}"
        );
    }
    assert!(
        exists(r, &p("/dst/other")).await,
        "the refused move moved nothing"
    );
    // Another destination is not held up.
    let other = start(TransferKind::Copy, "/src/small", "/dst/small").await;
    wait_job(r, other, TIMEOUT).await.unwrap();

    faults.gate().open();
    wait_job(r, first, TIMEOUT).await.unwrap();
    assert!(read(r, &p("/dst/big")).await == big);
    // Free again once the first job ended.
    transfer(r, TransferKind::Copy, "/src/small", "/dst/big")
        .await
        .unwrap();
    assert_eq!(read(r, &p("/dst/big")).await, b"small");
}
