//! The Redis store under faults and sharing, each against a private `redis-server`:
//!
//! - faults of issue point 3: an unreachable server, a server killed mid-write and restarted,
//!   `maxmemory` under `noeviction`, an evicting policy, a deleted chunk, a key of the wrong type;
//!   the same for batched writes of small files (past `maxmemory`, to a dead server);
//! - usage: `maxmemory` is the capacity, `used_memory` what is used;
//! - orphans: a writer that dies without cleaning up leaves chunks a sweep removes;
//! - sharing: two stores on one namespace see one tree; two writers to one path; a reader racing
//!   a replace by another process;
//! - a directory of 100,000 entries.
//!
//! Without `redis-server` each test says it is skipped and passes (fails with
//! `MAVFS_REQUIRE_REDIS=1`). No test asserts on speed: timeouts only bound how long a failure may
//! take, generously.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::store::redis::{RedisOptions, RedisStore};
use mavfs_actors::store::{WholeFile, WholeRead, WriteMode};
use mavfs_actors::transfer::{TransferKind, TransferRequest};
use mavfs_actors::{BackendKind, Mount, MountTable, Tier};
use mavfs_actors::{Error, ErrorKind, RouterHandle, VPath};

use mavfs_test_support::redis as redis_support;

use redis_support::RedisServer;

/// Chunk size of these tests' stores: small, so that files of many chunks stay small.
const CHUNK: usize = 64 * 1024;
/// Command timeout of these tests' stores.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

fn options(url: String, namespace: &str) -> RedisOptions {
    RedisOptions {
        url: Some(url),
        namespace: namespace.to_string(),
        chunk_size: CHUNK,
        command_timeout: COMMAND_TIMEOUT,
        ..RedisOptions::default()
    }
}

async fn connect(server: &RedisServer, namespace: &str) -> RedisStore {
    RedisStore::connect(options(server.url(), namespace))
        .await
        .unwrap()
}

/// A store mounted at `/r`.
async fn mount(server: &RedisServer, namespace: &str) -> BackendHandle {
    BackendHandle::spawn(
        p("/r"),
        BackendKind::Redis,
        connect(server, namespace).await,
    )
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 7 + i / 251 + seed * 13) as u8)
        .collect()
}

async fn write(b: &BackendHandle, path: &str, data: &[u8]) -> Result<(), Error> {
    let mut w = b.open_write(&p(path), WriteMode::Replace).await?;
    for chunk in data.chunks(CHUNK) {
        w.write(Bytes::copy_from_slice(chunk)).await?;
    }
    w.commit().await
}

async fn read(b: &BackendHandle, path: &str) -> Result<Vec<u8>, Error> {
    let mut r = b.open_read(&p(path)).await?;
    let mut out = Vec::new();
    while let Some(chunk) = r.chunks.next().await {
        out.extend_from_slice(&chunk?);
    }
    assert_eq!(out.len() as u64, r.size, "a reader yields exactly its size");
    Ok(out)
}

