//! The backend actors stay responsive while a transfer runs: `ls` and `stat` on the very mounts a
//! large push reads and writes answer while it is still running, because data never streams
//! through a backend's mailbox.

use std::time::Duration;

use bytes::Bytes;
use mavfs_actors::JobState;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::WriteMode;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::transfer::{TransferKind, TransferRequest};
use mavfs_actors::{BackendKind, Mount, MountTable, Tier};
use mavfs_actors::{RouterHandle, VPath};

/// Guards against a hang; nothing here measures time.
const TIMEOUT: Duration = Duration::from_secs(60);
const SIZE: usize = 512 << 20;
const CHUNK: usize = 1 << 20;

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_and_stat_answer_while_a_large_push_runs() {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskStore::open(dir.path(), DiskOptions::default()).unwrap();
    let router = RouterHandle::spawn(
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
    );
    let mut w = router
        .write(&p("/vram/big"), WriteMode::Replace)
        .await
        .unwrap();
    let chunk = Bytes::from(vec![1u8; CHUNK]);
    for _ in 0..SIZE / CHUNK {
        w.write(chunk.clone()).await.unwrap();
    }
    w.commit().await.unwrap();
    router.mkdir(&p("/vdisk/other"), false).await.unwrap();

    let request = TransferRequest {
        kind: TransferKind::Push,
        sources: vec![p("/vram/big")],
        dest: p("/vdisk/big"),
        dest_is_dir: false,
        recursive: true,
        jobs: 1,
    };
    let job = router
        .start(request, "push /vram/big /vdisk/big".into())
        .await
        .unwrap();
    let mut answered_while_running = 0;
    let probe = async {
        loop {
            let jobs = router.jobs().await.unwrap();
            if jobs[0].state != JobState::Running {
                break;
            }
            // Both mounts of the transfer, metadata and listings.
            router.stat(&p("/vram/big")).await.unwrap();
            router.list(&p("/vram")).await.unwrap();
            router.stat(&p("/vdisk/other")).await.unwrap();
            router.list(&p("/vdisk")).await.unwrap();
            if router.jobs().await.unwrap()[0].state == JobState::Running {
                answered_while_running += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(TIMEOUT, probe)
        .await
        .expect("the push ends");
    router.wait(job).await.unwrap().unwrap();
    assert!(
        answered_while_running >= 3,
        "ls and stat answered only {answered_while_running} times during the push"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("big")).unwrap().len(),
        SIZE as u64
    );
}
