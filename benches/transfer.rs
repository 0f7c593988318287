//! Transfer throughput per store pair, through the whole engine (router -> transfer actor ->
//! backend actors -> stores), and the cost of jobs and progress events.
//!
//! Run with `cargo bench --bench transfer`. Each copy is a 64 MiB file (`cp` between mounts);
//! criterion reports bytes per second. The `events` group runs the same memory -> disk copy as a
//! job with a subscriber draining every event, and as a bare `stream_file` with no job and no
//! events: their ratio is what jobs and events cost.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::WriteMode;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::transfer::{self, Meter, TransferKind, TransferRequest};
use mavfs_actors::{BackendKind, Mount, MountTable, Tier};
use mavfs_actors::{RouterHandle, VPath};

const SIZE: usize = 64 << 20;
const CHUNK: usize = 1 << 20;

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

fn disk(path: &str, root: &std::path::Path) -> BackendHandle {
    let store = DiskStore::open(root, DiskOptions::default()).unwrap();
    BackendHandle::spawn(p(path), BackendKind::Disk, store)
}

fn memory(path: &str) -> BackendHandle {
    BackendHandle::spawn(p(path), BackendKind::Memory, MemoryStore::new(None))
}

async fn seed(router: &RouterHandle, path: &str) {
    let mut w = router.write(&p(path), WriteMode::Replace).await.unwrap();
    let chunk = Bytes::from(vec![0x5Au8; CHUNK]);
    for _ in 0..SIZE / CHUNK {
        w.write(chunk.clone()).await.unwrap();
    }
    w.commit().await.unwrap();
}

fn copy(from: &str, to: &str) -> TransferRequest {
    TransferRequest {
        kind: TransferKind::Copy,
        sources: vec![p(from)],
        dest: p(to),
        dest_is_dir: false,
        recursive: false,
        jobs: 4,
    }
}

fn throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (m1, d2_backend) = (memory("/m1"), disk("/d2", d2.path()));
    let router = rt.block_on(async {
        let table = vec![
            Mount::new(p("/m1"), Tier::Hot, m1.clone()),
            Mount::new(p("/m2"), Tier::Hot, memory("/m2")),
            Mount::new(p("/d1"), Tier::Cold, disk("/d1", d1.path())),
            Mount::new(p("/d2"), Tier::Cold, d2_backend.clone()),
        ];
        let router = RouterHandle::spawn(MountTable::new(table).unwrap());
        seed(&router, "/m1/f").await;
        seed(&router, "/d1/f").await;
        router
    });
    let mut group = c.benchmark_group("cp 64MiB");
    group
        .throughput(Throughput::Bytes(SIZE as u64))
        .sample_size(10);
    let pairs = [
        ("memory->disk", "/m1/f", "/d2/f"),
        ("disk->memory", "/d1/f", "/m2/f"),
        ("memory->memory", "/m1/f", "/m2/f"),
        ("disk->disk", "/d1/f", "/d2/g"),
        ("memory same mount", "/m1/f", "/m1/g"),
        ("disk same mount", "/d1/f", "/d1/g"),
    ];
    for (name, from, to) in pairs {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let router = router.clone();
                rt.block_on(rt.spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        router
                            .transfer(copy(from, to), "bench".into())
                            .await
                            .unwrap();
                    }
                    start.elapsed()
                }))
                .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("events");
    group
        .throughput(Throughput::Bytes(SIZE as u64))
        .sample_size(10);
    group.bench_function("job with a draining subscriber", |b| {
        b.iter_custom(|iters| {
            let router = router.clone();
            rt.block_on(rt.spawn(async move {
                let mut events = router.subscribe();
                let drain = tokio::spawn(async move { while events.recv().await.is_ok() {} });
                let start = Instant::now();
                for _ in 0..iters {
                    router
                        .transfer(copy("/m1/f", "/d2/f"), "bench".into())
                        .await
                        .unwrap();
                }
                let elapsed = start.elapsed();
                drain.abort();
                elapsed
            }))
            .unwrap()
        })
    });
    group.bench_function("bare stream_file", |b| {
        b.iter_custom(|iters| {
            let (src, dst) = (m1.clone(), d2_backend.clone());
            rt.block_on(rt.spawn(async move {
                let meter = Meter::new();
                let pace = transfer::Pace::unlimited(1);
                let start = Instant::now();
                for _ in 0..iters {
                    transfer::stream_file(
                        &src,
                        &p("/m1/f"),
                        &dst,
                        &p("/d2/f"),
                        SIZE as u64,
                        &meter,
                        &pace,
                        false,
                    )
                    .await
                    .unwrap();
                }
                start.elapsed()
            }))
            .unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = throughput
}
criterion_main!(benches);