async fn names(b: &BackendHandle, path: &str) -> Vec<String> {
    let mut names: Vec<String> = b
        .list(&p(path))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

/// The chunk keys of `namespace`.
fn chunk_keys(server: &RedisServer, namespace: &str) -> Vec<String> {
    server.scan(&format!("{namespace}:c:*"))
}

/// Waits until the namespace holds exactly `expected` chunk keys and no pending data (the
/// store deletes abandoned data in the background).
async fn settle(server: &RedisServer, namespace: &str, expected: usize) {
    let pending = format!("{namespace}:{{{namespace}}}:pending");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let chunks = chunk_keys(server, namespace).len();
        let staged = server.cli(&["ZCARD", &pending]).trim().to_string();
        if chunks == expected && staged == "0" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "namespace {namespace}: {chunks} chunk keys (expected {expected}), {staged} pending"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

macro_rules! assert_kind {
    ($result:expr, $kind:expr) => {
        match $result {
            Ok(_) => panic!("expected {:?}, got success", $kind),
            Err(e) => {
                assert_eq!(e.kind(), $kind, "{e}");
                e
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Point 3: faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_its_password_never_shows() {
    if !redis_support::installed() {
        // No server needed, but keep the suite's promise about skipping consistently.
        redis_support::skip("unreachable server");
        return;
    }
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
    let started = Instant::now();
    let err = match RedisStore::connect(options(url, "unreachable")).await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        started.elapsed() < COMMAND_TIMEOUT + Duration::from_secs(3),
        "connect took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_write_fails_it_in_time_and_a_restart_keeps_the_old_file() {
    let Some(mut server) = RedisServer::start("server killed mid-write") else {
        return;
    };
    let ns = "killed";
    let b = mount(&server, ns).await;
    let old = pattern(3 * CHUNK + 5, 1);
    write(&b, "/r/f", &old).await.unwrap();
    // What the restarted server comes back with.
    assert_eq!(server.cli(&["SAVE"]).trim(), "OK");

    let mut w = b.open_write(&p("/r/f"), WriteMode::Replace).await.unwrap();
    let new = pattern(16 * CHUNK, 2);
    for chunk in new.chunks(CHUNK).take(4) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    server.kill();
    let started = Instant::now();
    let failed = async {
        for chunk in new.chunks(CHUNK).skip(4) {
            w.write(Bytes::copy_from_slice(chunk)).await?;
        }
        w.commit().await
    }
    .await;
    let err = assert_kind!(failed, ErrorKind::Unavailable);
    assert!(err.to_string().contains("/r/f"), "names the file: {err}");
    assert!(
        err.to_string().contains(&server.url()),
        "names the server: {err}"
    );
    assert!(
        started.elapsed() < 2 * COMMAND_TIMEOUT + Duration::from_secs(2),
        "failed after {:?}",
        started.elapsed()
    );
    // Every operation fails in time while the server is down.
    let started = Instant::now();
    assert_kind!(b.stat(&p("/r/f")).await, ErrorKind::Unavailable);
    assert!(started.elapsed() < COMMAND_TIMEOUT + Duration::from_secs(2));

    server.restart();
    // The client reconnects by itself; the old file is there whole, nothing partial.
    let deadline = Instant::now() + Duration::from_secs(15);
    let back = loop {
        match read(&b, "/r/f").await {
            Ok(data) => break data,
            Err(e) if e.kind() == ErrorKind::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("after the restart: {e}"),
        }
    };
    assert!(back == old, "the old file changed");
    assert_eq!(names(&b, "/r").await, ["f"]);
    settle(&server, ns, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_dead_server_fails_within_the_timeout_and_keeps_the_source() {
    let Some(mut server) = RedisServer::start("transfer to a dead server") else {
        return;
    };
    let redis = mount(&server, "dead").await;
    let memory = BackendHandle::spawn(p("/m"), BackendKind::Memory, MemoryStore::new(None));
    let router = RouterHandle::spawn(
        MountTable::new(vec![
            Mount::new(p("/m"), Tier::Hot, memory),
            Mount::new(p("/r"), Tier::Hot, redis),
        ])
        .unwrap(),
    );
    let data = pattern(8 * CHUNK, 3);
    let mut w = router
        .write(&p("/m/src"), WriteMode::Replace)
        .await
        .unwrap();
    w.write(Bytes::from(data.clone())).await.unwrap();
    w.commit().await.unwrap();
    server.kill();
    let request = TransferRequest {
        kind: TransferKind::Copy,
        sources: vec![p("/m/src")],
        dest: p("/r/dst"),
        recursive: true,
        jobs: 4,
    };
    let started = Instant::now();
    let err = assert_kind!(
        router.transfer(request, "cp /m/src /r/dst".into()).await,
        ErrorKind::Unavailable
    );
    assert!(
        started.elapsed() < 2 * COMMAND_TIMEOUT + Duration::from_secs(2),
        "failed after {:?}: {err}",
        started.elapsed()
    );
    let mut r = router.read(&p("/m/src")).await.unwrap();
    let mut back = Vec::new();
    while let Some(c) = r.chunks.next().await {
        back.extend_from_slice(&c.unwrap());
    }
    assert!(back == data, "the source changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxmemory_under_noeviction_is_no_space_and_leaves_nothing_behind() {
    let args = ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"];
    let Some(server) = RedisServer::start_with("maxmemory noeviction", &args) else {
        return;
    };
    let ns = "full";
    let b = mount(&server, ns).await;
    let old = pattern(CHUNK + 1, 4);
    write(&b, "/r/f", &old).await.unwrap();

    let big = pattern(128 * CHUNK, 5); // 8 MiB into 4 MiB
    let err = assert_kind!(write(&b, "/r/f", &big).await, ErrorKind::NoSpace);
    assert_eq!(
        err.to_string().matches("No space left on device").count(),
        1
    );
    assert!(err.to_string().contains("/r/f"), "{err}");
    assert!(
        read(&b, "/r/f").await.unwrap() == old,
        "destination changed"
    );
    assert_kind!(write(&b, "/r/g", &big).await, ErrorKind::NoSpace);
    assert_eq!(names(&b, "/r").await, ["f"], "no partial file");
    // Only the old file's two chunks remain, once the failed writes' chunks are deleted.
    settle(&server, ns, 2).await;
    // With the space back, writing works again, and removing works when full too.
    write(&b, "/r/g", &pattern(10, 6)).await.unwrap();
    b.remove_file(&p("/r/g")).await.unwrap();
    let usage = b.usage().await.unwrap();
    assert_eq!((usage.files, usage.bytes), (1, old.len() as u64));
    assert_eq!(usage.capacity, Some(4 << 20), "maxmemory is the capacity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_reports_maxmemory_and_used_memory() {
    let args = ["--maxmemory", "64mb"];
    let Some(server) = RedisServer::start_with("usage with maxmemory", &args) else {
        return;
    };
    let b = mount(&server, "usage").await;
    write(&b, "/r/f", &pattern(3 * CHUNK, 7)).await.unwrap();
    let usage = b.usage().await.unwrap();
    assert_eq!((usage.files, usage.bytes), (1, 3 * CHUNK as u64));
    assert!(!usage.approximate, "Redis counts exactly");
    assert_eq!(usage.capacity, Some(64 << 20), "maxmemory is the capacity");
    let used = usage.used.expect("used_memory is reported");
    assert!(
        used >= 3 * CHUNK as u64,
        "the file's chunks are in used_memory: {usage:?}"
    );
    assert_eq!(usage.available, Some((64 << 20) - used));

    // Without maxmemory there is no capacity, nor anything available of it; used still shows.
    let Some(unlimited) = RedisServer::start("usage without maxmemory") else {
        return;
    };
    let usage = mount(&unlimited, "usage").await.usage().await.unwrap();
    assert_eq!((usage.capacity, usage.available), (None, None));
    assert!(usage.used.is_some_and(|u| u > 0), "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_maxmemory_commits_what_fit_whole_and_leaves_nothing_staged() {
    let args = ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"];
    let Some(server) = RedisServer::start_with("batch past maxmemory", &args) else {
        return;
    };
    let ns = "batchfull";
    let b = mount(&server, ns).await;
    // 8 MiB of 64 KiB files into 4 MiB: the first ones fit, the rest cannot.
    let files: Vec<WholeFile> = (0..128)
        .map(|i| WholeFile {
            path: p(&format!("/r/f{i:03}")),
            data: Bytes::from(pattern(CHUNK, i)),
        })
        .collect();
    let results = b.write_files(files.clone()).await;
    let mut committed = 0;
    for (file, result) in files.iter().zip(&results) {
        match result {
            Ok(()) => {
                committed += 1;
                assert!(
                    read(&b, file.path.as_str()).await.unwrap() == file.data,
                    "{}: committed whole",
                    file.path
                );
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
                assert_eq!(e.path(), Some(&file.path), "{e}");
                assert_kind!(b.stat(&file.path).await, ErrorKind::NotFound);
            }
        }
    }
    assert!(committed < files.len(), "4 MiB cannot hold 8 MiB");
    assert_eq!(names(&b, "/r").await.len(), committed, "no partial file");
    // One chunk per committed file; the failed files' chunks and members are gone.
    settle(&server, ns, committed).await;
    let usage = b.usage().await.unwrap();
    assert_eq!(usage.files, committed as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_to_a_dead_server_fails_every_file_within_the_timeout() {
    let Some(mut server) = RedisServer::start("batch to a dead server") else {
        return;
    };
    let b = mount(&server, "deadbatch").await;
    server.kill();
    let files: Vec<WholeFile> = (0..16)
        .map(|i| WholeFile {
            path: p(&format!("/r/f{i}")),
            data: Bytes::from(pattern(100, i)),
        })
        .collect();
    let started = Instant::now();
    let results = b.write_files(files.clone()).await;
    assert!(
        started.elapsed() < 2 * COMMAND_TIMEOUT + Duration::from_secs(2),
        "failed after {:?}",
        started.elapsed()
    );
    for (file, result) in files.iter().zip(results) {
        let e = assert_kind!(result, ErrorKind::Unavailable);
        assert_eq!(e.path(), Some(&file.path), "{e}");
    }
    let paths: Vec<VPath> = files.iter().map(|f| f.path.clone()).collect();
    for result in b.read_files(&paths, 1 << 20).await {
        assert_kind!(result, ErrorKind::Unavailable);
    }
}

#[tokio::test]
async fn an_evicting_policy_gives_a_warning_at_connect() {
    let args = ["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"];
    let Some(server) = RedisServer::start_with("evicting policy", &args) else {
        return;
    };
    let store = connect(&server, "evict").await;
    let warnings = store.warnings().join("\n");
    assert!(warnings.contains("allkeys-lru"), "{warnings:?}");
    assert!(warnings.contains("lost data"), "{warnings:?}");
    let quiet = RedisServer::start("noeviction policy").unwrap();
    assert!(connect(&quiet, "quiet").await.warnings().is_empty());
}

#[tokio::test]
async fn a_missing_chunk_is_an_error_naming_the_file_never_a_short_read() {
    let Some(server) = RedisServer::start("missing chunk") else {
        return;
    };
    let ns = "holes";
    let b = mount(&server, ns).await;
    let data = pattern(3 * CHUNK + 7, 7);
    write(&b, "/r/f", &data).await.unwrap();
    let keys = chunk_keys(&server, ns);
    assert_eq!(keys.len(), 4);
    let second = keys.iter().find(|k| k.contains(":1}:")).unwrap();
    assert_eq!(server.cli(&["DEL", second]).trim(), "1");

    let mut r = b.open_read(&p("/r/f")).await.unwrap();
    let mut got = 0;
    let err = loop {
        match r.chunks.next().await {
            Some(Ok(chunk)) => got += chunk.len(),
            Some(Err(e)) => break e,
            None => panic!("the stream ended after {got} of {} bytes", data.len()),
        }
    };
    assert_eq!(err.kind(), ErrorKind::Io);
    let shown = err.to_string();
    assert!(shown.starts_with("/r/f: Input/output error"), "{shown}");
    assert!(shown.contains("chunk 2 of 4 is missing"), "{shown}");
    assert_eq!(got, CHUNK, "only the chunk before the hole came through");

    // A batched read of the same file fails it the same way, and reads the others whole.
    write(&b, "/r/g", b"whole").await.unwrap();
    let results = b.read_files(&[p("/r/f"), p("/r/g")], 1 << 20).await;
    let err = assert_kind!(&results[0], ErrorKind::Io);
    assert!(err.to_string().contains("chunk 2 of 4 is missing"), "{err}");
    assert_eq!(err.path(), Some(&p("/r/f")));
    assert!(
        matches!(results[1].as_ref().unwrap(), WholeRead::Data(d, _) if d == &b"whole"[..]),
        "{:?}",
        results[1]
    );
}

#[tokio::test]
async fn keys_of_the_wrong_type_are_errors_naming_them() {
    let Some(server) = RedisServer::start("wrong-type keys") else {
        return;
    };
    let ns = "types";
    let b = mount(&server, ns).await;
    b.mkdir(&p("/r/d"), false).await.unwrap();
    write(&b, "/r/d/f", b"data").await.unwrap();

    // The directory hash of /d, replaced by a string.
    let dir_key = format!("{ns}:{{{ns}}}:d:1");
    server.cli(&["DEL", &dir_key]);
    server.cli(&["SET", &dir_key, "not a hash"]);
    let err = assert_kind!(b.list(&p("/r/d")).await, ErrorKind::Io);
    assert!(err.to_string().contains(&dir_key), "{err}");
    assert!(err.to_string().contains("wrong type"), "{err}");
    let err = assert_kind!(b.stat(&p("/r/d/f")).await, ErrorKind::Io);
    assert!(err.to_string().contains(&dir_key), "{err}");

    // A chunk replaced by a list.
    let before = chunk_keys(&server, ns);
    write(&b, "/r/g", b"chunk").await.unwrap();
    let chunk = chunk_keys(&server, ns)
        .into_iter()
        .find(|k| !before.contains(k))
        .unwrap();
    server.cli(&["DEL", &chunk]);
    server.cli(&["RPUSH", &chunk, "x"]);
    let err = assert_kind!(read(&b, "/r/g").await, ErrorKind::Io);
    assert!(err.to_string().contains(&chunk), "{err}");

    // A fixed key of the wrong type stops connect.
    let pending = format!("{ns}:{{{ns}}}:pending");
    server.cli(&["DEL", &pending]);
    server.cli(&["SET", &pending, "x"]);
    let err = assert_kind!(
        RedisStore::connect(options(server.url(), ns)).await,
        ErrorKind::Io
    );
    assert!(err.to_string().contains(&pending), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Orphans
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_deletes_what_a_dead_writer_left() {
    let Some(server) = RedisServer::start("orphan sweep") else {
        return;
    };
    let ns = "orphans";
    let mut dead = connect(&server, ns).await;
    use mavfs_actors::store::{FileWriter, Store};
    dead.mkdir(&p("/d"), false).await.unwrap();
    let mut w = dead
        .open_write(&p("/d/f"), WriteMode::Replace)
        .await
        .unwrap();
    for chunk in pattern(5 * CHUNK, 8).chunks(CHUNK) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let staged = w.finish().await.unwrap();
    // The process "dies": nothing it staged is cleaned up, and it stops vouching for it.
    std::mem::forget(staged);
    drop(dead);
    assert_eq!(chunk_keys(&server, ns).len(), 5);

    let store = connect(&server, ns).await;
    assert_eq!(
        chunk_keys(&server, ns).len(),
        5,
        "connect spares data younger than the grace period"
    );
    let report = store.sweep(Duration::ZERO).await.unwrap();
    assert_eq!(report.data, 1);
    settle(&server, ns, 0).await;
    let b = BackendHandle::spawn(p("/r"), BackendKind::Redis, store);
    assert!(names(&b, "/r/d").await.is_empty(), "nothing was committed");
}

// ---------------------------------------------------------------------------------------------
// Point 2: two clients, one server
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_one_namespace_see_one_tree() {
    let Some(server) = RedisServer::start("two clients") else {
        return;
    };
    let ns = "shared";
    let a = mount(&server, ns).await;
    let b = mount(&server, ns).await;
    a.mkdir(&p("/r/dir"), false).await.unwrap();
    let data = pattern(2 * CHUNK + 3, 9);
    write(&a, "/r/dir/f", &data).await.unwrap();
    assert_eq!(names(&b, "/r/dir").await, ["f"]);
    assert!(read(&b, "/r/dir/f").await.unwrap() == data);
    b.rename(&p("/r/dir/f"), &p("/r/g")).await.unwrap();
    assert_eq!(names(&a, "/r").await, ["dir", "g"]);
    assert!(read(&a, "/r/g").await.unwrap() == data);
    b.remove_all(&p("/r/dir")).await.unwrap();
    assert_eq!(names(&a, "/r").await, ["g"]);
    let (ua, ub) = (a.usage().await.unwrap(), b.usage().await.unwrap());
    assert_eq!(ua, ub);
    assert_eq!((ua.files, ua.dirs, ua.bytes), (1, 0, data.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_to_one_path_the_last_complete_write_wins_whole() {
    let Some(server) = RedisServer::start("two writers") else {
        return;
    };
    let ns = "race";
    let a = mount(&server, ns).await;
    let b = mount(&server, ns).await;
    let (da, db) = (pattern(6 * CHUNK + 1, 10), pattern(4 * CHUNK + 9, 11));
    for a_last in [false, true] {
        let mut wa = a.open_write(&p("/r/f"), WriteMode::Replace).await.unwrap();
        let mut wb = b.open_write(&p("/r/f"), WriteMode::Replace).await.unwrap();
        // Interleave the two writers chunk by chunk.
        let (mut ca, mut cb) = (da.chunks(CHUNK), db.chunks(CHUNK));
        loop {
            let (x, y) = (ca.next(), cb.next());
            if x.is_none() && y.is_none() {
                break;
            }
            if let Some(x) = x {
                wa.write(Bytes::copy_from_slice(x)).await.unwrap();
            }
            if let Some(y) = y {
                wb.write(Bytes::copy_from_slice(y)).await.unwrap();
            }
        }
        let expected = if a_last {
            wb.commit().await.unwrap();
            wa.commit().await.unwrap();
            &da
        } else {
            wa.commit().await.unwrap();
            wb.commit().await.unwrap();
            &db
        };
        for client in [&a, &b] {
            assert!(read(client, "/r/f").await.unwrap() == *expected);
        }
    }
    // Only the winner's chunks remain.
    settle(&server, ns, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_racing_a_replace_by_another_client_gets_the_old_file_or_an_error() {
    let Some(server) = RedisServer::start("reader racing a replace") else {
        return;
    };
    let ns = "racing";
    let a = mount(&server, ns).await;
    let b = mount(&server, ns).await;
    let old = pattern(40 * CHUNK, 12);
    write(&a, "/r/f", &old).await.unwrap();
    let mut r = b.open_read(&p("/r/f")).await.unwrap();
    let mut got = r.chunks.next().await.unwrap().unwrap().to_vec();
    write(&a, "/r/f", &pattern(40 * CHUNK, 13)).await.unwrap();
    let outcome = loop {
        match r.chunks.next().await {
            Some(Ok(chunk)) => got.extend_from_slice(&chunk),
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    match outcome {
        Ok(()) => assert!(got == old, "a complete read is the old version"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Io, "{e}");
            assert!(e.to_string().contains("/r/f"), "{e}");
            assert!(
                got.len() < old.len() && old.starts_with(&got),
                "never a mix"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A big directory
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_100000_entries_lists_whole() {
    let Some(server) = RedisServer::start("100,000 entries") else {
        return;
    };
    const ENTRIES: usize = 100_000;
    const CLIENTS: usize = 4;
    let ns = "big";
    let mut handles = Vec::new();
    for _ in 0..CLIENTS {
        handles.push(mount(&server, ns).await);
    }
    handles[0].mkdir(&p("/r/big"), false).await.unwrap();
    // Several clients create the entries at once (each store's actor runs one at a time).
    let mut tasks = Vec::new();
    for (c, b) in handles.iter().enumerate() {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            for i in (c..ENTRIES).step_by(CLIENTS) {
                let path = p(&format!("/r/big/entry-{i:06}"));
                if i % 1000 == 0 {
                    b.mkdir(&path, false).await.unwrap();
                } else {
                    b.touch(&path).await.unwrap();
                }
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    println!("{ENTRIES} entries created in {:?}", started.elapsed());
    let started = Instant::now();
    let entries = handles[1].list(&p("/r/big")).await.unwrap();
    println!("listed in {:?}", started.elapsed());
    assert_eq!(entries.len(), ENTRIES);
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ENTRIES, "no duplicates");
    assert_eq!(names[0], "entry-000000");
    assert_eq!(names[ENTRIES - 1], "entry-099999");
    let dirs = entries.iter().filter(|e| e.meta.is_dir()).count();
    assert_eq!(dirs, ENTRIES / 1000);
    let usage = handles[2].usage().await.unwrap();
    assert_eq!(
        (usage.files, usage.dirs),
        (
            (ENTRIES - ENTRIES / 1000) as u64,
            (ENTRIES / 1000 + 1) as u64
        )
    );
    let started = Instant::now();
    handles[3].remove_all(&p("/r/big")).await.unwrap();
    println!("removed in {:?}", started.elapsed());
    let usage = handles[0].usage().await.unwrap();
    assert_eq!((usage.files, usage.dirs), (0, 0));
    assert!(names_empty(&handles[0]).await);
}

async fn names_empty(b: &BackendHandle) -> bool {
    names(b, "/r").await.is_empty()
}
