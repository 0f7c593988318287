//! The store conformance suite: one set of cases, run against every store.
//!
//! Each case is an async function over a [`Fixture`]: a fresh store behind its backend actor,
//! mounted at `/m` so that the suite also checks that errors name full virtual paths. The cases
//! are written inside the one `conformance!` call, which turns each into a test per store
//! (`memory_store::<case>`, `disk_store::<case>`, ...): a case cannot be written and forgotten,
//! and adding a store is one line in the macro. Cases branch on [`Capability`] flags, never on a
//! store's name.
//!
//! The Redis stores run against one private `redis-server` (and one 3-master cluster) per test
//! binary, each fixture in a namespace of its own; without `redis-server` those cases say they
//! are skipped (see `mavfs_test_support::redis`).
//!
//! The memory, disk and Redis stores also run every case inside a calm [`ChaosStore`]
//! (`chaos_*_store::<case>`): delayed operations and reads handed out in short pieces must not
//! change any result.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use mavfs_actors::BackendKind;
use mavfs_actors::backend::BackendHandle;
use mavfs_actors::store::disk::{DiskOptions, DiskStore};
use mavfs_actors::store::memory::MemoryStore;
use mavfs_actors::store::redis::{RedisOptions, RedisStore};
use mavfs_actors::store::{EntryKind, ListCursor, Store, WholeFile, WholeRead, WriteMode};
use mavfs_actors::{ErrorKind, VPath};

use mavfs_test_support::redis as redis_support;

use crate::chaos::{Chaos, ChaosStore};

/// A store under test and whatever must live as long as it (a temp dir).
pub struct Fixture {
    pub backend: BackendHandle,
    _keep: Box<dyn Any + Send>,
}

/// Spawns `store` at `/m`, wrapped in a calm [`ChaosStore`] (delays and short reads, never a
/// failure) when `chaos` is set: every case must pass the same either way.
fn spawn<S: Store>(kind: BackendKind, store: S, chaos: bool) -> BackendHandle {
    static SEED: AtomicU64 = AtomicU64::new(1);
    if chaos {
        let chaos = Chaos::calm(SEED.fetch_add(1, Ordering::Relaxed));
        BackendHandle::spawn(
            p("/m"),
            kind,
            ChaosStore {
                inner: store,
                chaos,
            },
        )
    } else {
        BackendHandle::spawn(p("/m"), kind, store)
    }
}

fn memory(chaos: bool) -> Fixture {
    Fixture {
        backend: spawn(BackendKind::Memory, MemoryStore::new(None), chaos),
        _keep: Box::new(()),
    }
}

fn disk(chaos: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    // Small chunks, so that multi-chunk streaming is exercised with small files.
    let options = DiskOptions {
        chunk_size: CHUNK,
        ..DiskOptions::default()
    };
    let store = DiskStore::open(dir.path(), options).unwrap();
    Fixture {
        backend: spawn(BackendKind::Disk, store, chaos),
        _keep: Box::new(dir),
    }
}

/// A Redis store on the shared server (or cluster), in a fresh namespace; `None` without Redis.
async fn redis(cluster: bool, chaos: bool) -> Option<Fixture> {
    let (url, nodes) = if cluster {
        (
            None,
            redis_support::shared_cluster("redis_cluster conformance")?.urls(),
        )
    } else {
        let server = redis_support::shared_server("redis conformance")?;
        (Some(server.url()), Vec::new())
    };
    let options = RedisOptions {
        url,
        cluster: nodes,
        namespace: redis_support::namespace("conf"),
        chunk_size: CHUNK,
        command_timeout: Duration::from_secs(10),
        ..RedisOptions::default()
    };
    let store = RedisStore::connect(options).await.unwrap();
    Some(Fixture {
        backend: spawn(BackendKind::Redis, store, chaos),
        _keep: Box::new(()),
    })
}

const CHUNK: usize = 4096;

fn p(s: &str) -> VPath {
    VPath::parse(s).unwrap()
}

async fn write(b: &BackendHandle, path: &str, data: &[u8]) {
    let mut w = b.open_write(&p(path), WriteMode::Replace).await.unwrap();
    for chunk in data.chunks(1000) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    w.commit().await.unwrap();
}

