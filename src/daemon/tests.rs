//! The daemon in process: a server on a private socket over a real engine, and real clients
//! ([`Remote`]) talking the protocol to it. What crosses processes (signals, other users, the
//! binary's options) is tested through the binary in `tests/cli/daemon.rs`.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::{EventKind, JobState, TransferKind, TransferRequest, VPath, WriteMode};
use tokio_util::sync::CancellationToken;

use super::client::Remote;
use super::server::{self, ServerOptions};
use super::socket;
use crate::config::Config;
use crate::engine::{Engine, FileWrite};

const TIMEOUT: Duration = Duration::from_secs(20);

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

/// A daemon serving an in-process engine (memory `/vram`, disk `/vdisk`) on a temp socket.
struct Daemon {
    dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
    engine: Engine,
}

impl Daemon {
    async fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let block = dir.path().join("block_dir");
        std::fs::create_dir(&block).unwrap();
        let engine = crate::hypervisor::start(&Config::defaults(&block))
            .await
            .unwrap();
        let socket = dir.path().join("run/mavfs.sock");
        let listening = socket::bind(&socket).unwrap();
        let stop = CancellationToken::new();
        let (engine2, stop2) = (engine.clone(), stop.clone());
        let served = tokio::spawn(async move {
            server::run(
                &listening.listener,
                engine2,
                ServerOptions::default(),
                stop2,
            )
            .await;
            drop(listening);
        });
        Daemon {
            dir,
            socket,
            stop,
            served,
            engine,
        }
    }

    async fn client(&self) -> Engine {
        Engine::Remote(Remote::connect(&self.socket).await.unwrap())
    }

    async fn stop(self) {
        self.stop.cancel();
        self.served.await.unwrap();
        self.engine.shutdown().await;
        drop(self.dir);
    }
}

async fn put(engine: &Engine, path: &str, data: Bytes) {
    let mut writer = engine.write(&p(path), WriteMode::Replace).await.unwrap();
    writer.write(data).await.unwrap();
    writer.commit().await.unwrap();
}

async fn get(engine: &Engine, path: &str) -> Vec<u8> {
    let mut reader = engine.read(&p(path)).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = reader.chunks.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(out.len() as u64, reader.size);
    out
}

fn pattern(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>())
}

