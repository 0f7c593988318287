//! Latency of one 64 KiB read and one 64 KiB write through the whole engine (router handle ->
//! backend actor -> store), on the memory and the disk store.
//!
//! Run with `cargo bench --bench latency`. Each measurement runs inside a spawned tokio task: an
//! `ask` from the runtime's own blocking thread pays cross-thread wake-ups a real front end
//! never pays.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::WriteMode;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::{BackendKind, Mount, MountTable, Tier};
use mavfs_actors::{RouterHandle, VPath};

const SIZE: usize = 64 * 1024;

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

fn router(disk_root: &std::path::Path) -> RouterHandle {
    let disk = DiskStore::open(disk_root, DiskOptions::default()).unwrap();
    RouterHandle::spawn(
        MountTable::new(vec![
            Mount::new(
                p("/vram"),
                Tier::Hot,
                BackendHandle::spawn(p("/vram"), BackendKind::Memory, MemoryStore::new(None)),
            ),
            Mount::new(
                p("/vdisk"),
                Tier::Cold,
                BackendHandle::spawn(p("/vdisk"), BackendKind::Disk, disk),
            ),
        ])
        .unwrap(),
    )
}

async fn write_once(router: &RouterHandle, path: &VPath, data: &Bytes) {
    let mut w = router.write(path, WriteMode::Replace).await.unwrap();
    w.write(data.clone()).await.unwrap();
    w.commit().await.unwrap();
}

async fn read_once(router: &RouterHandle, path: &VPath) -> usize {
    let mut r = router.read(path).await.unwrap();
    let mut n = 0;
    while let Some(chunk) = r.chunks.next().await {
        n += chunk.unwrap().len();
    }
    n
}

fn latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let router = rt.block_on(async { router(dir.path()) });
    let data = Bytes::from(vec![7u8; SIZE]);
    let mut group = c.benchmark_group("64KiB");
    for mount in ["/vram", "/vdisk"] {
        let path = p(&format!("{mount}/bench"));
        rt.block_on(write_once(&router, &path, &data));
        group.bench_function(format!("read {mount}"), |b| {
            b.iter_custom(|iters| {
                let (router, path) = (router.clone(), path.clone());
                rt.block_on(rt.spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        assert_eq!(read_once(&router, &path).await, SIZE);
                    }
                    start.elapsed()
                }))
                .unwrap()
            })
        });
        group.bench_function(format!("write {mount}"), |b| {
            b.iter_custom(|iters| {
                let (router, path, data) = (router.clone(), path.clone(), data.clone());
                rt.block_on(rt.spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        write_once(&router, &path, &data).await;
                    }
                    start.elapsed()
                }))
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = latency
}
criterion_main!(benches);