async fn read(b: &BackendHandle, path: &str) -> Vec<u8> {
    let mut r = b.open_read(&p(path)).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = r.chunks.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(out.len() as u64, r.size, "a reader yields exactly its size");
    out
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

/// Asserts that `result` failed with `kind`.
macro_rules! assert_kind {
    ($result:expr, $kind:expr) => {
        match $result {
            Ok(_) => panic!("expected {:?}, got success", $kind),
            Err(e) => assert_eq!(e.kind(), $kind, "{e}"),
        }
    };
}

/// One pattern of bytes per size, so that misplaced chunks show.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Defines the cases it is given as the functions of [`cases`] and instantiates each as a test for
/// every store, so that a case runs wherever it is written. A store's fixture expression gives a
/// [`Fixture`], or an `Option<Fixture>` that is `None` when the store cannot run here (skipped).
/// Adding a store is one line here.
macro_rules! conformance {
    (@store $store:ident, $fixture:expr; $($case:ident)*) => {
        mod $store {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let fixture: Option<Fixture> = $fixture.into();
                    if let Some(fixture) = fixture {
                        cases::$case(fixture).await;
                    }
                }
            )*
        }
    };
    ($(pub async fn $case:ident($f:ident: Fixture) $body:block)*) => {
        pub mod cases {
            use super::*;
            $(pub async fn $case($f: Fixture) $body)*
        }
                conformance!(@store memory_store, memory(false); $($case)*);
        conformance!(@store disk_store, disk(false); $($case)*);
        conformance!(@store redis_store, redis(false, false).await; $($case)*);
        conformance!(@store redis_cluster_store, redis(true, false).await; $($case)*);
        conformance!(@store chaos_memory_store, memory(true); $($case)*);
        conformance!(@store chaos_disk_store, disk(true); $($case)*);
        conformance!(@store chaos_redis_store, redis(false, true).await; $($case)*);
    };
}

