//! The per-mount byte counters behind `MountStats::io`: each operation through a backend handle
//! moves them by exactly the bytes it moved (a streamed write, a streamed read, a cross-mount
//! copy, a same-mount fast copy, a batched copy of small files), on the memory and disk stores.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::transfer::{TransferKind, TransferRequest};
use mavfs_actors::{BackendKind, IoCounters, Mount, MountTable, RouterHandle, Tier, VPath};
use mavfs_actors::{WriteMode, store::SMALL_FILE_MAX};
use tokio::time::timeout;

/// Guards against hangs only.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Write chunk size: a large file is several chunks and more than a small file.
const CHUNK: usize = 64 * 1024;
/// A file streamed in every direction: a few chunks plus one byte, above `SMALL_FILE_MAX`.
const LARGE: usize = 3 * CHUNK + 1;
/// Sizes of the small files a recursive copy moves in one batch.
const SMALL: [usize; 5] = [0, 1, 100, 4096, 60_000];

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

fn data(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Two mounts of one store kind, `/a` and `/b`, and whatever keeps their storage alive.
fn two_mounts(kind: BackendKind) -> (RouterHandle, Option<tempfile::TempDir>) {
    let mount = |path: &str, dir: Option<&tempfile::TempDir>| match kind {
        BackendKind::Memory => Mount::spawn(p(path), Tier::Hot, kind, MemoryStore::new(None)),
        BackendKind::Disk => {
            let root = dir.unwrap().path().join(&path[1..]);
            std::fs::create_dir(&root).unwrap();
            let options = DiskOptions {
                chunk_size: CHUNK,
                ..DiskOptions::default()
            };
            let store = DiskStore::open(&root, options).unwrap();
            Mount::spawn(p(path), Tier::Cold, kind, store)
        }
        other => panic!("no fixture for {other}"),
    };
    let dir = (kind == BackendKind::Disk).then(|| tempfile::tempdir().unwrap());
    let table = MountTable::new(vec![mount("/a", dir.as_ref()), mount("/b", dir.as_ref())]);
    (RouterHandle::spawn(table.unwrap()), dir)
}

/// Every mount's counters, by mount path.
async fn io(router: &RouterHandle) -> BTreeMap<String, IoCounters> {
    let stats = timeout(TIMEOUT, router.stats()).await.unwrap().unwrap();
    stats
        .into_iter()
        .map(|s| (s.path.as_str().to_string(), s.io))
        .collect()
}

/// Asserts that, since `before`, mount `a` and `b` moved by exactly the given bytes
/// (`[read, written]` each).
fn assert_moved(
    what: &str,
    before: &BTreeMap<String, IoCounters>,
    after: &BTreeMap<String, IoCounters>,
    a: [u64; 2],
    b: [u64; 2],
) {
    for (mount, [read, written]) in [("/a", a), ("/b", b)] {
        let (was, now) = (before[mount], after[mount]);
        assert_eq!(
            [
                now.bytes_read - was.bytes_read,
                now.bytes_written - was.bytes_written
            ],
            [read, written],
            "{what}: {mount} moved by [read, written]"
        );
    }
}

async fn write(router: &RouterHandle, path: &str, contents: &Bytes) {
    let mut writer = router.write(&p(path), WriteMode::Replace).await.unwrap();
    for chunk in contents.chunks(CHUNK) {
        writer.write(contents.slice_ref(chunk)).await.unwrap();
    }
    writer.commit().await.unwrap();
}

async fn copy(router: &RouterHandle, from: &str, to: &str) {
    let request = TransferRequest {
        kind: TransferKind::Copy,
        sources: vec![p(from)],
        dest: p(to),
        dest_is_dir: false,
        recursive: true,
        jobs: 4,
    };
    let label = format!("cp -r {from} {to}");
    timeout(TIMEOUT, router.transfer(request, label))
        .await
        .unwrap()
        .unwrap();
}

async fn counters_move_by_the_bytes_moved(kind: BackendKind) {
    let (router, _dir) = two_mounts(kind);
    let zero = io(&router).await;
    assert!(zero.values().all(|c| *c == IoCounters::default()));

    // A streamed write counts its chunks as written, nothing read.
    let large = data(LARGE);
    write(&router, "/a/large", &large).await;
    let n = LARGE as u64;
    let after_write = io(&router).await;
    assert_moved("write", &zero, &after_write, [0, n], [0, 0]);

    // A streamed read counts its chunks as read.
    let mut reader = router.read(&p("/a/large")).await.unwrap();
    let mut got = 0;
    while let Some(chunk) = reader.chunks.next().await {
        got += chunk.unwrap().len();
    }
    assert_eq!(got, LARGE);
    let after_read = io(&router).await;
    assert_moved("read", &after_write, &after_read, [n, 0], [0, 0]);

    // Across mounts the file streams: read from one, written to the other.
    copy(&router, "/a/large", "/b/large").await;
    let after_cross = io(&router).await;
    assert_moved(
        "cross-mount copy",
        &after_read,
        &after_cross,
        [n, 0],
        [0, n],
    );

    // Within a mount, the store's fast copy counts as written only.
    copy(&router, "/a/large", "/a/copy").await;
    let after_fast = io(&router).await;
    assert_moved("fast copy", &after_cross, &after_fast, [0, n], [0, 0]);

    // Small files cross in one batch: read whole from one mount, written whole to the other.
    router.mkdir(&p("/a/small"), false).await.unwrap();
    let mut small_bytes = 0;
    for (i, size) in SMALL.into_iter().enumerate() {
        assert!(size as u64 <= SMALL_FILE_MAX);
        write(&router, &format!("/a/small/f{i}"), &data(size)).await;
        small_bytes += size as u64;
    }
    let before_batch = io(&router).await;
    assert_moved(
        "small writes",
        &after_fast,
        &before_batch,
        [0, small_bytes],
        [0, 0],
    );
    copy(&router, "/a/small", "/b/small").await;
    let after_batch = io(&router).await;
    assert_moved(
        "batched copy",
        &before_batch,
        &after_batch,
        [small_bytes, 0],
        [0, small_bytes],
    );
    router.shutdown().await;
}

#[tokio::test]
async fn memory_counters_move_by_the_bytes_moved() {
    counters_move_by_the_bytes_moved(BackendKind::Memory).await;
}

#[tokio::test]
async fn disk_counters_move_by_the_bytes_moved() {
    counters_move_by_the_bytes_moved(BackendKind::Disk).await;
}