fn copy(kind: TransferKind, from: &str, to: &str) -> TransferRequest {
    TransferRequest {
        kind,
        sources: vec![p(from)],
        dest: p(to),
        dest_is_dir: false,
        recursive: true,
        jobs: 4,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_client_does_what_an_embedded_one_does() {
    let daemon = Daemon::start().await;
    let client = daemon.client().await;
    assert_eq!(client.home(), p("/vram"));
    assert_eq!(client.mounts(), daemon.engine.mounts());
    assert_eq!(
        client.resolve(&p("/vram"), "../..").unwrap(),
        p("/vram"),
        "`..` stops at the daemon's mount roots"
    );
    client.mkdir(&p("/vram/a/b"), true).await.unwrap();
    client.touch(&p("/vram/a/t")).await.unwrap();
    // 3 MiB and a bit: several data frames each way, past the credit window.
    let data = pattern((3 << 20) + 17);
    put(&client, "/vram/a/b/f", data.clone()).await;
    assert_eq!(get(&client, "/vram/a/b/f").await, data);
    assert_eq!(get(&daemon.engine, "/vram/a/b/f").await, data);
    let names: Vec<String> = client
        .list(&p("/vram/a"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["b", "t"]);
    assert_eq!(
        client.stat(&p("/vram/a/b/f")).await.unwrap().size,
        data.len() as u64
    );
    let err = client.stat(&p("/vram/nope")).await.unwrap_err();
    assert_eq!(err.to_string(), "/vram/nope: No such file or directory");
    let summary = client
        .run(
            copy(TransferKind::Push, "/vram/a", "/vdisk/a"),
            "push".into(),
            Default::default(),
        )
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(summary.files, 2);
    assert_eq!(get(&daemon.engine, "/vdisk/a/b/f").await, data);
    client.remove(&p("/vdisk/a"), true, false).await.unwrap();
    assert!(daemon.engine.stat(&p("/vdisk/a")).await.is_err());
    let stats = client.stats().await.unwrap();
    assert_eq!(stats[0].usage.files, 2);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_dropped_before_commit_leaves_nothing() {
    let daemon = Daemon::start().await;
    let client = daemon.client().await;
    put(&client, "/vram/keep", Bytes::from_static(b"old")).await;
    let mut writer = client
        .write(&p("/vram/keep"), WriteMode::Replace)
        .await
        .unwrap();
    writer.write(pattern(2 << 20)).await.unwrap();
    drop(writer);
    let mut fresh = client
        .write(&p("/vram/new"), WriteMode::Replace)
        .await
        .unwrap();
    fresh.write(pattern(1000)).await.unwrap();
    // The connection goes away with a write open: nothing is committed.
    let FileWrite::Remote(_) = &fresh else {
        panic!("attached writes are remote")
    };
    drop(fresh);
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(&daemon.engine, "/vram/keep").await, b"old");
    assert!(daemon.engine.stat(&p("/vram/new")).await.is_err());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_reaches_the_writer() {
    let daemon = Daemon::start().await;
    let client = daemon.client().await;
    let err = client
        .write(&p("/vram/no/such/dir/f"), WriteMode::Replace)
        .await
        .err()
        .expect("the parent is missing");
    assert_eq!(
        err.to_string(),
        "/vram/no/such/dir/f: No such file or directory"
    );
    let err = client.read(&p("/vram")).await.err().expect("a directory");
    assert_eq!(err.to_string(), "/vram: Is a directory");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreground_job_is_cancelled_when_its_client_goes_and_a_background_one_runs_on() {
    let daemon = Daemon::start().await;
    let setup = daemon.client().await;
    // Enough files that the jobs are still running when their client goes.
    setup.mkdir(&p("/vram/src"), false).await.unwrap();
    for i in 0..400 {
        put(&setup, &format!("/vram/src/f{i}"), pattern(64 << 10)).await;
    }
    let client = daemon.client().await;
    let background = client
        .start(
            copy(TransferKind::Push, "/vram/src", "/vdisk/bg"),
            "bg".into(),
            Default::default(),
        )
        .await
        .unwrap();
    let foreground = client
        .run(
            copy(TransferKind::Copy, "/vram/src", "/vram/fg"),
            "fg".into(),
            Default::default(),
        )
        .await
        .unwrap();
    let fg_id = foreground.id();
    drop(client);
    drop(foreground);
    let outcome = tokio::time::timeout(TIMEOUT, setup.wait(fg_id))
        .await
        .unwrap()
        .unwrap();
    // The foreground job either was cancelled or had just finished; it never fails.
    if let Err(e) = outcome {
        assert_eq!(e.kind(), mavfs_actors::ErrorKind::Cancelled, "{e}");
    }
    let done = tokio::time::timeout(TIMEOUT, setup.wait(background))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.files, 400, "the background job outlived its client");
    let jobs = setup.jobs().await.unwrap();
    assert_eq!(jobs.len(), 2, "job ids are the daemon's, shared by clients");
    assert_eq!(jobs[0].state, JobState::Done);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscribed_client_sees_a_jobs_events() {
    let daemon = Daemon::start().await;
    let (one, two) = (daemon.client().await, daemon.client().await);
    let (mut events_one, mut events_two) = (one.subscribe(), two.subscribe());
    put(&one, "/vram/f", pattern(100_000)).await;
    // The subscriptions are requests like any other: make sure both are in place.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let job = one
        .start(
            copy(TransferKind::Push, "/vram/f", "/vdisk/f"),
            "push".into(),
            Default::default(),
        )
        .await
        .unwrap();
    for events in [&mut events_one, &mut events_two] {
        let finished = tokio::time::timeout(TIMEOUT, async {
            loop {
                let event = events.recv().await.unwrap();
                if event.job == job && event.kind.is_terminal() {
                    return event;
                }
            }
        })
        .await
        .unwrap();
        assert!(matches!(finished.kind, EventKind::Finished(_)));
        assert_eq!(finished.progress.bytes_done, 100_000);
    }
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_concurrent_requests() {
    let daemon = Daemon::start().await;
    let client = daemon.client().await;
    for i in 0..8 {
        put(&client, &format!("/vram/f{i}"), pattern(300_000 + i)).await;
    }
    let reads = (0..8).map(|i| {
        let client = client.clone();
        async move { get(&client, &format!("/vram/f{i}")).await.len() }
    });
    let lens = futures::future::join_all(reads).await;
    assert_eq!(lens, (0..8).map(|i| 300_000 + i).collect::<Vec<_>>());
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_longer_than_many_windows_flows_both_ways() {
    let daemon = Daemon::start().await;
    let client = daemon.client().await;
    // 13 frames and a bit each way: credit is granted in batches many times over, and the odd
    // frame at the end leaves a batch unfinished.
    let data = pattern((13 << 20) + 5);
    put(&client, "/vram/big", data.clone()).await;
    assert_eq!(get(&daemon.engine, "/vram/big").await, data);
    assert_eq!(get(&client, "/vram/big").await, data);
    // Several at once on one connection, each with its own credit.
    let reads = (0..3).map(|_| {
        let client = client.clone();
        async move { get(&client, "/vram/big").await }
    });
    for read in futures::future::join_all(reads).await {
        assert_eq!(read, data);
    }
    // The connection is still good for a one-shot request.
    assert_eq!(
        client.stat(&p("/vram/big")).await.unwrap().size,
        data.len() as u64
    );
    daemon.stop().await;
}