// The cases: rustfmt leaves the inside of a macro call as it is, so format new cases by hand.
conformance! {
    pub async fn root_is_an_empty_directory(f: Fixture) {
        let b = &f.backend;
        assert!(b.stat(&p("/m")).await.unwrap().is_dir());
        assert!(names(b, "/m").await.is_empty());
    }

    pub async fn stat_reports_kind_and_size(f: Fixture) {
        let b = &f.backend;
        write(b, "/m/f", b"hello").await;
        b.mkdir(&p("/m/d"), false).await.unwrap();
        let file = b.stat(&p("/m/f")).await.unwrap();
        assert_eq!((file.kind, file.size), (EntryKind::File, 5));
        assert_eq!(b.stat(&p("/m/d")).await.unwrap().kind, EntryKind::Dir);
        assert_kind!(b.stat(&p("/m/missing")).await, ErrorKind::NotFound);
        assert_kind!(b.stat(&p("/m/f/below")).await, ErrorKind::NotADirectory);
    }

    pub async fn errors_name_the_full_path(f: Fixture) {
        let err = f.backend.stat(&p("/m/nope/x")).await.unwrap_err();
        assert_eq!(err.path().map(VPath::as_str), Some("/m/nope/x"));
        assert_eq!(err.to_string(), "/m/nope/x: No such file or directory");
    }

    pub async fn mkdir_rules(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/a"), false).await.unwrap();
        assert_kind!(b.mkdir(&p("/m/a"), false).await, ErrorKind::AlreadyExists);
        assert_kind!(b.mkdir(&p("/m/x/y"), false).await, ErrorKind::NotFound);
        b.mkdir(&p("/m/x/y/z"), true).await.unwrap();
        b.mkdir(&p("/m/x/y/z"), true).await.unwrap();
        assert!(b.stat(&p("/m/x/y")).await.unwrap().is_dir());
        write(b, "/m/file", b"x").await;
        assert_kind!(
            b.mkdir(&p("/m/file"), false).await,
            ErrorKind::AlreadyExists
        );
        assert_kind!(b.mkdir(&p("/m/file"), true).await, ErrorKind::AlreadyExists);
        assert_kind!(
            b.mkdir(&p("/m/file/sub"), true).await,
            ErrorKind::NotADirectory
        );
        assert_kind!(
            b.mkdir(&p("/m/file/sub"), false).await,
            ErrorKind::NotADirectory
        );
    }

    pub async fn list_rules(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/d"), false).await.unwrap();
        write(b, "/m/d/one", b"1").await;
        write(b, "/m/d/two", b"22").await;
        b.mkdir(&p("/m/d/sub"), false).await.unwrap();
        let mut entries = b.list(&p("/m/d")).await.unwrap();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let seen: Vec<(&str, EntryKind, u64)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.meta.kind, e.meta.size))
            .collect();
        assert_eq!(
            seen,
            [
                ("one", EntryKind::File, 1),
                ("sub", EntryKind::Dir, 0),
                ("two", EntryKind::File, 2)
            ]
        );
        assert_kind!(b.list(&p("/m/d/one")).await, ErrorKind::NotADirectory);
        assert_kind!(b.list(&p("/m/none")).await, ErrorKind::NotFound);
    }

    pub async fn list_page_lists_every_entry_once_a_page_at_a_time(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/big"), false).await.unwrap();
        // More entries than Redis keeps in a small hash (512 by default), so that its pages
        // are HSCAN's.
        for i in 0..600 {
            b.touch(&p(&format!("/m/big/e{i:03}"))).await.unwrap();
        }
        b.mkdir(&p("/m/big/sub"), false).await.unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = b.list_page(&p("/m/big"), cursor, 16).await.unwrap();
            pages += 1;
            // About the limit (Redis's HSCAN COUNT is a hint), never the whole directory.
            assert!(page.entries.len() <= 64, "{} entries for 16", page.entries.len());
            seen.extend(page.entries.into_iter().map(|e| (e.name, e.meta.kind)));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert!(pages >= 10, "{pages} pages");
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want: Vec<(String, EntryKind)> =
            (0..600).map(|i| (format!("e{i:03}"), EntryKind::File)).collect();
        want.push(("sub".to_string(), EntryKind::Dir));
        assert_eq!(seen, want, "every entry exactly once");
    }

    pub async fn list_page_of_the_root_and_of_an_empty_directory(f: Fixture) {
        let b = &f.backend;
        write(b, "/m/f", b"abc").await;
        b.mkdir(&p("/m/e"), false).await.unwrap();
        let root = b.list_page(&p("/m"), None, 1000).await.unwrap();
        let mut got: Vec<(String, u64)> =
            root.entries.into_iter().map(|e| (e.name, e.meta.size)).collect();
        got.sort();
        assert_eq!(got, [("e".to_string(), 0), ("f".to_string(), 3)]);
        assert!(root.next.is_none());
        let empty = b.list_page(&p("/m/e"), None, 10).await.unwrap();
        assert!(empty.entries.is_empty() && empty.next.is_none());
    }

    pub async fn list_page_errors(f: Fixture) {
        let b = &f.backend;
        write(b, "/m/f", b"x").await;
        b.mkdir(&p("/m/d"), false).await.unwrap();
        assert_kind!(b.list_page(&p("/m/none"), None, 10).await, ErrorKind::NotFound);
        assert_kind!(b.list_page(&p("/m/f"), None, 10).await, ErrorKind::NotADirectory);
        let foreign: ListCursor = serde_json::from_str("\"not one of ours\"").unwrap();
        assert_kind!(
            b.list_page(&p("/m/d"), Some(foreign), 10).await,
            ErrorKind::InvalidInput
        );
    }

    pub async fn files_round_trip_at_chunk_boundaries(f: Fixture) {
        let b = &f.backend;
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 1] {
            let data = pattern(len);
            let path = format!("/m/f{len}");
            write(b, &path, &data).await;
            assert_eq!(read(b, &path).await, data, "{len} bytes");
            assert_eq!(b.stat(&p(&path)).await.unwrap().size, len as u64);
        }
    }

    pub async fn replace_and_append(f: Fixture) {
        let b = &f.backend;
        write(b, "/m/f", b"old contents").await;
        write(b, "/m/f", b"new").await;
        assert_eq!(read(b, "/m/f").await, b"new");
        let mut w = b.open_write(&p("/m/f"), WriteMode::Append).await.unwrap();
        w.write(Bytes::from_static(b" and more")).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(read(b, "/m/f").await, b"new and more");
        let mut w = b
            .open_write(&p("/m/fresh"), WriteMode::Append)
            .await
            .unwrap();
        w.write(Bytes::from_static(b"first")).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(read(b, "/m/fresh").await, b"first");
    }

    pub async fn writes_are_invisible_until_commit(f: Fixture) {
        let b = &f.backend;
        write(b, "/m/f", b"old").await;
        let mut w = b.open_write(&p("/m/f"), WriteMode::Replace).await.unwrap();
        w.write(Bytes::from_static(b"new bytes")).await.unwrap();
        assert_eq!(read(b, "/m/f").await, b"old");
        let mut fresh = b.open_write(&p("/m/g"), WriteMode::Replace).await.unwrap();
        fresh.write(Bytes::from_static(b"g")).await.unwrap();
        assert_eq!(names(b, "/m").await, ["f"]);
        w.commit().await.unwrap();
        assert_eq!(read(b, "/m/f").await, b"new bytes");
        drop(fresh);
        assert_eq!(
            names(b, "/m").await,
            ["f"],
            "a dropped writer leaves nothing"
        );
    }

    pub async fn a_reader_keeps_the_version_it_opened(f: Fixture) {
        let b = &f.backend;
        let old = pattern(3 * CHUNK + 5);
        write(b, "/m/f", &old).await;
        let mut r = b.open_read(&p("/m/f")).await.unwrap();
        let first = r.chunks.next().await.unwrap().unwrap();
        write(b, "/m/f", b"replacement").await;
        let mut got = first.to_vec();
        while let Some(chunk) = r.chunks.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, old, "old or new, never a mix");
        assert_eq!(read(b, "/m/f").await, b"replacement");
    }

    pub async fn open_rules(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/d"), false).await.unwrap();
        write(b, "/m/file", b"x").await;
        assert_kind!(b.open_read(&p("/m/d")).await, ErrorKind::IsADirectory);
        assert_kind!(b.open_read(&p("/m")).await, ErrorKind::IsADirectory);
        assert_kind!(b.open_read(&p("/m/none")).await, ErrorKind::NotFound);
        let replace = WriteMode::Replace;
        assert_kind!(
            b.open_write(&p("/m/d"), replace).await,
            ErrorKind::IsADirectory
        );
        assert_kind!(
            b.open_write(&p("/m/no/f"), replace).await,
            ErrorKind::NotFound
        );
        assert_kind!(
            b.open_write(&p("/m/file/f"), replace).await,
            ErrorKind::NotADirectory
        );
    }

    pub async fn commit_rechecks_the_destination(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/d"), false).await.unwrap();
        let mut w = b
            .open_write(&p("/m/d/f"), WriteMode::Replace)
            .await
            .unwrap();
        w.write(Bytes::from_static(b"data")).await.unwrap();
        b.remove_dir(&p("/m/d")).await.unwrap();
        assert_kind!(w.commit().await, ErrorKind::NotFound);
        assert!(
            names(b, "/m").await.is_empty(),
            "nothing staged stays behind"
        );
    }

    pub async fn touch_rules(f: Fixture) {
        let b = &f.backend;
        b.touch(&p("/m/t")).await.unwrap();
        assert_eq!(b.stat(&p("/m/t")).await.unwrap().size, 0);
        write(b, "/m/f", b"keep").await;
        let before = b.stat(&p("/m/f")).await.unwrap().modified;
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.touch(&p("/m/f")).await.unwrap();
        let after = b.stat(&p("/m/f")).await.unwrap();
        assert!(after.modified > before, "touch updates the time");
        assert_eq!(read(b, "/m/f").await, b"keep", "and keeps the contents");
        assert_kind!(b.touch(&p("/m/no/t")).await, ErrorKind::NotFound);
        assert_kind!(b.touch(&p("/m/f/t")).await, ErrorKind::NotADirectory);
    }

    pub async fn remove_rules(f: Fixture) {
        let b = &f.backend;
        write(b, "/m/f", b"x").await;
        b.mkdir(&p("/m/d/e"), true).await.unwrap();
        write(b, "/m/d/e/g", b"y").await;
        assert_kind!(b.remove_file(&p("/m/d")).await, ErrorKind::IsADirectory);
        assert_kind!(b.remove_file(&p("/m/none")).await, ErrorKind::NotFound);
        assert_kind!(b.remove_dir(&p("/m/f")).await, ErrorKind::NotADirectory);
        assert_kind!(b.remove_dir(&p("/m/d")).await, ErrorKind::DirectoryNotEmpty);
        assert_kind!(b.remove_dir(&p("/m")).await, ErrorKind::Busy);
        assert_kind!(b.remove_all(&p("/m")).await, ErrorKind::Busy);
        assert_kind!(b.remove_all(&p("/m/f")).await, ErrorKind::NotADirectory);
        assert_kind!(b.remove_all(&p("/m/none")).await, ErrorKind::NotFound);
        b.remove_file(&p("/m/f")).await.unwrap();
        b.remove_all(&p("/m/d")).await.unwrap();
        assert!(names(b, "/m").await.is_empty());
        b.mkdir(&p("/m/empty"), false).await.unwrap();
        b.remove_dir(&p("/m/empty")).await.unwrap();
        assert!(names(b, "/m").await.is_empty());
    }

    pub async fn rename_rules(f: Fixture) {
        let b = &f.backend;
        write(b, "/m/a", b"A").await;
        write(b, "/m/b", b"B").await;
        b.rename(&p("/m/a"), &p("/m/b")).await.unwrap();
        assert_eq!(read(b, "/m/b").await, b"A", "a file replaces a file");
        assert_eq!(names(b, "/m").await, ["b"]);
        b.rename(&p("/m/b"), &p("/m/b")).await.unwrap();
        b.mkdir(&p("/m/d/sub"), true).await.unwrap();
        write(b, "/m/d/sub/f", b"deep").await;
        b.rename(&p("/m/d"), &p("/m/e")).await.unwrap();
        assert_eq!(
            read(b, "/m/e/sub/f").await,
            b"deep",
            "a directory moves whole"
        );
        assert_kind!(
            b.rename(&p("/m/e"), &p("/m/e/sub/x")).await,
            ErrorKind::InvalidInput
        );
        b.mkdir(&p("/m/empty"), false).await.unwrap();
        assert_kind!(
            b.rename(&p("/m/b"), &p("/m/empty")).await,
            ErrorKind::IsADirectory
        );
        assert_kind!(
            b.rename(&p("/m/e"), &p("/m/b")).await,
            ErrorKind::NotADirectory
        );
        b.mkdir(&p("/m/full/x"), true).await.unwrap();
        assert_kind!(
            b.rename(&p("/m/e"), &p("/m/full")).await,
            ErrorKind::DirectoryNotEmpty
        );
        b.rename(&p("/m/e"), &p("/m/empty")).await.unwrap();
        assert_eq!(
            read(b, "/m/empty/sub/f").await,
            b"deep",
            "onto an empty directory"
        );
        assert_kind!(
            b.rename(&p("/m/none"), &p("/m/z")).await,
            ErrorKind::NotFound
        );
        assert_kind!(
            b.rename(&p("/m/b"), &p("/m/no/z")).await,
            ErrorKind::NotFound
        );
        assert_kind!(b.rename(&p("/m"), &p("/m/z")).await, ErrorKind::Busy);
    }

    pub async fn copy_file_rules(f: Fixture) {
        let b = &f.backend;
        let data = pattern(2 * CHUNK + 3);
        write(b, "/m/src", &data).await;
        let size = data.len() as u64;
        b.copy_file(&p("/m/src"), &p("/m/dst"), size).await.unwrap();
        assert_eq!(read(b, "/m/dst").await, data);
        write(b, "/m/dst", b"changed").await;
        assert_eq!(read(b, "/m/src").await, data, "the copy is independent");
        b.mkdir(&p("/m/d"), false).await.unwrap();
        assert_kind!(
            b.copy_file(&p("/m/src"), &p("/m/d"), size).await,
            ErrorKind::IsADirectory
        );
        assert_kind!(
            b.copy_file(&p("/m/d"), &p("/m/x"), 0).await,
            ErrorKind::IsADirectory
        );
        assert_kind!(
            b.copy_file(&p("/m/none"), &p("/m/x"), 0).await,
            ErrorKind::NotFound
        );
        assert_kind!(
            b.copy_file(&p("/m/src"), &p("/m/no/x"), size).await,
            ErrorKind::NotFound
        );
        // A copy of another size than the caller planned (the source changed since its scan)
        // is never committed: the old destination stays.
        for planned in [size - 1, size + 1] {
            let err = b
                .copy_file(&p("/m/src"), &p("/m/dst"), planned)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Io, "{err}");
            assert!(err.to_string().contains("source changed while copying"), "{err}");
            assert_eq!(read(b, "/m/dst").await, b"changed");
        }
    }

    pub async fn usage_counts_files_dirs_and_bytes(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/a/b"), true).await.unwrap();
        write(b, "/m/a/f", &pattern(100)).await;
        write(b, "/m/a/b/g", &pattern(23)).await;
        let usage = b.usage().await.unwrap();
        assert_eq!((usage.files, usage.dirs, usage.bytes), (2, 2, 123));
        b.remove_all(&p("/m/a")).await.unwrap();
        let usage = b.usage().await.unwrap();
        assert_eq!((usage.files, usage.dirs, usage.bytes), (0, 0, 0));
    }

    pub async fn batched_writes_commit_each_file_on_its_own(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/d/sub"), true).await.unwrap();
        write(b, "/m/d/old", b"old contents").await;
        write(b, "/m/file", b"x").await;
        let big = pattern(3 * CHUNK + 5);
        let files = [
            ("/m/d/new", Bytes::from_static(b"new")),
            ("/m/d/old", Bytes::from_static(b"replaced")),
            ("/m/missing/f", Bytes::from_static(b"lost")),
            ("/m/d/sub", Bytes::from_static(b"onto a dir")),
            ("/m/file/f", Bytes::from_static(b"under a file")),
            ("/m/d/empty", Bytes::new()),
            ("/m/d/big", Bytes::from(big.clone())),
            ("/m", Bytes::from_static(b"the root")),
        ];
        let batch = files
            .iter()
            .map(|(path, data)| WholeFile {
                path: p(path),
                data: data.clone(),
            })
            .collect();
        let results = b.write_files(batch).await;
        assert_eq!(results.len(), files.len(), "one result per file");
        let kinds: Vec<Option<ErrorKind>> = results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.kind()))
            .collect();
        assert_eq!(
            kinds,
            [
                None,
                None,
                Some(ErrorKind::NotFound),
                Some(ErrorKind::IsADirectory),
                Some(ErrorKind::NotADirectory),
                None,
                None,
                Some(ErrorKind::IsADirectory),
            ]
        );
        let missing = results[2].as_ref().unwrap_err();
        assert_eq!(missing.path(), Some(&p("/m/missing/f")), "{missing}");
        assert_eq!(read(b, "/m/d/new").await, b"new");
        assert_eq!(read(b, "/m/d/old").await, b"replaced");
        assert_eq!(read(b, "/m/d/empty").await, b"");
        assert_eq!(read(b, "/m/d/big").await, big);
        assert!(b.stat(&p("/m/d/sub")).await.unwrap().is_dir());
        assert_eq!(read(b, "/m/file").await, b"x");
        assert_eq!(
            names(b, "/m/d").await,
            ["big", "empty", "new", "old", "sub"]
        );
        let usage = b.usage().await.unwrap();
        assert_eq!(
            (usage.files, usage.bytes),
            (5, (1 + 3 + 8 + big.len()) as u64),
            "counters follow batched writes"
        );
        assert!(b.write_files(Vec::new()).await.is_empty());
    }

    pub async fn batched_reads_read_each_file_on_its_own(f: Fixture) {
        let b = &f.backend;
        b.mkdir(&p("/m/d"), false).await.unwrap();
        let big = pattern(3 * CHUNK + 5);
        write(b, "/m/d/small", b"small").await;
        write(b, "/m/d/big", &big).await;
        write(b, "/m/d/empty", b"").await;
        b.touch(&p("/m/d/touched")).await.unwrap();
        let paths: Vec<VPath> = [
            "/m/d/small",
            "/m/d/big",
            "/m/d/none",
            "/m/d",
            "/m/d/small/x",
            "/m/d/empty",
            "/m/d/touched",
            "/m",
        ]
        .iter()
        .map(|s| p(s))
        .collect();
        let results = b.read_files(&paths, big.len() as u64).await;
        assert_eq!(results.len(), paths.len(), "one result per path");
        let data = |i: usize| match &results[i] {
            Ok(WholeRead::Data(d, _)) => d.to_vec(),
            other => panic!("{}: {other:?}", paths[i]),
        };
        assert_eq!(data(0), b"small");
        assert_eq!(data(1), big);
        assert_kind!(&results[2], ErrorKind::NotFound);
        assert_kind!(&results[3], ErrorKind::IsADirectory);
        assert_kind!(&results[4], ErrorKind::NotADirectory);
        assert_eq!(data(5), b"");
        assert_eq!(data(6), b"");
        assert_kind!(&results[7], ErrorKind::IsADirectory);
        let none = results[2].as_ref().unwrap_err();
        assert_eq!(none.path(), Some(&p("/m/d/none")), "{none}");

        // Past the limit a file is reported with its size, not read.
        let results = b.read_files(&paths[..2], big.len() as u64 - 1).await;
        assert!(
            matches!(results[0].as_ref().unwrap(), WholeRead::Data(d, _) if d == &b"small"[..]),
            "{:?}",
            results[0]
        );
        assert_eq!(
            results[1].as_ref().unwrap(),
            &WholeRead::TooLarge(big.len() as u64)
        );
        assert!(b.read_files(&[], 1).await.is_empty());
    }

    pub async fn a_batched_read_of_a_few_files_of_a_large_directory(f: Fixture) {
        // A Redis store reads a few names of a large directory one by one (`HMGET`) and most
        // of a small one whole (`HGETALL`): both give the same answers.
        let b = &f.backend;
        b.mkdir(&p("/m/big"), false).await.unwrap();
        let files: Vec<WholeFile> = (0..40)
            .map(|i| WholeFile {
                path: p(&format!("/m/big/f{i:02}")),
                data: Bytes::from(format!("file {i}")),
            })
            .collect();
        for result in b.write_files(files).await {
            result.unwrap();
        }
        let paths: Vec<VPath> = ["/m/big/f07", "/m/big/none", "/m/gone/f07", "/m/big/f31"]
            .iter()
            .map(|s| p(s))
            .collect();
        let results = b.read_files(&paths, 1 << 20).await;
        let data = |i: usize| match &results[i] {
            Ok(WholeRead::Data(d, _)) => d.to_vec(),
            other => panic!("{}: {other:?}", paths[i]),
        };
        assert_eq!(data(0), b"file 7");
        assert_kind!(&results[1], ErrorKind::NotFound);
        assert_kind!(&results[2], ErrorKind::NotFound);
        assert_eq!(data(3), b"file 31");
        let gone = results[2].as_ref().unwrap_err();
        assert_eq!(gone.path(), Some(&p("/m/gone/f07")), "{gone}");
    }

    pub async fn hostile_names_behave_alike(f: Fixture) {
        let b = &f.backend;
        let long = "n".repeat(255);
        // Blanks, line breaks, glob and SCAN-pattern characters ([ ] \ * ?), cluster hash-tag
        // braces ({ }), shell characters, control characters, invisible and multi-byte
        // characters, and the longest name.
        let hostile = [
            "a b",
            "line\nbreak",
            "*",
            "?",
            "[ab]",
            "back\\slash",
            "{tag}",
            "x{y}z",
            "}{",
            "%41%",
            "$(cmd)",
            "'single\"double",
            "#hash",
            "~tilde",
            "|pipe:colon;",
            "esc\u{1b}[31m bel\u{7}",
            "\u{feff}bom",
            "zero\u{200b}width",
            "ünïcødé ✓",
            "-dash",
            " lead",
            "trail ",
            long.as_str(),
        ];
        for name in hostile {
            let path = p("/m").join(name).unwrap();
            write(b, path.as_str(), name.as_bytes()).await;
            assert_eq!(read(b, path.as_str()).await, name.as_bytes());
        }
        let mut expected: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(names(b, "/m").await, expected);
        let too_long = "n".repeat(256);
        assert_kind!(p("/m").join(&too_long), ErrorKind::NameTooLong);
    }
}
